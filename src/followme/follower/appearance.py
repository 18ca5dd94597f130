"""What a person looks like, as one vector: hue-saturation histograms of the upper and the lower
half of their pixels (shirt, trousers), with the colourless pixels (black, grey, white) binned
by brightness instead of hue. ``similarity`` compares two such vectors, 1 alike to 0.

The tracker learns her vector from her own crops as it follows her (``tracking.py``): nothing
is downloaded, nothing is trained beforehand.
"""

from __future__ import annotations

import numpy as np
from matplotlib.colors import rgb_to_hsv

HUES, SATURATIONS, GREYS = 12, 3, 4
GREY_BELOW = 0.2       # saturation under which a pixel is binned by its brightness
HALF = HUES * SATURATIONS + GREYS


def hsv(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 RGB -> (..., 3) float HSV in [0, 1]."""
    return rgb_to_hsv(np.asarray(rgb, np.float32) / 255.0)


def _histogram(pixels: np.ndarray) -> np.ndarray:
    """(N, 3) HSV pixels -> (HALF,) summing to 1 (zeros for no pixels)."""
    h, s, v = pixels.T
    colourful = s >= GREY_BELOW
    hue = np.minimum((h * HUES).astype(int), HUES - 1)
    sat = np.minimum(((s - GREY_BELOW) / (1 - GREY_BELOW) * SATURATIONS).astype(int),
                     SATURATIONS - 1)
    grey = np.minimum((v * GREYS).astype(int), GREYS - 1)
    bins = np.where(colourful, hue * SATURATIONS + sat, HUES * SATURATIONS + grey)
    counts = np.bincount(bins, minlength=HALF).astype(np.float32)
    return counts / max(counts.sum(), 1.0)


def describe(pixels: np.ndarray, rows: np.ndarray) -> np.ndarray | None:
    """A person's vector (2 * HALF,) from their pixels' colours (N, 3) uint8 RGB and image rows
    (N,), or None when they have too few pixels to say."""
    if len(rows) < 8:
        return None
    upper = rows < np.median(rows)
    colours = hsv(pixels)
    return np.concatenate([_histogram(colours[upper]), _histogram(colours[~upper])])


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """The Bhattacharyya coefficient of each half, averaged: 1 for the same colours."""
    return float(np.sqrt(a * b).sum() / 2)
