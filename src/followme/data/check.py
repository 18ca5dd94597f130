"""``followme data check``: what is in a RoboND folder, and whether it is valid."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from followme.data.cache import load_arrays
from followme.labels import CLASSES

PERCENTILES = (5, 25, 50, 75, 95)


def folder_stats(root: str | Path, skip_bad: bool = False, image_size: int = 160) -> dict:
    """Counts, class pixel shares, hero presence and hero size percentiles (full-size pixels).
    Raises DataError naming the bad files unless ``skip_bad``."""
    arrays = load_arrays(root, image_size, skip_bad=skip_bad)
    counts = arrays.class_pixels
    hero = arrays.hero_pixels
    present = hero > 3
    shares = counts.sum(0) / counts.sum()
    return {
        "folder": str(root),
        "pairs": len(arrays),
        "image_size": list(arrays.native_size),
        "class_pixel_share": {n: float(s) for n, s in zip(CLASSES, shares, strict=True)},
        "hero_present_share": float(present.mean()),
        "hero_pixels_percentiles": {
            f"p{p}": float(v)
            for p, v in zip(PERCENTILES, np.percentile(hero[present], PERCENTILES)
                            if present.any() else [0] * 5, strict=True)},
        "far_hero_images": int(((hero > 3) & (hero < 1000)).sum()),
    }


def format_stats(s: dict) -> str:
    h, w = s["image_size"]
    lines = [f"{s['folder']}: {s['pairs']} valid image/mask pairs, {w}x{h}",
             "class pixel share: " + ", ".join(f"{k} {v:.2%}"
                                               for k, v in s["class_pixel_share"].items()),
             f"hero present (> 3 px): {s['hero_present_share']:.1%} of images; "
             f"far away (4-999 px): {s['far_hero_images']} images",
             "hero size in pixels, where present: " + ", ".join(
                 f"{k} {v:.0f}" for k, v in s["hero_pixels_percentiles"].items())]
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``followme data check DIR...``."""
    p.add_argument("dirs", nargs="+", metavar="DIR")
    p.add_argument("--skip-bad", action="store_true", help="skip bad files instead of failing")


def run(a: argparse.Namespace) -> int:
    for folder in a.dirs:
        print(format_stats(folder_stats(folder, skip_bad=a.skip_bad)))
    return 0
