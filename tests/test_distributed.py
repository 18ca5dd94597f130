"""Data-parallel training: two CPU processes under torchrun compute the gradients and BatchNorm
statistics of one process on the same global batch, and a distributed run resumes where it
stopped."""

import shutil
import subprocess
import sys

import pytest
import torch

from followme.checkpoint import read_checkpoint

pytestmark = pytest.mark.slow  # torchrun: two processes and a resume


def followme_train(out, data, *extra, processes: int = 1) -> dict:
    launcher = [sys.executable, "-m", "followme"]
    if processes > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                    f"--nproc-per-node={processes}", "-m", "followme"]
    cmd = launcher + ["train", "--train", str(data), "--model", "seed", "--epochs", "2",
                      "--batch-size", "4", "--image-size", "32", "--lr", "1e-2", "--threads",
                      "1", "--device", "cpu", "--no-bf16", "--out", str(out), *extra]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return read_checkpoint(out / "last.pt")


def test_two_processes_train_as_one_and_resume(tmp_path, tiny_robond):
    runs = {}
    for name, processes in (("one", 1), ("two", 2)):
        out = tmp_path / name
        first = followme_train(out, tiny_robond, "--max-batches", "1", processes=processes)
        shutil.copy(out / "last.pt", tmp_path / f"{name}_first_step.pt")
        assert (first["train_state"]["epoch"], first["train_state"]["batch"]) == (0, 1)
        runs[name] = (first, followme_train(out, tiny_robond, "--resume", processes=processes))
    (one_first, one), (two_first, two) = runs["one"], runs["two"]

    # The first step: the same averaged gradients (AdamW's first moment is 0.1 x gradient) and
    # the same BatchNorm running statistics. (The weights themselves are compared no further:
    # Adam's first step moves every weight by about lr whatever the size of its gradient, so
    # the sign of a gradient that is zero up to rounding decides it.)
    for k, state in one_first["optimizer"]["state"].items():
        got, want = two_first["optimizer"]["state"][k]["exp_avg"], state["exp_avg"]
        torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-4 * float(want.abs().max()))
    for k, v in one_first["model"].items():
        if "running" in k:
            torch.testing.assert_close(two_first["model"][k], v, rtol=1e-5, atol=1e-6)

    # The whole run, resumed after that first step, follows the single process.
    assert two["train_state"]["epoch"] == 2
    losses = [[h["train_loss"] for h in c["train_state"]["history"]] for c in (one, two)]
    assert len(losses[1]) == 2
    assert losses[1] == pytest.approx(losses[0], rel=1e-3)
