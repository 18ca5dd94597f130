"""``followme data prepare``: raw QuadSim recordings -> the RoboND training layout.

A raw run folder ``RAW/<run>/`` holds ``cam1_<frame>.png`` (the RGB camera) and the label
renders ``cam2_<frame>.png``, ``cam3_<frame>.png``, ``cam4_<frame>.png``. The class of a pixel
is the argmin over (cam4 red - 1, cam2 red, cam3 red): background, other people, hero.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from followme.data.robond import labels_to_mask, read_image

log = logging.getLogger(__name__)
JPEG_QUALITY = 75  # PIL's default, which the course's imsave used


def labels_from_renders(cam2: np.ndarray, cam3: np.ndarray, cam4: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 label renders -> (H, W) class labels."""
    stack = np.stack([cam4[..., 0].astype(np.int16) - 1, cam2[..., 0], cam3[..., 0]])
    return stack.argmin(0).astype(np.uint8)


def raw_frames(raw: Path) -> list[tuple[str, Path]]:
    """(run name, cam1 file) for every frame of every run under ``raw``."""
    runs = sorted(d for d in raw.iterdir() if d.is_dir()) if raw.is_dir() else []
    if not runs:
        raise FileNotFoundError(f"{raw}: no run folders (expected RAW/<run>/cam1_*.png)")
    return [(run.name, f) for run in runs for f in sorted(run.glob("cam1_*.png"))]


def prepare(raw: str | Path, out: str | Path, progress: bool = True) -> int:
    """Convert every frame; returns the number written. Never overwrites: an existing target
    file is refused before anything is written."""
    raw, out = Path(raw), Path(out)
    frames = raw_frames(raw)
    plan = []
    for run, cam1 in frames:
        frame = cam1.stem.removeprefix("cam1_")
        renders = [cam1.with_name(f"cam{k}_{frame}.png") for k in (2, 3, 4)]
        missing = [r for r in renders if not r.exists()]
        if missing:
            log.warning("skipped %s: missing %s", cam1, ", ".join(m.name for m in missing))
            continue
        plan.append((cam1, renders, out / "images" / f"{run}_cam1_{frame}.jpeg",
                     out / "masks" / f"{run}_mask_{frame}.png"))
    clashes = [str(p) for *_, img, mask in plan for p in (img, mask) if p.exists()]
    if clashes:
        raise FileExistsError(f"{len(clashes)} file(s) already exist in {out}, e.g. "
                              f"{clashes[0]}; refusing to overwrite")
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    written = 0
    for cam1, renders, img_path, mask_path in tqdm(plan, desc="prepare", disable=not progress):
        try:
            rgb = read_image(cam1)
            labels = labels_from_renders(*(read_image(r) for r in renders))
        except ValueError as e:
            log.warning("skipped: %s", e)
            continue
        Image.fromarray(rgb).save(img_path, quality=JPEG_QUALITY)
        Image.fromarray(labels_to_mask(labels)).save(mask_path)
        written += 1
    return written
