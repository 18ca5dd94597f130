"""Time to score: the default training recipe from scratch, graded on validation_grade each epoch.

Trains with ``followme train``'s defaults for a budget of ``--minutes`` of wall time (training and
the per-epoch grading both count; the cosine schedule is fitted to the budget after epoch 1), then
reports when final_score first reached 0.40 and 0.45, and the best score within the budget.
Minutes are counted from the first training batch: decoding the data set into the uint8 cache
happens once per machine and is reported apart. Appends the figures to bench/results.md.
Last line: ``minutes_to_0.45=<m> best=<score>``. Run it with nothing else on the machine: any
other load lengthens the epochs and so the minutes (``chrt -r 10 python ...`` shields it).

    python bench/time_to_score.py [--minutes 30] [--data ../shared/data/robond] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from followme.data.cache import load_arrays
from followme.training import TrainConfig, train

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.md"
THRESHOLDS = (0.40, 0.45)


def first_reaching(history: list[dict], threshold: float) -> float | None:
    """Wall minutes (training + grading) until the validation score first reached threshold."""
    wall = 0.0
    for row in history:
        wall += row["seconds"] + row.get("val_seconds", 0.0)
        if row.get("val_final_score", -1) >= threshold:
            return wall / 60
    return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=30)
    p.add_argument("--data", default=str(HERE.parents[1] / "shared" / "data" / "robond"))
    p.add_argument("--model", default=TrainConfig.model)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--out", default="runs/time_to_score")
    a = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    data = Path(a.data)
    cfg = TrainConfig(train=str(data / "train"), val=str(data / "validation_grade"),
                      model=a.model, out=a.out, minutes=a.minutes, val_every=1,
                      threads=a.threads, device="cpu")
    t0 = time.perf_counter()
    load_arrays(cfg.train, cfg.image_size)
    for sub in sorted((data / "validation_grade").iterdir()):
        load_arrays(sub, cfg.image_size)
    cache_s = time.perf_counter() - t0
    if Path(a.out, "last.pt").exists():
        Path(a.out, "last.pt").unlink()  # always from scratch
    t0 = time.perf_counter()
    train(cfg)
    total_min = (time.perf_counter() - t0) / 60
    history = json.loads(Path(a.out, "history.json").read_text())

    reached = {t: first_reaching(history, t) for t in THRESHOLDS}
    walls = np.cumsum([h["seconds"] + h.get("val_seconds", 0.0) for h in history]) / 60
    best = max((h.get("val_final_score", 0.0) for h, w in zip(history, walls, strict=True)
                if w <= a.minutes), default=0.0)
    fmt = {t: "not reached" if m is None else f"{m:.1f}" for t, m in reached.items()}
    print(f"\nepochs {len(history)}, {total_min:.1f} min in all (data cache {cache_s:.0f} s)")
    for t in THRESHOLDS:
        print(f"minutes to final_score {t:.2f}: {fmt[t]}")
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    with open(RESULTS, "a") as f:
        f.write(f"\n### time_to_score, {stamp}\n{platform.machine()}, {a.threads} threads, "
                f"torch {torch.__version__}, model {a.model}, budget {a.minutes:g} min, "
                f"{len(history)} epochs, {total_min:.1f} min in all\n\n"
                "| epoch | wall min | train loss | final_score | final IoU | weight |\n"
                "| ---: | ---: | ---: | ---: | ---: | ---: |\n")
        for h, wall in zip(history, walls, strict=True):
            f.write(f"| {h['epoch']} | {wall:.1f} | {h['train_loss']:.3f} | "
                    f"{h.get('val_final_score', float('nan')):.3f} | "
                    f"{h.get('val_final_iou', float('nan')):.3f} | "
                    f"{h.get('val_weight', float('nan')):.3f} |\n")
        f.write(f"\nminutes_to_0.40={fmt[0.40]} minutes_to_0.45={fmt[0.45]} best within "
                f"{a.minutes:g} min={best:.3f}\n")
    print(f"minutes_to_0.45={fmt[0.45].replace('not reached', 'none')} best={best:.3f}")


if __name__ == "__main__":
    main()
