"""A checkpoint -> an ONNX file for ONNX Runtime: uint8 camera frames in, class probabilities out.

The graph holds the whole model path, normalisation and softmax included:
``image`` (B, S, S, 3) uint8 RGB -> ``probabilities`` (B, S, S, 3) float32, channels last as in
the course's prediction PNGs (a softmax over the last axis is also the cheaper one for ONNX
Runtime), and ``hero`` (B, S, S) float32, the hero's probability alone: what the follower asks
for, at about 4 ms instead of 5 on two cores. S is fixed in the file, and the runtime reads it
from the input's shape.

``OnnxRuntime`` runs such a file; ``cached_onnx`` exports a checkpoint once into the cache.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from followme.atomic import write_atomic
from followme.checkpoint import load_checkpoint
from followme.data.cache import default_cache_dir
from followme.labels import HERO
from followme.segment.frames import hero_probability, to_tensor

EXPORT_VERSION = 2  # bump when the graph changes, so that cached exports are made again


class FramesToProbabilities(nn.Module):
    def __init__(self, model: nn.Module, normalization: dict):
        super().__init__()
        self.model = model
        self.normalization = normalization

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model(to_tensor(images, self.normalization))
        return logits.permute(0, 2, 3, 1).softmax(-1), hero_probability(logits)


def export_onnx(checkpoint: str | Path | None, out: str | Path, opset: int = 17) -> float:
    """Write ``out`` (atomically) and check it against PyTorch on random frames; returns the
    largest difference in probabilities."""
    import onnxruntime as ort

    loaded = load_checkpoint(checkpoint)
    wrapper = FramesToProbabilities(loaded.model.float().eval(), loaded.normalization).eval()
    size = loaded.image_size
    frames = torch.randint(0, 256, (2, size, size, 3), dtype=torch.uint8)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer chatter
        torch.onnx.export(wrapper, (frames[:1],), buffer, input_names=["image"],
                          output_names=["probabilities", "hero"], opset_version=opset,
                          dynamic_axes={"image": {0: "batch"}, "probabilities": {0: "batch"},
                                        "hero": {0: "batch"}},
                          dynamo=False)
    graph = buffer.getvalue()
    session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": frames.numpy()})
    with torch.inference_mode():
        want = wrapper(frames)
    diff = max(float(np.abs(g - w.numpy()).max()) for g, w in zip(got, want, strict=True))
    if diff > 1e-3:
        raise ValueError(f"{out}: the exported model disagrees with PyTorch by {diff:.2g}")
    write_atomic(out, lambda f: f.write(graph))
    return diff


def cached_onnx(checkpoint: Path) -> Path:
    """The ONNX export of a checkpoint, made once and kept in the cache."""
    key = hashlib.sha256(checkpoint.read_bytes()).hexdigest()[:20]
    out = default_cache_dir() / "onnx" / f"{key}-v{EXPORT_VERSION}-torch{torch.__version__}.onnx"
    if not out.exists():
        export_onnx(checkpoint, out)
    return out


class OnnxRuntime:
    """A model exported by ``followme export --onnx``, run by ONNX Runtime on the CPU:
    (B, S, S, 3) uint8 frames -> (B, S, S, 3) float32 probabilities, or (B, S, S) the hero's
    alone (``hero``). Each output gets its own session, made on first use, of the graph cut
    down to what that output needs."""

    def __init__(self, path: str | Path, threads: int | None = None):
        import onnx

        try:
            self.graph = onnx.load(str(path))
        except Exception as e:  # a missing file, or protobuf's own errors for a damaged one
            raise ValueError(f"{path}: not a readable ONNX model ({e})") from e
        self.path, self.threads = path, threads or torch.get_num_threads()
        self.outputs = [o.name for o in self.graph.graph.output]
        self.has_hero = "hero" in self.outputs
        self._sessions: dict[str, object] = {}
        output = "hero" if self.has_hero else self.outputs[0]
        session = self._session(output)  # checks the file
        self.input_name, self.image_size = _frames_input(path, session.get_inputs())
        _check_output(path, session.get_outputs()[0], self.image_size, output == "hero")

    def _session(self, output: str):
        if output not in self._sessions:
            import onnxruntime as ort
            from onnx.utils import Extractor

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = self.threads
            opts.inter_op_num_threads = 1
            try:
                graph = self.graph if len(self.outputs) == 1 else Extractor(
                    self.graph).extract_model([self.graph.graph.input[0].name], [output])
                self._sessions[output] = ort.InferenceSession(
                    graph.SerializeToString(), opts, providers=["CPUExecutionProvider"])
            except Exception as e:  # onnx and onnxruntime raise their own types
                raise ValueError(f"{self.path}: not a runnable ONNX model ({e})") from e
        return self._sessions[output]

    def _run(self, output: str, images: np.ndarray) -> np.ndarray:
        return self._session(output).run(
            None, {self.input_name: np.ascontiguousarray(images)})[0]

    def probabilities(self, frames: np.ndarray) -> np.ndarray:
        """(B, S, S, 3) uint8 -> (B, S, S, 3) float32 softmax."""
        return self._run("probabilities", frames)

    def hero(self, frames: np.ndarray) -> np.ndarray:
        """(B, S, S, 3) uint8 -> (B, S, S) float32, the hero's probability."""
        if not self.has_hero:  # an export from before the hero output
            return self.probabilities(frames)[..., HERO]
        return self._run("hero", frames)


