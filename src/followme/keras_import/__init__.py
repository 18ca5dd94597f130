"""``followme import-keras``: a RoboND Keras 2 / TensorFlow 1 model -> a followme checkpoint.

Two forms of input:

- CONFIG_JSON WEIGHTS_H5, as the course's ``model_tools.save_network`` wrote them
  (``config_<name>``: ``model.to_json()`` dumped once more as a JSON string; ``<name>``:
  ``model.save_weights``);
- MODEL.h5, as ``model.save`` wrote it: the config in the ``model_config`` attribute and the
  weights in the ``model_weights`` group.

The functional graph is rebuilt by ``graph.KerasGraph`` and filled by matching every HDF5 array
by name. The checkpoint stores the Keras config, so ``load_checkpoint`` rebuilds the graph; it is
written only once the whole model has imported and run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from followme.keras_import.graph import KerasGraph, KerasImportError, input_shape

__all__ = ["KerasGraph", "KerasImportError", "build_graph", "cmd_import_keras", "import_keras",
           "read_keras_config", "read_keras_weights"]


def _decode(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def parse_config(text: str | bytes) -> dict:
    """A model config from JSON, also when it was dumped twice (a JSON string of the JSON)."""
    config = json.loads(text)
    if isinstance(config, str):
        config = json.loads(config)
    if not isinstance(config, dict) or "config" not in config:
        raise KerasImportError("not a Keras model config (no 'class_name'/'config')")
    return config


def _attr_list(obj, key: str) -> list[str]:
    """An HDF5 name-list attribute; Keras splits long ones into key0, key1, ..."""
    if key in obj.attrs:
        values = list(np.asarray(obj.attrs[key]).ravel())
    elif f"{key}0" in obj.attrs:
        values, i = [], 0
        while f"{key}{i}" in obj.attrs:
            values += list(np.asarray(obj.attrs[f"{key}{i}"]).ravel())
            i += 1
    else:
        raise KerasImportError(f"{obj.file.filename}: not a Keras weights file (no {key!r} "
                               f"attribute at {obj.name})")
    return [_decode(v) for v in values]


def read_keras_config(path: str | Path) -> dict:
    """The model config of a JSON file or of a full-model HDF5 file (``model_config``)."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if h5py.is_hdf5(path):
        with h5py.File(path, "r") as f:
            if "model_config" not in f.attrs:
                raise KerasImportError(f"{path}: an HDF5 file without a model config (a weights "
                                       "file?); give CONFIG_JSON WEIGHTS_H5")
            return parse_config(f.attrs["model_config"])
    try:
        return parse_config(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise KerasImportError(f"{path}: not a Keras model config ({e})") from e


def read_keras_weights(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """{layer name: {array name: array}} from a ``save_weights`` or ``save`` HDF5 file; the array
    name is the last part of the stored one ("batch_normalization_3/moving_mean:0" ->
    "moving_mean")."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if not h5py.is_hdf5(path):
        raise KerasImportError(f"{path}: not an HDF5 file")
    weights: dict[str, dict[str, np.ndarray]] = {}
    with h5py.File(path, "r") as f:
        root = f["model_weights"] if "model_weights" in f else f
        for layer in _attr_list(root, "layer_names"):
            group = root[layer]
            arrays: dict[str, np.ndarray] = {}
            for stored in _attr_list(group, "weight_names"):
                short = stored.rsplit("/", 1)[-1].split(":")[0]
                if short in arrays:
                    raise KerasImportError(f"{path}: layer {layer!r} has two arrays named "
                                           f"{short!r}")
                arrays[short] = np.asarray(group[stored])
            weights[layer] = arrays
    return weights


def build_graph(config: dict, weights: dict[str, dict[str, np.ndarray]],
                image_size: int | None = None) -> KerasGraph:
    """A KerasGraph for ``config`` filled with ``weights``, in eval mode."""
    graph = KerasGraph(config, image_size)
    graph.load_keras_weights(weights)
    return graph.eval()


def import_keras(config_path: str | Path, weights_path: str | Path | None, out: str | Path,
                 image_size: int | None = None) -> Path:
    """Import a Keras model (CONFIG_JSON + WEIGHTS_H5, or one MODEL.h5 with ``weights_path``
    None) and write a followme checkpoint to ``out``. ``image_size`` is needed only where the
    model's input has no fixed size. Nothing is written unless the import succeeds."""
    from followme.checkpoint import NORMALIZATION, save_checkpoint

    config = read_keras_config(config_path)
    weights = read_keras_weights(weights_path or config_path)
    graph = build_graph(config, weights, image_size)
    height, width = graph.image_size
    if height != width:
        raise KerasImportError(f"input {height}x{width}: followme needs a square input")
    channels = input_shape(next(layer for layer in config["config"]["layers"]
                                if layer["name"] == graph.input_name))[2]
    if channels != 3:
        raise KerasImportError(f"the input has {channels} channels; followme feeds RGB images")
    if len(graph.output_shape) != 4 or graph.output_shape[1] != 3:
        raise KerasImportError(f"output shape {graph.output_shape} (NCHW); followme needs "
                               "3 class channels (background, people, hero) per pixel")
    out = Path(out)
    save_checkpoint(out, {
        "model_name": f"keras:{graph.keras_name}",
        # image_size lets load_checkpoint rebuild inputs without a fixed size in the config
        "model_config": {"keras": config, "image_size": height},
        "image_size": height,
        # The course fed the Keras models (x / 255 - 0.5) * 2.
        "normalization": dict(NORMALIZATION),
        "model": graph.state_dict(),
        "keras_source": {"config": str(config_path), "weights": str(weights_path or config_path),
                         "keras_version": config.get("keras_version")},
    })
    return out


def cmd_import_keras(a: argparse.Namespace) -> int:
    """``followme import-keras``: a.files (one MODEL.h5, or CONFIG_JSON WEIGHTS_H5), a.out and
    a.image_size (or None)."""
    from followme.checkpoint import load_checkpoint

    if len(a.files) not in (1, 2):
        raise ValueError("import-keras takes CONFIG_JSON WEIGHTS_H5, or one MODEL.h5")
    config_path, weights_path = a.files if len(a.files) == 2 else (a.files[0], None)
    out = import_keras(config_path, weights_path, a.out, a.image_size)
    loaded = load_checkpoint(out)
    params = sum(p.numel() for p in loaded.model.state_dict().values())
    print(f"imported {loaded.name}: {len(loaded.model.steps)} layers, {params:,} parameters, "
          f"input {loaded.image_size}x{loaded.image_size} -> {out}")
    return 0
