"""The vehicle's frames and the follower's.

MAVLink's local frame is NED (x north, y east, z down) and its attitudes are roll, pitch, yaw
of the body's FRD axes (x forward, y right, z down): pitch up and yaw clockwise from north are
positive. The follow core works in a right-handed z-up world (``geometry``): here x north,
y west, z up, with the camera's x along its optical axis, y to the image's left, z to its top.
The change between them is the 180 degree turn C = diag(1, -1, -1) on both sides, so
R_world = C R_ned C: roll stays, pitch and yaw change sign.
"""

from __future__ import annotations

import math

import numpy as np

from followme.follower.geometry import Pose, rotation_rpy

EARTH_RADIUS = 6_378_137.0  # m, WGS-84 equatorial: flat-earth offsets over a few hundred metres


def ned_to_world(ned) -> np.ndarray:
    """(north, east, down) -> (x north, y west, z up)."""
    n, e, d = (float(v) for v in ned)
    return np.array([n, -e, -d])


def world_to_ned(world) -> np.ndarray:
    """(x north, y west, z up) -> (north, east, down)."""
    x, y, z = (float(v) for v in world)
    return np.array([x, -y, -z])


def camera_pose(position_ned, roll: float, pitch: float, yaw: float) -> Pose:
    """The camera's pose in the follower's world from its NED position and its MAVLink attitude
    (radians, earth frame, FRD camera axes: x out of the lens)."""
    x, y, z = ned_to_world(position_ned)
    return Pose(x, y, z, math.degrees(roll), -math.degrees(pitch), -math.degrees(yaw))


def quaternion_to_euler(q) -> tuple[float, float, float]:
    """MAVLink's quaternion (w, x, y, z) -> (roll, pitch, yaw) in radians, ZYX."""
    w, x, y, z = (float(v) for v in q)
    roll = math.atan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
    pitch = math.asin(max(-1.0, min(1.0, 2 * (w * y - z * x))))
    yaw = math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    return roll, pitch, yaw


def euler_to_quaternion(roll: float, pitch: float, yaw: float) -> tuple[float, float, float, float]:
    """(roll, pitch, yaw) radians, ZYX -> MAVLink's quaternion (w, x, y, z)."""
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return (cr * cp * cy + sr * sp * sy, sr * cp * cy - cr * sp * sy,
            cr * sp * cy + sr * cp * sy, cr * cp * sy - sr * sp * cy)


def offset_to_global(lat_deg: float, lon_deg: float, north: float, east: float
                     ) -> tuple[float, float]:
    """A point ``north``, ``east`` metres from (lat, lon), on a flat earth: good to centimetres
    over the few hundred metres a follower works in."""
    lat = lat_deg + math.degrees(north / EARTH_RADIUS)
    lon = lon_deg + math.degrees(east / (EARTH_RADIUS * math.cos(math.radians(lat_deg))))
    return lat, lon


def global_to_offset(lat0: float, lon0: float, lat: float, lon: float) -> tuple[float, float]:
    """The inverse of ``offset_to_global``: (north, east) metres of (lat, lon) from (lat0, lon0)."""
    north = math.radians(lat - lat0) * EARTH_RADIUS
    east = math.radians(lon - lon0) * EARTH_RADIUS * math.cos(math.radians(lat0))
    return north, east


def euler_to_matrix(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """(roll, pitch, yaw) radians, ZYX, FRD body -> NED: Rz(yaw) @ Ry(pitch) @ Rx(roll)."""
    return rotation_rpy(math.degrees(roll), math.degrees(pitch), math.degrees(yaw))


def matrix_to_euler(r: np.ndarray) -> tuple[float, float, float]:
    """The inverse of ``euler_to_matrix``."""
    pitch = math.asin(max(-1.0, min(1.0, -float(r[2, 0]))))
    return math.atan2(float(r[2, 1]), float(r[2, 2])), pitch, math.atan2(float(r[1, 0]),
                                                                         float(r[0, 0]))

