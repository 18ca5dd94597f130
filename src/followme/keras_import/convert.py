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

The files may be hostile. The config's sizes are bounded (``graph.MAX_*``) and checked before
anything is allocated; the weights file is read only through hard links to plain datasets stored
in the file itself (no external storage, external or soft links, virtual datasets), each of the
shape the config asks for, checked before it is read. Every refusal is a ``KerasImportError``
(a ValueError) naming the file.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from followme.models.keras_graph import (
    MAX_LAYERS,
    MAX_PARAMS,
    KerasGraph,
    KerasImportError,
    check_nesting,
)

MAX_CONFIG_BYTES = 16 * 2**20  # a RoboND config is about 20 kB
MAX_WEIGHT_ARRAYS = 16  # per layer; Keras 2 layers have at most 4
MAX_CHUNK_BYTES = 2**20  # an HDF5 chunk may be bigger than its dataset only up to this

__all__ = ["KerasGraph", "KerasImportError", "build_graph", "import_keras",
           "read_keras_config", "read_keras_weights"]


def _decode(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:300]


def parse_config(text: str | bytes) -> dict:
    """A model config from JSON, also when it was dumped twice (a JSON string of the JSON)."""
    if len(text) > MAX_CONFIG_BYTES:
        raise KerasImportError(f"a config of {len(text):,} bytes; at most {MAX_CONFIG_BYTES:,} "
                               "are supported")
    try:
        config = json.loads(text)
        if isinstance(config, str):
            config = json.loads(config)
    except RecursionError as e:
        raise KerasImportError("the config is nested too deeply") from e
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        raise KerasImportError("not a Keras model config (no 'class_name'/'config')")
    check_nesting(config)
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
    try:
        if h5py.is_hdf5(path):
            with h5py.File(path, "r") as f:
                if "model_config" not in f.attrs:
                    raise KerasImportError(f"{path}: an HDF5 file without a model config (a "
                                           "weights file?); give CONFIG_JSON WEIGHTS_H5")
                text = f.attrs["model_config"]
                if not isinstance(text, str | bytes):
                    raise KerasImportError(f"{path}: its model_config attribute is not a string")
        else:
            if path.stat().st_size > MAX_CONFIG_BYTES:
                raise KerasImportError(f"{path}: {path.stat().st_size:,} bytes; a Keras config "
                                       f"of at most {MAX_CONFIG_BYTES:,} is supported")
            text = path.read_text()
        return parse_config(text)
    except KerasImportError as e:
        if str(e).startswith(f"{path}:"):
            raise
        raise KerasImportError(f"{path}: {e}") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise KerasImportError(f"{path}: not a Keras model config ({_one_line(e)})") from e
    except (OSError, RuntimeError) as e:  # h5py: truncated or damaged HDF5
        raise KerasImportError(f"{path}: cannot read it ({_one_line(e)})") from e


def _member(group, name: str, path: Path, kind):
    """``group[name]`` reached through hard links only (one per part of the name), and of type
    ``kind`` (h5py.Group or h5py.Dataset): a soft link could lead anywhere in the file, an
    external link into another file."""
    import h5py

    parts = name.split("/")
    if not name or any(part in ("", ".") for part in parts):
        raise KerasImportError(f"{path}: {name!r:.100} (in {group.name}) is not a relative "
                               "HDF5 path")
    obj = group
    for part in parts:
        key = part.encode()
        if not isinstance(obj, h5py.Group) or not obj.id.links.exists(key):
            raise KerasImportError(f"{path}: {group.name} has no {name!r:.100}")
        link = obj.id.links.get_info(key).type
        if link != h5py.h5l.TYPE_HARD:
            what = {h5py.h5l.TYPE_SOFT: "a soft link",
                    h5py.h5l.TYPE_EXTERNAL: "an external link"}.get(link, "a user-defined link")
            raise KerasImportError(f"{path}: {name!r:.100} (in {group.name}) is {what}; only "
                                   "arrays stored in the file itself are read")
        obj = obj[part]
    if not isinstance(obj, kind):
        raise KerasImportError(f"{path}: {name!r:.100} (in {group.name}) is not an HDF5 "
                               f"{kind.__name__.lower()}")
    return obj


