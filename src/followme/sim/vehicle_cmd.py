"""``followme sim vehicle``: the sim's quad as a PX4 or ArduPilot vehicle (``vehicle.py``) on a
MAVLink URL, in real time, until Ctrl-C: something to point ``followme follow --mavlink``,
MAVSDK, MAVProxy or QGroundControl at without an autopilot.

By default it talks as those autopilots' SITL do: it sends to the UDP port where offboard and
ground-station software listens, 14540 for PX4 (its SITL's offboard/API link) and 14550 for
ArduPilot (where its SITL's MAVProxy sends), so the follower's command line is the same against
this vehicle and against SITL: ``--mavlink udpin:0.0.0.0:14540``. ``--url udpin:HOST:PORT``
makes it listen instead; it then answers whoever speaks to it first.

The quad flies in the world of ``followme sim follow`` (``--scenario``, ``--seed``,
``--people``): it starts on patrol behind the hero with the camera on her, and she walks. No
frames are rendered: the follower needs a camera source of its own. The vehicle never changes
mode by itself: the pilot does, from a ground station (DO_SET_MODE), or ``--select`` stands in
for the pilot, as ``followme sim follow``'s operator does.
"""

from __future__ import annotations

import argparse
import time

SITL_PORTS = {"px4": 14540, "ardupilot": 14550}
QGC_PORT = 14550  # QGroundControl listens here for vehicles
STEP = 0.01  # s: the vehicle's step in real time, fast enough for PX4's 30 Hz telemetry
SUMMARY_KINDS = ("HEARTBEAT", "FOLLOW_TARGET", "SET_POSITION_TARGET_LOCAL_NED", "COMMAND_LONG",
                 "PARAM_SET")


