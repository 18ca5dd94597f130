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
