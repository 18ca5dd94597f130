"""``followme follow``: the quad follows the hero. QuadSim streams camera frames over Socket.IO;
the follower segments each frame and answers with the hero's position in the world.

  sensor frame -> camera frame -> hero mask -> target -> Detected | Lost -> quad command
  quadsim/protocol.py  pipeline.py  (segment/)  target.py  pipeline.py   quadsim/server.py
                       geometry.py (the pose, the camera, rotation conventions)
  config.py: the settings   worker.py: newest frame wins, stats   viz.py: --viz
  record.py: --record

The follow core (pipeline.py, target.py, geometry.py) knows no transport: QuadSim's Socket.IO
lives in quadsim/, and another output protocol gets a folder beside it.

This module only defines the command line (cheap to import); ``server`` does the work.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from followme.follower.config import FollowConfig


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``followme follow`` options."""
    from followme.follower.config import FollowConfig
    from followme.follower.geometry import DEPTH_KINDS, PIXEL_AXES
    from followme.follower.mavlink.commander import CommanderSettings, add_command_arguments
    from followme.follower.sources import CAMERA_SOURCES, QUADSIM

    d, c = FollowConfig(), CommanderSettings()

    p.add_argument("--model", metavar="CKPT",
                   help="a checkpoint or an .onnx export (default: the shipped model)")
    p.add_argument("--host", default=d.host,
                   help=f"address to listen on (default {d.host}; 0.0.0.0 for every interface, "
                        "with --allow-host for the names other machines reach it by)")
    p.add_argument("--port", type=int, default=d.port,
                   help=f"QuadSim connects to {d.port}; with --mavlink the live page is there")
    p.add_argument("--allow-host", action="append", default=[], metavar="HOST",
                   help="also serve requests whose Host header names HOST (any port); only "
                        "loopback names and --host are served otherwise, which keeps web pages "
                        "out (DNS rebinding); repeatable; '*' accepts any Host")
    p.add_argument("--viz", nargs="?", const="runs/follow/overlay.png", metavar="PNG",
                   help="keep writing the latest frame with the hero overlay to PNG "
                        "(default runs/follow/overlay.png)")
    p.add_argument("--record", metavar="DIR",
                   help="save frames and predicted masks in the RoboND layout")
    p.add_argument("--min-pixels", type=int, default=d.min_pixels, metavar="N",
                   help=f"the hero needs more mask pixels than this (default {d.min_pixels})")
    p.add_argument("--lost-after", type=int, default=d.lost_after, metavar="K",
                   help=f"object_lost on the K-th frame in a row without the hero (default "
                        f"{d.lost_after}, as the course's follower.py: num_no_see > 6)")
    p.add_argument("--max-payload-mb", type=float, default=d.max_payload / 2**20, metavar="MIB",
                   help=f"messages over this many MiB are skipped (default "
                        f"{d.max_payload / 2**20:g})")
    p.add_argument("--log-every", type=float, default=d.log_every, metavar="S",
                   help=f"seconds between stats lines (default {d.log_every:g})")
    m = p.add_argument_group("a PX4 or ArduPilot vehicle over MAVLink, instead of QuadSim")
    m.add_argument("--mavlink", metavar="URL",
                   help="the vehicle's MAVLink: udpout:127.0.0.1:14540, udpin:0.0.0.0:14550, "
                        "tcp:HOST:PORT or serial:/dev/ttyACM0:921600")
    m.add_argument("--source", default=QUADSIM, metavar="SRC",
                   help=f"where frames come from: {QUADSIM} (the default: QuadSim's Socket.IO, "
                        f"not with --mavlink), or with --mavlink {CAMERA_SOURCES} (frames "
                        "without depth: she is ranged by the ground under her feet)")
    add_command_arguments(m)
    m.add_argument("--distance", type=float, default=c.distance, metavar="M",
                   help=f"setpoints: metres kept from her (default {c.distance:g})")
    m.add_argument("--height", type=float, default=c.height, metavar="M",
                   help=f"setpoints: metres above her (default {c.height:g})")
    m.add_argument("--max-speed", type=float, default=c.max_speed, metavar="M/S",
                   help=f"setpoints move no faster (default {c.max_speed:g})")
    m.add_argument("--max-range", type=float, default=c.max_range, metavar="M",
                   help=f"a hero farther from the vehicle is not followed "
                        f"(default {c.max_range:g})")
    m.add_argument("--fence", type=float, default=c.fence_radius, metavar="M",
                   help=f"nothing is commanded beyond this radius around where the vehicle was "
                        f"first heard (default {c.fence_radius:g})")
    m.add_argument("--mount-pitch", type=float, metavar="DEG",
                   help="a fixed camera, pitched DEG down on the vehicle's yaw, when the vehicle "
                        "reports no gimbal attitude")
    m.add_argument("--command-log", default="runs/follow/mavlink_commands.jsonl", metavar="FILE",
                   help="every message sent, one JSON line each (default "
                        "runs/follow/mavlink_commands.jsonl)")
    g = p.add_argument_group("camera conventions QuadSim leaves open (see follower/geometry.py)")
    g.add_argument("--focal", type=float, default=d.camera.focal, metavar="F",
                   help=f"focal length in image widths (default {d.camera.focal:.4f}: QuadSim's "
                        "60 degree camera; 1 is the course follower.py's fx = image size)")
    g.add_argument("--depth-max", type=float, default=d.camera.depth_max, metavar="M",
                   help=f"metres that depth value 255 stands for (default {d.camera.depth_max:g}: "
                        "QuadSim's far clip plane; the course's follower.py read 50)")
    g.add_argument("--depth-kind", choices=DEPTH_KINDS, default=d.camera.depth_kind,
                   help="depth along the optical axis (planar, default) or along the ray (range)")
    g.add_argument("--pixel-axes", choices=PIXEL_AXES, default=d.camera.pixel_axes,
                   help="pinhole (default) or the course follower.py's row/column mapping")


