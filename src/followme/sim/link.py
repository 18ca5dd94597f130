"""The sim's wire to the follower: send a ``sensor_frame``, get the follower's answer back.

  InProcessFollower   the follower's own per-frame path called directly:
                      protocol.parse_sensor_frame -> pipeline.FramePipeline ->
                      pipeline.HeroTracker
  SocketIOFollower    QuadSim's own client on the wire (a raw WebSocket asking EIO=4, Engine.IO
                      3 framing, pings every 0.33 s) that emits ``sensor_frame`` and collects
                      object_detected, create_box_marker, delete_marker and object_lost.
                      Given the stats of a follower it started itself (``ServerThread``) it
                      runs in lock-step: ``send`` returns once that frame's events have
                      arrived, so a run in simulated time is repeatable.
                      Without them it streams, as QuadSim does: ``send`` returns what has
                      arrived so far.

  MavlinkSimLink      the follower over MAVLink (``follower/mavlink``) to the sim's quad as a
                      PX4 or ArduPilot vehicle (``vehicle.py``) on 127.0.0.1, in lock-step:
                      each call waits until the vehicle has every command and the follower
                      every telemetry message.

All return the answer as the follow core's Detected / Lost, in the order the follower gave
them (the Socket.IO link reads them back from QuadSim's events, ``protocol.follow_events``).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from urllib.parse import urlsplit

import websocket

from followme.follower.config import FollowConfig
from followme.follower.pipeline import FramePipeline, Segmenter
from followme.follower.quadsim import protocol
from followme.follower.quadsim.protocol import Event
from followme.follower.tracking import FollowEvent, HeroTracker
from followme.follower.worker import FollowerStats

QUADSIM_PING_INTERVAL = 0.33  # the scene's SocketIOComponent.pingInterval (a8192aa)


def quadsim_url(url: str) -> str:
    """``http://HOST:PORT`` -> the WebSocket URL QuadSim dials (``SocketIOComponent.cs:45``)."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    scheme = "wss" if parts.scheme in ("https", "wss") else "ws"
    return f"{scheme}://{parts.netloc}/socket.io/?EIO=4&transport=websocket"


class InProcessFollower:
    """The follower without the network, one frame at a time."""

    def __init__(self, segmenter: Segmenter, config: FollowConfig | None = None):
        self.config = config or FollowConfig()
        self.pipeline = FramePipeline(segmenter, self.config)
        self.tracker = HeroTracker(self.config.lost_after)

    def send(self, fields: dict) -> list[FollowEvent]:
        frame = protocol.camera_frame(protocol.parse_sensor_frame(fields, self.config.max_payload),
                                      self.config.frame_size, self.config.camera)
        event = self.tracker.update(self.pipeline(frame).candidates, frame.time)
        return [] if event is None else [event]

    def close(self) -> None:
        pass


