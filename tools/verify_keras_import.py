"""Check ``followme import-keras`` against today's TensorFlow/Keras running the same model.

The reference side builds the architecture from the Keras config with Keras 3 layers (TensorFlow
"same" padding natively; the course's BilinearUpSampling2D as TF1 ``resize_bilinear``,
align_corners=False, half_pixel_centers=False), loads the HDF5 arrays by name with h5py and runs
the same inputs. It imports nothing from followme; the two sides run in their own environments:

    bench/.venv-keras/bin/python tools/verify_keras_import.py            # the reference model
    bench/.venv-keras/bin/python tools/verify_keras_import.py --synthetic

``--synthetic`` checks a small random model with every supported layer (stride-2 padding on even
sizes, Conv2DTranspose, MaxPooling2D, Reshape ...) instead. Prints ``max_abs_diff=<x>`` on the
probabilities and exits 1 when it is above --tol.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ROBOND = ROOT.parent / "shared" / "data" / "robond"


# --- followme side (main environment) ----------------------------------------------------------

def synthetic_model(rng: np.random.Generator) -> tuple[dict, dict]:
    """A 20x20 model using every supported layer, with random weights."""
    from followme.keras_import.writer import input_layer, keras_layer, model_config

    def conv(filters, k, cin, bias=True):
        return {"kernel": rng.normal(0, 0.3, (k, k, cin, filters)),
                **({"bias": rng.normal(0, 0.1, filters)} if bias else {})}

    def separable(filters, cin, multiplier=1):
        return {"depthwise_kernel": rng.normal(0, 0.3, (3, 3, cin, multiplier)),
                "pointwise_kernel": rng.normal(0, 0.3, (1, 1, cin * multiplier, filters)),
                "bias": rng.normal(0, 0.1, filters)}

    def bn(c):
        # stored in the order the reference model has them, not Keras' constructor order
        return {"beta": rng.normal(0, 0.1, c), "gamma": rng.uniform(0.5, 1.5, c),
                "moving_mean": rng.normal(0, 0.1, c), "moving_variance": rng.uniform(0.5, 1.5, c)}

    same = {"padding": "same", "data_format": "channels_last"}
    layers = [
        input_layer("input", 20, 20),
        keras_layer("Conv2D", "c1", ["input"], filters=8, kernel_size=[3, 3], strides=[2, 2],
                    activation="relu", **same),
        keras_layer("BatchNormalization", "bn1", ["c1"], axis=-1, epsilon=1e-3),
        keras_layer("SeparableConv2D", "s1", ["bn1"], filters=8, kernel_size=[3, 3],
                    strides=[2, 2], depth_multiplier=2, activation="relu", **same),
        keras_layer("MaxPooling2D", "mp", ["bn1"], pool_size=[3, 3], strides=[2, 2], **same),
        keras_layer("Add", "add", ["s1", "mp"]),
        keras_layer("Conv2DTranspose", "t1", ["add"], filters=8, kernel_size=[3, 3],
                    strides=[2, 2], activation="relu", **same),
        keras_layer("Conv2DTranspose", "t2", ["add"], filters=8, kernel_size=[4, 4],
                    strides=[2, 2], activation="linear", **same),
        keras_layer("UpSampling2D", "u1", ["add"], size=[2, 2], data_format="channels_last"),
        keras_layer("BilinearUpSampling2D", "b1", ["add"], size=[2, 2],
                    data_format="channels_last"),
        keras_layer("Concatenate", "cat", ["t1", "t2", "u1", "b1", "bn1"], axis=-1),
        keras_layer("Activation", "act", ["cat"], activation="tanh"),
        keras_layer("Dropout", "drop", ["act"], rate=0.5),
        keras_layer("SeparableConv2DKeras", "s2", ["drop"], filters=16, kernel_size=[3, 3],
                    strides=[1, 1], dilation_rate=[2, 2], activation="relu", **same),
        keras_layer("BilinearUpSampling2D", "b2", ["s2"], size=[2, 2],
                    data_format="channels_last"),
        keras_layer("Concatenate", "cat2", ["b2", "input"], axis=-1),
        keras_layer("Reshape", "r1", ["cat2"], target_shape=[400, 19]),
        keras_layer("BatchNormalization", "bn2", ["r1"], axis=-1, epsilon=1e-3),
        keras_layer("Reshape", "r2", ["bn2"], target_shape=[10, 40, 19]),
        keras_layer("Conv2D", "cv", ["r2"], filters=6, kernel_size=[3, 3], strides=[1, 1],
                    padding="valid", activation="elu"),
        keras_layer("Conv2D", "out", ["cv"], filters=3, kernel_size=[1, 1], strides=[1, 1],
                    activation="softmax", **same),
    ]
    weights = {"c1": conv(8, 3, 3), "bn1": bn(8), "s1": separable(8, 8, 2), "t1": conv(8, 3, 8),
               "t2": conv(8, 4, 8), "s2": separable(16, 40), "bn2": bn(19), "cv": conv(6, 3, 19),
               "out": conv(3, 1, 6)}
    return model_config(layers, "out", name="synthetic"), weights


def input_images(folder: Path, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """The first ``n`` images of ``folder`` resized as the course did, or random ones."""
    from PIL import Image

    from followme.data.resize import resize_image

    files = sorted(folder.glob("*.jpeg"))[:n] if folder.is_dir() else []
    if not files:
        print(f"no images in {folder}: random inputs", file=sys.stderr)
        return rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    return np.stack([resize_image(np.asarray(Image.open(f).convert("RGB")), size) for f in files])


def followme_side(work: Path, a: argparse.Namespace) -> None:
    import torch

    from followme.checkpoint import load_checkpoint
    from followme.keras_import.convert import import_keras
    from followme.keras_import.writer import save_network

    rng = np.random.default_rng(0)
    if a.synthetic:
        config, weights = synthetic_model(rng)
        paths = {"config": str(work / "config_synthetic"), "weights": str(work / "synthetic")}
        save_network(config, weights, paths["config"], paths["weights"])
    else:
        paths = {"config": str(a.model_dir / "config_model_weights"),
                 "weights": str(a.model_dir / "model_weights")}
    loaded = load_checkpoint(import_keras(paths["config"], paths["weights"], work / "model.pt"))
    images = input_images(a.images, a.n, loaded.image_size, rng)
    norm = loaded.normalization
    x = (images.astype(np.float32) * np.float32(norm["scale"]) + np.float32(norm["offset"]))
    with torch.inference_mode():
        probs = loaded.model(torch.from_numpy(x).permute(0, 3, 1, 2)).softmax(1)
    np.save(work / "inputs.npy", x)
    np.save(work / "followme_probs.npy", probs.permute(0, 2, 3, 1).numpy())
    (work / "paths.json").write_text(json.dumps(paths))


# --- Keras side (bench/.venv-keras) -------------------------------------------------------------

def keras_model(config: dict) -> tuple:
    """The functional model of a Keras 2 config, built with today's Keras layers."""
    import keras
    import tensorflow as tf
    from keras import layers

    class BilinearUpSampling2D(layers.Layer):
        def __init__(self, size, **kwargs):
            super().__init__(**kwargs)
            self.size = size

        def call(self, x):
            new = (x.shape[1] * self.size[0], x.shape[2] * self.size[1])
            return tf.compat.v1.image.resize_bilinear(x, new, align_corners=False,
                                                      half_pixel_centers=False)

    def conv_args(c):
        return dict(filters=c["filters"], kernel_size=c["kernel_size"], strides=c["strides"],
                    padding=c["padding"], activation=c["activation"],
                    use_bias=c.get("use_bias", True), name=c["name"])

    def separable(c):
        return layers.SeparableConv2D(depth_multiplier=c.get("depth_multiplier", 1),
                                      dilation_rate=c.get("dilation_rate", 1), **conv_args(c))

    make = {
        "Conv2D": lambda c: layers.Conv2D(dilation_rate=c.get("dilation_rate", 1),
                                          **conv_args(c)),
        "SeparableConv2D": separable,
        "SeparableConv2DKeras": separable,
        "Conv2DTranspose": lambda c: layers.Conv2DTranspose(**conv_args(c)),
        "BatchNormalization": lambda c: layers.BatchNormalization(
            axis=c["axis"], epsilon=c["epsilon"], center=c.get("center", True),
            scale=c.get("scale", True), name=c["name"]),
        "BilinearUpSampling2D": lambda c: BilinearUpSampling2D(tuple(c["size"]), name=c["name"]),
        "UpSampling2D": lambda c: layers.UpSampling2D(c["size"], name=c["name"]),
        "MaxPooling2D": lambda c: layers.MaxPooling2D(c["pool_size"], c["strides"], c["padding"],
                                                      name=c["name"]),
        "Concatenate": lambda c: layers.Concatenate(c["axis"], name=c["name"]),
        "Add": lambda c: layers.Add(name=c["name"]),
        "Activation": lambda c: layers.Activation(c["activation"], name=c["name"]),
        "Dropout": lambda c: layers.Dropout(c["rate"], name=c["name"]),
        "Reshape": lambda c: layers.Reshape(c["target_shape"], name=c["name"]),
    }
    tensors, built = {}, {}
    for layer in config["config"]["layers"]:
        c = layer["config"]
        if layer["class_name"] == "InputLayer":
            tensors[layer["name"]] = keras.Input(c["batch_input_shape"][1:], name=layer["name"])
            continue
        inputs = [tensors[node[0]] for node in layer["inbound_nodes"][0]]
        built[layer["name"]] = make[layer["class_name"]](c)
        tensors[layer["name"]] = built[layer["name"]](inputs if len(inputs) > 1 else inputs[0])
    ends = config["config"]
    model = keras.Model(tensors[ends["input_layers"][0][0]], tensors[ends["output_layers"][0][0]])
    return model, built


