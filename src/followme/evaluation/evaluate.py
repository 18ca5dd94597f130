"""``followme evaluate``: predict a grading folder, score it with the course formula, and write
score.json, score.md and one side-by-side picture per subset."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from followme.checkpoint import SHIPPED_MODEL, load_checkpoint
from followme.data.robond import pair_key, read_image
from followme.evaluation.score import SUBSETS, final_score, score_folder
from followme.predict import predict_folder

log = logging.getLogger(__name__)


def find_grade_dir(explicit: str | Path | None = None) -> Path:
    """The grading folder: the one given, else data/robond/validation_grade, else
    ../shared/data/robond/validation_grade."""
    candidates = [Path(explicit)] if explicit else [
        Path("data/robond/validation_grade"), Path("../shared/data/robond/validation_grade")]
    for c in candidates:
        if all((c / s / "masks").is_dir() for s in SUBSETS):
            return c
    raise FileNotFoundError(
        f"no grading folder with {', '.join(SUBSETS)} (each with images/ and masks/) at: "
        + ", ".join(str(c) for c in candidates))


def evaluate(grade_dir: str | Path, out: str | Path, model: str | Path | None = None,
             pred_dir: str | Path | None = None, progress: bool = True) -> dict:
    """Score predictions of ``model`` (or existing ones in ``pred_dir/<subset>/``) on a grading
    folder. Writes OUT/<subset>/*_prediction.png, OUT/score.json, OUT/score.md and
    OUT/<subset>_samples.png; returns the figures."""
    grade_dir, out = Path(grade_dir), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    info: dict = {"grade_dir": str(grade_dir)}
    if pred_dir is None:
        loaded = load_checkpoint(model)
        info["model"] = str(model or SHIPPED_MODEL)
        info["model_name"] = loaded.name
        for subset in SUBSETS:
            predict_folder(loaded, grade_dir / subset / "images", out / subset, progress=progress)
        pred_root = out
    else:
        pred_root = Path(pred_dir)
        info["pred_dir"] = str(pred_root)
    subsets = {s: score_folder(grade_dir / s / "masks", pred_root / s) for s in SUBSETS}
    figures = {**final_score(subsets), **info}
    _write_atomic(out / "score.json", json.dumps(figures, indent=2))
    _write_atomic(out / "score.md", score_markdown(figures))
    for s in SUBSETS:
        side_by_side(grade_dir / s, pred_root / s, out / f"{s}_samples.png", subsets[s])
    return figures


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def score_markdown(f: dict) -> str:
    lines = [
        "| subset | n | IoU background | IoU people | IoU hero | TP | FP | FN |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, s in f["subsets"].items():
        lines.append(f"| {name} | {s['n']} | {s['iou_background']:.4f} | {s['iou_people']:.4f} "
                     f"| {s['iou_hero']:.4f} | {s['tp']} | {s['fp']} | {s['fn']} |")
    lines += ["", f"weight = TP / (TP + FP + FN) = {f['tp']} / "
              f"({f['tp']} + {f['fp']} + {f['fn']}) = {f['weight']:.4f}",
              f"final_iou = {f['final_iou']:.4f}", f"**final_score = {f['final_score']:.4f}**", ""]
    return "\n".join(lines)


def side_by_side(subset_dir: Path, pred_dir: Path, path: Path, score, rows: int = 4) -> None:
    """image | truth | prediction for a few images: the best, the worst and two in between by
    hero IoU (evenly spread where the subset has no hero)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ranked = sorted(score.per_image_hero_iou, key=score.per_image_hero_iou.get)
    if not ranked:
        return
    picks = [ranked[round(i * (len(ranked) - 1) / (rows - 1))] for i in range(rows)]
    images = {pair_key(p.stem): p for p in (subset_dir / "images").iterdir()}
    masks = {pair_key(p.stem): p for p in (subset_dir / "masks").iterdir()}
    preds = {pair_key(p.stem): p for p in pred_dir.glob("*_prediction.png")}
    fig, axes = plt.subplots(len(picks), 3, figsize=(7.5, 2.6 * len(picks)), squeeze=False)
    for row, key in zip(axes, picks, strict=True):
        pred = read_image(preds[key])
        for ax, im, title in ((row[0], read_image(images[key]), key),
                              (row[1], read_image(masks[key]), "truth"),
                              (row[2], pred, f"prediction, hero IoU "
                                             f"{score.per_image_hero_iou[key]:.2f}")):
            ax.imshow(np.asarray(im))
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    fig.suptitle(f"{subset_dir.name}: image | truth | prediction", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    plt.close(fig)
