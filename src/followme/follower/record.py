"""``--record DIR``: the frames the follower sees, with its predictions, in the RoboND layout.

    DIR/images/<run>cam1_<n>.jpeg     the camera frame exactly as QuadSim sent it
    DIR/masks/<run>_mask_<n>.png      the predicted hero as a one-hot mask (blue = hero, red =
                                      everything else; other people are *not* separated)
    DIR/depth/<run>depth_<n>.png      the depth image as sent (.jpeg if it came as a JPEG)
    DIR/frames.csv                    n, client, timestamp, pose, gimbal_pose, hero pixels, x, y, z

Masks are model predictions, not truth: review them (and label the other people) before training
on them. Files are written by a thread of their own; when it falls behind, frames are skipped and
counted rather than slowing the follower.
"""

from __future__ import annotations

import csv
import logging
import queue
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from followme.data.robond import labels_to_mask
from followme.follower.geometry import Pose
from followme.follower.target import Target

log = logging.getLogger(__name__)


def _pose_text(p: Pose) -> str:
    return ",".join(f"{v:.4f}" for v in (p.x, p.y, p.z, p.roll, p.pitch, p.yaw))


class Recorder:
    def __init__(self, root: str | Path, run: str | None = None, max_waiting: int = 256):
        self.root = Path(root)
        for sub in ("images", "masks", "depth"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.run = run or "follow" + time.strftime("%Y%m%d%H%M%S")
        self.skipped = 0
        self.written = 0
        self._n = 0
        self._queue: queue.Queue = queue.Queue(max_waiting)
        new = not (self.root / "frames.csv").exists()
        self._csv_file = open(self.root / "frames.csv", "a", newline="")
        self._csv = csv.writer(self._csv_file)
        if new:
            self._csv.writerow(["n", "client", "timestamp", "pose", "gimbal_pose", "hero_pixels",
                                "x", "y", "z"])
        self._thread = threading.Thread(target=self._run, name="follower-record", daemon=True)
        self._thread.start()

    def add(self, client: str, timestamp: float, rgb_jpeg: bytes, depth: bytes, pose: Pose,
            gimbal: Pose, mask: np.ndarray, frame_size: int, target: Target | None) -> bool:
        """Queue one frame; False (and counted) when the writer is behind."""
        item = (self._n, client, timestamp, rgb_jpeg, depth, pose, gimbal, mask, frame_size,
                target)
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.skipped += 1
            if self.skipped == 1 or self.skipped % 100 == 0:
                log.warning("record: writer behind, %d frame(s) skipped", self.skipped)
            return False
        self._n += 1
        return True

    def close(self, timeout: float = 10.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)
        self._csv_file.close()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                self._write(*item)
                self.written += 1
            except OSError as e:
                log.warning("record: %s", e)

    def _write(self, n, client, timestamp, rgb_jpeg, depth, pose, gimbal, mask, frame_size,
               target) -> None:
        name = f"{n:05d}"
        (self.root / "images" / f"{self.run}cam1_{name}.jpeg").write_bytes(rgb_jpeg)
        suffix = ".png" if depth.startswith(b"\x89PNG") else ".jpeg"
        (self.root / "depth" / f"{self.run}depth_{name}{suffix}").write_bytes(depth)
        hero = np.asarray(Image.fromarray(mask.astype(np.uint8)).resize(
            (frame_size, frame_size), Image.NEAREST)).astype(bool)
        labels = np.where(hero, 2, 0).astype(np.uint8)
        Image.fromarray(labels_to_mask(labels)).save(
            self.root / "masks" / f"{self.run}_mask_{name}.png")
        xyz = [f"{v:.3f}" for v in target.world] if target else ["", "", ""]
        self._csv.writerow([n, client, f"{timestamp:.3f}", _pose_text(pose), _pose_text(gimbal),
                            int(mask.sum()), *xyz])
        self._csv_file.flush()
