"""Folders of camera images -> prediction PNGs (softmax x 255, as the course wrote them) and
optional overlays."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from followme.checkpoint import LoadedModel
from followme.data.resize import resize_image
from followme.data.robond import IMAGE_SUFFIXES, DataError, read_image
from followme.labels import ON_ABOVE
from followme.segment.frames import predict_probabilities

log = logging.getLogger(__name__)

HERO_TINT = np.array([0, 0, 255], np.float32)
PEOPLE_TINT = np.array([0, 255, 0], np.float32)


def image_files(folder: str | Path) -> list[Path]:
    """Images in ``folder``, or in ``folder/images`` for a RoboND folder."""
    folder = Path(folder)
    if (folder / "images").is_dir():
        folder = folder / "images"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder of images")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
                  and not p.stem.endswith(("_prediction", "_overlay")))


def overlay(image: np.ndarray, prediction: np.ndarray, strength: float = 0.6) -> np.ndarray:
    """Tint the hero blue and other people green. image (S, S, 3) uint8, prediction likewise."""
    out = image.astype(np.float32)
    for channel, tint in ((2, HERO_TINT), (1, PEOPLE_TINT)):
        on = prediction[..., channel] > ON_ABOVE
        out[on] = out[on] * (1 - strength) + tint * strength
    return out.astype(np.uint8)


def predict_folder(loaded: LoadedModel, images: str | Path, out: str | Path,
                   overlays: bool = False, batch_size: int = 32, progress: bool = True,
                   device: str = "cpu", files: list[Path] | None = None,
                   skip_bad: bool = True) -> list[Path]:
    """Write ``<stem>_prediction.png`` (and ``<stem>_overlay.png``) for every image in ``images``
    (or for ``files`` only). An unreadable image is named in a warning and skipped (refused at
    the end, after the others, unless ``skip_bad``). Two images that would write one
    prediction (``X.jpeg`` and ``X.png``) are refused."""
    files = image_files(images) if files is None else files
    stems: dict[str, list[Path]] = {}
    for f in files:
        stems.setdefault(f.stem.lower(), []).append(f)
    clashes = [g for g in stems.values() if len(g) > 1]
    if clashes:
        raise DataError([f"{', '.join(map(str, g))}: would write one {g[0].stem}_prediction.png"
                         for g in clashes])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    size = loaded.image_size
    written, bad = [], []
    model = loaded.model.to(device)
    bar = tqdm(total=len(files), desc=f"predict {Path(images).name}", unit="img",
               disable=not progress)
    for start in range(0, len(files), batch_size):
        chunk, frames = [], []
        for f in files[start:start + batch_size]:
            try:
                frames.append(resize_image(read_image(f), size))
                chunk.append(f)
            except ValueError as e:
                bad.append(str(e))
                if skip_bad:
                    log.warning("skipped: %s", e)
        if frames:
            probs = predict_probabilities(model, np.stack(frames), batch_size,
                                          loaded.normalization, device)
            for f, frame, p in zip(chunk, frames, probs, strict=True):
                path = out / f"{f.stem}_prediction.png"
                Image.fromarray(p).save(path)
                written.append(path)
                if overlays:
                    Image.fromarray(overlay(frame, p)).save(out / f"{f.stem}_overlay.png")
        bar.update(len(files[start:start + batch_size]))
    bar.close()
    if bad and not skip_bad:
        raise DataError(bad)
    skipped = len(files) - len(written)
    if skipped:
        log.warning("%s: skipped %d unreadable image(s)", images, skipped)
    return written


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``followme predict --model CKPT --images DIR --out DIR [--overlay]``."""
    p.add_argument("--model", metavar="CKPT", help="default: the shipped model")
    p.add_argument("--images", required=True, metavar="DIR")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--overlay", action="store_true", help="also write tinted overlays")


def run(a: argparse.Namespace) -> int:
    from followme.checkpoint import load_checkpoint

    written = predict_folder(load_checkpoint(a.model), a.images, a.out, overlays=a.overlay)
    print(f"wrote {len(written)} predictions to {a.out}")
    return 0
