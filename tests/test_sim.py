"""The simulated world: walk clip, rendering (RGB, depth, labels), quad, and ``sim record``."""

import json
import math

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("pybullet")  # the [sim] extra

from followme.data.check import folder_stats  # noqa: E402
from followme.follower.geometry import Pose, look_angles  # noqa: E402
from followme.labels import HERO  # noqa: E402
from followme.sim.camera import (  # noqa: E402
    DEPTH_MAX,
    FOCAL_PX,
    SIZE,
    encode_depth,
    project,
    render,
)
from followme.sim.motion import load_walk  # noqa: E402
from followme.sim.quad import PATROL_HEIGHT, Patrol, Quad, QuadLimits, patrol_route  # noqa: E402
from followme.sim.record import SUBSETS, grade_subset, record  # noqa: E402
from followme.sim.world import PERSONAL_SPACE, World  # noqa: E402

SMALL = {"n_people": 10, "size": 40.0, "px_per_m": 8.0}
RECORD = {"scenario_frames": 3, "people": (10, 10), "world_size": 40.0, "progress": False}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FOLLOWME_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
        w = World(seed=5, **SMALL)
        yield w
        w.close()


def hero_camera(world: World, ahead=3.5, left=0.5, up=1.5) -> tuple[Pose, np.ndarray]:
    """A camera ``ahead`` / ``left`` / ``up`` metres from the hero's chest in the hero's own
    frame (so over its path, clear of trees and buildings), aimed at the chest; returns
    (pose, chest)."""
    chest = world.hero.position3 + [0.0, 0.0, 1.0]
    c, s = math.cos(world.hero.heading), math.sin(world.hero.heading)
    eye = chest + np.array([ahead * c - left * s, ahead * s + left * c, up])
    pitch, yaw = look_angles(eye, chest)
    return Pose(*eye, roll=0.0, pitch=pitch, yaw=yaw), chest


# ---- the walk clip --------------------------------------------------------------------------

def test_walk_clip_is_z_up_on_the_spot_and_loops():
    clip = load_walk()
    assert 0.8 < clip.speed < 1.2 and 1.0 < clip.duration < 1.5
    start, end = clip.pose(0.0), clip.pose(clip.duration - 1e-6)
    assert 0.8 < start.root_position[2] < 0.9                     # the pelvis, z up
    assert np.abs(clip.root_position[:, :2]).max() < 0.1          # drift removed
    np.testing.assert_allclose(np.abs(start.spherical * end.spherical).sum(-1), 1, atol=1e-3)
    np.testing.assert_allclose(start.revolute, end.revolute, atol=1e-3)
    np.testing.assert_allclose(np.linalg.norm(clip.spherical, axis=-1), 1, atol=1e-6)


# ---- rendering ------------------------------------------------------------------------------

def test_hero_pixels_where_the_hero_is_in_view(world):
    pose, chest = hero_camera(world)
    frame = render(world, pose)
    assert frame.rgb.shape == (SIZE, SIZE, 3) and frame.rgb.dtype == np.uint8
    hero = frame.labels == HERO
    assert hero.sum() > 500
    row, col, _ = project(pose, chest)
    assert (row, col) == pytest.approx((SIZE / 2, SIZE / 2))
    assert hero[int(row), int(col)]
    rows, cols = np.nonzero(hero)
    assert abs(cols.mean() - col) < 10 and abs(rows.mean() - row) < 25
    # hero pixels are reddish, and nothing is labelled when the camera looks at the sky
    assert (frame.rgb[hero][:, 0] > frame.rgb[hero][:, 1:].max(1)).mean() > 0.6
    sky = render(world, Pose(0.0, 0.0, 60.0, roll=0.0, pitch=-90.0, yaw=0.0))
    assert (sky.labels == 0).all() and np.isinf(sky.depth).all()
    assert (encode_depth(sky.depth) == 255).all()  # QuadSim's sky: Linear01Depth = 1


def test_depth_at_the_hero_matches_the_distance(world):
    pose, chest = hero_camera(world)
    frame = render(world, pose)
    _, _, planar = project(pose, chest)
    depth = frame.depth[frame.labels == HERO]
    assert np.isfinite(depth).all()
    assert abs(float(np.median(depth)) - planar) < 0.5
    # QuadSim's encoding: channel 0 = depth / 100 m (the far clip plane) x 255
    encoded = encode_depth(frame.depth)[..., 0][frame.labels == HERO].astype(float)
    assert abs(np.median(encoded) * DEPTH_MAX / 255 - planar) < 0.5


