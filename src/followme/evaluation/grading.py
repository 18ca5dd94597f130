"""Grading sets: the three subsets of the course score, from a grading folder or by its rule.

validation_grade/ was sorted from validation/ by the hero's size in the 256 px mask:
following_images = 1000+ hero pixels, patrol_with_targ = 4 to 999, patrol_non_targ = at most 3
hero pixels and more than 3 people pixels. Any RoboND folder can be sorted the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from followme.data.cache import RoboNDArrays, load_arrays
from followme.evaluation.score import SUBSETS, SubsetScore, score_images, score_resized
from followme.labels import HERO, NUM_CLASSES, ON_ABOVE, PEOPLE


@dataclass
class GradingSet:
    arrays: list[RoboNDArrays]  # one per subset present
    subsets: list[str]

    def __len__(self) -> int:
        return sum(len(a) for a in self.arrays)


def is_grading_dir(path: str | Path) -> bool:
    return all((Path(path) / s / "images").is_dir() for s in SUBSETS)


def subset_by_rule(class_pixels: np.ndarray) -> np.ndarray:
    """(N, 3) full-size pixel counts -> (N,) subset index into SUBSETS, -1 for none."""
    hero, people = class_pixels[:, HERO], class_pixels[:, PEOPLE]
    out = np.full(len(class_pixels), -1)
    out[(hero <= 3) & (people > 3)] = 2
    out[(hero >= 4) & (hero <= 999)] = 1
    out[hero >= 1000] = 0
    return out


def load_grading_set(path: str | Path, image_size: int, **kw) -> GradingSet:
    """A grading folder (three subsets), or a plain RoboND folder sorted by the rule."""
    if is_grading_dir(path):
        return GradingSet([load_arrays(Path(path) / s, image_size, **kw) for s in SUBSETS],
                          list(SUBSETS))
    arrays = load_arrays(path, image_size, **kw)
    which = subset_by_rule(arrays.class_pixels)
    parts, names = [], []
    for k, name in enumerate(SUBSETS):
        idx = np.flatnonzero(which == k)
        if len(idx):
            parts.append(RoboNDArrays([arrays.names[i] for i in idx], arrays.images[idx],
                                      arrays.labels[idx], arrays.class_pixels[idx],
                                      arrays.native_size))
            names.append(name)
    return GradingSet(parts, names)


def score_labels(predictions: np.ndarray, labels: np.ndarray, names: list[str],
                 hero_pixels: np.ndarray | None = None) -> SubsetScore:
    """Score uint8 prediction arrays (N, S, S, 3) against class labels at the same size;
    ``hero_pixels``: each hero's size in the full-size mask."""
    truth = labels[..., None] == np.arange(NUM_CLASSES)
    sizes = [None] * len(names) if hero_pixels is None else [int(h) for h in hero_pixels]
    return score_images({n: score_resized(t, p > ON_ABOVE, h)
                         for n, t, p, h in zip(names, truth, predictions, sizes, strict=True)})