def config_from_args(a: argparse.Namespace) -> FollowConfig:
    """Parsed ``followme follow`` options -> server.FollowConfig."""
    from followme.follower.config import FollowConfig
    from followme.follower.geometry import Camera

    if a.lost_after < 1 or a.min_pixels < 0 or a.max_payload_mb <= 0 or a.log_every <= 0:
        raise ValueError("--lost-after must be >= 1, --min-pixels >= 0, --max-payload-mb and "
                         "--log-every > 0")
    for host in a.allow_host:
        if not host.strip() or any(c.isspace() or c in "/@" for c in host.strip()):
            raise ValueError(f"--allow-host {host!r}: give a host name or address, "
                             "such as 192.168.1.20 or quad.local")
    return FollowConfig(
        host=a.host, port=a.port, min_pixels=a.min_pixels, lost_after=a.lost_after,
        max_payload=int(a.max_payload_mb * 1024 * 1024), log_every=a.log_every,
        camera=Camera(focal=a.focal, depth_max=a.depth_max, depth_kind=a.depth_kind,
                      pixel_axes=a.pixel_axes),
        viz=Path(a.viz) if a.viz else None, record=Path(a.record) if a.record else None,
        allow_hosts=tuple(h.strip() for h in a.allow_host))


def run(a: argparse.Namespace) -> int:
    """Load the model and serve until Ctrl-C."""
    import logging

    from followme.follower.sources import source_for

    config = config_from_args(a)
    source = source_for(a.source, a.mavlink)  # checked before the model loads

    from followme.follower.quadsim.server import serve
    from followme.segment.segmenter import load_segmenter

    segmenter = load_segmenter(a.model)
    if a.mavlink:
        return _run_mavlink(a, segmenter, config, source)
    logging.getLogger("followme.follower").info(
        "follower: model %s at %d px", a.model or "shipped", segmenter.size)
    try:
        serve(segmenter, config)
    except OSError as e:
        raise ValueError(f"cannot listen on {config.host}:{config.port}: {e}") from e
    return 0


def _run_mavlink(a: argparse.Namespace, segmenter, config, spec) -> int:
    import logging

    from followme.follower.mavlink.commander import CommanderSettings
    from followme.follower.mavlink.run import follow_mavlink
    from followme.follower.sources import FrameSource

    settings = CommanderSettings(a.autopilot, a.command, on_lost=a.on_lost, grace=a.grace,
                                 distance=a.distance, height=a.height, max_speed=a.max_speed,
                                 max_range=a.max_range, fence_radius=a.fence)
    source = FrameSource(spec)
    logging.getLogger("followme.follower").info(
        "follower: %s -> MAVLink %s (%s, %s); it never arms or takes off, and commands only "
        "in %s; every message sent is in %s", a.source, a.mavlink, a.autopilot, a.command,
        "the mode you select", a.command_log)
    counts = follow_mavlink(segmenter, source, a.mavlink, settings, config,
                            mount_pitch=a.mount_pitch, command_log=a.command_log,
                            log_every=a.log_every)
    print(counts)
    return 0

