"""Keras 2 model files written from Python, in the layouts the course's code produced: a
functional-model config, ``save_network``'s two files and ``model.save``'s single HDF5 file.
For tests and tools/verify_keras_import.py: small models with known weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

Weights = dict[str, dict[str, np.ndarray]]


def keras_layer(class_name: str, name: str, inbound: tuple[str, ...] | list[str] = (),
                **config) -> dict:
    """One layer of a Keras 2 functional config, fed by the layers named in ``inbound``."""
    return {"name": name, "class_name": class_name, "config": {"name": name, **config},
            "inbound_nodes": [[[s, 0, 0, {}] for s in inbound]] if inbound else []}


def input_layer(name: str, height: int | None, width: int | None, channels: int = 3) -> dict:
    return keras_layer("InputLayer", name, batch_input_shape=[None, height, width, channels],
                       dtype="float32", sparse=False)


def model_config(layers: list[dict], output: str, name: str = "model") -> dict:
    """The ``model.to_json()`` dict of a one-input, one-output functional model."""
    first = next(layer["name"] for layer in layers if layer["class_name"] == "InputLayer")
    return {"class_name": "Model", "keras_version": "2.0.2-tf", "backend": "tensorflow",
            "config": {"name": name, "layers": layers, "input_layers": [[first, 0, 0]],
                       "output_layers": [[output, 0, 0]]}}


def _write_weights(group, config: dict, weights: Weights) -> None:
    names = [layer["name"] for layer in config["config"]["layers"]]
    group.attrs["layer_names"] = np.array([n.encode() for n in names])
    for name in names:
        arrays = weights.get(name, {})
        stored = [f"{name}/{array}:0" for array in arrays]
        layer_group = group.create_group(name)
        layer_group.attrs["weight_names"] = np.array([s.encode() for s in stored])
        for path, value in zip(stored, arrays.values(), strict=True):
            layer_group[path] = np.asarray(value, np.float32)


def save_network(config: dict, weights: Weights, config_path: str | Path,
                 weights_path: str | Path) -> None:
    """The course's ``model_tools.save_network``: the config as a JSON string of the model JSON,
    and ``save_weights``' HDF5 file (arrays stored in the order of ``weights[layer]``)."""
    import h5py

    Path(config_path).write_text(json.dumps(json.dumps(config)))
    with h5py.File(weights_path, "w") as f:
        _write_weights(f, config, weights)


def save_model(config: dict, weights: Weights, path: str | Path) -> None:
    """Keras 2's ``model.save``: one HDF5 file with the ``model_config`` attribute and the
    ``model_weights`` group."""
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config).encode()
        f.attrs["keras_version"] = config.get("keras_version", "2.0.2").encode()
        _write_weights(f.create_group("model_weights"), config, weights)
