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

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy.cluster.vq import kmeans2, vq

from followme.follower.appearance import describe
from followme.follower.geometry import Camera, Pose


@dataclass(frozen=True)
class Target:
    """The hero in one frame."""

    world: tuple[float, float, float]  # ROS world frame, metres
    pixel: tuple[float, float]  # (row, col) her centroid, in the mask's coordinates
    depth: float  # metres, her median
    pixels: int  # hero pixels in the mask
    off_centre: float = 0.0  # her pixel's distance from the image centre, in image sizes
    appearance: np.ndarray | None = field(default=None, compare=False)  # appearance.describe


def onto_grid(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of a (h, w) bool mask onto a (height, width) grid."""
    h, w = mask.shape
    rows = ((np.arange(height) + 0.5) * h / height).astype(int)
    cols = ((np.arange(width) + 0.5) * w / width).astype(int)
    return mask[np.ix_(rows, cols)]


def groups(mask: np.ndarray, join: int) -> list[np.ndarray]:
    """(H, W) bool -> the groups of its pixels, (H, W) bool each, largest first, where pixels
    less than ``2 * join`` pixels apart (4-connected after ``join`` dilations) are one group."""
    labels, n = ndimage.label(ndimage.binary_dilation(mask, iterations=join) if join else mask)
    sizes = np.bincount(labels[mask], minlength=n + 1)
    return [mask & (labels == k) for k in np.argsort(-sizes[1:], kind="stable") + 1
            if sizes[k] > 0]


def largest_group(mask: np.ndarray, join: int) -> np.ndarray:
    """(H, W) bool -> (H, W) bool: the largest of ``groups``."""
    found = groups(mask, join)
    return found[0] if found else mask & False


def spread(points: np.ndarray) -> float:
    """How far (N, 2) ground points spread, m: the larger of their x and y 10-90 percentile
    ranges."""
    lo, hi = np.percentile(points, [10, 90], axis=0)
    return float((hi - lo).max())


def apart_on_the_ground(rows: np.ndarray, cols: np.ndarray, depth: np.ndarray, gimbal: Pose,
                        camera: Camera, least: int, one_person: float = 1.2,
                        per_metre: float = 0.03, sample: int = 300) -> list[np.ndarray]:
    """One group's pixels (rows, cols on the depth grid) -> the indices of each person's, into
    rows and cols. Placed in the world by their depth, one person's pixels stand within about a
    metre on the ground (her body, and the 0.39 m steps of QuadSim's 8-bit depth). A group that
    spreads wider than ``one_person`` m plus ``per_metre`` of its depth (``spread``; a pixel
    covers more ground further off) is people side by side in the image, one behind the other:
    it is cut in two by 2-means on the ground (fitted on at most ``sample`` of its pixels), and
    each part again, into parts of at least ``least`` pixels. When it is cut, pixels without a
    depth go with no part."""
    everyone = [np.arange(len(rows))]
    values = depth[rows, cols]
    valid = np.nonzero(np.isfinite(values))[0]
    if len(valid) < 2 * least:
        return everyone
    ground = gimbal.to_world(camera.back_project(rows[valid], cols[valid], values[valid],
                                                 *depth.shape))[:, :2]
    one_person += per_metre * float(np.median(values[valid]))
    parts, todo = [], [np.arange(len(valid))]
    while todo:
        idx = todo.pop()
        few = idx[::max(1, len(idx) // sample)]
        if len(parts) + len(todo) < 4 and len(idx) >= 2 * least and \
                spread(ground[few]) > one_person:
            halves = _halve(ground, idx, few, least)
            if halves is not None:
                todo += halves
                continue
        parts.append(idx)
    return everyone if len(parts) == 1 else [valid[idx] for idx in parts]


def _halve(ground: np.ndarray, idx: np.ndarray, few: np.ndarray, least: int,
           tries: int = 3) -> list[np.ndarray] | None:
    """The best of ``tries`` 2-means cuts of ``ground[idx]`` (fitted on ``ground[few]``) whose
    halves both have ``least`` points, or None when none has: a stray point alone is no
    person."""
    best, best_cost = None, np.inf
    for seed in range(tries):
        centres, _ = kmeans2(ground[few], 2, minit="++", seed=seed)
        side, distance = vq(ground[idx], centres)
        halves = [idx[side == k] for k in (0, 1)]
        cost = float(distance.sum())
        if min(len(h) for h in halves) >= least and cost < best_cost:
            best, best_cost = halves, cost
    return best


def locate_people(mask: np.ndarray, depth: np.ndarray, gimbal: Pose, camera: Camera,
                  min_pixels: int = 10, join: int = 3, band: float = 0.75,
                  rgb: np.ndarray | None = None, part_share: float = 0.15) -> list[Target]:
    """Everyone the mask could be, largest first: none when the mask has no more than
    ``min_pixels``. Each group of mask pixels (``groups``) is split into the people who stand
    apart on the ground (``apart_on_the_ground``, parts of at least ``part_share`` of the
    group), and each is placed in the world; beyond the largest, only those of more than
    ``min_pixels`` count, and those without a valid depth are left out.

    mask: (h, w) bool hero mask at the model's size. depth: (H, W) float metres with NaN where
    invalid (``Camera.depth_metres``), at the camera image's size. rgb: the camera image
    (H', W', 3), to describe each one's appearance.
    """
    if int(mask.sum()) <= min_pixels:
        return []
    h, w = mask.shape
    height, width = depth.shape
    scale = h * w / (height * width)    # mask pixels per depth pixel
    found = []
    for group in groups(mask, join):
        rows, cols = np.nonzero(onto_grid(group, height, width))
        parts = apart_on_the_ground(rows, cols, depth, gimbal, camera,
                                    max(1, int(part_share * len(rows))))
        for part in parts:
            pixels = int(round(len(part) * scale)) if len(parts) > 1 else int(group.sum())
            if found and pixels <= min_pixels:
                continue
            target = _place(rows[part], cols[part], pixels, depth, gimbal, camera, band, rgb,
                            (h, w))
            if target is not None:
                found.append(target)
    return sorted(found, key=lambda t: -t.pixels)


def locate_hero(mask: np.ndarray, depth: np.ndarray, gimbal: Pose, camera: Camera,
                min_pixels: int = 10, join: int = 3, band: float = 0.75) -> Target | None:
    """The largest of ``locate_people``, or None when there is no hero or no valid depth on
    her."""
    people = locate_people(mask, depth, gimbal, camera, min_pixels, join, band)
    return people[0] if people else None


def _place(rows: np.ndarray, cols: np.ndarray, pixels: int, depth: np.ndarray, gimbal: Pose,
           camera: Camera, band: float, rgb: np.ndarray | None, mask_shape: tuple[int, int]
           ) -> Target | None:
    """One person's pixels (rows, cols on the depth grid (H, W)) -> their Target, or None
    without a valid depth on them."""
    h, w = mask_shape
    height, width = depth.shape
    values = depth[rows, cols]
    if not np.isfinite(values).any():
        return None
    d = float(np.nanmedian(values))
    near = np.abs(values - d) <= band
    if not near.any():  # the median falls between two halves further apart than 2 band
        return None
    drow, dcol = float(rows[near].mean()), float(cols[near].mean())
    point = gimbal.to_world(camera.back_project(drow, dcol, d, height, width))
    if not np.all(np.isfinite(point)):
        return None
    world = (float(point[0]), float(point[1]), float(point[2]))
    # continuous coordinates scale between grids; pixel indices are theirs - 0.5
    pixel = ((drow + 0.5) * h / height - 0.5, (dcol + 0.5) * w / width - 0.5)
    off_centre = float(np.hypot((drow + 0.5) / height - 0.5, (dcol + 0.5) / width - 0.5))
    look = None
    if rgb is not None:
        r = (rows * rgb.shape[0]) // height
        c = (cols * rgb.shape[1]) // width
        look = describe(rgb[r, c], r)
    return Target(world, pixel, d, pixels, off_centre, look)
