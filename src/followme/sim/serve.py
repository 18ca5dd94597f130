"""``followme sim serve``: the simulated world in QuadSim's place, a Socket.IO client of a
follower (``followme follow``, or the course's follower.py).

Like QuadSim it dials ``http://HOST:PORT`` (Engine.IO 3 over a WebSocket) and retries until the
follower is up, then streams ``sensor_frame`` events at the camera rate in real time and obeys
object_detected, create_box_marker, delete_marker and object_lost. Simulated time keeps to the
wall clock: when a frame takes longer than a camera period, the world steps on and the frame
rate drops, as QuadSim's would. A follower that goes away is dialled again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

import socketio

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
        except socketio.exceptions.ConnectionError as e:
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
            if not link.client.connected:
                log.warning("sim serve: the follower went away; dialling again")
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
            link.close()
        loop.close()
    return loop