def load_weights_by_name(built: dict, path: str) -> None:
    import h5py

    with h5py.File(path, "r") as f:
        root = f["model_weights"] if "model_weights" in f else f
        for name in (n.decode() for n in root.attrs["layer_names"]):
            group = root[name]
            stored = {s.decode().rsplit("/", 1)[-1].split(":")[0]: group[s.decode()][()]
                      for s in group.attrs["weight_names"]}
            variables = built[name].weights if name in built else []
            assert sorted(v.name for v in variables) == sorted(stored), (name, stored.keys())
            for v in variables:
                v.assign(stored[v.name])


def keras_side(work: Path) -> None:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    paths = json.loads((work / "paths.json").read_text())
    config = json.loads(Path(paths["config"]).read_text())
    config = json.loads(config) if isinstance(config, str) else config
    model, built = keras_model(config)
    load_weights_by_name(built, paths["weights"])
    x = np.load(work / "inputs.npy")
    probs = np.concatenate([model(x[i:i + 8], training=False).numpy()
                            for i in range(0, len(x), 8)])
    np.save(work / "keras_probs.npy", probs)
    print(f"tensorflow {tf.__version__}, keras {tf.keras.__version__}", file=sys.stderr)


# --- both --------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model-dir", type=Path, default=ROBOND / "reference_model")
    p.add_argument("--images", type=Path, default=ROBOND / "validation" / "images")
    p.add_argument("-n", type=int, default=32, help="how many images")
    p.add_argument("--synthetic", action="store_true", help="a random model of every layer")
    p.add_argument("--tol", type=float, default=1e-4)
    p.add_argument("--main-python", default=str(ROOT / ".venv" / "bin" / "python"))
    p.add_argument("--keras-python", default=str(ROOT / "bench" / ".venv-keras" / "bin" / "python"))
    p.add_argument("--side", choices=["followme", "keras"], help=argparse.SUPPRESS)
    p.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.side == "followme":
        followme_side(a.work, a)
        return 0
    if a.side == "keras":
        keras_side(a.work)
        return 0

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT / "src")}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        forwarded = [str(v) for v in (argv if argv is not None else sys.argv[1:])]
        for python, side in ((a.main_python, "followme"), (a.keras_python, "keras")):
            subprocess.run([python, __file__, *forwarded, "--side", side, "--work", str(work)],
                           check=True, env=env)
        ours, ref = np.load(work / "followme_probs.npy"), np.load(work / "keras_probs.npy")
    if ours.shape != ref.shape:
        print(f"shape mismatch: followme {ours.shape}, keras {ref.shape}")
        return 1
    diff = np.abs(ours.astype(np.float64) - ref)
    hero_flips = int(((ours[..., 2] > 0.5) != (ref[..., 2] > 0.5)).sum())
    print(f"{'synthetic model' if a.synthetic else a.model_dir}: {len(ours)} inputs, "
          f"probabilities {ours.shape[1:]}, mean |diff| {diff.mean():.3g}, "
          f"hero pixels that flip at 0.5: {hero_flips}")
    print(f"max_abs_diff={diff.max():.3g}")
    return 0 if diff.max() <= a.tol else 1


if __name__ == "__main__":
    sys.exit(main())
