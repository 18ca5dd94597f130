"""The live page: what the follower sees, in a browser (``GET /``), beside the Socket.IO endpoint.

  GET /            the page (assets/live.html): it polls the two below a few times a second
  GET /frame.jpg   the latest camera frame, the hero tinted and her target marked
  GET /map.png     the sim's top-down map, when there is one (``sim follow --view``)
  GET /status.json the state (waiting, searching, detected, lost) and the figures the log prints

The follower's threads hand ``LiveFeed`` references to what they already have (no copy, no
encoding); a frame is encoded only when a page asks for it, once per frame, on the event loop's
executor. Read-only: no handler changes the follower.
"""

from __future__ import annotations

import asyncio
import io
import math
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
from aiohttp import web
from PIL import Image

from followme.follower.hosts import refusal
from followme.follower.tracking import Detected, FollowEvent, Lost
from followme.follower.viz import mask_overlay

PAGE = Path(__file__).with_name("assets") / "live.html"
STATES = ("waiting", "searching", "detected", "lost")


class LiveFeed:
    """The latest frame and the state, for the page. ``figures()`` gives the counters to show
    (a dict of name -> value, plus ``latency_p50_ms`` and ``latency_p99_ms``)."""

    def __init__(self, title: str, figures: Callable[[], dict],
                 map_png: Callable[[], bytes | None] | None = None):
        self.title, self.figures, self.map_png = title, figures, map_png
        self.state = "waiting"
        self._lock = threading.Lock()
        self._frame: tuple[np.ndarray, np.ndarray | None, tuple | None] | None = None
        self._frame_id = -1
        self._jpeg: tuple[int, bytes] | None = None
        self.map_id = -1

    def frame(self, rgb: np.ndarray, mask: np.ndarray | None, pixel: tuple | None,
              state: str | None = None) -> None:
        """A processed frame (called from the worker): the image, the hero mask at the model's
        size and her centroid in it (None: not found)."""
        with self._lock:
            self._frame = (rgb, mask, pixel)
            self._frame_id += 1
            if state is not None:
                self.state = state

    def follow(self, event: FollowEvent | None) -> None:
        """The state after the tracker's answer to a frame: detected, lost, or searching once
        frames come and she has not been seen."""
        if isinstance(event, Detected):
            self.state = "detected"
        elif isinstance(event, Lost):
            self.state = "lost"
        elif self.state == "waiting":
            self.state = "searching"

    def jpeg(self) -> bytes | None:
        with self._lock:
            frame, frame_id, cached = self._frame, self._frame_id, self._jpeg
        if frame is None:
            return None
        if cached is not None and cached[0] == frame_id:
            return cached[1]
        rgb, mask, pixel = frame
        image = mask_overlay(rgb, mask, pixel) if mask is not None else rgb
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, "JPEG", quality=85)
        with self._lock:
            self._jpeg = (frame_id, buf.getvalue())
        return buf.getvalue()

    def status(self) -> dict:
        figures = dict(self.figures())
        p50 = figures.pop("latency_p50_ms", math.nan)
        p99 = figures.pop("latency_p99_ms", math.nan)
        out = {"title": self.title, "state": self.state, "frame_id": self._frame_id,
               "figures": figures, "latency_p50_ms": _number(p50),
               "latency_p99_ms": _number(p99)}
        if self.map_png is not None:
            out["map_id"] = self.map_id
        return out


def _number(v: float) -> float | None:
    return round(float(v), 2) if v is not None and math.isfinite(v) else None


def add_routes(app: web.Application, feed: LiveFeed) -> None:
    """``GET /``, ``/frame.jpg``, ``/map.png`` and ``/status.json`` on ``app``."""
    page = PAGE.read_bytes()

    async def index(request: web.Request) -> web.Response:
        return web.Response(body=page, content_type="text/html", charset="utf-8")

    async def frame(request: web.Request) -> web.Response:
        data = await asyncio.get_running_loop().run_in_executor(None, feed.jpeg)
        if data is None:
            return web.Response(status=404, text="no frame yet\n")
        return web.Response(body=data, content_type="image/jpeg",
                            headers={"Cache-Control": "no-store"})

    async def map_png(request: web.Request) -> web.Response:
        data = await asyncio.get_running_loop().run_in_executor(None, feed.map_png) \
            if feed.map_png is not None else None
        if data is None:
            return web.Response(status=404, text="no map\n")
        return web.Response(body=data, content_type="image/png",
                            headers={"Cache-Control": "no-store"})

    async def status(request: web.Request) -> web.Response:
        return web.json_response(feed.status(), headers={"Cache-Control": "no-store"})

    app.router.add_get("/", index)
    app.router.add_get("/frame.jpg", frame)
    app.router.add_get("/map.png", map_png)
    app.router.add_get("/status.json", status)


class LiveServer:
    """The page alone, on a thread of its own (``sim follow --view``), under the follower's
    Host rule: ``with LiveServer(feed) as url: ...``."""

    def __init__(self, feed: LiveFeed, host: str = "127.0.0.1", port: int = 0,
                 allow_hosts: tuple[str, ...] = ()):
        self.feed, self.host, self.port, self.allow_hosts = feed, host, port, allow_hosts
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="live-page")

    def __enter__(self) -> str:
        self._thread.start()
        if not self._ready.wait(30):
            raise OSError(f"the live page did not start on {self.host}:{self.port} in 30 s")
        if self._error is not None:
            raise OSError(f"cannot serve the live page on {self.host}:{self.port}: "
                          f"{self._error}") from self._error
        return f"http://{self.host}:{self.port}/"

    def __exit__(self, *exc) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        @web.middleware
        async def guard(request: web.Request, handler):
            why = refusal(request.headers.get("Host"), request.headers.get("Origin"), self.host,
                          self.allow_hosts)
            if why is not None:
                return web.Response(status=403, text=why + "\n")
            return await handler(request)

        async def main() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            app = web.Application(middlewares=[guard])
            add_routes(app, self.feed)
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            try:
                await web.TCPSite(runner, self.host, self.port).start()
                self.port = runner.addresses[0][1]
            except Exception as e:
                self._error = e
                await runner.cleanup()
                return
            finally:
                self._ready.set()
            await self._stop.wait()
            await runner.cleanup()

        try:
            asyncio.run(main())
        except Exception as e:  # before the site: said by __enter__, not lost in a thread
            self._error = e
            self._ready.set()
