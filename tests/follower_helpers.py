"""Test helpers for the follower: QuadSim's camera rebuilt the Unity way, synthetic sensor frames,
a segmenter that finds the painted hero, and a Socket.IO client that collects events."""

from __future__ import annotations

import base64
import io
import math
import threading
import time

import numpy as np
import socketio
from PIL import Image

from followme.data.resize import resize_image
from followme.follower.geometry import QUADSIM_DEPTH_MAX, QUADSIM_FOCAL

SIZE = 256
HERO_RGB = (255, 0, 0)
# Unity vectors (x right, y up, z forward; left-handed) -> ROS (x forward, y left, z up):
# QuadSim's ToRos, (x, y, z) -> (z, -x, y).
UNITY_TO_ROS = np.array([[0, 0, 1], [-1, 0, 0], [0, 1, 0]], float)


def unity_rotation(ex: float, ey: float, ez: float) -> np.ndarray:
    """Unity's Quaternion.Euler(ex, ey, ez) as a matrix in Unity coordinates: z, then x, then y
    about the fixed axes, R = Ry @ Rx @ Rz (degrees)."""
    x, y, z = (math.radians(a) for a in (ex, ey, ez))
    rx = np.array([[1, 0, 0], [0, math.cos(x), -math.sin(x)], [0, math.sin(x), math.cos(x)]])
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rz = np.array([[math.cos(z), -math.sin(z), 0], [math.sin(z), math.cos(z), 0], [0, 0, 1]])
    return ry @ rx @ rz


def unity_euler_angles(ex: float, ey: float, ez: float) -> tuple[float, float, float]:
    """What Unity's Transform.eulerAngles reports: each angle in [0, 360)."""
    return ex % 360.0, ey % 360.0, ez % 360.0


def n4(v: float) -> str:
    """C#'s v.ToString("N4") in the invariant culture: thousands separated by commas."""
    return f"{v:,.4f}"


def quadsim_pose(position_ros, unity_euler) -> str:
    """A pose string exactly as QuadSim's CommandServer builds it: ToRos(position) and
    ToRos(-eulerAngles), each formatted "N4"."""
    e = np.array(unity_euler_angles(*unity_euler))
    angles = -e
    angles_ros = (angles[2], -angles[0], angles[1])
    return ",".join(n4(v) for v in (*position_ros, *angles_ros))


class QuadSimCamera:
    """A gimbal camera placed the Unity way: its axes come from Unity's rotation, converted to
    ROS, independently of followme.follower.geometry."""

    def __init__(self, position_ros, unity_euler, focal: float = QUADSIM_FOCAL,
                 size: int = SIZE):
        self.position = np.asarray(position_ros, float)
        self.unity_euler = unity_euler
        ru = unity_rotation(*unity_euler)
        self.forward = UNITY_TO_ROS @ ru @ np.array([0, 0, 1.0])
        self.right = UNITY_TO_ROS @ ru @ np.array([1.0, 0, 0])
        self.up = UNITY_TO_ROS @ ru @ np.array([0, 1.0, 0])
        self.f = focal * size
        self.size = size

    @property
    def gimbal_pose(self) -> str:
        return quadsim_pose(self.position, self.unity_euler)

    def rotation_ros(self) -> np.ndarray:
        """Columns: the camera body axes (forward, left, up) in the world."""
        return np.stack([self.forward, -self.right, self.up], axis=1)

    def project(self, point) -> tuple[float, float, float]:
        """World point -> (row, col) pixel indices and planar depth."""
        p = np.asarray(point, float) - self.position
        depth = float(p @ self.forward)
        u = self.size / 2 + self.f * float(p @ self.right) / depth
        v = self.size / 2 - self.f * float(p @ self.up) / depth
        return v - 0.5, u - 0.5, depth

    def point_at(self, row: float, col: float, depth: float) -> np.ndarray:
        """The world point seen at pixel (row, col) at planar ``depth``."""
        u, v = col + 0.5, row + 0.5
        return (self.position + depth * self.forward
                + depth * (u - self.size / 2) / self.f * self.right
                - depth * (v - self.size / 2) / self.f * self.up)


def encode(image: np.ndarray, fmt: str = "JPEG", **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, fmt, **kw)
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def disk(size: int, row: float, col: float, radius: float) -> np.ndarray:
    rr, cc = np.mgrid[:size, :size]
    return (rr - row) ** 2 + (cc - col) ** 2 <= radius ** 2


def depth_png(depth_m: np.ndarray, depth_max: float = QUADSIM_DEPTH_MAX) -> bytes:
    """Metres -> QuadSim's depth image: an RGBA PNG, channel 0 = round(d / depth_max * 255)."""
    value = np.clip(np.round(depth_m / depth_max * 255), 0, 255).astype(np.uint8)
    rgba = np.stack([value, value, value, np.full_like(value, 255)], axis=-1)
    return encode(rgba, "PNG")


def synthetic_frame(camera: QuadSimCamera, hero=None, radius: float = 7.0,
                    background_m: float = 45.0, hole: float = 0.0,
                    timestamp: float = 0.0) -> dict:
    """A sensor_frame seen by ``camera``: grey ground with the hero (a world point) painted as a
    red disk, and a depth image with the hero's planar depth on the disk. ``hole`` > 0 makes the
    depth invalid (0) within that radius of the hero's pixel."""
    rgb = np.full((SIZE, SIZE, 3), 110, np.uint8)
    depth = np.full((SIZE, SIZE), background_m, float)
    if hero is not None:
        row, col, d = camera.project(hero)
        on = disk(SIZE, row, col, radius)
        rgb[on] = HERO_RGB
        depth[on] = d
        if hole > 0:
            depth[disk(SIZE, row, col, hole)] = 0.0
    return {"timestamp": f"{timestamp:.3f}", "rgb_image": b64(encode(rgb, quality=95)),
            "depth_image": b64(depth_png(depth)), "pose": camera.gimbal_pose,
            "gimbal_pose": camera.gimbal_pose}


class ColourSegmenter:
    """The synthetic mask path: the hero is whatever is painted pure red, found at the model's
    size, with the same call as HeroSegmenter. ``delay`` simulates a slower model."""

    def __init__(self, size: int = 160, delay: float = 0.0):
        self.size = size
        self.delay = delay
        self.calls = 0

    def __call__(self, frame: np.ndarray):
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        small = resize_image(np.asarray(frame), self.size).astype(int)
        return (small[..., 0] > 180) & (small[..., 1] < 80) & (small[..., 2] < 80)


EVENTS = ("object_detected", "create_box_marker", "delete_marker", "object_lost")


class Collector:
    """A python-socketio 4.x client (the Engine.IO 3 line, as QuadSim) that records the events the
    follower sends."""

    def __init__(self, url: str, transports=("websocket",)):
        self.events: list[tuple[str, dict, float]] = []
        self._cond = threading.Condition()
        self.client = socketio.Client(reconnection=False)
        for name in EVENTS:
            self.client.on(name, self._handler(name))
        self.client.connect(url, transports=list(transports))

    def _handler(self, name):
        def handle(data):
            with self._cond:
                self.events.append((name, data, time.perf_counter()))
                self._cond.notify_all()
        return handle

    def named(self, name: str) -> list[dict]:
        with self._cond:
            return [d for n, d, _ in self.events if n == name]

    def wait_for(self, name: str, count: int = 1, timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len([1 for n, _, _ in self.events if n == name]) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
        return self.named(name)

    def emit(self, *args) -> None:
        self.client.emit(*args)

    def close(self) -> None:
        self.client.disconnect()


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
