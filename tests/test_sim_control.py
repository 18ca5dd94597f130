"""The follow controller and the loop's metrics, without the world (numpy only)."""

import math

import numpy as np
import pytest

from followme.follower.geometry import look_angles, wrap180
from followme.sim.control import (
    BODY_CENTRE,
    FOLLOW,
    HOLD,
    PATROL,
    SEARCH,
    FollowController,
    FollowSettings,
)
from followme.sim.metrics import LoopMetrics
from followme.sim.quad import Patrol, Quad

ROUTE = np.array([[20.0, 20.0, 8.0], [-20.0, 20.0, 10.0], [-20.0, -20.0, 6.0]])
DT = 0.05


def _follower(position=(10.0, 0.0, 8.0)) -> tuple[FollowController, Quad]:
    return FollowController(Patrol(ROUTE.copy())), Quad(position=np.array(position))


def _fly(controller: FollowController, quad: Quad, seconds: float, target=None,
         detect_every: float = 0.1) -> None:
    """Step ``seconds``; ``target(t)`` -> (3,) is reported every ``detect_every`` s."""
    steps_per_detection = max(1, int(round(detect_every / DT)))
    for k in range(int(round(seconds / DT))):
        if target is not None and k % steps_per_detection == 0:
            controller.on_detected(target(controller.time))
        controller.step(quad, DT)


# ---- the controller (numpy only) --------------------------------------------------------------

def test_follow_keeps_distance_and_height_and_faces_the_target():
    controller, quad = _follower()
    target = np.array([0.0, 0.0, BODY_CENTRE])   # a person standing at the origin
    _fly(controller, quad, 20.0, lambda t: target)
    assert controller.mode == FOLLOW
    assert np.hypot(*quad.position[:2]) == pytest.approx(3.0, abs=0.05)
    assert quad.position[2] == pytest.approx(2.5, abs=0.05)
    pitch, yaw = look_angles(quad.position, target)
    assert abs(wrap180(quad.yaw - yaw)) < 1.0
    pitch, yaw = look_angles(quad.camera_position, target)
    assert abs(quad.gimbal_pitch - pitch) < 1.0 and abs(wrap180(quad.gimbal_yaw - yaw)) < 1.0


