"""``followme sim record``: fly the quad through seeded scenarios and write what its camera sees
in the RoboND layout.

Frame i of a recording belongs to scenario ``i // scenario_frames``; each scenario is a new
world (layout, crowd of 10 to 40, lighting) seeded by (seed, scenario), so any frame can be
recreated. Between saved frames the world and the quad advance ``interval`` seconds.

Modes: ``patrol`` flies waypoints at 5 to 15 m with the camera pitched down; ``follow`` keeps
the quad behind the hero using the hero's true position (``GroundTruthFollow``: for recording
data only; the real follower works from the segmentation); ``mixed`` alternates the two, so the
hero is seen from close, from afar, and not at all.

Layout: ``OUT/images/<seed>_run<scenario>cam1_<frame>.jpeg`` with
``OUT/masks/<seed>_run<scenario>_mask_<frame>.png`` (one-hot RGB: red background, green people,
blue hero); with ``grade`` instead ``OUT/<subset>/images|masks`` for the three grading subsets,
chosen by the rule of the course's validation_grade (``grade_subset``), and frames that fit none
are dropped. ``OUT/poses.tsv`` lists each written frame with QuadSim's pose and gimbal_pose
strings, and ``OUT/record.json`` the settings and progress, which ``resume`` continues from.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from followme.atomic import write_text_atomic
from followme.data.robond import labels_to_mask
from followme.evaluation.grading import subset_by_rule
from followme.evaluation.score import SUBSETS
from followme.follower.geometry import look_angles
from followme.labels import HERO, NUM_CLASSES, PEOPLE
from followme.sim.camera import Frame, encode_depth, render
from followme.sim.quad import Patrol, Quad, patrol_route
from followme.sim.world import World

log = logging.getLogger(__name__)

MODES = ("patrol", "follow", "mixed")
SIM_DT = 0.1            # s, one world/quad step
HERO_CHEST = 1.0        # m above the ground: where the follow camera aims
MANIFEST = "record.json"
POSES = "poses.tsv"


@dataclass(frozen=True)
class RecordSettings:
    """Everything that fixes a recording's frames (saved in record.json; resume must match)."""

    mode: str = "mixed"
    seed: int = 0
    grade: bool = False
    interval: float = 0.5         # s of simulated time between saved frames
    scenario_frames: int = 200    # saved frames per world
    people: tuple[int, int] = (10, 40)
    world_size: float = 80.0      # m
    depth: bool = False

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode {self.mode!r}: choose one of {', '.join(MODES)}")
        if not self.interval >= SIM_DT:
            raise ValueError(f"interval must be at least {SIM_DT} s")
        if self.scenario_frames < 1 or not 0 <= self.people[0] <= self.people[1]:
            raise ValueError("scenario_frames must be >= 1 and people a range MIN <= MAX")


def grade_subset(labels: np.ndarray) -> str | None:
    """The grading subset of a frame (H, W labels) by ``grading.subset_by_rule``, as
    validation_grade was made; None when it fits none."""
    k = int(subset_by_rule(np.bincount(labels.ravel(), minlength=NUM_CLASSES)[None])[0])
    return SUBSETS[k] if k >= 0 else None


@dataclass
class GroundTruthFollow:
    """Data-recording stand-in for follow mode: flies to ``distance`` m behind the hero (turned
    ``bearing`` degrees off straight behind) at ``height`` m, facing it, camera on its chest,
    from the hero's true position. No perception is involved."""

    distance: float = 3.0
    height: float = 2.5
    bearing: float = 0.0

    def goal(self, world: World) -> np.ndarray:
        hero = world.hero
        angle = hero.heading + math.pi + math.radians(self.bearing)
        back = np.array([math.cos(angle), math.sin(angle), 0.0])
        return hero.position3 + self.distance * back + np.array([0.0, 0.0, self.height])

    def place(self, quad: Quad, world: World) -> None:
        """Put the quad at its goal at once, camera aimed (the first frame of a scenario)."""
        quad.position = self.goal(world)
        quad.velocity = np.zeros(3)
        target = world.hero.position3 + [0.0, 0.0, HERO_CHEST]
        _, quad.yaw = look_angles(quad.position, target)
        quad.gimbal_pitch, quad.gimbal_yaw = look_angles(quad.camera_position, target)

    def step(self, quad: Quad, world: World, dt: float) -> None:
        target = world.hero.position3 + [0.0, 0.0, HERO_CHEST]
        quad.fly_towards(self.goal(world), dt, yaw=look_angles(quad.position, target)[1])
        quad.point_gimbal_at(target, dt)


