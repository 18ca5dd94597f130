"""``followme model summary``: each block's output shape, as the seed notebook printed them."""

from __future__ import annotations

import torch

from followme.models import create_model


def summary(name: str, image_size: int = 160) -> str:
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
