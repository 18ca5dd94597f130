"""Training images per second of the seed FCN at 160 px, batch 32: ours beside the original Keras.

Ours is timed once per lever, each added on top of the one before, as the whole training step
from a uint8 batch: augmentation on tensors, normalisation, forward, loss, backward, AdamW.
The Keras side is the notebook's architecture on today's TensorFlow for CPU (bench/keras_seed.py),
run in its own environment, bench/.venv-keras, made from bench/requirements-keras.txt on first
use. Both sides use the same batch and the same number of threads, on random data.

Ours with the best settings is timed before and after Keras, and the ratio uses the median of
those two runs. Appends the figures to bench/results.md. Last line: ``ratio_vs_keras=<x>``.

    python bench/train_throughput.py [--model seed] [--steps 8] [--threads 2] [--compile]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from followme.data.augment import AugmentConfig, augment
from followme.models import create_model
from followme.training import bf16_supported, train_step

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.md"
KERAS_VENV = HERE / ".venv-keras"

# Each lever adds to the ones above it.
LEVERS = [
    ("fp32, NCHW (a plain port)", {}),
    ("+ channels_last", {"channels_last": True}),
    ("+ bf16 autocast", {"channels_last": True, "bf16": True}),
]
COMPILE_LEVER = ("+ torch.compile", {"channels_last": True, "bf16": True, "compile": True})


def time_ours(model_name: str, batch: int, size: int, steps: int, warmup: int,
              channels_last: bool = False, bf16: bool = False, compile: bool = False) -> float:
    """Median images/s of the full training step."""
    torch.manual_seed(0)
    model = create_model(model_name)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    net = torch.compile(model) if compile else model
    images = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8)
    labels = torch.randint(0, 3, (batch, size, size), dtype=torch.uint8)
    bf16 = bf16 and bf16_supported(torch.device("cpu"))
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        g = torch.Generator().manual_seed(i)
        x, y = augment(images.float(), labels.long(), AugmentConfig(), g)
        train_step(net, opt, x, y, dice_weight=1.0, bf16=bf16, channels_last=channels_last)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return batch / statistics.median(times)


def time_augmentation(batch: int, size: int, steps: int) -> float:
    """Images/s of the augmentation alone (on batched tensors, as in training)."""
    images = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8)
    labels = torch.randint(0, 3, (batch, size, size), dtype=torch.uint8)
    times = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        augment(images.float(), labels.long(), AugmentConfig(), torch.Generator().manual_seed(i))
        times.append(time.perf_counter() - t0)
    return batch / statistics.median(times[1:])


def keras_python() -> Path:
    python = KERAS_VENV / "bin" / "python"
    if not python.exists():
        print(f"making {KERAS_VENV} from requirements-keras.txt (once)...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(KERAS_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-r",
                        str(HERE / "requirements-keras.txt")], check=True)
    return python


def time_keras(batch: int, size: int, steps: int, warmup: int, threads: int) -> dict:
    cmd = [str(keras_python()), str(HERE / "keras_seed.py"), "--batch", str(batch), "--size",
           str(size), "--steps", str(steps), "--warmup", str(warmup), "--threads", str(threads)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the Keras benchmark failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="seed")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--size", type=int, default=160)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--compile", action="store_true", help="also time torch.compile")
    p.add_argument("--no-keras", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    shape = (a.model, a.batch, a.size, a.steps, a.warmup)

    rows = []
    for name, lever in LEVERS + ([COMPILE_LEVER] if a.compile else []):
        rows.append((name, time_ours(*shape, **lever)))
        print(f"ours {name:28s} {rows[-1][1]:6.1f} images/s", flush=True)
    augment_ips = time_augmentation(a.batch, a.size, a.steps)
    print(f"(augmentation alone: {augment_ips:.0f} images/s)", flush=True)
    best_name, best = max(rows, key=lambda r: r[1])
    best_lever = dict(LEVERS + [COMPILE_LEVER])[best_name]
    ratio = keras = None
    if not a.no_keras:
        keras = time_keras(a.batch, a.size, a.steps, a.warmup, a.threads)
        print(f"keras (TF {keras['tensorflow']}, Keras {keras['keras']}) "
              f"{keras['images_per_s']:6.1f} images/s", flush=True)
        again = time_ours(*shape, **best_lever)
        print(f"ours {best_name:28s} {again:6.1f} images/s (again, after Keras)", flush=True)
        best = statistics.median([best, again])
        ratio = best / keras["images_per_s"]

    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    with open(RESULTS, "a") as f:
        f.write(f"\n### train_throughput, {stamp}\n{platform.machine()}, {a.threads} threads, "
                f"torch {torch.__version__}, model {a.model}, batch {a.batch}, {a.size} px, "
                f"median of {a.steps} steps\n\n| setting | images/s |\n| --- | ---: |\n")
        for name, ips in rows:
            f.write(f"| ours: {name} | {ips:.1f} |\n")
        f.write(f"| (the augmentation alone) | {augment_ips:.0f} |\n")
        if keras:
            f.write(f"| Keras {keras['keras']} on TensorFlow {keras['tensorflow']} (CPU) | "
                    f"{keras['images_per_s']:.1f} |\n\nours best {best:.1f} images/s (median of "
                    f"two runs), ratio_vs_keras={ratio:.2f}\n")
    print(f"ratio_vs_keras={ratio:.2f}" if ratio else f"best={best:.1f} images/s")


if __name__ == "__main__":
    main()
