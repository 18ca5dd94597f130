"""Tiny RoboND-format fixtures, drawn in numpy: grey ground, green-shirted people, a red hero."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "robond"


def draw_scene(rng: np.random.Generator, size: int, hero: bool):
    """(image (S, S, 3) uint8, labels (S, S) uint8) with two people and maybe the hero."""
    image = np.full((size, size, 3), 110, np.uint8) + rng.integers(0, 20, (size, size, 3),
                                                                    dtype=np.uint8)
    labels = np.zeros((size, size), np.uint8)
    boxes = [(1, (40, 160, 40))] * 2 + ([(2, (220, 30, 30))] if hero else [])
    for cls, colour in boxes:
        h, w = rng.integers(size // 6, size // 3), rng.integers(size // 12, size // 6)
        y, x = rng.integers(0, size - h), rng.integers(0, size - w)
        image[y:y + h, x:x + w] = colour
        labels[y:y + h, x:x + w] = cls
    return image, labels


def write_robond(root: Path, n: int, size: int = 64, seed: int = 0, hero_every: int = 2) -> Path:
    """Write ``n`` image/mask pairs in the RoboND layout, named like the course's files."""
    from followme.data.robond import labels_to_mask

    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        image, labels = draw_scene(rng, size, hero=i % hero_every == 0)
        Image.fromarray(image).save(root / "images" / f"{seed}_run1cam1_{i:05d}.jpeg", quality=95)
        mask = labels_to_mask(labels)
        Image.fromarray(mask).save(root / "masks" / f"{seed}_run1_mask_{i:05d}.png")
    return root


def write_grading(root: Path, n: int = 4, size: int = 64) -> Path:
    for k, sub in enumerate(("following_images", "patrol_with_targ", "patrol_non_targ")):
        write_robond(root / sub, n, size, seed=10 + k, hero_every=1 if k < 2 else 10 ** 6)
    return root


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("FOLLOWME_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture
def tiny_robond(tmp_path) -> Path:
    return write_robond(tmp_path / "train", 8)


@pytest.fixture
def tiny_grading(tmp_path) -> Path:
    return write_grading(tmp_path / "grade")


def needs_shared():
    return pytest.mark.skipif(not SHARED.is_dir(),
                              reason=f"the shared RoboND data is not at {SHARED}")


@pytest.fixture
def seed_checkpoint(tmp_path) -> Path:
    """An untrained ``seed`` model at 32 px, saved as a checkpoint."""
    import torch

    from followme.checkpoint import NORMALIZATION, save_checkpoint
    from followme.models import create_model, model_config

    torch.manual_seed(0)
    path = tmp_path / "seed.pt"
    save_checkpoint(path, {"arch": "fcn", "model_name": "seed",
                           "model_config": model_config("seed").to_dict(),
                           "image_size": 32, "normalization": NORMALIZATION,
                           "model": create_model("seed").state_dict()})
    return path
