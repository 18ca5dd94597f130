"""uint8 frames -> normalised tensors -> logits -> probabilities, in batches."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from followme.checkpoint import NORMALIZATION
from followme.labels import BACKGROUND, HERO, PEOPLE


def to_tensor(images: torch.Tensor, normalization: dict = NORMALIZATION) -> torch.Tensor:
    """(B, S, S, 3) uint8 -> (B, 3, S, S) float in [-1, 1], channels_last in memory."""
    x = images.permute(0, 3, 1, 2).float()
    return x * normalization["scale"] + normalization["offset"]


def hero_probability(logits: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) logits -> (B, H, W) the hero's softmax probability, without the softmax
    over all three classes: 1 / (1 + e^(background - hero) + e^(people - hero))."""
    hero = logits[:, HERO]
    return 1 / (1 + torch.exp(logits[:, BACKGROUND] - hero) + torch.exp(logits[:, PEOPLE] - hero))


def to_png_probabilities(logits: torch.Tensor) -> np.ndarray:
    """(B, 3, S, S) logits -> (B, S, S, 3) uint8 softmax x 255, the course's prediction PNG. A
    pixel counts as predicted where the value is > 127."""
    return (logits.float().softmax(1) * 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


@torch.inference_mode()
def batched_logits(model: nn.Module, images: np.ndarray | torch.Tensor, batch_size: int = 64,
                   normalization: dict = NORMALIZATION, device: str | torch.device = "cpu"
                   ) -> Iterator[tuple[int, torch.Tensor]]:
    """(N, S, S, 3) uint8 images -> (start, (B, 3, S, S) float logits) batch by batch, the model
    in eval mode."""
    model.eval()
    for start in range(0, len(images), batch_size):
        batch = torch.as_tensor(np.array(images[start:start + batch_size])).to(device)
        yield start, model(to_tensor(batch, normalization)).float()


def predict_probabilities(model: nn.Module, images: np.ndarray | torch.Tensor,
                          batch_size: int = 64, normalization: dict = NORMALIZATION,
                          device: str | torch.device = "cpu") -> np.ndarray:
    """(N, S, S, 3) uint8 images -> (N, S, S, 3) uint8 prediction PNGs
    (``to_png_probabilities``)."""
    out = [to_png_probabilities(logits)
           for _, logits in batched_logits(model, images, batch_size, normalization, device)]
    return np.concatenate(out) if out else np.zeros((0, 0, 0, 3), np.uint8)