class Scenario:
    """One world with its quad and the mode director that decides patrol or follow per step."""

    def __init__(self, settings: RecordSettings, index: int):
        rng = np.random.default_rng(np.random.SeedSequence([settings.seed, index]))
        n_people = int(rng.integers(settings.people[0], settings.people[1] + 1))
        self.world = World(seed=int(rng.integers(2 ** 31)), n_people=n_people,
                           size=settings.world_size)
        self.rng = rng
        self.mode = settings.mode
        route = patrol_route(rng, self.world.nodes, n=6)
        self.patrol = Patrol(route, camera_pitch=float(rng.uniform(25, 70)),
                             sweep=float(rng.uniform(0, 45)))
        self.quad = Quad(position=route[-1].copy())
        self.follow = self._new_follow()
        self.following = settings.mode == "follow" or (settings.mode == "mixed"
                                                       and bool(rng.random() < 0.5))
        self.segment_left = self._segment_length()
        if self.following:
            self.follow.place(self.quad, self.world)

    def _new_follow(self) -> GroundTruthFollow:
        r = self.rng
        return GroundTruthFollow(distance=float(r.uniform(2.5, 4.0)),
                                 height=float(r.uniform(2.0, 3.5)),
                                 bearing=float(r.uniform(-30, 30)))

    def _segment_length(self) -> float:
        return float(self.rng.uniform(10, 30))   # s of one mode in ``mixed``

    def step(self, dt: float) -> None:
        if self.mode == "mixed":
            self.segment_left -= dt
            if self.segment_left <= 0:
                self.following = not self.following
                self.segment_left = self._segment_length()
                self.follow = self._new_follow()
        self.world.step(dt)
        if self.following:
            self.follow.step(self.quad, self.world, dt)
        else:
            self.patrol.step(self.quad, dt)

    def render(self) -> Frame:
        return render(self.world, self.quad.gimbal_pose(), self.quad.pose())

    def close(self) -> None:
        self.world.close()


def _write_json(path: Path, data: dict) -> None:
    write_text_atomic(path, json.dumps(data, indent=1))


def _start(out: Path, settings: RecordSettings, resume: bool) -> int:
    """Check ``out`` and return the first frame to record."""
    manifest = out / MANIFEST
    if not (out.is_dir() and any(out.iterdir())):
        out.mkdir(parents=True, exist_ok=True)
        return 0
    if not resume:
        raise FileExistsError(f"{out} is not empty: pass --resume to continue the recording in "
                              "it, or choose a new or empty --out folder")
    if not manifest.exists():
        raise FileExistsError(f"{out} is not empty and has no {MANIFEST} of `followme sim "
                              "record` to resume from: choose a new or empty --out folder")
    saved = json.loads(manifest.read_text())
    wanted = json.loads(json.dumps(asdict(settings)))
    differ = sorted(k for k in wanted if saved["settings"].get(k) != wanted[k])
    if differ:
        raise ValueError(f"{out} was recorded with other settings ("
                         + ", ".join(f"{k}={saved['settings'].get(k)!r}" for k in differ)
                         + "): resume with the same ones, or choose another --out folder")
    start = int(saved["frames_done"])
    poses = out / POSES
    if poses.exists():   # drop lines of frames written after the last saved progress
        lines = poses.read_text().splitlines(keepends=True)
        kept = [ln for ln in lines if ln.startswith("#")
                or int(ln.split("\t")[0].rsplit("_", 1)[1]) < start]
        poses.write_text("".join(kept))
    return start


def _save(frame: Frame, out: Path, name: tuple[str, str], depth: bool) -> None:
    image_name, mask_name = name
    Image.fromarray(frame.rgb).save(out / "images" / f"{image_name}.jpeg", quality=95)
    Image.fromarray(labels_to_mask(frame.labels)).save(out / "masks" / f"{mask_name}.png")
    if depth:
        (out / "depth").mkdir(exist_ok=True)
        Image.fromarray(encode_depth(frame.depth)).save(out / "depth" / f"{image_name}.png")


