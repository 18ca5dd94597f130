"""The sim's MAVLink vehicle against other people's MAVLink code: MAVSDK-Python 4.x (the native
cmavsdk binding), MAVProxy routing between it and the follower's link, and plain pymavlink
checks of what it sends (rates, HEARTBEAT fields, units, COMMAND_ACK).

Each test runs the vehicle in a background thread that steps it every 0.02 s of real time
(``_Running``), as a real autopilot would talk: on its own clock, not in lock-step with the test.

MAVSDK 4.1.0 asks for AUTOPILOT_VERSION (MAV_CMD_REQUEST_MESSAGE 148, and
MAV_CMD_REQUEST_AUTOPILOT_CAPABILITIES 520) and HOME_POSITION (242) every second until it gets
them, and reads SYS_STATUS, EXTENDED_SYS_STATE and GPS_RAW_INT for its health and in-air state:
the vehicle sends all of these. It does not send BATTERY_STATUS.
"""

from __future__ import annotations

import importlib.util
import math
import os
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from follower_helpers import wait_until

pytest.importorskip("pymavlink")

MAV_CMD_USER_1 = 31010  # a command the vehicle does not know
COMPANION = 245  # the link's and the test client's system id
EARTH_RADIUS = 6_371_000.0  # m, only to check the units of lat/lon offsets (1e-3 is plenty)


# ---- helpers ----

def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Running:
    """A SimVehicle stepped by a background thread every ``dt`` s of real time. Use ``lock``
    around anything that touches the vehicle from the test's thread."""

    def __init__(self, autopilot: str, url: str, position=(0.0, 0.0, 6.0), yaw: float = 0.0,
                 dt: float = 0.02):
        pytest.importorskip("pybullet", reason="the sim package needs pybullet (pip install "
                                               "-e .[sim])")
        from followme.sim.quad import Quad
        from followme.sim.vehicle import SimVehicle, VehicleSettings

        quad = Quad(position=np.array(position, float), yaw=yaw, gimbal_pitch=35.0)
        self.vehicle = SimVehicle(quad, VehicleSettings(autopilot, url=url))
        self.dt = dt
        self.lock = threading.Lock()
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="sim-vehicle")

    def _run(self) -> None:
        start, k = time.monotonic(), 0
        try:
            while not self._stop.is_set():
                with self.lock:
                    self.vehicle.step(self.dt)
                k += 1
                self._stop.wait(max(0.0, start + k * self.dt - time.monotonic()))
        except BaseException as e:  # surfaced by stop()
            self.error = e

    def __enter__(self) -> _Running:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5.0)
        self.vehicle.close()
        if self.error is not None and exc[0] is None:
            raise self.error


def _expected_lat_lon(north: float, east: float) -> tuple[float, float]:
    from followme.sim.vehicle import HOME

    lat = HOME[0] + math.degrees(north / EARTH_RADIUS)
    lon = HOME[1] + math.degrees(east / (EARTH_RADIUS * math.cos(math.radians(HOME[0]))))
    return lat, lon


# ---- 1. MAVSDK-Python 4.x ----

