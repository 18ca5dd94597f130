"""Nothing lost, nothing silently wrong: train, evaluate and the data loader under misuse."""

import errno
import json
import os
import signal
import struct
import zlib

import numpy as np
import pytest

from followme import training
from followme.checkpoint import read_checkpoint
from followme.cli import main
from followme.data import cache
from followme.data.cache import load_arrays
from followme.data.robond import find_pairs

TRAIN = ["--model", "seed", "--image-size", "32", "--batch-size", "4", "--threads", "1",
         "--device", "cpu", "--lr", "1e-4"]


def train_args(data, out, *extra) -> list[str]:
    return ["train", "--train", str(data), "--out", str(out), *TRAIN, *extra]


def ctrl_c_at_batch(monkeypatch, batch: int, times: int = 1):
    """Press Ctrl-C ``times`` times while batch ``batch`` (1-based) computes its loss. Returns
    the real loss function."""
    calls = {"n": 0}
    real = training.loss_fn

    def loss(*a, **k):
        calls["n"] += 1
        if calls["n"] == batch:
            for _ in range(times):
                os.kill(os.getpid(), signal.SIGINT)
        return real(*a, **k)

    monkeypatch.setattr(training, "loss_fn", loss)
    return real


# ---------------------------------------------------------------------------------- train
def test_train_refuses_an_out_that_holds_a_run(tmp_path, tiny_robond, capsys):
    run = tmp_path / "run"
    assert main(train_args(tiny_robond, run, "--epochs", "1")) == 0
    before = {f: (run / f).read_bytes() for f in ("last.pt", "best.pt", "log.csv")}
    assert main(train_args(tiny_robond, run, "--epochs", "1")) == 2
    assert "holds a training run" in capsys.readouterr().err
    assert before == {f: (run / f).read_bytes() for f in before}


def test_resume_cannot_silently_do_nothing_on_a_finished_run(tmp_path, tiny_robond, capsys):
    run = tmp_path / "run"
    assert main(train_args(tiny_robond, run, "--epochs", "1")) == 0
    assert main(train_args(tiny_robond, run, "--epochs", "3", "--resume")) == 2
    err = capsys.readouterr().err
    assert "planned for 1 epochs" in err and "--init" in err


def test_resume_with_another_model_is_refused(tmp_path, tiny_robond, capsys):
    run = tmp_path / "run"
    assert main(train_args(tiny_robond, run, "--epochs", "1")) == 0
    args = train_args(tiny_robond, run, "--resume")
    args[args.index("seed")] = "fcn_res"
    assert main(args) == 2
    assert "that run has --model seed, not fcn_res" in capsys.readouterr().err


@pytest.mark.parametrize("flag,value", [("--batch-size", "-4"), ("--batch-size", "0"),
                                        ("--image-size", "7"), ("--val-every", "0"),
                                        ("--epochs", "0"), ("--lr", "-1")])
def test_impossible_settings_are_refused_by_flag(tmp_path, tiny_robond, capsys, flag, value):
    args = train_args(tiny_robond, tmp_path / "run", "--epochs", "1")
    if flag in args:
        args[args.index(flag) + 1] = value
    else:
        args += [flag, value]
    assert main(args) == 2
    assert f"{flag} {value}" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_best_is_written_without_validation_while_the_loss_is_high(tmp_path, tiny_robond):
    run = tmp_path / "run"
    assert main(train_args(tiny_robond, run, "--epochs", "1")) == 0
    history = json.loads((run / "history.json").read_text())
    assert history[0]["train_loss"] >= 1.0  # the case that never wrote best.pt
    assert (run / "best.pt").exists()


def test_ctrl_c_exits_non_zero_and_a_double_one_saves_nothing_half_done(
        tmp_path, tiny_robond, monkeypatch):
    ctrl_c_at_batch(monkeypatch, 2)
    assert main(train_args(tiny_robond, tmp_path / "a", "--epochs", "1")) == 130
    assert read_checkpoint(tmp_path / "a" / "last.pt")["train_state"]["batch"] == 2

    ctrl_c_at_batch(monkeypatch, 2, times=2)
    assert main(train_args(tiny_robond, tmp_path / "b", "--epochs", "1")) == 130
    assert not (tmp_path / "b" / "last.pt").exists()  # aborted mid-batch: nothing written


def test_minutes_after_a_resume_in_epoch_one_keeps_the_planned_length(
        tmp_path, tiny_robond, monkeypatch):
    """The epoch count comes from the time per batch, not from the resumed part of epoch 1."""
    clock = {"t": 0.0}
    real_step = training.train_step

    def step(*a, **k):
        clock["t"] += 1.0  # every batch takes one second
        return real_step(*a, **k)

    monkeypatch.setattr(training.time, "perf_counter", lambda: clock["t"])
    monkeypatch.setattr(training, "train_step", step)
    # 8 images in batches of 2: 4 s an epoch; 12 s -> 3 epochs
    args = train_args(tiny_robond, tmp_path / "run", "--minutes", "0.2")
    args[args.index("--batch-size") + 1] = "2"
    real_loss = ctrl_c_at_batch(monkeypatch, 3)
    assert main(args) == 130
    monkeypatch.setattr(training, "loss_fn", real_loss)
    assert main(args + ["--resume"]) == 0
    state = read_checkpoint(tmp_path / "run" / "last.pt")["train_state"]
    assert state["total_epochs"] == 3


