"""A registry of segmentation architectures behind one call: ``create_model(name, **overrides)``.

  fcn.py          the FCN family (``MODELS`` names its members)
  keras_graph.py  a module built from a Keras 2 model config (``followme import-keras``)
  keras_ops.py    TensorFlow's "same" padding and TF1 bilinear resizing
  sizes.py        the input sizes every model accepts

``ARCHS`` maps a checkpoint's ``arch`` to how its config is checked and its module built: a new
family is a module here and one entry there.
"""

from __future__ import annotations

from torch import nn

from followme.models.fcn import FCN, FCNConfig
from followme.models.keras_graph import build_keras, check_keras_config
from followme.models.sizes import (
    DEFAULT_IMAGE_SIZE,
    MAX_IMAGE_SIZE,
    MIN_IMAGE_SIZE,
    check_image_size,
)

MODELS: dict[str, FCNConfig] = {
    # The course's seed network, as its notebook printed it.
    "seed": FCNConfig(),
    # Deeper encoder with residual blocks and global context, two convs per decoder block and a
    # cheap full-size stage: stronger than the seed at fewer FLOPs.
    "fcn_res": FCNConfig(
        encoder=[32, 64, 128, 256],
        encoder_blocks=[1, 1, 1, 2],
        middle=256,
        context=True,
        dilations=[1, 2],
        decoder=[128, 64, 32, 16],
        decoder_convs=2,
    ),
    # fcn_res's recipe at the camera's own 256 px, for far-away heroes: a fifth, cheap stage
    # at 128 px and a thin full-size one, so the cost stays near fcn_res at 160 px.
    "fcn_hr": FCNConfig(
        encoder=[16, 32, 64, 128, 256],
        encoder_blocks=[0, 1, 1, 1, 2],
        middle=256,
        context=True,
        dilations=[1, 2],
        decoder=[128, 64, 32, 16, 8],
        decoder_convs=2,
    ),
}
DEFAULT_MODEL = "fcn_res"


def model_config(name: str, **overrides) -> FCNConfig:
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; choose one of: {', '.join(sorted(MODELS))}")
    return FCNConfig(**{**MODELS[name].to_dict(), **overrides})


def create_model(name: str, **overrides) -> nn.Module:
    """Build a registered architecture; ``overrides`` replace fields of its FCNConfig."""
    return FCN(model_config(name, **overrides))


def build_fcn(config: dict) -> nn.Module:
    """Rebuild an FCN from the config a checkpoint carries (``FCNConfig.to_dict()``). A malformed
    or oversized config raises ValueError before anything is allocated."""
    check_fcn_config(config)
    return FCN(FCNConfig(**config))


def check_fcn_config(config: dict, image_size: int | None = None) -> None:
    """Refuse an FCN config that cannot be built or is too big (ValueError saying why), and,
    given the checkpoint's ``image_size``, an input size the model cannot take."""
    if not isinstance(config, dict):
        raise ValueError(f"model_config is a {type(config).__name__}, not a dict")
    if image_size is not None:
        check_image_size("image_size", image_size, MIN_IMAGE_SIZE)
    fields = set(FCNConfig.__dataclass_fields__)
    unknown = sorted(map(str, set(config) - fields))
    if unknown:
        raise ValueError(f"model_config has unknown field(s) {', '.join(unknown)}; an FCN "
                         f"config has {', '.join(FCNConfig.__dataclass_fields__)}")
    fcn = FCNConfig(**config)
    fcn.check()
    stride = 2 ** len(fcn.encoder)
    if image_size is not None and image_size % stride:
        raise ValueError(f"image_size {image_size} is not divisible by {stride}, as the "
                         f"{len(fcn.encoder)} encoder stages need")


# arch -> (check(model_config, image_size), build(model_config) -> nn.Module)
ARCHS = {"fcn": (check_fcn_config, build_fcn), "keras": (check_keras_config, build_keras)}

__all__ = ["ARCHS", "MODELS", "DEFAULT_MODEL", "FCN", "FCNConfig", "create_model",
           "model_config", "build_fcn", "check_fcn_config", "check_image_size",
           "MIN_IMAGE_SIZE", "MAX_IMAGE_SIZE", "DEFAULT_IMAGE_SIZE"]
