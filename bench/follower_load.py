"""Follower load test: a QuadSim-like client streams sensor frames at a fixed rate to a follower it
starts itself (its own process, 127.0.0.1, an ephemeral port) and times each answer. The client
is ``followme.sim.link.SocketIOFollower``, which speaks as QuadSim does (a raw WebSocket, a ping
every 0.33 s): the longest it waits for a pong is the follower's worst event-loop stall as
QuadSim's 3 s watchdog would see it.

Frames are the hero images of ../shared/data/robond/validation_grade/following_images (cycled),
with a synthetic depth of 10 m everywhere and a level camera whose x position is the frame's
sequence number, so that an object_detected's x - 10 names the frame it answers: end-to-end
latency is from the client's emit to its receipt of that object_detected. Frames where the model
sees no hero get no answer and no latency.

Prints the counts and p50/p99 latencies, appends them to bench/results.md (unless
--no-record-results), and ends with ``p99_ms=<x> processed=<n> dropped=<m>``.

    python bench/follower_load.py [--fps 30] [--seconds 60] [--model CKPT|ONNX]
"""

from __future__ import annotations

import argparse
import base64
import io
import multiprocessing as mp
import platform
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

SHARED_IMAGES = (Path(__file__).resolve().parents[2]
                 / "shared/data/robond/validation_grade/following_images/images")
RESULTS = Path(__file__).with_name("results.md")
DEPTH_M = 20.0  # depth value 51 of QuadSim's 100 m scale, exactly


def _serve(conn, model: str | None, threads: int | None) -> None:
    """The follower, in a process of its own; sends its port, waits for 'stop', sends its stats."""
    import logging

    import torch

    from followme.follower.config import FollowConfig
    from followme.follower.quadsim.server import ServerThread
    from followme.segment.segmenter import load_segmenter

    logging.basicConfig(level=logging.INFO, format="  server: %(message)s")
    if threads:
        torch.set_num_threads(threads)
    segmenter = load_segmenter(model)
    with ServerThread(segmenter, FollowConfig(port=0)) as server:
        conn.send((server.server.port, segmenter.size, torch.get_num_threads()))
        conn.recv()
        stats = server.close()
    conn.send(stats)


def _frames(n: int) -> list[str]:
    files = sorted(SHARED_IMAGES.glob("*.jpeg"))
    if not files:
        print(f"warning: no frames at {SHARED_IMAGES}; sending noise (expect no answers)")
        rng = np.random.default_rng(0)
        out = []
        for _ in range(min(n, 20)):
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)).save(buf, "JPEG")
            out.append(base64.b64encode(buf.getvalue()).decode())
        return out
    return [base64.b64encode(f.read_bytes()).decode() for f in files[:n]]


def _depth() -> str:
    from followme.follower.geometry import QUADSIM_DEPTH_MAX

    value = round(DEPTH_M / QUADSIM_DEPTH_MAX * 255)
    buf = io.BytesIO()
    Image.fromarray(np.full((256, 256, 4), (value, value, value, 255), np.uint8)).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--model", help="checkpoint or .onnx (default: the shipped model)")
    p.add_argument("--threads", type=int, help="the server's torch threads (default: torch's)")
    p.add_argument("--no-record-results", action="store_true",
                   help="do not append to bench/results.md")
    a = p.parse_args()

    from followme.sim.link import SocketIOFollower

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(child, a.model, a.threads), daemon=True)
    proc.start()
    if not parent.poll(120):
        raise SystemExit("the follower did not start within 120 s")
    port, image_size, threads = parent.recv()

    rgb = _frames(175)
    depth = _depth()
    sent: dict[int, float] = {}
    latency_ms: list[float] = []
    answered = set()
    lock = threading.Lock()

    def on_event(name, data, _arrival):
        if name != "object_detected":
            return
        t = time.perf_counter()
        seq = int(round(data["coords"][0] - DEPTH_M))
        with lock:
            if seq in sent and seq not in answered:
                answered.add(seq)
                latency_ms.append((t - sent[seq]) * 1000)

    client = SocketIOFollower(f"http://127.0.0.1:{port}", on_event=on_event)
    n = int(a.fps * a.seconds)
    period = 1.0 / a.fps
    print(f"sending {n} frames at {a.fps:g} fps for {a.seconds:g} s to the follower on port "
          f"{port} ({image_size} px model, {threads} torch threads)")
    start = time.perf_counter()
    for seq in range(n):
        deadline = start + seq * period
        while (now := time.perf_counter()) < deadline:
            time.sleep(min(deadline - now, 0.005))
        frame = {"timestamp": f"{time.time():.3f}", "rgb_image": rgb[seq % len(rgb)],
                 "depth_image": depth, "pose": f"{seq},0,2,0,0,0",
                 "gimbal_pose": f"{seq},0,2,0,0,0"}
        with lock:
            sent[seq] = time.perf_counter()
        client.send(frame)
    late = time.perf_counter() - start - a.seconds
    time.sleep(1.0)  # the last answers
    pong_wait_ms = client.longest_pong_wait * 1000
    client.close()
    parent.send("stop")
    stats = parent.recv() if parent.poll(60) else {}
    proc.join(30)

    e2e = np.array(latency_ms) if latency_ms else np.array([np.nan])
    p50, p99 = np.percentile(e2e, [50, 99])
    print(f"sent {n} ({late * 1000:+.0f} ms behind schedule at the end), answered "
          f"{len(answered)} (the others: no hero seen, or dropped)")
    print(f"server: received {stats.get('received')} processed {stats.get('processed')} "
          f"dropped {stats.get('dropped')} malformed {stats.get('malformed')}; server latency "
          f"p50 {stats.get('latency_p50_ms', float('nan')):.1f} ms p99 "
          f"{stats.get('latency_p99_ms', float('nan')):.1f} ms")
    print(f"end to end: p50 {p50:.1f} ms p99 {p99:.1f} ms max {np.nanmax(e2e):.1f} ms "
          f"(target p99 < 50 ms: {'met' if p99 < 50 else 'NOT met'})")
    print(f"longest wait for a pong (pinged every 0.33 s): {pong_wait_ms:.0f} ms (QuadSim's "
          "watchdog: 3000 ms)")
    if not a.no_record_results:
        import torch

        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        with open(RESULTS, "a") as f:
            f.write(
                f"\n### follower load, {stamp}\n{platform.processor() or platform.machine()}, "
                f"server {threads} torch threads, torch {torch.__version__}, model "
                f"{a.model or 'shipped'} at {image_size} px; {a.fps:g} fps for {a.seconds:g} s "
                "over WebSocket on 127.0.0.1, client and server on the same machine\n\n"
                "| sent | answered | processed | dropped | malformed | e2e p50 ms | e2e p99 ms "
                "| server p50 ms | server p99 ms | longest pong wait ms |\n"
                "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
                f"| {n} | {len(answered)} | {stats.get('processed')} | {stats.get('dropped')} "
                f"| {stats.get('malformed')} | {p50:.1f} | {p99:.1f} "
                f"| {stats.get('latency_p50_ms', float('nan')):.1f} "
                f"| {stats.get('latency_p99_ms', float('nan')):.1f} | {pong_wait_ms:.0f} |\n")
        print(f"appended to {RESULTS}")
    print(f"p99_ms={p99:.1f} processed={stats.get('processed')} dropped={stats.get('dropped')} "
          f"pong_wait_ms={pong_wait_ms:.0f}")


if __name__ == "__main__":
    main()
