"""``--viz``: the latest camera frame with the predicted hero tinted, written as a PNG that an image
viewer can keep reloading (``feh --reload 0.2 FILE``, ``eog FILE``)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from followme.atomic import write_atomic
from followme.labels import HERO
from followme.segment.predict import overlay


def hero_centroid(hero: np.ndarray, min_pixels: int = 10) -> tuple[float, float] | None:
    """(row, col) centroid of the largest connected hero blob, or None when the hero has
    ``min_pixels`` or fewer pixels. hero: (H, W) bool."""
    if int(hero.sum()) <= min_pixels:
        return None
    blobs, _ = ndimage.label(hero)
    sizes = np.bincount(blobs.ravel())[1:]
    largest = int(sizes.argmax()) + 1
    r, c = ndimage.center_of_mass(blobs == largest)
    return float(r), float(c)


def mask_overlay(rgb: np.ndarray, mask: np.ndarray,
                 centroid: tuple[float, float] | None = None) -> np.ndarray:
    """(S, S, 3) frame and an (s, s) hero mask -> the frame with the hero tinted blue (the
    ``followme predict --overlay`` colours) and a white cross on the centroid (mask pixels)."""
    size = rgb.shape[0]
    hero = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(
        (rgb.shape[1], size), Image.NEAREST))
    prediction = np.zeros(rgb.shape, np.uint8)
    prediction[..., HERO] = hero
    out = overlay(rgb, prediction)
    if centroid is not None:
        r = int((centroid[0] + 0.5) * size / mask.shape[0])
        c = int((centroid[1] + 0.5) * rgb.shape[1] / mask.shape[1])
        out[max(r - 6, 0):r + 7, min(max(c, 0), rgb.shape[1] - 1)] = 255
        out[min(max(r, 0), size - 1), max(c - 6, 0):c + 7] = 255
    return out


class OverlayWriter:
    """Writes ``path`` atomically, at most ``max_hz`` times a second (PNG encoding costs a few
    milliseconds of the worker's time)."""

    def __init__(self, path: str | Path, max_hz: float = 10.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.min_interval = 1.0 / max_hz
        self._last = -float("inf")

    def write(self, rgb: np.ndarray, mask: np.ndarray,
              centroid: tuple[float, float] | None) -> bool:
        now = time.monotonic()
        if now - self._last < self.min_interval:
            return False
        self._last = now
        image = Image.fromarray(mask_overlay(rgb, mask, centroid))
        write_atomic(self.path, lambda f: image.save(f, "PNG"), durable=False)
        return True
