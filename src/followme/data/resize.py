"""Resizing as the course did it: PIL's bilinear resize (scipy's old ``imresize``)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from followme.labels import HERO, NUM_CLASSES, PEOPLE


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (size, size, 3) uint8 with PIL bilinear, as the course resized inputs."""
    if image.shape[0] == size and image.shape[1] == size:
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))


def resize_truth(mask01: np.ndarray, height: int, width: int) -> np.ndarray:
    """A one-hot mask already clipped to {0, 1} (H, W, 3) uint8 -> (height, width, 3) uint8 {0, 1}.

    Clip first, then resize the 0/1 image with PIL bilinear: interpolated values round to 0 or 1.
    The course scored this way; resizing 0/255 and clipping afterwards gives other numbers.
    """
    if mask01.shape[:2] == (height, width):
        return mask01
    return np.asarray(Image.fromarray(mask01, "RGB").resize((width, height), Image.BILINEAR))


def labels_at_size(labels: np.ndarray, size: int) -> np.ndarray:
    """Class labels (H, W) -> (size, size) labels that agree with the scorer's resized truth:
    people where its people channel is on, hero where its hero channel is on."""
    onehot = (labels[..., None] == np.arange(NUM_CLASSES, dtype=labels.dtype)).astype(np.uint8)
    small = resize_truth(onehot, size, size)
    out = np.zeros((size, size), np.uint8)
    out[small[..., PEOPLE] > 0] = PEOPLE
    out[small[..., HERO] > 0] = HERO
    return out
