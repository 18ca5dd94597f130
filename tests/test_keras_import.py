"""``followme import-keras``: TensorFlow semantics on hand-checked cases, the file forms, errors,
and the RoboND reference model (when ../shared is there)."""

import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import SHARED, needs_shared
from followme.checkpoint import load_checkpoint
from followme.cli import main
from followme.data.robond import find_pairs
from followme.evaluation.evaluate import evaluate
from followme.evaluation.score import SUBSETS
from followme.keras_import.convert import KerasImportError, import_keras
from followme.keras_import.writer import (
    input_layer,
    keras_layer,
    model_config,
    save_model,
    save_network,
)
from followme.models.keras_graph import (
    BatchNormalization,
    Conv2D,
    Conv2DTranspose,
    KerasGraph,
    SeparableConv2D,
)
from followme.models.keras_ops import resize_bilinear_tf1, same_padding

REFERENCE = SHARED / "reference_model"


def grid(h: int, w: int) -> torch.Tensor:
    return torch.arange(h * w, dtype=torch.float32).reshape(1, 1, h, w)


def test_same_padding_puts_the_odd_pixel_bottom_right():
    assert same_padding(160, 3, 2) == (0, 1)  # the course's encoders: even size, stride 2
    assert same_padding(5, 3, 2) == (1, 1)
    assert same_padding(10, 3, 1) == (1, 1)
    assert same_padding(10, 2, 1) == (0, 1)
    assert same_padding(10, 3, 1, dilation=2) == (2, 2)
    assert same_padding(7, 1, 2) == (0, 0)


def test_stride_2_conv_matches_a_hand_sum():
    conv = Conv2D(1, 1, (3, 3), (2, 2), (1, 1), "same", use_bias=False, activation="linear")
    conv.load_keras("c", {"kernel": np.ones((3, 3, 1, 1))})
    # 4x4 grid 0..15, windows over rows/cols 0-2 and 2-3 (+ a zero row/col after)
    assert conv(grid(4, 4))[0, 0].tolist() == [[45, 39], [66, 50]]
    # PyTorch's symmetric padding=1 would start at row/col -1: 0 + 1 + 4 + 5
    assert F.conv2d(grid(4, 4), torch.ones(1, 1, 3, 3), stride=2, padding=1)[0, 0, 0, 0] == 10


def test_separable_is_depthwise_pointwise_bias_activation():
    sep = SeparableConv2D(2, 4, (1, 1), (1, 1), (1, 1), "same", use_bias=True,
                          activation="relu", depth_multiplier=2)
    sep.load_keras("s", {"depthwise_kernel": np.array([[[[1, 2], [3, 4]]]]),
                         "pointwise_kernel": np.eye(4)[None, None],
                         "bias": np.array([0, 0, -10, 0])})
    x = torch.tensor([1.0, 2.0]).view(1, 2, 1, 1)
    # channel c * multiplier + m = x_c * depthwise[c, m]; then bias, then relu
    assert sep(x).flatten().tolist() == [1, 2, 0, 8]


def test_resize_bilinear_samples_at_dst_times_in_over_out():
    row = torch.tensor([0.0, 10.0]).view(1, 1, 1, 2)
    assert resize_bilinear_tf1(row, 1, 4).flatten().tolist() == [0, 5, 10, 10]
    # PyTorch's half-pixel centres give other values
    half = F.interpolate(row, (1, 4), mode="bilinear", align_corners=False)
    assert half.flatten().tolist() == [0, 2.5, 7.5, 10]
    three = torch.tensor([0.0, 10.0, 20.0]).view(1, 1, 1, 3)
    # 3 -> 5: sources 0, 0.6, 1.2, 1.8, 2.4 (clamped to the last pixel)
    assert resize_bilinear_tf1(three, 1, 5).flatten().tolist() == pytest.approx(
        [0, 6, 12, 18, 20], abs=1e-5)
    square = torch.tensor([[0.0, 10.0], [20.0, 30.0]]).view(1, 1, 2, 2)
    assert resize_bilinear_tf1(square, 4, 4)[0, 0].tolist() == [
        [0, 5, 10, 10], [10, 15, 20, 20], [20, 25, 30, 30], [20, 25, 30, 30]]


