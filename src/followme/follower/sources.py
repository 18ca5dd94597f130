"""Where camera frames come from when QuadSim does not send them: ``--source camera:N``
(a V4L2/USB camera), ``video:PATH`` (a file, played at its own frame rate) or an
``rtsp://``/``http://`` stream, read with OpenCV (the headless wheel).

A source yields RGB frames (H, W, 3) uint8 with the time they were taken; frames come without
depth, so the follower ranges her by the ground (``ranging.py``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SourceSpec:
    kind: str  # camera, video, stream
    target: str | int

    @classmethod
    def parse(cls, text: str) -> SourceSpec:
        if text.startswith("camera:") and text[len("camera:"):].isdigit():
            return cls("camera", int(text[len("camera:"):]))
        if text.startswith("video:") and len(text) > len("video:"):
            return cls("video", text[len("video:"):])
        if text.startswith(("rtsp://", "rtsps://", "http://", "https://")):
            return cls("stream", text)
        raise ValueError(f"--source {text}: give camera:N, video:PATH or rtsp://...")


class FrameSource:
    """An OpenCV capture. Iterate for (rgb, monotonic time) pairs; a video plays in real time,
    unless ``realtime`` is False (tests, benchmarks)."""

    def __init__(self, spec: SourceSpec, realtime: bool = True):
        try:
            import cv2
        except ModuleNotFoundError as e:
            raise ValueError("--source needs OpenCV: pip install -e '.[camera]'") from e

        self.spec, self.realtime = spec, realtime
        if spec.kind == "video":
            from pathlib import Path

            if not Path(spec.target).is_file():
                raise FileNotFoundError(f"--source video:{spec.target}: no such file")
        self.capture = cv2.VideoCapture(spec.target)
        if not self.capture.isOpened():
            raise OSError(f"--source {spec.kind}:{spec.target}: OpenCV cannot open it")
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        self.period = 1.0 / fps if spec.kind == "video" and realtime and fps > 0 else 0.0
        self._cv2 = cv2

    def __iter__(self) -> Iterator[tuple[np.ndarray, float]]:
        if self.spec.kind != "video":
            yield from self._newest()
            return
        next_at = time.monotonic()
        while True:
            ok, bgr = self.capture.read()
            if not ok:
                return
            if self.period:
                next_at += self.period
                time.sleep(max(0.0, next_at - time.monotonic()))
            yield self._cv2.cvtColor(bgr, self._cv2.COLOR_BGR2RGB), time.monotonic()

    def _newest(self) -> Iterator[tuple[np.ndarray, float]]:
        """A camera or a stream: a thread reads every frame as it comes (stamped on arrival),
        and only the newest is handed on, so a slow model never falls behind the camera."""
        latest: list = []
        arrived = threading.Condition()
        done = threading.Event()

        def grab() -> None:
            while not done.is_set():
                ok, bgr = self.capture.read()
                with arrived:
                    latest[:] = [(bgr, time.monotonic())] if ok else [None]
                    arrived.notify()
                if not ok:
                    return

        reader = threading.Thread(target=grab, daemon=True, name="frame-source")
        reader.start()
        try:
            while True:
                with arrived:
                    arrived.wait_for(lambda: bool(latest))
                    item = latest.pop()
                if item is None:
                    return
                yield self._cv2.cvtColor(item[0], self._cv2.COLOR_BGR2RGB), item[1]
        finally:
            done.set()

    def close(self) -> None:
        self.capture.release()
