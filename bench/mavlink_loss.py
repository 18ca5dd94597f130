"""When the follower dies: how long the sim's PX4 / ArduPilot vehicle goes on following.

For each autopilot and command, the closed loop runs over MAVLink (the oracle's masks, seed 0)
for ``--follow`` simulated seconds; then the follower is gone as a killed process is: its link
closes (no HEARTBEAT, no command, nothing more on the wire), and the sim runs on. Printed per
row: the vehicle's mode at the end, and the seconds from the follower's last message until the
vehicle stopped following (its horizontal speed below 0.3 m/s for good, or a mode that is not
the follow mode). These are the autopilots' timeouts as ``sim/vehicle.py`` models them from
their code (PX4: target stale after 3 s, OFFBOARD lost after COM_OF_LOSS_T = 1 s; ArduPilot:
FOLLOW hovers after 3 s, GUIDED holds its last position target), not a flight test.

    python bench/mavlink_loss.py [--follow 20] [--after 8]
"""

from __future__ import annotations

import argparse
import contextlib

import numpy as np

from followme.follower.mavlink.commander import CommanderSettings
from followme.sim.link import MavlinkSimLink
from followme.sim.loop import ClosedLoop, LoopSettings, OracleSegmenter
from followme.sim.vehicle import sim_vehicle


def silence(autopilot: str, command: str, follow_s: float, after_s: float) -> tuple[str, float]:
    settings = LoopSettings(seconds=follow_s + after_s, people=10, px_per_m=8.0)
    mavlink = CommanderSettings(autopilot, command)
    oracle = OracleSegmenter()
    loop = ClosedLoop(settings)
    with contextlib.ExitStack() as stack:
        stack.callback(loop.close)
        loop.vehicle = vehicle = stack.enter_context(contextlib.closing(
            sim_vehicle(loop.quad, mavlink)))
        link = MavlinkSimLink(oracle, vehicle, mavlink)
        killed = stack.enter_context(contextlib.ExitStack())
        killed.callback(link.close)
        period = 1.0 / settings.camera_hz
        for _ in range(int(follow_s * settings.camera_hz)):
            vehicle.operator_selects(command)
            frame, fields = loop.capture()
            oracle.expect(fields, frame.labels)
            loop.answer(frame, link.send(fields))
            loop.advance(period)
        killed.close()  # the follower's process ends here
        silent_from = vehicle.time
        follow_mode = vehicle.autopilot.follow_mode[command]
        stopped_at = None
        while vehicle.time < silent_from + after_s:
            loop.advance(settings.dt)
            moving = np.hypot(*vehicle.quad.velocity[:2]) >= 0.3 and vehicle.mode == follow_mode
            if moving:
                stopped_at = None
            elif stopped_at is None:
                stopped_at = vehicle.time
        return vehicle.mode, (stopped_at - silent_from) if stopped_at is not None else float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--follow", type=float, default=20.0, help="simulated s of following first")
    p.add_argument("--after", type=float, default=8.0, help="simulated s after the silence")
    a = p.parse_args()
    print("| autopilot | command | mode at the end | stopped following after (s) |")
    print("| --- | --- | --- | ---: |")
    for autopilot in ("px4", "ardupilot"):
        for command in ("follow-target", "setpoints"):
            mode, seconds = silence(autopilot, command, a.follow, a.after)
            print(f"| {autopilot} | {command} | {mode} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
