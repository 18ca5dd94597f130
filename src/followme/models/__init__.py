"""A registry of segmentation architectures behind one call: ``create_model(name, **overrides)``."""

from __future__ import annotations

from torch import nn

from followme.models.fcn import FCN, FCNConfig

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
}
DEFAULT_MODEL = "fcn_res"


def model_config(name: str, **overrides) -> FCNConfig:
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; choose one of: {', '.join(sorted(MODELS))}")
    return FCNConfig(**{**MODELS[name].to_dict(), **overrides})


def create_model(name: str, **overrides) -> nn.Module:
    """Build a registered architecture; ``overrides`` replace fields of its FCNConfig."""
    return FCN(model_config(name, **overrides))


def build_from_config(config: dict) -> nn.Module:
    """Rebuild a model from the config a checkpoint carries: an FCNConfig, or an imported Keras
    graph ({"keras": <Keras model config>, "image_size": S}, see followme.keras_import)."""
    if "keras" in config:
        from followme.keras_import.graph import KerasGraph

        return KerasGraph(config["keras"], config.get("image_size"))
    return FCN(FCNConfig(**config))


__all__ = ["MODELS", "DEFAULT_MODEL", "FCN", "FCNConfig", "create_model", "model_config",
           "build_from_config"]
