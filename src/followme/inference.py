"""Frames to hero probabilities: uint8 images -> normalised tensors -> softmax -> uint8 masks."""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy import ndimage
from torch import nn

from followme.checkpoint import NORMALIZATION, SHIPPED_MODEL, load_checkpoint
from followme.data.resize import resize_image
from followme.labels import BACKGROUND, HERO, PEOPLE

log = logging.getLogger(__name__)


def hero_probability(logits: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) logits -> (B, H, W) the hero's softmax probability, without the softmax
    over all three classes: 1 / (1 + e^(background - hero) + e^(people - hero))."""
    hero = logits[:, HERO]
    return 1 / (1 + torch.exp(logits[:, BACKGROUND] - hero) + torch.exp(logits[:, PEOPLE] - hero))


def to_tensor(images: torch.Tensor, normalization: dict = NORMALIZATION) -> torch.Tensor:
    """(B, S, S, 3) uint8 -> (B, 3, S, S) float in [-1, 1], channels_last in memory."""
    x = images.permute(0, 3, 1, 2).float()
    return x * normalization["scale"] + normalization["offset"]


@torch.inference_mode()
def predict_probabilities(model: nn.Module, images: np.ndarray | torch.Tensor,
                          batch_size: int = 64, normalization: dict = NORMALIZATION,
                          device: str | torch.device = "cpu",
                          on_logits: Callable[[int, torch.Tensor], None] | None = None
                          ) -> np.ndarray:
    """(N, S, S, 3) uint8 images -> (N, S, S, 3) uint8 softmax probabilities x 255, the course's
    prediction PNG. A pixel counts as predicted where the value is > 127. ``on_logits(start,
    logits)`` sees each batch's raw output, e.g. for a validation loss from the same pass."""
    model.eval()
    out = []
    for i in range(0, len(images), batch_size):
        batch = torch.as_tensor(np.array(images[i:i + batch_size])).to(device)
        logits = model(to_tensor(batch, normalization)).float()
        if on_logits is not None:
            on_logits(i, logits)
        probs = logits.softmax(1)
        out.append((probs * 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0, 0, 3), np.uint8)


def decode_jpeg(data: bytes, size: int) -> np.ndarray:
    """JPEG or PNG bytes -> (size, size, 3) uint8 RGB, resized as the course did."""
    with Image.open(io.BytesIO(data)) as im:
        rgb = im if im.mode == "RGB" else im.convert("RGB")
        if rgb.size != (size, size):  # as resize_image, without a round trip through numpy
            rgb = rgb.resize((size, size), Image.BILINEAR)
        return np.asarray(rgb)


def hero_centroid(hero: np.ndarray, min_pixels: int = 10) -> tuple[float, float] | None:
    """(row, col) centroid of the largest connected hero blob, or None when the hero has
    ``min_pixels`` or fewer pixels. hero: (H, W) bool."""
    if int(hero.sum()) <= min_pixels:
        return None
    blobs, _ = ndimage.label(hero)
    sizes = np.bincount(blobs.ravel())[1:]
    largest = int(sizes.argmax()) + 1
    r, c = ndimage.center_of_mass(blobs == largest)
    return float(r), float(c)


class OnnxModel:
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

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return self._run("probabilities", images)

    def hero(self, images: np.ndarray) -> np.ndarray:
        if not self.has_hero:  # an export from before the hero output
            return self(images)[..., HERO]
        return self._run("hero", images)


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


class HeroSegmenter:
    """One camera frame at a time: image -> hero mask (p > 0.5) -> centroid, for the follower.
    The model is a PyTorch module or an :class:`OnnxModel`."""

    def __init__(self, model: nn.Module | OnnxModel, image_size: int,
                 normalization: dict = NORMALIZATION):
        if isinstance(model, nn.Module):
            model = model.eval().to(memory_format=torch.channels_last)
        self.model = model
        self.size = image_size
        self.normalization = normalization

    def _logits(self, frame: np.ndarray) -> torch.Tensor:
        x = to_tensor(torch.from_numpy(np.array(frame))[None], self.normalization)
        return self.model(x.contiguous(memory_format=torch.channels_last))

    def probabilities(self, frame: np.ndarray) -> np.ndarray:
        """(S, S, 3) uint8 -> (S, S, 3) float32 softmax."""
        if isinstance(self.model, OnnxModel):
            return self.model(frame[None])[0]
        with torch.inference_mode():
            return self._logits(frame)[0].permute(1, 2, 0).softmax(-1).numpy()

    def hero_probability(self, frame: np.ndarray) -> np.ndarray:
        """(S, S, 3) uint8 -> (S, S) float32, the hero's softmax probability."""
        if isinstance(self.model, OnnxModel):
            return self.model.hero(frame[None])[0]
        with torch.inference_mode():
            return hero_probability(self._logits(frame))[0].numpy()

    def __call__(self, frame: np.ndarray | bytes):
        """Returns (hero mask (S, S) bool, centroid (row, col) in pixels of the S x S mask or
        None)."""
        if isinstance(frame, bytes | bytearray):
            frame = decode_jpeg(bytes(frame), self.size)
        else:
            frame = resize_image(frame, self.size)
        hero = self.hero_probability(frame) > 0.5
        return hero, hero_centroid(hero)


def load_segmenter(path: str | Path | None = None, threads: int | None = None,
                   runtime: str = "auto") -> HeroSegmenter:
    """A segmenter for a checkpoint or an ``.onnx`` export; no path: the shipped model.

    ``runtime``: "onnx" runs ONNX Runtime, exporting a checkpoint once into the cache
    (``$FOLLOWME_CACHE/onnx``) keyed by its content; "torch" runs PyTorch; "auto" is "onnx",
    or "torch" where the export fails."""
    if runtime not in ("auto", "onnx", "torch"):
        raise ValueError(f"runtime {runtime!r}: choose auto, onnx or torch")
    if path is not None and str(path).endswith(".onnx"):
        onnx = OnnxModel(path, threads)
        return HeroSegmenter(onnx, onnx.image_size)
    loaded = load_checkpoint(path)
    if runtime != "torch":
        try:
            onnx = OnnxModel(cached_onnx(Path(path) if path else SHIPPED_MODEL), threads)
            return HeroSegmenter(onnx, onnx.image_size)
        except Exception as e:  # any export problem: PyTorch still runs the model
            if runtime == "onnx":
                raise
            log.warning("running PyTorch: no ONNX export of %s (%s)", path or "the shipped "
                        "model", e)
    return HeroSegmenter(loaded.model, loaded.image_size, loaded.normalization)


def cached_onnx(checkpoint: Path) -> Path:
    """The ONNX export of a checkpoint, made once and kept in the cache."""
    from followme.data.cache import default_cache_dir
    from followme.export import EXPORT_VERSION, export_onnx

    key = hashlib.sha256(checkpoint.read_bytes()).hexdigest()[:20]
    out = default_cache_dir() / "onnx" / f"{key}-v{EXPORT_VERSION}-torch{torch.__version__}.onnx"
    if not out.exists():
        export_onnx(checkpoint, out)
    return out
