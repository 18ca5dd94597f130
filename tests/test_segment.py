"""segment/: frames -> tensor -> logits -> the hero's probability and mask, on either runtime."""

import numpy as np
import pytest
import torch
from torch import nn

from followme.data.resize import resize_image
from followme.follower.viz import hero_centroid
from followme.labels import HERO
from followme.segment.frames import predict_probabilities, to_tensor
from followme.segment.segmenter import HeroSegmenter, TorchRuntime


class RedIsHero(nn.Module):
    """Logits that make a pixel the hero's where its red is above about 196 of 255, and the
    background's elsewhere: a model whose right answer is known."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hero = 20 * (x[:, 0] - 0.5)
        zero = torch.zeros_like(hero)
        return torch.stack([zero, zero - 5, hero], 1)


def _frame(size: int = 256) -> np.ndarray:
    frame = np.full((size, size, 3), 128, np.uint8)
    frame[64:192, 96:160] = (255, 20, 20)  # a red block: 128 x 64 px at 256
    return frame


def test_to_tensor_scales_pixels_to_minus_one_one_channels_first():
    frames = torch.tensor([[[[0, 255, 128]]]], dtype=torch.uint8)  # (1, 1, 1, 3)
    x = to_tensor(frames)
    assert x.shape == (1, 3, 1, 1)
    np.testing.assert_allclose(x.flatten().numpy(), [-1.0, 1.0, 128 * 2 / 255 - 1], atol=1e-6)


def test_segmenter_finds_the_hero_where_the_model_puts_her_at_its_own_size():
    seg = HeroSegmenter(TorchRuntime(RedIsHero(), image_size=64))
    mask = seg(_frame())
    assert mask.shape == (64, 64) and mask.dtype == bool
    want = np.zeros((64, 64), bool)
    want[16:48, 24:40] = True  # the block, resized by 4
    assert (mask == want).mean() > 0.98
    assert mask[18:46, 26:38].all() and not mask[:14].any() and not mask[:, :22].any()


def test_segmenter_resizes_frames_as_the_course_did():
    seg = HeroSegmenter(TorchRuntime(RedIsHero(), image_size=64))
    frame = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    np.testing.assert_array_equal(seg(frame), seg(resize_image(frame, 64)))


def test_hero_probability_is_the_softmax_hero_channel():
    torch.manual_seed(0)
    from followme.models import create_model

    runtime = TorchRuntime(create_model("seed"), image_size=64)
    frames = np.random.default_rng(1).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    probs = runtime.probabilities(frames)
    np.testing.assert_allclose(probs.sum(-1), 1, atol=1e-5)
    np.testing.assert_allclose(runtime.hero(frames), probs[..., HERO], atol=1e-6)


def test_prediction_pngs_mark_the_hero_above_127_where_p_is_above_half():
    frames = np.stack([_frame(64), np.full((64, 64, 3), 128, np.uint8)])
    png = predict_probabilities(RedIsHero(), frames, batch_size=1)
    assert png.shape == (2, 64, 64, 3) and png.dtype == np.uint8
    seg = HeroSegmenter(TorchRuntime(RedIsHero(), image_size=64))
    np.testing.assert_array_equal(png[0, ..., HERO] > 127, seg(frames[0]))
    assert not (png[1, ..., HERO] > 127).any()


def test_centroid_of_the_largest_blob():
    hero = np.zeros((20, 20), bool)
    hero[2:4, 2:4] = True  # 4 px
    hero[10:16, 6:10] = True  # 24 px: the largest
    assert hero_centroid(hero) == (12.5, 7.5)
    assert hero_centroid(hero, min_pixels=28) is None


def _onnx_file(path, dtype, in_shape, out_shape):
    """A one-node ONNX model (Identity or a Transpose to channels last), "image" in."""
    import onnx
    from onnx import helper

    node = helper.make_node("Identity", ["image"], ["probabilities"]) if in_shape == out_shape \
        else helper.make_node("Transpose", ["image"], ["probabilities"], perm=[0, 2, 3, 1])
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("image", dtype, in_shape)],
        [helper.make_tensor_value_info("probabilities", dtype, out_shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_an_onnx_model_that_does_not_take_frames_is_refused(tmp_path, capsys, monkeypatch):
    """A float32 NCHW model is refused when it is loaded, in one line naming the file and what
    followme export writes, not with a traceback on the first frame."""
    from onnx import TensorProto

    import followme.follower.quadsim.server as server
    from followme.cli import main
    from followme.segment.segmenter import load_segmenter

    nchw = _onnx_file(tmp_path / "nchw.onnx", TensorProto.FLOAT, [1, 3, 64, 64], [1, 64, 64, 3])
    with pytest.raises(ValueError) as e:
        load_segmenter(nchw)
    message = str(e.value)
    assert str(nchw) in message and "float" in message and "(1, 3, 64, 64)" in message
    assert "followme export" in message and "uint8 (B, S, S, 3)" in message
    assert "\n" not in message

    def serve(*args, **kwargs):
        raise AssertionError("followme follow served a model it cannot run")

    monkeypatch.setattr(server, "serve", serve)
    assert main(["follow", "--model", str(nchw), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("followme: error: ") and str(nchw) in err and err.count("\n") == 1

    # channels last but floats, or no fixed size, or a wrong output: refused too
    for name, dtype, shape, out in (("f32.onnx", TensorProto.FLOAT, [1, 64, 64, 3], None),
                                    ("free.onnx", TensorProto.UINT8, ["b", "h", "w", 3], None),
                                    ("out.onnx", TensorProto.UINT8, [1, 64, 64, 3],
                                     [1, 64, 3, 64])):
        bad = _onnx_file(tmp_path / name, dtype, shape, out or shape)
        with pytest.raises(ValueError, match="followme export"):
            load_segmenter(bad)
    good = _onnx_file(tmp_path / "good.onnx", TensorProto.UINT8, ["b", 64, 64, 3],
                      ["b", 64, 64, 3])
    assert load_segmenter(good).size == 64