def default_url(autopilot: str) -> str:
    return f"udpout:127.0.0.1:{SITL_PORTS[autopilot]}"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``followme sim vehicle``."""
    from followme.follower.mavlink.autopilots import AUTOPILOTS, COMMANDS
    from followme.sim.loop import LoopSettings
    from followme.sim.vehicle import VehicleSettings

    d, v = LoopSettings(), VehicleSettings()
    p.add_argument("--autopilot", choices=AUTOPILOTS, default=v.autopilot,
                   help=f"whose HEARTBEAT, modes, telemetry and follow behaviour (default "
                        f"{v.autopilot})")
    p.add_argument("--url", metavar="URL",
                   help=f"its MAVLink end, as pymavlink writes it (default "
                        f"{default_url('px4')} for px4, {default_url('ardupilot')} for "
                        "ardupilot: where their SITL sends; udpin:HOST:PORT to listen, "
                        "tcpin:HOST:PORT, serial:DEVICE:BAUD)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="a follow parameter's value at start (repeatable), e.g. "
                        "FOLL_ENABLE=1 for ArduPilot's FOLLOW; a ground station can set them too")
    p.add_argument("--select", choices=COMMANDS, metavar="COMMAND",
                   help="be the pilot: switch, once and as soon as the vehicle accepts it, to "
                        "the mode that obeys this follower --command (follow-target: PX4 "
                        "AUTO.FOLLOW_TARGET / ArduPilot FOLLOW; setpoints: OFFBOARD / GUIDED); "
                        "default: a ground station does")
    p.add_argument("--scenario", default=d.scenario, metavar="NAME",
                   help=f"the world (default {d.scenario}; followme sim scenarios lists them)")
    p.add_argument("--seed", type=int, default=d.seed, help=f"the world (default {d.seed})")
    p.add_argument("--people", type=int, default=d.people,
                   help=f"people besides the hero (default {d.people})")
    p.add_argument("--seconds", type=float, help=argparse.SUPPRESS)  # tests: stop after S s


def _url(a: argparse.Namespace) -> str:
    from followme.follower.mavlink.link import connection_url

    url = a.url or default_url(a.autopilot)
    try:
        return connection_url(url)
    except ValueError:
        raise ValueError(f"--url {url}: give udpout:HOST:PORT, udpin:HOST:PORT, tcpin:HOST:PORT, "
                         "tcp:HOST:PORT or serial:DEVICE:BAUD") from None


def _params(a: argparse.Namespace) -> dict[str, float]:
    from followme.sim.vehicle import PARAMS

    known, out = PARAMS[a.autopilot], {}
    for item in a.param:
        name, _, value = item.partition("=")
        if name not in known:
            raise ValueError(f"--param {item}: {a.autopilot}'s follow parameters are "
                             f"{', '.join(known)}")
        try:
            out[name] = float(value)
        except ValueError:
            raise ValueError(f"--param {item}: give NAME=NUMBER") from None
    return out


def vehicle_settings(a: argparse.Namespace):
    """The checked options as a ``vehicle.VehicleSettings``."""
    from followme.sim.vehicle import VehicleSettings

    if a.seconds is not None and not a.seconds > 0:
        raise ValueError("--seconds must be positive")
    if a.people < 0:
        raise ValueError(f"--people {a.people}: must be 0 or more")
    return VehicleSettings(a.autopilot, url=_url(a), params=_params(a))


def peer_hint(url: str, autopilot: str) -> str:
    """How to point a follower, MAVSDK and QGroundControl at a vehicle on ``url``."""
    kind, _, rest = url.partition(":")
    host, _, port = rest.rpartition(":")
    if kind == "udpout":
        follower, sdk = f"udpin:0.0.0.0:{port}", f"udpin://0.0.0.0:{port}"
        qgc = "QGroundControl shows it" if port == str(QGC_PORT) else \
            f"for QGroundControl use --url udpout:127.0.0.1:{QGC_PORT}"
    elif kind == "udpin":
        there = "127.0.0.1" if host in ("", "0.0.0.0") else host
        follower, sdk = f"udpout:{there}:{port}", f"udpout://{there}:{port}"
        qgc = f"QGroundControl: a UDP link to {there}:{port}"
    else:
        return f"point followme follow --mavlink (--autopilot {autopilot}) at the other end"
    return (f"followme follow --mavlink {follower} --autopilot {autopilot} --source SRC; "
            f"MAVSDK {sdk}; {qgc}")


def build(a: argparse.Namespace, settings):
    """The world of ``sim follow`` and the vehicle flying its quad: (loop, vehicle)."""
    from followme.sim.loop import ClosedLoop, LoopSettings
    from followme.sim.scenarios import scenario
    from followme.sim.vehicle import SimVehicle

    world = scenario(a.scenario).adjust(LoopSettings(people=a.people, seed=a.seed,
                                                     scenario=a.scenario))
    loop = ClosedLoop(world)
    try:
        return loop, SimVehicle(loop.quad, settings)
    except Exception as e:  # pymavlink raises OSError, SerialException, OverflowError...
        loop.close()
        raise OSError(f"--url {settings.url}: cannot open ({e})") from e


def fly(loop, vehicle, select: str | None, seconds: float | None, say=print) -> None:
    """Step the vehicle every ``STEP`` s and the world every ``loop.settings.dt`` s of real time,
    for ``seconds`` (None: until Ctrl-C); ``say`` each mode change."""
    per_world = max(1, round(loop.settings.dt / STEP))
    start, k, said = time.monotonic(), 0, len(vehicle.log)
    while seconds is None or k * STEP < seconds:
        if select is not None:
            vehicle.operator_selects(select)
        vehicle.step(STEP)
        k += 1
        if k % per_world == 0:
            loop.world.step(loop.settings.dt)
        for line in vehicle.log[said:]:
            say(f"sim vehicle: {line}")
        said = len(vehicle.log)
        time.sleep(max(0.0, start + k * STEP - time.monotonic()))


def run(a: argparse.Namespace) -> int:
    """Be the vehicle until Ctrl-C (or the hidden ``--seconds``)."""
    settings = vehicle_settings(a)
    try:
        loop, vehicle = build(a, settings)
    except KeyboardInterrupt:
        return 130
    name = vehicle.autopilot.name
    print(f"sim vehicle: {'PX4' if name == 'px4' else 'ArduPilot'} (system {settings.sysid}) "
          f"{'listening on' if settings.url.startswith(('udpin', 'tcpin')) else 'talking to'} "
          f"{settings.url}, in {vehicle.mode}, world {a.scenario} seed {a.seed}; "
          f"{peer_hint(settings.url, name)}; Ctrl-C stops it", flush=True)
    if name == "ardupilot" and a.select == "follow-target" and not vehicle.params["FOLL_ENABLE"]:
        print("sim vehicle: ArduPilot refuses FOLLOW while FOLL_ENABLE is 0 (--param "
              "FOLL_ENABLE=1, or set it from a ground station)", flush=True)
    try:
        fly(loop, vehicle, a.select, a.seconds, say=lambda line: print(line, flush=True))
    except KeyboardInterrupt:
        pass
    finally:
        vehicle.close()
        loop.close()
    heard = {k: n for k, n in vehicle.received.items() if k in SUMMARY_KINDS}
    print(f"sim vehicle: stopped after {vehicle.time:.1f} s in {vehicle.mode}; heard {heard}",
          flush=True)
    return 0
