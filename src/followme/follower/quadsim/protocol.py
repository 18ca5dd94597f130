"""QuadSim's wire format: a ``sensor_frame`` event -> a checked ``SensorFrame``, and the events
the follower sends back.

QuadSim (its ``CommandServer.cs``) emits ``sensor_frame`` with five string fields:

- ``timestamp``: seconds since 1970;
- ``rgb_image``: base64 JPEG, 256 x 256 RGB;
- ``depth_image``: base64 PNG (RGBA; JPEG also accepted) whose channel 0 is planar depth,
  value / 255 * the far clip plane (100 m, ``geometry.QUADSIM_DEPTH_MAX``), the sky 255;
- ``pose`` and ``gimbal_pose``: "x,y,z,roll,pitch,yaw", ROS world frame, degrees
  (``geometry.parse_pose``).

Parsing is split in two so that frames dropped under load are never decoded: ``parse_sensor_frame``
(cheap: shape, size cap, types, numbers, base64) runs as a frame arrives; ``decode_rgb`` and
``decode_depth`` (image decoding) run on the worker. Each raises ``MalformedFrame`` with a short
``reason`` (a counter key) and a message naming the field.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from followme.follower.config import FRAME_SIZE, MAX_PAYLOAD
from followme.follower.geometry import Camera, Pose, parse_pose
from followme.follower.pipeline import CameraFrame
from followme.follower.tracking import Detected, FollowEvent, Lost

FIELDS = ("timestamp", "rgb_image", "depth_image", "pose", "gimbal_pose")


class MalformedFrame(ValueError):
    """A sensor_frame that cannot be used. ``reason`` is one of: payload, missing, type, number,
    base64, image, size, channels, oversize."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class SensorFrame:
    """One checked sensor_frame; the images are still encoded."""

    timestamp: float
    rgb: bytes  # JPEG
    depth: bytes  # PNG or JPEG
    pose: Pose  # the quad
    gimbal: Pose  # the camera

    @property
    def nbytes(self) -> int:
        return len(self.rgb) + len(self.depth)


def payload_size(data: dict) -> int:
    """Characters of the string keys and values of a sensor_frame dict."""
    return sum((len(k) if isinstance(k, str) else 0) + (len(v) if isinstance(v, str) else 0)
               for k, v in data.items())


