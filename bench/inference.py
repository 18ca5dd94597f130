"""Follower-path latency, one frame at a time, as ``followme follow`` runs it on its worker:
a checked sensor_frame (256x256 JPEG and depth PNG) -> camera frame -> hero mask -> target.

Prints p50/p99 latency and frames/s for each runtime we ship, PyTorch eager and ONNX Runtime
(on a fresh ``followme export --onnx`` of the model), and torch.compile when asked; appends them
to bench/results.md.
Last line: ``fps=<best runtime fps> p99_ms=<its p99>``.

    python bench/inference.py [--model CKPT] [--frames 300] [--threads N]
"""

from __future__ import annotations

import argparse
import base64
import io
import platform
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from followme.checkpoint import SHIPPED_MODEL, load_checkpoint
from followme.follower.config import FollowConfig
from followme.follower.pipeline import FramePipeline
from followme.follower.quadsim.protocol import SensorFrame, camera_frame, parse_sensor_frame
from followme.segment.onnx import OnnxRuntime, export_onnx
from followme.segment.segmenter import HeroSegmenter, TorchRuntime

SHARED_IMAGES = Path(__file__).resolve().parents[2] / "shared/data/robond/validation_grade"
RESULTS = Path(__file__).with_name("results.md")


def _png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return buf.getvalue()


def sample_frames(n: int) -> list[SensorFrame]:
    """Checked sensor_frames of real RoboND images (random ones without the shared data), with
    a depth image of a ground plane as QuadSim sends it (RGBA PNG)."""
    files = sorted(SHARED_IMAGES.glob("*/images/*.jpeg"))
    rng = np.random.default_rng(0)
    depth = np.repeat(np.linspace(40, 250, 256).astype(np.uint8)[:, None], 256, 1)
    depth_png = base64.b64encode(_png(np.dstack([depth] * 3 + [np.full_like(depth, 255)])))
    out = []
    for i in range(n):
        if files:
            jpeg = files[i * 7 % len(files)].read_bytes()
        else:
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)).save(buf, "JPEG")
            jpeg = buf.getvalue()
        out.append(parse_sensor_frame({
            "timestamp": f"{i / 5:.2f}", "rgb_image": base64.b64encode(jpeg).decode(),
            "depth_image": depth_png.decode(), "pose": "0,0,10,0,0,0",
            "gimbal_pose": "0,0,10,0,30,0"}))
    return out


def measure(pipeline: FramePipeline, frames: list[SensorFrame], warmup: int = 20) -> np.ndarray:
    """Milliseconds per frame of the follower's worker: decode, segment, locate."""
    config = pipeline.config
    for f in frames[:warmup]:
        pipeline(camera_frame(f, config.frame_size, config.camera))
    times = []
    for f in frames:
        t0 = time.perf_counter()
        pipeline(camera_frame(f, config.frame_size, config.camera))
        times.append(time.perf_counter() - t0)
    return np.array(times) * 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", help="checkpoint (default: the shipped model)")
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--compile", action="store_true", help="also time torch.compile")
    p.add_argument("--no-onnx", action="store_true", help="skip ONNX Runtime")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    loaded = load_checkpoint(a.model)
    frames = sample_frames(a.frames)
    runtimes = {"eager": TorchRuntime(loaded.model, loaded.image_size, loaded.normalization)}
    if a.compile:
        runtimes["torch.compile"] = TorchRuntime(torch.compile(loaded.model), loaded.image_size,
                                                 loaded.normalization)
    if not a.no_onnx:
        with tempfile.TemporaryDirectory() as tmp:
            onnx_path = Path(tmp) / "model.onnx"
            export_onnx(a.model or SHIPPED_MODEL, onnx_path)
            runtimes["onnxruntime"] = OnnxRuntime(onnx_path, a.threads)
    rows = []
    for name, runtime in runtimes.items():
        ms = measure(FramePipeline(HeroSegmenter(runtime), FollowConfig()), frames)
        p50, p99 = np.percentile(ms, [50, 99])
        fps = 1000 / ms.mean()
        rows.append((name, p50, p99, fps))
        print(f"{name:>14}: p50 {p50:.2f} ms  p99 {p99:.2f} ms  {fps:.0f} frames/s "
              f"({len(frames)} frames, {a.threads} threads)")
    best = max(rows, key=lambda r: r[3])
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    with open(RESULTS, "a") as f:
        f.write(f"\n### inference, {stamp}\n{platform.processor() or platform.machine()}, "
                f"{torch.get_num_threads()} threads, torch {torch.__version__}, model "
                f"{loaded.name} at {loaded.image_size} px\n\n"
                "(the follower's worker: sensor_frame -> camera frame -> mask -> target)\n\n"
                "| runtime | p50 ms | p99 ms | frames/s |\n| --- | ---: | ---: | ---: |\n")
        for name, p50, p99, fps in rows:
            f.write(f"| {name} | {p50:.2f} | {p99:.2f} | {fps:.0f} |\n")
    print(f"fps={best[3]:.0f} p99_ms={best[2]:.2f}")


if __name__ == "__main__":
    main()