@pytest.mark.slow
def test_mavsdk_sees_the_px4_vehicle_its_position_and_its_mode_changes():
    pytest.importorskip("mavsdk", reason="MAVSDK-Python 4.x (pip install mavsdk==4.1.0)")
    import mavsdk
    from mavsdk import Autopilot, ComponentType, Configuration, Mavsdk, Vehicle

    if int(mavsdk.__version__.split(".")[0]) < 4:
        pytest.skip(f"mavsdk {mavsdk.__version__}: the gRPC API, not the 4.x native binding")
    from mavsdk.plugins.telemetry import FlightMode, Telemetry

    from followme.sim.vehicle import HOME

    port = _free_udp_port()
    sdk = Mavsdk(Configuration.create_with_component_type(ComponentType.GROUND_STATION))
    try:
        sdk.add_any_connection_with_handle(f"udpin://127.0.0.1:{port}")
        # 20 m north, 10 m east (the sim world's y is west), 6 m up, facing north
        with _Running("px4", f"udpout:127.0.0.1:{port}", position=(20.0, -10.0, 6.0)) as run:
            system = sdk.first_autopilot(10.0)
            assert system is not None, "MAVSDK found no autopilot in 10 s"
            assert system.is_connected() and system.has_autopilot()
            assert system.autopilot_type() == Autopilot.PX4
            assert system.vehicle_type() == Vehicle.MULTICOPTER  # from MAV_TYPE_QUADROTOR
            assert system.get_system_id() == 1 and system.component_ids() == [1]

            telemetry = Telemetry(system)
            # GLOBAL_POSITION_INT, LOCAL_POSITION_NED and HEARTBEAT arrive independently
            assert wait_until(lambda: not math.isnan(telemetry.position().latitude_deg)
                              and not math.isnan(telemetry.position_velocity_ned().position.north_m)
                              and telemetry.flight_mode() != FlightMode.UNKNOWN, 5.0)
            pos = telemetry.position()
            lat, lon = _expected_lat_lon(20.0, 10.0)
            assert abs(pos.latitude_deg - lat) < 1e-6 and abs(pos.longitude_deg - lon) < 1e-6
            assert pos.latitude_deg - HOME[0] > 1e-4 and pos.longitude_deg - HOME[1] > 1e-4
            assert abs(pos.relative_altitude_m - 6.0) < 0.05
            assert abs(pos.absolute_altitude_m - (HOME[2] + 6.0)) < 0.05
            ned = telemetry.position_velocity_ned().position  # LOCAL_POSITION_NED
            np.testing.assert_allclose([ned.north_m, ned.east_m, ned.down_m],
                                       [20.0, 10.0, -6.0], atol=0.05)
            # the Telemetry plugin hears "armed" from the first HEARTBEAT after it was made
            assert wait_until(telemetry.armed, 3.0)
            assert telemetry.flight_mode() == FlightMode.HOLD  # AUTO.LOITER
            # HOME_POSITION (asked for by MAV_CMD_REQUEST_MESSAGE), EXTENDED_SYS_STATE, SYS_STATUS
            assert wait_until(lambda: abs(telemetry.home().latitude_deg - HOME[0]) < 1e-6, 4.0)
            assert wait_until(telemetry.in_air, 3.0)
            assert wait_until(lambda: telemetry.health().is_global_position_ok, 3.0)

            seen: list = []
            telemetry.subscribe_flight_mode(lambda mode, _ud: seen.append(mode))
            for mode, mavsdk_mode in [("AUTO.FOLLOW_TARGET", FlightMode.FOLLOW_ME),
                                      ("POSCTL", FlightMode.POSCTL),
                                      ("AUTO.LOITER", FlightMode.HOLD)]:
                with run.lock:
                    run.vehicle.set_mode(mode)
                # the next HEARTBEAT (1 Hz) carries it
                assert wait_until(lambda m=mavsdk_mode: telemetry.flight_mode() == m, 4.0), \
                    f"{mode}: MAVSDK still says {telemetry.flight_mode()!r}"
            assert FlightMode.FOLLOW_ME in seen and FlightMode.POSCTL in seen
    finally:
        sdk.destroy()


# ---- 2. MAVProxy between the vehicle and the follower's link ----

def _mavproxy_command(master: str, out: str) -> list[str]:
    return [sys.executable, "-m", "MAVProxy.mavproxy", f"--master={master}", f"--out={out}",
            "--daemon", "--non-interactive", "--no-state", "--streamrate=-1"]


