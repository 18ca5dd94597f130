"""Fit the tracker's appearance model, ``follower/assets/appearance.npz``, from simulated crops.

The follower flies the closed loop (the shipped sim model, in process) in look-alike worlds, where
3 to 5 people wear her clothes, and in the park. Every candidate its pipeline finds, the crops
the tracker will see, is named after the person standing where it was placed (within
``--near`` m, with no one else within twice that: a merged crop names no one). Linear
discriminant analysis of those crops (``appearance.fit``) gives the model; crops of other seeds
measure it: how alike a person's own crops are to her mean, and a look-alike's.

    python scripts/fit_appearance.py [--seeds 100-119] [--check-seeds 200-205] [--seconds 40]

About 15 minutes on a 2-core CPU. Seeds 0-9, the benchmark's and the tests', are left out.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from followme.atomic import write_atomic
from followme.follower import appearance
from followme.follower.config import FollowConfig
from followme.follower.quadsim import protocol
from followme.segment.segmenter import load_segmenter
from followme.sim.commands import default_model
from followme.sim.link import InProcessFollower
from followme.sim.loop import ClosedLoop, LoopSettings
from followme.sim.scenarios import scenario

SCENARIOS = ("lookalikes", "park")


def seeds(text: str) -> list[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def record(name: str, seed: int, seconds: float, segmenter, near: float
           ) -> tuple[list[np.ndarray], list[str]]:
    """The raw features of every candidate the follower saw, and whose they were."""
    config = FollowConfig()
    settings = scenario(name).adjust(LoopSettings(seconds=seconds, seed=seed, scenario=name))
    loop = ClosedLoop(settings)
    follower = InProcessFollower(segmenter, config)
    crops, names = [], []
    try:
        for _ in range(int(seconds * settings.camera_hz)):
            frame, fields = loop.capture()
            seen = protocol.camera_frame(protocol.parse_sensor_frame(fields, config.max_payload),
                                         config.frame_size, config.camera)
            result = follower.pipeline(seen)
            event = follower.tracker.update(result.candidates, seen.time)
            loop.answer(frame, [] if event is None else [event], result.mask)
            people = np.array([w.position for w in loop.world.people])
            for c in result.candidates:
                if c.appearance is None:
                    continue
                gaps = np.hypot(*(people - np.asarray(c.world[:2])).T)
                first, second = np.partition(gaps, 1)[:2] if len(gaps) > 1 else (gaps[0], np.inf)
                if first < near and second > 2 * near:
                    crops.append(c.appearance)
                    names.append(f"{name}/{seed}/{int(np.argmin(gaps))}")
            loop.advance(1.0 / settings.camera_hz)
    finally:
        loop.close()
    return crops, names


def collect(seed_list: list[int], seconds: float, segmenter, near: float, what: str,
            cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """The crops of these worlds, recorded once into ``cache`` and read back after."""
    if cache.is_file():
        with np.load(cache) as z:
            print(f"{what}: crops from {cache}")
            return z["crops"], z["names"]
    crops, names = [], []
    for name in SCENARIOS:
        for seed in tqdm(seed_list, desc=f"{what}: {name}", unit="world"):
            c, n = record(name, seed, seconds if name == "lookalikes" else seconds / 2,
                          segmenter, near)
            crops += c
            names += n
    cache.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(cache, lambda f: np.savez(f, crops=np.array(crops), names=np.array(names)))
    return np.array(crops), np.array(names)


def check(model: appearance.Appearance, crops: np.ndarray, names: np.ndarray) -> None:
    """Each hero-dressed person's mean look against their own crops and against the crops of
    the others dressed as she is in the same world."""
    z = model.embed(crops)
    own, others = [], []
    for person in np.unique(names):
        mine = names == person
        if mine.sum() < 10:
            continue
        mean = z[mine].mean(axis=0)
        world = np.char.rpartition(names, "/")[:, 0] == person.rpartition("/")[0]
        own += [appearance.similarity(mean, x) for x in z[mine]]
        others += [appearance.similarity(mean, x) for x in z[world & ~mine]]
    own, others = np.array(own), np.array(others)
    print(f"check: {len(own)} own crops, {len(others)} crops of others in the same world")
    for threshold in (1e-2, 1e-3, 1e-4):
        print(f"  similarity >= {threshold:g}: own {np.mean(own >= threshold):.1%}, "
              f"others {np.mean(others >= threshold):.1%}")
    print(f"  median similarity: own {np.median(own):.3f}, others {np.median(others):.2e}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", default="100-119", help="worlds to fit on, FIRST-LAST")
    p.add_argument("--check-seeds", default="200-205", help="worlds to measure on")
    p.add_argument("--seconds", type=float, default=40.0, help="simulated s per look-alike world")
    p.add_argument("--near", type=float, default=0.6, help="m from the person a crop names")
    p.add_argument("--dims", type=int, default=16)
    p.add_argument("--out", default=str(appearance.MODEL))
    p.add_argument("--force", action="store_true", help="replace an existing --out")
    p.add_argument("--crops", default="runs/fit_appearance", metavar="DIR",
                   help="where the recorded crops are kept, and read back on a rerun")
    a = p.parse_args()
    out = Path(a.out)
    if out.exists() and not a.force:
        print(f"fit_appearance: {out} exists; --force replaces it", file=sys.stderr)
        return 2
    segmenter = load_segmenter(default_model())
    cache = Path(a.crops)
    crops, names = collect(seeds(a.seeds), a.seconds, segmenter, a.near, "fit",
                           cache / f"fit_{a.seeds}_{a.seconds:g}s.npz")
    print(f"fit: {len(crops)} crops of {len(np.unique(names))} people")
    model = appearance.fit(crops, names, dims=a.dims)
    check_crops, check_names = collect(seeds(a.check_seeds), a.seconds, segmenter, a.near,
                                       "check", cache / f"check_{a.check_seeds}_{a.seconds:g}s.npz")
    check(model, check_crops, check_names)
    model.save(out)
    print(f"wrote {out} ({model.dims} dimensions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
