"""``followme train --tensorboard DIR``: the run in TensorBoard (the ``[tensorboard]`` extra).

Per epoch: every figure of the epoch's row (train/ and val/ scalars: losses, learning rate,
images per second, the course figures) and, when it validated, the predictions on a few fixed
validation images (the hero tinted blue and other people green, the ``predict --overlay``
colours) beside their truth.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from followme.evaluation.grading import GradingSet
from followme.segment.frames import predict_probabilities
from followme.segment.predict import overlay

SAMPLES = 4


class TrainingBoard:
    def __init__(self, logdir: str, grading: GradingSet | None = None):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ModuleNotFoundError as e:
            raise ValueError("--tensorboard needs TensorBoard: pip install -e '.[tensorboard]'") \
                from e
        self.writer = SummaryWriter(logdir)
        self.images = self.truth = None
        if grading is not None:
            images, labels = [], []
            for arrays in grading.arrays:  # the first images with a hero, from each subset
                has_hero = np.flatnonzero(np.asarray(arrays.hero_pixels) > 3)[:SAMPLES // 2]
                images += [arrays.images[i] for i in has_hero]
                labels += [np.asarray(arrays.labels[i]) for i in has_hero]
            if images:
                self.images = np.stack(images[:SAMPLES])
                onehot = np.stack(labels[:SAMPLES])[..., None] == np.arange(3)
                self.truth = (onehot * 255).astype(np.uint8)

    def epoch(self, row: dict, model: nn.Module, device, normalization: dict) -> None:
        step = row["epoch"]
        for key, value in row.items():
            if key != "epoch" and isinstance(value, int | float) and not isinstance(value, bool):
                group = "val" if key.startswith("val_") else "train"
                self.writer.add_scalar(f"{group}/{key.removeprefix('val_')}", value, step)
        if self.images is not None and "val_loss" in row:
            predictions = predict_probabilities(model, self.images, normalization=normalization,
                                                device=device)
            model.train()
            panels = [np.concatenate([overlay(img, truth), overlay(img, pred)], 1)
                      for img, truth, pred in zip(self.images, self.truth, predictions,
                                                  strict=True)]
            self.writer.add_images("validation: truth | prediction", np.stack(panels), step,
                                   dataformats="NHWC")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