def _check_dataset(ds, path: Path, name: str) -> tuple[int, ...]:
    """The declared shape of a weight dataset whose data lies in the file itself and is
    numbers."""
    where = f"{path}: dataset {name!r:.100} (in {ds.parent.name})"
    if ds.is_virtual:
        raise KerasImportError(f"{where} is a virtual dataset (its data is in other files); "
                               "only arrays stored in the file itself are read")
    if ds.external:
        raise KerasImportError(f"{where} has external storage (its data is in "
                               f"{ds.external[0][0]!r:.100}); only arrays stored in the file "
                               "itself are read")
    if ds.dtype.kind not in "fiu" or ds.dtype.shape or ds.dtype.itemsize > 8:
        raise KerasImportError(f"{where} holds {ds.dtype}, not numbers")
    if ds.shape is None:
        raise KerasImportError(f"{where} is empty (no dataspace)")
    # HDF5 decompresses whole chunks: a few values in one huge compressed chunk are a memory bomb
    if ds.chunks is not None:
        chunk = int(np.prod(ds.chunks, dtype=object)) * ds.dtype.itemsize
        data = int(np.prod(ds.shape, dtype=object)) * ds.dtype.itemsize
        if chunk > max(data, MAX_CHUNK_BYTES):
            raise KerasImportError(f"{where} is stored in chunks of {ds.chunks} ({chunk:,} "
                                   f"bytes), bigger than its data of shape {ds.shape}")
    return tuple(ds.shape)