def test_batchnorm_uses_the_configs_epsilon_and_matches_arrays_by_name():
    bn = BatchNormalization(1, -1, 1e-3, center=True, scale=True)
    # stored beta first, as the reference model has them
    bn.load_keras("bn", {"beta": np.array([1.0]), "gamma": np.array([2.0]),
                         "moving_mean": np.array([0.5]), "moving_variance": np.array([0.249])})
    out = bn(torch.full((1, 1, 1, 1), 1.5)).item()
    assert out == pytest.approx((1.5 - 0.5) / 0.5 * 2 + 1)  # sqrt(0.249 + 1e-3) = 0.5
    keras_default = KerasGraph(model_config([
        input_layer("in", 2, 2, 3), keras_layer("BatchNormalization", "bn", ["in"], axis=-1)],
        "bn"))
    assert keras_default.layers["bn"].epsilon == 1e-3  # not PyTorch's 1e-5


def test_conv_transpose_same_crops_like_tensorflow():
    # Two inputs of 1 spread by a kernel of ones: the full output covers 1 1 2 1 1 (k=3) or
    # 1 1 2 2 1 1 (k=4) per axis; "same" keeps 4 from offset (k - 2) // 2.
    for k, column in ((3, [1, 1, 2, 1]), (4, [1, 2, 2, 1])):
        up = Conv2DTranspose(1, 1, (k, k), (2, 2), "same", use_bias=False, activation="linear")
        up.load_keras("t", {"kernel": np.ones((k, k, 1, 1))})
        y = up(torch.ones(1, 1, 2, 2))
        assert y.shape == (1, 1, 4, 4) and y[0, 0, 0].tolist() == column


def tiny_model(size: int = 8, **conv) -> tuple[dict, dict]:
    """input -> 1x1 Conv2D(3, softmax): probabilities = softmax(x @ kernel + bias)."""
    rng = np.random.default_rng(0)
    config = model_config([
        input_layer("input_1", size, size),
        keras_layer("Conv2D", "conv2d_1", ["input_1"], **{
            "filters": 3, "kernel_size": [1, 1], "strides": [1, 1], "padding": "same",
            "activation": "softmax", **conv}),
    ], "conv2d_1")
    weights = {"conv2d_1": {"bias": rng.normal(size=3), "kernel": rng.normal(size=(1, 1, 3, 3))}}
    return config, weights


@pytest.mark.parametrize("form", ["two files", "one file"])
def test_tiny_model_round_trips_through_a_checkpoint(tmp_path, form):
    config, weights = tiny_model()
    if form == "two files":
        save_network(config, weights, tmp_path / "config_w", tmp_path / "w")
        out = import_keras(tmp_path / "config_w", tmp_path / "w", tmp_path / "m.pt")
    else:
        save_model(config, weights, tmp_path / "model.h5")
        out = import_keras(tmp_path / "model.h5", None, tmp_path / "m.pt")
    loaded = load_checkpoint(out)
    assert loaded.name == "keras:model" and loaded.image_size == 8
    assert loaded.normalization == {"scale": 2 / 255, "offset": -1.0}
    x = np.random.default_rng(1).uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32)
    kernel, bias = weights["conv2d_1"]["kernel"][0, 0], weights["conv2d_1"]["bias"]
    logits = x @ kernel + bias
    expected = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    with torch.no_grad():
        out = loaded.model(torch.from_numpy(x).permute(0, 3, 1, 2))
    # the Keras softmax is left out: the module gives the logits, softmax(1) the probabilities
    np.testing.assert_allclose(out.permute(0, 2, 3, 1).numpy(), logits, atol=1e-5)
    np.testing.assert_allclose(out.softmax(1).permute(0, 2, 3, 1).numpy(), expected, atol=1e-6)


def import_fails(tmp_path, config: dict, weights: dict) -> str:
    save_network(config, weights, tmp_path / "config_w", tmp_path / "w")
    before = set(os.listdir(tmp_path))
    with pytest.raises(KerasImportError) as e:
        import_keras(tmp_path / "config_w", tmp_path / "w", tmp_path / "m.pt")
    assert set(os.listdir(tmp_path)) == before  # no checkpoint, no temp file
    return str(e.value)


def test_unsupported_layer_is_named_and_nothing_is_written(tmp_path):
    config, weights = tiny_model()
    config["config"]["layers"].insert(1, keras_layer("LSTM", "lstm_1", ["input_1"], units=4))
    config["config"]["layers"][2]["inbound_nodes"] = [[["lstm_1", 0, 0, {}]]]
    message = import_fails(tmp_path, config, weights)
    assert "'lstm_1'" in message and "'LSTM' is not supported" in message


