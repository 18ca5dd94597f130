"""What the live page costs the follower: frames per second processed with no page open, and with
a page open (polling /status.json and /frame.jpg every 250 ms, as ``live.html`` does), in
alternating phases against one follower process, fed faster than it can keep up so that its
rate is its capacity.

Prints each phase, the median frames/s of each side and the ratio, and the page's own work
measured directly (encoding a frame and the status, as often as the page asks); ends with
``page_cost_pct=<x>``. The target is under 5 %. Phases vary by 10-15 % on a 2-core machine
(the client that feeds the follower shares it): keep the offered rate near the capacity.

    python bench/live_page_cost.py [--phases 6] [--seconds 15] [--fps 400]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import threading
import time

import numpy as np
import requests

from follower_load import _depth, _frames, _serve


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--phases", type=int, default=6, help="alternating, half with the page")
    p.add_argument("--seconds", type=float, default=15.0, help="per phase")
    p.add_argument("--fps", type=float, default=400.0, help="offered: above the capacity")
    p.add_argument("--model", help="checkpoint or .onnx (default: the shipped model)")
    a = p.parse_args()

    from followme.sim.link import SocketIOFollower

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(child, a.model, None), daemon=True)
    proc.start()
    if not parent.poll(120):
        raise SystemExit("the follower did not start within 120 s")
    port, _, threads = parent.recv()
    url = f"http://127.0.0.1:{port}"
    rgb, depth = _frames(175), _depth()
    client = SocketIOFollower(url)
    stop = threading.Event()

    def feed() -> None:
        seq, start = 0, time.perf_counter()
        while not stop.is_set():
            deadline = start + seq / a.fps
            while (now := time.perf_counter()) < deadline:
                time.sleep(min(deadline - now, 0.002))
            client.send({"timestamp": f"{time.time():.3f}", "rgb_image": rgb[seq % len(rgb)],
                         "depth_image": depth, "pose": "0,0,2,0,0,0",
                         "gimbal_pose": "0,0,2,0,0,0"})
            seq += 1

    def processed() -> int:
        return requests.get(f"{url}/status.json", timeout=5).json()["figures"]["processed"]

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    time.sleep(3.0)  # warm up
    rates: dict[bool, list[float]] = {False: [], True: []}
    for phase in range(a.phases):
        page = phase % 2 == 1
        page_stop = threading.Event()

        def look(done: threading.Event = page_stop) -> None:
            while not done.wait(0.25):
                requests.get(f"{url}/status.json", timeout=5)
                requests.get(f"{url}/frame.jpg", timeout=5)

        looker = threading.Thread(target=look, daemon=True)
        if page:
            looker.start()
        n0, t0 = processed(), time.perf_counter()
        time.sleep(a.seconds)
        rate = (processed() - n0) / (time.perf_counter() - t0)
        page_stop.set()
        if page:
            looker.join(2)
        rates[page].append(rate)
        print(f"phase {phase + 1}: page {'open  ' if page else 'closed'} {rate:6.1f} frames/s")
    stop.set()
    feeder.join(2)
    client.close()
    parent.send("stop")
    parent.recv() if parent.poll(60) else None
    proc.join(30)
    closed, opened = float(np.median(rates[False])), float(np.median(rates[True]))
    cost = (closed - opened) / closed * 100
    print(f"median: page closed {closed:.1f} frames/s, open {opened:.1f} frames/s "
          f"({threads} torch threads); the page costs {cost:.1f} % (target < 5 %)")
    print(f"the page's own work: {_direct_cost():.2f} % of one core (a frame and the status, "
          "4 times a second)")
    print(f"page_cost_pct={cost:.1f}")


def _direct_cost() -> float:
    """Percent of one core that encoding the frame and the status 4 times a second takes."""
    from followme.follower.live import LiveFeed
    from followme.follower.worker import FollowerStats

    stats = FollowerStats()
    for i in range(600):
        stats.latency(10.0 + i % 7)
    feed = LiveFeed("bench", stats.snapshot)
    rgb = np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8)
    mask = np.zeros((160, 160), bool)
    mask[50:90, 60:80] = True
    seconds = []
    for _ in range(200):
        feed.frame(rgb, mask, (70.0, 70.0))
        t0 = time.perf_counter()
        feed.jpeg()
        feed.status()
        seconds.append(time.perf_counter() - t0)
    return float(np.median(seconds)) * 4 * 100


if __name__ == "__main__":
    main()
