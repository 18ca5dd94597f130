"""The input sizes every model accepts."""

from __future__ import annotations

MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 16, 1024  # pixels a side, for every model
DEFAULT_IMAGE_SIZE = 160  # the course's input


def check_image_size(name: str, size, low: int) -> None:
    if not (isinstance(size, int) and not isinstance(size, bool)
            and low <= size <= MAX_IMAGE_SIZE):
        raise ValueError(f"{name} = {size!r:.40}: want an int in {low}..{MAX_IMAGE_SIZE}")
