"""Her range without a depth camera: the ground under her feet, checked against her height.

A camera without depth (``--source camera:N``, a video) gives only her mask. Each group of
mask pixels (``target.groups``, she or someone in her colours) is ranged alone: her feet are
its lowest pixels; the ray through them meets the ground plane (flat, at
``ground_z`` in the world: home's height for a vehicle's local frame) at her. That distance is
checked against her height in pixels: a person ``PERSON_HEIGHT`` m tall standing there would
span a number of rows (her head projected through the camera's pose), and the range scales with
the ratio of that to what the mask shows; when the two disagree by more than ``tolerance``
(she stands on a slope or a step, her feet are hidden, the camera looks level) the frame gives no
range and she is not located. The result is a depth image for ``target.locate_people``: each
group's pixels at the planar depth of its feet, NaN elsewhere.
"""

from __future__ import annotations

import math

import numpy as np

from followme.follower.geometry import Camera, Pose
from followme.follower.target import groups

PERSON_HEIGHT = 1.7  # m


def feet_range(her: np.ndarray, pose: Pose, camera: Camera, ground_z: float = 0.0
               ) -> tuple[float, float] | None:
    """(planar depth of her feet by the ground plane, by her height in pixels) in metres, or
    None when her feet's ray does not go down to the ground. her: (h, w) bool, one group."""
    rows, cols = np.nonzero(her)
    if len(rows) == 0:
        return None
    h, w = her.shape
    bottom = float(rows.max())
    feet_col = float(cols[rows >= bottom - 1].mean())
    rotation = pose.rotation()
    ray = rotation @ camera.direction(bottom + 0.5, feet_col, h, w)  # x component 1
    if ray[2] >= -1e-6:
        return None
    by_ground = (ground_z - pose.z) / ray[2]  # the ray's x (forward) is 1: this is planar depth
    head = rotation.T @ (by_ground * ray + [0.0, 0.0, PERSON_HEIGHT])  # in the camera frame
    if head[0] <= 0:
        return None
    head_row = h / 2 - camera.focal * w * head[2] / head[0] - 0.5
    expected_tall = bottom + 0.5 - head_row
    seen_tall = bottom + 1.0 - float(rows.min())
    return by_ground, by_ground * expected_tall / seen_tall


def ground_depth(mask: np.ndarray, pose: Pose, camera: Camera, ground_z: float = 0.0,
                 tolerance: float = 0.5, join: int = 3) -> np.ndarray:
    """A depth image for ``locate_people`` from the mask alone: each group's pixels at its
    feet's planar depth, NaN elsewhere and over a group whose two ranges disagree by more than
    ``tolerance`` (a fraction of the ground range)."""
    depth = np.full(mask.shape, np.nan, np.float32)
    for group in groups(mask, join):
        ranges = feet_range(group, pose, camera, ground_z)
        if ranges is None:
            continue
        by_ground, by_height = ranges
        if math.isfinite(by_ground) and by_ground > 0 and \
                abs(by_height - by_ground) <= tolerance * by_ground:
            depth[group] = by_ground
    return depth
