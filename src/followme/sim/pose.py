"""Poses in the ROS world frame and QuadSim's pose strings (numpy only).

World: x forward, y left, z up (metres). A pose is a position and roll, pitch, yaw in degrees;
its rotation body -> world is ``Rz(yaw) @ Ry(pitch) @ Rx(roll)`` (ROS RPY, the convention of
``followme.follower.geometry``). For the quad the body frame is x forward, y left, z up; for
the gimbal camera it is x along the optical axis, y towards the image's left edge, z towards the
image's top edge. Positive pitch tips x downwards (the camera looks down).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def rotation_rpy(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """(3, 3) body -> world rotation ``Rz(yaw) @ Ry(pitch) @ Rx(roll)``, angles in degrees."""
    r, p, y = (math.radians(a) for a in (roll, pitch, yaw))
    rx = np.array([[1, 0, 0], [0, math.cos(r), -math.sin(r)], [0, math.sin(r), math.cos(r)]])
    ry = np.array([[math.cos(p), 0, math.sin(p)], [0, 1, 0], [-math.sin(p), 0, math.cos(p)]])
    rz = np.array([[math.cos(y), -math.sin(y), 0], [math.sin(y), math.cos(y), 0], [0, 0, 1]])
    return rz @ ry @ rx


def wrap180(angle: float) -> float:
    """An angle in degrees mapped into [-180, 180)."""
    return (angle + 180.0) % 360.0 - 180.0


def look_angles(eye: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """(pitch, yaw) in degrees that point a body's x axis from ``eye`` at ``target``;
    pitch > 0 looks down."""
    d = np.asarray(target, float) - np.asarray(eye, float)
    yaw = math.degrees(math.atan2(d[1], d[0]))
    pitch = math.degrees(math.atan2(-d[2], math.hypot(d[0], d[1])))
    return pitch, yaw


@dataclass(frozen=True)
class Pose:
    """A position (metres) and roll, pitch, yaw (degrees) in the ROS world frame."""

    x: float
    y: float
    z: float
    roll: float = 0.0
    pitch: float = 0.0
    yaw: float = 0.0

    @property
    def position(self) -> np.ndarray:
        return np.array([self.x, self.y, self.z])

    def rotation(self) -> np.ndarray:
        """(3, 3) body -> world rotation."""
        return rotation_rpy(self.roll, self.pitch, self.yaw)

    def to_string(self) -> str:
        """QuadSim's "x,y,z,roll,pitch,yaw", four decimals (C#'s "N4" below 1000), the angles in
        QuadSim's ranges: it sends ``ToRos(-eulerAngles)`` (``CommandServer.cs:345``) of Unity's
        angles in [0, 360), so roll and yaw lie in (-360, 0] and pitch in [0, 360)."""
        roll, yaw = (-((-a) % 360.0) + 0.0 for a in (self.roll, self.yaw))
        return ",".join(f"{v:.4f}" for v in (self.x, self.y, self.z, roll, self.pitch % 360.0,
                                              yaw))

    @classmethod
    def from_string(cls, text: str) -> Pose:
        """The inverse of ``to_string`` (plain numbers only), angles as written: equal to the
        pose's own modulo 360, the same rotation."""
        values = [float(v) for v in text.split(",")]
        if len(values) != 6:
            raise ValueError(f"pose {text[:80]!r}: expected six numbers x,y,z,roll,pitch,yaw")
        return cls(*values)
