"""The follower's geometry: QuadSim's pose strings and Euler angles, the pinhole, the depth
fallbacks, and hero positions recovered from synthetic frames with the segmentation injected."""

import itertools
import math

import numpy as np
import pytest

from follower_helpers import (
    SIZE,
    ColourSegmenter,
    QuadSimCamera,
    disk,
    quadsim_pose,
    synthetic_frame,
    unity_rotation,
)
from followme.follower.config import FollowConfig
from followme.follower.geometry import Camera, Pose, parse_pose, rotation_rpy
from followme.follower.pipeline import FramePipeline
from followme.follower.quadsim.protocol import camera_frame, parse_sensor_frame
from followme.follower.target import largest_group, locate_hero, onto_grid


@pytest.mark.parametrize("euler", [(0, 0, 0), (30, 0, 0), (0, 90, 0), (0, -135, 0), (0, 0, 10),
                                   (20, -60, 5), (-15, 200, -30), (45, 300, 0)])
def test_rotation_is_quadsims_unity_rotation(euler):
    """QuadSim sends ToRos(-eulerAngles) of a Unity rotation; rotation_rpy of those three numbers
    must be the same rotation, expressed in ROS axes."""
    cam = QuadSimCamera((0, 0, 0), euler)
    pose = parse_pose(quadsim_pose((0, 0, 0), euler))
    np.testing.assert_allclose(pose.rotation(), cam.rotation_ros(), atol=1e-4)


def test_rotation_conventions_by_hand():
    forward = np.array([1.0, 0, 0])
    np.testing.assert_allclose(rotation_rpy(0, 0, 90) @ forward, [0, 1, 0], atol=1e-12)  # left
    np.testing.assert_allclose(rotation_rpy(0, 90, 0) @ forward, [0, 0, -1], atol=1e-12)  # down
    np.testing.assert_allclose(rotation_rpy(90, 0, 0) @ [0, 1.0, 0], [0, 0, 1], atol=1e-12)
    r = rotation_rpy(10, 20, 30)
    np.testing.assert_allclose(r, rotation_rpy(0, 0, 30) @ rotation_rpy(0, 20, 0)
                               @ rotation_rpy(10, 0, 0), atol=1e-12)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(r) == pytest.approx(1.0)


def test_quadsim_camera_is_the_default():
    """QuadSim's prefab: 60 degree vertical field of view, 100 m far clip plane."""
    cam = Camera()
    assert math.degrees(2 * math.atan(0.5 / cam.focal)) == pytest.approx(60.0)
    assert cam.focal * 256 == pytest.approx(221.70, abs=0.01) and cam.depth_max == 100.0
    edge = cam.back_project(SIZE / 2 - 0.5, SIZE - 0.5, 1.0, SIZE, SIZE)  # right edge, centred
    assert math.degrees(math.atan2(-edge[1], edge[0])) == pytest.approx(30.0, abs=0.2)


def test_pinhole_axes():
    cam = Camera(focal=1.0)
    h = w = SIZE
    c = SIZE / 2 - 0.5  # the index of the image centre
    np.testing.assert_allclose(cam.back_project(c, c, 10, h, w), [10, 0, 0])
    right = cam.back_project(c, c + 25.6, 10, h, w)  # right of centre -> negative y (left)
    np.testing.assert_allclose(right, [10, -1.0, 0], atol=1e-12)
    above = cam.back_project(c - 25.6, c, 10, h, w)  # above centre -> positive z (up)
    np.testing.assert_allclose(above, [10, 0, 1.0], atol=1e-12)
    # fx = focal * width: the result does not depend on the image size, only on the fraction
    np.testing.assert_allclose(cam.back_project(79.5, 79.5 + 16, 10, 160, 160), right)


def test_range_depth_is_the_distance_along_the_ray():
    cam = Camera(depth_kind="range")
    p = cam.back_project(30, 200, 12.0, SIZE, SIZE)
    assert np.linalg.norm(p) == pytest.approx(12.0)
    planar = Camera().back_project(30, 200, 12.0, SIZE, SIZE)
    np.testing.assert_allclose(p / np.linalg.norm(p), planar / np.linalg.norm(planar))


def test_course_pixel_axes_reproduce_the_course_formula():
    """follower.py: x = (row - c) d / f, y = (col - c) d / f, point = [d, -x, y]."""
    cam = Camera(pixel_axes="course", focal=1.0)  # follower.py: fx = the image size
    row, col, d = 40.5, 200.5, 8.0
    c, f = SIZE / 2, SIZE
    expected = [d, -((row + 0.5) - c) * d / f, ((col + 0.5) - c) * d / f]
    np.testing.assert_allclose(cam.back_project(row, col, d, SIZE, SIZE), expected)
    assert not np.allclose(Camera(focal=1.0).back_project(row, col, d, SIZE, SIZE), expected)


