"""``followme data prepare``: raw QuadSim recordings -> the RoboND training layout.

QuadSim records a run into ``<run>/IMG/`` (``RecordingController.cs``): ``cam1_<frame>.png``,
the RGB camera, and three label renders, each the depth of one layer only (255 where empty,
nearer is darker): ``cam2_`` other people, ``cam3_`` the hero, ``cam4_`` the environment. The
course kept runs as ``raw_sim_data/{train,validation}/<run>/IMG/`` and converted them with
``preprocess_ims.py``, which this module follows:

- RAW may be one run, a folder of runs, or a folder of splits of runs (``train/``,
  ``validation/``, any names); a split's output goes to ``OUT/<split>/``, else to ``OUT/``.
  A run's frames are the ``cam1_*.png`` in its subfolders (the course's ``<run>/*/*.png``) or,
  for a folder that holds them itself, right there.
- Names carry a fold id (the run's index, over every run found, in sorted order) and the run's
  name, so that runs and splits never collide: ``images/<fold>_<run>_cam1_<frame>.jpeg`` and
  ``masks/<fold>_<run>_mask_<frame>.png`` (the course's names since its 9ce9ae4).
- A pixel's class is the nearest layer: argmin over (cam4 - 1, cam2, cam3), red channel, in
  uint8 as the course computed it (so cam4 = 0 wraps to 255): background, other people, hero.
- Images are JPEG at quality 75 (the course's ``imsave``), masks one-hot RGB PNG, no resizing.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from followme.data.robond import labels_to_mask, read_image

log = logging.getLogger(__name__)
JPEG_QUALITY = 75  # PIL's default, which the course's imsave used
LAYOUT = ("expected QuadSim recordings: RAW/<run>/IMG/cam1_*.png (with cam2_, cam3_, cam4_), "
          "or RAW/<split>/<run>/IMG/cam1_*.png as the course's raw_sim_data")


def labels_from_renders(cam2: np.ndarray, cam3: np.ndarray, cam4: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 label renders -> (H, W) class labels, as ``preprocess_ims.py``."""
    stack = np.stack([cam4[..., 0] - np.uint8(1), cam2[..., 0], cam3[..., 0]])
    return stack.argmin(0).astype(np.uint8)


@dataclass(frozen=True)
class Run:
    split: str  # "" when RAW is not split
    name: str
    cam1: tuple[Path, ...]


def _cam1_files(folder: Path) -> list[Path]:
    here = sorted(folder.glob("cam1_*.png"))
    return here or sorted(folder.glob("*/cam1_*.png"))


def find_runs(raw: Path) -> list[Run]:
    """Every run under ``raw`` with at least one cam1 frame, sorted by (split, run)."""
    if not raw.is_dir():
        raise FileNotFoundError(f"{raw}: not a folder; {LAYOUT}")
    if _cam1_files(raw):
        return [Run("", raw.resolve().name, tuple(_cam1_files(raw)))]
    runs = []
    for child in sorted(d for d in raw.iterdir() if d.is_dir()):
        if files := _cam1_files(child):
            runs.append(Run("", child.name, tuple(files)))
            continue
        for run in sorted(d for d in child.iterdir() if d.is_dir()):
            if files := _cam1_files(run):
                runs.append(Run(child.name, run.name, tuple(files)))
    if not runs:
        raise FileNotFoundError(f"{raw}: no cam1_*.png found; {LAYOUT}")
    return runs


def plan_frames(runs: list[Run], out: Path) -> list[tuple[Path, list[Path], Path, Path]]:
    """(cam1, [cam2, cam3, cam4], image out, mask out) for every complete frame."""
    plan = []
    for fold, run in enumerate(runs):
        target = out / run.split if run.split else out
        for cam1 in run.cam1:
            frame = cam1.stem.removeprefix("cam1_")
            renders = [cam1.with_name(f"cam{k}_{frame}.png") for k in (2, 3, 4)]
            missing = [r.name for r in renders if not r.exists()]
            if missing:
                log.warning("skipped %s: missing %s", cam1, ", ".join(missing))
                continue
            stem = f"{fold}_{run.name}"
            plan.append((cam1, renders, target / "images" / f"{stem}_cam1_{frame}.jpeg",
                         target / "masks" / f"{stem}_mask_{frame}.png"))
    return plan


def prepare(raw: str | Path, out: str | Path, progress: bool = True) -> dict[str, int]:
    """Convert every frame; returns the pairs written per output folder. Never overwrites: an
    existing target file is refused before anything is written."""
    raw, out = Path(raw), Path(out)
    plan = plan_frames(find_runs(raw), out)
    if not plan:
        raise FileNotFoundError(f"{raw}: no frame has all of cam1_, cam2_, cam3_ and cam4_")
    clashes = [str(p) for *_, img, mask in plan for p in (img, mask) if p.exists()]
    if clashes:
        raise FileExistsError(f"{len(clashes)} file(s) already exist in {out}, e.g. "
                              f"{clashes[0]}; refusing to overwrite")
    written: dict[str, int] = {}
    for cam1, renders, img_path, mask_path in tqdm(plan, desc="prepare", unit="frame",
                                                    disable=not progress):
        try:
            rgb = read_image(cam1)
            label_renders = [read_image(r) for r in renders]
            if any(r.shape != rgb.shape for r in label_renders):
                raise ValueError(f"{cam1}: its label renders differ in size from it")
            labels = labels_from_renders(*label_renders)
        except ValueError as e:
            log.warning("skipped: %s", e)
            continue
        img_path.parent.mkdir(parents=True, exist_ok=True)
        mask_path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgb).save(img_path, quality=JPEG_QUALITY)
        Image.fromarray(labels_to_mask(labels)).save(mask_path)
        folder = str(img_path.parent.parent)
        written[folder] = written.get(folder, 0) + 1
    return written


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``followme data prepare RAW OUT``."""
    p.add_argument("raw", metavar="RAW")
    p.add_argument("out", metavar="OUT")


def run(a: argparse.Namespace) -> int:
    written = prepare(a.raw, a.out)
    for folder, n in written.items():
        print(f"wrote {n} image/mask pairs to {folder}")
    if not written:
        print(f"{a.raw}: no frame could be read (see the warnings above)")
        return 1
    return 0
