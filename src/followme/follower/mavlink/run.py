"""``followme follow --mavlink URL``: frames from a camera source, commands to the vehicle.

Two threads: the frames (source -> model -> Detected / Lost, as fast as the model goes, the
newest frame only) and the stream (the commander's messages at ``rate_hz``, 10 Hz by default,
whether frames come or not, so the autopilot's timeouts see the follower stop when it stops).
The live page (``live.py``) shows what it sees on ``http://HOST:PORT/``, --host and --port as
for QuadSim.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from pathlib import Path

import numpy as np

from followme.follower.config import FollowConfig
from followme.follower.live import LiveFeed, LiveServer
from followme.follower.mavlink.autopilots import autopilot
from followme.follower.mavlink.commander import CommanderSettings, FollowCommander
from followme.follower.mavlink.follower import MavlinkFollower
from followme.follower.mavlink.link import MavlinkLink
from followme.follower.pipeline import Segmenter
from followme.follower.sources import FrameSource
from followme.follower.tracking import Detected

log = logging.getLogger("followme.follower.mavlink")


def follow_mavlink(segmenter: Segmenter, source: FrameSource, url: str,
                   settings: CommanderSettings, config: FollowConfig | None = None,
                   mount_pitch: float | None = None, command_log: str | Path | None = None,
                   rate_hz: float = 10.0, stop: threading.Event | None = None,
                   log_every: float = 10.0) -> dict:
    """Follow until the source ends, ``stop`` is set or Ctrl-C; returns the run's counts.
    The live page is served on ``config``'s host and port."""
    stop = stop or threading.Event()
    config = config or FollowConfig()
    if command_log:
        Path(command_log).parent.mkdir(parents=True, exist_ok=True)
    counts = {"frames": 0, "no_pose": 0, "detected": 0, "lost": 0}
    latencies: list[float] = []

    def figures() -> dict:
        p50, p99 = np.percentile(latencies[-500:], [50, 99]) if latencies else (None, None)
        return {**counts, "latency_p50_ms": p50, "latency_p99_ms": p99}

    feed = LiveFeed("followme follow --mavlink", figures)
    with contextlib.ExitStack() as stack:
        stack.callback(source.close)
        server = LiveServer(feed, config.host, config.port, config.allow_hosts)
        try:
            url_page = stack.enter_context(server)
        except OSError as e:
            raise OSError(f"--host {config.host} --port {config.port}: {e}") from e
        log.info("mavlink: the live page is on %s", url_page)
        link = MavlinkLink(url, autopilot(settings.autopilot), command_log)
        stack.callback(link.close)
        follower = MavlinkFollower(segmenter, link, FollowCommander(settings), config,
                                   mount_pitch, live=feed)
        _follow(follower, source, link, rate_hz, stop, log_every, counts, latencies)
    return {**counts, "sent": dict(link.sent), "received": dict(link.received)}


def _follow(follower: MavlinkFollower, source: FrameSource, link: MavlinkLink, rate_hz: float,
            stop: threading.Event, log_every: float, counts: dict, latencies: list[float]
            ) -> None:
    """The frames on this thread, the stream on its own, until the source ends, ``stop`` or
    Ctrl-C."""

    def stream() -> None:
        next_at = time.monotonic()
        while not stop.wait(max(0.0, next_at - time.monotonic())):
            # on a fixed schedule, so the rate does not drift below; no burst after a stall
            next_at = max(next_at + 1.0 / rate_hz, time.monotonic())
            try:
                follower.tick()
            except Exception as e:  # a socket error, a bug: said, and the stream goes on
                log.warning("mavlink: sending failed: %s", e)

    streamer = threading.Thread(target=stream, daemon=True, name="mavlink-stream")
    streamer.start()
    last_log = time.monotonic()
    try:
        for rgb, taken in source:
            if stop.is_set():
                break
            before = follower.posed
            event = follower.process(rgb)
            counts["frames"] += 1
            counts["no_pose"] += follower.posed == before
            counts["detected"] += isinstance(event, Detected)
            counts["lost"] += event is not None and not isinstance(event, Detected)
            latencies.append((time.monotonic() - taken) * 1000)
            if time.monotonic() - last_log >= log_every:
                last_log = time.monotonic()
                p50, p99 = np.percentile(latencies[-500:], [50, 99])
                log.info("mavlink: frames %d (no vehicle pose yet %d) detected %d lost %d, "
                         "latency p50 %.0f ms p99 %.0f ms; sent %s", counts["frames"],
                         counts["no_pose"], counts["detected"], counts["lost"], p50, p99,
                         dict(link.sent))
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        streamer.join(2.0)
