"""One interface over PyTorch and ONNX Runtime: a camera frame -> the hero's mask.

A runtime takes (B, S, S, 3) uint8 frames at its ``image_size`` S and gives ``hero(frames)``
(B, S, S) and ``probabilities(frames)`` (B, S, S, 3), float32: ``TorchRuntime`` here,
``onnx.OnnxRuntime`` for an export. ``HeroSegmenter`` puts one frame of any size through one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn

from followme.checkpoint import NORMALIZATION, SHIPPED_MODEL, load_checkpoint
from followme.data.resize import resize_image
from followme.segment.frames import hero_probability, to_tensor
from followme.segment.onnx import OnnxRuntime, cached_onnx

log = logging.getLogger(__name__)
THRESHOLD = 0.5  # a pixel is the hero's where her probability is above this, as the course


class Runtime(Protocol):
    image_size: int

    def hero(self, frames: np.ndarray) -> np.ndarray: ...

    def probabilities(self, frames: np.ndarray) -> np.ndarray: ...


class TorchRuntime:
    """A PyTorch model in eval mode, channels_last, under inference mode."""

    def __init__(self, model: nn.Module, image_size: int, normalization: dict = NORMALIZATION):
        self.model = model.eval().to(memory_format=torch.channels_last)
        self.image_size = image_size
        self.normalization = normalization

    def _logits(self, frames: np.ndarray) -> torch.Tensor:
        x = to_tensor(torch.from_numpy(np.array(frames)), self.normalization)  # a writable copy
        return self.model(x.contiguous(memory_format=torch.channels_last)).float()

    @torch.inference_mode()
    def hero(self, frames: np.ndarray) -> np.ndarray:
        return hero_probability(self._logits(frames)).numpy()

    @torch.inference_mode()
    def probabilities(self, frames: np.ndarray) -> np.ndarray:
        return self._logits(frames).permute(0, 2, 3, 1).softmax(-1).numpy()


class HeroSegmenter:
    """One camera frame at a time, for the follower: (H, W, 3) uint8 -> (S, S) bool hero mask
    (p > 0.5) at the model's size S; the frame is resized as the course did."""

    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.size = runtime.image_size

    def hero_probability(self, frame: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 -> (S, S) float32."""
        return self.runtime.hero(resize_image(frame, self.size)[None])[0]

    def probabilities(self, frame: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 -> (S, S, 3) float32 softmax."""
        return self.runtime.probabilities(resize_image(frame, self.size)[None])[0]

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        return self.hero_probability(frame) > THRESHOLD


# segmenter(frame (H, W, 3) uint8) -> hero mask (s, s) bool: a HeroSegmenter, the sim's oracle,
# or a test's stand-in
Segmenter = Callable[[np.ndarray], np.ndarray]


def load_segmenter(path: str | Path | None = None, threads: int | None = None,
                   runtime: str = "auto") -> HeroSegmenter:
    """A segmenter for a checkpoint or an ``.onnx`` export; no path: the shipped model.

    ``runtime``: "onnx" runs ONNX Runtime, exporting a checkpoint once into the cache
    (``$FOLLOWME_CACHE/onnx``) keyed by its content; "torch" runs PyTorch; "auto" is "onnx",
    or "torch" where the export fails."""
    if runtime not in ("auto", "onnx", "torch"):
        raise ValueError(f"runtime {runtime!r}: choose auto, onnx or torch")
    if path is not None and str(path).endswith(".onnx"):
        return HeroSegmenter(OnnxRuntime(path, threads))
    loaded = load_checkpoint(path)
    if runtime != "torch":
        try:
            return HeroSegmenter(OnnxRuntime(cached_onnx(Path(path) if path else SHIPPED_MODEL),
                                             threads))
        except Exception as e:  # any export problem: PyTorch still runs the model
            if runtime == "onnx":
                raise
            log.warning("running PyTorch: no ONNX export of %s (%s)", path or "the shipped "
                        "model", e)
    return HeroSegmenter(TorchRuntime(loaded.model, loaded.image_size, loaded.normalization))
