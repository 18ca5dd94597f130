"""Fine-tuning from a checkpoint, and ``followme demo`` end to end at a tiny size."""

import argparse
import json

import pytest

from followme.checkpoint import SHIPPED_MODEL, load_checkpoint, read_checkpoint
from followme.cli import main
from followme.training import TrainConfig, train

pytestmark = pytest.mark.slow  # fine-tuning and the demo end to end


def test_init_starts_from_the_checkpoint(tiny_robond, tmp_path):
    cfg = TrainConfig(train=str(tiny_robond), val=None, model="fcn_res", out=str(tmp_path / "ft"),
                      batch_size=4, lr=1e-6, epochs=1, max_batches=1, threads=1, bf16=False,
                      init=str(SHIPPED_MODEL))
    shipped = load_checkpoint().model.state_dict()
    train(cfg)
    tuned = read_checkpoint(tmp_path / "ft" / "last.pt")
    assert tuned["train_state"]["batch"] == 1
    weights = [k for k, v in shipped.items() if v.is_floating_point() and "running" not in k]
    diff = max(float((tuned["model"][k] - shipped[k]).abs().max()) for k in weights)
    assert 0 < diff < 1e-3
    with pytest.raises(ValueError, match="fcn_res at 160"):
        train(TrainConfig(train=str(tiny_robond), val=None, model="seed", init=str(SHIPPED_MODEL),
                          out=str(tmp_path / "other"), threads=1))


def test_train_init_on_the_command_line(tiny_robond, tmp_path):
    out = tmp_path / "cli"
    assert main(["train", "--train", str(tiny_robond), "--out", str(out), "--batch-size", "4",
                 "--epochs", "1", "--max-batches", "1", "--threads", "1", "--no-bf16",
                 "--lr", "1e-6", "--init", str(SHIPPED_MODEL)]) == 0
    tuned = read_checkpoint(out / "last.pt")
    assert tuned["train_config"]["init"] == str(SHIPPED_MODEL)
    assert tuned["train_state"]["batch"] == 1


def test_demo_end_to_end_tiny(tmp_path, capsys):
    pytest.importorskip("pybullet")
    pytest.importorskip("imageio")
    from followme.demo import add_arguments
    from followme.demo import run as run_demo

    p = argparse.ArgumentParser()
    add_arguments(p)
    a = p.parse_args(["--out", str(tmp_path), "--train-frames", "33", "--grade-frames", "8",
                      "--train-minutes", "0.01", "--loop-minutes", "0.05", "--people", "4",
                      "--video", "follow.gif"])
    assert run_demo(a) == 0
    printed = capsys.readouterr().out
    (run,) = tmp_path.iterdir()
    result = json.loads((run / "demo.json").read_text())
    assert set(result["loops"]) == {"network", "oracle"} and len(result["scores"]) == 2
    assert result["loops"]["oracle"]["frames"] == 15  # 3 s at QuadSim's 5 frames a second
    assert (run / "follow" / "follow.gif").is_file() and (run / "train" / "loss.png").is_file()
    assert "course score on the held-out sim split" in printed and "| hero in view |" in printed
