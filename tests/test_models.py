"""The model registry, shapes against the seed notebook's printout, and checkpoints."""

import pytest
import torch

from followme.checkpoint import NORMALIZATION, load_checkpoint, save_checkpoint
from followme.models import MODELS, create_model, model_config
from followme.models.summary import summary

# The seed notebook printed these (NHWC) for a 160x160 input.
SEED_PRINTOUT = {
    "encoder1": (80, 80, 32),
    "encoder2": (40, 40, 64),
    "encoder3": (20, 20, 128),
    "1x1 conv": (20, 20, 256),
    "decoder1": (40, 40, 128),
    "decoder2": (80, 80, 64),
    "decoder3": (160, 160, 32),
    "output": (160, 160, 3),
}


def test_seed_shapes_match_the_notebook():
    model = create_model("seed").eval()
    with torch.no_grad():
        feats = dict(model.features(torch.zeros(1, 3, 160, 160)))
    for name, (h, w, c) in SEED_PRINTOUT.items():
        assert tuple(feats[name].shape) == (1, c, h, w), name
    assert "(?, 20, 20, 256)" in summary("seed")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_trains_and_keeps_the_input_size(name):
    model = create_model(name)
    x = torch.randn(2, 3, 64, 64)
    out = model(x)
    assert out.shape == (2, 3, 64, 64)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_unknown_model_lists_the_choices():
    with pytest.raises(KeyError, match="choose one of: .*seed"):
        create_model("unet9000")


def test_checkpoint_rebuilds_its_model(tmp_path):
    model = create_model("fcn_res").eval()
    path = tmp_path / "m.pt"
    save_checkpoint(path, {"arch": "fcn", "model_name": "fcn_res",
                           "model_config": model_config("fcn_res").to_dict(),
                           "image_size": 64, "normalization": NORMALIZATION,
                           "model": model.state_dict()})
    assert not list(tmp_path.glob(".*tmp*"))
    loaded = load_checkpoint(path)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), model(x))
    assert loaded.image_size == 64


def test_damaged_checkpoint_is_named(tmp_path):
    path = tmp_path / "broken.pt"
    path.write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match="broken.pt: not a readable checkpoint"):
        load_checkpoint(path)


def test_shipped_model_loads():
    loaded = load_checkpoint()
    assert loaded.image_size == 160
    with torch.no_grad():
        assert loaded.model(torch.zeros(1, 3, 160, 160)).shape == (1, 3, 160, 160)
