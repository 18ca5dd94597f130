"""A point-mass quadrotor with a stabilised gimbal camera, and the patrol mode (numpy only).

World frame: ROS, x forward, y left, z up, metres; yaw in degrees from +x towards +y. The quad's
speed, climb rate, acceleration and yaw rate are limited (``QuadLimits``); it shows the tilt
that its acceleration needs (positive pitch accelerates forward, positive roll to the right),
which goes into its pose. The gimbal holds the camera level in roll and points it by world
pitch (positive looks down) and yaw, at a limited rate; the camera sits ``GIMBAL_OFFSET`` below
the quad's centre.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from followme.follower.geometry import Pose, look_angles, wrap180

G = 9.81
GIMBAL_OFFSET = np.array([0.0, 0.0, -0.1])
PATROL_HEIGHT = (5.0, 15.0)


@dataclass(frozen=True)
class QuadLimits:
    max_speed: float = 5.0        # m/s, horizontal
    max_climb: float = 2.0        # m/s, vertical
    max_accel: float = 3.0        # m/s^2
    max_yaw_rate: float = 90.0    # deg/s
    gimbal_rate: float = 120.0    # deg/s
    gimbal_pitch: tuple[float, float] = (-30.0, 90.0)


def _step_angle(current: float, target: float, max_step: float) -> float:
    return wrap180(current + float(np.clip(wrap180(target - current), -max_step, max_step)))


@dataclass
class Quad:
    """State: position (3,), velocity (3,), yaw (deg), the last acceleration (3,), and the
    gimbal's world pitch and yaw (deg)."""

    position: np.ndarray
    yaw: float = 0.0
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(3))
    acceleration: np.ndarray = field(default_factory=lambda: np.zeros(3))
    gimbal_pitch: float = 45.0
    gimbal_yaw: float = 0.0
    limits: QuadLimits = field(default_factory=QuadLimits)

    def __post_init__(self):
        self.position = np.asarray(self.position, float)

    def fly_towards(self, target: np.ndarray, dt: float, yaw: float | None = None,
                    speed: float | None = None) -> None:
        """One step of ``dt`` seconds towards ``target`` (3,): the velocity that would stop
        there in time, within the limits; ``speed`` caps the horizontal speed further. Turns
        towards ``yaw`` (deg), or else towards the direction of travel when moving."""
        lim = self.limits
        error = np.asarray(target, float) - self.position
        horizontal = np.hypot(error[0], error[1])
        v_max = lim.max_speed if speed is None else min(speed, lim.max_speed)
        want = np.zeros(3)
        if horizontal > 1e-6:
            want[:2] = error[:2] / horizontal * min(v_max, math.sqrt(2 * lim.max_accel
                                                                        * horizontal) * 0.9)
        want[2] = math.copysign(min(lim.max_climb, math.sqrt(2 * lim.max_accel * abs(error[2]))
                                    * 0.9), error[2])
        accel = (want - self.velocity) / dt
        norm = np.linalg.norm(accel)
        if norm > lim.max_accel:
            accel *= lim.max_accel / norm
        self.acceleration = accel
        self.velocity = self.velocity + accel * dt
        self.position = self.position + self.velocity * dt
        if yaw is None and np.hypot(*self.velocity[:2]) > 0.5:
            yaw = math.degrees(math.atan2(self.velocity[1], self.velocity[0]))
        if yaw is not None:
            self.turn_towards(yaw, dt)

    def turn_towards(self, yaw: float, dt: float) -> None:
        self.yaw = _step_angle(self.yaw, yaw, self.limits.max_yaw_rate * dt)

    def point_gimbal(self, pitch: float, yaw: float, dt: float) -> None:
        """Turn the gimbal towards world ``pitch`` / ``yaw`` (deg) at its limited rate."""
        step = self.limits.gimbal_rate * dt
        lo, hi = self.limits.gimbal_pitch
        self.gimbal_pitch = float(np.clip(_step_angle(self.gimbal_pitch, pitch, step), lo, hi))
        self.gimbal_yaw = _step_angle(self.gimbal_yaw, yaw, step)

    def point_gimbal_at(self, target: np.ndarray, dt: float) -> None:
        pitch, yaw = look_angles(self.camera_position, target)
        self.point_gimbal(pitch, yaw, dt)

    @property
    def camera_position(self) -> np.ndarray:
        return self.position + GIMBAL_OFFSET

    def pose(self) -> Pose:
        """The quad's pose, its tilt from its acceleration."""
        c, s = math.cos(math.radians(self.yaw)), math.sin(math.radians(self.yaw))
        forward = self.acceleration[0] * c + self.acceleration[1] * s
        left = -self.acceleration[0] * s + self.acceleration[1] * c
        return Pose(*self.position, roll=math.degrees(math.atan2(-left, G)),
                    pitch=math.degrees(math.atan2(forward, G)), yaw=self.yaw)

    def gimbal_pose(self) -> Pose:
        """The camera's pose (camera body frame: x optical axis, y image left, z image up)."""
        return Pose(*self.camera_position, roll=0.0, pitch=self.gimbal_pitch,
                    yaw=self.gimbal_yaw)


def patrol_route(rng: np.random.Generator, nodes: np.ndarray, n: int = 6,
                 height: tuple[float, float] = PATROL_HEIGHT) -> np.ndarray:
    """(n, 3) waypoints over random path nodes (K, 2), each at a height drawn from ``height``."""
    picks = rng.choice(len(nodes), size=min(n, len(nodes)), replace=False)
    xy = nodes[picks] + rng.uniform(-3, 3, (len(picks), 2))
    return np.concatenate([xy, rng.uniform(*height, (len(picks), 1))], 1)


@dataclass
class Patrol:
    """Fly a loop of waypoints (n, 3) with the camera pitched down by ``camera_pitch`` degrees,
    sweeping ``sweep`` degrees either side of the heading every ``sweep_period`` seconds."""

    waypoints: np.ndarray
    camera_pitch: float = 45.0
    sweep: float = 30.0
    sweep_period: float = 12.0
    speed: float = 4.0
    reach: float = 1.5
    index: int = 0
    time: float = 0.0

    def step(self, quad: Quad, dt: float) -> None:
        target = self.waypoints[self.index]
        if np.linalg.norm(target - quad.position) < self.reach:
            self.index = (self.index + 1) % len(self.waypoints)
            target = self.waypoints[self.index]
        quad.fly_towards(target, dt, speed=self.speed)
        self.time += dt
        look = quad.yaw + self.sweep * math.sin(2 * math.pi * self.time / self.sweep_period)
        quad.point_gimbal(self.camera_pitch, look, dt)
