"""Checkpoint -> ONNX file for ONNX Runtime: uint8 camera frames in, class probabilities out.

The graph holds the whole model path, normalisation and softmax included:
``image`` (B, S, S, 3) uint8 RGB -> ``probabilities`` (B, S, S, 3) float32, channels last as in
the course's prediction PNGs (a softmax over the last axis is also the cheaper one for ONNX
Runtime), and ``hero`` (B, S, S) float32, the hero's probability alone: what the follower asks
for, at about 4 ms instead of 5 on two cores. S is fixed in the file, and the runtime reads it
from the input's shape.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from followme.atomic import write_atomic
from followme.checkpoint import load_checkpoint
from followme.inference import hero_probability, to_tensor

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
