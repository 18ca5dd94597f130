"""The MAVLink connection to the vehicle (pymavlink): a companion computer's HEARTBEAT at 1 Hz,
the vehicle's telemetry into a ``VehicleState``, and every message the commander sends written
to a JSON-lines log (and the decisions and mode changes to the console).

URLs as pymavlink and MAVSDK write them: ``udpout:127.0.0.1:14540`` (send to the vehicle's
port), ``udpin:0.0.0.0:14550`` (listen for it), ``tcp:127.0.0.1:5760``,
``serial:/dev/ttyACM0:921600`` (or ``/dev/ttyACM0,921600``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from followme.follower.mavlink.autopilots import MAV_AUTOPILOT, Autopilot
from followme.follower.mavlink.commander import Message, VehicleState
from followme.follower.mavlink.frames import quaternion_to_euler

os.environ.setdefault("MAVLINK20", "1")  # GIMBAL_DEVICE_ATTITUDE_STATUS (#285) needs MAVLink 2

log = logging.getLogger("followme.follower.mavlink")
# A system of its own: ArduPilot's FOLLOW ignores FOLLOW_TARGET from the vehicle's own system id
COMPANION_SYSID = 245
COMPANION_COMPID = 191  # MAV_COMP_ID_ONBOARD_COMPUTER
MAV_TYPE_ONBOARD_CONTROLLER, MAV_AUTOPILOT_INVALID, MAV_STATE_ACTIVE = 18, 8, 4
MAV_MODE_FLAG_SAFETY_ARMED = 128
GIMBAL_YAW_LOCK, GIMBAL_YAW_IN_VEHICLE_FRAME, GIMBAL_YAW_IN_EARTH_FRAME = 16, 32, 64
MAV_CMD_SET_MESSAGE_INTERVAL, GIMBAL_DEVICE_ATTITUDE_STATUS_ID, GIMBAL_HZ = 511, 285, 10.0
MAV_SENSOR_ROTATION_PITCH_270 = 25  # a rangefinder looking down


def connection_url(url: str) -> str:
    """pymavlink's form of a MAVSDK-style URL: ``serial:/dev/ttyACM0:921600`` ->
    ``/dev/ttyACM0,921600``; the others as they are."""
    if url.startswith("serial:"):
        rest = url[len("serial:"):]
        device, _, baud = rest.rpartition(":") if rest.count(":") else (rest, "", "")
        return f"{device},{baud}" if baud.isdigit() else rest
    if not url.startswith(("udpin:", "udpout:", "udp:", "tcp:", "tcpin:", "/dev/", "COM")):
        raise ValueError(f"--mavlink {url}: give udpin:HOST:PORT, udpout:HOST:PORT, "
                         "tcp:HOST:PORT or serial:DEVICE:BAUD")
    return url


def _finite(msg) -> bool:
    """Whether every number a message carries is finite."""
    for value in msg.to_dict().values():
        values = value if isinstance(value, list | tuple) else [value]
        if any(isinstance(v, float) and not math.isfinite(v) for v in values):
            return False
    return True


class MavlinkLink:
    """One vehicle. ``state`` is updated by a reader thread; ``send`` sends and logs."""

    def __init__(self, url: str, autopilot: Autopilot, log_path: str | Path | None = None,
                 sysid: int = COMPANION_SYSID, compid: int = COMPANION_COMPID,
                 vehicle_sysid: int | None = None,
                 clock: Callable[[], float] = time.monotonic):
        """``clock``: the time the vehicle's messages are stamped with on arrival (the sim
        passes its simulated clock)."""
        from pymavlink import mavutil

        self.autopilot = autopilot
        self.vehicle_sysid = vehicle_sysid
        self.vehicle_compid = 1
        self.rejected: dict[str, int] = {}  # vehicle messages with non-finite numbers
        self.clock = clock
        self.state = VehicleState()
        self.received: dict[str, int] = {}
        self.sent: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._last_note = ""
        try:
            self.conn = mavutil.mavlink_connection(connection_url(url), source_system=sysid,
                                                   source_component=compid, dialect="all",
                                                   autoreconnect=True)
        except Exception as e:  # pymavlink raises OSError, SerialException, ValueError...
            raise OSError(f"--mavlink {url}: cannot open ({e})") from e
        self._log = open(log_path, "a", buffering=1) if log_path else None  # noqa: SIM115
        self._threads = [threading.Thread(target=self._heartbeats, daemon=True,
                                          name="mavlink-heartbeat"),
                         threading.Thread(target=self._read, daemon=True, name="mavlink-read")]
        for t in self._threads:
            t.start()

    # ---- out ----

    def send(self, messages: list[Message], notes: list[str] | None = None) -> None:
        for name, fields in messages:
            with self._lock:  # the stream and the reader (SET_MESSAGE_INTERVAL) both send
                getattr(self.conn.mav, f"{name}_send")(**fields)
                self.sent[name] = self.sent.get(name, 0) + 1
                if self._log is not None:
                    self._log.write(json.dumps({"t": round(time.time(), 3), "msg": name,
                                                **fields}) + "\n")
            if name == "command_long":
                log.info("mavlink: sent COMMAND_LONG %d (%s)", fields["command"],
                         ", ".join(f"{fields[f'param{i}']:g}" for i in range(1, 4)))
        for note in notes or []:
            if note != self._last_note:
                log.info("mavlink: %s", note)
                self._last_note = note
        if notes is not None:
            notes.clear()

    def _request_rates(self, sysid: int, compid: int) -> None:
        """Ask for the camera's attitude at ``GIMBAL_HZ``: PX4's onboard link sends it at 1 Hz,
        too slow to place her while the gimbal moves."""
        self.send([("command_long", dict(
            target_system=sysid, target_component=compid, command=MAV_CMD_SET_MESSAGE_INTERVAL,
            confirmation=0, param1=float(GIMBAL_DEVICE_ATTITUDE_STATUS_ID),
            param2=1e6 / GIMBAL_HZ, param3=0.0, param4=0.0, param5=0.0, param6=0.0,
            param7=0.0))])

    def _heartbeats(self) -> None:
        while True:
            try:
                with self._lock:
                    self.conn.mav.heartbeat_send(MAV_TYPE_ONBOARD_CONTROLLER,
                                                 MAV_AUTOPILOT_INVALID, 0, 0, MAV_STATE_ACTIVE)
            except OSError as e:
                log.warning("mavlink: heartbeat not sent: %s", e)
            if self._stop.wait(1.0):
                return

    # ---- in ----

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self.conn.recv_match(blocking=True, timeout=0.2)
            except (OSError, ValueError) as e:  # a closed socket, a garbled frame
                if not self._stop.is_set():
                    log.warning("mavlink: read failed: %s", e)
                    time.sleep(0.2)
                continue
            if msg is None:
                continue
            try:
                self.on_message(msg)
            except Exception as e:  # a message we did not expect: logged, never fatal
                log.warning("mavlink: could not read a %s: %s", msg.get_type(), e)

    def on_message(self, msg) -> None:
        """Fold one vehicle message into ``state`` (messages of other systems are ignored)."""
        kind = msg.get_type()
        if kind == "BAD_DATA":
            return
        sysid = msg.get_srcSystem()
        if self.vehicle_sysid is not None and sysid != self.vehicle_sysid:
            return
        if not _finite(msg):  # a NaN pose would become a NaN command
            self.rejected[kind] = self.rejected.get(kind, 0) + 1
            return
        s = self.state
        if hasattr(msg, "time_boot_ms"):
            s.boot_ms = int(msg.time_boot_ms)
        if kind == "HEARTBEAT":
            if msg.autopilot != MAV_AUTOPILOT[self.autopilot.name]:  # a GCS, a companion...
                return
            if self.vehicle_sysid is None:
                self.vehicle_sysid, self.vehicle_compid = sysid, msg.get_srcComponent()
                self._request_rates(sysid, msg.get_srcComponent())
            before = s.custom_mode
            s.heard, s.custom_mode = self.clock(), int(msg.custom_mode)
            s.armed = bool(msg.base_mode & MAV_MODE_FLAG_SAFETY_ARMED)
            if before != s.custom_mode:
                log.info("mavlink: vehicle %d in %s", sysid,
                         self.autopilot.mode_name(s.custom_mode))
        elif kind == "LOCAL_POSITION_NED":
            s.position = np.array([msg.x, msg.y, msg.z])
            s.velocity = np.array([msg.vx, msg.vy, msg.vz])
            s.position_time = self.clock()
        elif kind == "GLOBAL_POSITION_INT":
            if msg.lat == 0 and msg.lon == 0:  # ArduPilot before a GPS fix
                return
            s.lat, s.lon, s.alt = msg.lat / 1e7, msg.lon / 1e7, msg.alt / 1000.0
        elif kind == "ATTITUDE":
            s.attitude = (msg.roll, msg.pitch, msg.yaw)
        elif kind == "GIMBAL_DEVICE_ATTITUDE_STATUS":
            s.gimbal = quaternion_to_euler(msg.q)
            # the spec: yaw in the earth frame with flag 64; in the vehicle's with 32; with
            # neither, YAW_LOCK (16) says earth (ArduPilot sends 16 with 32)
            f = msg.flags
            s.gimbal_earth_yaw = bool(f & GIMBAL_YAW_IN_EARTH_FRAME) or (
                not f & GIMBAL_YAW_IN_VEHICLE_FRAME and bool(f & GIMBAL_YAW_LOCK))
        elif kind == "DISTANCE_SENSOR":
            # a downward rangefinder, within its range: the ground under the vehicle
            if msg.orientation == MAV_SENSOR_ROTATION_PITCH_270 and \
                    msg.min_distance <= msg.current_distance <= msg.max_distance:
                s.ground_below, s.ground_time = msg.current_distance / 100.0, self.clock()
        elif kind == "COMMAND_ACK":
            log.info("mavlink: COMMAND_ACK %d result %d", msg.command, msg.result)
        self.received[kind] = self.received.get(kind, 0) + 1

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(2.0)
        self.conn.close()
        if self._log is not None:
            self._log.close()
