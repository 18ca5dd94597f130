"""``followme sim follow`` and ``followme sim serve``: their options and commands. Cheap to
import; the work is in loop.py (the closed loop), serve.py (real time, QuadSim's side) and
report.py (the files)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def default_model() -> str | None:
    """The shipped sim model when there is one, else None (the shipped RoboND model)."""
    from followme.checkpoint import SIM_MODEL

    return str(SIM_MODEL) if SIM_MODEL.is_file() else None


def _add_run_arguments(p: argparse.ArgumentParser, out: str) -> None:
    from followme.sim.loop import LoopSettings

    d = LoopSettings()
    p.add_argument("--minutes", type=float, default=d.seconds / 60,
                   help=f"simulated minutes (default {d.seconds / 60:g})")
    p.add_argument("--people", type=int, default=d.people,
                   help=f"people besides the hero ({d.people})")
    p.add_argument("--seed", type=int, default=d.seed, help="the world and the start")
    p.add_argument("--scenario", default=d.scenario, metavar="NAME",
                   help=f"the world to follow in (default {d.scenario}; followme sim scenarios "
                        "lists them)")
    p.add_argument("--camera-hz", type=float, default=d.camera_hz,
                   help=f"sensor frames a second ({d.camera_hz:g}, as QuadSim's "
                        "CommandServer.cs)")
    p.add_argument("--distance", type=float, default=d.follow.distance,
                   help=f"metres to keep ({d.follow.distance:g})")
    p.add_argument("--height", type=float, default=d.follow.height,
                   help=f"metres above the ground ({d.follow.height:g})")
    p.add_argument("--blackout", type=float, default=d.blackout, metavar="S",
                   help="the camera sees nothing for S s from every --blackout-every s (a "
                        "covered lens): losses, to measure re-acquisition (default 0: none)")
    p.add_argument("--blackout-every", type=float, default=d.blackout_every, metavar="E",
                   help=f"seconds between blackouts ({d.blackout_every:g})")
    p.add_argument("--out", default=out, metavar="DIR", help=f"default {out}")
    p.add_argument("--video", default="follow.mp4", metavar="NAME",
                   help="video file in OUT, .mp4 or .gif (default follow.mp4)")
    p.add_argument("--no-video", action="store_true")


def add_follow_arguments(p: argparse.ArgumentParser) -> None:
    """``followme sim follow``."""
    from followme.sim.loop import LINKS

    p.add_argument("--model", metavar="CKPT",
                   help="checkpoint or .onnx (default: the shipped sim model, else the shipped "
                        "model)")
    p.add_argument("--oracle", action="store_true",
                   help="the true hero labels in place of a model (the geometry and the "
                        "controller alone)")
    p.add_argument("--link", choices=LINKS, default=LINKS[0],
                   help="the follower in process (default); as its Socket.IO server on "
                        "127.0.0.1 with the sim as its QuadSim client; or over MAVLink to the "
                        "quad as a PX4 or ArduPilot vehicle on 127.0.0.1")
    p.add_argument("--socketio", action="store_true", help="the same as --link socketio")
    p.add_argument("--view", nargs="?", type=int, const=4568, metavar="PORT",
                   help="watch it in a browser: the live page with the map on "
                        "http://127.0.0.1:PORT/ (default 4568) while it runs")
    g = p.add_argument_group("with --link mavlink")
    from followme.follower.mavlink.commander import add_command_arguments

    add_command_arguments(g)
    g.add_argument("--no-depth", action="store_true",
                   help="range her by the ground under her feet, as from a camera without depth")
    _add_run_arguments(p, "runs/sim_follow")


def add_serve_arguments(p: argparse.ArgumentParser) -> None:
    """``followme sim serve``."""
    import inspect

    from followme.follower.config import FollowConfig
    from followme.sim.serve import serve_sim

    f, wait = FollowConfig(), inspect.signature(serve_sim).parameters["wait"].default
    p.add_argument("--host", default=f.host, help=f"the follower's address ({f.host})")
    p.add_argument("--port", type=int, default=f.port, help=f"the follower's port ({f.port})")
    p.add_argument("--wait", type=float, default=wait, metavar="S",
                   help=f"seconds to keep dialling a follower that is not up ({wait:g})")
    _add_run_arguments(p, "runs/sim_serve")


def loop_settings(a: argparse.Namespace):
    from followme.sim.control import FollowSettings
    from followme.sim.loop import LoopSettings
    from followme.sim.scenarios import scenario

    if not a.minutes > 0:
        raise ValueError("--minutes must be positive")
    settings = LoopSettings(seconds=a.minutes * 60, people=a.people, seed=a.seed,
                            camera_hz=a.camera_hz, blackout=a.blackout,
                            blackout_every=a.blackout_every, scenario=a.scenario,
                            follow=FollowSettings(distance=a.distance, height=a.height))
    return scenario(a.scenario).adjust(settings)


def _print(summary: dict, name: str) -> None:
    from followme.sim.report import figures_table

    print(figures_table({name: summary}))
    if "longest_pong_wait_s" in summary:
        print(f"longest wait for a pong: {summary['longest_pong_wait_s']:.2f} s (QuadSim "
              "drops from Follow to Patrol after 3 s)")
    for key in ("video", "frame", "plot"):
        if key in summary:
            print(f"{key}: {summary[key]}")
    print(f"metrics: {Path(summary['plot']).with_name('metrics.json')}")


def run_follow(a: argparse.Namespace) -> int:
    """Run the closed loop; print the figures and the paths of the files."""
    from followme.sim.loop import OracleSegmenter
    from followme.sim.report import follow_to_files

    settings = loop_settings(a)
    if a.oracle:
        segmenter, name = OracleSegmenter(), "oracle"
    else:
        from followme.segment.segmenter import load_segmenter

        model = a.model or default_model()
        segmenter, name = load_segmenter(model), str(model or "shipped model")
    link = "socketio" if a.socketio else a.link
    mavlink = None
    if link == "mavlink":
        from followme.follower.mavlink.commander import CommanderSettings

        mavlink = CommanderSettings(a.autopilot, a.command, on_lost=a.on_lost, grace=a.grace,
                                    distance=a.distance, height=a.height)
    if a.no_depth and link != "mavlink":
        raise ValueError("--no-depth is for --link mavlink (QuadSim always sends depth)")
    summary = follow_to_files(settings, segmenter, a.out, name, link=link, mavlink=mavlink,
                              video=None if a.no_video else a.video, depth=not a.no_depth,
                              view=a.view)
    _print(summary, name)
    return 0


def run_serve(a: argparse.Namespace) -> int:
    """Be QuadSim for a follower at HOST:PORT until --minutes or Ctrl-C; then report."""
    from followme.sim.report import VideoFiles, write_report
    from followme.sim.serve import serve_sim

    settings = loop_settings(a)
    out = Path(a.out)
    files = VideoFiles(out, None if a.no_video else a.video, settings.camera_hz,
                       snapshot_at=settings.seconds / 2)
    url = f"http://{a.host}:{a.port}"
    try:
        loop = serve_sim(settings, url, observers=[files], wait=a.wait)
    except ConnectionError as e:
        print(f"followme: error: {e}", file=sys.stderr)
        return 2
    finally:
        paths = files.close()
    summary = write_report(loop.metrics, out, f"sim serve -> {url}", settings,
                           {"follower": url, "longest_pong_wait_s": loop.longest_pong_wait,
                            **paths})
    _print(summary, url)
    return 0