def record(out: str | Path, frames: int, mode: str = "mixed", seed: int = 0,
           grade: bool = False, resume: bool = False, progress: bool = True,
           **settings) -> dict:
    """Record frames 0 .. ``frames`` - 1 into ``out`` (see the module docstring).

    Refuses a non-empty ``out`` unless ``resume``, which continues a recording made with the
    same settings. ``settings`` are further ``RecordSettings`` fields. Returns a summary:
    frames recorded now, pairs written per folder, frames dropped by ``grade``.
    """
    cfg = RecordSettings(mode=mode, seed=seed, grade=grade, **settings)
    out = Path(out)
    start = _start(out, cfg, resume)
    written = {s: 0 for s in (SUBSETS if grade else ("all",))}
    summary = {"out": str(out), "from_frame": start, "frames": 0, "written": written,
               "dropped": 0}
    if start >= frames:
        return summary
    for folder in [out / s for s in SUBSETS] if grade else [out]:
        for sub in ("images", "masks"):   # all three subsets exist, as evaluate expects
            (folder / sub).mkdir(parents=True, exist_ok=True)
    _write_json(out / MANIFEST, {"settings": asdict(cfg), "frames_done": start})
    steps = int(round(cfg.interval / SIM_DT))
    poses = out / POSES
    if not poses.exists():
        poses.write_text("# image\tsubset\tpose\tgimbal_pose\thero_pixels\tpeople_pixels\n")
    scenario, scenario_index = None, -1
    bar = tqdm(total=frames, initial=start, unit="frame", disable=not progress,
               desc=f"sim record {mode}")
    try:
        i = start - start % cfg.scenario_frames   # replay the scenario up to ``start``
        while i < frames:
            if i // cfg.scenario_frames != scenario_index:
                if scenario is not None:
                    scenario.close()
                scenario_index = i // cfg.scenario_frames
                scenario = Scenario(cfg, scenario_index)
            if i >= start:
                frame = scenario.render()
                subset = grade_subset(frame.labels) if grade else "all"
                stem = f"{seed}_run{scenario_index}"
                name = (f"{stem}cam1_{i:05d}", f"{stem}_mask_{i:05d}")
                if subset is None:
                    summary["dropped"] += 1
                else:
                    _save(frame, out / subset if grade else out, name, cfg.depth)
                    written[subset] += 1
                    with poses.open("a") as f:
                        f.write("\t".join([name[0], subset, frame.quad_pose.to_string(),
                                           frame.gimbal_pose.to_string(),
                                           str(int((frame.labels == HERO).sum())),
                                           str(int((frame.labels == PEOPLE).sum()))]) + "\n")
                summary["frames"] += 1
                _write_json(out / MANIFEST, {"settings": asdict(cfg), "frames_done": i + 1})
                bar.update(1)
            for _ in range(steps):
                scenario.step(SIM_DT)
            i += 1
    finally:
        bar.close()
        if scenario is not None:
            scenario.close()
    return summary


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``followme sim record``."""
    defaults = RecordSettings()
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--frames", type=int, required=True, metavar="N")
    p.add_argument("--mode", choices=MODES, default=defaults.mode)
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--grade", action="store_true",
                   help="write following_images/, patrol_with_targ/, patrol_non_targ/ by hero size")
    p.add_argument("--resume", action="store_true",
                   help="continue the recording in a non-empty DIR (same settings)")
    p.add_argument("--interval", type=float,
                   help=f"simulated seconds between frames ({defaults.interval:g})")
    p.add_argument("--scenario-frames", type=int, metavar="N",
                   help=f"frames per world ({defaults.scenario_frames})")
    p.add_argument("--people", type=int, nargs=2, metavar=("MIN", "MAX"),
                   help="crowd size per world ({} {})".format(*defaults.people))
    p.add_argument("--depth", action="store_true", help="also write depth/*.png as QuadSim does")


def run(args: argparse.Namespace) -> int:
    extra = {k: getattr(args, k) for k in ("interval", "scenario_frames", "depth")
             if getattr(args, k, None) is not None}
    if getattr(args, "people", None) is not None:
        extra["people"] = tuple(args.people)
    summary = record(args.out, args.frames, mode=args.mode, seed=args.seed, grade=args.grade,
                     resume=args.resume, **extra)
    folders = ", ".join(f"{k} {v}" for k, v in summary["written"].items())
    dropped = f"; {summary['dropped']} fitted no grading subset" if args.grade else ""
    print(f"recorded {summary['frames']} frames from frame {summary['from_frame']} into "
          f"{summary['out']}: {folders}{dropped}")
    return 0
