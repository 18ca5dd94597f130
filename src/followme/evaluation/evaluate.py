"""``followme evaluate``: predict a grading folder, score it with the course formula, and write
score.json, score.md, one side-by-side picture per subset, and pictures of the heroes it missed
and of the false ones."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from followme.atomic import write_atomic, write_text_atomic
from followme.checkpoint import SHIPPED_MODEL, load_checkpoint
from followme.data.robond import DataError, Pair, find_pairs, mask_to_labels, read_image
from followme.evaluation.score import SUBSETS, SubsetScore, final_score, score_folder
from followme.labels import HERO, ON_ABOVE
from followme.segment.predict import predict_folder

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


def find_prediction_dirs(pred_dir: str | Path, run_name: str | None = None) -> dict[str, Path]:
    """Each subset's prediction folder: ``DIR/<subset>/`` as ``evaluate`` writes them, or the
    course's ``DIR/<subset>_<run_name>/``."""
    pred_dir = Path(pred_dir)
    found = {}
    for subset in SUBSETS:
        if run_name:
            candidates = [pred_dir / f"{subset}_{run_name}"]
        else:
            candidates = [pred_dir / subset] if (pred_dir / subset).is_dir() else sorted(
                d for d in pred_dir.glob(f"{subset}_*") if d.is_dir())
        candidates = [c for c in candidates if c.is_dir()]
        if not candidates:
            raise FileNotFoundError(f"{pred_dir}: no {subset}/ or {subset}_<run_name>/ folder "
                                    "of predictions")
        if len(candidates) > 1:
            names = ", ".join(c.name[len(subset) + 1:] for c in candidates)
            raise ValueError(f"{pred_dir}: predictions of several runs for {subset} ({names}): "
                             "choose one with --run-name")
        found[subset] = candidates[0]
    return found


def grading_pairs(grade_dir: Path, skip_bad: bool) -> dict[str, list[Pair]]:
    """Each subset's image/mask pairs; bad or missing files are refused unless ``skip_bad``, and
    a folder without any pair always is."""
    pairs, problems = {}, []
    for subset in SUBSETS:
        pairs[subset], bad = find_pairs(grade_dir / subset)
        problems += bad
    if problems and not skip_bad:
        raise DataError(problems)
    for p in problems:
        log.warning("skipped: %s", p)
    empty = [s for s in SUBSETS if not pairs[s]]
    if len(empty) == len(SUBSETS):
        raise ValueError(f"{grade_dir}: no image/mask pairs to score in {', '.join(SUBSETS)}")
    for s in empty:
        log.warning("%s: no image/mask pairs; it scores as empty", grade_dir / s)
    return pairs


def evaluate(grade_dir: str | Path, out: str | Path, model: str | Path | None = None,
             pred_dir: str | Path | None = None, progress: bool = True, skip_bad: bool = False,
             run_name: str | None = None) -> dict:
    """Score predictions of ``model`` (or existing ones in ``pred_dir``, see
    ``find_prediction_dirs``) on a grading folder. Writes OUT/<subset>/*_prediction.png
    (replacing the folder's earlier ones), OUT/score.json, OUT/score.md and
    OUT/<subset>_samples.png; returns the figures."""
    grade_dir, out = Path(grade_dir), Path(out)
    pairs = grading_pairs(grade_dir, skip_bad)
    info: dict = {"grade_dir": str(grade_dir)}
    masks = {s: [p.mask for p in pairs[s]] for s in SUBSETS}
    if pred_dir is None:
        loaded = load_checkpoint(model)
        info["model"] = str(model or SHIPPED_MODEL)
        info["model_name"] = loaded.name
        pred_dirs = {s: out / s for s in SUBSETS}
        for subset in SUBSETS:
            stale = list(pred_dirs[subset].glob("*_prediction.png"))
            for f in stale:
                f.unlink()
            if stale:
                log.info("%s: replaced %d earlier predictions", pred_dirs[subset], len(stale))
            written = predict_folder(loaded, grade_dir / subset / "images", pred_dirs[subset],
                                     progress=progress, files=[p.image for p in pairs[subset]],
                                     skip_bad=skip_bad)
            done = {w.name for w in written}
            masks[subset] = [p.mask for p in pairs[subset]
                             if f"{p.image.stem}_prediction.png" in done]
    else:
        pred_dirs = find_prediction_dirs(pred_dir, run_name)
        info["pred_dir"] = str(pred_dir)
        info["pred_dirs"] = {s: str(d) for s, d in pred_dirs.items()}
    out.mkdir(parents=True, exist_ok=True)
    subsets = {s: score_folder(grade_dir / s / "masks", pred_dirs[s], masks[s]) for s in SUBSETS}
    figures = {**final_score(subsets), **info}
    write_text_atomic(out / "score.json", json.dumps(figures, indent=2))
    write_text_atomic(out / "score.md", score_markdown(figures))
    for s in SUBSETS:
        side_by_side(pairs[s], grade_dir / s, out / f"{s}_samples.png", subsets[s])
        hero_crops(pairs[s], subsets[s].missed, out / f"{s}_missed.png", subsets[s])
        hero_crops(pairs[s], subsets[s].false, out / f"{s}_false.png", subsets[s], predicted=True)
    return figures


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
    return "\n".join(lines + by_size_markdown(f))