def test_follow_keeps_up_with_a_walking_target():
    """A target walking a 20 m square at 1.5 m/s (turning 90 degrees at each corner)."""
    def walker(t: float) -> np.ndarray:
        s = (1.5 * t) % 80.0
        side, along = int(s // 20), s % 20
        corner = [(0, 0), (20, 0), (20, 20), (0, 20)][side]
        direction = [(1, 0), (0, 1), (-1, 0), (0, -1)][side]
        return np.array([corner[0] + along * direction[0], corner[1] + along * direction[1],
                         BODY_CENTRE])

    controller, quad = _follower((-3.0, 0.0, 2.5))
    distances = []
    for _ in range(int(80 / DT)):
        if round(controller.time / DT) % 2 == 0:
            controller.on_detected(walker(controller.time))
        controller.step(quad, DT)
        distances.append(np.linalg.norm(quad.position - walker(controller.time)))
    distances = np.array(distances)
    assert controller.mode == FOLLOW
    assert ((distances > 2.0) & (distances < 6.0)).all(), (distances.min(), distances.max())
    assert 2.0 <= quad.position[2] <= 3.0
    assert np.linalg.norm(controller.velocity[:2]) == pytest.approx(1.5, abs=0.3)


def test_lost_holds_then_searches_then_patrols():
    """She stands still, so hold keeps the quad where it is; the search climbs and turns on the
    spot; patrol flies back to the route."""
    settings = FollowSettings()
    controller, quad = _follower()
    target = np.array([0.0, 0.0, BODY_CENTRE])
    _fly(controller, quad, 15.0, lambda t: target)
    controller.on_lost()
    assert controller.mode == HOLD
    hover = quad.position.copy()
    _fly(controller, quad, settings.hold - 0.2)
    assert controller.mode == HOLD and np.linalg.norm(quad.position - hover) < 0.2
    pitch, yaw = look_angles(quad.camera_position, target)
    assert pitch == pytest.approx(quad.gimbal_pitch, abs=1.0)
    assert abs(wrap180(yaw - quad.gimbal_yaw)) < 1.0
    _fly(controller, quad, 0.3)
    assert controller.mode == SEARCH
    yaws = []
    for _ in range(int(settings.search_turn / settings.search_rate / DT) - 2):
        controller.step(quad, DT)
        yaws.append(quad.yaw)
        assert controller.mode == SEARCH
    turned = np.abs(wrap180_array(np.diff(yaws))).sum()
    assert turned == pytest.approx(settings.search_turn, abs=settings.search_rate * DT * 3)
    assert np.linalg.norm(quad.position[:2] - hover[:2]) < 0.3
    assert quad.position[2] == pytest.approx(settings.search_height, abs=0.3)
    assert quad.gimbal_pitch == pytest.approx(settings.search_pitch, abs=1.0)
    _fly(controller, quad, 0.5)
    assert controller.mode == PATROL
    start = np.linalg.norm(quad.position - ROUTE[0])
    _fly(controller, quad, 5.0)
    assert np.linalg.norm(quad.position - ROUTE[0]) < start - 5.0   # back to the route


def test_hold_flies_after_her_predicted_position_and_search_turns_her_way():
    """Walking at 1.5 m/s along +y when lost: hold keeps after her, and the search turns left
    (+y from the quad behind her on -x)."""
    controller, quad = _follower((-3.0, 0.0, 2.5))
    _fly(controller, quad, 15.0, lambda t: np.array([0.0, 1.5 * t, BODY_CENTRE]))
    controller.on_lost()
    lost_at = controller.time
    before = quad.position.copy()
    _fly(controller, quad, controller.settings.hold - 0.2)
    assert controller.mode == HOLD
    assert quad.position[1] - before[1] > 1.5          # kept after her
    ahead = min(controller.time - lost_at, controller.settings.predict)
    assert controller.predicted_target()[:2] == pytest.approx([0.0, 1.5 * (lost_at + ahead)],
                                                              abs=0.5)
    yaw = quad.yaw
    _fly(controller, quad, 1.0)
    assert controller.mode == SEARCH and wrap180(quad.yaw - yaw) > 10.0


def test_a_detection_ends_the_search_and_lost_without_follow_is_ignored():
    controller, quad = _follower()
    controller.on_lost()
    assert controller.mode == PATROL
    _fly(controller, quad, 5.0, lambda t: np.array([0.0, 0.0, BODY_CENTRE]))
    controller.on_lost()
    _fly(controller, quad, controller.settings.hold + 1.0)
    assert controller.mode == SEARCH
    controller.on_detected([1.0, 1.0, BODY_CENTRE])
    assert controller.mode == FOLLOW
    controller.on_detected([math.nan, 0.0, 0.0])   # ignored
    assert np.isfinite(controller.target).all()
    with pytest.raises(ValueError):
        FollowSettings(distance=0.0)


def wrap180_array(a: np.ndarray) -> np.ndarray:
    return (a + 180.0) % 360.0 - 180.0


# ---- metrics ----------------------------------------------------------------------------------

def test_metrics_count_losses_reacquire_and_wrong_targets():
    m = LoopMetrics()
    people = np.array([[0.0, 0.0], [5.0, 0.0]])     # the hero, then someone else
    quad = np.array([3.0, 0.0, 3.5])
    on_her, on_him = [0.1, 0.0, 0.5], [4.8, 0.1, 0.5]
    script = [  # detected at, lost, true hero pixels, the controller's target, set aside
        (on_her, False, 100, on_her, False), (on_her, False, 100, on_her, False),
        (None, False, 0, on_her, False), (None, True, 0, None, False),
        (None, False, 0, None, False), (None, False, 2, None, False),
        (on_him, False, 50, on_him, False), (on_her, False, 80, on_her, False),
        (on_him, False, 80, on_her, True)]
    for k, (detected, lost, pixels, target, set_aside) in enumerate(script):
        m.add(k * 0.5, pixels, quad, "follow" if target else "hold", people, detected, lost,
              None if target is None else np.array(target), set_aside)
    m.finish(4.5)
    s = m.summary()
    assert s["frames"] == 9 and s["seconds"] == 4.5
    assert s["hero_in_view_share"] == pytest.approx(5 / 9, abs=1e-4)
    # lost at 1.5 s, last seen at 0.5 s; the detection at 3.0 s is someone else's
    assert s["losses"] == 1 and s["reacquire_s"] == [2.0] and s["loss_s"] == [3.0]
    assert s["not_reacquired"] == 0
    # she is back in view at 3.0 s (50 px), found at 3.5 s
    assert s["reacquire_after_view_s"] == [0.5] and s["reacquire_after_view_max_s"] == 0.5
    assert s["out_of_view_episodes"] == 1 and s["out_of_view_longest_s"] == 2.0
    assert s["detections"] == 5 and s["wrong_detections"] == 2 and s["set_aside"] == 1
    assert s["wrong_target_frames"] == 1 and s["wrong_person_frames"] == 1
    assert s["identity_switches"] == 1
    assert s["within_2_6m_share"] == 1.0
    assert s["mode_share"] == pytest.approx({"follow": 6 / 9, "hold": 3 / 9}, abs=1e-4)


def test_a_jump_no_one_can_walk_is_set_aside_unless_it_persists():
    settings = FollowSettings()
    controller, quad = _follower()
    her = np.array([0.0, 0.0, BODY_CENTRE])
    _fly(controller, quad, 10.0, lambda t: her)
    elsewhere = her + [2.5, 0.0, 0.0]   # the ground behind her, or a passer-by
    controller.on_detected(elsewhere)
    assert controller.set_aside == 1 and np.array_equal(controller.target, her)
    controller.step(quad, DT)
    controller.on_detected(her + [0.1, 0.0, 0.0])   # she is back: believed
    assert controller.set_aside == 1 and 0 < controller.target[0] <= 0.1
    for k in range(settings.confirm):                # it persists, and agrees with itself
        controller.step(quad, DT)
        controller.on_detected(elsewhere + [0.05 * k, 0.0, 0.0])
    assert controller.set_aside == 1 + settings.confirm
    assert controller.predicted_target()[0] == pytest.approx(2.6, abs=0.01)
    assert np.linalg.norm(controller.velocity) == pytest.approx(1.0)   # 0.1 m in 0.1 s
    controller.step(quad, DT)
    controller.on_detected(her)                      # and now she is the outlier
    assert controller.set_aside == 2 + settings.confirm
