"""The follow core, free of any transport: camera frame -> hero mask -> targets, and the
tracker (``tracking.py``) that tells which target is she: Detected or Lost.

A transport (QuadSim's Socket.IO in ``quadsim/``, the sim's links, MAVLink) decodes its own
messages into a ``CameraFrame``, runs a ``FramePipeline`` on it and speaks the ``HeroTracker``'s
answers in its own protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from followme.follower.config import FollowConfig
from followme.follower.geometry import Pose
from followme.follower.ranging import ground_depth
from followme.follower.target import Target, locate_people

# segmenter(frame (H, W, 3) uint8) -> hero mask (s, s) bool: segment.HeroSegmenter, the sim's
# oracle, or a test's stand-in
Segmenter = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class CameraFrame:
    """One decoded camera frame."""

    rgb: np.ndarray  # (H, W, 3) uint8
    # (H', W') float metres along the camera's axis, NaN where unknown; None: a camera without
    # depth, ranged by the ground plane at z = ground_z (ranging.py)
    depth: np.ndarray | None
    gimbal: Pose  # the camera's pose in the world
    time: float | None = None  # s, when it was taken (the tracker's clock); None: on arrival
    ground_z: float = 0.0  # m, the ground's height in the world, for a camera without depth


@dataclass(frozen=True)
class FrameResult:
    candidates: list[Target]  # every group of hero pixels, largest first
    mask: np.ndarray
    rgb: np.ndarray

    @property
    def target(self) -> Target | None:
        """The largest candidate."""
        return self.candidates[0] if self.candidates else None


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
            ground_depth(mask, frame.gimbal, self.config.camera, frame.ground_z)
        candidates = locate_people(mask, depth, frame.gimbal, self.config.camera,
                                   self.config.min_pixels, rgb=frame.rgb)
        return FrameResult(candidates, mask, frame.rgb)

    def warm_up(self) -> None:
        """One blank frame through the model, so the first real frame is not the slow one."""
        self.segmenter(np.zeros((self.config.frame_size, self.config.frame_size, 3), np.uint8))
