"""Her range from the ground plane and her height, without a depth image."""

import math

import numpy as np

from followme.follower.geometry import Camera, Pose
from followme.follower.ranging import PERSON_HEIGHT, feet_range, ground_depth
from followme.follower.target import locate_hero

SIZE = 256


def _project(pose: Pose, camera: Camera, point) -> tuple[float, float, float]:
    """(row, col, planar depth) of a world point."""
    p = pose.rotation().T @ (np.asarray(point, float) - pose.position)
    f = camera.focal * SIZE
    return SIZE / 2 - f * p[2] / p[0] - 0.5, SIZE / 2 - f * p[1] / p[0] - 0.5, p[0]


def _person_mask(pose: Pose, camera: Camera, feet, height: float = PERSON_HEIGHT,
                 width: float = 0.5) -> np.ndarray:
    """The image rows and columns a standing box of ``height`` x ``width`` m covers."""
    mask = np.zeros((SIZE, SIZE), bool)
    feet = np.asarray(feet, float)
    for z in np.linspace(0, height, 60):
        for y in np.linspace(-width / 2, width / 2, 15):
            r, c, _ = _project(pose, camera, feet + [0.0, y, z])
            if 0 <= round(r) < SIZE and 0 <= round(c) < SIZE:
                mask[round(r), round(c)] = True
    from scipy import ndimage
    return ndimage.binary_closing(mask, iterations=2)


def test_her_range_from_the_ground_agrees_with_her_height_and_locates_her():
    camera = Camera()
    for pitch, distance in ((30.0, 12.0), (45.0, 8.0), (20.0, 20.0)):
        pose = Pose(0.0, 0.0, 6.0, 0.0, pitch, 15.0)
        yaw = math.radians(15.0)
        feet = np.array([distance * math.cos(yaw), distance * math.sin(yaw), 0.0])
        mask = _person_mask(pose, camera, feet)
        by_ground, by_height = feet_range(mask, pose, camera)
        true_depth = _project(pose, camera, feet)[2]
        assert abs(by_ground - true_depth) < 0.06 * true_depth, (pitch, by_ground, true_depth)
        assert abs(by_height - by_ground) < 0.15 * by_ground, (pitch, by_height, by_ground)
        target = locate_hero(mask, ground_depth(mask, pose, camera), pose, camera)
        assert target is not None
        error = np.linalg.norm(np.array(target.world)[:2] - feet[:2])
        assert error < 0.08 * distance, (pitch, error)


def test_no_range_when_her_height_disagrees_or_the_ray_misses_the_ground():
    camera = Camera()
    pose = Pose(0.0, 0.0, 6.0, 0.0, 40.0, 0.0)
    feet = np.array([7.0, 0.0, 0.0])
    giant = _person_mask(pose, camera, feet, height=4.0)  # a 4 m "person": a sign, a tree
    assert np.isnan(ground_depth(giant, pose, camera)).all()
    level = Pose(0.0, 0.0, 6.0, 0.0, -20.0, 0.0)  # looking up: no ground under any pixel
    blob = np.zeros((SIZE, SIZE), bool)
    blob[100:140, 120:130] = True
    assert feet_range(blob, level, camera) is None
