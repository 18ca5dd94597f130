"""Where camera frames come from: ``--source quadsim`` (the default: QuadSim sends them over
Socket.IO with its quad's pose, and the follower answers QuadSim), or, for the MAVLink follower,
``camera:N`` (a V4L2/USB camera), ``video:PATH`` (a file, played at its own frame rate) or an
``rtsp://``/``http://`` stream, read with OpenCV (the headless wheel).

``--source quadsim`` with ``--mavlink`` is refused: QuadSim's frames come from QuadSim's own quad,
which QuadSim flies, so there is no camera on the MAVLink vehicle to place her with.

A source yields RGB frames (H, W, 3) uint8 with the time they were taken; frames come without
depth, so the follower ranges her by the ground (``ranging.py``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

QUADSIM = "quadsim"
CAMERA_SOURCES = "camera:N, video:PATH or rtsp://..."


@dataclass(frozen=True)
class SourceSpec:
    kind: str  # quadsim, camera, video, stream
    target: str | int

    @classmethod
    def parse(cls, text: str) -> SourceSpec:
        if text == QUADSIM:
            return cls(QUADSIM, "")
        if text.startswith("camera:") and text[len("camera:"):].isdigit():
            return cls("camera", int(text[len("camera:"):]))
        if text.startswith("video:") and len(text) > len("video:"):
            return cls("video", text[len("video:"):])
        if text.startswith(("rtsp://", "rtsps://", "http://", "https://")):
            return cls("stream", text)
        raise ValueError(f"--source {text}: give {QUADSIM}, {CAMERA_SOURCES}")


def source_for(source: str, mavlink: str | None) -> SourceSpec:
    """The ``followme follow`` source, checked against the transport: QuadSim's frames go with
    QuadSim's Socket.IO, a camera's with ``--mavlink``."""
    spec = SourceSpec.parse(source)
    if mavlink and spec.kind == QUADSIM:
        raise ValueError(f"--source {QUADSIM} (the default) with --mavlink: QuadSim's frames "
                         "come from QuadSim's own quad; give the vehicle's camera as "
                         f"--source {CAMERA_SOURCES}")
    if not mavlink and spec.kind != QUADSIM:
        raise ValueError(f"--source {source}: frames for the MAVLink follower; add --mavlink URL "
                         f"(without it, QuadSim sends its own frames: --source {QUADSIM})")
    return spec


class FrameSource:
    """An OpenCV capture. Iterate for (rgb, monotonic time) pairs; a video plays in real time,
    unless ``realtime`` is False (tests, benchmarks)."""

    def __init__(self, spec: SourceSpec, realtime: bool = True):
        if spec.kind == QUADSIM:
            raise ValueError(f"--source {QUADSIM}: QuadSim's frames come over Socket.IO, not "
                             "from OpenCV")
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
