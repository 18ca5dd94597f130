"""The DeepMimic walk clip, made ready to pose a walker anywhere (numpy only).

The clip (``humanoid3d_walk.txt``) is Y-up, walks forward along its +x and drifts about 1.24 m
per 1.27 s cycle. Each frame is: duration, root position (3), root rotation, then the joint
rotations in ``SPHERICAL`` / ``REVOLUTE`` order; rotations are quaternions (w, x, y, z),
knee and elbow angles are radians.

What ``load_walk`` does to it:

- rotates it +90 degrees about x, so that the body stands in the ROS world frame (x forward,
  y left, z up) and still walks along +x;
- removes the forward drift and the slow yaw and joint drift of the loop (the clip does not end
  exactly where it starts), so that the cycle repeats seamlessly on the spot: each walker's own
  path supplies the motion;
- reorders quaternions to PyBullet's (x, y, z, w).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# The joints of pybullet_data's humanoid/humanoid.urdf, in the clip's order.
SPHERICAL = ("chest", "neck", "right_hip", "right_ankle", "right_shoulder", "left_hip",
             "left_ankle", "left_shoulder")
REVOLUTE = ("right_knee", "right_elbow", "left_knee", "left_elbow")
_CLIP_ORDER = ("chest", "neck", "right_hip", "right_knee", "right_ankle", "right_shoulder",
               "right_elbow", "left_hip", "left_knee", "left_ankle", "left_shoulder",
               "left_elbow")


# ---- quaternions, (..., 4) arrays in (x, y, z, w) order ------------------------------------

def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a * b (apply b, then a)."""
    ax, ay, az, aw = np.moveaxis(a, -1, 0)
    bx, by, bz, bw = np.moveaxis(b, -1, 0)
    return np.stack([aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw,
                     aw * bw - ax * bx - ay * by - az * bz], axis=-1)


def quat_conj(q: np.ndarray) -> np.ndarray:
    return q * np.array([-1.0, -1.0, -1.0, 1.0])


def quat_axis_angle(axis: np.ndarray, angle: np.ndarray | float) -> np.ndarray:
    """Rotation by ``angle`` radians about the unit ``axis`` (3,)."""
    angle = np.asarray(angle, float)[..., None]
    return np.concatenate([np.asarray(axis, float) * np.sin(angle / 2), np.cos(angle / 2)], -1)


def quat_pow(q: np.ndarray, s: np.ndarray | float) -> np.ndarray:
    """The rotation q scaled to the fraction ``s`` of its angle (shortest way)."""
    q = np.where(q[..., 3:] < 0, -q, q)
    w = np.clip(q[..., 3], -1.0, 1.0)
    half = np.arccos(w)
    sin_half = np.sin(half)
    axis = np.where(sin_half[..., None] > 1e-9, q[..., :3] / np.maximum(sin_half, 1e-9)[..., None],
                    np.array([1.0, 0.0, 0.0]))
    half = half * s
    return np.concatenate([axis * np.sin(half)[..., None], np.cos(half)[..., None]], -1)


def slerp(a: np.ndarray, b: np.ndarray, s: float) -> np.ndarray:
    """Spherical interpolation from a (s = 0) to b (s = 1)."""
    return quat_mul(a, quat_pow(quat_mul(quat_conj(a), b), s))


def rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vector(s) v (..., 3) rotated by q."""
    qv = np.concatenate([v, np.zeros(v.shape[:-1] + (1,))], -1)
    return quat_mul(quat_mul(q, qv), quat_conj(q))[..., :3]


def yaw_quat(yaw: float | np.ndarray) -> np.ndarray:
    """Rotation(s) by ``yaw`` radians about the world z axis: (4,), or (W, 4) for (W,) yaws."""
    return quat_axis_angle(np.array([0.0, 0.0, 1.0]), yaw)


# ---- the clip ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class BodyPose:
    """One pose of the walking body, relative to the walker's ground point and heading (+x).

    root_position (3,) metres, the pelvis; root_orientation (4,) xyzw; spherical (8, 4) xyzw in
    ``SPHERICAL`` order; revolute (4,) radians in ``REVOLUTE`` order.
    """

    root_position: np.ndarray
    root_orientation: np.ndarray
    spherical: np.ndarray
    revolute: np.ndarray


class WalkClip:
    """A seamless walk cycle on the spot: ``pose(t)`` for any time t in seconds."""

    def __init__(self, times: np.ndarray, root_position: np.ndarray,
                 root_orientation: np.ndarray, spherical: np.ndarray, revolute: np.ndarray,
                 duration: float, speed: float):
        self.times = times                        # (N,) frame start times, seconds
        self.root_position = root_position        # (N, 3)
        self.root_orientation = root_orientation  # (N, 4) xyzw
        self.spherical = spherical                # (N, 8, 4) xyzw
        self.revolute = revolute                  # (N, 4) radians
        self.duration = duration                  # seconds per cycle
        self.speed = speed                        # m/s the clip walks at, before drift removal
        self._table: BodyPose | None = None
        self._table_size = 0

    def sample(self, times: np.ndarray, per_cycle: int = 256) -> BodyPose:
        """Poses at many times (W,) at once, from a table of ``per_cycle`` poses per cycle
        (nearest entry, 5 ms apart by default): a BodyPose whose arrays have a leading W."""
        if self._table is None or self._table_size != per_cycle:
            poses = [self.pose(t) for t in np.arange(per_cycle) * self.duration / per_cycle]
            self._table = BodyPose(*(np.stack([getattr(q, f) for q in poses])
                                     for f in ("root_position", "root_orientation", "spherical",
                                               "revolute")))
            self._table_size = per_cycle
        k = np.rint(np.asarray(times) / self.duration * per_cycle).astype(int) % per_cycle
        t = self._table
        return BodyPose(t.root_position[k], t.root_orientation[k], t.spherical[k],
                        t.revolute[k])

    def pose(self, t: float) -> BodyPose:
        """The pose at time ``t`` seconds (wraps around the cycle)."""
        t = float(t) % self.duration
        n = len(self.times)
        k = int(np.searchsorted(self.times, t, side="right")) - 1
        nxt = (k + 1) % n
        t_next = self.times[k + 1] if k + 1 < n else self.duration
        s = (t - self.times[k]) / (t_next - self.times[k])
        return BodyPose(
            root_position=(1 - s) * self.root_position[k] + s * self.root_position[nxt],
            root_orientation=slerp(self.root_orientation[k], self.root_orientation[nxt], s),
            spherical=slerp(self.spherical[k], self.spherical[nxt], s),
            revolute=(1 - s) * self.revolute[k] + s * self.revolute[nxt],
        )


def _remove_loop_drift(q: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Quaternions (N, ..., 4) with the rotation from the first to the last frame spread over
    the cycle (fractions s (N,)) and taken out, so that the last frame equals the first."""
    delta = quat_mul(q[-1], quat_conj(q[0]))
    steps = quat_pow(np.broadcast_to(delta, q.shape), s.reshape((-1,) + (1,) * (q.ndim - 2)))
    return quat_mul(quat_conj(steps), q)


def load_walk(path: str | Path | None = None) -> WalkClip:
    """Read a DeepMimic humanoid clip (by default pybullet_data's humanoid3d_walk.txt)."""
    if path is None:
        from followme.sim.assets import walk_clip_path
        path = walk_clip_path()
    frames = np.asarray(json.loads(Path(path).read_text())["Frames"], float)
    if frames.ndim != 2 or frames.shape[1] != 44:
        raise ValueError(f"{path}: expected frames of 44 numbers (DeepMimic humanoid3d)")
    durations = frames[:, 0]
    times = np.concatenate([[0.0], np.cumsum(durations[:-1])])
    duration = float(times[-1])  # the last frame closes the loop: it is the first one again
    s = times / duration

    y_up_to_z_up = quat_axis_angle(np.array([1.0, 0.0, 0.0]), np.pi / 2)
    pos = frames[:, 1:4]
    pos = np.stack([pos[:, 0], -pos[:, 2], pos[:, 1]], -1)   # (x, y, z)_yup -> (x, -z, y)
    root_q = np.roll(frames[:, 4:8], -1, axis=1)             # (w,x,y,z) -> (x,y,z,w)
    root_q = quat_mul(y_up_to_z_up, root_q)
    drift = pos[-1] - pos[0]
    speed = float(np.linalg.norm(drift[:2]) / duration)
    pos = pos - pos[0] - s[:, None] * drift
    pos[:, 2] += frames[0, 2]                                # keep the pelvis height

    columns, col = {}, 8
    for name in _CLIP_ORDER:
        width = 4 if name in SPHERICAL else 1
        columns[name] = frames[:, col:col + width]
        col += width
    spherical = np.stack([np.roll(columns[n], -1, axis=1) for n in SPHERICAL], axis=1)
    revolute = np.concatenate([columns[n] for n in REVOLUTE], axis=1)
    revolute = revolute - s[:, None] * (revolute[-1] - revolute[0])

    root_q = _remove_loop_drift(root_q, s)
    spherical = _remove_loop_drift(spherical, s)
    keep = slice(0, len(frames) - 1)
    return WalkClip(times[keep], pos[keep], _unit(root_q)[keep], _unit(spherical)[keep],
                    revolute[keep], duration, speed)


def _unit(q: np.ndarray) -> np.ndarray:
    """The clip's quaternions are written to 6 decimals: make them unit again."""
    return q / np.linalg.norm(q, axis=-1, keepdims=True)