@pytest.mark.parametrize("text,expected", [
    ("1,2,3,4,5,6", (1, 2, 3, 4, 5, 6)),
    ("1.5000,-2.2500,3.0000,0.0000,-30.0000,-90.0000", (1.5, -2.25, 3, 0, -30, -90)),
    # C# "N4" in the invariant culture: thousands separators collide with the field separator
    ("1,234.5000,-12,345.2500,3.0000,0.0000,-0.0000,-270.0000",
     (1234.5, -12345.25, 3, 0, 0, 90)),
    # "N4" with a decimal comma (and dots for thousands)
    ("1.234,5000,-2,2500,3,0000,0,0000,-30,0000,-190,0000", (1234.5, -2.25, 3, 0, -30, 170)),
    (" 1 , 2 , 3 , 4 , 5 , 6 ", (1, 2, 3, 4, 5, 6)),
])
def test_parse_pose(text, expected):
    p = parse_pose(text)
    assert (p.x, p.y, p.z, p.roll, p.pitch, p.yaw) == pytest.approx(expected)


def test_angles_below_minus_180_are_wrapped_as_the_course_did():
    p = parse_pose("0,0,0,-359,-181,-180")
    assert (p.roll, p.pitch, p.yaw) == (1, 179, -180)


@pytest.mark.parametrize("text", ["", "1,2,3,4,5", "1,2,3,4,5,6,7", "a,b,c,d,e,f",
                                  "1,2,3,4,5,nan", "1,2,3,inf,5,6", "1;2;3;4;5;6",
                                  "1,234.5,2,3,4,5,6"])
def test_bad_poses_are_refused(text):
    with pytest.raises(ValueError):
        parse_pose(text)


# --- hero positions recovered from synthetic frames ---

POSES = [  # (camera position in the ROS world, Unity Euler angles of the camera)
    ((0, 0, 10), (45, 0, 0)),  # looking down at 45 degrees
    ((5, -3, 20), (60, 90, 0)),  # higher, steeper, turned right
    ((-12, 40, 6), (20, -135, 0)),
    ((100, 200, 15), (35, 30, 8)),  # a little roll
    ((1234.5, -2345.25, 12), (30, 200, 0)),  # thousands separators in the pose string
    ((0, 0, 2), (0, 0, 0)),  # level, looking straight ahead
]
PIXELS = [(128, 128), (90, 170), (170, 60), (60, 60)]


def _hero_on_ground_or_ahead(cam: QuadSimCamera, row: float, col: float) -> np.ndarray:
    """The world point at pixel (row, col): on the ground (z = 0) when the ray goes down, else 15
    m ahead."""
    ray = cam.point_at(row, col, 1.0) - cam.position
    depth = -cam.position[2] / ray[2] if ray[2] < -0.05 else 15.0
    return cam.point_at(row, col, min(depth, 40.0))


@pytest.mark.parametrize("position,euler", POSES)
def test_coords_within_25cm_at_several_gimbal_poses(position, euler):
    cam = QuadSimCamera(position, euler)
    pipeline = FramePipeline(ColourSegmenter(160), FollowConfig())
    for row, col in PIXELS:
        hero = _hero_on_ground_or_ahead(cam, row, col)
        r, c, depth = cam.project(hero)
        assert abs(r - row) < 1e-6 and abs(c - col) < 1e-6 and depth > 0
        frame = camera_frame(parse_sensor_frame(synthetic_frame(cam, hero)))
        target = pipeline(frame).target
        assert target is not None, (row, col)
        error = np.linalg.norm(np.array(target.world) - hero)
        assert error < 0.25, f"pixel {(row, col)} depth {depth:.1f} m: off by {error:.3f} m"


def test_an_invalid_depth_at_the_centroid_is_ignored():
    cam = QuadSimCamera((0, 0, 10), (45, 30, 0))
    hero = cam.point_at(100, 140, 13.0)
    frame = camera_frame(parse_sensor_frame(synthetic_frame(cam, hero, radius=8, hole=2.5)))
    target = FramePipeline(ColourSegmenter(160), FollowConfig())(frame).target
    assert target is not None
    assert np.linalg.norm(np.array(target.world) - hero) < 0.25


def test_a_centroid_off_the_blob_uses_the_blob_median():
    """A ring-shaped blob: its centroid is in the hole, where the depth is the background's."""
    size = 64
    mask = disk(size, 30, 30, 10) & ~disk(size, 30, 30, 6)
    depth = np.full((SIZE, SIZE), 40.0, np.float32)
    depth[disk(SIZE, 30 * 4 + 1.5, 30 * 4 + 1.5, 42)] = 12.0
    depth[disk(SIZE, 30 * 4 + 1.5, 30 * 4 + 1.5, 22)] = 40.0  # the hole shows the background
    target = locate_hero(mask, depth, Pose(0, 0, 0, 0, 0, 0), Camera())
    assert target.depth == pytest.approx(12.0)


def test_a_gap_in_the_depth_at_the_centroid_does_not_move_the_hero():
    """The centroid pixel is on the blob, but its depth is the ground seen between her legs."""
    mask = disk(64, 30, 30, 10)
    depth = np.full((SIZE, SIZE), 40.0, np.float32)
    depth[disk(SIZE, 30 * 4 + 1.5, 30 * 4 + 1.5, 40)] = 12.0
    depth[:, 30 * 4 - 2:30 * 4 + 4] = 19.0
    target = locate_hero(mask, depth, Pose(0, 0, 0, 0, 0, 0), Camera())
    assert target.depth == pytest.approx(12.0)


