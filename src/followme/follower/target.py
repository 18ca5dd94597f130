"""Hero mask + depth image + gimbal pose -> the hero's position in the world.

1. The hero is present when the mask has more than ``min_pixels`` pixels.
2. Its pixel is the centroid of the largest connected blob (``scipy.ndimage``), as
   ``followme.inference.hero_centroid`` computes it.
3. Its depth is the depth image at that pixel (the mask is scaled onto the depth image's grid);
   when that pixel is invalid (0 or 255), or is not on the blob (a blob shaped like a C has its
   centroid off the body), it is the median of the valid depths over the blob.
4. The pixel and depth are back-projected with ``geometry.Camera`` and moved into the world by the
   gimbal pose.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from followme.follower.geometry import Camera, Pose


@dataclass(frozen=True)
class Target:
    """The hero in one frame."""

    world: tuple[float, float, float]  # ROS world frame, metres
    pixel: tuple[float, float]  # (row, col) centroid in the mask
    depth: float  # metres
    depth_from: str  # "centroid" or "blob median"
    pixels: int  # hero pixels in the mask


def largest_blob(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool -> the largest 4-connected blob (scipy's default structure), as
    ``followme.inference.hero_centroid`` finds it."""
    blobs, n = ndimage.label(mask)
    if n <= 1:
        return blobs == 1
    sizes = np.bincount(blobs.ravel())[1:]
    return blobs == int(sizes.argmax()) + 1


def _onto_grid(blob: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of a (h, w) bool blob onto a (height, width) grid."""
    h, w = blob.shape
    rows = ((np.arange(height) + 0.5) * h / height).astype(int)
    cols = ((np.arange(width) + 0.5) * w / width).astype(int)
    return blob[np.ix_(rows, cols)]


def locate_hero(mask: np.ndarray, depth: np.ndarray, gimbal: Pose, camera: Camera,
                min_pixels: int = 10) -> Target | None:
    """The hero's world position, or None when there is no hero or no valid depth on it.

    mask: (h, w) bool hero mask at the model's size. depth: (H, W) float metres with NaN where
    invalid (``Camera.depth_metres``), at the camera image's size.
    """
    pixels = int(mask.sum())
    if pixels <= min_pixels:
        return None
    blob = largest_blob(mask)
    row, col = ndimage.center_of_mass(blob)
    h, w = mask.shape
    height, width = depth.shape
    # the centroid on the depth image's grid: continuous coordinates scale, indices are -0.5
    drow = (row + 0.5) * height / h - 0.5
    dcol = (col + 0.5) * width / w - 0.5
    ri = min(max(int(round(drow)), 0), height - 1)
    ci = min(max(int(round(dcol)), 0), width - 1)
    on_blob = bool(blob[min(int(round(row)), h - 1), min(int(round(col)), w - 1)])
    d = float(depth[ri, ci])
    source = "centroid"
    if not (on_blob and math.isfinite(d)):
        values = depth[_onto_grid(blob, height, width)]
        values = values[np.isfinite(values)]
        if values.size == 0:
            return None
        d, source = float(np.median(values)), "blob median"
    point = gimbal.to_world(camera.back_project(drow, dcol, d, height, width))
    if not np.all(np.isfinite(point)):
        return None
    world = (float(point[0]), float(point[1]), float(point[2]))
    return Target(world, (float(row), float(col)), d, source, pixels)
