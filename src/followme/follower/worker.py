"""Real time: one worker thread, newest frame wins, and the counters the server logs.

The event loop only parses and queues; the model runs on ``LatestFrameWorker``'s thread (PyTorch
releases the GIL while it computes). Each client has one waiting slot: a frame that arrives while
the previous one from the same client still waits replaces it, and the replaced frame is counted
as dropped, so a frame never waits behind an older one and latency cannot grow. Clients are served
in turn (the slot that filled first goes first; a replaced frame keeps its place), so one client
flooding the server cannot starve another.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import numpy as np

log = logging.getLogger(__name__)
T = TypeVar("T")


class LatestFrameWorker(Generic[T]):
    """Runs ``process(key, item)`` on one thread for the newest item of each key.

    ``on_drop(key, item)`` is called (on the caller's thread) for every item replaced before it
    was processed, and for one still waiting when its key is forgotten. An exception from
    ``process`` is logged and the worker goes on.
    """

    def __init__(self, process: Callable[[Hashable, T], None],
                 on_drop: Callable[[Hashable, T], None] | None = None,
                 name: str = "follower-worker"):
        self._process = process
        self._on_drop = on_drop
        self._slots: OrderedDict[Hashable, T] = OrderedDict()
        self._cond = threading.Condition()
        self._closed = False
        self._busy = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, key: Hashable, item: T) -> bool:
        """Queue ``item`` for ``key``; True when it replaced (dropped) a waiting one."""
        with self._cond:
            if self._closed:
                raise RuntimeError("worker is closed")
            old = self._slots.get(key)
            replaced = key in self._slots
            self._slots[key] = item  # an existing key keeps its place in the round
            self._cond.notify()
        if replaced and self._on_drop is not None:
            self._on_drop(key, old)
        return replaced

    def forget(self, key: Hashable) -> bool:
        """Drop what ``key`` has waiting (a client that went away); True when it had a frame
        waiting."""
        with self._cond:
            had = key in self._slots
            old = self._slots.pop(key, None)
        if had and self._on_drop is not None:
            self._on_drop(key, old)
        return had

    @property
    def waiting(self) -> int:
        with self._cond:
            return len(self._slots)

    def idle(self) -> bool:
        """Nothing waiting and nothing being processed."""
        with self._cond:
            return not self._slots and not self._busy

    def close(self, timeout: float = 5.0) -> None:
        """Stop after the item in progress; waiting items are discarded."""
        with self._cond:
            self._closed = True
            self._slots.clear()
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._busy = False
                while not self._slots and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                key, item = self._slots.popitem(last=False)
                self._busy = True
            try:
                self._process(key, item)
            except Exception:  # the worker must outlive any frame
                log.exception("follower: processing a frame failed")


class FollowerStats:
    """Thread-safe counters and a latency window, logged every few seconds by the server.

    received: sensor_frame events; processed: frames the model ran on; dropped: frames replaced
    by a newer one (or whose client left) before processing; malformed: frames refused, by reason;
    detected / lost: object_detected and object_lost events sent; disconnects: clients that left.
    Latency runs from a frame's arrival at the server to its reply being handed to the socket.
    """

    WINDOW = 20_000  # latency samples kept per interval

    def __init__(self):
        self._lock = threading.Lock()
        self.received = self.processed = self.dropped = 0
        self.detected = self.lost = self.errors = self.disconnects = 0
        self.malformed: Counter[str] = Counter()
        self._window: list[float] = []
        self._all: list[float] = []

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def bad(self, reason: str) -> int:
        """Count a malformed frame; returns the count for that reason."""
        with self._lock:
            self.malformed[reason] += 1
            return self.malformed[reason]

    def latency(self, ms: float) -> None:
        with self._lock:
            if len(self._window) < self.WINDOW:
                self._window.append(ms)
            if len(self._all) < 10 * self.WINDOW:
                self._all.append(ms)

    def snapshot(self, reset_window: bool = False, whole_run: bool = False) -> dict:
        """Counters plus p50/p99 latency (ms) of the current interval, or of the whole run."""
        with self._lock:
            samples = np.array(self._all if whole_run else self._window)
            if reset_window:
                self._window = []
            snap = {"received": self.received, "processed": self.processed,
                    "dropped": self.dropped, "malformed": sum(self.malformed.values()),
                    "malformed_by_reason": dict(self.malformed), "detected": self.detected,
                    "lost": self.lost, "errors": self.errors, "disconnects": self.disconnects,
                    "latency_samples": len(samples)}
        p50, p99 = np.percentile(samples, [50, 99]) if len(samples) else (float("nan"),) * 2
        snap["latency_p50_ms"], snap["latency_p99_ms"] = float(p50), float(p99)
        return snap

    @staticmethod
    def format(snap: dict) -> str:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(snap["malformed_by_reason"].items()))
        latency = (f"latency p50 {snap['latency_p50_ms']:.1f} ms p99 "
                   f"{snap['latency_p99_ms']:.1f} ms over {snap['latency_samples']} frames"
                   if snap["latency_samples"] else "latency -")
        return (f"follower: received {snap['received']} processed {snap['processed']} dropped "
                f"{snap['dropped']} malformed {snap['malformed']}"
                + (f" ({reasons})" if reasons else "")
                + f" detected {snap['detected']} lost {snap['lost']}"
                + (f" errors {snap['errors']}" if snap["errors"] else "")
                + f" disconnects {snap['disconnects']}; {latency}")