@pytest.mark.parametrize("option, value", [("data_format", "channels_first"),
                                           ("padding", "causal"), ("activation", "swish")])
def test_unsupported_option_is_named(tmp_path, option, value):
    config, weights = tiny_model(**{option: value})
    message = import_fails(tmp_path, config, weights)
    assert "'conv2d_1'" in message and f"{option}={value!r}" in message


def test_mismatched_weights_are_named(tmp_path):
    config, weights = tiny_model()
    weights["conv2d_1"]["kernel"] = np.zeros((1, 1, 3, 4))
    assert "'conv2d_1': array 'kernel' has shape (1, 1, 3, 4)" in import_fails(
        tmp_path, config, weights)
    del weights["conv2d_1"]["bias"]
    assert "needs ['bias', 'kernel']" in import_fails(tmp_path, config, weights)


def test_weights_only_h5_asks_for_the_config(tmp_path):
    config, weights = tiny_model()
    save_network(config, weights, tmp_path / "config_w", tmp_path / "w")
    with pytest.raises(KerasImportError, match="without a model config"):
        import_keras(tmp_path / "w", None, tmp_path / "m.pt")


def test_command_and_evaluate_run_on_an_imported_model(tmp_path, tiny_grading, capsys):
    config, weights = tiny_model(size=16)
    save_model(config, weights, tmp_path / "model.h5")
    assert main(["import-keras", str(tmp_path / "model.h5"), "--out", str(tmp_path / "m.pt")]) == 0
    assert "1 layers, 12 parameters, input 16x16" in capsys.readouterr().out
    figures = evaluate(tiny_grading, tmp_path / "eval", model=tmp_path / "m.pt", progress=False)
    assert 0 <= figures["final_score"] <= 1 and figures["model_name"] == "keras:model"


@pytest.mark.shared_data
@needs_shared()
@pytest.mark.skipif(not REFERENCE.is_dir(), reason=f"no reference model at {REFERENCE}")
def test_reference_model_imports_and_evaluates(tmp_path):
    out = import_keras(REFERENCE / "config_model_weights", REFERENCE / "model_weights",
                       tmp_path / "reference.pt")
    loaded = load_checkpoint(out)
    assert loaded.image_size == 160 and len(loaded.model.steps) == 21
    with torch.no_grad():
        probs = loaded.model(torch.rand(2, 3, 160, 160) * 2 - 1).softmax(1)
    assert probs.shape == (2, 3, 160, 160)
    torch.testing.assert_close(probs.sum(1), torch.ones(2, 160, 160))
    # a few images of each subset: the whole folder is the closing note's job
    grade = tmp_path / "grade"
    for subset in SUBSETS:
        pairs, _ = find_pairs(SHARED / "validation_grade" / subset)
        for pair in pairs[:4]:
            for kind, f in (("images", pair.image), ("masks", pair.mask)):
                (grade / subset / kind).mkdir(parents=True, exist_ok=True)
                (grade / subset / kind / f.name).symlink_to(f)
    figures = evaluate(grade, tmp_path / "eval", model=out, progress=False)
    assert figures["subsets"]["following_images"]["n"] == 4
    assert figures["subsets"]["following_images"]["iou_hero"] > 0.5


# --- hostile files: refused with one line naming the file, nothing written ----------------------

