"""The follower: a Socket.IO server that QuadSim connects to. sensor_frame in; object_detected,
create_box_marker, delete_marker and object_lost out.

Wire protocol
    QuadSim's Unity client (Fabio Panettieri's "SocketIO for Unity", 2014-2017) speaks the
    Socket.IO protocol of JavaScript Socket.IO 1.x/2.x, that is Engine.IO protocol 3. It opens a
    WebSocket straight away (no long-polling first) at
    ``ws://127.0.0.1:4567/socket.io/?EIO=4&transport=websocket`` (its default URL says EIO=4 but
    it frames, pings and connects as Engine.IO 3), never sends a namespace CONNECT, and pings
    the server every 0.33 s (the scene's ``pingInterval``, set from 25 in a8192aa); 3 s without
    a pong or a server ping drops the quad from Follow to Patrol (``CommandServer.cs:96-101``),
    so an event loop that stalls for 3 s loses the hero. The server is therefore python-socketio
    4.6.1 with python-engineio 3.14.2, the last of the lines that speak that protocol
    (python-socketio's compatibility table); 5.x speaks only Socket.IO 3/4 and QuadSim cannot
    talk to it. Engine.IO 3.14 refuses EIO=4 in a handshake, so a WebSocket handshake that asks
    for EIO=4 is answered as EIO=3 (a genuine Socket.IO 3/4 client starts with long-polling,
    which still gets the clear refusal).

Serving
    python-socketio 4.x's ``AsyncServer`` on aiohttp. Its threading mode cannot serve WebSocket
    with Engine.IO 3.x (only long-polling, which QuadSim does not do), and eventlet, the course's
    choice, is deprecated. Three fixes to the pinned libraries are here: python-socketio 4.6.1
    sends to a room with ``asyncio.wait`` on bare coroutines, which Python 3.11 refuses
    (``_Manager``); python-engineio 3.14's aiohttp driver reads a long-polling POST with one
    partial read, truncating big frames (``_ExactBody``); and its WebSocket takes aiohttp's 4 MiB
    message limit silently (``_CappedWebSocket``, which also drops messages over the payload cap
    before they are parsed as JSON).

Hardening
    Only requests whose Host header names this machine's loopback (127.0.0.1, ::1, localhost) or
    the address listened on are served (``FollowConfig.allow_hosts``, ``--allow-host``, adds
    names): a web page cannot reach the follower through DNS rebinding, which the libraries'
    Origin check alone lets through (the page's Origin and Host agree). Others get HTTP 403. A
    long-polling POST over the HTTP limit gets HTTP 413 at once (Engine.IO's own refusal
    waited for the client to time out). Junk below the sensor_frame level (a WebSocket
    message that is not an Engine.IO packet a client sends, a Socket.IO packet that is not JSON
    or of an unknown type, anything binary) is counted as malformed (``packet``, ``binary``),
    warned about in one line and skipped where it is decoded (``_CappedWebSocket``,
    ``_PollingBody``, ``_SocketIOServer``), where the libraries logged a traceback for each.

Real time and robustness
    The event loop parses and queues; the model runs on a ``LatestFrameWorker`` thread where the
    newest frame of each client replaces its older waiting one. Every malformed frame, oversize
    payload, failing frame or client that leaves mid-stream is counted, warned about (at most
    once a second per kind, with the running count) and skipped. Every ``log_every`` seconds
    the server logs frames received, processed, dropped, malformed and latency p50/p99.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Callable

import socketio
from aiohttp import WSCloseCode, WSMsgType, web
from engineio import payload as eio_payload
from engineio.async_drivers import aiohttp as eio_aiohttp
from socketio import packet as sio_packet

from followme.follower.config import FollowConfig
from followme.follower.hosts import host_name, is_loopback, refusal
from followme.follower.live import LiveFeed, add_routes
from followme.follower.pipeline import FramePipeline, Segmenter
from followme.follower.quadsim import protocol
from followme.follower.quadsim.protocol import MalformedFrame, QuadSimEvents, SensorFrame
from followme.follower.tracking import Detected, FollowEvent, HeroTracker
from followme.follower.worker import FollowerStats, LatestFrameWorker

log = logging.getLogger("followme.follower")
# python-socketio and python-engineio log every packet, payload included, at INFO: keep them to
# warnings (an explicit logger also stops them from adding handlers of their own).
_LIBRARY_LOG = logging.getLogger("followme.follower.socketio")
_LIBRARY_LOG.setLevel(logging.WARNING)

class _Manager(socketio.AsyncManager):
    """python-socketio 4.6.1's AsyncManager.emit, awaiting each send in turn: the original passes
    bare coroutines to ``asyncio.wait``, which Python 3.11 refuses."""

    async def emit(self, event, data, namespace, room=None, skip_sid=None, callback=None,
                   **kwargs):
        if namespace not in self.rooms or room not in self.rooms[namespace]:
            return
        skip = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        for sid in list(self.get_participants(namespace, room)):
            if sid not in skip:
                ack = self._generate_ack_id(sid, namespace, callback) if callback else None
                await self.server._emit_internal(sid, event, data, namespace, ack)


# on_junk(reason, what, who): a message refused below the sensor_frame level
Junk = Callable[[str, str, str], None]

# the Engine.IO packets a client sends: CLOSE, PING, MESSAGE, UPGRADE
_CLIENT_PACKETS = frozenset("1245")
_RESERVED_EVENTS = frozenset(("connect", "disconnect"))  # the server's own, not a client's


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _eio_junk(pkt) -> tuple[str, str] | None:
    """(reason, what) for a decoded Engine.IO packet no client should send, else None."""
    if pkt.binary:
        return "binary", "a binary Engine.IO packet"
    if pkt.packet_type not in (1, 2, 4, 5):
        return "packet", f"an Engine.IO packet of unknown type {pkt.packet_type}"
    return None


class _SocketIOServer(socketio.AsyncServer):
    """python-socketio 4.6.1's server, decoding each Socket.IO packet under guard: one that is
    not JSON, binary (QuadSim sends text), of an unknown type, an acknowledgement (the follower
    asks for none) or an event without a name goes to ``on_junk`` and is skipped, where the
    library raised into Engine.IO, which logged a traceback. Good packets are dispatched as the
    library does."""

    def __init__(self, on_junk: Junk, **kwargs):
        super().__init__(**kwargs)
        self.on_junk = on_junk

    async def _handle_eio_message(self, sid, data):
        who = sid[:8]
        if isinstance(data, bytes | bytearray):
            self.on_junk("binary", f"a binary message of {len(data)} bytes", who)
            return
        if not isinstance(data, str):  # Engine.IO decoded it as JSON: '4{...}', '41.5', '4null'
            self.on_junk("packet", f"an Engine.IO message that is JSON "
                                   f"{type(data).__name__}, not a Socket.IO packet", who)
            return
        try:
            pkt = sio_packet.Packet(encoded_packet=data)
        except Exception as e:  # json's errors, int() on a bad type, too deep a nesting...
            self.on_junk("packet", f"a Socket.IO packet that does not decode "
                                   f"({_shorten(str(e) or type(e).__name__)}): "
                                   f"{_shorten(data, 40)!r}", who)
            return
        kind = pkt.packet_type
        if kind == sio_packet.CONNECT:
            await self._handle_connect(sid, pkt.namespace)
        elif kind == sio_packet.DISCONNECT:
            await self._handle_disconnect(sid, pkt.namespace)
        elif kind == sio_packet.EVENT:
            if not (isinstance(pkt.data, list) and pkt.data and isinstance(pkt.data[0], str)):
                self.on_junk("packet", f"a Socket.IO event without a name: "
                                       f"{_shorten(data, 40)!r}", who)
            elif pkt.data[0] in _RESERVED_EVENTS:
                self.on_junk("packet", f"a {pkt.data[0]!r} event, a name the server keeps", who)
            else:
                await self._handle_event(sid, pkt.namespace, pkt.id, pkt.data)
        elif kind in (sio_packet.BINARY_EVENT, sio_packet.BINARY_ACK):
            self.on_junk("binary", "a binary Socket.IO packet", who)
        elif kind == sio_packet.ACK:
            self.on_junk("packet", "an acknowledgement the follower did not ask for", who)
        else:
            name = sio_packet.packet_names[kind] if kind == sio_packet.ERROR else kind
            self.on_junk("packet", f"a Socket.IO packet of type {name}", who)


class _CappedWebSocket(eio_aiohttp.WebSocket):
    """Engine.IO 3's aiohttp WebSocket with explicit limits: messages over ``cap`` are counted
    and skipped before anyone parses them; over ``hard_cap`` aiohttp closes the connection.
    Binary messages and text that is not an Engine.IO packet a client sends go to ``on_junk``
    (Engine.IO's decoder raised on some, killing the connection with a traceback)."""

    def __init__(self, handler, cap: int, hard_cap: int, on_oversize: Callable[[int], None],
                 on_junk: Junk):
        super().__init__(handler)
        self.cap, self.hard_cap, self.on_oversize = cap, hard_cap, on_oversize
        self.on_junk = on_junk

    async def __call__(self, environ):
        self._sock = web.WebSocketResponse(max_msg_size=self.hard_cap)
        await self._sock.prepare(environ["aiohttp.request"])
        self.environ = environ
        await self.handler(self)
        return self._sock

    async def wait(self):
        while True:
            msg = await self._sock.receive()
            if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                if len(msg.data) > self.cap:
                    self.on_oversize(len(msg.data))
                    continue
                if msg.type == WSMsgType.BINARY:
                    self.on_junk("binary", f"a binary WebSocket message of {len(msg.data)} "
                                           "bytes", self._who())
                    continue
                if msg.data[:1] not in _CLIENT_PACKETS:
                    self.on_junk("packet", f"an Engine.IO packet of unknown type "
                                           f"{msg.data[:1]!r}", self._who())
                    continue
                return msg.data
            if msg.type == WSMsgType.ERROR and \
                    getattr(msg.data, "code", None) == WSCloseCode.MESSAGE_TOO_BIG:
                self.on_oversize(-1)
            raise OSError("websocket closed")

    def _who(self) -> str:
        return f"a client at {self.environ['aiohttp.request'].remote}"


class _PollingBody:
    """A long-polling POST body for Engine.IO 3.14, which reads it with one ``read(n)``:

    - ``read(n)`` returns all n bytes: aiohttp's stream may return less, and bodies of more than
      some 64 KiB (a sensor_frame with its depth PNG) arrived truncated and failed to parse;
    - a payload that does not decode, or packets no client sends, go to ``on_junk`` and are left
      out of what Engine.IO gets (its decoder raised, and the library logged a traceback)."""

    def __init__(self, stream, on_junk: Junk, who: str):
        self._stream = stream
        self.on_junk, self.who = on_junk, who

    async def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            body = await self._stream.read()
        else:
            try:
                body = await self._stream.readexactly(n)
            except asyncio.IncompleteReadError as e:  # the client went away mid-body
                body = e.partial
        return self._checked(body)

    def _checked(self, body: bytes) -> bytes:
        try:
            packets = eio_payload.Payload(encoded_payload=body).packets
        except Exception as e:  # Engine.IO's decoder raises ValueError, IndexError, ...
            self.on_junk("packet", f"a long-polling payload that does not decode "
                                   f"({_shorten(str(e) or type(e).__name__)})", self.who)
            return b""
        good = []
        for pkt in packets:
            junk = _eio_junk(pkt)
            if junk:
                self.on_junk(*junk, self.who)
            else:
                good.append(pkt)
        if len(good) == len(packets):
            return body
        return eio_payload.Payload(packets=good).encode() if good else b""


def _translate_request(request: web.Request, on_junk: Junk) -> dict:
    environ = eio_aiohttp.translate_request(request)
    who = request.query.get("sid", "")[:8] or f"a client at {request.remote}"
    environ["wsgi.input"] = _PollingBody(environ["wsgi.input"], on_junk, who)
    return environ


@web.middleware
async def _quadsim_handshake(request: web.Request, handler):
    """QuadSim's client asks for EIO=4 in its WebSocket URL but speaks Engine.IO 3."""
    query = request.rel_url.query
    if query.get("EIO") == "4" and query.get("transport") == "websocket" and "sid" not in query:
        request = request.clone(rel_url=request.rel_url.update_query(EIO="3"))
    return await handler(request)


class FollowerServer:
    """The follower on the running event loop: ``await start()`` ... ``await stop()``."""

    def __init__(self, segmenter: Segmenter, config: FollowConfig | None = None):
        self.config = config or FollowConfig()
        self.stats = FollowerStats()
        self.pipeline = FramePipeline(segmenter, self.config)
        self.port: int | None = None
        self.clients: dict[str, tuple[HeroTracker, QuadSimEvents]] = {}
        self.hard_cap = hard_cap = max(4 * self.config.max_payload, 1 << 20)
        self.sio = _SocketIOServer(
            self._junk, async_mode="aiohttp", client_manager=_Manager(), logger=_LIBRARY_LOG,
            engineio_logger=_LIBRARY_LOG, max_http_buffer_size=hard_cap)
        self.sio.eio._async = {
            **self.sio.eio._async,
            "translate_request": functools.partial(_translate_request, on_junk=self._junk),
            "websocket": functools.partial(_CappedWebSocket, cap=self.config.max_payload,
                                           hard_cap=hard_cap, on_oversize=self._oversize,
                                           on_junk=self._junk)}

        @web.middleware
        async def guard(request: web.Request, handler):
            refusal = self._refusal(request)
            return refusal if refusal is not None else await handler(request)

        self.app = web.Application(middlewares=[guard, _quadsim_handshake])
        self.sio.attach(self.app)
        self.live = LiveFeed("followme follow", self._live_figures)
        add_routes(self.app, self.live)
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.on("sensor_frame", self._on_sensor_frame)
        self._last_warning: dict[str, float] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._log_task: asyncio.Task | None = None
        self._closing = False
        self.worker: LatestFrameWorker | None = None
        self.viz = self.recorder = None

    # --- lifecycle ---

    async def start(self) -> int:
        """Warm the model up, listen, and return the port (useful with port 0)."""
        from followme.follower.record import Recorder
        from followme.follower.viz import OverlayWriter

        self._loop = asyncio.get_running_loop()
        await self._loop.run_in_executor(None, self.pipeline.warm_up)
        if self.config.viz:
            self.viz = OverlayWriter(self.config.viz)
        if self.config.record:
            self.recorder = Recorder(self.config.record)
        self.worker = LatestFrameWorker(self._process, on_drop=self._dropped)
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False,
                                     shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        try:
            await site.start()
        except OSError:
            await self._runner.cleanup()
            self.worker.close()
            raise
        self.port = self._runner.addresses[0][1]
        self._log_task = asyncio.create_task(self._log_stats())
        return self.port

    async def stop(self) -> dict:
        """Close every connection and the worker; returns the whole run's stats."""
        self._closing = True
        if self._log_task:
            self._log_task.cancel()
        # Engine.IO waits for a socket's queue to drain on close, which never happens for a
        # client that is already gone: give each a second.
        await asyncio.gather(*(asyncio.wait_for(self.sio.eio.disconnect(sid), 1.0)
                               for sid in list(self.sio.eio.sockets)), return_exceptions=True)
        if self.worker:
            await self._loop.run_in_executor(None, self.worker.close)
        if self._runner:
            await self._runner.cleanup()
        if self.recorder:
            self.recorder.close()
        snap = self.stats.snapshot(whole_run=True)
        log.info("%s (whole run)", FollowerStats.format(snap))
        return snap

    async def _log_stats(self) -> None:
        while True:
            await asyncio.sleep(self.config.log_every)
            log.info(FollowerStats.format(self.stats.snapshot(reset_window=True)))

    # --- events in (event loop) ---

    async def _on_connect(self, sid, environ) -> None:
        request = environ.get("aiohttp.request")
        log.info("follower: client %s connected from %s", sid[:8],
                 request.remote if request is not None else "?")
        self.clients[sid] = (HeroTracker(self.config.lost_after), QuadSimEvents())

    async def _on_disconnect(self, sid) -> None:
        self.stats.count("disconnects")
        self.clients.pop(sid, None)
        if self.worker and self.worker.forget(sid):
            self._warn("disconnect", f"follower: client {sid[:8]} left mid-stream; its waiting "
                                     f"frame was dropped ({self.stats.disconnects} "
                                     "disconnects so far)")
        else:
            log.info("follower: client %s disconnected", sid[:8])

    async def _on_sensor_frame(self, sid, *args) -> None:
        t0 = time.perf_counter()
        self.stats.count("received")
        try:
            if len(args) != 1:
                raise MalformedFrame("payload", f"sensor_frame with {len(args)} arguments, "
                                                "expected one object")
            frame = protocol.parse_sensor_frame(args[0], self.config.max_payload)
        except MalformedFrame as e:
            self._malformed(sid, e)
            return
        if self.worker and not self._closing:
            self.worker.submit(sid, (frame, t0))

    def _malformed(self, sid: str, e: MalformedFrame) -> None:
        n = self.stats.bad(e.reason)
        self._warn(e.reason, f"follower: skipped a malformed frame from {sid[:8]}: {e} "
                             f"({e.reason}: {n} so far)")

    def _oversize(self, nbytes: int) -> None:
        self.stats.count("received")
        n = self.stats.bad("oversize")
        what = "a message over the hard limit (connection closed)" if nbytes < 0 else \
            f"a message of {nbytes} bytes"
        self._warn("oversize", f"follower: skipped {what}, the cap is "
                               f"{self.config.max_payload} bytes (oversize: {n} so far)")

    def _junk(self, reason: str, what: str, who: str) -> None:
        """A message refused below the sensor_frame level: counted as malformed (not as a
        received frame), one warning line."""
        n = self.stats.bad(reason)
        self._warn(reason, f"follower: skipped {what} from {who} ({reason}: {n} so far)")

    def _refusal(self, request: web.Request) -> web.Response | None:
        """HTTP 403 for a Host that is not this follower; 413 for a body over the HTTP limit
        (a long-polling POST), at once: Engine.IO's own refusal waited for its queue to drain,
        and the client timed out first. None: serve the request."""
        host, origin = request.headers.get("Host"), request.headers.get("Origin")
        why = refusal(host, origin, self.config.host, self.config.allow_hosts)
        if why is not None:
            self._warn("host", f"follower: refused a request for Host {_shorten(host or '', 80)!r} "
                               f"(Origin {_shorten(origin or '-', 80)!r}) from {request.remote}: "
                               f"{why} (--allow-host NAME accepts a name of this machine)")
            return web.Response(status=403, text=why + "\n")
        length = request.content_length
        if length is not None and length > self.hard_cap:
            n = self.stats.bad("oversize")
            self._warn("oversize", f"follower: refused a {request.method} of {length} bytes "
                                   f"from {request.remote}, over the {self.hard_cap}-byte limit "
                                   f"(HTTP 413; oversize: {n} so far)")
            return web.Response(status=413, text="Payload too large\n")
        return None

    def _warn(self, kind: str, message: str) -> None:
        now = time.monotonic()
        if now - self._last_warning.get(kind, -1e9) >= 1.0:
            self._last_warning[kind] = now
            log.warning(message)

    def _live_figures(self) -> dict:
        s = self.stats.snapshot()
        return {"clients": len(self.clients), "received": s["received"],
                "processed": s["processed"], "dropped": s["dropped"],
                "malformed": s["malformed"], "detected": s["detected"], "lost": s["lost"],
                "latency_p50_ms": s["latency_p50_ms"], "latency_p99_ms": s["latency_p99_ms"]}

    def _dropped(self, sid, item) -> None:
        self.stats.count("dropped")

    # --- the worker thread ---

    def _process(self, sid: str, item: tuple[SensorFrame, float]) -> None:
        frame, t0 = item
        try:
            result = self.pipeline(protocol.camera_frame(frame, self.config.frame_size,
                                                          self.config.camera))
        except MalformedFrame as e:
            self._call_soon(self._malformed, sid, e)
            return
        except Exception as e:  # a bug or a broken model: say it once in full, then count
            self.stats.count("errors")
            if self.stats.errors == 1:
                log.exception("follower: processing a frame failed")
            else:
                self._call_soon(self._warn, "error", f"follower: processing a frame failed: "
                                                     f"{e!r} ({self.stats.errors} so far)")
            return
        self.stats.count("processed")
        client = self.clients.get(sid)
        if client is None:  # the client left while its frame was processed
            return
        # the tracker is the worker's alone: one frame at a time, in order
        event = client[0].update(result.candidates, frame.timestamp)
        self._call_soon(self._deliver, sid, event, t0)
        target = event.target if isinstance(event, Detected) else None
        self.live.frame(result.rgb, result.mask, target.pixel if target else None)
        if self.viz is not None:
            self.viz.write(result.rgb, result.mask, target.pixel if target else None)
        if self.recorder is not None:
            self.recorder.add(sid, frame.timestamp, frame.rgb, frame.depth, frame.pose,
                              frame.gimbal, result.mask, self.config.frame_size, target)

    def _call_soon(self, fn, *args) -> None:
        if self._closing or self._loop is None:
            return
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop closed under us while shutting down
            pass

    # --- events out (event loop) ---

    def _deliver(self, sid: str, event: FollowEvent | None, t0: float) -> None:
        client = self.clients.get(sid)
        if client is None:  # the client left while its frame was processed
            return
        quadsim_events = client[1]
        self.live.follow(event)
        events = quadsim_events(event)
        task = asyncio.create_task(self._send(sid, events, t0))
        task.add_done_callback(self._sent)

    async def _send(self, sid: str, events: list[tuple[str, dict]], t0: float) -> None:
        for name, payload in events:
            await self.sio.emit(name, payload, room=sid)
            if name == "object_detected":
                self.stats.count("detected")
            elif name == "object_lost":
                self.stats.count("lost")
        self.stats.latency((time.perf_counter() - t0) * 1000)

    @staticmethod
    def _sent(task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.warning("follower: sending to a client failed: %s", task.exception())


class ServerThread:
    """A FollowerServer on its own event loop in a background thread, for tests and benchmarks:

        with ServerThread(segmenter, FollowConfig(port=0)) as server:
            url = server.url
    """

    def __init__(self, segmenter: Segmenter, config: FollowConfig | None = None):
        self.server = FollowerServer(segmenter, config or FollowConfig(port=0))
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.final_stats: dict | None = None
        self._thread = threading.Thread(target=self._run, name="follower-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.server.config.host}:{self.server.port}"

    @property
    def stats(self) -> FollowerStats:
        return self.server.stats

    def __enter__(self) -> ServerThread:
        self._thread.start()
        if not self._ready.wait(60):
            raise TimeoutError("the follower did not start within 60 s")
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> dict | None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        return self.final_stats

    def _run(self) -> None:
        async def main():
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            try:
                await self.server.start()
            except BaseException as e:
                self._error = e
                self._ready.set()
                return
            self._ready.set()
            await self._stop.wait()
            self.final_stats = await self.server.stop()

        asyncio.run(main())


def serve(segmenter: Segmenter, config: FollowConfig) -> dict:
    """Run the follower until Ctrl-C or SIGTERM; returns the whole run's stats."""
    import signal

    async def main() -> dict:
        server = FollowerServer(segmenter, config)
        port = await server.start()
        log.info("follower: listening on ws://%s:%d/socket.io/ (Engine.IO 3, the protocol of "
                 "JavaScript Socket.IO 1.x/2.x, as QuadSim speaks it); Ctrl-C stops",
                 config.host, port)
        log.info("follower: watch it at http://%s:%d/", config.host, port)
        if not is_loopback(host_name(config.host)):
            served = "any Host header" if "*" in config.allow_hosts else \
                "requests whose Host header names a loopback address or " + ", ".join(
                    (config.host, *config.allow_hosts)) + ("" if config.allow_hosts else
                                                           " (--allow-host NAME adds names)")
            log.warning("follower: listening on %s: anyone who can reach this machine can send "
                        "frames; serving %s", config.host, served)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):  # not the main thread, or Windows
                pass
        try:
            await stop.wait()
        finally:
            snap = await server.stop()
        return snap

    return asyncio.run(main())
