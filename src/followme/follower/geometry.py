"""Camera geometry for QuadSim: a pixel and its depth -> a point in the world.

Conventions (every frame right-handed, metres, angles in degrees on the wire):

World
    ROS (REP 103): x forward, y left, z up. QuadSim sends ``pose`` and ``gimbal_pose`` in this
    frame: it converts Unity positions with ``ToRos`` (x, y, z)_ros = (z, -x, y)_unity.

Camera body frame
    The gimbal camera's own ROS frame, which is what ``gimbal_pose`` describes: x along the optical
    axis (out of the lens), y towards the image's left edge, z towards the image's top edge. (This
    is *not* REP 103's optical frame, z forward / x right / y down.)

Rotation
    ``gimbal_pose`` = "x,y,z,roll,pitch,yaw". The camera-to-world rotation is
    ``R = Rz(yaw) @ Ry(pitch) @ Rx(roll)``: roll about x, then pitch about the fixed y, then yaw
    about the fixed z (static "xyz", the same as intrinsic z-y'-x''). This is transforms3d's
    ``euler2mat(roll, pitch, yaw)``, which the course's follower.py used, and ROS's RPY. QuadSim
    builds the angles as ``ToRos(-eulerAngles)`` = (-e.z, e.x, -e.y) from Unity's Z-X-Y Euler
    angles e; with these signs the rotation is exactly Unity's (tests/test_follower_geometry.py
    rebuilds it the Unity way). Angles below -180 are mapped into range (+360), as the course did;
    it changes nothing in R.

Pixels
    (row, col) indices as ``scipy.ndimage.center_of_mass`` returns them: row 0 at the top, col 0 at
    the left, pixel (i, j) centred at continuous image coordinates (v, u) = (i + 0.5, j + 0.5),
    with u to the right and v down. The principal point is the image centre (W/2, H/2).

Pinhole
    fx = fy = focal * W, cx = W/2, cy = H/2. With planar depth d (distance along the optical
    axis): x = d, y = -(u - cx) d / fx, z = -(v - cy) d / fy. With range r (distance along the
    ray) the same direction is scaled to length r.

QuadSim's camera, from its source (udacity/RoboND-QuadRotor-Unity-Simulator at 6b4c7d0; the
prefab and scene are binary Unity files, so values are quoted by object and field):

- Field of view: the colour camera ``GimbalCamera`` of ``Assets/Prefabs/Quad Drone.prefab`` has
  ``field of view`` 60 (Unity's is vertical; the 256x256 render texture ``RGBCam.renderTexture``
  is square), and the scene ``proto4.unity`` does not override it. So fx = 128 / tan(30 deg) =
  221.7 px at 256 px: ``focal`` = ``QUADSIM_FOCAL`` = 0.866 image widths. The course's
  follower.py (udacity/RoboND-DeepLearning-Project ``code/follower.py:80-87``, 18216d8) used
  fx = the image size, a 53.1 degree view, with no field of view in sight; ``--focal 1`` keeps it.
- Depth scale: the depth image is that same camera's depth buffer through the ``ConvertDepth``
  shader, ``Linear01Depth`` (``RGBToDepth.cs:35``; ``DepthMat.mat`` switched to ConvertDepth in
  8929f85), so 255 is the far clip plane and the sky is 255. The prefab's far clip is 100 m at
  HEAD: 8ab95be ("Set color&depth cam back to 50m far clip", 2017-10-02 12:07) was undone 23
  minutes later by b80b193 ("Undid previous commit. Back to 100m clip"). The course's follower
  reads 255 as 50 m (``follower.py:144``, changed from 100 in 2ec8478, 2017-09-28), which
  matches only those 23 minutes. The evidence is split between the two repositories; the
  simulator's own file is the stronger one, so ``depth_max`` = ``QUADSIM_DEPTH_MAX`` = 100 m and
  ``--depth-max 50`` gives the course's reading. (QuadSim steers by its own hero, not by the
  coordinates the follower sends: ``CommandServer.OnObjectDetected`` checks line of sight to its
  true target, so the scale only moves the box markers.)

Where QuadSim's convention is ambiguous, it is a parameter (and a ``followme follow`` flag):

- ``focal`` (``--focal``), in image widths, and ``depth_max`` (``--depth-max``), above.
- Whether depth channel 0 is planar depth (a depth buffer, the default, as ``Linear01Depth``
  gives) or range along the ray: ``depth_kind`` (``--depth-kind``).
- The course's follower.py took y from the *row* and z from the *column*, with z growing
  downwards: ``[d, -(row - c) d / f, (col - c) d / f]``. That is only right for an image that is
  transposed and flipped; QuadSim's images are upright (people stand upright in the RoboND
  data, which QuadSim recorded the same way). ``pixel_axes="course"`` (``--pixel-axes course``)
  reproduces it for comparison; the default ``"pinhole"`` is the geometry above.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

QUADSIM_FOV_DEG = 60.0  # vertical = horizontal: square images
QUADSIM_FOCAL = 0.5 / math.tan(math.radians(QUADSIM_FOV_DEG / 2))  # fx / image width
QUADSIM_DEPTH_MAX = 100.0  # metres at depth value 255: the colour camera's far clip plane
DEPTH_KINDS = ("planar", "range")
PIXEL_AXES = ("pinhole", "course")


def wrap_degrees(angle: float) -> float:
    """Map an angle below -180 into range by adding 360, as the course did (QuadSim's negated
    Unity angles lie in (-360, 0])."""
    return angle + 360.0 if angle < -180.0 else angle


def rotation_rpy(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """Camera-to-world rotation ``Rz(yaw) @ Ry(pitch) @ Rx(roll)``, angles in degrees."""
    r, p, y = (math.radians(a) for a in (roll, pitch, yaw))
    cr, sr, cp, sp, cy, sy = math.cos(r), math.sin(r), math.cos(p), math.sin(p), math.cos(y), \
        math.sin(y)
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
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
    """A position (metres) and roll, pitch, yaw (degrees) in the ROS world frame: the quad's
    body (x forward, y left, z up) or the gimbal camera's (see "Camera body frame" above).
    Positive pitch tips x downwards."""

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

    def to_world(self, point: np.ndarray) -> np.ndarray:
        """A point (3,) or points (N, 3) in this frame (the camera body frame for a gimbal
        pose) -> the world."""
        return self.position + np.asarray(point, float) @ self.rotation().T

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


# QuadSim formats every number with C#'s "N4": exactly four decimals and, in the invariant
# culture, thousands separated by commas ("1,234.5678"), which collides with the field separator.
_N4 = r"-?\d{1,3}(?:,\d{3})*\.\d{4}"
_N4_POSE = re.compile(rf"\s*({_N4})" + rf"\s*,\s*({_N4})" * 5 + r"\s*")
# In a culture with a decimal comma, "N4" writes "1.234,5678": every number then splits into an
# integer part and a four-digit fraction at the field separator.
_INT_DOTS = re.compile(r"-?\d{1,3}(?:\.\d{3})*|-?\d+")


def _finite(values: list[float], text: str) -> list[float]:
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"pose {text[:80]!r}: not finite")
    return values


def parse_pose(text: str) -> Pose:
    """QuadSim's "x,y,z,roll,pitch,yaw" -> Pose; angles below -180 are wrapped into range.

    Accepts six plain numbers, and also C#'s "N4" with thousands separators ("1,234.5678") or
    with a decimal comma ("1.234,5678"), which a QuadSim running in such a locale sends. Raises
    ValueError naming the problem.
    """
    if not isinstance(text, str):
        raise ValueError(f"pose must be a string, not {type(text).__name__}")
    parts = text.split(",")
    values: list[float] | None = None
    if len(parts) == 6:
        try:
            values = [float(p) for p in parts]
        except ValueError:
            values = None
    if values is None and (m := _N4_POSE.fullmatch(text)):
        values = [float(g.replace(",", "")) for g in m.groups()]
    if values is None and len(parts) == 12:
        ints, fracs = parts[0::2], parts[1::2]
        if all(_INT_DOTS.fullmatch(i.strip()) for i in ints) and \
                all(re.fullmatch(r"\d{4}", f.strip()) for f in fracs):
            values = []
            for i, f in zip(ints, fracs, strict=True):
                whole = i.strip().replace(".", "")
                sign = -1.0 if whole.startswith("-") else 1.0
                values.append(sign * (abs(int(whole)) + int(f) / 1e4))
    if values is None:
        raise ValueError(f"pose {text[:80]!r}: expected six numbers x,y,z,roll,pitch,yaw")
    x, y, z, roll, pitch, yaw = _finite(values, text)
    return Pose(x, y, z, wrap_degrees(roll), wrap_degrees(pitch), wrap_degrees(yaw))


@dataclass(frozen=True)
class Camera:
    """QuadSim's gimbal camera as a pinhole; see the module docstring for every convention.

    ``focal`` is the focal length in image widths (fx = fy = focal * width), ``depth_max`` the
    depth in metres that the value 255 stands for.
    """

    focal: float = QUADSIM_FOCAL
    depth_max: float = QUADSIM_DEPTH_MAX
    depth_kind: str = "planar"
    pixel_axes: str = "pinhole"

    def __post_init__(self):
        if not self.focal > 0 or not self.depth_max > 0:
            raise ValueError("focal and depth_max must be positive")
        if self.depth_kind not in DEPTH_KINDS:
            raise ValueError(f"depth_kind must be one of {DEPTH_KINDS}")
        if self.pixel_axes not in PIXEL_AXES:
            raise ValueError(f"pixel_axes must be one of {PIXEL_AXES}")

    def direction(self, row: float | np.ndarray, col: float | np.ndarray, height: int,
                  width: int) -> np.ndarray:
        """The ray through pixel (row, col) of a height x width image, in the camera body frame,
        scaled so that its x (forward) component is 1: (3,), or (N, 3) for (N,) pixels."""
        fx = fy = self.focal * width
        du = np.asarray(col, float) + 0.5 - width / 2
        dv = np.asarray(row, float) + 0.5 - height / 2
        if self.pixel_axes == "course":  # the course's row/column swap, kept for comparison
            return np.stack(np.broadcast_arrays(1.0, -dv / fy, du / fx), -1)
        return np.stack(np.broadcast_arrays(1.0, -du / fx, -dv / fy), -1)

    def back_project(self, row: float | np.ndarray, col: float | np.ndarray,
                     depth: float | np.ndarray, height: int, width: int) -> np.ndarray:
        """Pixel (row, col) of a height x width image at ``depth`` metres -> (x, y, z) in the
        camera body frame: (3,), or (N, 3) for (N,) pixels."""
        ray = self.direction(row, col, height, width)
        depth = np.asarray(depth, float)[..., None]
        if self.depth_kind == "range":
            return ray * (depth / np.linalg.norm(ray, axis=-1, keepdims=True))
        return ray * depth

    def depth_metres(self, channel0: np.ndarray) -> np.ndarray:
        """Depth channel 0 (uint8) -> metres as float32, NaN where invalid: 0 (nothing rendered)
        and 255 (at or past the far limit)."""
        d = channel0.astype(np.float32) * np.float32(self.depth_max / 255.0)
        d[(channel0 == 0) | (channel0 == 255)] = np.nan
        return d
