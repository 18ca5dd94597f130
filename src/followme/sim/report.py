"""A closed-loop run to files: OUT/metrics.json (the figures, the settings, the wall time),
OUT/frames.csv (one row per camera frame), OUT/run.png (the plot), OUT/follow.mp4 (or .gif:
camera view and map) and OUT/frame.png (one frame of it)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from followme.follower.config import FollowConfig
from followme.follower.live import LiveServer
from followme.follower.mavlink.commander import CommanderSettings
from followme.follower.pipeline import Segmenter
from followme.sim.loop import LoopSettings, LoopStep, run_loop
from followme.sim.metrics import LoopMetrics
from followme.sim.video import LiveView, LoopVideo, plot_run


def write_report(metrics: LoopMetrics, out: Path, title: str, settings: LoopSettings,
                 extra: dict) -> dict:
    """metrics.json, frames.csv and run.png in ``out``; returns the metrics.json contents."""
    out.mkdir(parents=True, exist_ok=True)
    summary = {"run": title, **metrics.summary(), **extra, "settings": asdict(settings),
               "plot": str(out / "run.png")}
    metrics.write_csv(out / "frames.csv")
    plot_run(metrics, out / "run.png", title)
    (out / "metrics.json").write_text(json.dumps(summary, indent=1))
    return summary


class VideoFiles:
    """The video and its snapshot for a run in ``out`` (``name``: follow.mp4, follow.gif, or
    None for no video), as an observer."""

    def __init__(self, out: Path, name: str | None, fps: float, snapshot_at: float):
        self.video = LoopVideo(out / name, fps, snapshot=out / "frame.png",
                               snapshot_at=snapshot_at) if name else None

    def __call__(self, step: LoopStep) -> None:
        if self.video is not None:
            self.video(step)

    def close(self) -> dict:
        if self.video is None:
            return {}
        self.video.close()
        files = {"video": str(self.video.path)}
        if self.video.snapshot_written:
            files["frame"] = str(self.video.snapshot)
        return files


def follow_to_files(settings: LoopSettings, segmenter: Segmenter, out: str | Path, title: str,
                    link: str = "inprocess", video: str | None = "follow.mp4",
                    config: FollowConfig | None = None, progress: bool = True,
                    mavlink: CommanderSettings | None = None, depth: bool = True,
                    view: int | None = None, on_view: Callable[[str], None] = print) -> dict:
    """``run_loop`` with its video, plot and metrics written to ``out``; returns the figures
    with ``wall_s`` and the paths. ``view``: serve the live page on this port of 127.0.0.1
    while it runs (0: any free one), its address handed to ``on_view``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = VideoFiles(out, video, settings.camera_hz, snapshot_at=settings.seconds / 2)
    observers: list = [files]
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if view is not None:
            live = LiveView(f"followme sim follow: {title}")
            observers.append(live)
            on_view(f"live view: {stack.enter_context(LiveServer(live.feed, port=view))}")
        try:
            metrics = run_loop(settings, segmenter, link=link, config=config, mavlink=mavlink,
                               depth=depth, observers=observers, progress=progress)
        finally:
            paths = files.close()
    wall = time.perf_counter() - start
    return write_report(metrics, out, title, settings,
                        {"follower": _follower_name(link, mavlink),
                         "wall_s": round(wall, 1), **paths})


def _follower_name(link: str, mavlink: CommanderSettings | None) -> str:
    if link == "mavlink":
        m = mavlink or CommanderSettings()
        return f"mavlink ({m.autopilot}, {m.command})"
    return {"socketio": "socket.io", "inprocess": "in process"}[link]


ROWS = (("simulated s", "seconds", "{:g}"), ("people", "people", "{}"),
        ("hero in view", "hero_in_view_share", "{:.1%}"),
        ("within 2-6 m", "within_2_6m_share", "{:.1%}"),
        ("acquired at s", "acquired_at_s", "{:.1f}"),
        ("losses (object_lost)", "losses", "{}"),
        ("longest loss s", "loss_max_s", "{:.1f}"),
        ("re-acquire max s", "reacquire_max_s", "{:.1f}"),
        ("... after back in view, max s", "reacquire_after_view_max_s", "{:.1f}"),
        ("not re-acquired", "not_reacquired", "{}"),
        ("out-of-view episodes", "out_of_view_episodes", "{}"),
        ("longest out of view s", "out_of_view_longest_s", "{:.1f}"),
        ("detections", "detections", "{}"),
        ("wrong detections", "wrong_detections", "{}"),
        ("detections set aside", "set_aside", "{}"),
        ("wrong-target frames", "wrong_target_frames", "{}"),
        ("wrong-person frames", "wrong_person_frames", "{}"),
        ("identity switches", "identity_switches", "{}"),
        ("median distance m", "distance_median_m", "{:.2f}"),
        ("wall s", "wall_s", "{:.0f}"))


def figures_table(runs: dict[str, dict]) -> str:
    """A markdown table of the runs' figures side by side (name -> metrics.json contents)."""
    lines = ["| | " + " | ".join(runs) + " |", "| --- |" + " ---: |" * len(runs)]
    for label, key, fmt in ROWS:
        cells = []
        for summary in runs.values():
            value = summary.get(key, summary.get("settings", {}).get(key))
            cells.append("-" if value is None else fmt.format(value))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
