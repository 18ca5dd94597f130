"""Decode a RoboND folder once into uint8 arrays on disk, memory-mapped on every later use.

The cache key covers the file list (names, sizes, mtimes) and the image size, so a changed
folder or another size builds a new cache and no epoch ever decodes a JPEG again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from followme.atomic import write_atomic, write_text_atomic
from followme.data.resize import labels_at_size, resize_image
from followme.data.robond import DataError, Pair, find_pairs, read_pair
from followme.labels import HERO

log = logging.getLogger(__name__)


@dataclass
class RoboNDArrays:
    """A decoded RoboND folder. images (N, S, S, 3) uint8, labels (N, S, S) uint8 in {0, 1, 2},
    class_pixels (N, 3) each class's pixel count in the full-size mask."""

    names: list[str]
    images: np.ndarray
    labels: np.ndarray
    class_pixels: np.ndarray
    native_size: tuple[int, int]

    def __len__(self) -> int:
        return len(self.names)

    @property
    def hero_pixels(self) -> np.ndarray:
        return self.class_pixels[:, HERO]


def default_cache_dir() -> Path:
    return Path(os.environ.get("FOLLOWME_CACHE", Path.home() / ".cache" / "followme"))


def _key(pairs: list[Pair], size: int) -> str:
    h = hashlib.sha256(f"v2 size={size}".encode())
    for p in pairs:
        for f in (p.image, p.mask):
            st = f.stat()
            h.update(f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def _decode(pair: Pair, size: int):
    try:
        image, labels = read_pair(pair)
    except ValueError as e:
        return str(e)
    counts = np.bincount(labels.ravel(), minlength=3)
    return resize_image(image, size), labels_at_size(labels, size), counts, labels.shape


def load_arrays(
    root: str | Path,
    image_size: int = 160,
    skip_bad: bool = False,
    cache_dir: str | Path | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> RoboNDArrays:
    """Pair, validate, decode and resize a RoboND folder, through the on-disk cache."""
    pairs, problems = find_pairs(root)
    if problems and not skip_bad:
        raise DataError(problems)
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    stem = cache / f"robond-{_key(pairs, image_size)}"
    meta_path = stem.with_suffix(".json")
    cached = _open_cached(stem, meta_path, image_size)
    if cached is not None:
        arrays, meta = cached
        problems += meta["problems"]
        if problems and not skip_bad:
            raise DataError(problems)
        _warn_skipped(root, problems, len(meta["names"]))
        return arrays

    n, s = len(pairs), image_size
    images = np.zeros((n, s, s, 3), np.uint8)
    labels = np.zeros((n, s, s), np.uint8)
    counts = np.zeros((n, 3), np.int64)
    keep, bad, native = [], [], None
    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        results = pool.map(lambda p: _decode(p, s), pairs)
        for i, r in enumerate(tqdm(results, total=n, desc=f"decode {Path(root).name}",
                                   disable=not progress, unit="img")):
            if isinstance(r, str):
                bad.append(r)
                continue
            images[i], labels[i], counts[i], shape = r
            native = native or shape
            keep.append(i)
    problems += bad
    if problems and not skip_bad:
        raise DataError(problems)
    if not keep:
        raise DataError([f"{root}: no valid image/mask pairs"])
    meta = {
        "root": str(Path(root).resolve()),
        "names": [pairs[i].key for i in keep],
        "image_size": s,
        "native_size": list(native),
        "problems": bad,
    }
    try:
        cache.mkdir(parents=True, exist_ok=True)
        for name, arr in (("images", images[keep]), ("labels", labels[keep]),
                          ("counts", counts[keep])):
            write_atomic(Path(f"{stem}.{name}.npy"),
                         lambda f, a=arr: np.save(f, a, allow_pickle=False))
        write_text_atomic(meta_path, json.dumps(meta))
    except OSError as e:
        raise OSError(f"could not write the data cache ({e}): free some space, or point "
                      "$FOLLOWME_CACHE at another disk") from e
    _warn_skipped(root, problems, len(keep))
    return _open(stem, meta)


def _open(stem: Path, meta: dict) -> RoboNDArrays:
    def mm(name):
        return np.load(f"{stem}.{name}.npy", mmap_mode="r")

    return RoboNDArrays(meta["names"], mm("images"), mm("labels"), np.asarray(mm("counts")),
                        tuple(meta["native_size"]))


def _open_cached(stem: Path, meta_path: Path, size: int) -> tuple[RoboNDArrays, dict] | None:
    """The cache at ``stem``, or None when there is none or it is damaged (then it is rebuilt,
    with a warning naming it)."""
    if not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        arrays = _open(stem, meta)
        n = len(meta["names"])
        if (arrays.images.shape != (n, size, size, 3) or arrays.labels.shape != (n, size, size)
                or arrays.class_pixels.shape != (n, 3) or not isinstance(meta["problems"], list)):
            raise ValueError("its arrays do not match its file list")
        return arrays, meta
    except (OSError, ValueError, KeyError, TypeError, EOFError) as e:
        log.warning("the data cache %s.* is damaged (%s): rebuilding it", stem, e)
        return None


def _warn_skipped(root, problems: list[str], kept: int) -> None:
    if problems:
        for p in problems:
            log.warning("skipped: %s", p)
        log.warning("skipped %d bad file(s) in %s, kept %d pairs", len(problems), root, kept)


def load_folders(roots: str | Path | Sequence[str | Path], image_size: int = 160,
                 skip_bad: bool = False, progress: bool = True) -> RoboNDArrays:
    """One or more RoboND folders (e.g. real and sim data) as one set; with several, each name
    is prefixed by its folder's name."""
    roots = [roots] if isinstance(roots, (str, Path)) else list(roots)
    parts = [load_arrays(r, image_size, skip_bad=skip_bad, progress=progress) for r in roots]
    if len(parts) == 1:
        return parts[0]
    sizes = {tuple(p.native_size) for p in parts}
    if len(sizes) > 1:  # hero sizes (far-hero sampling) are counted at the native size
        log.warning("folders of different native sizes %s: hero sizes are not comparable", sizes)
    return RoboNDArrays(
        names=[f"{Path(r).name}/{n}" for r, p in zip(roots, parts, strict=True) for n in p.names],
        images=np.concatenate([p.images for p in parts]),
        labels=np.concatenate([p.labels for p in parts]),
        class_pixels=np.concatenate([p.class_pixels for p in parts]),
        native_size=parts[0].native_size)
