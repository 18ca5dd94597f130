"""``followme <verb>`` end to end on tiny generated data."""

import json
import subprocess
import sys

import numpy as np
from PIL import Image

from followme.checkpoint import read_checkpoint
from followme.cli import main


def test_data_check_prints_stats_and_fails_on_bad_data(tiny_robond, capsys):
    assert main(["data", "check", str(tiny_robond)]) == 0
    out = capsys.readouterr().out
    assert "8 valid image/mask pairs" in out and "hero present (> 3 px): 50.0%" in out
    (tiny_robond / "images" / "0_run1cam1_00001.jpeg").write_bytes(b"garbage")
    assert main(["data", "check", str(tiny_robond)]) == 2
    assert "0_run1cam1_00001.jpeg: unreadable image" in capsys.readouterr().err
    assert main(["data", "check", "--skip-bad", str(tiny_robond)]) == 0
    assert "7 valid image/mask pairs" in capsys.readouterr().out


def test_train_predict_evaluate(tmp_path, tiny_robond, tiny_grading, capsys):
    from conftest import write_robond

    run = tmp_path / "run"
    sim = write_robond(tmp_path / "sim", 4, seed=5)
    assert main(["train", "--train", str(tiny_robond), str(sim), "--val", str(tiny_grading),
                 "--model", "fcn_res", "--epochs", "2", "--batch-size", "4",
                 "--image-size", "32", "--out", str(run), "--threads", "1",
                 "--device", "cpu"]) == 0
    log = (run / "log.csv").read_text().splitlines()
    assert len(log) == 3 and "val_final_score" in log[0]
    assert read_checkpoint(run / "last.pt")["train_config"]["train"] == [str(tiny_robond),
                                                                          str(sim)]

    pred = tmp_path / "pred"
    assert main(["predict", "--model", str(run / "best.pt"), "--images", str(tiny_robond),
                 "--out", str(pred), "--overlay"]) == 0
    written = sorted(pred.glob("*_prediction.png"))
    assert len(written) == 8 and len(list(pred.glob("*_overlay.png"))) == 8
    p = np.asarray(Image.open(written[0]))
    assert p.shape == (32, 32, 3)
    assert abs(int(p.astype(int).sum(2).mean()) - 255) <= 3  # softmax x 255 sums to ~255

    out = tmp_path / "eval"
    assert main(["evaluate", "--model", str(run / "best.pt"), "--grade-dir", str(tiny_grading),
                 "--out", str(out)]) == 0
    score = json.loads((out / "score.json").read_text())
    assert {"weight", "final_iou", "final_score"} <= score.keys()
    assert score["subsets"]["following_images"]["n"] == 4
    for sub in ("following_images", "patrol_with_targ", "patrol_non_targ"):
        assert (out / f"{sub}_samples.png").exists()
        assert len(list((out / sub).glob("*_prediction.png"))) == 4
    assert "final_score" in (out / "score.md").read_text()

    again = tmp_path / "again"
    assert main(["evaluate", "--pred-dir", str(out), "--grade-dir", str(tiny_grading),
                 "--out", str(again)]) == 0
    rescored = json.loads((again / "score.json").read_text())
    assert rescored["final_score"] == score["final_score"]
    assert rescored["subsets"] == score["subsets"]


def test_errors_are_one_clear_line(tmp_path, capsys):
    assert main(["evaluate", "--model", str(tmp_path / "nope.pt"),
                 "--grade-dir", str(tmp_path)]) == 2
    assert "no grading folder" in capsys.readouterr().err
    assert main(["predict", "--model", str(tmp_path / "nope.pt"), "--images", str(tmp_path),
                 "--out", str(tmp_path / "o")]) == 2
    assert "nope.pt: no such checkpoint" in capsys.readouterr().err


def test_console_entry_point_runs():
    r = subprocess.run([sys.executable, "-m", "followme", "model", "summary", "seed"],
                       capture_output=True, text=True, check=True)
    assert "decoder3 layer shape is : (?, 160, 160, 32)" in r.stdout
