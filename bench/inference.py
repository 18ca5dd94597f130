"""Follower-path latency: 256x256 JPEG bytes -> hero mask -> centroid, one frame at a time.

Prints p50/p99 latency and frames/s for each runtime we ship, PyTorch eager and ONNX Runtime
(on a fresh ``followme export --onnx`` of the model), and torch.compile when asked; appends them
to bench/results.md.
Last line: ``fps=<best runtime fps> p99_ms=<its p99>``.

    python bench/inference.py [--model CKPT] [--frames 300] [--threads N]
"""

from __future__ import annotations

import argparse
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
from followme.export import export_onnx
from followme.inference import HeroSegmenter, OnnxModel

SHARED_IMAGES = Path(__file__).resolve().parents[2] / "shared/data/robond/validation_grade"
RESULTS = Path(__file__).with_name("results.md")


def sample_frames(n: int) -> list[bytes]:
    files = sorted(SHARED_IMAGES.glob("*/images/*.jpeg"))
    if files:
        return [files[i * 7 % len(files)].read_bytes() for i in range(n)]
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)).save(buf, "JPEG")
        out.append(buf.getvalue())
    return out


def measure(segment, frames: list[bytes], warmup: int = 20) -> np.ndarray:
    for f in frames[:warmup]:
        segment(f)
    times = []
    for f in frames:
        t0 = time.perf_counter()
        segment(f)
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
    runtimes = {"eager": HeroSegmenter(loaded.model, loaded.image_size, loaded.normalization)}
    if a.compile:
        compiled = torch.compile(loaded.model)
        runtimes["torch.compile"] = HeroSegmenter(compiled, loaded.image_size,
                                                  loaded.normalization)
    if not a.no_onnx:
        with tempfile.TemporaryDirectory() as tmp:
            onnx_path = Path(tmp) / "model.onnx"
            export_onnx(a.model or SHIPPED_MODEL, onnx_path)
            onnx = OnnxModel(onnx_path, a.threads)
        runtimes["onnxruntime"] = HeroSegmenter(onnx, onnx.image_size)
    rows = []
    for name, segment in runtimes.items():
        ms = measure(segment, frames)
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
                "| runtime | p50 ms | p99 ms | frames/s |\n| --- | ---: | ---: | ---: |\n")
        for name, p50, p99, fps in rows:
            f.write(f"| {name} | {p50:.2f} | {p99:.2f} | {fps:.0f} |\n")
    print(f"fps={best[3]:.0f} p99_ms={best[2]:.2f}")


if __name__ == "__main__":
    main()
