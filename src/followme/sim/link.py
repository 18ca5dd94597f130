"""The sim's wire to the follower: send a ``sensor_frame``, get the follower's events back.

  InProcessFollower   the follower's own per-frame path called directly:
                      protocol.parse_sensor_frame -> server.FramePipeline -> server.HeroTracker
  SocketIOFollower    a python-socketio 4.x client (Engine.IO 3, WebSocket, as QuadSim) that
                      emits ``sensor_frame`` and collects object_detected, create_box_marker,
                      delete_marker and object_lost. Given the stats of a follower it started
                      itself (``ServerThread``) it runs in lock-step: ``send`` returns once that
                      frame's events have arrived, so a run in simulated time is repeatable.
                      Without them it streams, as QuadSim does: ``send`` returns what has
                      arrived so far.

Both return events as (name, payload) pairs, in the order the follower sent them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

import socketio

from followme.follower import protocol
from followme.follower.server import FollowConfig, FramePipeline, HeroTracker, Segmenter
from followme.follower.worker import FollowerStats

Event = tuple[str, dict]
EVENTS = ("object_detected", "create_box_marker", "delete_marker", "object_lost")
# python-socketio and python-engineio log every packet at INFO: keep them to warnings
_LIBRARY_LOG = logging.getLogger("followme.sim.socketio")
_LIBRARY_LOG.setLevel(logging.WARNING)


class InProcessFollower:
    """The follower without the network, one frame at a time."""

    def __init__(self, segmenter: Segmenter, config: FollowConfig | None = None):
        self.config = config or FollowConfig()
        self.pipeline = FramePipeline(segmenter, self.config)
        self.tracker = HeroTracker(self.config.lost_after)

    def send(self, fields: dict) -> list[Event]:
        frame = protocol.parse_sensor_frame(fields, self.config.max_payload)
        return self.tracker.update(self.pipeline(frame).target)

    def close(self) -> None:
        pass


class SocketIOFollower:
    """A QuadSim-like Socket.IO client of the follower at ``url``; ``stats``: the follower's own
    counters, for lock-step (see the module docstring)."""

    def __init__(self, url: str, stats: FollowerStats | None = None, timeout: float = 30.0):
        self.stats, self.timeout = stats, timeout
        self._cond = threading.Condition()
        self._inbox: list[Event] = []
        self._handled: Counter[str] = Counter()
        self.sent = 0
        self.client = socketio.Client(reconnection=False, logger=_LIBRARY_LOG,
                                      engineio_logger=_LIBRARY_LOG)
        for name in EVENTS:
            self.client.on(name, self._handler(name))
        self.client.connect(url, transports=["websocket"])

    def _handler(self, name: str):
        def handle(data):   # python-socketio runs each on a thread of its own
            with self._cond:
                self._inbox.append((name, data))
                self._handled[name] += 1
                self._cond.notify_all()
        return handle

    def send(self, fields: dict) -> list[Event]:
        self.client.emit("sensor_frame", fields)
        self.sent += 1
        if self.stats is not None:
            self._wait_for_answer()
        return self.drain()

    def drain(self) -> list[Event]:
        """The events that have arrived since the last call."""
        with self._cond:
            out, self._inbox = self._inbox, []
        return out

    def _wait_for_answer(self) -> None:
        """Until the follower has finished the last frame (its reply handed to the socket, or
        the frame counted as an error) and every event it sent has been handled here."""
        deadline = time.monotonic() + self.timeout
        while True:
            snap = self.stats.snapshot(whole_run=True)
            if snap["latency_samples"] + snap["errors"] + snap["malformed"] >= self.sent:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"the follower did not answer frame {self.sent} within "
                                   f"{self.timeout:g} s")
            time.sleep(0.0005)
        want = {"object_detected": snap["detected"], "create_box_marker": snap["detected"],
                "object_lost": snap["lost"], "delete_marker": snap["lost"]}
        with self._cond:
            done = self._cond.wait_for(
                lambda: all(self._handled[k] >= v for k, v in want.items()),
                max(deadline - time.monotonic(), 0.1))
        if not done:
            raise TimeoutError(f"the follower's events for frame {self.sent} did not arrive "
                               f"within {self.timeout:g} s")

    def close(self) -> None:
        self.client.disconnect()
