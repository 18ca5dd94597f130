"""The follower over MAVLink: camera frame -> mask -> target -> Detected | Lost -> commands.

The camera's pose comes from the vehicle's telemetry (LOCAL_POSITION_NED and the gimbal's
GIMBAL_DEVICE_ATTITUDE_STATUS, or a fixed mount pitched ``mount_pitch`` degrees down on the
vehicle's yaw), so the hero lands in the vehicle's own local frame. A camera without depth
ranges her by the ground: where a downward rangefinder's DISTANCE_SENSOR puts it under the
vehicle (fresh within ``GROUND_FRESH`` s), else flat at the local origin's height.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

import numpy as np

from followme.follower.config import FollowConfig
from followme.follower.geometry import Pose
from followme.follower.live import LiveFeed
from followme.follower.mavlink.commander import FollowCommander
from followme.follower.mavlink.frames import camera_pose, euler_to_matrix, matrix_to_euler
from followme.follower.mavlink.link import MavlinkLink
from followme.follower.pipeline import CameraFrame, FramePipeline, Segmenter
from followme.follower.tracking import Detected, FollowEvent, HeroTracker

GROUND_FRESH = 1.0  # s: an older rangefinder reading is not used


class MavlinkFollower:
    def __init__(self, segmenter: Segmenter, link: MavlinkLink, commander: FollowCommander,
                 config: FollowConfig | None = None, mount_pitch: float | None = None,
                 clock: Callable[[], float] = time.monotonic, live: LiveFeed | None = None):
        self.config = config or FollowConfig()
        self.live = live  # the live page's feed: each processed frame and the state
        self.pipeline = FramePipeline(segmenter, self.config)
        self.tracker = HeroTracker(self.config.lost_after)
        self.link, self.commander = link, commander
        self.mount_pitch = mount_pitch
        self.clock = clock
        self.frames = self.posed = 0
        self._lock = threading.Lock()  # frames and the stream run on threads of their own

    def camera_pose(self) -> Pose | None:
        """The camera in the follower's world now, or None before the telemetry needed."""
        s = self.link.state
        if s.position is None:
            return None
        if s.gimbal is not None:
            roll, pitch, yaw = s.gimbal
            if not s.gimbal_earth_yaw:
                if s.attitude is None:
                    return None
                yaw += s.attitude[2]
            return camera_pose(s.position, roll, pitch, yaw)
        if self.mount_pitch is not None and s.attitude is not None:
            # the camera turns with the vehicle: its attitude, then the mount's pitch
            body = euler_to_matrix(*s.attitude)
            mount = euler_to_matrix(0.0, -math.radians(self.mount_pitch), 0.0)
            return camera_pose(s.position, *matrix_to_euler(body @ mount))
        return None

    def process(self, rgb: np.ndarray, depth: np.ndarray | None = None) -> FollowEvent | None:
        """One camera frame: RGB and its depth in metres (NaN where unknown), or None for a
        camera without depth (ranged by the ground)."""
        self.frames += 1
        pose = self.camera_pose()
        if pose is None:
            return None
        self.posed += 1
        now = self.clock()
        ground_z = self.ground_z() if depth is None else 0.0  # only ranging uses it
        result = self.pipeline(CameraFrame(rgb, depth, pose, now, ground_z))
        event = self.tracker.update(result.candidates, now)
        with self._lock:
            self.commander.on_event(event, self.clock())
        if self.live is not None:
            target = event.target if isinstance(event, Detected) else None
            self.live.frame(result.rgb, result.mask, target.pixel if target else None)
            self.live.follow(event)
        return event

    def ground_z(self) -> float:
        """The ground's height in the follower's world (z up, 0 at the local origin): the
        rangefinder's reading under the vehicle, tilted by its attitude, when one is fresh."""
        s = self.link.state
        if s.ground_below is None or s.position is None or s.attitude is None or \
                self.link.clock() - s.ground_time > GROUND_FRESH:
            return 0.0
        roll, pitch, _ = s.attitude
        return float(-s.position[2] - s.ground_below * math.cos(roll) * math.cos(pitch))

    def tick(self) -> None:
        """Send what the commander says now (the stream: 5 Hz or more)."""
        with self._lock:
            if self.link.vehicle_sysid is not None:  # the vehicle we hear, not system 1
                self.commander.settings.target_system = self.link.vehicle_sysid
                self.commander.settings.target_component = self.link.vehicle_compid
            self.link.send(self.commander.tick(self.link.state, self.clock()),
                           self.commander.notes)

    def hero_world(self) -> np.ndarray | None:
        """Where the commander believes she is, in the follower's world."""
        hero = self.commander.hero
        if hero is None:
            return None
        n, e, d = hero.position
        return np.array([n, -e, -d])