def test_mavproxy_routes_the_heartbeat_out_and_follow_target_in(tmp_path):
    if importlib.util.find_spec("MAVProxy") is None:
        pytest.skip("MAVProxy is not installed (pip install MAVProxy==1.8.75)")
    pytest.importorskip("serial", reason="MAVProxy needs pyserial")
    from followme.follower.mavlink.autopilots import PX4
    from followme.follower.mavlink.link import COMPANION_SYSID, MavlinkLink
    from followme.sim.vehicle import HOME

    class RecordingLink(MavlinkLink):
        last: dict = {}  # the latest message of each type

        def on_message(self, msg) -> None:
            self.last[msg.get_type()] = msg
            super().on_message(msg)

    vehicle_port, link_port = _free_udp_port(), _free_udp_port()
    command = _mavproxy_command(f"udpin:127.0.0.1:{vehicle_port}",
                                f"udpout:127.0.0.1:{link_port}")
    with _Running("px4", f"udpout:127.0.0.1:{vehicle_port}") as run:
        received: list = []
        handle = run.vehicle._on_follow_target
        run.vehicle._on_follow_target = lambda msg: (received.append(msg), handle(msg))
        link = RecordingLink(f"udpin:127.0.0.1:{link_port}", PX4)
        proxy = subprocess.Popen(command, cwd=tmp_path, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                 env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            assert wait_until(lambda: link.state.custom_mode is not None, 20.0), \
                "no HEARTBEAT came through MAVProxy"
            hb = link.last["HEARTBEAT"]
            assert hb.get_srcSystem() == 1 and hb.get_srcComponent() == 1
            assert (hb.type, hb.autopilot) == (2, 12)  # quadrotor, PX4
            assert hb.custom_mode == PX4.modes["AUTO.LOITER"] == (4 << 16) | (3 << 24)
            assert link.state.custom_mode == hb.custom_mode and link.state.armed
            assert wait_until(
                lambda: link.state.lat is not None and link.state.position is not None, 5.0)
            np.testing.assert_allclose(link.state.position, [0.0, 0.0, -6.0], atol=0.05)

            sent = dict(timestamp=123456, est_capabilities=3, lat=473981234, lon=85461234,
                        alt=490.25, vel=[1.5, -0.5, 0.0], acc=[0.0, 0.0, 0.0],
                        attitude_q=[1.0, 0.0, 0.0, 0.0], rates=[0.0, 0.0, 0.0],
                        position_cov=[0.0, 0.0, 0.0], custom_state=0)
            link.send([("follow_target", sent)])
            assert wait_until(lambda: received, 5.0), "FOLLOW_TARGET did not reach the vehicle"
            msg = received[0]
            assert msg.get_srcSystem() == COMPANION_SYSID  # MAVProxy forwards, not re-sends
            assert (msg.lat, msg.lon, msg.alt) == (sent["lat"], sent["lon"], sent["alt"])
            assert msg.est_capabilities == sent["est_capabilities"]
            assert msg.timestamp == sent["timestamp"] and list(msg.vel) == sent["vel"]
            with run.lock:
                target = run.vehicle.target
            assert target is not None and abs(target.ned[2] - (HOME[2] - 490.25)) < 1e-6
        finally:
            link.close()
            proxy.terminate()
            try:
                output, _ = proxy.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proxy.kill()
                output, _ = proxy.communicate()
    assert "Detected vehicle 1:1" in output, output[-2000:]


# ---- 3. pymavlink against both autopilots ----

@pytest.fixture(params=["px4", "ardupilot"])
def client(request):
    """(running vehicle, a pymavlink client that has said hello) for each autopilot; the
    vehicle listens (udpin), the client sends to it (udpout)."""
    from pymavlink import mavutil

    port = _free_udp_port()
    position, yaw = (10.0, -5.0, 6.0), 30.0  # 10 m north, 5 m east, facing 30 deg west
    with _Running(request.param, f"udpin:127.0.0.1:{port}", position=position, yaw=yaw) as run:
        conn = mavutil.mavlink_connection(f"udpout:127.0.0.1:{port}", source_system=COMPANION,
                                          source_component=191, dialect="all")
        try:
            conn.mav.heartbeat_send(18, 8, 0, 0, 4)  # an onboard controller
            assert conn.recv_match(type="HEARTBEAT", blocking=True, timeout=5.0) is not None
            yield run, conn
        finally:
            conn.close()


def _receive(conn, seconds: float, kinds=None) -> list:
    messages, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        msg = conn.recv_match(type=kinds, blocking=True, timeout=0.1)
        if msg is not None and msg.get_type() != "BAD_DATA":
            messages.append(msg)
    return messages


@pytest.mark.slow
def test_telemetry_rates_are_the_autopilots(client):
    from followme.sim.vehicle import TELEMETRY_HZ

    run, conn = client
    rates = TELEMETRY_HZ[run.vehicle.autopilot.name]
    stamps: dict[str, list[float]] = {kind: [] for kind in rates}
    start = run.vehicle.time
    while run.vehicle.time - start < 3.3:  # simulated seconds, paced in real time
        msg = conn.recv_match(blocking=True, timeout=0.2)
        if msg is None or msg.get_type() not in stamps:
            continue
        # the simulated time it was sent at: its own stamp, else (HEARTBEAT) the vehicle's
        # clock on arrival, at most a step late
        t = msg.time_boot_ms / 1000 if hasattr(msg, "time_boot_ms") else run.vehicle.time
        stamps[msg.get_type()].append(t)
    for kind, hz in rates.items():
        ts = stamps[kind]
        assert len(ts) >= 3, f"{kind}: {len(ts)} messages in 3.3 s"
        measured = (len(ts) - 1) / (ts[-1] - ts[0])
        assert abs(measured - hz) <= 0.25 * hz, f"{kind}: {measured:.1f} Hz, not {hz} Hz"


def test_heartbeat_fields_say_a_quadrotor_armed_in_its_autopilots_hold_mode(client):
    run, conn = client
    ap = run.vehicle.autopilot
    hb = conn.recv_match(type="HEARTBEAT", blocking=True, timeout=3.0)
    assert hb is not None
    assert hb.get_srcSystem() == 1 and hb.get_srcComponent() == 1
    assert hb.type == 2  # MAV_TYPE_QUADROTOR
    assert hb.autopilot == {"px4": 12, "ardupilot": 3}[ap.name]
    assert hb.base_mode & 1 and hb.base_mode & 128  # CUSTOM_MODE_ENABLED, SAFETY_ARMED
    hold = {"px4": "AUTO.LOITER", "ardupilot": "LOITER"}[ap.name]
    assert hb.custom_mode == {"px4": (4 << 16) | (3 << 24), "ardupilot": 5}[ap.name]
    assert hb.custom_mode == ap.modes[hold]
    assert hb.system_status == 4  # MAV_STATE_ACTIVE
    assert hb.mavlink_version == 3
    with run.lock:
        run.vehicle.set_mode(ap.follow_mode["setpoints"])  # OFFBOARD / GUIDED
    wanted = ap.modes[ap.follow_mode["setpoints"]] if ap.name == "ardupilot" else \
        ap.modes["POSCTL"]  # PX4 leaves OFFBOARD without setpoints (COM_OBL_RC_ACT 0)
    assert wait_until(lambda: (m := conn.recv_match(type="HEARTBEAT", blocking=True, timeout=0.5))
                  is not None and m.custom_mode == wanted, 4.0)


def test_global_position_int_is_in_dege7_and_millimetres(client):
    from followme.sim.vehicle import HOME

    run, conn = client
    msg = conn.recv_match(type="GLOBAL_POSITION_INT", blocking=True, timeout=3.0)
    assert msg is not None
    lat, lon = _expected_lat_lon(10.0, 5.0)
    assert isinstance(msg.lat, int) and isinstance(msg.lon, int)
    assert abs(msg.lat - lat * 1e7) <= 2 and abs(msg.lon - lon * 1e7) <= 2  # degE7
    assert msg.lat - round(HOME[0] * 1e7) == pytest.approx(899, abs=2)  # 10 m north
    assert msg.lon - round(HOME[1] * 1e7) == pytest.approx(665, abs=2)  # 5 m east at 47.4 N
    assert abs(msg.alt - (HOME[2] + 6.0) * 1000) <= 5  # mm AMSL
    assert abs(msg.relative_alt - 6000) <= 5  # mm above home
    assert (msg.vx, msg.vy, msg.vz) == (0, 0, 0)  # cm/s, hovering
    assert msg.hdg == 33000  # cdeg: 30 deg west of north
    assert 0 < msg.time_boot_ms <= run.vehicle.time * 1000 + 1


def test_an_unknown_command_is_acked_unsupported(client):
    run, conn = client
    conn.mav.command_long_send(1, 1, MAV_CMD_USER_1, 0, 1, 2, 3, 4, 5, 6, 7)
    acks = [m for m in _receive(conn, 1.0, "COMMAND_ACK") if m.command == MAV_CMD_USER_1]
    assert len(acks) == 1
    assert acks[0].result == 3  # MAV_RESULT_UNSUPPORTED
    assert acks[0].get_srcSystem() == 1
    with run.lock:
        assert (MAV_CMD_USER_1, 3) in run.vehicle.acks


def test_param_value_carries_its_type_count_and_index(client):
    from followme.sim.vehicle import MAV_PARAM_TYPE_REAL32, PARAMS

    run, conn = client
    defaults = PARAMS[run.vehicle.autopilot.name]
    names = list(defaults)
    conn.mav.param_request_list_send(1, 1)
    listed = _receive(conn, 1.0, "PARAM_VALUE")
    assert [m.param_id for m in listed] == names  # each once, in its index order
    assert [m.param_index for m in listed] == list(range(len(names)))
    assert {m.param_count for m in listed} == {len(names)}
    assert {m.param_type for m in listed} == {MAV_PARAM_TYPE_REAL32} == {9}  # every one a float
    assert [m.param_value for m in listed] == [defaults[n] for n in names]
    assert {(m.get_srcSystem(), m.get_srcComponent()) for m in listed} == {(1, 1)}
    conn.mav.param_request_read_send(1, 1, b"", 2)  # by index
    [by_index] = _receive(conn, 0.5, "PARAM_VALUE")
    assert (by_index.param_id, by_index.param_index) == (names[2], 2)
    conn.mav.param_request_read_send(1, 1, names[1].encode(), -1)  # by name
    [by_name] = _receive(conn, 0.5, "PARAM_VALUE")
    assert (by_name.param_id, by_name.param_index) == (names[1], 1)
    conn.mav.param_set_send(1, 1, names[0].encode(), 12.5, MAV_PARAM_TYPE_REAL32)
    [echo] = _receive(conn, 0.5, "PARAM_VALUE")  # a set is answered with the new value
    assert (echo.param_id, echo.param_value, echo.param_index) == (names[0], 12.5, 0)
    assert echo.param_count == len(names)


def test_autopilot_version_says_its_protocol_capabilities(client):
    from pymavlink.dialects.v20 import all as mavlink

    run, conn = client
    for command, param1 in ((512, 148.0), (520, 1.0)):  # REQUEST_MESSAGE 148; the old way
        conn.mav.command_long_send(1, 1, command, 0, param1, 0, 0, 0, 0, 0, 0)
        got = _receive(conn, 1.0, ["COMMAND_ACK", "AUTOPILOT_VERSION"])
        assert [m.get_type() for m in got] == ["COMMAND_ACK", "AUTOPILOT_VERSION"], command
        assert (got[0].command, got[0].result) == (command, 0)  # ACCEPTED, then the answer
        version = got[1]
        caps = version.capabilities
        assert caps == (mavlink.MAV_PROTOCOL_CAPABILITY_PARAM_FLOAT
                        | mavlink.MAV_PROTOCOL_CAPABILITY_COMMAND_INT
                        | mavlink.MAV_PROTOCOL_CAPABILITY_SET_POSITION_TARGET_LOCAL_NED
                        | mavlink.MAV_PROTOCOL_CAPABILITY_MAVLINK2) == 2 | 8 | 128 | 8192
        assert not caps & (mavlink.MAV_PROTOCOL_CAPABILITY_MISSION_FLOAT
                           | mavlink.MAV_PROTOCOL_CAPABILITY_MISSION_INT
                           | mavlink.MAV_PROTOCOL_CAPABILITY_SET_POSITION_TARGET_GLOBAL_INT)
        assert version.uid == 1 and version.get_srcSystem() == 1


# ---- 4. the follower's messages, field by field, at a bare pymavlink socket ----

def test_the_followers_messages_on_the_wire(tmp_path):
    """The follower's link and commander against a plain pymavlink socket playing a PX4
    vehicle of system 7: every field the vehicle reads, as it arrives, and the command log."""
    import json

    from pymavlink import mavutil

    from follower_helpers import ColourSegmenter
    from followme.follower.mavlink.autopilots import PX4
    from followme.follower.mavlink.commander import (
        POSITION_AND_YAW,
        CommanderSettings,
        FollowCommander,
    )
    from followme.follower.mavlink.follower import MavlinkFollower
    from followme.follower.mavlink.frames import global_to_offset, ned_to_world
    from followme.follower.mavlink.link import COMPANION_COMPID, COMPANION_SYSID, MavlinkLink
    from followme.follower.tracking import Detected

    port = _free_udp_port()
    vehicle = mavutil.mavlink_connection(f"udpin:127.0.0.1:{port}", source_system=7,
                                         source_component=1, dialect="all")
    log = tmp_path / "sent.jsonl"
    link = MavlinkLink(f"udpout:127.0.0.1:{port}", PX4, log)
    lat0, lon0 = 47.3977, 8.5456
    companion = (COMPANION_SYSID, COMPANION_COMPID)

    def speak(mode: str) -> None:
        """The vehicle's HEARTBEAT and telemetry: 6 m over its origin, 494 m AMSL, north."""
        vehicle.mav.heartbeat_send(2, 12, 1 | 128, PX4.modes[mode], 4)
        vehicle.mav.local_position_ned_send(1000, 0.0, 0.0, -6.0, 0.0, 0.0, 0.0)
        vehicle.mav.global_position_int_send(1000, round(lat0 * 1e7), round(lon0 * 1e7),
                                             494_000, 6000, 0, 0, 0, 0)
        vehicle.mav.attitude_send(1000, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)

    def sees_her(follower: MavlinkFollower, north: float, answer: str):
        """The follower sees her ``north`` m north of the origin; the message it sends."""
        follower.commander.on_event(Detected(tuple(ned_to_world([north, 0.0, 0.0]))),
                                    follower.clock())
        follower.tick()
        return vehicle.recv_match(type=answer, blocking=True, timeout=5.0)

    try:
        hb = vehicle.recv_match(type="HEARTBEAT", blocking=True, timeout=5.0)
        assert hb is not None and (hb.get_srcSystem(), hb.get_srcComponent()) == companion
        assert (hb.type, hb.autopilot, hb.system_status) == (18, 8, 4)  # onboard, no autopilot
        speak("OFFBOARD")
        # the vehicle is heard: the gimbal's attitude asked for at 10 Hz, addressed to it
        ask = vehicle.recv_match(type="COMMAND_LONG", blocking=True, timeout=5.0)
        assert ask is not None and (ask.get_srcSystem(), ask.get_srcComponent()) == companion
        assert (ask.target_system, ask.target_component) == (7, 1)
        assert (ask.command, ask.param1, ask.param2) == (511, 285.0, 100_000.0)
        assert wait_until(lambda: link.state.lat is not None and link.state.attitude is not None
                          and link.state.position is not None, 5.0)

        # setpoints: LOCAL_NED, position and yaw only, 5 m short of her and 4 m above her
        follower = MavlinkFollower(ColourSegmenter(160), link,
                                   FollowCommander(CommanderSettings("px4", "setpoints")))
        sp = sees_her(follower, 10.0, "SET_POSITION_TARGET_LOCAL_NED")
        assert sp is not None and (sp.get_srcSystem(), sp.get_srcComponent()) == companion
        assert (sp.target_system, sp.target_component) == (7, 1)
        assert sp.coordinate_frame == mavutil.mavlink.MAV_FRAME_LOCAL_NED == 1
        assert sp.type_mask == POSITION_AND_YAW == 2552
        assert sp.type_mask & (1 | 2 | 4 | 1024) == 0  # x, y, z and yaw are used
        assert sp.type_mask & (8 | 16 | 32) == 56 and sp.type_mask & (64 | 128 | 256) == 448
        assert sp.type_mask & 2048  # yaw rate ignored
        np.testing.assert_allclose([sp.x, sp.y, sp.z, sp.yaw], [5.0, 0.0, -4.0, 0.0], atol=1e-5)

        # FOLLOW_TARGET: her lat/lon from the vehicle's own fix, alt AMSL, capability bits
        speak("AUTO.FOLLOW_TARGET")
        assert wait_until(lambda: link.state.custom_mode == PX4.modes["AUTO.FOLLOW_TARGET"], 5.0)
        follower = MavlinkFollower(ColourSegmenter(160), link,
                                   FollowCommander(CommanderSettings("px4", "follow-target")))
        first = sees_her(follower, 10.0, "FOLLOW_TARGET")
        assert first is not None and (first.get_srcSystem(), first.get_srcComponent()) == companion
        assert first.est_capabilities == 1 | 8  # POS and ATT: no velocity from one detection
        north, east = global_to_offset(lat0, lon0, first.lat / 1e7, first.lon / 1e7)
        assert abs(north - 10.0) < 0.02 and abs(east) < 0.02
        assert first.alt == pytest.approx(494.0 - 6.0)  # she stands at the origin's height
        assert list(first.vel) == [0.0, 0.0, 0.0]
        time.sleep(0.2)
        second = sees_her(follower, 10.2, "FOLLOW_TARGET")
        assert second.est_capabilities == 1 | 2 | 8  # and VEL, from the second
        assert second.vel[0] > 0.1 and abs(second.vel[1]) < 1e-6
    finally:
        link.close()
        vehicle.close()
    sent = [json.loads(line) for line in log.read_text().splitlines()]
    assert [m["msg"] for m in sent] == ["command_long", "set_position_target_local_ned",
                                        "follow_target", "follow_target"]
    assert sent[0]["command"] == 511 and sent[1]["type_mask"] == 2552


# ---- 5. followme sim vehicle ----

@pytest.mark.parametrize("autopilot", ["px4", "ardupilot"])
def test_followme_sim_vehicle_speaks_as_its_autopilot_on_its_url(autopilot, tmp_path):
    """The verb in a process of its own: PX4 listening (a client speaks first), ArduPilot
    sending, as its SITL's MAVProxy does; a pymavlink client hears its HEARTBEAT."""
    import signal

    from pymavlink import mavutil

    pytest.importorskip("pybullet", reason="the sim package needs pybullet")
    port = _free_udp_port()
    listens = autopilot == "px4"
    url = f"udpin:127.0.0.1:{port}" if listens else f"udpout:127.0.0.1:{port}"
    client = mavutil.mavlink_connection(
        f"udpout:127.0.0.1:{port}" if listens else f"udpin:127.0.0.1:{port}",
        source_system=COMPANION, source_component=191, dialect="all")
    proc = subprocess.Popen([sys.executable, "-m", "followme", "sim", "vehicle", "--autopilot",
                             autopilot, "--url", url, "--people", "0", "--seconds", "90"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        hb, deadline = None, time.monotonic() + 60.0  # imports and the world first
        while hb is None and time.monotonic() < deadline and proc.poll() is None:
            if listens:
                client.mav.heartbeat_send(18, 8, 0, 0, 4)
            hb = client.recv_match(type="HEARTBEAT", blocking=True, timeout=0.5)
        assert hb is not None, "no HEARTBEAT from followme sim vehicle"
        assert hb.autopilot == {"px4": 12, "ardupilot": 3}[autopilot]
        assert (hb.type, hb.get_srcSystem(), hb.get_srcComponent()) == (2, 1, 1)
        assert hb.custom_mode == {"px4": (4 << 16) | (3 << 24), "ardupilot": 5}[autopilot]
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        output, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        client.close()
    assert proc.returncode == 0, output[-2000:]
    follower = f"udpout:127.0.0.1:{port}" if listens else f"udpin:0.0.0.0:{port}"
    said = [line for line in output.splitlines() if line.startswith("sim vehicle:")]
    assert f"{'listening on' if listens else 'talking to'} {url}" in said[0]
    assert f"followme follow --mavlink {follower} --autopilot {autopilot}" in said[0]
    assert said[-1].startswith("sim vehicle: stopped after"), output[-2000:]
    assert "Traceback" not in output


def test_followme_sim_vehicle_errors_name_the_flag(capsys):
    pytest.importorskip("pybullet", reason="the sim package needs pybullet")
    from followme.cli import main

    for argv, start in ((["--url", "bogus"], "--url bogus: give udpout:HOST:PORT"),
                        (["--param", "FOLL_ENABLE=1"], "--param FOLL_ENABLE=1: px4's follow "
                                                       "parameters are FLW_TGT_DST"),
                        (["--autopilot", "ardupilot", "--param", "FOLL_ENABLE=yes"],
                         "--param FOLL_ENABLE=yes: give NAME=NUMBER"),
                        (["--people", "-1"], "--people -1: must be 0 or more")):
        assert main(["sim", "vehicle", *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"followme: error: {start}") and err.count("\n") == 1, err
