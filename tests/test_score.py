"""The course score on hand-computed cases."""

import numpy as np
import pytest
from PIL import Image

from followme.data.resize import resize_truth
from followme.data.robond import DataError
from followme.evaluation.score import (
    SubsetScore,
    final_score,
    image_iou,
    score_folder,
    score_image,
    score_images,
)


def onehot(labels: np.ndarray) -> np.ndarray:
    return (np.eye(3, dtype=np.uint8)[labels] * 255).astype(np.uint8)


def prediction(labels: np.ndarray, p: float = 0.9) -> np.ndarray:
    """A prediction PNG array: probability p on the labelled class, the rest spread evenly."""
    out = np.full(labels.shape + (3,), (1 - p) / 2)
    out[np.eye(3, dtype=bool)[labels]] = p
    return (out * 255).astype(np.uint8)


def test_iou_is_zero_for_an_empty_union():
    empty = np.zeros((4, 4), bool)
    assert image_iou(empty, empty) == 0.0


def test_iou_counts_intersection_over_union():
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    a[0, :3] = True  # 3 pixels
    b[0, 1:4] = True  # 3 pixels, 2 shared -> union 4
    assert image_iou(a, b) == pytest.approx(2 / 4)


def test_three_hero_pixels_are_absent_four_present():
    labels = np.zeros((16, 16), np.uint8)
    labels[0, :3] = 2
    s = score_image(onehot(labels), prediction(labels))
    assert not s.hero_true and not s.hero_pred
    labels[0, 3] = 2
    s = score_image(onehot(labels), prediction(labels))
    assert s.hero_true and s.hero_pred
    assert s.iou[2] == 1.0


def test_a_pixel_counts_as_predicted_above_127_only():
    labels = np.zeros((8, 8), np.uint8)
    labels[:2, :2] = 2
    pred = np.zeros((8, 8, 3), np.uint8)
    pred[..., 0] = 255
    pred[:2, :2, 2] = 127  # not on
    s = score_image(onehot(labels), pred)
    assert s.iou[2] == 0.0 and not s.hero_pred
    pred[:2, :2, 2] = 128  # on
    assert score_image(onehot(labels), pred).iou[2] == 1.0


def test_truth_is_clipped_before_it_is_resized():
    # A 2x3 hero at 256 px covers ~0.8x1.2 px at 160: after clip-then-resize the hero mostly
    # vanishes, while resize-then-clip keeps every partly covered pixel.
    labels = np.zeros((256, 256), np.uint8)
    labels[101:103, 101:104] = 2
    mask = onehot(labels)
    clip_then_resize = resize_truth(mask.clip(0, 1), 160, 160)
    resized = Image.fromarray(mask).resize((160, 160), Image.BILINEAR)
    resize_then_clip = np.asarray(resized).clip(0, 1)
    assert clip_then_resize[..., 2].sum() == 2  # absent: not more than 3
    assert resize_then_clip[..., 2].sum() == 11  # present
    empty_pred = prediction(np.zeros((160, 160), np.uint8))
    s = score_image(mask, empty_pred)
    assert s.hero_true == (clip_then_resize[..., 2].sum() > 3)
    assert not s.hero_true


def test_resize_path_scores_a_perfect_prediction_at_the_smaller_size():
    labels = np.zeros((256, 256), np.uint8)
    labels[64:192, 96:160] = 2
    labels[10:40, 10:30] = 1
    truth160 = resize_truth(onehot(labels).clip(0, 1), 160, 160)
    pred = (truth160 * 255).astype(np.uint8)
    s = score_image(onehot(labels), pred)
    assert s.iou == (1.0, 1.0, 1.0)


def test_tp_fp_fn_counting_and_final_score():
    hero = np.zeros((16, 16), np.uint8)
    hero[4:8, 4:8] = 2  # 16 px
    none = np.zeros((16, 16), np.uint8)
    half = hero.copy()
    half[4:6, 4:8] = 0  # predicted 8 of 16 -> IoU 0.5
    cases = {
        "tp": score_image(onehot(hero), prediction(half)),
        "fn": score_image(onehot(hero), prediction(none)),
        "fp": score_image(onehot(none), prediction(hero)),
        "tn": score_image(onehot(none), prediction(none)),
    }
    s = score_images(cases)
    assert (s.tp, s.fp, s.fn) == (1, 1, 1)
    assert s.iou_hero == pytest.approx((0.5 + 0 + 0 + 0) / 4)
    subsets = {
        "following_images": SubsetScore(n=2, iou_hero=0.8, tp=2),
        "patrol_with_targ": SubsetScore(n=2, iou_hero=0.4, tp=1, fn=1),
        "patrol_non_targ": SubsetScore(n=2, iou_hero=0.0, fp=1),
    }
    f = final_score(subsets)
    assert f["weight"] == pytest.approx(3 / 5)
    assert f["final_iou"] == pytest.approx(0.6)
    assert f["final_score"] == pytest.approx(0.36)


def test_score_folder_pairs_predictions_by_name(tmp_path):
    masks, preds = tmp_path / "masks", tmp_path / "preds"
    masks.mkdir()
    preds.mkdir()
    hero = np.zeros((16, 16), np.uint8)
    hero[2:10, 2:6] = 2
    none = np.zeros((16, 16), np.uint8)
    # names sort differently as masks and predictions; pairing must go by name
    Image.fromarray(onehot(hero)).save(masks / "1_run1_mask_00002.png")
    Image.fromarray(onehot(none)).save(masks / "1_run1_mask_00010.png")
    Image.fromarray(prediction(hero)).save(preds / "1_run1cam1_00002_prediction.png")
    Image.fromarray(prediction(none)).save(preds / "1_run1cam1_00010_prediction.png")
    s = score_folder(masks, preds)
    assert (s.n, s.tp, s.fp, s.fn) == (2, 1, 0, 0)
    assert s.iou_hero == pytest.approx(0.5)
    (preds / "1_run1cam1_00010_prediction.png").unlink()
    with pytest.raises(DataError, match="1_run1_mask_00010.png: mask without a prediction"):
        score_folder(masks, preds)
