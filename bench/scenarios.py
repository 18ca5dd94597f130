"""Every closed-loop scenario, on several seeds: one row per run, then one per scenario.

Runs ``followme sim follow --scenario S --seed N --minutes M --no-video`` in process (the
shipped sim model, and with ``--followers network oracle`` the true masks beside it) and
prints, per run, the issue's figures: hero in view, within 2-6 m, losses, the longest time from
her being back in view to her re-acquisition, identity switches and wrong-person frames. Then
the worst of each scenario over its seeds, against the targets of issue 16. Rows are also
written to ``--out`` (JSON lines) as they finish, so a long run that is stopped keeps what it
did.

    python bench/scenarios.py [--minutes 5] [--seeds 0 1 2] [--scenarios park occlusion ...]
                              [--followers network oracle] [--out runs/bench_scenarios.jsonl]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from followme.checkpoint import SIM_MODEL
from followme.sim.loop import LoopSettings, OracleSegmenter, run_loop
from followme.sim.scenarios import SCENARIOS, scenario

# issue 16: hero in view at least, re-acquired within (s after she is back in view)
TARGETS = {"park": (0.99, None), "occlusion": (0.90, 3.0), "lookalikes": (0.95, 3.0),
           "crossing": (0.95, 3.0), "run": (0.90, 3.0), "dusk": (0.95, 3.0),
           "escort": (0.95, 3.0)}  # beyond the issue's list: held to lookalikes' targets
COLUMNS = ("hero in view", "within 2-6 m", "losses", "re-acquire after in view, max s",
           "identity switches", "wrong-person frames", "wall s")


def one_run(name: str, seed: int, minutes: float, follower: str,
            threads: int | None = None) -> dict:
    settings = scenario(name).adjust(LoopSettings(seconds=minutes * 60, seed=seed,
                                                  scenario=name))
    if follower == "oracle":
        segmenter = OracleSegmenter()
    else:
        from followme.segment.segmenter import load_segmenter

        segmenter = load_segmenter(SIM_MODEL, threads=threads)
    start = time.perf_counter()
    summary = run_loop(settings, segmenter, progress=False).summary()
    return {"scenario": name, "seed": seed, "follower": follower, "minutes": minutes,
            "wall_s": round(time.perf_counter() - start, 1), **summary}


def cells(m: dict) -> list[str]:
    after = m.get("reacquire_after_view_max_s")
    return [f"{m['hero_in_view_share']:.1%}", f"{m['within_2_6m_share']:.1%}", str(m["losses"]),
            "-" if after is None else f"{after:.1f}", str(m["identity_switches"]),
            str(m["wrong_person_frames"]), f"{m['wall_s']:.0f}"]


def verdict(name: str, runs: list[dict]) -> str:
    in_view, within = TARGETS.get(name, (None, None))
    worst_view = min(r["hero_in_view_share"] for r in runs)
    afters = [r["reacquire_after_view_max_s"] for r in runs
              if r["reacquire_after_view_max_s"] is not None]
    worst_after = max(afters) if afters else None
    wrong = sum(r["wrong_person_frames"] for r in runs)
    ok = (in_view is None or worst_view >= in_view) and wrong == 0 and \
        (within is None or worst_after is None or worst_after <= within)
    return (f"worst in view {worst_view:.1%}"
            f"{'' if in_view is None else f' (target {in_view:.0%})'}, worst re-acquire "
            f"{'-' if worst_after is None else f'{worst_after:.1f} s'}"
            f"{'' if within is None else f' (target {within:g} s)'}, wrong-person frames "
            f"{wrong}: {'met' if ok else 'NOT met'}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=5.0, help="simulated minutes a run")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    p.add_argument("--followers", nargs="+", default=["network"], choices=["network", "oracle"],
                   help="the shipped sim model, and/or the true masks")
    p.add_argument("--threads", type=int,
                   help="the network's threads (default: every core; 1 beside a training run)")
    p.add_argument("--out", default="runs/bench_scenarios.jsonl",
                   help="JSON lines, one per run, appended")
    a = p.parse_args()
    if a.threads is not None and a.threads < 1:
        p.error(f"--threads {a.threads}: 1 or more")
    followers = a.followers
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    print(f"### scenarios, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"{platform.machine()}, {a.minutes:g} simulated minutes a run, seeds "
          f"{' '.join(map(str, a.seeds))}, network = {SIM_MODEL.name}\n")
    print("| scenario | follower | seed | " + " | ".join(COLUMNS) + " |")
    print("| --- | --- | ---: |" + " ---: |" * len(COLUMNS), flush=True)
    results: dict[tuple[str, str], list[dict]] = {}
    for name in a.scenarios:
        for follower in followers:
            for seed in a.seeds:
                m = one_run(name, seed, a.minutes, follower, a.threads)
                with open(out, "a") as fh:
                    fh.write(json.dumps(m) + "\n")
                results.setdefault((name, follower), []).append(m)
                print(f"| {name} | {follower} | {seed} | " + " | ".join(cells(m)) + " |",
                      flush=True)
    print()
    for (name, follower), runs in results.items():
        print(f"- {name}, {follower}: {verdict(name, runs)}")


if __name__ == "__main__":
    main()
