"""The course's evaluation set as it ships: images ``0_run1cam1_00005.jpeg``, masks
``0__mask_00005.png``, and the course's prediction folders ``<subset>_<run_name>/``."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import draw_scene
from followme.cli import main
from followme.data.cache import load_arrays
from followme.data.robond import DataError, find_pairs, labels_to_mask, pair_files
from followme.evaluation.grading import load_grading_set

SUBSETS = ("following_images", "patrol_with_targ", "patrol_non_targ")
# (fold, run, frame): sorted image names put run1_00002 before run2_00001, sorted mask names put
# 00001 first: pairing by sorted order would pair the wrong frames.
FILES = [(0, 2, 1), (0, 1, 2), (1, 1, 3), (1, 3, 4)]


def write_course_subset(root: Path, hero: bool, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir(parents=True)
    for fold, run, frame in FILES:
        image, labels = draw_scene(rng, 64, hero=hero)
        Image.fromarray(image).save(root / "images" / f"{fold}_run{run}cam1_{frame:05d}.jpeg")
        Image.fromarray(labels_to_mask(labels)).save(
            root / "masks" / f"{fold}__mask_{frame:05d}.png")
    return root


@pytest.fixture
def course_eval(tmp_path) -> Path:
    root = tmp_path / "sample_evaluation_data"
    for k, subset in enumerate(SUBSETS):
        write_course_subset(root / subset, hero=k < 2, seed=k)
    return root


def perfect_predictions(grade: Path, out: Path, run_name: str) -> None:
    """The course's layout: runs/<subset>_<run_name>/<image stem>_prediction.png, each the truth
    of its own frame."""
    for subset in SUBSETS:
        folder = out / f"{subset}_{run_name}"
        folder.mkdir(parents=True)
        for fold, run, frame in FILES:
            mask = Image.open(grade / subset / "masks" / f"{fold}__mask_{frame:05d}.png")
            mask.save(folder / f"{fold}_run{run}cam1_{frame:05d}_prediction.png")


def test_images_pair_with_masks_on_fold_and_frame(course_eval):
    pairs, problems = find_pairs(course_eval / "following_images")
    assert problems == []
    got = {(p.image.name, p.mask.name) for p in pairs}
    assert got == {(f"{f}_run{r}cam1_{n:05d}.jpeg", f"{f}__mask_{n:05d}.png") for f, r, n in FILES}


def test_evaluate_scores_the_course_layout_with_every_frame_on_its_own_mask(
        course_eval, tmp_path, capsys):
    runs = tmp_path / "runs"
    perfect_predictions(course_eval, runs, "run_1")
    out = tmp_path / "eval"
    assert main(["evaluate", "--grade-dir", str(course_eval), "--pred-dir", str(runs),
                 "--out", str(out)]) == 0
    score = json.loads((out / "score.json").read_text())
    assert score["subsets"]["following_images"]["n"] == 4
    # each prediction is its own frame's truth: a wrong pairing would not score 1
    assert score["final_iou"] == pytest.approx(1.0)
    assert (score["tp"], score["fp"], score["fn"]) == (8, 0, 0)
    assert (out / "following_images_samples.png").exists()


def test_evaluate_pictures_the_heroes_it_missed_and_the_false_ones(course_eval, tmp_path,
                                                                    capsys):
    runs = tmp_path / "runs"
    perfect_predictions(course_eval, runs, "run_1")

    def repaint(subset: str, fold: int, run: int, frame: int, hero: bool) -> None:
        pred = runs / f"{subset}_run_1" / f"{fold}_run{run}cam1_{frame:05d}_prediction.png"
        onehot = np.zeros_like(np.asarray(Image.open(pred)))
        onehot[..., 0] = 255
        if hero:
            onehot[20:40, 30:40] = (0, 0, 255)
        Image.fromarray(onehot).save(pred)

    for fold, run, frame in FILES[:2]:   # two heroes erased
        repaint("following_images", fold, run, frame, hero=False)
    repaint("patrol_non_targ", *FILES[0], hero=True)   # one where there is none
    out = tmp_path / "eval"
    assert main(["evaluate", "--grade-dir", str(course_eval), "--pred-dir", str(runs),
                 "--out", str(out)]) == 0
    score = json.loads((out / "score.json").read_text())
    assert (score["fn"], score["fp"]) == (2, 1)
    for name, crops in (("following_images_missed", 2), ("patrol_non_targ_false", 1)):
        with Image.open(out / f"{name}.png") as sheet:
            assert sheet.size == (crops * 2 * 96, 96)   # each crop beside its marked copy
            marked = np.asarray(sheet.convert("RGB"))[:, 96:192]
            assert ((marked == (255, 0, 255)).all(axis=2)).any()   # the hero's pixels
    # the false hero's 200 predicted pixels, found where they were painted
    with Image.open(out / "patrol_non_targ_false.png") as sheet:
        marked = (np.asarray(sheet.convert("RGB"))[:, 96:192] == (255, 0, 255)).all(axis=2)
        assert marked.sum() == 200 * 2 * 2
    for name in ("patrol_with_targ_missed", "following_images_false"):
        assert not (out / f"{name}.png").exists()   # none there


def test_evaluate_with_a_model_and_data_check_on_the_course_layout(course_eval, tmp_path,
                                                                   seed_checkpoint, capsys):
    out = tmp_path / "eval"
    assert main(["evaluate", "--model", str(seed_checkpoint), "--grade-dir", str(course_eval),
                 "--out", str(out)]) == 0
    assert len(list((out / "patrol_with_targ").glob("*_prediction.png"))) == 4
    assert main(["data", "check", str(course_eval / "following_images")]) == 0
    assert "4 valid image/mask pairs" in capsys.readouterr().out
    grading = load_grading_set(course_eval, 32)  # what train --val reads
    assert [len(a) for a in grading.arrays] == [4, 4, 4]


def test_several_runs_need_a_run_name(course_eval, tmp_path, capsys):
    runs = tmp_path / "runs"
    perfect_predictions(course_eval, runs, "run_1")
    perfect_predictions(course_eval, runs, "run_2")
    assert main(["evaluate", "--grade-dir", str(course_eval), "--pred-dir", str(runs),
                 "--out", str(tmp_path / "e")]) == 2
    assert "--run-name" in capsys.readouterr().err
    assert main(["evaluate", "--grade-dir", str(course_eval), "--pred-dir", str(runs),
                 "--run-name", "run_2", "--out", str(tmp_path / "e")]) == 0


def test_a_frame_that_pairs_with_nothing_is_refused_by_name(course_eval, tmp_path, capsys):
    masks = course_eval / "following_images" / "masks"
    (masks / "1__mask_00004.png").rename(masks / "1__mask_00009.png")
    assert main(["evaluate", "--grade-dir", str(course_eval), "--out", str(tmp_path / "e"),
                 "--model", "x.pt"]) == 2
    err = capsys.readouterr().err
    assert "1_run3cam1_00004.jpeg: image without a mask" in err
    assert "1__mask_00009.png: mask without an image" in err


def test_sorted_order_only_where_fold_and_frame_agree_and_counts_match(tmp_path):
    img = [Path(f"0_run{r}cam1_00007.jpeg") for r in (1, 2)]
    two_masks = [Path("0__mask_00007.png"), Path("0_x_mask_00007.png")]
    pairs, problems = pair_files(img, two_masks)
    assert problems == [] and len(pairs) == 2  # two frames 7 in fold 0, two masks: in order
    pairs, problems = pair_files(img, two_masks[:1])
    assert pairs == [] and len(problems) == 3  # two frames 7, one mask: ambiguous, refused


def test_exact_names_still_pair_first():
    pairs, problems = pair_files([Path("10_run4cam1_00000.jpeg")],
                                 [Path("10_run4_mask_00000.png")])
    assert problems == [] and len(pairs) == 1


def test_two_images_with_one_name_are_refused(tmp_path, tiny_robond, seed_checkpoint, capsys):
    images = tiny_robond / "images"
    first = sorted(images.glob("*.jpeg"))[0]
    Image.open(first).save(first.with_suffix(".png"))
    pairs, problems = find_pairs(tiny_robond)
    assert len(pairs) == 7 and "2 files with one name" in problems[0]
    with pytest.raises(DataError, match="2 files with one name"):
        load_arrays(tiny_robond, 32)
    assert main(["predict", "--model", str(seed_checkpoint), "--images", str(tiny_robond),
                 "--out", str(tmp_path / "p")]) == 2
    assert f"would write one {first.stem}_prediction.png" in capsys.readouterr().err
    assert not list((tmp_path / "p").glob("*.png"))
