"""``followme model summary``: each block's output shape, as the seed notebook printed them."""

from __future__ import annotations

import argparse

import torch

from followme.models import DEFAULT_IMAGE_SIZE, MODELS, create_model


def summary(name: str, image_size: int = DEFAULT_IMAGE_SIZE) -> str:
    model = create_model(name).eval()
    with torch.no_grad():
        features = model.features(torch.zeros(1, 3, image_size, image_size))
    lines = [f"model {name}"]
    for layer, t in features:
        _, c, h, w = t.shape
        lines.append(f"{layer:>10} layer shape is : (?, {h}, {w}, {c})")
    params = sum(p.numel() for p in model.parameters())
    lines.append(f"parameters: {params:,}")
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``followme model summary NAME``."""
    p.add_argument("name", choices=sorted(MODELS))
    p.add_argument("--image-size", type=int, default=DEFAULT_IMAGE_SIZE)


def run(a: argparse.Namespace) -> int:
    print(summary(a.name, a.image_size))
    return 0
