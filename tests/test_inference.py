"""One frame at a time: bytes -> hero mask -> centroid."""

import io

import numpy as np
import torch
from PIL import Image

from followme.inference import HeroSegmenter, hero_centroid
from followme.models import create_model


def test_centroid_of_the_largest_blob():
    hero = np.zeros((20, 20), bool)
    hero[2:4, 2:4] = True  # 4 px
    hero[10:16, 6:10] = True  # 24 px: the largest
    assert hero_centroid(hero) == (12.5, 7.5)
    assert hero_centroid(hero, min_pixels=28) is None


def test_segmenter_takes_jpeg_bytes():
    buf = io.BytesIO()
    Image.fromarray(np.full((256, 256, 3), 128, np.uint8)).save(buf, "JPEG")
    torch.manual_seed(0)
    seg = HeroSegmenter(create_model("seed"), image_size=64)
    hero, centroid = seg(buf.getvalue())
    assert hero.shape == (64, 64) and hero.dtype == bool
    assert centroid is None or all(0 <= v < 64 for v in centroid)


def test_decoding_resizes_as_the_course_did():
    from followme.data.resize import resize_image
    from followme.inference import decode_jpeg

    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)).save(buf, "JPEG")
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        full = np.asarray(im.convert("RGB"))
    np.testing.assert_array_equal(decode_jpeg(buf.getvalue(), 160), resize_image(full, 160))
    np.testing.assert_array_equal(decode_jpeg(buf.getvalue(), 256), full)


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
    import pytest
    from onnx import TensorProto

    import followme.follower.server as server
    from followme.cli import main
    from followme.inference import load_segmenter

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