def read_keras_weights(path: str | Path, expected: dict[str, dict[str, tuple]] | None = None
                       ) -> dict[str, dict[str, np.ndarray]]:
    """{layer name: {array name: array}} from a ``save_weights`` or ``save`` HDF5 file; the array
    name is the last part of the stored one ("batch_normalization_3/moving_mean:0" ->
    "moving_mean").

    ``expected`` ({layer: {array name: Keras shape}}, ``KerasGraph.keras_shapes``) is checked
    against each dataset's declared shape before it is read; arrays it does not name are not
    read (nor are the arrays of a layer whose names differ from it: they are left None, for
    ``KerasGraph.load_keras_weights`` to report). Without ``expected``, all
    arrays together may hold at most ``MAX_PARAMS`` values."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        if not h5py.is_hdf5(path):
            raise KerasImportError(f"{path}: not an HDF5 file")
        with h5py.File(path, "r") as f:
            return _read_weights(f, path, expected)
    except (OSError, RuntimeError) as e:  # h5py: a truncated or damaged file
        raise KerasImportError(f"{path}: cannot read it ({_one_line(e)})") from e


def _read_weights(f, path: Path, expected: dict[str, dict[str, tuple]] | None
                  ) -> dict[str, dict[str, np.ndarray | None]]:
    import h5py

    has_group = f.id.links.exists(b"model_weights")  # without following a link
    root = _member(f, "model_weights", path, h5py.Group) if has_group else f
    layers = _attr_list(root, "layer_names")
    if len(layers) > MAX_LAYERS:
        raise KerasImportError(f"{path}: {len(layers)} layers; at most {MAX_LAYERS} are "
                               "supported")
    weights: dict[str, dict[str, np.ndarray | None]] = {}
    total = 0
    for layer in layers:
        group = _member(root, layer, path, h5py.Group)
        stored_names = _attr_list(group, "weight_names")
        if len(stored_names) > MAX_WEIGHT_ARRAYS:
            raise KerasImportError(f"{path}: layer {layer!r:.100} has {len(stored_names)} "
                                   f"arrays; at most {MAX_WEIGHT_ARRAYS} are supported")
        found: dict[str, tuple] = {}  # short name: (stored name, dataset, declared shape)
        for stored in stored_names:
            short = stored.rsplit("/", 1)[-1].split(":")[0]
            if short in found:
                raise KerasImportError(f"{path}: layer {layer!r} has two arrays named "
                                       f"{short!r}")
            ds = _member(group, stored, path, h5py.Dataset)
            found[short] = (stored, ds, _check_dataset(ds, path, stored))
        wanted = None if expected is None else expected.get(layer, {})
        if wanted is not None and set(found) != set(wanted):
            # not read: KerasGraph.load_keras_weights names the stray or missing arrays
            weights[layer] = dict.fromkeys(found)
            continue
        arrays: dict[str, np.ndarray | None] = {}
        for short, (stored, ds, shape) in found.items():
            if wanted is not None and shape != tuple(wanted[short]):
                raise KerasImportError(f"{path}: layer {layer!r}: array {short!r} has shape "
                                       f"{shape}, which does not fit the layer's config (it "
                                       f"needs {tuple(wanted[short])})")
            if wanted is None:
                total += int(np.prod(shape, dtype=object))
                if total > MAX_PARAMS:
                    raise KerasImportError(f"{path}: dataset {stored!r} of shape {shape} "
                                           f"brings the weights to {total:,} values; at most "
                                           f"{MAX_PARAMS:,} are supported")
            arrays[short] = np.asarray(ds[()], dtype=np.float32)
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

    weights_path = weights_path or config_path
    config = read_keras_config(config_path)
    try:  # the sizes are checked before anything is allocated
        graph = KerasGraph(config, image_size)
        height, width = graph.image_size
        if height != width:
            raise KerasImportError(f"input {height}x{width}: followme needs a square input")
        if graph.input_channels != 3:
            raise KerasImportError(f"the input has {graph.input_channels} channels; followme "
                                   "feeds RGB images")
        if len(graph.output_shape) != 4 or graph.output_shape[1] != 3:
            raise KerasImportError(f"output shape {graph.output_shape} (NCHW); followme needs "
                                   "3 class channels (background, people, hero) per pixel")
    except KerasImportError as e:
        raise KerasImportError(f"{config_path}: {e}") from e
    weights = read_keras_weights(weights_path, graph.keras_shapes())
    try:
        graph.load_keras_weights(weights)
    except KerasImportError as e:
        raise KerasImportError(f"{weights_path}: {e}") from e
    graph.eval()
    out = Path(out)
    save_checkpoint(out, {
        "arch": "keras", "model_name": f"keras:{graph.keras_name}",
        # image_size lets load_checkpoint rebuild inputs without a fixed size in the config
        "model_config": {"keras": config, "image_size": height},
        "image_size": height,
        # The course fed the Keras models (x / 255 - 0.5) * 2.
        "normalization": dict(NORMALIZATION),
        "model": graph.state_dict(),
        "keras_source": {"config": str(config_path), "weights": str(weights_path),
                         "keras_version": config.get("keras_version")},
    })
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``followme import-keras``."""
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="CONFIG_JSON WEIGHTS_H5 (as model_tools.save_network wrote them), "
                        "or one MODEL.h5 holding both")
    p.add_argument("--out", required=True, metavar="CKPT")
    p.add_argument("--image-size", type=int,
                   help="only for a model whose input has no fixed size")


def run(a: argparse.Namespace) -> int:
    """``followme import-keras``: a.files (one MODEL.h5, or CONFIG_JSON WEIGHTS_H5), a.out and
    a.image_size (or None)."""
    from followme.checkpoint import load_checkpoint

    if len(a.files) not in (1, 2):
        raise ValueError("import-keras takes CONFIG_JSON WEIGHTS_H5, or one MODEL.h5")
    config_path, weights_path = a.files if len(a.files) == 2 else (a.files[0], None)
    out = import_keras(config_path, weights_path, a.out, a.image_size)
    try:
        loaded = load_checkpoint(out)
    except Exception:
        Path(out).unlink(missing_ok=True)  # a checkpoint that does not load is no import
        raise
    params = sum(p.numel() for p in loaded.model.state_dict().values())
    print(f"imported {loaded.name}: {len(loaded.model.steps)} layers, {params:,} parameters, "
          f"input {loaded.image_size}x{loaded.image_size} -> {out}")
    return 0