_EXPORTED = "followme export --onnx writes models that take uint8 (B, S, S, 3) frames"


def _describe(arg) -> str:
    """An ONNX Runtime input or output: "float (1, 3, 64, 64)"; dynamic axes by name."""
    kind = arg.type.removeprefix("tensor(").removesuffix(")")
    shape = arg.shape if isinstance(arg.shape, list | tuple) else []
    return f"{kind} ({', '.join(str(d) for d in shape)}{',' if len(shape) == 1 else ''})"


def _frames_input(path, inputs) -> tuple[str, int]:
    """(input name, S) of a model that takes what ``followme export --onnx`` writes: one
    uint8 (B, S, S, 3) input; any other is refused here, before the first frame."""
    if len(inputs) != 1:
        raise ValueError(f"{path}: the model takes {len(inputs)} inputs "
                         f"({', '.join(i.name for i in inputs)}), not one; {_EXPORTED}")
    arg = inputs[0]
    shape = list(arg.shape) if isinstance(arg.shape, list | tuple) else []
    if not (arg.type == "tensor(uint8)" and len(shape) == 4 and isinstance(shape[1], int)
            and shape[1] > 0 and shape[2] == shape[1] and shape[3] == 3):
        raise ValueError(f"{path}: input {arg.name!r} is {_describe(arg)}, not uint8 "
                         f"(B, S, S, 3) with S fixed; {_EXPORTED}")
    return arg.name, shape[1]


def _check_output(path, arg, size: int, hero: bool) -> None:
    """The output the follower reads: hero (B, S, S) or probabilities (B, S, S, 3)."""
    want = [size, size] if hero else [size, size, 3]
    shape = list(arg.shape) if isinstance(arg.shape, list | tuple) else []
    if len(shape) != len(want) + 1 or any(isinstance(d, int) and d != w
                                          for d, w in zip(shape[1:], want, strict=True)):
        raise ValueError(f"{path}: output {arg.name!r} is {_describe(arg)}, not "
                         f"(B, {', '.join(map(str, want))}); followme export --onnx writes "
                         "models with probabilities (B, S, S, 3) and hero (B, S, S) out")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``followme export --onnx CKPT OUT.onnx``."""
    p.add_argument("--onnx", action="store_true", required=True, help="the format (ONNX)")
    p.add_argument("checkpoint", metavar="CKPT")
    p.add_argument("out", metavar="OUT.onnx")


def run(a: argparse.Namespace) -> int:
    diff = export_onnx(a.checkpoint, a.out)
    print(f"wrote {a.out}: uint8 (B, S, S, 3) frames -> (B, S, S, 3) probabilities; "
          f"agrees with PyTorch to {diff:.1e}")
    return 0
