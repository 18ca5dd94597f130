"""The sim's quad as a MAVLink vehicle: what a companion computer sees of a PX4 or ArduPilot
multicopter, and how it flies what it is sent.

It speaks as that autopilot: HEARTBEAT with its autopilot type and custom modes at 1 Hz;
ATTITUDE, LOCAL_POSITION_NED, GLOBAL_POSITION_INT and GIMBAL_DEVICE_ATTITUDE_STATUS at the
rates of ``TELEMETRY_HZ`` (PX4's "onboard low bandwidth" link: 20, 30, 10 and 1 Hz), and
SYS_STATUS, EXTENDED_SYS_STATE and GPS_RAW_INT at 1 Hz (healthy sensors, in the air, a 3D fix:
what MAVSDK's health and in-air checks read); COMMAND_ACK to MAV_CMD_DO_SET_MODE and to
MAV_CMD_REQUEST_MESSAGE, answered with AUTOPILOT_VERSION or HOME_POSITION (UNSUPPORTED for
others); PARAM_VALUE for its follow parameters (read, list, set). It flies as those autopilots'
modes do (read from their code):

- PX4 AUTO.FOLLOW_TARGET (FlightTaskAutoFollowTarget): ``FLW_TGT_DST`` m from the target,
  horizontally, at ``FLW_TGT_FA`` degrees from her course (180: behind; the course changes only
  while she moves at 1 m/s or more), ``FLW_TGT_HT`` m (at least 8) above home
  (``FLW_TGT_ALT_M`` 0); horizontal moves only within 3 m of that height; facing her; the gimbal
  pitched at her, its yaw the vehicle's. It uses FOLLOW_TARGET's lat, lon, alt and velocity from
  any sender; after 3 s without one the target is frozen where it was and kept at that offset.
- ArduPilot FOLLOW (AP_Follow): refused unless ``FOLL_ENABLE`` is 1 (and nothing is taken
  while it is 0); FOLLOW_TARGET or GLOBAL_POSITION_INT, only from ``FOLL_SYSID`` (0: the first
  system that sends one, never its own); FOLLOW_TARGET's position only with est_capabilities
  bit 0, its velocity only with bit 1; GLOBAL_POSITION_INT's height above home
  (``FOLL_ALT_TYPE`` 1) or AMSL (0), its velocity, and its heading unless over 36000 cdeg; the
  target plus ``FOLL_OFS_X/Y/Z`` (NED), taken from where the vehicle is at the first fix if all
  zero; facing her (``FOLL_YAW_BEHAVE`` 1); the mount on her with ``FOLL_OPTIONS`` bit 0;
  hovering after 3 s without the target or beyond ``FOLL_DIST_MAX``.
- PX4 OFFBOARD / ArduPilot GUIDED: SET_POSITION_TARGET_LOCAL_NED positions and yaw. PX4: LOCAL_NED
  only, taken in any mode (OFFBOARD needs them first); it refuses OFFBOARD
  (TEMPORARILY_REJECTED) without a setpoint in the last ``COM_OF_LOSS_T`` s, and falls back to
  POSCTL (``COM_OBL_RC_ACT`` 0) when they stop for that long. ArduPilot
  (GCS_MAVLINK_Copter::handle_message_set_position_target_local_ned): only in GUIDED, which
  starts holding where it is; LOCAL_NED, LOCAL_OFFSET_NED (from where the vehicle is), BODY_NED
  and BODY_OFFSET_NED (both: forward-right-down turned by the vehicle's yaw, from where it is,
  the yaw relative to its heading); any other frame stops it where it is; it keeps its last
  position target (no timeout for positions).
- hold modes (AUTO.LOITER, POSCTL, LOITER, BRAKE): where the mode began; LAND: straight down,
  then disarmed; RTL: home at the current height, then LAND.

The sim world is x north, y west, z up, so NED = (x, -y, -z); ``HOME`` is the world origin.
The vehicle never arms or takes off: it starts armed and hovering, as QuadSim's quad does.
``pump()`` handles what has arrived and ``step(dt)`` flies and sends telemetry, both from the
sim's thread, so a run in simulated time stays repeatable.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

from followme.follower.geometry import look_angles
from followme.follower.mavlink.autopilots import (
    MAV_AUTOPILOT,
    MAV_MODE_FLAG_CUSTOM_MODE_ENABLED,
    autopilot,
)
from followme.follower.mavlink.frames import (
    euler_to_quaternion,
    global_to_offset,
    ned_to_world,
    offset_to_global,
    quaternion_to_euler,
    world_to_ned,
)
from followme.sim.quad import Quad

os.environ.setdefault("MAVLINK20", "1")

HOME = (47.397742, 8.545594, 488.0)  # lat, lon, m AMSL: PX4 SITL's default home
MAV_TYPE_QUADROTOR, MAV_STATE_ACTIVE, MAV_MODE_FLAG_SAFETY_ARMED = 2, 4, 128
MAV_RESULT_ACCEPTED, MAV_RESULT_TEMPORARILY_REJECTED = 0, 1
MAV_RESULT_UNSUPPORTED, MAV_RESULT_FAILED = 3, 4
MAV_CMD_DO_SET_MODE, MAV_CMD_SET_MESSAGE_INTERVAL, MAV_CMD_REQUEST_MESSAGE = 176, 511, 512
MAV_CMD_REQUEST_AUTOPILOT_CAPABILITIES = 520
AUTOPILOT_VERSION_ID, HOME_POSITION_ID = 148, 242
# MAV_PROTOCOL_CAPABILITY: PARAM_FLOAT 2, COMMAND_INT 8, SET_POSITION_TARGET_LOCAL_NED 128,
# MAVLINK2 8192
CAPABILITIES = 2 | 8 | 128 | 8192
# MAV_SYS_STATUS_SENSOR: 3D gyro 1, accel 2, mag 4, absolute pressure 8, GPS 32
SENSORS = 1 | 2 | 4 | 8 | 32
MAV_LANDED_STATE_ON_GROUND, MAV_LANDED_STATE_IN_AIR = 1, 2
GIMBAL_YAW_IN_VEHICLE_FRAME, GIMBAL_YAW_IN_EARTH_FRAME = 32, 64
MAV_FRAME_LOCAL_NED, MAV_FRAME_LOCAL_OFFSET_NED = 1, 7
MAV_FRAME_BODY_NED, MAV_FRAME_BODY_OFFSET_NED = 8, 9
BODY_FRAMES = (MAV_FRAME_BODY_NED, MAV_FRAME_BODY_OFFSET_NED)
ARDUPILOT_FRAMES = (MAV_FRAME_LOCAL_NED, MAV_FRAME_LOCAL_OFFSET_NED, *BODY_FRAMES)
HEADING_MAX = 36000  # cdeg: a GLOBAL_POSITION_INT.hdg above it (65535) says unknown
MAV_PARAM_TYPE_REAL32 = 9
TELEMETRY_HZ = {
    "px4": {"HEARTBEAT": 1.0, "ATTITUDE": 20.0, "LOCAL_POSITION_NED": 30.0,
            "GLOBAL_POSITION_INT": 10.0, "GIMBAL_DEVICE_ATTITUDE_STATUS": 1.0,
            "SYS_STATUS": 1.0, "EXTENDED_SYS_STATE": 1.0, "GPS_RAW_INT": 1.0},
    "ardupilot": {"HEARTBEAT": 1.0, "ATTITUDE": 10.0, "LOCAL_POSITION_NED": 10.0,
                  "GLOBAL_POSITION_INT": 10.0, "GIMBAL_DEVICE_ATTITUDE_STATUS": 10.0,
                  "SYS_STATUS": 1.0, "EXTENDED_SYS_STATE": 1.0, "GPS_RAW_INT": 1.0},
}
PARAMS = {
    "px4": {"FLW_TGT_DST": 8.0, "FLW_TGT_HT": 8.0, "FLW_TGT_FA": 180.0, "FLW_TGT_ALT_M": 0.0,
            "COM_OF_LOSS_T": 1.0, "COM_OBL_RC_ACT": 0.0},
    "ardupilot": {"FOLL_ENABLE": 0.0, "FOLL_SYSID": 0.0, "FOLL_DIST_MAX": 100.0,
                  "FOLL_OFS_X": 0.0, "FOLL_OFS_Y": 0.0, "FOLL_OFS_Z": 0.0, "FOLL_OFS_TYPE": 0.0,
                  "FOLL_YAW_BEHAVE": 1.0, "FOLL_ALT_TYPE": 1.0, "FOLL_OPTIONS": 0.0},
}
TARGET_TIMEOUT = 3.0  # s: PX4's GPS_MESSAGE_STALE_TIMEOUT_MS, ArduPilot's AP_FOLLOW_TIMEOUT_MS
PX4_MIN_HEIGHT = 8.0  # FLW_TGT_HT's minimum
PX4_COURSE_SPEED = 1.0  # m/s: the target's course is tracked from this speed
PX4_ALTITUDE_FIRST = 3.0  # m: farther from the follow height, PX4 only climbs or descends


@dataclass
class VehicleSettings:
    autopilot: str = "px4"
    url: str = "udpin:127.0.0.1:14540"
    sysid: int = 1
    compid: int = 1
    mount_pitch: float = 35.0  # deg below the horizon, where the camera looks when not aimed
    params: dict[str, float] = field(default_factory=dict)  # over the autopilot's defaults


@dataclass
class _Received:
    ned: np.ndarray
    yaw: float | None  # rad from north: a setpoint's yaw, a target's heading
    velocity: np.ndarray
    time: float

    def at(self, t: float, timeout: float = TARGET_TIMEOUT) -> np.ndarray:
        """Extrapolated to ``t``, frozen once stale."""
        return self.ned + self.velocity * min(t - self.time, timeout)


class SimVehicle:
    def __init__(self, quad: Quad, settings: VehicleSettings | None = None):
        from pymavlink import mavutil

        self.quad = quad
        self.settings = s = settings or VehicleSettings()
        self.autopilot = autopilot(s.autopilot)
        self.params = {**PARAMS[s.autopilot], **s.params}
        self.rates = TELEMETRY_HZ[s.autopilot]
        self.conn = mavutil.mavlink_connection(s.url, source_system=s.sysid,
                                               source_component=s.compid, dialect="all")
        self.time = 0.0
        self.armed = True
        self.mode = "AUTO.LOITER" if s.autopilot == "px4" else "LOITER"
        self.hold_at = quad.position.copy()
        self.target: _Received | None = None
        self.target_sysid: int | None = None
        self.setpoint: _Received | None = None
        self.offset: np.ndarray | None = None  # ArduPilot FOLLOW's offset from the target
        self.course: float | None = None  # the target's course (rad from north)
        self.received: dict[str, int] = {}
        self.sent = 0
        self.acks: list[tuple[int, int]] = []  # (command, result)
        self.log: list[str] = []  # mode changes and why
        self.operator_done = False
        self._due = dict.fromkeys(self.rates, 0.0)

    # ---- modes ----

    def set_mode(self, mode: str, why: str = "operator") -> None:
        if mode not in self.autopilot.modes:
            raise ValueError(f"{mode}: not a {self.autopilot.name} mode")
        if mode != self.mode:
            self.log.append(f"{self.time:.1f} s: {self.mode} -> {mode} ({why})")
            if mode == "GUIDED":  # ArduPilot's GUIDED starts where it is, not at an old target
                self.setpoint = None
        self.mode = mode
        self.hold_at = self.quad.position.copy()
        self.offset = None

    @property
    def kind(self) -> str:
        """The mode as the sim's metrics name them: follow, hold, land, rtl."""
        if self.mode in self.autopilot.follow_mode.values():
            return "follow"
        return {"AUTO.LAND": "land", "LAND": "land", "AUTO.RTL": "rtl", "RTL": "rtl"}.get(
            self.mode, "hold")

    def operator_selects(self, command: str) -> bool:
        """The pilot switching, once, to the mode that obeys ``command`` (as a ground station's
        DO_SET_MODE would); False while the vehicle refuses it (PX4's OFFBOARD before a
        setpoint stream)."""
        mode = self.autopilot.follow_mode[command]
        if self.mode == mode or self.operator_done:
            return True
        result = self._requested_mode(*self.autopilot.set_mode_params(mode)[1:])
        self.operator_done = result == MAV_RESULT_ACCEPTED
        return self.operator_done

    def followed_world(self) -> np.ndarray | None:
        """What the vehicle flies after, in the sim's world: the FOLLOW_TARGET position in the
        follow-target mode, else None."""
        if self.mode != self.autopilot.follow_mode["follow-target"] or self.target is None:
            return None
        return ned_to_world(self.target.at(self.time))

    # ---- in ----

    def pump(self) -> int:
        """Handle every message that has arrived; returns how many."""
        n = 0
        while (msg := self.conn.recv_match(blocking=False)) is not None:
            kind = msg.get_type()
            if kind == "BAD_DATA":
                continue
            self.received[kind] = self.received.get(kind, 0) + 1
            n += 1
            handler = getattr(self, f"_on_{kind.lower()}", None)
            if handler is not None:
                try:
                    handler(msg)
                except (ValueError, TypeError, OverflowError):  # NaN where an int belongs...
                    self.log.append(f"{self.time:.1f} s: a {kind} it could not use")
        return n

    def _ned_of(self, lat_e7: int, lon_e7: int, alt: float) -> np.ndarray:
        north, east = global_to_offset(HOME[0], HOME[1], lat_e7 / 1e7, lon_e7 / 1e7)
        return np.array([north, east, HOME[2] - alt])

    def _from_follow_target(self, sysid: int) -> bool:
        """Whether ArduPilot's AP_Follow takes a target message from ``sysid``: FOLL_ENABLE set,
        not its own, and FOLL_SYSID's (0: the first system to send one)."""
        if not self.params["FOLL_ENABLE"] or sysid == self.settings.sysid:
            return False
        wanted = int(self.params["FOLL_SYSID"])
        if wanted == 0 and self.target_sysid is None:
            self.target_sysid = sysid
        return sysid == (wanted or self.target_sysid)

    def _on_follow_target(self, msg) -> None:
        velocity = np.array(msg.vel, float)
        if self.autopilot.name == "ardupilot":
            if not msg.est_capabilities & 1 or not self._from_follow_target(msg.get_srcSystem()):
                return
            if not msg.est_capabilities & 2:
                velocity = np.zeros(3)
        heading = quaternion_to_euler(msg.attitude_q)[2] if msg.est_capabilities & 8 else None
        self.target = _Received(self._ned_of(msg.lat, msg.lon, msg.alt), heading, velocity,
                                self.time)

    def _on_global_position_int(self, msg) -> None:
        """ArduPilot's FOLLOW also follows another system's GLOBAL_POSITION_INT (PX4 does not)."""
        if self.autopilot.name != "ardupilot" or (msg.lat == 0 and msg.lon == 0) or \
                not self._from_follow_target(msg.get_srcSystem()):
            return
        ned = self._ned_of(msg.lat, msg.lon, msg.alt / 1000)
        if self.params["FOLL_ALT_TYPE"] == 1:  # her height above home, not above the sea
            ned[2] = -msg.relative_alt / 1000
        heading = math.radians(msg.hdg / 100) if msg.hdg <= HEADING_MAX else None
        velocity = np.array([msg.vx, msg.vy, msg.vz], float) / 100
        self.target = _Received(ned, heading, velocity, self.time)

    def _on_set_position_target_local_ned(self, msg) -> None:
        if self.autopilot.name == "ardupilot":
            self._ardupilot_setpoint(msg)
            return
        if msg.coordinate_frame != MAV_FRAME_LOCAL_NED or msg.type_mask & 0b111:  # a position
            return
        yaw = None if msg.type_mask & 1024 else float(msg.yaw)
        self.setpoint = _Received(np.array([msg.x, msg.y, msg.z]), yaw, np.zeros(3), self.time)

    def _ardupilot_setpoint(self, msg) -> None:
        """GUIDED's position target: local, from here, or forward-right-down from here."""
        if self.mode != "GUIDED":
            return
        here = world_to_ned(self.quad.position)
        if msg.coordinate_frame not in ARDUPILOT_FRAMES:
            self.setpoint = _Received(here, None, np.zeros(3), self.time)  # "input not valid"
            return
        if msg.type_mask & 0b111:  # no position: velocities and accelerations are not flown
            return
        ned = np.array([msg.x, msg.y, msg.z])
        yaw = None if msg.type_mask & 1024 else float(msg.yaw)
        if msg.coordinate_frame in BODY_FRAMES:
            heading = -math.radians(self.quad.yaw)
            c, s = math.cos(heading), math.sin(heading)
            ned[:2] = c * ned[0] - s * ned[1], s * ned[0] + c * ned[1]
            yaw = None if yaw is None else heading + yaw
        if msg.coordinate_frame != MAV_FRAME_LOCAL_NED:
            ned = ned + here
        self.setpoint = _Received(ned, yaw, np.zeros(3), self.time)

    def _on_command_long(self, msg) -> None:
        answer = None
        if msg.command == MAV_CMD_DO_SET_MODE:
            result = self._requested_mode(msg.param2, msg.param3)
        elif msg.command == MAV_CMD_SET_MESSAGE_INTERVAL:
            result = self._set_interval(int(msg.param1), msg.param2)
        elif msg.command in (MAV_CMD_REQUEST_MESSAGE, MAV_CMD_REQUEST_AUTOPILOT_CAPABILITIES):
            wanted = AUTOPILOT_VERSION_ID if msg.command == MAV_CMD_REQUEST_AUTOPILOT_CAPABILITIES \
                else int(msg.param1)
            answer = {AUTOPILOT_VERSION_ID: self._send_autopilot_version,
                      HOME_POSITION_ID: self._send_home_position}.get(wanted)
            result = MAV_RESULT_ACCEPTED if answer else MAV_RESULT_UNSUPPORTED
        else:
            result = MAV_RESULT_UNSUPPORTED
        self.acks.append((msg.command, result))
        self._send("command_ack", command=msg.command, result=result)
        if answer is not None:
            answer()

    def _set_interval(self, message_id: int, interval_us: float) -> int:
        """MAV_CMD_SET_MESSAGE_INTERVAL for one of the telemetry streams (-1: stop it)."""
        from pymavlink.dialects.v20 import all as mavlink

        name = next((k for k in self.rates
                     if getattr(mavlink, f"MAVLINK_MSG_ID_{k}", None) == message_id), None)
        if name is None or name == "HEARTBEAT":
            return MAV_RESULT_UNSUPPORTED
        default = TELEMETRY_HZ[self.autopilot.name][name]
        hz = default if interval_us == 0 else (1e-9 if interval_us < 0 else 1e6 / interval_us)
        self.rates = {**self.rates, name: hz}  # 0: the default rate; -1: stop
        self._due[name] = self.time
        return MAV_RESULT_ACCEPTED

    def _requested_mode(self, param2: float, param3: float) -> int:
        if not (math.isfinite(param2) and math.isfinite(param3)):
            return MAV_RESULT_FAILED
        custom = self.autopilot.mode_of(param2, param3)
        if custom is None:  # PX4 acknowledges an unknown mode without changing
            return MAV_RESULT_ACCEPTED if self.autopilot.name == "px4" else MAV_RESULT_FAILED
        mode = self.autopilot.mode_name(custom)
        if mode == "OFFBOARD" and (self.setpoint is None or self.time - self.setpoint.time
                                   > self.params["COM_OF_LOSS_T"]):
            return MAV_RESULT_TEMPORARILY_REJECTED  # no setpoint stream yet
        if mode == "FOLLOW" and not self.params["FOLL_ENABLE"]:
            return MAV_RESULT_FAILED  # "Set FOLL_ENABLE = 1"
        self.set_mode(mode, "DO_SET_MODE")
        return MAV_RESULT_ACCEPTED

    def _on_param_request_read(self, msg) -> None:
        names = list(self.params)
        name = msg.param_id
        if not name and 0 <= msg.param_index < len(names):
            name = names[msg.param_index]
        if name in self.params:
            self._param_value(name)

    def _on_param_request_list(self, msg) -> None:
        for name in self.params:
            self._param_value(name)

    def _on_param_set(self, msg) -> None:
        if msg.param_id in self.params:
            value = float(msg.param_value)
            if msg.param_id == "FLW_TGT_HT":
                value = max(value, PX4_MIN_HEIGHT)
            self.params[msg.param_id] = value
            self._param_value(msg.param_id)

    def _param_value(self, name: str) -> None:
        names = list(self.params)
        self._send("param_value", param_id=name.encode(), param_value=float(self.params[name]),
                   param_type=MAV_PARAM_TYPE_REAL32, param_count=len(names),
                   param_index=names.index(name))

    # ---- flying ----

    def step(self, dt: float) -> None:
        """Fly ``dt`` s in the current mode, then send the telemetry that is due."""
        self.pump()
        self.time += dt
        goal, yaw, aim = self._goal()
        self.quad.fly_towards(ned_to_world(goal), dt, yaw=yaw)
        pitch, gimbal_yaw = aim if aim is not None else (self.settings.mount_pitch, self.quad.yaw)
        self.quad.point_gimbal(pitch, gimbal_yaw, dt)
        self._telemetry()

    def _facing(self, her: np.ndarray) -> float | None:
        """The world yaw (deg) from the vehicle to ``her`` (NED), None within 1 m."""
        d = ned_to_world(her) - self.quad.position
        return math.degrees(math.atan2(d[1], d[0])) if math.hypot(d[0], d[1]) > 1.0 else None

    def _course(self, here: np.ndarray, her: np.ndarray, velocity: np.ndarray,
                min_speed: float) -> float:
        """Her course (rad from north): where she walks, else the last one; before any, the
        one that puts the vehicle behind her, so that it stays where it is."""
        if math.hypot(velocity[0], velocity[1]) >= min_speed:
            self.course = math.atan2(velocity[1], velocity[0])
        elif self.course is None:
            self.course = math.atan2(her[1] - here[1], her[0] - here[0])
        return self.course

    def _goal(self) -> tuple[np.ndarray, float | None, tuple[float, float] | None]:
        """(where to fly, NED; world yaw in degrees or None; the gimbal's world pitch and yaw in
        degrees, or None for the fixed mount)."""
        here = world_to_ned(self.quad.position)
        mode = self.mode
        hold = world_to_ned(self.hold_at)
        if mode == self.autopilot.follow_mode["follow-target"]:
            if self.target is None:
                return hold, None, None
            if self.autopilot.name == "px4":
                return self._px4_follow(here)
            return self._ardupilot_follow(here)
        if mode == self.autopilot.follow_mode["setpoints"]:
            sp = self.setpoint
            if mode == "OFFBOARD" and (sp is None or
                                       self.time - sp.time > self.params["COM_OF_LOSS_T"]):
                self.set_mode("POSCTL", "offboard setpoints stopped (COM_OF_LOSS_T, "
                                        "COM_OBL_RC_ACT 0)")
                return world_to_ned(self.hold_at), None, None
            if sp is None:
                return hold, None, None
            return sp.ned, None if sp.yaw is None else -math.degrees(sp.yaw), None
        if mode in ("AUTO.LAND", "LAND"):
            if here[2] > -0.05:
                self.armed = False
            return np.array([hold[0], hold[1], 0.0]), None, None
        if mode in ("AUTO.RTL", "RTL"):
            if math.hypot(here[0], here[1]) < 0.5:
                self.set_mode("AUTO.LAND" if self.autopilot.name == "px4" else "LAND",
                              "home reached")
            return np.array([0.0, 0.0, here[2]]), None, None
        return hold, None, None

    def _px4_follow(self, here: np.ndarray) -> tuple[np.ndarray, float | None,
                                                     tuple[float, float]]:
        p, target = self.params, self.target
        stale = self.time - target.time > TARGET_TIMEOUT
        her = target.at(self.time)
        velocity = np.zeros(3) if stale else target.velocity
        angle = self._course(here, her, velocity, PX4_COURSE_SPEED) + math.radians(
            p["FLW_TGT_FA"])
        height = max(p["FLW_TGT_HT"], PX4_MIN_HEIGHT)
        down = her[2] - height if p["FLW_TGT_ALT_M"] == 2 else -height
        goal = np.array([her[0] + p["FLW_TGT_DST"] * math.cos(angle),
                         her[1] + p["FLW_TGT_DST"] * math.sin(angle), down])
        if abs(here[2] - down) > PX4_ALTITUDE_FIRST:
            goal[:2] = here[:2]
        # the gimbal: pitched at her as if she stood at home's height, yawed with the vehicle
        pitch, _ = look_angles(ned_to_world(here), ned_to_world([her[0], her[1], 0.0]))
        return goal, self._facing(her), (pitch, self.quad.yaw)

    def _ardupilot_follow(self, here: np.ndarray) -> tuple[np.ndarray, float | None,
                                                           tuple[float, float] | None]:
        p, target = self.params, self.target
        her = target.at(self.time)
        if self.time - target.time > TARGET_TIMEOUT or \
                np.linalg.norm(her - here) > p["FOLL_DIST_MAX"]:
            self.hold_at = self.quad.position.copy()  # zero velocity: hover where it is
            return here, None, None
        given = np.array([p["FOLL_OFS_X"], p["FOLL_OFS_Y"], p["FOLL_OFS_Z"]])
        if not given.any():
            if self.offset is None:  # taken from where the vehicle is, at the first fix
                self.offset = here - her
            offset = self.offset
        elif p["FOLL_OFS_TYPE"] == 1:  # forward-right-down of her heading
            if target.yaw is None:  # no heading: no target
                self.hold_at = self.quad.position.copy()
                return here, None, None
            c, s = math.cos(target.yaw), math.sin(target.yaw)
            offset = np.array([c * given[0] - s * given[1], s * given[0] + c * given[1],
                               given[2]])
        else:
            offset = given
        goal = her + offset
        yaw = self._facing(her) if p["FOLL_YAW_BEHAVE"] == 1 else None
        aim = look_angles(self.quad.camera_position, ned_to_world(her)) \
            if int(p["FOLL_OPTIONS"]) & 1 else None
        return goal, yaw, aim

    # ---- out ----

    def _send(self, name: str, **fields) -> None:
        if getattr(self.conn, "udp_server", False) and not self.conn.clients:
            return  # udpin: no companion has spoken yet
        getattr(self.conn.mav, f"{name}_send")(**fields)
        self.sent += 1

    def send_telemetry(self) -> None:
        """Every telemetry message now (a companion that has just connected)."""
        self._due = dict.fromkeys(self.rates, -math.inf)
        self._telemetry()

    def _telemetry(self) -> None:
        for kind, hz in self.rates.items():
            if self.time + 1e-9 >= self._due[kind]:
                self._due[kind] = max(self._due[kind] + 1.0 / hz, self.time)
                getattr(self, f"_send_{kind.lower()}")()

    def _boot_ms(self) -> int:
        return int(self.time * 1000)

    def _send_heartbeat(self) -> None:
        base = MAV_MODE_FLAG_CUSTOM_MODE_ENABLED | (MAV_MODE_FLAG_SAFETY_ARMED if self.armed
                                                    else 0)
        self._send("heartbeat", type=MAV_TYPE_QUADROTOR,
                   autopilot=MAV_AUTOPILOT[self.autopilot.name], base_mode=base,
                   custom_mode=self.autopilot.modes[self.mode], system_status=MAV_STATE_ACTIVE)

    def _send_attitude(self) -> None:
        pose = self.quad.pose()
        self._send("attitude", time_boot_ms=self._boot_ms(), roll=math.radians(pose.roll),
                   pitch=-math.radians(pose.pitch), yaw=-math.radians(pose.yaw), rollspeed=0.0,
                   pitchspeed=0.0, yawspeed=0.0)

    def _send_local_position_ned(self) -> None:
        n, e, d = world_to_ned(self.quad.position)
        vn, ve, vd = world_to_ned(self.quad.velocity)
        self._send("local_position_ned", time_boot_ms=self._boot_ms(), x=n, y=e, z=d, vx=vn,
                   vy=ve, vz=vd)

    def _send_global_position_int(self) -> None:
        n, e, d = world_to_ned(self.quad.position)
        vn, ve, vd = world_to_ned(self.quad.velocity)
        lat, lon = offset_to_global(HOME[0], HOME[1], n, e)
        self._send("global_position_int", time_boot_ms=self._boot_ms(), lat=round(lat * 1e7),
                   lon=round(lon * 1e7), alt=round((HOME[2] - d) * 1000),
                   relative_alt=round(-d * 1000), vx=round(vn * 100), vy=round(ve * 100),
                   vz=round(vd * 100), hdg=round((-self.quad.yaw % 360) * 100) % 36000)

    def _send_gimbal_device_attitude_status(self) -> None:
        """PX4's gimbal: its yaw relative to the vehicle; ArduPilot's mount: in the earth frame."""
        pitch = -math.radians(self.quad.gimbal_pitch)
        if self.autopilot.name == "px4":
            flags = GIMBAL_YAW_IN_VEHICLE_FRAME
            yaw = -math.radians(self.quad.gimbal_yaw - self.quad.yaw)
        else:
            flags, yaw = GIMBAL_YAW_IN_EARTH_FRAME, -math.radians(self.quad.gimbal_yaw)
        self._send("gimbal_device_attitude_status", target_system=0, target_component=0,
                   time_boot_ms=self._boot_ms(), flags=flags,
                   q=list(euler_to_quaternion(0.0, pitch, yaw)), angular_velocity_x=0.0,
                   angular_velocity_y=0.0, angular_velocity_z=0.0, failure_flags=0)

    def _send_sys_status(self) -> None:
        self._send("sys_status", onboard_control_sensors_present=SENSORS,
                   onboard_control_sensors_enabled=SENSORS,
                   onboard_control_sensors_health=SENSORS, load=200, voltage_battery=15800,
                   current_battery=1200, battery_remaining=80, drop_rate_comm=0, errors_comm=0,
                   errors_count1=0, errors_count2=0, errors_count3=0, errors_count4=0)

    def _send_extended_sys_state(self) -> None:
        flying = self.armed and self.quad.position[2] > 0.1
        self._send("extended_sys_state", vtol_state=0,
                   landed_state=MAV_LANDED_STATE_IN_AIR if flying else
                   MAV_LANDED_STATE_ON_GROUND)

    def _send_gps_raw_int(self) -> None:
        n, e, d = world_to_ned(self.quad.position)
        lat, lon = offset_to_global(HOME[0], HOME[1], n, e)
        self._send("gps_raw_int", time_usec=int(self.time * 1e6), fix_type=3,
                   lat=round(lat * 1e7), lon=round(lon * 1e7), alt=round((HOME[2] - d) * 1000),
                   eph=80, epv=120, vel=round(float(np.hypot(*self.quad.velocity[:2])) * 100),
                   cog=65535, satellites_visible=14)

    def _send_autopilot_version(self) -> None:
        self._send("autopilot_version", capabilities=CAPABILITIES, flight_sw_version=0,
                   middleware_sw_version=0, os_sw_version=0, board_version=0,
                   flight_custom_version=[0] * 8, middleware_custom_version=[0] * 8,
                   os_custom_version=[0] * 8, vendor_id=0, product_id=0, uid=self.settings.sysid)

    def _send_home_position(self) -> None:
        self._send("home_position", latitude=round(HOME[0] * 1e7), longitude=round(HOME[1] * 1e7),
                   altitude=round(HOME[2] * 1000), x=0.0, y=0.0, z=0.0, q=[1.0, 0.0, 0.0, 0.0],
                   approach_x=0.0, approach_y=0.0, approach_z=0.0)

    def close(self) -> None:
        self.conn.close()


# What the sim's operator sets on ArduPilot: FOLLOW enabled, the mount on her, and PX4's default
# geometry (8 m behind her heading, 8 m up) in place of "wherever the vehicle was"
ARDUPILOT_SETUP = {"FOLL_ENABLE": 1.0, "FOLL_OPTIONS": 1.0, "FOLL_OFS_TYPE": 1.0,
                   "FOLL_OFS_X": -8.0, "FOLL_OFS_Z": -8.0}


def sim_vehicle(quad: Quad, commander, port: int = 0) -> SimVehicle:
    """The sim's quad as the vehicle ``commander`` (a CommanderSettings) flies, on 127.0.0.1
    (``port`` 0: a free one): PX4 with its defaults, ArduPilot with ``ARDUPILOT_SETUP``."""
    params = {} if commander.autopilot == "px4" else dict(ARDUPILOT_SETUP)
    return SimVehicle(quad, VehicleSettings(commander.autopilot, url=f"udpin:127.0.0.1:{port}",
                                            params=params))