def test_hero_pixel_back_projects_to_the_hero(world):
    """A hero pixel and its depth, through the pinhole of the camera docstring, land on the
    hero: the conventions that the follower relies on."""
    pose, chest = hero_camera(world, ahead=-3.0, left=-0.8, up=2.5)
    frame = render(world, pose)
    rows, cols = np.nonzero(frame.labels == HERO)
    r, c = int(np.median(rows)), int(np.median(cols))
    d = float(frame.depth[r, c])
    u, v = c + 0.5 - SIZE / 2, r + 0.5 - SIZE / 2
    in_camera = np.array([d, -u * d / FOCAL_PX, -v * d / FOCAL_PX])
    point = pose.position + pose.rotation() @ in_camera
    assert np.linalg.norm(point[:2] - chest[:2]) < 0.6
    assert 0.2 < point[2] < 1.8
    geometry = pytest.importorskip("followme.follower.geometry")
    parsed = geometry.parse_pose(pose.to_string())
    p2 = parsed.to_world(geometry.Camera().back_project(r, c, d, SIZE, SIZE))
    assert np.linalg.norm(p2 - point) < 0.05


def test_same_seed_same_frames_other_seed_differs(world, tmp_path):
    pose, _ = hero_camera(world)
    frames = []
    for seed in (5, 5, 6):
        with World(seed=seed, **SMALL) as w:
            for _ in range(3):
                w.step(0.2)
            frames.append(render(w, pose))
    a, b, c = frames
    np.testing.assert_array_equal(a.rgb, b.rgb)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.depth, b.depth)
    assert not np.array_equal(a.rgb, c.rgb)


def test_people_walk_along_the_paths():
    with World(seed=2, n_people=10, size=40.0, px_per_m=4.0) as w:
        start = [p.position.copy() for p in w.people]
        for _ in range(30):
            w.step(0.1)
        for walker, s in zip(w.people, start, strict=True):
            moved = np.linalg.norm(walker.position - s)
            assert 1.0 < moved <= walker.speed * 3.0 + 1e-6
            assert np.abs(walker.position).max() < w.size / 2
            assert w.distance_to_paths(walker.position) < w.path_width / 2 + 1.0


def test_people_pass_each_other_instead_of_walking_through():
    with World(seed=2, n_people=10, size=40.0, px_per_m=4.0) as w:
        a, b = w.people[0], w.people[1]
        ahead = np.array([math.cos(a.heading), math.sin(a.heading)])
        b.position = a.position + 1.5 * ahead   # head-on on a's way
        b.heading, b.node, b.previous = a.heading + math.pi, a.previous, a.node
        gaps = []
        for _ in range(30):
            w.step(0.1)
            gaps.append(np.linalg.norm(a.position - b.position))
        assert min(gaps) >= PERSONAL_SPACE - 1e-6
        assert (a.position - b.position) @ ahead > 0   # they have passed


# ---- poses and the quad (numpy only) ----------------------------------------------------------

def test_pose_strings_and_axes():
    pose = Pose(1.5, -2.25, 10.0, 0.0, 90.0, 30.0)
    # QuadSim's ranges: roll and yaw in (-360, 0], pitch in [0, 360)
    assert pose.to_string() == "1.5000,-2.2500,10.0000,0.0000,90.0000,-330.0000"
    back = Pose.from_string(pose.to_string())
    np.testing.assert_allclose(back.rotation(), pose.rotation(), atol=1e-12)
    tilted = Pose(0, 0, 5, 10.0, -20.0, -45.0)
    assert tilted.to_string() == "0.0000,0.0000,5.0000,-350.0000,340.0000,-45.0000"
    np.testing.assert_allclose(Pose.from_string(tilted.to_string()).rotation(),
                               tilted.rotation(), atol=1e-9)
    np.testing.assert_allclose(pose.rotation()[:, 0], [0, 0, -1], atol=1e-12)  # looks down
    pitch, yaw = look_angles([0, 0, 10], [10, 10, 0])
    assert yaw == pytest.approx(45.0) and pitch == pytest.approx(math.degrees(math.atan(
        10 / math.hypot(10, 10))))


