"""The RoboND Follow-Me score, exactly as the course's ``scoring_utils.score_run_iou`` computed it.

Per image: the truth mask is clipped to {0, 1}, then resized (PIL bilinear) to the prediction's
size when they differ; a predicted pixel is on where the PNG value is > 127. Per class,
IoU = |truth & pred| / |truth | pred|, and 0 where the union is empty. The hero is present when
more than 3 of its pixels are on, in the truth and in the prediction, which gives TP / FP / FN.

Over the grading folder: weight = TP / (TP + FP + FN) summed over the subsets,
final_iou = mean(hero IoU of following_images, hero IoU of patrol_with_targ),
final_score = final_iou * weight.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from followme.data.resize import resize_truth
from followme.data.robond import DataError, pair_files, pair_key, read_image
from followme.labels import HERO, ON_ABOVE

SUBSETS = ("following_images", "patrol_with_targ", "patrol_non_targ")
IOU_SUBSETS = ("following_images", "patrol_with_targ")
PRESENT_PIXELS = 3
HERO_SIZE_BINS = ((4, 50), (51, 200), (201, 999), (1000, 10 ** 9))  # pixels at full size


def image_iou(truth: np.ndarray, pred: np.ndarray) -> float:
    """IoU of two 0/1 masks; 0 where the union is empty."""
    union = np.count_nonzero(truth | pred)
    return float(np.count_nonzero(truth & pred)) / union if union else 0.0


@dataclass
class ImageScore:
    iou: tuple[float, float, float]
    hero_true: bool
    hero_pred: bool
    hero_pixels: int | None = None  # in the full-size truth mask, for the figures by hero size


def score_image(truth_mask: np.ndarray, prediction: np.ndarray) -> ImageScore:
    """truth_mask: one-hot RGB (H, W, 3) uint8 0/255;
    prediction: (h, w, 3) uint8 probabilities x 255."""
    pred = prediction > ON_ABOVE
    truth = resize_truth(truth_mask.clip(0, 1).astype(np.uint8), *pred.shape[:2]) > 0
    return score_resized(truth, pred, int(np.count_nonzero(truth_mask[..., HERO] > ON_ABOVE)))


def score_resized(truth: np.ndarray, pred: np.ndarray, hero_pixels: int | None = None
                  ) -> ImageScore:
    """truth, pred: (h, w, 3) bool masks of the same size."""
    return ImageScore(
        tuple(image_iou(truth[..., c], pred[..., c]) for c in range(3)),
        hero_true=int(truth[..., HERO].sum()) > PRESENT_PIXELS,
        hero_pred=int(pred[..., HERO].sum()) > PRESENT_PIXELS,
        hero_pixels=hero_pixels,
    )


def by_hero_size(scores: list[ImageScore]) -> dict[str, dict]:
    """Images with the hero, by her size in the full-size mask: how many, how many of them the
    prediction finds (more than 3 hero pixels), and their mean hero IoU."""
    out = {}
    for lo, hi in HERO_SIZE_BINS:
        group = [v for v in scores if v.hero_pixels is not None and lo <= v.hero_pixels <= hi]
        if group:
            found = sum(v.hero_pred for v in group)
            out[f"{lo}-{hi}" if hi < 10 ** 9 else f"{lo}+"] = {
                "n": len(group), "found": found, "recall": found / len(group),
                "iou_hero": float(np.mean([v.iou[HERO] for v in group]))}
    return out


@dataclass
class SubsetScore:
    n: int = 0
    iou_background: float = 0.0
    iou_people: float = 0.0
    iou_hero: float = 0.0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    by_size: dict[str, dict] = field(default_factory=dict)  # see by_hero_size
    per_image_hero_iou: dict[str, float] = field(default_factory=dict, repr=False)
    files: dict[str, tuple[Path, Path]] = field(default_factory=dict, repr=False)  # mask, pred
    missed: list[str] = field(default_factory=list, repr=False)  # the hero there, not found
    false: list[str] = field(default_factory=list, repr=False)  # found where she is not


def score_images(scores: dict[str, ImageScore]) -> SubsetScore:
    """Mean IoU per class and detection counts over one subset's images."""
    n = len(scores)
    s = SubsetScore(n=n)
    if n == 0:
        return s
    ious = np.array([v.iou for v in scores.values()])
    s.iou_background, s.iou_people, s.iou_hero = (float(x) for x in ious.mean(axis=0))
    for v in scores.values():
        s.tp += v.hero_true and v.hero_pred
        s.fn += v.hero_true and not v.hero_pred
        s.fp += (not v.hero_true) and v.hero_pred
    s.per_image_hero_iou = {k: v.iou[HERO] for k, v in scores.items()}
    s.missed = [k for k, v in scores.items() if v.hero_true and not v.hero_pred]
    s.false = [k for k, v in scores.items() if v.hero_pred and not v.hero_true]
    s.by_size = by_hero_size(list(scores.values()))
    return s


def pair_predictions(mask_dir: Path, pred_dir: Path, masks: list[Path] | None = None
                     ) -> list[tuple[str, Path, Path]]:
    """(key, mask, prediction): ``<image stem>_prediction.png`` pairs with its image's mask by
    name, or by fold and frame number (the course's evaluation set). Refuses masks without a
    prediction, and predictions that pair with no mask or with the same mask. ``masks``: only
    these masks of ``mask_dir`` (the others' predictions are ignored)."""
    all_masks = sorted(Path(mask_dir).glob("*.png"))
    masks = all_masks if masks is None else sorted(masks)
    preds = sorted(Path(pred_dir).glob("*_prediction.png"))
    pairs, problems = pair_files(masks, preds, "mask", "prediction")
    if len(masks) < len(all_masks):  # predictions of the masks left out are no problem
        problems = [p for p in problems if "prediction without" not in p]
    if problems:
        raise DataError(problems)
    return [(pair_key(m.stem), m, p) for m, p in pairs]


def score_folder(mask_dir: Path, pred_dir: Path, masks: list[Path] | None = None
                 ) -> SubsetScore:
    """Score one subset: truth masks in ``mask_dir`` (or only ``masks``), prediction PNGs in
    ``pred_dir``."""
    pairs = pair_predictions(mask_dir, pred_dir, masks)
    scores = {key: score_image(read_image(mask), read_image(pred)) for key, mask, pred in pairs}
    s = score_images(scores)
    s.files = {key: (mask, pred) for key, mask, pred in pairs}
    return s


def final_score(subsets: dict[str, SubsetScore]) -> dict:
    """The course's overall figures from the per-subset scores."""
    tp = sum(s.tp for s in subsets.values())
    fp = sum(s.fp for s in subsets.values())
    fn = sum(s.fn for s in subsets.values())
    weight = tp / (tp + fp + fn) if tp + fp + fn else 0.0
    final_iou = float(np.mean([subsets[k].iou_hero for k in IOU_SUBSETS if k in subsets]))
    return {
        "weight": weight,
        "final_iou": final_iou,
        "final_score": final_iou * weight,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "subsets": {
            k: {kk: vv for kk, vv in asdict(v).items() if kk not in ("per_image_hero_iou", "files")}
            for k, v in subsets.items()
        },
    }
