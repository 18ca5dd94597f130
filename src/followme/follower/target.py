"""Hero mask + depth image + gimbal pose -> the hero's position in the world.

1. The hero is present when the mask has more than ``min_pixels`` pixels.
2. Her pixels are the largest group of mask pixels, where pixels less than ``2 * join`` mask
   pixels apart belong to one group: a mask of a person comes in pieces (thin limbs, the sim
   humanoid's separate capsules), and the largest piece alone (the torso) leaves her centroid
   off. Scaled onto the depth image's grid.
3. Her depth is the median of the valid depths (not 0 or 255) over them: not the depth at one
   pixel, which can fall off the body (a blob shaped like a C), on a gap between limbs, or on a
   person who stands in front of her.
4. Her pixel is the centroid of those within ``band`` m of that depth: what the segmentation
   wrongly joined to her (the red-brown hair of a passer-by in front of her) does not pull it.
5. The pixel and depth are back-projected with ``geometry.Camera`` and moved into the world by the
   gimbal pose.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from followme.follower.geometry import Camera, Pose


@dataclass(frozen=True)
class Target:
    """The hero in one frame."""

    world: tuple[float, float, float]  # ROS world frame, metres
    pixel: tuple[float, float]  # (row, col) her centroid, in the mask's coordinates
    depth: float  # metres, her median
    pixels: int  # hero pixels in the mask


def onto_grid(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of a (h, w) bool mask onto a (height, width) grid."""
    h, w = mask.shape
    rows = ((np.arange(height) + 0.5) * h / height).astype(int)
    cols = ((np.arange(width) + 0.5) * w / width).astype(int)
    return mask[np.ix_(rows, cols)]


def largest_group(mask: np.ndarray, join: int) -> np.ndarray:
    """(H, W) bool -> (H, W) bool: the group with the most mask pixels, where pixels less than
    ``2 * join`` pixels apart (4-connected after ``join`` dilations) are one group."""
    groups, n = ndimage.label(ndimage.binary_dilation(mask, iterations=join) if join else mask)
    if n <= 1:
        return mask & (groups == 1)
    return mask & (groups == int(np.bincount(groups[mask]).argmax()))


def locate_hero(mask: np.ndarray, depth: np.ndarray, gimbal: Pose, camera: Camera,
                min_pixels: int = 10, join: int = 3, band: float = 0.75) -> Target | None:
    """The hero's world position, or None when there is no hero or no valid depth on it.

    mask: (h, w) bool hero mask at the model's size. depth: (H, W) float metres with NaN where
    invalid (``Camera.depth_metres``), at the camera image's size.
    """
    pixels = int(mask.sum())
    if pixels <= min_pixels:
        return None
    h, w = mask.shape
    height, width = depth.shape
    her = onto_grid(largest_group(mask, join), height, width)
    values = depth[her]
    if not np.isfinite(values).any():
        return None
    d = float(np.nanmedian(values))
    rows, cols = np.nonzero(her & (np.abs(depth - d) <= band))
    drow, dcol = float(rows.mean()), float(cols.mean())
    point = gimbal.to_world(camera.back_project(drow, dcol, d, height, width))
    if not np.all(np.isfinite(point)):
        return None
    world = (float(point[0]), float(point[1]), float(point[2]))
    # continuous coordinates scale between grids; pixel indices are theirs - 0.5
    pixel = ((drow + 0.5) * h / height - 0.5, (dcol + 0.5) * w / width - 0.5)
    return Target(world, pixel, d, pixels)