def test_quad_respects_its_limits_and_arrives():
    limits = QuadLimits()
    quad = Quad(position=np.array([0.0, 0.0, 10.0]), limits=limits)
    dt, yaw_before = 0.05, quad.yaw
    target = np.array([30.0, -20.0, 5.0])
    for _ in range(400):
        v_before = quad.velocity.copy()
        quad.fly_towards(target, dt)
        assert np.hypot(*quad.velocity[:2]) <= limits.max_speed + 1e-6
        assert abs(quad.velocity[2]) <= limits.max_climb + 1e-6
        assert np.linalg.norm(quad.velocity - v_before) <= limits.max_accel * dt + 1e-6
        assert abs((quad.yaw - yaw_before + 180) % 360 - 180) <= limits.max_yaw_rate * dt + 1e-6
        yaw_before = quad.yaw
    assert np.linalg.norm(quad.position - target) < 0.5
    assert quad.yaw == pytest.approx(math.degrees(math.atan2(-20, 30)), abs=1.0)


def test_patrol_visits_its_waypoints_at_patrol_height():
    rng = np.random.default_rng(0)
    route = patrol_route(rng, rng.uniform(-20, 20, (9, 2)), n=4)
    assert ((route[:, 2] >= PATROL_HEIGHT[0]) & (route[:, 2] <= PATROL_HEIGHT[1])).all()
    quad = Quad(position=route[-1].copy())
    patrol = Patrol(route, camera_pitch=40.0)
    visited = set()
    for _ in range(3000):
        patrol.step(quad, 0.1)
        visited.add(patrol.index)
    assert visited == set(range(4))
    pose = quad.gimbal_pose()
    assert pose.pitch == pytest.approx(40.0) and pose.roll == 0.0


# ---- record -----------------------------------------------------------------------------------

def test_grade_subset_follows_validation_grade():
    labels = np.zeros((256, 256), np.uint8)
    assert grade_subset(labels) is None
    labels[:2, :2] = 1
    assert grade_subset(labels) == "patrol_non_targ"
    labels[10, :3] = 2
    assert grade_subset(labels) == "patrol_non_targ"
    labels[10, :4] = 2
    assert grade_subset(labels) == "patrol_with_targ"
    labels[20:60, :25] = 2
    assert grade_subset(labels) == "following_images"


def test_record_writes_robond_and_grading_layouts(tmp_path):
    out = tmp_path / "follow"
    summary = record(out, 3, mode="follow", seed=1, **RECORD)
    assert summary["written"] == {"all": 3}
    stats = folder_stats(out)
    assert stats["pairs"] == 3 and stats["image_size"] == [256, 256]
    assert stats["hero_present_share"] == 1.0
    poses = (out / "poses.tsv").read_text().splitlines()[1:]
    assert len(poses) == 3 and Pose.from_string(poses[0].split("\t")[3]).z > 1.0

    grade = tmp_path / "grade"
    summary = record(grade, 4, mode="mixed", seed=2, grade=True, depth=True, **RECORD)
    assert sum(summary["written"].values()) + summary["dropped"] == 4
    for subset in SUBSETS:
        assert (grade / subset / "images").is_dir() and (grade / subset / "masks").is_dir()
        n = summary["written"][subset]
        if n:
            assert folder_stats(grade / subset)["pairs"] == n
            depth = next((grade / subset / "depth").iterdir())
            assert np.asarray(Image.open(depth)).shape == (256, 256, 3)


def test_record_refuses_a_non_empty_folder_and_resumes(tmp_path):
    out = tmp_path / "rec"
    record(out, 4, mode="patrol", seed=3, **RECORD)
    with pytest.raises(FileExistsError, match="--resume"):
        record(out, 6, mode="patrol", seed=3, **RECORD)
    with pytest.raises(ValueError, match="seed"):
        record(out, 6, mode="patrol", seed=4, resume=True, **RECORD)
    summary = record(out, 6, mode="patrol", seed=3, resume=True, **RECORD)
    assert summary["from_frame"] == 4 and summary["frames"] == 2
    assert json.loads((out / "record.json").read_text())["frames_done"] == 6
    assert folder_stats(out)["pairs"] == 6
    # the resumed frames are the ones a recording in one go makes
    fresh = tmp_path / "fresh"
    record(fresh, 6, mode="patrol", seed=3, **RECORD)
    for name in ("3_run1_mask_00004.png", "3_run1_mask_00005.png"):
        np.testing.assert_array_equal(np.asarray(Image.open(out / "masks" / name)),
                                      np.asarray(Image.open(fresh / "masks" / name)))
    assert (out / "poses.tsv").read_text() == (fresh / "poses.tsv").read_text()

    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="record.json"):
        record(stranger, 2, resume=True, **RECORD)
