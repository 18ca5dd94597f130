"""``followme sim serve``: the simulated world in QuadSim's place, a Socket.IO client of a
follower (``followme follow``, or the course's follower.py).

Like QuadSim it dials ``ws://HOST:PORT/socket.io/?EIO=4&transport=websocket`` (a raw WebSocket,
Engine.IO 3 framing, a ping every 0.33 s: ``link.SocketIOFollower``) and retries until the
follower is up, then streams ``sensor_frame`` events at the camera rate (QuadSim's 5 Hz) in real
time and obeys
object_detected, create_box_marker, delete_marker and object_lost. Simulated time keeps to the
wall clock: when a frame takes longer than a camera period, the world steps on and the frame
rate drops, as QuadSim's would. A follower that goes away is dialled again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

import websocket

from followme.sim.link import SocketIOFollower
from followme.sim.loop import ClosedLoop, LoopSettings, Observer, OracleSegmenter

log = logging.getLogger(__name__)


def connect(url: str, wait: float) -> SocketIOFollower:
    """A streaming client of the follower at ``url``, retrying once a second for ``wait`` s."""
    deadline = time.monotonic() + wait
    said = False
    while True:
        try:
            return SocketIOFollower(url)
        except (OSError, websocket.WebSocketException) as e:
            if time.monotonic() >= deadline:
                raise ConnectionError(f"no follower answered at {url} within {wait:g} s: start "
                                      "`followme follow` (or pass --host/--port)") from e
            if not said:
                log.info("sim serve: waiting for a follower at %s", url)
                said = True
            time.sleep(1.0)


def serve_sim(settings: LoopSettings, url: str, observers: Iterable[Observer] = (),
              wait: float = 300.0, stop: threading.Event | None = None,
              oracle: OracleSegmenter | None = None) -> ClosedLoop:
    """Stream to the follower at ``url`` for ``settings.seconds`` (or until ``stop`` is set,
    or Ctrl-C); returns the closed loop (its metrics hold the run). ``oracle``: an
    OracleSegmenter that the follower uses in this process, told each frame's labels."""
    loop = ClosedLoop(settings)
    period = 1.0 / settings.camera_hz
    link = None
    try:
        link = connect(url, wait)
        log.info("sim serve: connected to %s; streaming %g s at %g Hz", url, settings.seconds,
                 settings.camera_hz)
        start = time.monotonic()
        while loop.time < settings.seconds and not (stop and stop.is_set()):
            if not link.connected:
                log.warning("sim serve: the follower went away; dialling again")
                loop.longest_pong_wait = max(loop.longest_pong_wait, link.longest_pong_wait)
                link.close()
                link = connect(url, wait)
            frame, fields = loop.capture()
            if oracle is not None:
                oracle.expect(fields, frame.labels)
            step = loop.answer(frame, link.send(fields))
            for observe in observers:
                observe(step)
            ahead = loop.time + period - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
            loop.advance(max(period, time.monotonic() - start - loop.time))
    except KeyboardInterrupt:
        log.warning("sim serve: stopped at %.1f s", loop.time)
    finally:
        loop.metrics.finish(loop.time)
        if link is not None:
            loop.longest_pong_wait = max(loop.longest_pong_wait, link.longest_pong_wait)
            link.close()
            log.info("sim serve: longest wait for a pong %.2f s (QuadSim drops to Patrol after "
                     "3 s)", loop.longest_pong_wait)
        loop.close()
    return loop
