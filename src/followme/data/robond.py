"""The RoboND folder layout: ``DIR/images/*.jpeg`` paired by name with ``DIR/masks/*.png``.

A mask is a 256x256 RGB PNG, one-hot in the channels: red = background, green = other people,
blue = the hero. Image ``0_run6_cam1_00000_data_pack2.jpeg`` pairs with mask
``0_run6_mask_00000_data_pack2.png``, and ``10_run4cam1_00000.jpeg`` with
``10_run4_mask_00000.png``: drop ``cam1`` / ``mask`` and the separators around them.
The course's evaluation set names them another way, image ``0_run1cam1_00005.jpeg`` and mask
``0__mask_00005.png``: there, the fold and the frame number pair them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from followme.labels import NUM_CLASSES, ON_ABOVE

IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
MAX_IMAGE_PIXELS = 4096 * 4096
_TAG = re.compile(r"_?(cam1|mask)_?")
_FOLD_FRAME = re.compile(r"^(\d+)_.*?(?:cam1|mask)_(\d+)")


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


def fold_frame(stem: str) -> tuple[str, str] | None:
    """(fold, frame number) of a course file name, or None: ``0_run1cam1_00005`` and
    ``0__mask_00005`` (the course's evaluation set) both give ("0", "00005")."""
    m = _FOLD_FRAME.match(stem)
    return (m.group(1), m.group(2)) if m else None


def _files(folder: Path, suffixes: tuple[str, ...], problems: list[str]) -> list[Path]:
    """Files of ``folder`` with these suffixes; a broken link is a problem, not a file."""
    files = []
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() not in suffixes:
            continue
        if not p.is_file():
            problems.append(f"{p}: not a readable file (a broken link or a folder)")
            continue
        files.append(p)
    return files


def _article(noun: str) -> str:
    return f"an {noun}" if noun[0] in "aeiou" else f"a {noun}"


def pair_files(left: list[Path], right: list[Path], left_what: str = "image",
               right_what: str = "mask") -> tuple[list[tuple[Path, Path]], list[str]]:
    """Pair two lists of files by name. Returns (pairs sorted by the left name, problems).

    Names pair exactly by ``pair_key``. What is left pairs on (fold, frame number), as the
    course's evaluation set names its files; where several files share a (fold, frame), they
    pair in sorted order, and only when both sides have as many. Two files of one side with the
    same key (``X.jpeg`` and ``X.png``) are a problem: neither is used.
    """
    problems: list[str] = []

    def by_key(files: list[Path]) -> dict[str, Path]:
        groups: dict[str, list[Path]] = {}
        for f in files:
            groups.setdefault(pair_key(f.stem).lower(), []).append(f)
        for group in groups.values():
            if len(group) > 1:
                problems.append(f"{', '.join(map(str, group))}: {len(group)} files with one "
                                "name (they would pair with the same file): rename or remove "
                                "all but one")
        return {k: g[0] for k, g in groups.items() if len(g) == 1}

    lefts, rights = by_key(left), by_key(right)
    pairs = [(lefts[k], rights[k]) for k in lefts.keys() & rights.keys()]
    rest_left = sorted(lefts[k] for k in lefts.keys() - rights.keys())
    rest_right = sorted(rights[k] for k in rights.keys() - lefts.keys())

    groups: dict[tuple[str, str] | None, tuple[list[Path], list[Path]]] = {}
    for side, files in ((0, rest_left), (1, rest_right)):
        for f in files:
            groups.setdefault(fold_frame(f.stem), ([], []))[side].append(f)
    unpaired_left, unpaired_right = [], []
    for ff, (ls, rs) in groups.items():
        if ff is not None and len(ls) == len(rs):
            pairs += zip(ls, rs, strict=True)
        else:
            unpaired_left += ls
            unpaired_right += rs
    problems += [f"{f}: {left_what} without {_article(right_what)}" for f in sorted(unpaired_left)]
    problems += [f"{f}: {right_what} without {_article(left_what)}" for f in sorted(unpaired_right)]
    return sorted(pairs), problems


def find_pairs(root: str | Path) -> tuple[list[Pair], list[str]]:
    """Pair ``root/images`` with ``root/masks`` by name. Returns (pairs, problems)."""
    root = Path(root)
    image_dir, mask_dir = root / "images", root / "masks"
    for d in (image_dir, mask_dir):
        if not d.is_dir():
            raise FileNotFoundError(
                f"{d} is not a folder: expected the RoboND layout images/ + masks/")
    problems: list[str] = []
    images = _files(image_dir, IMAGE_SUFFIXES, problems)
    masks = _files(mask_dir, (".png",), problems)
    pairs, pair_problems = pair_files(images, masks)
    return [Pair(i, m) for i, m in pairs], problems + pair_problems


def read_image(path: Path, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """(H, W, 3) uint8 RGB. Raises ValueError naming the file when it cannot be decoded, or
    when it declares more than ``max_pixels`` pixels (checked before decoding)."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise ValueError(f"{path}: {w}x{h} pixels, larger than any camera frame "
                                 f"(at most {max_pixels:,} pixels): refused before decoding")
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as e:
        raise ValueError(f"{path}: unreadable image ({e})") from e


def mask_to_labels(mask: np.ndarray, path: Path | str = "mask") -> np.ndarray:
    """One-hot RGB mask (H, W, 3) -> class labels (H, W) uint8; refuses one that is not one-hot."""
    on = mask > ON_ABOVE
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