def _number(text: str, field: str) -> float:
    try:
        value = float(text)
    except ValueError:
        try:  # a decimal comma, as C#'s ToString() writes it in some cultures
            value = float(text.replace(",", "."))
        except ValueError:
            raise MalformedFrame("number", f"{field}: {text[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise MalformedFrame("number", f"{field}: {text[:40]!r} is not finite")
    return value


def _base64(text: str, field: str) -> bytes:
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise MalformedFrame("base64", f"{field}: not base64 ({e})") from None
    if not data:
        raise MalformedFrame("base64", f"{field}: empty")
    return data


def parse_sensor_frame(data: object, max_bytes: int = MAX_PAYLOAD) -> SensorFrame:
    """A sensor_frame event's payload -> SensorFrame, or MalformedFrame naming the field."""
    if not isinstance(data, dict):
        raise MalformedFrame("payload", f"sensor_frame payload is a {type(data).__name__}, "
                                        "not an object")
    size = payload_size(data)
    if size > max_bytes:
        raise MalformedFrame("oversize", f"sensor_frame of {size} bytes is over the cap of "
                                         f"{max_bytes} bytes")
    for field in FIELDS:
        if field not in data:
            raise MalformedFrame("missing", f"{field}: missing")
        if not isinstance(data[field], str):
            raise MalformedFrame("type", f"{field}: a {type(data[field]).__name__}, not a string")
    timestamp = _number(data["timestamp"], "timestamp")
    poses = []
    for field in ("pose", "gimbal_pose"):
        try:
            poses.append(parse_pose(data[field]))
        except ValueError as e:
            raise MalformedFrame("number", f"{field}: {e}") from None
    return SensorFrame(timestamp, _base64(data["rgb_image"], "rgb_image"),
                       _base64(data["depth_image"], "depth_image"), poses[0], poses[1])


def _open(data: bytes, field: str, size: int, modes: tuple[str, ...]) -> Image.Image:
    """Open, check size and mode before decoding the pixels, then decode."""
    try:
        im = Image.open(io.BytesIO(data), formats=("JPEG", "PNG"))
    except Exception as e:  # PIL raises several types for garbage
        raise MalformedFrame("image", f"{field}: not a JPEG or PNG image ({e})") from None
    if im.size != (size, size):
        raise MalformedFrame("size", f"{field}: {im.size[0]}x{im.size[1]}, expected "
                                     f"{size}x{size}")
    if im.mode not in modes:
        raise MalformedFrame("channels", f"{field}: mode {im.mode}, expected one of {modes}")
    try:
        im.load()
    except Exception as e:  # truncated or corrupt pixel data
        raise MalformedFrame("image", f"{field}: corrupt image ({e})") from None
    return im


def decode_rgb(data: bytes, size: int = FRAME_SIZE) -> np.ndarray:
    """rgb_image bytes -> (size, size, 3) uint8; only 3-channel RGB is accepted."""
    return np.asarray(_open(data, "rgb_image", size, ("RGB",)))


def decode_depth(data: bytes, size: int = FRAME_SIZE) -> np.ndarray:
    """depth_image bytes -> channel 0 as (size, size) uint8. QuadSim sends an RGBA PNG; grey and
    RGB are accepted too."""
    a = np.asarray(_open(data, "depth_image", size, ("L", "RGB", "RGBA")))
    return a if a.ndim == 2 else np.ascontiguousarray(a[..., 0])


def camera_frame(frame: SensorFrame, size: int = FRAME_SIZE, camera: Camera | None = None
                 ) -> CameraFrame:
    """Decode a checked sensor_frame's images for the follow core (on the worker)."""
    camera = camera or Camera()
    return CameraFrame(decode_rgb(frame.rgb, size),
                       camera.depth_metres(decode_depth(frame.depth, size)), frame.gimbal,
                       frame.timestamp)


# --- events the follower sends (QuadSim's utils/sio_msgs.py) ---

def object_detected(world: tuple[float, float, float]) -> dict:
    return {"coords": [float(v) for v in world]}


def create_box_marker(marker_id: int, world: tuple[float, float, float],
                      dimensions: tuple[float, float, float] = (0.7, 0.7, 2.0),
                      color: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 0.1),
                      duration: float = 0.4) -> dict:
    """A box at ``world`` with no rotation; QuadSim deletes it after ``duration`` seconds."""
    return {"id": int(marker_id), "pose": [float(v) for v in world] + [0.0, 0.0, 0.0],
            "dimensions": list(dimensions), "color": list(color), "duration": duration}


def delete_marker(marker_id: int) -> dict:
    """Deletes the marker with this id. The course's ``sio_msgs.py`` says -1 deletes every
    marker, but QuadSim's ``MarkerMaker.DeleteMarker`` (``MarkerMaker.cs:64-73``, 74d34c8) has no
    such case: -1 deletes only a marker whose id is -1."""
    return {"id": int(marker_id)}


def object_lost() -> dict:
    return {"data": ""}


Event = tuple[str, dict]  # (name, payload) as on the wire


class QuadSimEvents:
    """One client's Detected / Lost -> the QuadSim events that say them: object_detected and a
    box marker for each sighting; object_lost and the deletion of the last marker on loss."""

    def __init__(self):
        self._marker = -1

    def __call__(self, event: FollowEvent | None) -> list[Event]:
        if isinstance(event, Detected):
            self._marker = (self._marker + 1) % 100_000
            return [("object_detected", object_detected(event.world)),
                    ("create_box_marker", create_box_marker(self._marker, event.world))]
        if isinstance(event, Lost):
            return [("object_lost", object_lost()), ("delete_marker", delete_marker(self._marker))]
        return []


def follow_events(events: list[Event]) -> list[FollowEvent]:
    """What a follower said on the wire, read back as Detected / Lost (markers carry nothing
    new: each one sits where the hero was detected)."""
    out: list[FollowEvent] = []
    for name, data in events:
        if name == "object_detected":
            out.append(Detected(tuple(float(v) for v in data["coords"][:3])))
        elif name == "object_lost":
            out.append(Lost())
    return out
