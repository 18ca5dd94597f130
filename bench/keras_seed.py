"""The course's seed FCN in Keras on TensorFlow: training images per second on random batches.

Runs inside the benchmark's own environment (bench/requirements-keras.txt), started by
bench/train_throughput.py. The network is the notebook's: separable conv + BN encoders, a 1x1
conv + BN, bilinear-upsample + concat + separable conv + BN decoders, a 1x1 softmax head.
Prints one JSON line: {"images_per_s": ..., ...}.

    python bench/keras_seed.py --threads 2 --batch 32 --size 160 --steps 10
"""

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build(size: int):
    from tensorflow import keras
    from tensorflow.keras import layers

    def sep_bn(x, filters, strides=1):
        x = layers.SeparableConv2D(filters, 3, strides=strides, padding="same",
                                   activation="relu")(x)
        return layers.BatchNormalization()(x)

    def decoder(small, large, filters):
        up = layers.UpSampling2D(2, interpolation="bilinear")(small)
        return sep_bn(layers.Concatenate()([up, large]), filters)

    inputs = keras.Input((size, size, 3))
    e1 = sep_bn(inputs, 32, 2)
    e2 = sep_bn(e1, 64, 2)
    e3 = sep_bn(e2, 128, 2)
    mid = layers.BatchNormalization()(layers.Conv2D(256, 1, activation="relu")(e3))
    d1 = decoder(mid, e2, 128)
    d2 = decoder(d1, e1, 64)
    d3 = decoder(d2, inputs, 32)
    outputs = layers.Conv2D(3, 1, activation="softmax")(d3)
    return keras.Model(inputs, outputs)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--size", type=int, default=160)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--jit", choices=["auto", "on", "off"], default="auto")
    a = p.parse_args()

    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(a.threads)
    tf.config.threading.set_inter_op_parallelism_threads(a.threads)
    model = build(a.size)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3), loss="categorical_crossentropy",
                  jit_compile={"auto": "auto", "on": True, "off": False}[a.jit])
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (a.batch, a.size, a.size, 3)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, (a.batch, a.size, a.size))]
    for _ in range(a.warmup):
        model.train_on_batch(x, y)
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - t0)
    step = float(np.median(times))
    print(json.dumps({"images_per_s": a.batch / step, "median_step_s": step,
                      "tensorflow": tf.__version__, "keras": tf.keras.__version__,
                      "params": int(model.count_params()), "jit": a.jit,
                      "threads": a.threads}))


if __name__ == "__main__":
    main()
