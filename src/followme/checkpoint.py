"""Self-describing checkpoints: every command rebuilds the model from the file alone.

A checkpoint is a plain dict: the model's name and config, the image size and the input
normalisation, the weights, and for training also the optimizer, the position in training
and the history.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from followme.models import build_from_config

FORMAT = "followme-checkpoint-1"
# Pixels scale to [-1, 1] as the course did: (x / 255 - 0.5) * 2 == x * scale + offset.
NORMALIZATION = {"scale": 2 / 255, "offset": -1.0}
SHIPPED_MODEL = Path(__file__).parent / "assets" / "default_model.pt"


@dataclass
class LoadedModel:
    model: nn.Module
    name: str
    image_size: int
    normalization: dict
    checkpoint: dict


def save_checkpoint(path: str | Path, state: dict) -> None:
    """Write atomically: a temp file beside the target, then a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        torch.save({"format": FORMAT, **state}, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a damaged file
        raise ValueError(f"{path}: not a readable checkpoint ({e})") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{path}: not a followme checkpoint")
    return ckpt


def load_checkpoint(path: str | Path | None = None) -> LoadedModel:
    """Rebuild the model of a checkpoint, in eval mode. No path: the shipped default model."""
    path = Path(path) if path else SHIPPED_MODEL
    ckpt = read_checkpoint(path)
    model = build_from_config(ckpt["model_config"])
    model.load_state_dict(ckpt["model"])
    model.eval()
    return LoadedModel(model, ckpt["model_name"], ckpt["image_size"], ckpt["normalization"], ckpt)
