"""Damaged, foreign, hostile and half-written checkpoints: one ValueError naming the file, never a
torch traceback, never torch's advice to load with weights_only=False; and atomic writes."""

import errno
import os
import random
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

import followme.checkpoint as checkpoint
import followme.models
from followme import atomic
from followme.checkpoint import NORMALIZATION, load_checkpoint, save_checkpoint
from followme.cli import main
from followme.models import MODELS, create_model, model_config


def base_state(name="seed", image_size=64, **overrides) -> dict:
    model = create_model(name).eval()
    state = {"arch": "fcn", "model_name": name, "model_config": model_config(name).to_dict(),
             "image_size": image_size, "normalization": dict(NORMALIZATION),
             "model": model.state_dict()}
    state.update(overrides)
    return state


def write_base(path: Path, **overrides) -> Path:
    save_checkpoint(path, base_state(**overrides))
    return path


def predict(tmp_path, model: Path, capsys) -> tuple[int, str]:
    from conftest import write_robond

    images = write_robond(tmp_path / "imgs", 1) / "images"
    capsys.readouterr()
    rc = main(["predict", "--model", str(model), "--images", str(images),
               "--out", str(tmp_path / "pred")])
    return rc, capsys.readouterr().err


def one_line(message: str) -> str:
    assert "\n" not in message.strip(), message
    assert "weights_only" not in message, message
    return message


def tiny_onnx_bytes() -> bytes:
    import onnx.helper as h

    graph = h.make_graph([h.make_node("Identity", ["x"], ["y"])], "g",
                         [h.make_tensor_value_info("x", 1, [1])],
                         [h.make_tensor_value_info("y", 1, [1])])
    return h.make_model(graph, producer_name="pytorch").SerializeToString()


