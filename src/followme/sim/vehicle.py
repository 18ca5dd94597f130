"""The sim's quad as a MAVLink vehicle: what a companion computer sees of a PX4 or ArduPilot
multicopter, and how it flies what it is sent.

It speaks as that autopilot: HEARTBEAT with its autopilot type and custom modes at 1 Hz;
ATTITUDE (20 Hz), LOCAL_POSITION_NED, GLOBAL_POSITION_INT and GIMBAL_DEVICE_ATTITUDE_STATUS
(10 Hz); COMMAND_ACK to MAV_CMD_DO_SET_MODE (and to the message-rate requests MAVSDK sends);
PARAM_VALUE for its follow parameters (read, list and set). It flies like that autopilot's
modes:

- PX4 AUTO.FOLLOW_TARGET: ``FLW_TGT_DST`` m from the target at ``FLW_TGT_FA`` degrees from her
  course (180: behind), ``FLW_TGT_HT`` m above her, facing her, the gimbal on her; the target's
  last position held when FOLLOW_TARGET stops.
- ArduPilot FOLLOW: the target plus the ``FOLL_OFS_X/Y/Z`` offsets (NED), taken from where the
  vehicle is when the mode starts if they are all zero; facing her (``FOLL_YAW_BEHAVE`` 1);
  holding after 3 s without the target; only FOLLOW_TARGET from ``FOLL_SYSID`` (0: the first
  system that sends one).
- PX4 OFFBOARD / ArduPilot GUIDED: SET_POSITION_TARGET_LOCAL_NED positions and yaw. PX4 refuses
  OFFBOARD without a setpoint in the last 0.5 s and falls back to AUTO.LOITER after
  ``COM_OF_LOSS_T`` s without one; ArduPilot keeps its last position target.
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
import time
from dataclasses import dataclass, field

import numpy as np

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
    world_to_ned,
)
from followme.sim.quad import Quad

os.environ.setdefault("MAVLINK20", "1")

HOME = (47.397742, 8.545594, 488.0)  # lat, lon, m AMSL: PX4 SITL's default home
MAV_TYPE_QUADROTOR, MAV_STATE_ACTIVE, MAV_MODE_FLAG_SAFETY_ARMED = 2, 4, 128
MAV_RESULT_ACCEPTED, MAV_RESULT_TEMPORARILY_REJECTED, MAV_RESULT_DENIED = 0, 1, 2
MAV_RESULT_UNSUPPORTED = 3
MAV_CMD_DO_SET_MODE, MAV_CMD_SET_MESSAGE_INTERVAL, MAV_CMD_REQUEST_MESSAGE = 176, 511, 512
GIMBAL_DEVICE_FLAGS_YAW_IN_EARTH_FRAME = 64
TELEMETRY_HZ = {"ATTITUDE": 20.0, "LOCAL_POSITION_NED": 10.0, "GLOBAL_POSITION_INT": 10.0,
                "GIMBAL_DEVICE_ATTITUDE_STATUS": 10.0, "HEARTBEAT": 1.0}
PARAMS = {
    "px4": {"FLW_TGT_DST": 8.0, "FLW_TGT_HT": 8.0, "FLW_TGT_FA": 180.0, "COM_OF_LOSS_T": 1.0},
    "ardupilot": {"FOLL_ENABLE": 1.0, "FOLL_SYSID": 0.0, "FOLL_DIST_MAX": 100.0,
                  "FOLL_OFS_X": 0.0, "FOLL_OFS_Y": 0.0, "FOLL_OFS_Z": 0.0, "FOLL_OFS_TYPE": 0.0,
                  "FOLL_YAW_BEHAVE": 1.0, "FOLL_ALT_TYPE": 1.0},
}
HOLD_MODES = {"AUTO.LOITER", "POSCTL", "LOITER", "BRAKE", "ALT_HOLD"}
FOLLOW_TIMEOUT = {"px4": 3.0, "ardupilot": 3.0}  # s without FOLLOW_TARGET: the target is stale
MAV_PARAM_TYPE_REAL32 = 9


@dataclass
class VehicleSettings:
    autopilot: str = "px4"
    url: str = "udpin:127.0.0.1:14540"
    sysid: int = 1
    compid: int = 1
    mount_pitch: float = 35.0  # deg below the horizon, where the gimbal looks when not tracking
    params: dict[str, float] = field(default_factory=dict)  # over the autopilot's defaults


@dataclass
class _Received:
    ned: np.ndarray
    yaw: float | None
    velocity: np.ndarray
    time: float


class SimVehicle:
    def __init__(self, quad: Quad, settings: VehicleSettings | None = None):
        from pymavlink import mavutil

        self.quad = quad
        self.settings = s = settings or VehicleSettings()
        self.autopilot = autopilot(s.autopilot)
        self.params = {**PARAMS[s.autopilot], **s.params}
        self.conn = mavutil.mavlink_connection(s.url, source_system=s.sysid,
                                               source_component=s.compid, dialect="all")
        self.time = 0.0
        self.armed = True
        self.mode = "AUTO.LOITER" if s.autopilot == "px4" else "LOITER"
        self.mode_since = 0.0
        self.hold_at = quad.position.copy()
        self.target: _Received | None = None
        self.target_sysid: int | None = None
        self.setpoint: _Received | None = None
        self.offset: np.ndarray | None = None  # ArduPilot FOLLOW's offset from the target
        self.course: float | None = None  # PX4: the target's last known course (rad)
        self.received: dict[str, int] = {}
        self.sent = 0
        self.acks: list[tuple[int, int]] = []  # (command, result)
        self.log: list[str] = []  # mode changes and why
        self._due = dict.fromkeys(TELEMETRY_HZ, 0.0)
        self._boot = time.monotonic()

    # ---- modes ----

    def set_mode(self, mode: str, why: str = "operator") -> None:
        if mode not in self.autopilot.modes:
            raise ValueError(f"{mode}: not a {self.autopilot.name} mode")
        if mode != self.mode:
            self.log.append(f"{self.time:.1f} s: {self.mode} -> {mode} ({why})")
        self.mode, self.mode_since = mode, self.time
        self.hold_at = self.quad.position.copy()
        self.offset = None

    @property
    def kind(self) -> str:
        """The mode as the sim's metrics name them: follow, hold, land, rtl."""
        if self.mode in (self.autopilot.follow_mode["follow-target"],
                         self.autopilot.follow_mode["setpoints"]):
            return "follow"
        return {"AUTO.LAND": "land", "LAND": "land", "AUTO.RTL": "rtl", "RTL": "rtl"}.get(
            self.mode, "hold")

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
                handler(msg)
        return n

    def _ned_of(self, lat_e7: int, lon_e7: int, alt: float) -> np.ndarray:
        north, east = global_to_offset(HOME[0], HOME[1], lat_e7 / 1e7, lon_e7 / 1e7)
        return np.array([north, east, HOME[2] - alt])

    def _on_follow_target(self, msg) -> None:
        sysid = msg.get_srcSystem()
        if self.autopilot.name == "ardupilot":
            wanted = int(self.params["FOLL_SYSID"])
            if wanted == 0 and self.target_sysid is None:
                self.target_sysid = sysid
            if sysid != (wanted or self.target_sysid):
                return
        if not msg.est_capabilities & 1:  # no position
            return
        velocity = np.array(msg.vel, float) if msg.est_capabilities & 2 else np.zeros(3)
        self.target = _Received(self._ned_of(msg.lat, msg.lon, msg.alt), None, velocity,
                                self.time)

    def _on_set_position_target_local_ned(self, msg) -> None:
        if msg.coordinate_frame != 1 or msg.type_mask & 0b111:  # LOCAL_NED with a position
            return
        yaw = None if msg.type_mask & 1024 else float(msg.yaw)
        self.setpoint = _Received(np.array([msg.x, msg.y, msg.z]), yaw, np.zeros(3), self.time)

    def _on_command_long(self, msg) -> None:
        if msg.command == MAV_CMD_DO_SET_MODE:
            result = self._requested_mode(msg.param2, msg.param3)
        elif msg.command in (MAV_CMD_SET_MESSAGE_INTERVAL, MAV_CMD_REQUEST_MESSAGE):
            result = MAV_RESULT_ACCEPTED
        else:
            result = MAV_RESULT_UNSUPPORTED
        self.acks.append((msg.command, result))
        self._send("command_ack", command=msg.command, result=result)

    def _on_set_mode(self, msg) -> None:
        if self.autopilot.name == "px4":
            self._requested_mode((msg.custom_mode >> 16) & 0xFF, (msg.custom_mode >> 24) & 0xFF)
        else:
            self._requested_mode(msg.custom_mode, 0)

    def _requested_mode(self, param2: float, param3: float) -> int:
        custom = self.autopilot.mode_of(param2, param3)
        if custom is None:
            return MAV_RESULT_DENIED
        mode = self.autopilot.mode_name(custom)
        if mode == "OFFBOARD" and (self.setpoint is None or self.time - self.setpoint.time > 0.5):
            return MAV_RESULT_DENIED  # PX4: no setpoint stream yet
        self.set_mode(mode, "DO_SET_MODE")
        return MAV_RESULT_ACCEPTED

    def _on_param_request_read(self, msg) -> None:
        name = msg.param_id if isinstance(msg.param_id, str) else msg.param_id.decode()
        names = list(self.params)
        if msg.param_index >= 0 and not name:
            name = names[msg.param_index] if msg.param_index < len(names) else ""
        if name in self.params:
            self._param_value(name)

    def _on_param_request_list(self, msg) -> None:
        for name in self.params:
            self._param_value(name)

    def _on_param_set(self, msg) -> None:
        name = msg.param_id if isinstance(msg.param_id, str) else msg.param_id.decode()
        if name in self.params:
            self.params[name] = float(msg.param_value)
            self._param_value(name)

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
        goal, yaw, look_at = self._goal()
        if goal is not None:
            self.quad.fly_towards(ned_to_world(goal), dt, yaw=yaw)
        if look_at is not None:
            self.quad.point_gimbal_at(ned_to_world(look_at), dt)
        else:
            self.quad.point_gimbal(self.settings.mount_pitch, self.quad.yaw, dt)
        self._telemetry()

    def _face(self, ned_from: np.ndarray, ned_to: np.ndarray) -> float | None:
        d = ned_to_world(ned_to) - ned_to_world(ned_from)
        return math.degrees(math.atan2(d[1], d[0])) if np.hypot(d[0], d[1]) > 0.3 else None

    def _goal(self) -> tuple[np.ndarray | None, float | None, np.ndarray | None]:
        """(where to fly, world yaw in degrees or None, what the gimbal tracks or None)."""
        here = world_to_ned(self.quad.position)
        mode, p = self.mode, self.params
        if mode == self.autopilot.follow_mode["follow-target"]:
            target = self.target
            if target is None or self.time - target.time > FOLLOW_TIMEOUT[self.autopilot.name]:
                return world_to_ned(self.hold_at), None, None
            her = target.ned + target.velocity * (self.time - target.time)
            if self.autopilot.name == "px4":
                goal = self._px4_follow_goal(here, her, target.velocity)
            else:
                if self.offset is None:
                    given = np.array([p["FOLL_OFS_X"], p["FOLL_OFS_Y"], p["FOLL_OFS_Z"]])
                    self.offset = given if given.any() else here - her
                goal = her + self.offset
            self.hold_at = ned_to_world(goal)
            return goal, self._face(goal, her), her
        if mode == self.autopilot.follow_mode["setpoints"]:
            sp = self.setpoint
            if mode == "OFFBOARD" and (sp is None or self.time - sp.time > p["COM_OF_LOSS_T"]):
                self.set_mode("AUTO.LOITER", "offboard setpoints stopped (COM_OF_LOSS_T)")
                return world_to_ned(self.hold_at), None, None
            if sp is None:
                return world_to_ned(self.hold_at), None, None
            yaw = None if sp.yaw is None else -math.degrees(sp.yaw)
            return sp.ned, yaw, None
        if mode in ("AUTO.LAND", "LAND"):
            if here[2] > -0.05:
                self.armed = False
            ground = world_to_ned(self.hold_at)
            ground[2] = 0.0
            return ground, None, None
        if mode in ("AUTO.RTL", "RTL"):
            home = np.array([0.0, 0.0, here[2]])
            if np.hypot(*here[:2]) < 0.5:
                self.set_mode("AUTO.LAND" if self.autopilot.name == "px4" else "LAND",
                              "home reached")
            return home, None, None
        return world_to_ned(self.hold_at), None, None

    def _px4_follow_goal(self, here: np.ndarray, her: np.ndarray, velocity: np.ndarray
                         ) -> np.ndarray:
        p = self.params
        if np.hypot(velocity[0], velocity[1]) > 0.5:
            self.course = math.atan2(velocity[1], velocity[0])
        elif self.course is None:  # standing still: keep the bearing the vehicle is on
            self.course = math.atan2(here[1] - her[1], here[0] - her[0]) - math.radians(
                p["FLW_TGT_FA"])
        angle = self.course + math.radians(p["FLW_TGT_FA"])
        return np.array([her[0] + p["FLW_TGT_DST"] * math.cos(angle),
                         her[1] + p["FLW_TGT_DST"] * math.sin(angle), her[2] - p["FLW_TGT_HT"]])

    # ---- out ----

    def _send(self, name: str, **fields) -> None:
        if getattr(self.conn, "udp_server", False) and not self.conn.clients:
            return  # udpin: no companion has spoken yet
        getattr(self.conn.mav, f"{name}_send")(**fields)
        self.sent += 1

    def _telemetry(self) -> None:
        for kind, hz in TELEMETRY_HZ.items():
            if self.time + 1e-9 >= self._due[kind]:
                self._due[kind] = self.time + 1.0 / hz
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
        q = euler_to_quaternion(0.0, -math.radians(self.quad.gimbal_pitch),
                                -math.radians(self.quad.gimbal_yaw))
        self._send("gimbal_device_attitude_status", target_system=0, target_component=0,
                   time_boot_ms=self._boot_ms(), flags=GIMBAL_DEVICE_FLAGS_YAW_IN_EARTH_FRAME,
                   q=list(q), angular_velocity_x=0.0, angular_velocity_y=0.0,
                   angular_velocity_z=0.0, failure_flags=0)

    def close(self) -> None:
        self.conn.close()

