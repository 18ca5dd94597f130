"""``followme demo``: the whole job on a fresh machine, on its CPU, in about five minutes.

1. record a small sim dataset (patrol and follow frames) and a held-out grading split (other
   worlds), with ``sim record``;
2. fine-tune the start model (the shipped sim model, else the shipped RoboND model) on it for
   ``--train-minutes`` with ``followme train``'s loop;
3. score the start model and the fine-tuned one on the held-out split with the course formula;
   the better one flies;
4. follow the hero for ``--loop-minutes`` of simulated time among ``--people`` people with that
   model, and with the oracle (the true labels) for comparison;
5. print the figures and the paths of the videos and plots; OUT/<time>/demo.json keeps them.
"""

from __future__ import annotations

import argparse
import inspect
import json
import time
from datetime import datetime
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = {name: param.default for name, param in inspect.signature(demo).parameters.items()}
    p.add_argument("--out", default=d["out"], metavar="DIR",
                   help=f"each run writes DIR/<date-time>/ (default {d['out']})")
    p.add_argument("--train-frames", type=int, default=d["train_frames"], metavar="N",
                   help=f"sim frames to fine-tune on ({d['train_frames']})")
    p.add_argument("--grade-frames", type=int, default=d["grade_frames"], metavar="N",
                   help=f"sim frames recorded for the held-out grading split "
                        f"({d['grade_frames']})")
    p.add_argument("--train-minutes", type=float, default=d["train_minutes"], metavar="M",
                   help=f"minutes of fine-tuning, 0 to skip ({d['train_minutes']:g})")
    p.add_argument("--loop-minutes", type=float, default=d["loop_minutes"], metavar="M",
                   help=f"simulated minutes of closed-loop following ({d['loop_minutes']:g})")
    p.add_argument("--people", type=int, default=d["people"],
                   help=f"people besides the hero ({d['people']})")
    p.add_argument("--seed", type=int, default=d["seed"])
    p.add_argument("--no-oracle", action="store_true", help="skip the oracle's loop")
    p.add_argument("--view", type=int, default=d["view"], metavar="PORT",
                   help="the live page's port while it flies (default 0: any free one; its "
                        "address is printed)")
    p.add_argument("--video", default=d["video"], metavar="NAME",
                   help=f"video file name, .mp4 or .gif ({d['video']})")


class _Steps:
    def __init__(self, total: int):
        self.total, self.n, self.start = total, 0, time.perf_counter()

    def __call__(self, what: str) -> None:
        self.n += 1
        print(f"[{self.n}/{self.total} {self.elapsed():5.0f} s] {what}", flush=True)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