class SocketIOFollower:
    """A client of the follower at ``url`` that speaks as QuadSim's ``SocketIOComponent.cs``
    does: a raw WebSocket to ``/socket.io/?EIO=4&transport=websocket`` (no long-polling, no
    namespace CONNECT), Engine.IO 3 framing (``42["sensor_frame",{...}]``), and a ping ("2")
    every ``ping_interval`` s (the scene's 0.33) whose pong ("3") QuadSim's watchdog waits for:
    3 s without one drops the quad to Patrol. ``longest_pong_wait`` is the longest time this
    client went without a pong, the follower's worst stall as QuadSim would see it.

    ``stats``: the follower's own counters, for lock-step (see the module docstring);
    ``on_event(name, payload, arrival_time)`` is called on the reader thread for every event."""

    def __init__(self, url: str, stats: FollowerStats | None = None, timeout: float = 30.0,
                 ping_interval: float = QUADSIM_PING_INTERVAL,
                 on_event: Callable[[str, dict, float], None] | None = None):
        self.stats, self.timeout, self.on_event = stats, timeout, on_event
        self._cond = threading.Condition()
        self._inbox: list[Event] = []
        self._handled: Counter[str] = Counter()
        self.sent = 0
        self.malformed = 0  # messages from the follower that were not Engine.IO 3 packets
        self._send_lock = threading.Lock()
        self._closed = threading.Event()
        self._ws = websocket.create_connection(quadsim_url(url), timeout=timeout)
        self._ws.settimeout(None)
        self._last_pong = time.monotonic()
        self.longest_pong_wait = 0.0
        self.connected = True
        self._threads = [threading.Thread(target=self._read, daemon=True, name="quadsim-read"),
                         threading.Thread(target=self._ping, args=(ping_interval,), daemon=True,
                                          name="quadsim-ping")]
        for t in self._threads:
            t.start()

    def _write(self, packet: str) -> None:
        with self._send_lock:
            self._ws.send(packet)

    def _read(self) -> None:
        try:
            while not self._closed.is_set():
                message = self._ws.recv()
                now = time.monotonic()
                if not isinstance(message, str) or not message:
                    self.malformed += 1
                elif message == "3":
                    with self._cond:
                        self.longest_pong_wait = max(self.longest_pong_wait,
                                                     now - self._last_pong)
                        self._last_pong = now
                elif message == "2":  # a server ping: QuadSim answers it
                    self._write("3")
                elif message.startswith("42"):
                    self._event(message[2:], now)
                elif not (message[0] == "0" or message in ("40", "41", "6")):
                    self.malformed += 1  # open, namespace connect/disconnect, noop: fine
        except (websocket.WebSocketException, OSError):
            pass
        finally:
            self.connected = False
            with self._cond:
                self._cond.notify_all()

    def _event(self, body: str, now: float) -> None:
        try:
            name, payload = json.loads(body)
        except (ValueError, TypeError):
            self.malformed += 1
            return
        if self.on_event is not None:
            self.on_event(name, payload, now)
        with self._cond:
            self._inbox.append((name, payload))
            self._handled[name] += 1
            self._cond.notify_all()

    def _ping(self, interval: float) -> None:
        while not self._closed.wait(interval):
            try:
                self._write("2")
            except (websocket.WebSocketException, OSError):
                return
            with self._cond:
                self.longest_pong_wait = max(self.longest_pong_wait,
                                             time.monotonic() - self._last_pong)

    def send(self, fields: dict) -> list[FollowEvent]:
        self._write("42" + json.dumps(["sensor_frame", fields], separators=(",", ":")))
        self.sent += 1
        if self.stats is not None:
            self._wait_for_answer()
        return protocol.follow_events(self.drain())

    def drain(self) -> list[Event]:
        """The QuadSim events that have arrived since the last call."""
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
        self._closed.set()
        self.connected = False
        with contextlib.suppress(websocket.WebSocketException, OSError):
            self._ws.close()
        for t in self._threads:
            t.join(2.0)


class MavlinkSimLink:
    """The MAVLink follower of ``vehicle``, on a UDP port of 127.0.0.1. The camera's pose comes
    from the vehicle's telemetry, not from the sensor_frame."""

    def __init__(self, segmenter: Segmenter, vehicle, commander_settings,
                 config: FollowConfig | None = None, timeout: float = 10.0,
                 depth: bool = True):
        """``depth=False``: the follower ignores the depth image and ranges her by the ground,
        as with a camera without depth."""
        from followme.follower.mavlink.commander import FollowCommander
        from followme.follower.mavlink.follower import MavlinkFollower
        from followme.follower.mavlink.link import MavlinkLink

        self.config = config or FollowConfig()
        self.vehicle, self.timeout, self.depth = vehicle, timeout, depth
        port = vehicle.conn.port.getsockname()[1]
        self.link = MavlinkLink(f"udpout:127.0.0.1:{port}", vehicle.autopilot,
                                clock=lambda: vehicle.time)
        self.follower = MavlinkFollower(segmenter, self.link, FollowCommander(commander_settings),
                                        self.config, clock=lambda: vehicle.time)
        try:
            self._wait(lambda: vehicle.received.get("HEARTBEAT", 0) > 0,
                       "the follower's HEARTBEAT", pump=True)
            vehicle.send_telemetry()
            state = self.link.state
            self._wait(lambda: all(v is not None for v in (state.position, state.custom_mode,
                                                            state.lat, state.gimbal)),
                       "the vehicle's telemetry")
        except BaseException:
            self.link.close()
            raise

    def _wait(self, done: Callable[[], bool], what: str, pump: bool = False) -> None:
        deadline = time.monotonic() + self.timeout
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} did not arrive within {self.timeout:g} s")
            if pump:
                self.vehicle.pump()
            time.sleep(0.0005)

    def send(self, fields: dict) -> list[FollowEvent]:
        self._wait(lambda: sum(self.link.received.values()) >= self.vehicle.sent,
                   "the vehicle's telemetry")
        frame = protocol.camera_frame(protocol.parse_sensor_frame(fields, self.config.max_payload),
                                      self.config.frame_size, self.config.camera)
        event = self.follower.process(frame.rgb, frame.depth if self.depth else None)
        self.follower.tick()
        sent = dict(self.link.sent)
        self._wait(lambda: all(self.vehicle.received.get(k.upper(), 0) >= n
                               for k, n in sent.items()), "the follower's commands", pump=True)
        return [] if event is None else [event]

    def close(self) -> None:
        self.link.close()
