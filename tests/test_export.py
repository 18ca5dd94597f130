"""followme export --onnx: the ONNX Runtime model gives the PyTorch model's probabilities."""

import numpy as np
import pytest
import torch

from followme.checkpoint import NORMALIZATION, save_checkpoint
from followme.cli import main
from followme.models import create_model, model_config
from followme.segment.onnx import OnnxRuntime
from followme.segment.segmenter import load_segmenter


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    model = create_model("seed").eval()
    for m in model.modules():  # non-trivial BatchNorm statistics, so folding them is checked
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    path = tmp_path / "m.pt"
    save_checkpoint(path, {"arch": "fcn", "model_name": "seed",
                           "model_config": model_config("seed").to_dict(),
                           "image_size": 64, "normalization": NORMALIZATION,
                           "model": model.state_dict()})
    return path


def test_onnx_export_agrees_with_pytorch(tmp_path, checkpoint, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", "--onnx", str(checkpoint), str(out)]) == 0
    assert "agrees with PyTorch" in capsys.readouterr().out
    onnx, torch_seg = load_segmenter(out), load_segmenter(checkpoint, runtime="torch")
    assert isinstance(onnx.runtime, OnnxRuntime) and onnx.size == 64
    frames = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    for frame in frames:
        got, want = onnx.probabilities(frame), torch_seg.probabilities(frame)
        assert got.shape == (64, 64, 3)
        np.testing.assert_allclose(got, want, atol=1e-4)
        hero = onnx.hero_probability(frame)
        np.testing.assert_allclose(hero, want[..., 2], atol=1e-4)
        np.testing.assert_allclose(torch_seg.hero_probability(frame), want[..., 2], atol=1e-5)
    assert onnx.runtime.probabilities(frames).shape == (3, 64, 64, 3)  # batches too
    assert onnx.runtime.hero(frames).shape == (3, 64, 64)


def test_an_export_without_the_hero_output_still_runs(tmp_path, checkpoint):
    """Exports made before the hero output: the follower takes it from the probabilities."""
    import onnx

    out = tmp_path / "m.onnx"
    assert main(["export", "--onnx", str(checkpoint), str(out)]) == 0
    graph = onnx.load(str(out))
    hero = next(o for o in graph.graph.output if o.name == "hero")
    graph.graph.output.remove(hero)
    onnx.save(graph, str(tmp_path / "old.onnx"))
    old, new = load_segmenter(tmp_path / "old.onnx"), load_segmenter(out)
    assert not old.runtime.has_hero and new.runtime.has_hero
    frame = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    np.testing.assert_allclose(old.hero_probability(frame), new.hero_probability(frame),
                               atol=1e-5)


def test_a_checkpoint_runs_on_onnx_runtime_by_default(tmp_path, checkpoint, monkeypatch):
    monkeypatch.setenv("FOLLOWME_CACHE", str(tmp_path / "cache"))
    seg = load_segmenter(checkpoint)
    assert isinstance(seg.runtime, OnnxRuntime) and seg.size == 64
    cached = list((tmp_path / "cache" / "onnx").glob("*.onnx"))
    assert len(cached) == 1
    assert isinstance(load_segmenter(checkpoint).runtime, OnnxRuntime)  # from the cache
    assert list((tmp_path / "cache" / "onnx").glob("*.onnx")) == cached


def test_export_of_a_missing_checkpoint_leaves_nothing(tmp_path, capsys):
    assert main(["export", "--onnx", str(tmp_path / "nope.pt"), str(tmp_path / "m.onnx")]) == 2
    assert "nope.pt: no such checkpoint" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_onnx_file_is_named(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(ValueError, match="bad.onnx: not a readable ONNX model"):
        load_segmenter(bad)
