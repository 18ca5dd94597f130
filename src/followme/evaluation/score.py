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
from followme.data.robond import pair_key, read_image

SUBSETS = ("following_images", "patrol_with_targ", "patrol_non_targ")
IOU_SUBSETS = ("following_images", "patrol_with_targ")
PRESENT_PIXELS = 3


def image_iou(truth: np.ndarray, pred: np.ndarray) -> float:
    """IoU of two 0/1 masks; 0 where the union is empty."""
    union = np.count_nonzero(truth | pred)
    return float(np.count_nonzero(truth & pred)) / union if union else 0.0


@dataclass
class ImageScore:
    iou: tuple[float, float, float]
    hero_true: bool
    hero_pred: bool


def score_image(truth_mask: np.ndarray, prediction: np.ndarray) -> ImageScore:
    """truth_mask: one-hot RGB (H, W, 3) uint8 0/255;
    prediction: (h, w, 3) uint8 probabilities x 255."""
    pred = prediction > 127
    truth = resize_truth(truth_mask.clip(0, 1).astype(np.uint8), *pred.shape[:2]) > 0
    return score_resized(truth, pred)


def score_resized(truth: np.ndarray, pred: np.ndarray) -> ImageScore:
    """truth, pred: (h, w, 3) bool masks of the same size."""
    return ImageScore(
        tuple(image_iou(truth[..., c], pred[..., c]) for c in range(3)),
        hero_true=int(truth[..., 2].sum()) > PRESENT_PIXELS,
        hero_pred=int(pred[..., 2].sum()) > PRESENT_PIXELS,
    )


@dataclass
class SubsetScore:
    n: int = 0
    iou_background: float = 0.0
    iou_people: float = 0.0
    iou_hero: float = 0.0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    per_image_hero_iou: dict[str, float] = field(default_factory=dict, repr=False)


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
    s.per_image_hero_iou = {k: v.iou[2] for k, v in scores.items()}
    return s


def pair_predictions(mask_dir: Path, pred_dir: Path) -> list[tuple[str, Path, Path]]:
    """(key, mask, prediction) by name; ``<image stem>_prediction.png`` pairs with its mask."""
    masks = {pair_key(p.stem): p for p in sorted(Path(mask_dir).glob("*.png"))}
    preds = {pair_key(p.stem): p for p in sorted(Path(pred_dir).glob("*.png"))}
    missing = sorted(masks.keys() - preds.keys())
    if missing:
        raise FileNotFoundError(
            f"{pred_dir}: no prediction for {len(missing)} mask(s), e.g. {masks[missing[0]].name}"
        )
    return [(k, masks[k], preds[k]) for k in sorted(masks)]


def score_folder(mask_dir: Path, pred_dir: Path) -> SubsetScore:
    """Score one subset: truth masks in ``mask_dir``, prediction PNGs in ``pred_dir``."""
    scores = {
        key: score_image(read_image(mask), read_image(pred))
        for key, mask, pred in pair_predictions(mask_dir, pred_dir)
    }
    return score_images(scores)


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
            k: {kk: vv for kk, vv in asdict(v).items() if kk != "per_image_hero_iou"}
            for k, v in subsets.items()
        },
    }