# ---------------------------------------------------------------------------------- evaluate
def test_evaluate_never_scores_stale_predictions(tmp_path, tiny_grading, seed_checkpoint,
                                                 capsys):
    out = tmp_path / "eval"
    assert main(["evaluate", "--model", str(seed_checkpoint), "--grade-dir", str(tiny_grading),
                 "--out", str(out)]) == 0
    image = sorted((tiny_grading / "following_images" / "images").glob("*.jpeg"))[0]
    image.write_bytes(b"not a jpeg")
    assert main(["evaluate", "--model", str(seed_checkpoint), "--grade-dir", str(tiny_grading),
                 "--out", str(out)]) == 2
    assert f"{image}: unreadable image" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(seed_checkpoint), "--grade-dir", str(tiny_grading),
                 "--out", str(out), "--skip-bad"]) == 0
    score = json.loads((out / "score.json").read_text())
    assert score["subsets"]["following_images"]["n"] == 3  # the stale PNG was not scored
    assert not (out / "following_images" / f"{image.stem}_prediction.png").exists()


def test_an_empty_grading_folder_is_refused(tmp_path, tiny_grading, seed_checkpoint, capsys):
    for f in tiny_grading.rglob("*.*"):
        f.unlink()
    assert main(["evaluate", "--model", str(seed_checkpoint), "--grade-dir", str(tiny_grading),
                 "--out", str(tmp_path / "e")]) == 2
    assert "no image/mask pairs to score" in capsys.readouterr().err
    assert not (tmp_path / "e" / "score.json").exists()


# ---------------------------------------------------------------------------------- data
def png_header_only(path, width: int, height: int) -> None:
    """A few hundred bytes of PNG that declare ``width`` x ``height`` RGB pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def test_a_decompression_bomb_is_refused_and_skippable(tmp_path, tiny_robond, capsys,
                                                       seed_checkpoint):
    bomb = sorted((tiny_robond / "images").glob("*.jpeg"))[0]
    bomb.unlink()
    bomb = bomb.with_suffix(".png")
    png_header_only(bomb, 20000, 20000)
    assert main(["data", "check", str(tiny_robond)]) == 2
    assert f"{bomb}: " in capsys.readouterr().err
    assert main(["data", "check", "--skip-bad", str(tiny_robond)]) == 0
    assert main(train_args(tiny_robond, tmp_path / "run", "--epochs", "1", "--skip-bad")) == 0
    assert main(["predict", "--model", str(seed_checkpoint), "--images", str(tiny_robond),
                 "--out", str(tmp_path / "p")]) == 0
    assert len(list((tmp_path / "p").glob("*.png"))) == 7


def test_a_broken_link_is_named_and_skippable(tmp_path, tiny_robond, capsys):
    (tiny_robond / "images" / "9_run1cam1_00099.jpeg").symlink_to(tmp_path / "gone.jpeg")
    _, problems = find_pairs(tiny_robond)
    assert any("9_run1cam1_00099.jpeg: not a readable file" in p for p in problems)
    assert main(["data", "check", "--skip-bad", str(tiny_robond)]) == 0
    assert "8 valid image/mask pairs" in capsys.readouterr().out


def test_a_damaged_cache_is_rebuilt(tiny_robond, caplog, monkeypatch, tmp_path):
    monkeypatch.setenv("FOLLOWME_CACHE", str(tmp_path / "own_cache"))
    first = load_arrays(tiny_robond, 32)
    images = np.array(first.images)
    stem = next(cache.default_cache_dir().glob("robond-*.images.npy"))
    stem.write_bytes(stem.read_bytes()[:200])  # truncated
    again = load_arrays(tiny_robond, 32)
    assert "is damaged" in caplog.text and str(stem).split(".images")[0] in caplog.text
    np.testing.assert_array_equal(np.array(again.images), images)


def test_a_full_disk_names_the_cache_and_leaves_no_temp_file(tiny_robond, monkeypatch, capsys,
                                                              tmp_path):
    monkeypatch.setenv("FOLLOWME_CACHE", str(tmp_path / "own_cache"))
    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache.np, "save", full)
    assert main(["data", "check", str(tiny_robond)]) == 2
    err = capsys.readouterr().err
    assert "could not write the data cache" in err and "no space left on device" in err
    assert not list(cache.default_cache_dir().glob("*.tmp*"))
