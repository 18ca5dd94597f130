"""``followme follow``'s settings: the follow core's and the QuadSim server's."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from followme.follower.geometry import Camera

FRAME_SIZE = 256  # QuadSim's camera images are 256 x 256
MAX_PAYLOAD = 4 * 1024 * 1024  # bytes of one sensor_frame


@dataclass
class FollowConfig:
    host: str = "127.0.0.1"
    port: int = 4567
    min_pixels: int = 10  # the hero needs more mask pixels than this
    lost_after: int = 7  # Lost on this miss in a row (the course: num_no_see > 6)
    max_payload: int = MAX_PAYLOAD  # bytes of one message
    frame_size: int = FRAME_SIZE
    camera: Camera = field(default_factory=Camera)
    viz: Path | None = None  # write the overlay PNG here
    record: Path | None = None  # record frames and predictions here (RoboND layout)
    log_every: float = 10.0  # seconds between stats lines
    # Host header names accepted besides loopback and ``host`` ("*": any), see hosts.host_allowed
    allow_hosts: tuple[str, ...] = ()
