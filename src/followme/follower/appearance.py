"""What a person looks like, as one vector, and how alike two people look.

``features``: four bands of a person's pixels, top to bottom: the head (the top 15 %: hair or
skin), the torso (to 55 %: the shirt), the legs (to 90 %: trousers) and the feet (shoes). Each
band gives a hue-saturation histogram, the colourless pixels (black, grey, white) binned by
brightness instead of hue, and its mean colour.

``Appearance``: those features through a linear projection learned from our own simulated
crops (``fit``, run by ``scripts/fit_appearance.py`` into ``assets/appearance.npz``): linear
discriminant analysis over many people, most of them dressed alike, so that two crops of one
person lie close and crops of two people in the same clothes lie apart. In that space one
person's crops scatter with unit variance along each axis, so ``similarity``, the chance that
one person's crops would lie this far apart (chi-square), reads the same in every direction.

The tracker averages her embedded crops as it follows her (``tracking.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from matplotlib.colors import rgb_to_hsv
from scipy.linalg import eigh
from scipy.stats import chi2

HUES, SATURATIONS, GREYS = 12, 3, 4
GREY_BELOW = 0.2       # saturation under which a pixel is binned by its brightness
HISTOGRAM = HUES * SATURATIONS + GREYS
BANDS = (0.0, 0.15, 0.55, 0.9, 1.0)  # head, torso, legs, feet: shares of her height
FEATURES = (len(BANDS) - 1) * (HISTOGRAM + 3)
MIN_PIXELS = 8
MODEL = Path(__file__).with_name("assets") / "appearance.npz"


def hsv(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 RGB -> (..., 3) float HSV in [0, 1]."""
    return rgb_to_hsv(np.asarray(rgb, np.float32) / 255.0)


def _histogram(pixels: np.ndarray) -> np.ndarray:
    """(N, 3) HSV pixels -> (HISTOGRAM,) summing to 1 (zeros for no pixels)."""
    h, s, v = pixels.T
    colourful = s >= GREY_BELOW
    hue = np.minimum((h * HUES).astype(int), HUES - 1)
    sat = np.minimum(((s - GREY_BELOW) / (1 - GREY_BELOW) * SATURATIONS).astype(int),
                     SATURATIONS - 1)
    grey = np.minimum((v * GREYS).astype(int), GREYS - 1)
    bins = np.where(colourful, hue * SATURATIONS + sat, HUES * SATURATIONS + grey)
    counts = np.bincount(bins, minlength=HISTOGRAM).astype(np.float32)
    return counts / max(counts.sum(), 1.0)


def features(pixels: np.ndarray, rows: np.ndarray) -> np.ndarray | None:
    """A person's raw features (FEATURES,) from their pixels' colours (N, 3) uint8 RGB and
    image rows (N,), or None when they have too few pixels to say."""
    if len(rows) < MIN_PIXELS:
        return None
    rows = np.asarray(rows, np.float32)
    top, height = rows.min(), max(float(np.ptp(rows)), 1.0)
    share = (rows - top) / height
    colours = hsv(pixels)
    rgb = np.asarray(pixels, np.float32) / 255.0
    out = []
    for lo, hi in zip(BANDS[:-1], BANDS[1:], strict=True):
        inside = (share >= lo) & ((share < hi) | (hi == BANDS[-1]))
        mean = rgb[inside].mean(axis=0) if inside.any() else rgb.mean(axis=0)
        out += [_histogram(colours[inside]), mean]
    return np.concatenate(out).astype(np.float32)


@dataclass(frozen=True)
class Appearance:
    """The learned projection: ``embed(features) = (features - mean) @ projection``."""

    mean: np.ndarray        # (FEATURES,)
    projection: np.ndarray  # (FEATURES, k)

    @property
    def dims(self) -> int:
        return self.projection.shape[1]

    def embed(self, raw: np.ndarray) -> np.ndarray:
        return ((np.asarray(raw, np.float32) - self.mean) @ self.projection).astype(np.float32)

    def save(self, path: Path) -> None:
        from followme.atomic import write_atomic

        def write(f) -> None:
            np.savez(f, mean=self.mean, projection=self.projection)

        write_atomic(path, write)

    @classmethod
    def load(cls, path: Path) -> Appearance:
        try:
            with np.load(path) as z:
                mean, projection = z["mean"], z["projection"]
        except (OSError, KeyError, ValueError) as e:
            raise ValueError(f"{path}: not an appearance model ({e})") from e
        if mean.shape != (FEATURES,) or projection.ndim != 2 or \
                projection.shape[0] != FEATURES:
            raise ValueError(f"{path}: an appearance model for {mean.shape[0]} features, not "
                             f"{FEATURES}")
        return cls(mean.astype(np.float32), projection.astype(np.float32))


def fit(raw: np.ndarray, identity: np.ndarray, dims: int = 16, shrink: float = 0.01
        ) -> Appearance:
    """Linear discriminant analysis of raw features (N, FEATURES) of people ``identity`` (N,):
    the ``dims`` directions that best part people from each other against the scatter of each
    person's own crops, scaled so that this scatter is 1 along each. ``shrink``: the share of
    each feature's own variance added to it (and a millionth of the mean variance, for
    features that never vary), so that no direction is trusted for a scatter never seen."""
    raw = np.asarray(raw, np.float64)
    ids, index = np.unique(identity, return_inverse=True)
    if len(ids) < 2:
        raise ValueError("fitting an appearance needs crops of at least 2 people")
    mean = raw.mean(axis=0)
    centres = np.stack([raw[index == k].mean(axis=0) for k in range(len(ids))])
    within = raw - centres[index]
    sw = within.T @ within / max(len(raw) - len(ids), 1)
    sw += np.diag(shrink * np.diag(sw) + 1e-6 * np.trace(sw) / len(sw))
    counts = np.bincount(index).astype(np.float64)
    between = (centres - mean) * np.sqrt(counts)[:, None]
    sb = between.T @ between / len(raw)
    values, vectors = eigh(sb, sw)  # vectors.T @ sw @ vectors = I
    keep = vectors[:, ::-1][:, :min(dims, len(ids) - 1)]
    return Appearance(mean.astype(np.float32), keep.astype(np.float32))


@lru_cache(maxsize=1)
def shipped() -> Appearance | None:
    """The shipped appearance model, or None where it is missing."""
    return Appearance.load(MODEL) if MODEL.is_file() else None


def similarity(look: np.ndarray, crop: np.ndarray) -> float:
    """How much a crop looks like her averaged look, 1 alike to 0: the chance that a crop of
    her lies at least this far from her mean in the embedding (chi-square, one degree of
    freedom an axis)."""
    d2 = float(np.sum((np.asarray(look, np.float64) - np.asarray(crop, np.float64)) ** 2))
    return float(chi2.sf(d2, len(look)))
