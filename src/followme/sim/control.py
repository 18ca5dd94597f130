"""The follow controller: how the quad obeys the follower's events (numpy only).

Modes, and what moves the quad (``Quad.fly_towards``, ``Quad.point_gimbal``):

  patrol  the ``Patrol`` route at 5 to 15 m, until the follower reports the hero;
  follow  towards the hero as the ``object_detected`` coordinates place her: ``distance`` m
          from her horizontally (on the quad's current bearing from her), ``height`` m above
          her ground, facing her, the camera on her. The coordinates go through an alpha-beta
          tracker (position and walking velocity); one further from its prediction than a
          person can walk (``gate`` m plus ``target_speed`` m/s since the last one kept) is set
          aside, so that a slip of the segmentation (the depth of the ground behind her, a
          passer-by merged into her mask) does not pull the quad off her. Detections set
          aside ``confirm`` times in a row that agree with each other are believed: the
          tracker starts again from them (it was the tracker that had slipped);
  hold    after ``object_lost``, for ``hold`` s: keep after where she should be by now (her
          last velocity, for up to ``predict`` s), the camera on it: a short occlusion ends
          with her in view;
  search  then climb to ``search_height`` and turn on the spot, camera pitched down, one full
          turn, starting towards the side she was heading;
  then patrol again. ``object_detected`` in any mode means follow.

The controller knows only what the follower sends: no world truth. It is not thread-safe: feed
it events and steps from one thread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from followme.follower.geometry import look_angles, wrap180
from followme.sim.quad import Patrol, Quad

PATROL, FOLLOW, HOLD, SEARCH = "patrol", "follow", "hold", "search"
MODES = (PATROL, FOLLOW, HOLD, SEARCH)
BODY_CENTRE = 0.5   # m: the mask centroid, back-projected, lies this far above the feet


@dataclass(frozen=True)
class FollowSettings:
    distance: float = 3.0         # m, horizontal, from the target
    height: float = 2.5           # m above the target's ground (2 to 3 m)
    hold: float = 6.0             # s after object_lost, flying after her predicted position
    search_rate: float = 45.0     # deg/s
    search_turn: float = 360.0    # deg turned before going back to patrol
    search_pitch: float = 35.0    # deg, camera down while searching
    search_height: float = 5.0    # m above the ground while searching
    predict: float = 6.0          # s, the velocity extrapolated at most this far
    alpha: float = 0.5            # the tracker's position gain
    beta: float = 0.2             # ... and velocity gain
    gate: float = 1.0             # m, a detection may jump this far beyond a walk
    target_speed: float = 3.5     # m/s, the fastest a followed person moves (running)
    confirm: int = 3              # agreeing detections set aside in a row that are believed

    def __post_init__(self):
        if not (self.distance > 0 and self.height > 0 and self.hold >= 0
                and self.search_rate > 0 and self.search_turn >= 0 and self.search_height > 0):
            raise ValueError("distance, height, search_rate and search_height must be "
                             "positive; hold and search_turn not negative")


class FollowController:
    """``on_detected(coords)`` / ``on_lost()`` as the events arrive, ``step(quad, dt)`` each
    simulation step. ``mode`` is one of MODES."""

    def __init__(self, patrol: Patrol, settings: FollowSettings | None = None):
        self.patrol = patrol
        self.settings = settings or FollowSettings()
        self.mode = PATROL
        self.time = 0.0
        self.target: np.ndarray | None = None      # (3,) the tracked hero at target_time
        self.target_time = -math.inf
        self.velocity = np.zeros(3)                # her walking velocity (z = 0)
        self.set_aside = 0                         # detections outside the gate
        self._aside: list[tuple[float, np.ndarray]] = []   # ... in a row, agreeing
        self._since = 0.0                          # when the current mode began
        self._hover: np.ndarray | None = None
        self._turned = 0.0
        self._turn_sign = 1.0

    # ---- events ----
    def on_detected(self, coords) -> None:
        coords = np.asarray(coords, float)[:3]
        if not np.all(np.isfinite(coords)):
            return
        if self.mode != FOLLOW:
            self._restart(coords, np.zeros(3))
        elif self._within_walk(coords, self.predicted_target(), self.target_time):
            self._update(coords)
        else:
            self.set_aside += 1
            if self._aside and not self._within_walk(coords, self._aside[-1][1],
                                                     self._aside[-1][0]):
                self._aside = []
            self._aside.append((self.time, coords))
            if len(self._aside) < self.settings.confirm:
                return
            first_time, first = self._aside[0]
            self._restart(coords, (coords - first) / max(self.time - first_time, 1e-9))
        self._enter(FOLLOW)

    def _within_walk(self, coords: np.ndarray, reference: np.ndarray, since: float) -> bool:
        """Whether ``coords`` is within a walk (plus ``gate``) of ``reference`` seen at
        ``since``, horizontally."""
        s = self.settings
        return bool(np.hypot(*(coords - reference)[:2])
                    <= s.gate + s.target_speed * (self.time - since))

    def _walking(self, velocity: np.ndarray) -> np.ndarray:
        """Horizontal, and no faster than ``target_speed``."""
        v = np.array([velocity[0], velocity[1], 0.0])
        speed = float(np.hypot(v[0], v[1]))
        return v * (self.settings.target_speed / speed) if speed > self.settings.target_speed \
            else v

    def _restart(self, coords: np.ndarray, velocity: np.ndarray) -> None:
        self.target, self.velocity, self.target_time = coords, self._walking(velocity), self.time
        self._aside = []

    def _update(self, coords: np.ndarray) -> None:
        """The alpha-beta step."""
        s = self.settings
        gap = self.time - self.target_time
        predicted = self.predicted_target()
        residual = coords - predicted
        self.target = predicted + s.alpha * residual
        if gap > 0:
            self.velocity = self._walking(self.velocity + s.beta * residual / gap)
        self.target_time = self.time
        self._aside = []

    def on_lost(self) -> None:
        if self.mode == FOLLOW:
            self._enter(HOLD)

    def _enter(self, mode: str) -> None:
        if mode != self.mode:
            self.mode, self._since = mode, self.time
            self._hover = None
            self._aside = []
            self._turned = 0.0

    # ---- geometry ----
    def predicted_target(self) -> np.ndarray | None:
        """The tracked hero moved on by her velocity for up to ``predict`` seconds."""
        if self.target is None:
            return None
        ahead = min(max(self.time - self.target_time, 0.0), self.settings.predict)
        return self.target + self.velocity * ahead

    def follow_goal(self, quad: Quad, target: np.ndarray) -> np.ndarray:
        """Where follow mode flies: ``distance`` m from ``target`` on the quad's bearing (from
        behind her motion when the quad is right above her), ``height`` m above her ground."""
        s = self.settings
        away = quad.position[:2] - target[:2]
        norm = float(np.hypot(*away))
        if norm < 0.1:
            speed = float(np.hypot(*self.velocity[:2]))
            away = -self.velocity[:2] / speed if speed > 0.1 else np.array([1.0, 0.0])
            norm = 1.0
        xy = target[:2] + away / norm * s.distance
        return np.array([xy[0], xy[1], target[2] - BODY_CENTRE + s.height])

    # ---- one step ----
    def step(self, quad: Quad, dt: float) -> None:
        s = self.settings
        if self.mode in (FOLLOW, HOLD):
            target = self.predicted_target()
            quad.fly_towards(self.follow_goal(quad, target), dt,
                             yaw=look_angles(quad.position, target)[1])
            quad.point_gimbal_at(target, dt)
            if self.mode == HOLD and self.time - self._since >= s.hold:
                self._turn_sign = self._heading_side(quad, target)
                self._enter(SEARCH)
        elif self.mode == SEARCH:
            if self._hover is None:
                self._hover = np.array([*quad.position[:2], s.search_height])
            step = s.search_rate * dt
            quad.fly_towards(self._hover, dt, yaw=quad.yaw + self._turn_sign * step)
            quad.point_gimbal(s.search_pitch, quad.yaw, dt)
            self._turned += step
            if self._turned >= s.search_turn:
                self._enter(PATROL)
        else:
            self.patrol.step(quad, dt)
        self.time += dt

    def _heading_side(self, quad: Quad, target: np.ndarray) -> float:
        """+1 (turn left) or -1: the side of the view that her velocity points to."""
        ahead = target + self.velocity
        turn = wrap180(look_angles(quad.position, ahead)[1] - look_angles(quad.position, target)[1])
        return -1.0 if turn < 0 else 1.0
