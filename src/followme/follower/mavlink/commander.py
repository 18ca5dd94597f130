"""Detected / Lost + the vehicle's state -> the MAVLink messages to send (no I/O here).

Safety rules, in the order ``tick`` applies them:

1. Nothing is sent to a vehicle that has not been heard for ``stale`` s.
2. The commander never arms, takes off or leaves the ground; it commands only while the vehicle
   is in the mode the operator chose (``Autopilot.follow_mode[command]``). The one exception is
   PX4's OFFBOARD, which needs setpoints before it can be entered: outside it, the commander
   streams "stay where you are" setpoints, which PX4 ignores in every other mode.
3. A hero farther than ``max_range`` from the vehicle, or a commanded point outside the fence
   (``fence_radius`` around where the vehicle was when the commander first heard it), is not
   flown to: the setpoint stops at the fence, FOLLOW_TARGET is not sent.
4. Setpoints move at most ``max_speed`` m/s.
5. After ``grace`` s without a detection: with ``on_lost`` hold, the vehicle is held where
   following her left it, in the operator's mode: FOLLOW_TARGET goes on at her last position
   with no velocity (the autopilot keeps its offset around it, the camera on it), setpoints stay
   at the last one; when she is seen again, following goes on. With land or rtl, the commander
   sets that mode once and stops.

Messages are (pymavlink message name, fields): ``link.MavlinkLink`` sends them and logs each.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field

import numpy as np

from followme.follower.mavlink.autopilots import Autopilot, autopilot
from followme.follower.mavlink.frames import euler_to_quaternion, offset_to_global, world_to_ned
from followme.follower.tracking import Detected, FollowEvent, Lost

Message = tuple[str, dict]
MAV_FRAME_LOCAL_NED = 1
MAV_CMD_DO_SET_MODE = 176
# SET_POSITION_TARGET_LOCAL_NED type_mask: position and yaw only (ignore velocity 8|16|32,
# acceleration 64|128|256, yaw rate 2048)
POSITION_AND_YAW = 8 | 16 | 32 | 64 | 128 | 256 | 2048
FOLLOW_POS, FOLLOW_VEL, FOLLOW_ATTITUDE = 1, 2, 8  # FOLLOW_TARGET est_capabilities bits


@dataclass
class VehicleState:
    """What the vehicle last said of itself (``link.MavlinkLink`` keeps it up to date)."""

    heard: float = -math.inf  # monotonic s of the last HEARTBEAT
    custom_mode: int | None = None
    armed: bool = False
    position: np.ndarray | None = None  # LOCAL_POSITION_NED x, y, z
    position_time: float = -math.inf  # when it came
    velocity: np.ndarray | None = None
    lat: float | None = None  # GLOBAL_POSITION_INT, degrees
    lon: float | None = None
    alt: float | None = None  # m above mean sea level
    attitude: tuple[float, float, float] | None = None  # ATTITUDE roll, pitch, yaw (rad)
    gimbal: tuple[float, float, float] | None = None  # camera roll, pitch, yaw (rad)
    gimbal_earth_yaw: bool = True  # else the gimbal's yaw is relative to the vehicle's
    boot_ms: int = 0  # the vehicle's time_boot_ms of the last message that had one
    ground_below: float | None = None  # m, a downward rangefinder's DISTANCE_SENSOR
    ground_time: float = -math.inf  # when it came


@dataclass
class CommanderSettings:
    autopilot: str = "px4"
    command: str = "follow-target"
    on_lost: str = "hold"
    grace: float = 2.0  # s without a detection before on_lost
    distance: float = 5.0  # m kept from her, horizontally (setpoints)
    height: float = 4.0  # m above her (setpoints)
    max_speed: float = 3.0  # m/s of the setpoint
    max_range: float = 60.0  # m: a hero farther than this is not believed
    fence_radius: float = 100.0  # m around where the vehicle was first heard
    stale: float = 3.0  # s without a HEARTBEAT: send nothing
    target_system: int = 1
    target_component: int = 1

    def __post_init__(self):
        autopilot(self.autopilot)
        if self.command not in ("follow-target", "setpoints"):
            raise ValueError(f"--command {self.command}: choose follow-target or setpoints")
        if self.on_lost not in ("hold", "land", "rtl"):
            raise ValueError(f"--on-lost {self.on_lost}: choose hold, land or rtl")
        for flag, value, least in (("--grace", self.grace, 0.0),
                                   ("--distance", self.distance, 0.0)):
            if not value >= least:
                raise ValueError(f"{flag} {value:g}: must be at least {least:g}")
        if not (self.max_speed > 0 and self.max_range > 0 and self.fence_radius > 0):
            raise ValueError("max speed, range and fence radius must be positive")


MAX_SPEED = 3.0  # m/s: she runs no faster (her estimated velocity is capped here)
MIN_HEIGHT = 2.0  # m above the local origin (the ground where it started): no setpoint lower
GATE = 1.0  # m: a detection farther than this beyond where she can have got is set aside ...
CONFIRM = 3  # ... unless this many in a row agree with each other: then she is there


@dataclass
class HeroEstimate:
    """Her NED position and velocity from the detections: an alpha-beta filter, with gating
    (a detection she cannot have walked to is set aside, someone else's or a false one, unless
    ``CONFIRM`` in a row agree) and her speed capped at ``MAX_SPEED``."""

    position: np.ndarray
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(3))
    seen: float = 0.0  # monotonic s of the last detection taken
    updates: int = 1
    set_aside: int = 0
    _aside: list = field(default_factory=list)

    def update(self, measured: np.ndarray, now: float, alpha: float = 0.6,
               beta: float = 0.2) -> bool:
        """Take a detection; False when it is set aside."""
        dt = now - self.seen
        if dt <= 0:
            self.position = measured
            return True
        predicted = self.position + self.velocity * dt
        residual = measured - predicted
        if np.linalg.norm(residual[:2]) > GATE + MAX_SPEED * dt:
            if self._aside and np.linalg.norm((measured - self._aside[-1])[:2]) > GATE:
                self._aside = []
            self._aside.append(measured)
            self.set_aside += 1
            if len(self._aside) < CONFIRM:
                return False
            self.position, self.velocity = measured, np.zeros(3)  # she is there after all
            self.seen, self._aside = now, []
            return True
        self._aside = []
        self.position = predicted + alpha * residual
        self.velocity = self.velocity + beta * residual / dt
        self.velocity[2] = 0.0  # she walks on the ground: no vertical speed
        speed = float(np.linalg.norm(self.velocity[:2]))
        if speed > MAX_SPEED:
            self.velocity = self.velocity * (MAX_SPEED / speed)
        self.seen, self.updates = now, self.updates + 1
        return True


class FollowCommander:
    def __init__(self, settings: CommanderSettings):
        self.settings = settings
        self.autopilot: Autopilot = autopilot(settings.autopilot)
        self.follow_mode = self.autopilot.follow_mode[settings.command]
        self.hero: HeroEstimate | None = None
        self.home: np.ndarray | None = None
        self.setpoint: np.ndarray | None = None
        self.setpoint_time = 0.0
        self.followed = False  # commanded since the last loss
        self.gave_up = False  # on_lost was set; wait for the next detection
        self.holding = False  # --on-lost hold: holding at her last position
        self.course: float | None = None  # her heading (rad from north)
        self.set_aside = 0  # detections she could not have walked to, so far
        self.notes: list[str] = []  # what the commander decided, for the log

    # ---- in ----

    def on_event(self, event: FollowEvent | None, now: float) -> None:
        """The follow core's answer to one frame, its Detected world in (x north, y west, z up)."""
        if isinstance(event, Detected):
            ned = world_to_ned(event.world)
            if not np.all(np.isfinite(ned)):
                self.notes.append("a detection without a finite position: ignored")
                return
            if self.hero is None or now - self.hero.seen > self.settings.grace:
                self.hero = HeroEstimate(ned, seen=now)  # a new sighting: no old velocity
            elif not self.hero.update(ned, now):
                self.set_aside += 1
        elif isinstance(event, Lost):
            self.notes.append("the follow core lost her; on-lost after the grace period")

    # ---- out ----

    def in_follow_mode(self, state: VehicleState) -> bool:
        return state.custom_mode == self.autopilot.modes[self.follow_mode]

    def tick(self, state: VehicleState, now: float) -> list[Message]:
        """The messages to send now (called at the stream rate, 5 Hz or more)."""
        s = self.settings
        if now - state.heard > s.stale or state.position is None or \
                now - state.position_time > s.stale:
            return []
        if self.home is None:
            self.home = state.position.copy()
        fresh = self.hero is not None and now - self.hero.seen <= s.grace
        if not self.in_follow_mode(state):
            self.followed = False
            # setpoints start again from where the vehicle is, not from where they were
            self.setpoint, self.setpoint_time = state.position.copy(), now
            if self.autopilot.name == "px4" and s.command == "setpoints":
                return [self._setpoint(state, state.position.copy(), self._yaw(state), now)]
            return []
        if fresh:
            self.gave_up = False
            if self.holding:
                self.holding = False
                self.notes.append("she is back: following")
        if not fresh:
            if self.followed and not self.gave_up and s.on_lost != "hold":
                self.gave_up, self.followed = True, False
                mode = self.autopilot.lost_mode[s.on_lost]
                self.notes.append(f"no detection for {s.grace:g} s: setting {mode} "
                                  f"(--on-lost {s.on_lost})")
                return [self._set_mode(mode)]
            if self.hero is None or self.gave_up or not self.followed:
                if s.command == "setpoints":  # stay put
                    hold = self.setpoint if self.setpoint is not None else state.position.copy()
                    return [self._setpoint(state, hold, self._yaw(state), now)]
                return []
            if not self.holding:
                self.holding = True
                self.notes.append(f"no detection for {s.grace:g} s: holding at her last "
                                  "position (--on-lost hold)")
            self.hero.velocity = np.zeros(3)
            hero = self.hero.position
        else:
            hero = self.hero.position + self.hero.velocity * (now - self.hero.seen)
        if not np.linalg.norm((hero - state.position)[:2]) <= s.max_range:
            self.notes.append(f"hero {np.linalg.norm((hero - state.position)[:2]):.0f} m away, "
                              f"beyond --max-range {s.max_range:g}: not followed")
            if s.command == "setpoints":  # stay put: a silent OFFBOARD stream is a failsafe
                hold = self.setpoint if self.setpoint is not None else state.position.copy()
                return [self._setpoint(state, hold, self._yaw(state), now)]
            return []
        self.followed = True
        if s.command == "follow-target":
            if state.lat is None:
                self.notes.append("no GLOBAL_POSITION_INT yet: FOLLOW_TARGET not sent")
                return []
            if not np.linalg.norm((hero - self.home)[:2]) <= s.fence_radius:
                self.notes.append("hero outside the fence: FOLLOW_TARGET not sent")
                return []
            return [self._follow_target(state, hero, now)]
        goal, yaw = self._goal(state, hero)
        return [self._setpoint(state, goal, yaw, now)]

    # ---- messages ----

    def _goal(self, state: VehicleState, hero: np.ndarray) -> tuple[np.ndarray, float]:
        """``distance`` m from her on the bearing the vehicle is on, ``height`` m above her,
        facing her."""
        away = (state.position - hero)[:2]
        norm = float(np.linalg.norm(away))
        if norm < 1e-3:
            yaw = state.attitude[2] if state.attitude else 0.0
            away, norm = -np.array([math.cos(yaw), math.sin(yaw)]), 1.0
        xy = hero[:2] + away / norm * self.settings.distance
        # never lower than MIN_HEIGHT above the local origin's ground, whatever her height says
        down = min(hero[2] - self.settings.height, -MIN_HEIGHT)
        goal = np.array([xy[0], xy[1], down])
        return goal, math.atan2(hero[1] - goal[1], hero[0] - goal[0])

    def _yaw(self, state: VehicleState) -> float:
        return state.attitude[2] if state.attitude else 0.0

    def _setpoint(self, state: VehicleState, goal: np.ndarray, yaw: float, now: float) -> Message:
        s = self.settings
        if self.setpoint is not None:
            step = goal - self.setpoint
            most = s.max_speed * max(now - self.setpoint_time, 0.0)
            if not np.linalg.norm(step) <= most:
                goal = self.setpoint + step / np.linalg.norm(step) * most
        out = goal[:2] - self.home[:2]
        if not np.linalg.norm(out) <= s.fence_radius:
            goal = np.array([*(self.home[:2] + out / np.linalg.norm(out) * s.fence_radius),
                             goal[2]])
        self.setpoint, self.setpoint_time = goal, now
        return ("set_position_target_local_ned", dict(
            time_boot_ms=state.boot_ms, target_system=s.target_system,
            target_component=s.target_component, coordinate_frame=MAV_FRAME_LOCAL_NED,
            type_mask=POSITION_AND_YAW, x=float(goal[0]), y=float(goal[1]), z=float(goal[2]),
            vx=0.0, vy=0.0, vz=0.0, afx=0.0, afy=0.0, afz=0.0, yaw=float(yaw), yaw_rate=0.0))

    def _follow_target(self, state: VehicleState, hero: np.ndarray, now: float) -> Message:
        """Her position as lat/lon/alt (from the vehicle's own GLOBAL_POSITION_INT and the
        local offset between them) and her velocity once two detections give one."""
        caps = FOLLOW_POS | FOLLOW_ATTITUDE | (FOLLOW_VEL if self.hero.updates > 1 else 0)
        north, east, down = hero - state.position
        lat, lon = offset_to_global(state.lat, state.lon, north, east)
        return ("follow_target", dict(
            timestamp=int(now * 1000), est_capabilities=caps, lat=round(lat * 1e7),
            lon=round(lon * 1e7), alt=float(state.alt - down),
            vel=[float(v) for v in self.hero.velocity], acc=[0.0, 0.0, 0.0],
            attitude_q=list(euler_to_quaternion(0.0, 0.0, self._course(state, hero))),
            rates=[0.0, 0.0, 0.0], position_cov=[0.0] * 3, custom_state=0))

    def _course(self, state: VehicleState, hero: np.ndarray) -> float:
        """Her heading for FOLLOW_TARGET's attitude (ArduPilot's FOLL_OFS_TYPE 1 turns its
        offsets with it): where she walks; standing, the last one; before any, away from the
        vehicle, so that "behind her" is where the vehicle already is."""
        v = self.hero.velocity
        if math.hypot(v[0], v[1]) >= 0.5:
            self.course = math.atan2(v[1], v[0])
        elif self.course is None:
            self.course = math.atan2(hero[1] - state.position[1], hero[0] - state.position[0])
        return self.course

    def _set_mode(self, mode: str) -> Message:
        p1, p2, p3 = self.autopilot.set_mode_params(mode)
        s = self.settings
        return ("command_long", dict(
            target_system=s.target_system, target_component=s.target_component,
            command=MAV_CMD_DO_SET_MODE, confirmation=0, param1=float(p1), param2=float(p2),
            param3=float(p3), param4=0.0, param5=0.0, param6=0.0, param7=0.0))


def add_command_arguments(g: argparse._ActionsContainer) -> None:
    """--autopilot, --command, --on-lost and --grace, as ``follow`` and ``sim follow`` take them."""
    from followme.follower.mavlink.autopilots import AUTOPILOTS, COMMANDS, ON_LOST

    c = CommanderSettings()
    g.add_argument("--autopilot", choices=AUTOPILOTS, default=c.autopilot)
    g.add_argument("--command", choices=COMMANDS, default=c.command,
                   help="FOLLOW_TARGET in the autopilot's follow mode (default), or position "
                        "setpoints in PX4's OFFBOARD / ArduPilot's GUIDED")
    g.add_argument("--on-lost", choices=ON_LOST, default=c.on_lost,
                   help=f"after --grace s without her: hold at her last position, land or "
                        f"return (default {c.on_lost})")
    g.add_argument("--grace", type=float, default=c.grace, metavar="S",
                   help=f"default {c.grace:g}")

