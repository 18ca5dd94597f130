"""Training: overfitting a few images, and resuming after a kill exactly where it stopped."""

import os
import signal

import numpy as np
import pytest
import torch

from followme import training
from followme.checkpoint import load_checkpoint, read_checkpoint
from followme.data.augment import AugmentConfig
from followme.training import TrainConfig, train

NO_AUGMENT = AugmentConfig(flip=0, shift=0, jitter=0, paste=0)


def config(tmp_path, train_dir, **kw) -> TrainConfig:
    base = dict(train=str(train_dir), val=None, model="seed", out=str(tmp_path / "run"),
                epochs=2, batch_size=4, lr=1e-2, image_size=32, threads=1, device="cpu",
                augment=AugmentConfig(paste=0.5))
    return TrainConfig(**{**base, **kw})


def test_overfits_eight_images(tmp_path, tiny_robond):
    cfg = config(tmp_path, tiny_robond, epochs=60, batch_size=8, augment=NO_AUGMENT,
                 far_hero_weight=0, val=str(tiny_robond))
    train(cfg)
    history = read_checkpoint(tmp_path / "run" / "last.pt")["train_state"]["history"]
    assert history[-1]["train_loss"] < 0.35 * history[0]["train_loss"]
    # scored on the same 8 images; the 4 without a hero score 0 by definition, so 0.5 is perfect
    assert history[-1]["val_hero_iou"] > 0.4
    for name in ("best.pt", "last.pt", "log.csv", "loss.png"):
        assert (tmp_path / "run" / name).exists()
    assert load_checkpoint(tmp_path / "run" / "best.pt").name == "seed"


def test_kill_and_resume_repeats_the_uninterrupted_run(tmp_path, tiny_robond, monkeypatch):
    whole = config(tmp_path / "a", tiny_robond, batch_size=2)
    train(whole)
    expected = read_checkpoint(tmp_path / "a" / "run" / "last.pt")

    calls = {"n": 0}
    real_loss = training.loss_fn

    def killed_at_third_batch(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C in the middle of a batch
        return real_loss(*a, **k)

    monkeypatch.setattr(training, "loss_fn", killed_at_third_batch)
    part = config(tmp_path / "b", tiny_robond, batch_size=2)
    train(part)
    saved = read_checkpoint(tmp_path / "b" / "run" / "last.pt")["train_state"]
    assert (saved["epoch"], saved["batch"]) == (0, 3)  # the batch under way was finished
    monkeypatch.setattr(training, "loss_fn", real_loss)
    train(config(tmp_path / "b", tiny_robond, batch_size=2, resume=True))
    resumed = read_checkpoint(tmp_path / "b" / "run" / "last.pt")

    got = [h["train_loss"] for h in resumed["train_state"]["history"]]
    want = [h["train_loss"] for h in expected["train_state"]["history"]]
    assert got == pytest.approx(want, rel=1e-6)
    for k, v in expected["model"].items():
        torch.testing.assert_close(resumed["model"][k], v, rtol=1e-5, atol=1e-6)


def test_minutes_fixes_the_epoch_count_after_the_first(tmp_path, tiny_robond):
    train(config(tmp_path, tiny_robond, epochs=0, minutes=1e-4))
    state = read_checkpoint(tmp_path / "run" / "last.pt")["train_state"]
    assert state["total_epochs"] == 2 and state["epoch"] == 2


def test_lr_warms_up_then_decays():
    lrs = [training.lr_at(s, 100, 10, 1.0) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))
    assert lrs[-1] < 0.05


def test_far_hero_images_are_drawn_more_often():
    weights = training.sampling_weights(np.array([0, 50, 5000, 0]), far_weight=3.0)
    assert weights.tolist() == [1, 4, 1, 1]
    draws = torch.cat([training.epoch_order(weights, seed=0, epoch=e) for e in range(500)])
    share = torch.bincount(draws, minlength=4).double() / len(draws)
    assert len(draws) == 2000 and abs(float(share[1]) - 4 / 7) < 0.03  # the far hero: 4/7
    assert all(abs(float(share[i]) - 1 / 7) < 0.03 for i in (0, 2, 3))
    assert not torch.equal(training.epoch_order(weights, 0, 0), training.epoch_order(weights, 0, 1))


def test_the_course_recipe_is_the_seed_notebooks(tmp_path, tiny_robond, monkeypatch):
    """--recipe course: seed FCN, Adam at 0.01 held constant, batch 150, 50 epochs of 50 steps,
    no augmentation, plain cross-entropy; flags given on the command line win."""
    course = TrainConfig.from_recipe("course")
    assert (course.model, course.lr, course.batch_size, course.epochs, course.steps_per_epoch,
            course.optimizer, course.schedule) == ("seed", 0.01, 150, 50, 50, "adam", "constant")
    assert course.augment == NO_AUGMENT and course.dice_weight == course.far_hero_weight == 0
    assert TrainConfig.from_recipe("course", lr=1e-3).lr == 1e-3
    assert TrainConfig.from_recipe("course").augment is not course.augment  # not shared
    with pytest.raises(ValueError, match="--recipe nope"):
        TrainConfig.from_recipe("nope")

    from followme.cli import main

    seen = []
    real_step = training.train_step
    monkeypatch.setattr(training, "train_step",
                        lambda m, opt, *a, **k: seen.append(opt) or real_step(m, opt, *a, **k))
    out = tmp_path / "course"
    assert main(["train", "--recipe", "course", "--train", str(tiny_robond), "--out", str(out),
                 "--batch-size", "4", "--epochs", "2", "--steps-per-epoch", "5",
                 "--image-size", "32", "--threads", "1", "--device", "cpu"]) == 0
    state = read_checkpoint(out / "last.pt")
    assert state["model_name"] == "seed" and state["train_config"]["optimizer"] == "adam"
    assert len(seen) == 10  # 2 epochs of 5 steps, over 8 images in batches of 4
    assert type(seen[0]) is torch.optim.Adam and seen[0].param_groups[0]["weight_decay"] == 0
    assert [h["lr"] for h in state["train_state"]["history"]] == [0.01, 0.01]


def test_tensorboard_gets_every_figure_and_sample_predictions(tmp_path, tiny_robond):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    board = tmp_path / "board"
    train(config(tmp_path, tiny_robond, epochs=2, val=str(tiny_robond),
                 tensorboard=str(board)))
    events = EventAccumulator(str(board), size_guidance={"images": 0})
    events.Reload()
    tags = events.Tags()
    assert {"train/train_loss", "train/lr", "val/final_score", "val/loss"} <= set(tags["scalars"])
    assert [e.step for e in events.Scalars("train/train_loss")] == [1, 2]
    history = read_checkpoint(tmp_path / "run" / "last.pt")["train_state"]["history"]
    logged = [e.value for e in events.Scalars("val/final_score")]
    assert logged == pytest.approx([h["val_final_score"] for h in history], abs=1e-6)
    [image_tag] = tags["images"]
    shot = events.Images(image_tag)[-1]
    # each sample is truth | prediction side by side at the 32 px size, samples in a row
    assert shot.step == 2 and shot.height == 32 and shot.width % 64 == 0 and shot.width >= 64
