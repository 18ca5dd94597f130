"""The closed loop's scenarios: each does to the world what it says, and stays seeded."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("pybullet", reason="the sim needs PyBullet (pip install -e .[sim])")

from followme.follower.geometry import look_angles  # noqa: E402
from followme.labels import HERO, PEOPLE  # noqa: E402
from followme.sim import scenarios  # noqa: E402
from followme.sim.assets import HERO_SHIRT  # noqa: E402
from followme.sim.camera import render  # noqa: E402
from followme.sim.engine import pybullet as p  # noqa: E402
from followme.sim.quad import Quad  # noqa: E402
from followme.sim.world import World  # noqa: E402

SMALL = {"n_people": 8, "size": 48.0, "px_per_m": 6.0}


def world(seed: int = 3, **kw) -> World:
    return World(seed=seed, **{**SMALL, **kw})


def hero_pixels(w: World, camera_at: np.ndarray) -> int:
    """Her pixels from a camera at ``camera_at`` looking at her chest."""
    quad = Quad(position=np.asarray(camera_at, float))
    chest = w.hero.position3 + [0.0, 0.0, 1.0]
    quad.gimbal_pitch, quad.gimbal_yaw = look_angles(quad.camera_position, chest)
    return int((render(w, quad.gimbal_pose()).labels == HERO).sum())


def test_the_registry_lists_the_issue_s_scenarios():
    assert list(scenarios.SCENARIOS) == ["park", "occlusion", "lookalikes", "crossing", "run",
                                         "dusk", "escort"]


def test_under_a_covered_passage_she_is_out_of_sight_and_beyond_it_in_view():
    with world() as w:
        passages = scenarios.covered_passages(w, np.random.default_rng(0), others=1.0)
        assert passages
        centre, along, length = max(passages, key=lambda q: q[2])
        assert scenarios.PASSAGE_LENGTH[0] <= length <= scenarios.PASSAGE_LENGTH[1]
        w.hero.heading = math.atan2(along[1], along[0])
        w.hero.position = centre.copy()
        w._dirty = True
        # the quad 3 m behind her, 3 m up, as it follows
        assert hero_pixels(w, [*(centre - 3.0 * along), 3.0]) == 0
        w.hero.position = centre + along * (length / 2 + 3.0)
        w._dirty = True
        assert hero_pixels(w, [*(centre + along * (length / 2)), 3.0]) > 50


def test_her_route_is_the_walk_she_will_take():
    with world() as w:
        route = scenarios.her_route(w, 6)
        walked = [(w.hero.previous, w.hero.node)]
        for _ in range(2000):
            w.step(0.1)
            if (w.hero.previous, w.hero.node) != walked[-1]:
                walked.append((w.hero.previous, w.hero.node))
        assert len(walked) >= 6 and walked[:6] == route


def test_lookalikes_wear_her_colours_start_apart_stay_other_people_and_come_near_her():
    with world() as w:
        scenarios.prepare("lookalikes", w)
        alike = [x for x in w.people[1:] if x.attract is w.hero]
        assert 3 <= len(alike) <= 5
        chest = w._link["chest"]
        for x in alike:
            rgba = [s[7] for s in p.getVisualShapeData(x.body, physicsClientId=w.client)
                    if s[1] == chest][0]
            assert np.allclose(np.array(rgba[:3]) * 255, HERO_SHIRT, rtol=0.12, atol=3)
            assert w._lut[x.body + 1] == PEOPLE
        start = [np.linalg.norm(x.position - w.hero.position) for x in alike]
        assert min(start) >= scenarios.LOOKALIKE_START_APART
        gaps = []
        for _ in range(600):   # 60 s
            w.step(0.1)
            gaps.append(min(np.linalg.norm(x.position - w.hero.position) for x in alike))
        assert np.median(gaps) < 12.0 and min(gaps) < 3.0


def _behind_her(w: World, walker, gap: float, faster: float) -> None:
    """``walker`` ``gap`` m behind her on her way, walking her way ``faster`` times her pace."""
    her = w.hero
    ahead = np.array([math.cos(her.heading), math.sin(her.heading)])
    walker.position = her.position - gap * ahead
    walker.heading, walker.offset = her.heading, her.offset
    walker.previous, walker.node = her.previous, her.node
    walker.speed = her.speed * faster
    w._dirty = True


def _gaps(w: World, walker, seconds: float) -> list[float]:
    out = []
    for _ in range(int(seconds * 10)):
        w.step(0.1)
        out.append(float(np.linalg.norm(walker.position - w.hero.position)))
    return out


@pytest.mark.parametrize("name", ["lookalikes", "escort"])
def test_a_lookalike_who_reaches_her_walks_on_in_lookalikes_and_at_her_side_in_escort(name):
    with world() as w:
        scenarios.prepare(name, w)
        he = next(x for x in w.people[1:] if x.attract is w.hero)
        others = [x for x in w.people[1:] if x is not he]
        for x in others:   # out of the way
            x.attract, x.position = None, x.position + 1000.0
        pace = w.hero.speed * 1.3
        _behind_her(w, he, 1.0, 1.3)
        gaps = _gaps(w, he, 10.0)
        if name == "escort":   # he walks into her back, kept 0.6 m off, throughout
            assert max(gaps[20:]) < 1.0 and he.shun is None
            return
        assert he.shun is w.hero and he.attract is None and he.speed < w.hero.speed
        assert sum(g < 1.0 for g in gaps) <= 30 and gaps[-1] > 1.5
        _gaps(w, he, 30.0)   # past the longest time away
        assert he.attract is w.hero and he.shun is None and he.speed == pytest.approx(pace)


def test_she_walks_runs_stops_and_turns_back():
    with world() as w:
        scenarios.prepare("run", w)
        speeds, headings = [], []
        for _ in range(1200):   # 120 s
            before = w.hero.position.copy()
            w.step(0.1)
            speeds.append(np.linalg.norm(w.hero.position - before) / 0.1)
            headings.append(w.hero.heading)
        speeds = np.array(speeds)
        assert speeds.max() == pytest.approx(scenarios.RUN_SPEED, abs=0.01)
        assert (speeds < 0.01).mean() > 0.05 and (speeds > 2.9).mean() > 0.1
        turn = np.abs(np.diff(np.unwrap(headings)))
        assert turn.max() >= math.radians(30)   # 0.1 s: a sharp turn, at 360 deg/s


def test_someone_crosses_between_her_and_the_following_quad():
    with world(n_people=46) as w:
        scenarios.prepare("crossing", w)
        hook = w.hooks[0]
        behind_her = 0
        for _ in range(300):   # 30 s
            w.step(0.1)
            ahead = np.array([math.cos(w.hero.heading), math.sin(w.hero.heading)])
            for x in w.people[1:]:
                if x.detour is None:
                    continue
                rel = x.position - w.hero.position
                # within 0.5 m of her line, 0.5 to 3.5 m behind her: where the quad looks
                if abs(rel @ [-ahead[1], ahead[0]]) < 0.5 and -3.5 < rel @ ahead < -0.5:
                    behind_her += 1
        assert hook.crossings >= 6 and behind_her >= 5


def test_dusk_is_a_low_orange_sun_with_long_shadows_on_the_ground():
    from PIL import Image

    with world() as w:
        before = np.asarray(Image.open(w.ground_png), float).mean()
        scenarios.prepare("dusk", w)
        elevation = math.degrees(math.asin(w.lighting.direction[2]))
        assert 10 <= elevation <= 18 and w.lighting.colour[2] < w.lighting.colour[0]
        assert w.ground_png.name.endswith("-dusk.png")
        shaded = np.asarray(Image.open(w.ground_png), float).mean()
        assert shaded < 0.9 * before   # a good part of the ground lies in shadow


@pytest.mark.parametrize("name", ["occlusion", "lookalikes", "crossing", "run", "dusk",
                                  "escort"])
def test_a_scenario_is_the_same_world_for_the_same_seed(name):
    def state(seed):
        with world(seed, n_people=46 if name == "crossing" else 8) as w:
            scenarios.prepare(name, w)
            for _ in range(100):
                w.step(0.1)
            return (np.array([x.position for x in w.people]), w.lighting,
                    p.getNumBodies(physicsClientId=w.client))

    a, b, c = state(5), state(5), state(6)
    assert np.array_equal(a[0], b[0]) and a[1] == b[1] and a[2] == b[2]
    assert not np.array_equal(a[0], c[0])