def demo(out: str | Path = "runs/demo", train_frames: int = 600, grade_frames: int = 300,
         train_minutes: float = 3.0, loop_minutes: float = 1.0, people: int = 20, seed: int = 0,
         oracle: bool = True, video: str | None = "follow.mp4", progress: bool = True,
         view: int | None = 0) -> dict:
    """Run the demo into a new folder under ``out``; returns what demo.json holds. ``view``:
    the port of the live page while it flies (0: any free one; None: no page)."""
    from followme.checkpoint import SHIPPED_MODEL, load_checkpoint
    from followme.evaluation.evaluate import evaluate
    from followme.segment.segmenter import load_segmenter
    from followme.sim.commands import default_model
    from followme.sim.loop import LoopSettings, OracleSegmenter
    from followme.sim.record import record
    from followme.sim.report import follow_to_files
    from followme.training import TrainConfig, train

    if train_frames < 1 or grade_frames < 1 or train_minutes < 0 or not loop_minutes > 0:
        raise ValueError("--train-frames and --grade-frames must be >= 1, --train-minutes >= 0 "
                         "and --loop-minutes > 0")
    run = Path(out) / datetime.now().strftime("%Y%m%d-%H%M%S")
    step = _Steps(5)
    result: dict = {"out": str(run)}
    scenario = {"scenario_frames": 100, "progress": progress}

    step(f"recording {train_frames} sim frames to train on and {grade_frames} held out")
    train_dir, grade_dir = run / "sim_train", run / "sim_grade"
    record(train_dir, train_frames, mode="mixed", seed=1000 + seed, **scenario)
    held_out = record(grade_dir, grade_frames, mode="mixed", seed=2000 + seed, grade=True,
                      **scenario)
    result["sim_data"] = {"train": str(train_dir), "grade": str(grade_dir),
                          "grade_subsets": held_out["written"]}

    start_model = default_model() or str(SHIPPED_MODEL)
    models = {f"start ({Path(start_model).name})": start_model}
    step(f"fine-tuning {Path(start_model).name} for {train_minutes:g} min on the CPU"
         if train_minutes else "fine-tuning skipped (--train-minutes 0)")
    if train_minutes:
        loaded = load_checkpoint(start_model)
        cfg = TrainConfig(train=str(train_dir), val=None, model=loaded.name,
                          out=str(run / "train"), minutes=train_minutes, lr=1e-3,
                          image_size=loaded.image_size, seed=seed, init=start_model)
        train(cfg)
        models[f"fine-tuned {train_minutes:g} min"] = str(run / "train" / "last.pt")
        result["training_plot"] = str(run / "train" / "loss.png")

    step("scoring on the held-out sim split (the course formula)")
    scores = {}
    for k, (name, path) in enumerate(models.items()):
        figures = evaluate(grade_dir, run / f"evaluate_{k}", model=path, progress=False)
        scores[name] = {key: figures[key] for key in ("final_score", "final_iou", "weight")}
        scores[name].update(model=path, samples=str(run / f"evaluate_{k}"))
    best = max(scores, key=lambda n: scores[n]["final_score"])
    result["scores"], result["flies"] = scores, best

    step(f"following for {loop_minutes:g} simulated min among {people} people: {best}"
         + (", then the oracle" if oracle else ""))
    settings = LoopSettings(seconds=60 * loop_minutes, people=people, seed=seed)
    runs = {"network": follow_to_files(settings, load_segmenter(models[best]), run / "follow",
                                       best, video=video, progress=progress, view=view,
                                       on_view=lambda line: print(f"  {line}", flush=True))}
    if oracle:
        runs["oracle"] = follow_to_files(settings, OracleSegmenter(), run / "follow_oracle",
                                         "oracle", video=video, progress=progress)
    result["loops"] = runs

    step("done")
    result["wall_s"] = round(step.elapsed(), 1)
    (run / "demo.json").write_text(json.dumps(result, indent=1))
    return result


def report(result: dict) -> str:
    """The demo's figures and files as text."""
    from followme.sim.report import figures_table

    lines = [f"followme demo: {result['wall_s']:.0f} s, everything in {result['out']}", "",
             "course score on the held-out sim split "
             f"({', '.join(f'{k} {v}' for k, v in result['sim_data']['grade_subsets'].items())}):",
             "", "| model | final_score | final_iou | weight |", "| --- | ---: | ---: | ---: |"]
    for name, s in result["scores"].items():
        lines.append(f"| {name} | {s['final_score']:.4f} | {s['final_iou']:.4f} | "
                     f"{s['weight']:.4f} |")
    loops = result["loops"]
    lines += ["", f"closed loop ({result['flies']} flies):", "",
              figures_table(loops), ""]
    for name, s in loops.items():
        for key in ("video", "frame", "plot"):
            if key in s:
                lines.append(f"{name} {key}: {s[key]}")
    if "training_plot" in result:
        lines.append(f"training curves: {result['training_plot']}")
    for name, s in result["scores"].items():
        lines.append(f"score pictures ({name}): {s['samples']}/<subset>_samples.png")
    lines.append(f"all figures: {result['out']}/demo.json")
    return "\n".join(lines)


def run(a: argparse.Namespace) -> int:
    result = demo(a.out, a.train_frames, a.grade_frames, a.train_minutes, a.loop_minutes,
                  a.people, a.seed, oracle=not a.no_oracle, video=a.video, view=a.view)
    print(report(result))
    return 0
