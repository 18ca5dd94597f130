"""The follow core, free of any transport: camera frame -> hero mask -> target, and a tracker
that turns each frame's target into Detected or Lost.

A transport (QuadSim's Socket.IO in ``quadsim/``, the sim's links) decodes its own messages into
a ``CameraFrame``, runs a ``FramePipeline`` on it and speaks the ``HeroTracker``'s answers in its
own protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from followme.follower.config import FollowConfig
from followme.follower.geometry import Pose
from followme.follower.ranging import ground_depth
from followme.follower.target import Target, locate_hero

# segmenter(frame (H, W, 3) uint8) -> hero mask (s, s) bool: segment.HeroSegmenter, the sim's
# oracle, or a test's stand-in
Segmenter = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class CameraFrame:
    """One decoded camera frame."""

    rgb: np.ndarray  # (H, W, 3) uint8
    # (H', W') float metres along the camera's axis, NaN where unknown; None: a camera without
    # depth, ranged by the ground plane at z = 0 (ranging.py)
    depth: np.ndarray | None
    gimbal: Pose  # the camera's pose in the world


@dataclass(frozen=True)
class FrameResult:
    target: Target | None
    mask: np.ndarray
    rgb: np.ndarray


class FramePipeline:
    """camera frame -> hero mask -> target, one frame at a time (on the worker)."""

    def __init__(self, segmenter: Segmenter, config: FollowConfig):
        self.segmenter = segmenter
        self.config = config

    def __call__(self, frame: CameraFrame) -> FrameResult:
        mask = np.asarray(self.segmenter(frame.rgb), dtype=bool)
        if mask.ndim != 2:
            raise ValueError(f"segmenter returned a mask of shape {mask.shape}")
        depth = frame.depth if frame.depth is not None else \
            ground_depth(mask, frame.gimbal, self.config.camera)
        target = locate_hero(mask, depth, frame.gimbal, self.config.camera,
                             self.config.min_pixels)
        return FrameResult(target, mask, frame.rgb)

    def warm_up(self) -> None:
        """One blank frame through the model, so the first real frame is not the slow one."""
        self.segmenter(np.zeros((self.config.frame_size, self.config.frame_size, 3), np.uint8))


@dataclass(frozen=True)
class Detected:
    """The hero is at ``world`` (ROS world frame, metres); ``target`` holds the frame's
    measurements where they are known (not for an answer read back from a wire)."""

    world: tuple[float, float, float]
    target: Target | None = None


@dataclass(frozen=True)
class Lost:
    """The hero, seen before, has been missed ``lost_after`` frames in a row."""


FollowEvent = Detected | Lost


class HeroTracker:
    """One quad's follow state: Detected for every frame with a target; Lost once, on the
    ``lost_after``-th processed frame in a row without one, following a sighting; otherwise
    None. The course's follower.py sends object_lost when ``num_no_see > 6``, the 7th miss
    (``code/follower.py:175``, 18216d8): the default. Malformed and dropped frames do not count
    either way."""

    def __init__(self, lost_after: int = 7):
        self.lost_after = lost_after
        self.seen = False
        self.misses = 0

    def update(self, target: Target | None) -> FollowEvent | None:
        if target is not None:
            self.seen, self.misses = True, 0
            return Detected(target.world, target)
        if not self.seen:
            return None
        self.misses += 1
        if self.misses < self.lost_after:
            return None
        self.seen, self.misses = False, 0
        return Lost()