def cli_refuses(capsys, tmp_path, *files) -> str:
    """Run ``followme import-keras FILES --out m.pt``: exit 2, one error line, no checkpoint (nor
    its temp file) left behind; returns the error line."""
    out = tmp_path / "m.pt"
    assert main(["import-keras", *map(str, files), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("followme: error: ") and err.count("\n") == 1, err
    assert not out.exists() and not list(tmp_path.glob(".m.pt.tmp*"))
    return err


def craft_weights(tmp_path, make_kernel, config=None, weights=None):
    """The tiny model's two files, with conv2d_1's kernel replaced by ``make_kernel(f, name)``
    (f: the weights file open for writing, name: the kernel's HDF5 path)."""
    import h5py

    if config is None:
        config, weights = tiny_model()
    save_network(config, weights, tmp_path / "config.json", tmp_path / "weights.h5")
    name = "conv2d_1/conv2d_1/kernel:0"
    with h5py.File(tmp_path / "weights.h5", "a") as f:
        del f[name]
        make_kernel(f, name)
    return tmp_path / "config.json", tmp_path / "weights.h5"


def _external_storage(f, name):
    secret = f.filename.replace("weights.h5", "secret")
    with open(secret, "wb") as s:
        s.write(np.arange(9, dtype=np.float32).tobytes())
    f.create_dataset(name, (1, 1, 3, 3), np.float32, external=[(secret, 0, 36)])


def _external_link(f, name):
    import h5py

    other = f.filename.replace("weights.h5", "other.h5")
    with h5py.File(other, "w") as o:
        o["kernel"] = np.ones((1, 1, 3, 3), np.float32)
    f[name] = h5py.ExternalLink(other, "/kernel")


def _soft_link(f, name):
    import h5py

    f["elsewhere/kernel"] = np.ones((1, 1, 3, 3), np.float32)
    f[name] = h5py.SoftLink("/elsewhere/kernel")


def _virtual(f, name):
    import h5py

    other = f.filename.replace("weights.h5", "other.h5")
    with h5py.File(other, "w") as o:
        o["kernel"] = np.ones((1, 1, 3, 3), np.float32)
    layout = h5py.VirtualLayout((1, 1, 3, 3), np.float32)
    layout[...] = h5py.VirtualSource(other, "kernel", (1, 1, 3, 3))
    f.create_virtual_dataset(name, layout)


@pytest.mark.parametrize("make_kernel, what", [
    (_external_storage, "external storage"), (_external_link, "external link"),
    (_soft_link, "soft link"), (_virtual, "virtual dataset")])
def test_hdf5_data_from_outside_the_file_is_refused(tmp_path, capsys, make_kernel, what):
    config, weights = craft_weights(tmp_path, make_kernel)
    err = cli_refuses(capsys, tmp_path, config, weights)
    assert str(weights) in err and what in err and "conv2d_1/kernel:0" in err


def test_a_huge_input_is_refused_before_building(tmp_path, capsys):
    config, weights = tiny_model(size=3000)
    save_network(config, weights, tmp_path / "config.json", tmp_path / "weights.h5")
    err = cli_refuses(capsys, tmp_path, tmp_path / "config.json", tmp_path / "weights.h5")
    assert str(tmp_path / "config.json") in err and "3000x3000" in err and "1024" in err
    config, weights = tiny_model(size=None)
    save_model(config, weights, tmp_path / "model.h5")
    err = cli_refuses(capsys, tmp_path, tmp_path / "model.h5", "--image-size", "5000")
    assert "1024" in err


@pytest.mark.parametrize("option, value", [
    ("filters", -3), ("filters", 0), ("filters", 10**12), ("filters", "3"), ("filters", True),
    ("kernel_size", [99, 99]), ("kernel_size", [1, -1]), ("strides", [10**9, 1]),
    ("dilation_rate", 10**6)])
def test_bad_or_huge_layer_sizes_are_refused(tmp_path, capsys, option, value):
    config, weights = tiny_model(**{option: value})
    save_network(config, weights, tmp_path / "config.json", tmp_path / "weights.h5")
    err = cli_refuses(capsys, tmp_path, tmp_path / "config.json", tmp_path / "weights.h5")
    assert str(tmp_path / "config.json") in err and "'conv2d_1'" in err
    assert f"{option}={value!r}" in err


def test_bad_depth_multiplier_and_upsampling_are_refused(tmp_path, capsys):
    layers = [input_layer("input_1", 8, 8),
              keras_layer("SeparableConv2D", "sep", ["input_1"], filters=3, kernel_size=1,
                          depth_multiplier=10**6, padding="same")]
    save_network(model_config(layers, "sep"), {}, tmp_path / "config.json",
                 tmp_path / "weights.h5")
    assert "depth_multiplier=1000000" in cli_refuses(
        capsys, tmp_path, tmp_path / "config.json", tmp_path / "weights.h5")
    layers[1] = keras_layer("UpSampling2D", "sep", ["input_1"], size=[10**5, 10**5])
    save_network(model_config(layers, "sep"), {}, tmp_path / "config.json",
                 tmp_path / "weights.h5")
    assert "size=[100000, 100000]" in cli_refuses(
        capsys, tmp_path, tmp_path / "config.json", tmp_path / "weights.h5")


def test_too_many_parameters_are_refused_before_allocating(tmp_path, capsys):
    # three layers of at most 67 M parameters each: 134 M in all
    layers = [input_layer("input_1", 4, 4)]
    for i, (filters, kernel) in enumerate(((4096, 1), (4096, 2), (4096, 2), (3, 1))):
        layers.append(keras_layer("Conv2D", f"c{i}", [layers[-1]["name"]], filters=filters,
                                  kernel_size=kernel, padding="same"))
    save_network(model_config(layers, "c3"), {}, tmp_path / "config.json",
                 tmp_path / "weights.h5")
    err = cli_refuses(capsys, tmp_path, tmp_path / "config.json", tmp_path / "weights.h5")
    assert str(tmp_path / "config.json") in err and "parameters" in err and "'c2'" in err


def chain(n: int) -> dict:
    layers = [input_layer("input_1", 4, 4)]
    for i in range(n - 2):
        layers.append(keras_layer("Activation", f"a{i}", [layers[-1]["name"]],
                                  activation="linear"))
    layers.append(keras_layer("Conv2D", "out", [layers[-1]["name"]], filters=3, kernel_size=1))
    return model_config(layers, "out")


def test_layer_count_is_bounded_and_a_long_chain_is_no_recursion(tmp_path, capsys):
    weights = {"out": {"kernel": np.ones((1, 1, 3, 3)), "bias": np.zeros(3)}}
    save_network(chain(1001), weights, tmp_path / "config.json", tmp_path / "weights.h5")
    err = cli_refuses(capsys, tmp_path, tmp_path / "config.json", tmp_path / "weights.h5")
    assert "1001 layers" in err and "1000" in err
    save_network(chain(1000), weights, tmp_path / "config.json", tmp_path / "weights.h5")
    out = import_keras(tmp_path / "config.json", tmp_path / "weights.h5", tmp_path / "m.pt")
    assert len(load_checkpoint(out).model.steps) == 999


@pytest.mark.parametrize("depth", [100, 100_000])
def test_a_deeply_nested_config_is_refused(tmp_path, capsys, depth):
    import json

    config, weights = tiny_model()
    config["config"]["layers"][1]["config"]["junk"] = "JUNK"
    text = json.dumps(config).replace('"JUNK"', "[" * depth + "]" * depth)
    (tmp_path / "config.json").write_text(text)
    save_network(config, weights, tmp_path / "unused", tmp_path / "weights.h5")
    err = cli_refuses(capsys, tmp_path, tmp_path / "config.json", tmp_path / "weights.h5")
    assert str(tmp_path / "config.json") in err and "nested" in err


def test_a_huge_declared_dataset_shape_is_refused_unread(tmp_path, capsys):
    config, weights = craft_weights(tmp_path, lambda f, name: f.create_dataset(
        name, (100_000, 100_000, 3, 3), np.float32, chunks=(1, 1, 3, 3)))
    assert weights.stat().st_size < 100_000
    err = cli_refuses(capsys, tmp_path, config, weights)
    assert str(weights) in err and "(100000, 100000, 3, 3)" in err
    from followme.keras_import.convert import read_keras_weights

    with pytest.raises(KerasImportError, match="100000"):
        read_keras_weights(weights)
    # the right shape, but in one 36 MB chunk that reading would decompress
    config, weights = craft_weights(tmp_path, lambda f, name: f.create_dataset(
        name, data=np.ones((1, 1, 3, 3), np.float32), maxshape=(None, None, 3, 3),
        chunks=(1000, 1000, 3, 3), compression="gzip"))
    assert weights.stat().st_size < 1_000_000
    err = cli_refuses(capsys, tmp_path, config, weights)
    assert str(weights) in err and "chunks of (1000, 1000, 3, 3)" in err


def test_truncated_or_wrong_weights_files_are_one_line_errors(tmp_path, capsys):
    config, weights = tiny_model()
    save_network(config, weights, tmp_path / "config.json", tmp_path / "weights.h5")
    data = (tmp_path / "weights.h5").read_bytes()
    (tmp_path / "weights.h5").write_bytes(data[:len(data) // 2])
    err = cli_refuses(capsys, tmp_path, tmp_path / "config.json", tmp_path / "weights.h5")
    assert str(tmp_path / "weights.h5") in err
    save_model(config, weights, tmp_path / "model.h5")
    data = (tmp_path / "model.h5").read_bytes()
    (tmp_path / "model.h5").write_bytes(data[:len(data) // 2])
    assert str(tmp_path / "model.h5") in cli_refuses(capsys, tmp_path, tmp_path / "model.h5")
    # a weight array of strings
    config, weights = craft_weights(tmp_path, lambda f, name: f.create_dataset(
        name, data=np.full((1, 1, 3, 3), b"x")))
    err = cli_refuses(capsys, tmp_path, config, weights)
    assert str(weights) in err and "conv2d_1/kernel:0" in err