# ------------------------------------------------------------------ not a followme checkpoint
def foreign_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, what the message must say)."""
    files = {}

    def add(key, name, data, says):
        path = tmp_path / name
        path.write_bytes(data)
        files[key] = (path, says)

    add("empty", "x.pt", b"", "x.pt: empty file (0 bytes)")
    add("random", "r.pt", b"\x13" + random.Random(0).randbytes(1700),
        "r.pt: not a followme checkpoint (not a PyTorch file)")
    add("onnx", "m.onnx", tiny_onnx_bytes(),
        "m.onnx is an ONNX model: commands that take .onnx are follow; export writes it")
    add("onnx_named_pt", "o.pt", tiny_onnx_bytes(), "o.pt is an ONNX model")
    add("hdf5", "k.h5", b"\x89HDF\r\n\x1a\n" + bytes(200), "k.h5 is an HDF5 file")
    good = write_base(tmp_path / "good.pt").read_bytes()
    add("truncated", "t.pt", good[: len(good) // 2],
        "t.pt: not a readable checkpoint (a damaged or truncated PyTorch file)")
    zip_path = tmp_path / "z.pt"
    with zipfile.ZipFile(zip_path, "w") as z:
        z.writestr("notes.txt", "hello")
    files["zip"] = (zip_path, "z.pt: not a followme checkpoint (a zip archive")
    obj = tmp_path / "obj.pt"
    torch.save({"model": torch.nn.Linear(2, 2)}, obj)  # a pickled module: needs real unpickling
    files["pickled_objects"] = (obj, "obj.pt: not a followme checkpoint (a PyTorch or pickle "
                                     "file holding Python objects")
    return files


FOREIGN = ["empty", "random", "onnx", "onnx_named_pt", "hdf5", "truncated", "zip",
           "pickled_objects"]


@pytest.mark.parametrize("kind", FOREIGN)
def test_a_foreign_file_says_what_it_is(tmp_path, kind):
    path, says = foreign_files(tmp_path)[kind]
    with pytest.raises(ValueError) as info:
        load_checkpoint(path)
    assert says in one_line(str(info.value))


def test_predict_with_an_onnx_model_says_which_commands_take_it(tmp_path, capsys):
    path, says = foreign_files(tmp_path)["onnx"]
    rc, err = predict(tmp_path, path, capsys)
    assert rc == 2
    assert err.count("\n") == 1 and "weights_only" not in err
    assert err.startswith(f"followme: error: {tmp_path / says}")


def test_a_missing_key_is_named(tmp_path, capsys):
    for key in ("model_name", "model_config", "image_size", "normalization", "model"):
        state = base_state()
        del state[key]
        path = tmp_path / f"no_{key}.pt"
        save_checkpoint(path, state)
        with pytest.raises(ValueError, match=f"no_{key}.pt: not a complete followme checkpoint "
                                             f"\\(no '{key}'\\)"):
            load_checkpoint(path)
    rc, err = predict(tmp_path, tmp_path / "no_model_config.pt", capsys)
    assert rc == 2
    assert err == ("followme: error: " + str(tmp_path / "no_model_config.pt")
                   + ": not a complete followme checkpoint (no 'model_config')\n")


# ------------------------------------------------------------------------ hostile model_config
def seed_config(**overrides) -> dict:
    return {**model_config("seed").to_dict(), **overrides}


BAD_CONFIGS = {
    "huge_widths": (dict(model_config=seed_config(encoder=[10 ** 6] * 3)),
                    "encoder[0] = 1000000: want an int in 1..4096"),
    "huge_classes": (dict(model_config=seed_config(num_classes=10 ** 9)), "num_classes"),
    "too_many_parameters": (dict(model_config=seed_config(encoder=[4096] * 3, middle=4096,
                                                          decoder=[4096] * 3)),
                            "parameters: more than the 100,000,000 allowed"),
    "too_many_stages": (dict(model_config=seed_config(encoder=[8] * 9, decoder=[8] * 9,
                                                      encoder_blocks=[0] * 9)), "encoder"),
    "too_many_blocks": (dict(model_config=seed_config(encoder_blocks=[0, 0, 10 ** 4])),
                        "encoder_blocks[2]"),
    "width_as_string": (dict(model_config=seed_config(encoder=["32", 64, 128])), "encoder[0]"),
    "width_as_float": (dict(model_config=seed_config(middle=256.0)), "middle"),
    "encoder_not_a_list": (dict(model_config=seed_config(encoder=32)), "encoder"),
    "context_not_a_bool": (dict(model_config=seed_config(context="yes")), "context"),
    "dilation_zero": (dict(model_config=seed_config(dilations=[0])), "dilations[0]"),
    "short_blocks": (dict(model_config=seed_config(encoder_blocks=[0])), "encoder_blocks"),
    "unknown_field": (dict(model_config=seed_config(heads=4)), "unknown field(s) heads"),
    "config_not_a_dict": (dict(model_config=[1, 2, 3]), "model_config is a list"),
    "image_size_huge": (dict(image_size=10 ** 6), "image_size"),
    "image_size_indivisible": (dict(image_size=100), "not divisible by 8"),
    "image_size_string": (dict(image_size="64"), "image_size"),
    "normalization_string": (dict(normalization="x/255"), "normalization"),
    "normalization_scale_string": (dict(normalization={"scale": "2/255", "offset": -1.0}),
                                   "normalization scale"),
    "keras_image_size_huge": (dict(model_config={"keras": {}, "image_size": 10 ** 7}),
                              "image_size"),
    "keras_not_a_dict": (dict(model_config={"keras": "Model", "image_size": 64}), "keras"),
}


@pytest.mark.parametrize("kind", sorted(BAD_CONFIGS))
def test_a_bad_config_is_refused_before_building(tmp_path, monkeypatch, kind):
    overrides, says = BAD_CONFIGS[kind]
    path = write_base(tmp_path / "bad.pt", **overrides)

    def must_not_build(*args, **kwargs):
        raise AssertionError("the model was built from a bad config")

    # A guard, so that no version of the code allocates terabytes here.
    monkeypatch.setattr(followme.models, "FCN", must_not_build)
    with pytest.raises(ValueError) as info:
        load_checkpoint(path)
    message = one_line(str(info.value))
    assert message.startswith(f"{path}: ") and says in message


def test_the_parameter_estimate_is_exact():
    for name, config in MODELS.items():
        model = create_model(name)
        assert config.parameter_count() == sum(p.numel() for p in model.parameters()), name


# ----------------------------------------------------------------- weights that do not fit
def test_weights_of_another_model_are_named(tmp_path, capsys):
    seed_weights = create_model("seed").state_dict()
    path = write_base(tmp_path / "x.pt", name="fcn_res", model=seed_weights)
    with pytest.raises(ValueError) as info:
        load_checkpoint(path)
    message = one_line(str(info.value))
    assert message.startswith(f"{path}: its weights do not fit its model_config (fcn_res): ")
    assert "encoders." in message  # the first weight that does not fit
    rc, err = predict(tmp_path, path, capsys)
    assert rc == 2 and err.count("\n") == 1
    assert "x.pt: its weights do not fit its model_config (fcn_res)" in err


def test_a_weight_of_the_wrong_shape_is_named(tmp_path):
    path = write_base(tmp_path / "x.pt", model_config=seed_config(num_classes=4))
    with pytest.raises(ValueError, match=r"x.pt: its weights do not fit its model_config \(seed\)"
                                         r": head.weight has shape \(3, 32, 1, 1\), the model "
                                         r"needs \(4, 32, 1, 1\)"):
        load_checkpoint(path)


def test_weights_that_are_not_tensors_are_named(tmp_path):
    weights = create_model("seed").state_dict()
    weights["head.bias"] = [0.0, 0.0, 0.0]
    path = write_base(tmp_path / "x.pt", model=weights)
    with pytest.raises(ValueError, match="x.pt: .*head.bias.*not a tensor"):
        load_checkpoint(path)


# --------------------------------------------------------------------------------- writing
def fake_full_disk(error: Exception):
    def save(obj, f):
        if isinstance(f, (str, os.PathLike)):
            f = open(f, "wb")
        f.write(b"PK\x03\x04 half a checkpoint")
        raise error

    return save


@pytest.mark.parametrize("error", [
    OSError(errno.ENOSPC, "No space left on device"),
    RuntimeError("[enforce fail at inline_container.cc:778] . PytorchStreamWriter failed "
                 "writing file data/3: file write failed"),
], ids=["oserror", "torch_runtime_error"])
def test_a_full_disk_keeps_the_old_checkpoint_and_says_so(tmp_path, monkeypatch, error):
    path = write_base(tmp_path / "last.pt")
    before = path.read_bytes()
    monkeypatch.setattr(checkpoint.torch, "save", fake_full_disk(error))
    with pytest.raises(OSError) as info:
        save_checkpoint(path, base_state())
    assert str(info.value) == (f"could not write {path}: no space left on device "
                               "(the previous last.pt is kept)")
    assert info.value.errno == errno.ENOSPC
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temp file


def dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(proc.stdout)


def test_a_killed_save_leaves_no_temp_file_after_the_next_save(tmp_path):
    path = write_base(tmp_path / "last.pt")
    stale = tmp_path / f".last.pt.tmp{dead_pid()}"
    stale.write_bytes(b"half a checkpoint")
    live = tmp_path / f".last.pt.tmp{os.getppid()}"  # a running writer's file stays
    live.write_bytes(b"being written")
    other = tmp_path / f".best.pt.tmp{dead_pid()}"  # another file's temp: not ours to remove
    other.write_bytes(b"half")
    save_checkpoint(path, base_state())
    assert not stale.exists()
    assert live.exists() and other.exists()
    assert load_checkpoint(path).name == "seed"


def test_write_text_atomic_replaces_and_keeps_the_old_text_on_a_full_disk(tmp_path,
                                                                           monkeypatch):
    path = tmp_path / "sub" / "history.json"
    atomic.write_text_atomic(path, "[1]\n")
    atomic.write_text_atomic(path, "[1, 2]\n")
    assert path.read_text() == "[1, 2]\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["history.json"]

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(OSError, match="history.json: no space left on device "
                                      r"\(the previous history.json is kept\)"):
        atomic.write_text_atomic(path, "[1, 2, 3]\n")
    assert path.read_text() == "[1, 2]\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["history.json"]


def test_a_checkpoint_names_its_architecture_and_an_unknown_one_is_refused(tmp_path):
    path = write_base(tmp_path / "m.pt")
    assert checkpoint.read_checkpoint(path)["arch"] == "fcn"
    with pytest.raises(ValueError, match="needs an arch"):
        save_checkpoint(tmp_path / "none.pt", {k: v for k, v in base_state().items()
                                               if k != "arch"})
    assert not (tmp_path / "none.pt").exists()
    state = base_state()
    state["arch"] = "resnet"
    atomic.write_atomic(tmp_path / "odd.pt", lambda f: torch.save(
        {"format": checkpoint.FORMAT, **state}, f))
    with pytest.raises(ValueError, match="odd.pt: arch 'resnet': not one of fcn, keras"):
        load_checkpoint(tmp_path / "odd.pt")


def test_a_checkpoint_written_before_the_arch_key_still_loads(tmp_path):
    state = {k: v for k, v in base_state().items() if k != "arch"}
    atomic.write_atomic(tmp_path / "old.pt", lambda f: torch.save(
        {"format": checkpoint.FORMAT, **state}, f))
    assert load_checkpoint(tmp_path / "old.pt").name == "seed"
    assert "arch" not in torch.load(checkpoint.SHIPPED_MODEL, map_location="cpu",
                                    weights_only=True)  # so is ours
    assert load_checkpoint().name == "fcn_res"