def test_largest_group_joins_pieces_closer_than_twice_join():
    mask = np.zeros((40, 40), bool)
    mask[5:15, 5:8] = True      # 30 px: a torso ...
    mask[5:15, 11:13] = True    # ... an arm 3 px away (20 px) ...
    mask[30:40, 30:35] = True   # ... and 50 px far from both
    torso_and_arm = mask.copy()
    torso_and_arm[30:40, 30:35] = False
    assert (largest_group(mask, join=2) == torso_and_arm).all()
    assert (largest_group(mask, join=0) == mask & ~torso_and_arm).all()


def test_the_centroid_of_a_body_in_pieces_is_the_whole_body_s():
    """Legs apart from the torso in the mask: her pixel is the middle of all of her."""
    depth = np.full((SIZE, SIZE), 10.0)
    mask = np.zeros((160, 160), bool)
    mask[40:80, 70:90] = True       # torso, 800 px
    mask[82:120, 72:78] = True      # legs, 2 px below it, 228 px each
    mask[82:120, 82:88] = True
    target = locate_hero(mask, depth, Pose(0, 0, 0, 0, 0, 0), Camera())
    rows = np.nonzero(mask)[0]
    assert target.pixel[0] == pytest.approx(rows.mean(), abs=0.5)
    assert target.pixel[0] - 59.5 > 10    # the torso alone is centred on row 59.5


def test_a_passer_by_merged_into_the_mask_does_not_move_the_hero():
    """The mask joins her body (12 m) with a smaller red-brown head in front of her (8 m): her
    position is her body's, not a blend of both."""
    cam = QuadSimCamera((0, 0, 10), (45, 30, 0))
    hero = cam.point_at(100, 140, 12.0)
    body = disk(SIZE, 100, 140, 14)
    head = disk(SIZE, 100, 162, 11) & ~body
    depth = np.full((SIZE, SIZE), 45.0)
    depth[body], depth[head] = cam.project(hero)[2], 8.0
    mask = onto_grid(body | head, 160, 160)
    target = locate_hero(mask, depth, parse_pose(cam.gimbal_pose), Camera())
    assert target.depth == pytest.approx(cam.project(hero)[2], abs=0.05)
    assert np.linalg.norm(np.array(target.world) - hero) < 0.25


def test_the_largest_part_and_min_pixels():
    mask = np.zeros((64, 64), bool)
    mask[5:8, 5:8] = True  # 9 px
    depth = np.full((SIZE, SIZE), 10.0, np.float32)
    gimbal = Pose(0, 0, 0, 0, 0, 0)
    assert locate_hero(mask, depth, gimbal, Camera(), min_pixels=10) is None
    mask[40:50, 40:44] = True  # 40 px, the largest
    target = locate_hero(mask, depth, gimbal, Camera(), min_pixels=10)
    assert target.pixel == (44.5, 41.5) and target.pixels == 40  # its own pixels
    assert locate_hero(mask, depth, gimbal, Camera(), min_pixels=49) is None


def test_no_valid_depth_on_the_hero_is_no_target():
    mask = np.zeros((64, 64), bool)
    mask[20:40, 20:30] = True
    depth = np.full((SIZE, SIZE), np.nan, np.float32)
    assert locate_hero(mask, depth, Pose(0, 0, 0, 0, 0, 0), Camera()) is None


def test_depth_channel_decoding():
    cam = Camera()  # 255 = 100 m, QuadSim's far clip plane
    d = cam.depth_metres(np.array([[0, 1, 51, 254, 255]], np.uint8))
    assert math.isnan(d[0, 0]) and math.isnan(d[0, 4])  # nothing drawn / the sky
    np.testing.assert_allclose(d[0, 1:4], [100 / 255, 20.0, 254 * 100 / 255], rtol=1e-6)
    assert Camera(depth_max=50).depth_metres(np.array([[51]], np.uint8))[0, 0] == \
        pytest.approx(10.0)  # the course follower.py's reading


def test_every_pixel_of_a_level_camera_round_trips():
    cam = QuadSimCamera((3, 4, 5), (10, 20, 3))
    gimbal = parse_pose(cam.gimbal_pose)
    model = Camera()
    for row, col in itertools.product((0, 64.25, 127.5, 255), (0, 99.75, 255)):
        point = gimbal.to_world(model.back_project(row, col, 7.5, SIZE, SIZE))
        r, c, d = cam.project(point)
        assert (r, c, d) == pytest.approx((row, col, 7.5), abs=1e-3)


def test_unity_rotation_helper_matches_unity_conventions():
    """Positive x pitches the nose down, positive y turns right, positive z rolls the right side
    up (Unity is left-handed: x right, y up, z forward)."""
    fwd = np.array([0, 0, 1.0])
    assert (unity_rotation(30, 0, 0) @ fwd)[1] < 0
    assert (unity_rotation(0, 30, 0) @ fwd)[0] > 0
    assert (unity_rotation(0, 0, 30) @ np.array([1.0, 0, 0]))[1] > 0
