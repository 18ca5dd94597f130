"""Frames to hero probabilities: uint8 images -> normalised tensors -> softmax -> uint8 masks."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from followme.checkpoint import NORMALIZATION


def to_tensor(images: torch.Tensor, normalization: dict = NORMALIZATION) -> torch.Tensor:
    """(B, S, S, 3) uint8 -> (B, 3, S, S) float in [-1, 1], channels_last in memory."""
    x = images.permute(0, 3, 1, 2).float()
    return x * normalization["scale"] + normalization["offset"]


@torch.inference_mode()
def predict_probabilities(model: nn.Module, images: np.ndarray | torch.Tensor,
                          batch_size: int = 64, normalization: dict = NORMALIZATION,
                          device: str | torch.device = "cpu") -> np.ndarray:
    """(N, S, S, 3) uint8 images -> (N, S, S, 3) uint8 softmax probabilities x 255, the course's
    prediction PNG. A pixel counts as predicted where the value is > 127."""
    model.eval()
    out = []
    for i in range(0, len(images), batch_size):
        batch = torch.as_tensor(np.array(images[i:i + batch_size])).to(device)
        probs = model(to_tensor(batch, normalization)).float().softmax(1)
        out.append((probs * 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0, 0, 3), np.uint8)
