"""Independent re-implementation of the Udacity RoboND Follow-Me course score.

Written from the specification only (no import from the ``followme`` package) to cross-check
the ``score.json`` that another program wrote.

Usage: ``python tools/verify_score.py GRADE PRED [--json SCORE_JSON]``

GRADE holds ``<subset>/masks/*.png`` (256x256 one-hot RGB: background, other people, hero);
PRED holds ``<subset>/*_prediction.png`` (softmax x 255, uint8 RGB). Per image the mask is
clipped to {0,1}, then bilinearly resized to the prediction's size; the prediction is > 127.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
from PIL import Image

SUBSETS = ("following_images", "patrol_with_targ", "patrol_non_targ")
FIELDS = ("n", "iou_background", "iou_people", "iou_hero", "tp", "fp", "fn")
COUNTS = {"n", "tp", "fp", "fn"}
TOL = 1e-9


def pair_key(stem: str) -> str:
    """Common key of an image/mask stem: drop ``cam1``/``mask`` and the separators around them."""
    return re.sub(r"_?(?:cam1|mask)_?", "_", stem)


def pair_files(mask_dir: Path, pred_dir: Path) -> list[tuple[Path, Path]]:
    """Pair masks and predictions by name; warn if the course's sorted-order pairing differs."""
    masks = sorted(mask_dir.glob("*.png"))
    preds = sorted(pred_dir.glob("*_prediction.png"))
    by_key = {pair_key(m.stem): m for m in masks}
    assert len(by_key) == len(masks), f"duplicate mask keys in {mask_dir}"
    pairs = []
    for p in preds:
        key = pair_key(p.name[: -len("_prediction.png")])
        assert key in by_key, f"no mask for prediction {p}"
        pairs.append((by_key.pop(key), p))
    assert not by_key, f"{len(by_key)} masks without prediction in {mask_dir}"
    if list(zip(masks, preds, strict=True)) != sorted(pairs):
        print(f"WARNING: sorted-order pairing differs from name pairing in {pred_dir}")
    return pairs


def score_image(mask_path: Path, pred_path: Path) -> tuple[list[float], bool, bool]:
    """Per-class IoU, hero present in truth, hero predicted."""
    pred = np.asarray(Image.open(pred_path).convert("RGB")) > 127
    truth = np.asarray(Image.open(mask_path).convert("RGB")).clip(0, 1).astype(np.uint8)
    h, w = pred.shape[:2]
    if truth.shape[:2] != (h, w):
        truth = np.asarray(Image.fromarray(truth).resize((w, h), Image.BILINEAR))
    truth = truth.astype(bool)
    ious = []
    for c in range(3):
        union = np.sum(truth[..., c] | pred[..., c])
        inter = np.sum(truth[..., c] & pred[..., c])
        ious.append(float(inter) / float(union) if union else 0.0)
    return ious, int(truth[..., 2].sum()) > 3, int(pred[..., 2].sum()) > 3


def score_subset(mask_dir: Path, pred_dir: Path) -> dict[str, float | int]:
    """Mean per-class IoU over the subset's images and its detection counts."""
    pairs = pair_files(mask_dir, pred_dir)
    ious, tp, fp, fn = [], 0, 0, 0
    for m, p in pairs:
        iou, present, predicted = score_image(m, p)
        ious.append(iou)
        tp += present and predicted
        fn += present and not predicted
        fp += predicted and not present
    mean = np.mean(ious, axis=0) if ious else np.zeros(3)
    return {"n": len(pairs), "iou_background": float(mean[0]), "iou_people": float(mean[1]),
            "iou_hero": float(mean[2]), "tp": tp, "fp": fp, "fn": fn}


def score(grade: Path, pred: Path) -> dict:
    """Full score: per-subset figures, weight, final_iou, final_score."""
    subsets = {s: score_subset(grade / s / "masks", pred / s) for s in SUBSETS}
    tp, fp, fn = (sum(int(v[k]) for v in subsets.values()) for k in ("tp", "fp", "fn"))
    weight = tp / (tp + fp + fn) if tp + fp + fn else 0.0
    final_iou = (subsets["following_images"]["iou_hero"]
                 + subsets["patrol_with_targ"]["iou_hero"]) / 2
    return {"weight": weight, "final_iou": final_iou, "final_score": final_iou * weight,
            "tp": tp, "fp": fp, "fn": fn, "subsets": subsets}


def compare(mine: dict, other: dict) -> tuple[bool, float]:
    """Print each mismatch; return (agree, largest absolute float difference)."""
    checks: list[tuple[str, float, object]] = [(k, mine[k], other.get(k))
                                               for k in ("weight", "final_iou", "final_score")]
    checks += [(k, mine[k], other[k]) for k in ("tp", "fp", "fn") if k in other]
    for s in SUBSETS:
        theirs = other.get("subsets", {}).get(s, {})
        checks += [(f"{s}.{f}", mine["subsets"][s][f], theirs.get(f)) for f in FIELDS]
    agree, max_diff = True, 0.0
    for name, a, b in checks:
        if b is None:
            print(f"MISMATCH {name}: mine={a} theirs=missing")
            agree = False
            continue
        diff = abs(float(a) - float(b))
        if name.split(".")[-1] not in COUNTS:
            max_diff = max(max_diff, diff)
        if diff > (0 if name.split(".")[-1] in COUNTS else TOL):
            print(f"MISMATCH {name}: mine={a} theirs={b} diff={diff:.3g}")
            agree = False
    return agree, max_diff


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("grade", type=Path)
    ap.add_argument("pred", type=Path)
    ap.add_argument("--json", type=Path, help="score.json of the other program to cross-check")
    args = ap.parse_args(argv)
    res = score(args.grade, args.pred)
    for s, v in res["subsets"].items():
        print(f"{s:17s} n={v['n']:4d} iou bg={v['iou_background']:.6f} "
              f"people={v['iou_people']:.6f} hero={v['iou_hero']:.6f} "
              f"tp={v['tp']} fp={v['fp']} fn={v['fn']}")
    print(f"tp={res['tp']} fp={res['fp']} fn={res['fn']} weight={res['weight']:.12f}")
    print(f"final_iou={res['final_iou']:.12f} final_score={res['final_score']:.12f}")
    if args.json is None:
        return 0
    agree, max_diff = compare(res, json.loads(args.json.read_text()))
    print(f"agree={'yes' if agree else 'no'} max_abs_diff={max_diff:.3g}")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