def by_size_markdown(f: dict) -> list[str]:
    """The hero found (recall) and her IoU by size, per subset with the hero."""
    lines = ["Images with the hero, by her size in pixels of the full-size mask (found: more "
             "than 3 predicted hero pixels):", "",
             "| subset | hero pixels | n | found | recall | IoU hero |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    rows = [f"| {name} | {size} | {b['n']} | {b['found']} | {b['recall']:.3f} | "
            f"{b['iou_hero']:.4f} |"
            for name, s in f["subsets"].items() for size, b in s.get("by_size", {}).items()]
    return lines + rows + [""] if rows else []


def side_by_side(pairs: list[Pair], subset_dir: Path, path: Path, score: SubsetScore,
                 rows: int = 4) -> None:
    """image | truth | prediction for a few images: the best, the worst and two in between by
    hero IoU (evenly spread where the subset has no hero)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ranked = sorted(score.per_image_hero_iou, key=score.per_image_hero_iou.get)
    if not ranked:
        return
    picks = [ranked[round(i * (len(ranked) - 1) / (rows - 1))] for i in range(rows)]
    image_of = {p.mask: p.image for p in pairs}
    fig, axes = plt.subplots(len(picks), 3, figsize=(7.5, 2.6 * len(picks)), squeeze=False)
    for row, key in zip(axes, picks, strict=True):
        mask, pred_file = score.files[key]
        pred = read_image(pred_file)
        for ax, im, title in ((row[0], read_image(image_of[mask]), key),
                              (row[1], read_image(mask), "truth"),
                              (row[2], pred, f"prediction, hero IoU "
                                             f"{score.per_image_hero_iou[key]:.2f}")):
            ax.imshow(np.asarray(im))
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    fig.suptitle(f"{subset_dir.name}: image | truth | prediction", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    plt.close(fig)


def hero_crops(pairs: list[Pair], keys: list[str], path: Path, score: SubsetScore,
               predicted: bool = False, crop: int = 48, zoom: int = 2, columns: int = 6) -> None:
    """Images ``keys`` as crops of the full-size image around the hero's pixels (``crop``
    pixels, ``zoom`` times), each beside the same crop with those pixels in magenta: her true
    pixels (a missed hero: was she there to be seen, or behind leaves, another person, the
    frame's edge?), or with ``predicted`` the predicted ones (a false hero: what the model took
    for her). Writes nothing, and removes an earlier picture, where ``keys`` is empty."""
    from PIL import Image, ImageDraw

    path.unlink(missing_ok=True)
    if not keys:
        return
    image_of = {p.mask: p.image for p in pairs}
    side = crop * zoom
    sheet = Image.new("RGB", (2 * side * min(columns, len(keys)),
                              side * -(-len(keys) // columns)), "white")
    draw = ImageDraw.Draw(sheet)
    for k, key in enumerate(keys):
        mask, pred = score.files[key]
        truth = read_image(mask)
        if predicted:
            on = Image.fromarray(((read_image(pred)[..., HERO] > ON_ABOVE) * 255).astype(np.uint8))
            hero = np.asarray(on.resize(truth.shape[1::-1], Image.NEAREST)) > 0
        else:
            hero = mask_to_labels(truth, mask) == HERO
        rgb = np.asarray(Image.fromarray(read_image(image_of[mask])).resize(hero.shape[::-1]))
        rows, cols = np.nonzero(hero)
        top = int(np.clip(rows.mean() - crop / 2, 0, max(0, hero.shape[0] - crop)))
        left = int(np.clip(cols.mean() - crop / 2, 0, max(0, hero.shape[1] - crop)))
        window = np.s_[top:top + crop, left:left + crop]
        marked = rgb[window].copy()
        marked[hero[window]] = (255, 0, 255)
        tile = Image.fromarray(np.concatenate([rgb[window], marked], axis=1))
        x, y = (k % columns) * 2 * side, (k // columns) * side
        sheet.paste(tile.resize((2 * side, side), Image.NEAREST), (x, y))
        draw.text((x + 3, y + 2), f"{key} ({int(hero.sum())} px)", fill=(255, 255, 0))
    write_atomic(path, lambda tmp: sheet.save(tmp, format="PNG"))


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``followme evaluate``."""
    p.add_argument("--model", metavar="CKPT", help="default: the shipped model")
    p.add_argument("--grade-dir", metavar="DIR",
                   help="default: data/robond/validation_grade, then "
                        "../shared/data/robond/validation_grade")
    p.add_argument("--out", default="runs/evaluate", metavar="OUT")
    p.add_argument("--pred-dir", metavar="DIR",
                   help="score existing predictions: DIR/<subset>/ or the course's "
                        "DIR/<subset>_<run_name>/")
    p.add_argument("--run-name", help="with --pred-dir: which run's <subset>_<run_name>/")
    p.add_argument("--skip-bad", action="store_true",
                   help="skip unreadable or unpaired files instead of failing")


def run(a: argparse.Namespace) -> int:
    figures = evaluate(find_grade_dir(a.grade_dir), a.out, model=a.model, pred_dir=a.pred_dir,
                       skip_bad=a.skip_bad, run_name=a.run_name)
    print(score_markdown(figures))
    print(f"wrote {a.out}/score.json, {a.out}/score.md, {a.out}/<subset>_samples.png and, where "
          f"there were any, the missed and false heroes: {a.out}/<subset>_missed.png, _false.png")
    return 0
