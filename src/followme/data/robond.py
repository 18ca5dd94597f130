"""The RoboND folder layout: ``DIR/images/*.jpeg`` paired by name with ``DIR/masks/*.png``.

A mask is a 256x256 RGB PNG, one-hot in the channels: red = background, green = other people,
blue = the hero. Image ``0_run6_cam1_00000_data_pack2.jpeg`` pairs with mask
``0_run6_mask_00000_data_pack2.png``, and ``10_run4cam1_00000.jpeg`` with
``10_run4_mask_00000.png``: drop ``cam1`` / ``mask`` and the separators around them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
CLASS_NAMES = ("background", "people", "hero")
NUM_CLASSES = 3
_TAG = re.compile(r"_?(cam1|mask)_?")


class DataError(ValueError):
    """Invalid RoboND data. ``problems`` lists one line per bad file."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(
            f"{len(problems)} problem(s) in the data:\n  {shown}{more}\n"
            "(use --skip-bad to skip these files instead)"
        )


@dataclass(frozen=True)
class Pair:
    image: Path
    mask: Path

    @property
    def key(self) -> str:
        return pair_key(self.image.stem)


def pair_key(stem: str) -> str:
    """The name an image and its mask share: ``10_run4cam1_00000`` -> ``10_run4_00000``."""
    stem = stem.removesuffix("_prediction")
    return _TAG.sub("_", stem, count=1)


def _files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in suffixes)


def find_pairs(root: str | Path) -> tuple[list[Pair], list[str]]:
    """Pair ``root/images`` with ``root/masks`` by name. Returns (pairs, problems)."""
    root = Path(root)
    image_dir, mask_dir = root / "images", root / "masks"
    for d in (image_dir, mask_dir):
        if not d.is_dir():
            raise FileNotFoundError(
                f"{d} is not a folder: expected the RoboND layout images/ + masks/")
    images = {pair_key(p.stem): p for p in _files(image_dir, IMAGE_SUFFIXES)}
    masks = {pair_key(p.stem): p for p in _files(mask_dir, (".png",))}
    problems = [f"{images[k]}: image without a mask" for k in sorted(images.keys() - masks.keys())]
    problems += [f"{masks[k]}: mask without an image" for k in sorted(masks.keys() - images.keys())]
    pairs = [Pair(images[k], masks[k]) for k in sorted(images.keys() & masks.keys())]
    return pairs, problems


def read_image(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB. Raises ValueError naming the file when it cannot be decoded."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError(f"{path}: unreadable image ({e})") from e


def mask_to_labels(mask: np.ndarray, path: Path | str = "mask") -> np.ndarray:
    """One-hot RGB mask (H, W, 3) -> class labels (H, W) uint8; refuses one that is not one-hot."""
    on = mask > 127
    if not np.array_equal(on, mask == 255) or (mask[~on] != 0).any():
        raise ValueError(f"{path}: mask is not one-hot red/green/blue (values other than 0/255)")
    if (on.sum(axis=2) != 1).any():
        raise ValueError(
            f"{path}: mask is not one-hot red/green/blue (pixels with 0 or 2+ channels on)")
    return on.argmax(axis=2).astype(np.uint8)


def labels_to_mask(labels: np.ndarray) -> np.ndarray:
    """Class labels (H, W) -> one-hot RGB mask (H, W, 3) uint8 0/255."""
    return (np.eye(NUM_CLASSES, dtype=np.uint8)[labels] * 255).astype(np.uint8)


def read_pair(pair: Pair) -> tuple[np.ndarray, np.ndarray]:
    """Decode and check one pair: (image (H, W, 3) uint8, labels (H, W) uint8)."""
    image = read_image(pair.image)
    mask = read_image(pair.mask)
    if image.shape[:2] != mask.shape[:2]:
        raise ValueError(
            f"{pair.image} {image.shape[1]}x{image.shape[0]} and {pair.mask} "
            f"{mask.shape[1]}x{mask.shape[0]}: image and mask sizes differ"
        )
    return image, mask_to_labels(mask, pair.mask)
