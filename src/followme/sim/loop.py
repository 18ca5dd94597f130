"""The closed loop: the simulated quad follows the hero through the follower.

  World --render--> Frame --sensor.py--> sensor_frame --link.py--> follower (the model, or the
  oracle) --> Detected / Lost --control.py--> FollowController --> Quad
  truth --metrics.py--> LoopMetrics;  observers (video.py) see every frame.

``run_loop`` runs in simulated time, lock-step: each camera frame waits for the follower's
answer, so a run is repeatable and a slow model does not change what happens. ``sim serve``
(serve.py) drives the same ``ClosedLoop`` in real time against any follower.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import numpy as np
from tqdm import tqdm

from followme.follower.config import FollowConfig
from followme.follower.geometry import look_angles
from followme.follower.mavlink.commander import CommanderSettings
from followme.follower.pipeline import Segmenter
from followme.follower.quadsim import protocol
from followme.follower.quadsim.protocol import create_box_marker
from followme.follower.quadsim.server import ServerThread
from followme.follower.tracking import Detected, FollowEvent, Lost
from followme.labels import HERO
from followme.sim.camera import Frame, render
from followme.sim.control import FOLLOW, FollowController, FollowSettings
from followme.sim.link import InProcessFollower, MavlinkSimLink, SocketIOFollower
from followme.sim.metrics import HERO_CENTRE, FrameRecord, LoopMetrics
from followme.sim.quad import Patrol, Quad, patrol_route
from followme.sim.scenarios import prepare as prepare_scenario
from followme.sim.sensor import sensor_frame
from followme.sim.vehicle import sim_vehicle
from followme.sim.world import World


@dataclass(frozen=True)
class LoopSettings:
    seconds: float = 60.0
    people: int = 20
    seed: int = 0
    world_size: float = 80.0      # m
    px_per_m: float = 20.0        # ground texture resolution
    camera_hz: float = 5.0        # sensor frames per second: QuadSim's broadcastFrequency
    dt: float = 0.05              # s, one world/quad step
    start_distance: float = 8.0   # m from the hero, horizontally, at the start
    start_height: float = 6.0     # m: the quad starts on patrol with the hero in view
    blackout: float = 0.0         # s the camera sees nothing (a covered lens) ...
    blackout_every: float = 60.0  # ... from every multiple of this many s: losses to recover
    follow: FollowSettings = field(default_factory=FollowSettings)
    scenario: str = "park"        # sim/scenarios.py

    def __post_init__(self):
        if not (self.seconds > 0 and self.camera_hz > 0 and self.dt > 0 and self.people >= 0):
            raise ValueError("seconds, camera_hz and dt must be positive, people not negative")
        if not (0 <= self.blackout < self.blackout_every):
            raise ValueError("blackout must be at least 0 and shorter than blackout_every")
        if self.dt * self.camera_hz > 1 + 1e-9:
            raise ValueError("dt must not be longer than a camera period")


@dataclass
class LoopStep:
    """What an observer sees after each camera frame and the follower's answer to it."""

    frame: Frame
    mask: np.ndarray | None       # the segmenter's hero mask, when it ran in this process
    events: list[FollowEvent]
    record: FrameRecord
    loop: ClosedLoop


class OracleSegmenter:
    """The true hero labels in place of the network, with HeroSegmenter's call: frame ->
    hero mask (S, S) bool. The sim announces each frame's labels with ``expect``; the
    follower's decoded image finds them again (the same decoder, the same pixels), so the
    oracle is right in lock-step and when streaming alike. An unknown frame has no hero."""

    def __init__(self, keep: int = 64):
        self.keep = keep
        self._labels: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.unknown = 0

    @staticmethod
    def _key(rgb: np.ndarray) -> bytes:
        return hashlib.blake2b(np.ascontiguousarray(rgb).tobytes(), digest_size=16).digest()

    def expect(self, fields: dict, labels: np.ndarray) -> None:
        """The labels of the frame in these sensor_frame ``fields``."""
        rgb = protocol.decode_rgb(base64.b64decode(fields["rgb_image"]), labels.shape[0])
        with self._lock:
            self._labels[self._key(rgb)] = labels
            while len(self._labels) > self.keep:
                self._labels.popitem(last=False)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        with self._lock:
            labels = self._labels.get(self._key(frame))
        if labels is None:
            self.unknown += 1
            return np.zeros(frame.shape[:2], bool)
        return labels == HERO


class MaskTap:
    """A segmenter that keeps its last mask, for the video."""

    def __init__(self, segmenter: Segmenter):
        self.segmenter = segmenter
        self.mask: np.ndarray | None = None

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        self.mask = np.asarray(self.segmenter(frame), bool)
        return self.mask


def start_quad(world: World, rng: np.random.Generator, settings: LoopSettings,
               min_pixels: int = 50) -> tuple[Quad, Patrol]:
    """On patrol, ``start_distance`` m from the hero at ``start_height`` m with the camera on
    her, as when the patrol has just come across her: behind her over her path (give or take
    30 degrees), else the first of eight bearings from which she shows ``min_pixels`` (the
    last one when none does)."""
    chest = world.hero.position3 + [0.0, 0.0, HERO_CENTRE]
    behind = world.hero.heading + math.pi + rng.uniform(-1, 1) * math.radians(30)
    quad = None
    for angle in behind + np.arange(8) * math.pi / 4:
        quad = Quad(position=world.hero.position3 + [
            settings.start_distance * math.cos(angle), settings.start_distance * math.sin(angle),
            settings.start_height])
        _, quad.yaw = look_angles(quad.position, chest)
        quad.gimbal_pitch, quad.gimbal_yaw = look_angles(quad.camera_position, chest)
        if (render(world, quad.gimbal_pose()).labels == HERO).sum() >= min_pixels:
            break
    return quad, Patrol(patrol_route(rng, world.nodes), camera_pitch=quad.gimbal_pitch)


class ClosedLoop:
    """The world, the quad, its controller and the metrics; ``capture`` a frame, ``answer``
    it with the follower's events, ``advance`` time."""

    def __init__(self, settings: LoopSettings):
        self.settings = settings
        self.vehicle = None  # a vehicle.SimVehicle flies the quad instead of the controller
        self.holding: Callable[[], bool] = lambda: False  # ... its follower holds, not follows
        self.set_aside: Callable[[], int] = lambda: self.controller.set_aside  # counted so far
        rng = np.random.default_rng(np.random.SeedSequence([settings.seed, 6]))
        self.world = World(seed=settings.seed, n_people=settings.people,
                           size=settings.world_size, px_per_m=settings.px_per_m)
        prepare_scenario(settings.scenario, self.world)
        self.quad, patrol = start_quad(self.world, rng, settings)
        self.controller = FollowController(patrol, settings.follow)
        self.metrics = LoopMetrics()
        # QuadSim's box markers, as the video shows them: one where each detection put the hero,
        # for its duration; the last one deleted on loss
        self.markers: dict[int, tuple[np.ndarray, float]] = {}   # id -> (position, expiry)
        self._marker = -1
        self.epoch = time.time()
        self.longest_pong_wait = 0.0  # over the wire: the follower's longest silence to pings

    @property
    def time(self) -> float:
        return self.world.time

    def blind(self) -> bool:
        """Whether the camera sees nothing now (``blackout`` s from each ``blackout_every``)."""
        s = self.settings
        return s.blackout > 0 and self.time >= s.blackout_every and \
            self.time % s.blackout_every < s.blackout

    def capture(self) -> tuple[Frame, dict]:
        """Render the camera and build the sensor_frame fields; black, with no depth and no
        labels, while ``blind``."""
        frame = render(self.world, self.quad.gimbal_pose(), self.quad.pose())
        if self.blind():
            frame = replace(frame, rgb=np.zeros_like(frame.rgb),
                            depth=np.full_like(frame.depth, np.inf),
                            labels=np.zeros_like(frame.labels))
        return frame, sensor_frame(frame, self.epoch + self.time)

    def answer(self, frame: Frame, events: list[FollowEvent], mask: np.ndarray | None = None
               ) -> LoopStep:
        """Obey the follower's answer and score the frame."""
        set_aside = self.set_aside()
        detected = None
        for event in events:
            if isinstance(event, Detected):
                detected = event.world
                if self.vehicle is None:
                    self.controller.on_detected(event.world)
                self._marker += 1
                self.markers[self._marker] = (np.asarray(event.world, float), self.time +
                                              create_box_marker(0, event.world)["duration"])
            elif isinstance(event, Lost):
                if self.vehicle is None:
                    self.controller.on_lost()
                self.markers.pop(self._marker, None)
        self.markers = {k: v for k, v in self.markers.items() if v[1] >= self.time}
        people = np.array([w.position for w in self.world.people])
        if self.vehicle is None:
            mode = self.controller.mode
            target = self.controller.predicted_target() if mode == FOLLOW else None
        else:
            mode = self.vehicle.kind
            target = None if self.holding() else self.vehicle.followed_world()
        record = self.metrics.add(self.time, int((frame.labels == HERO).sum()),
                                  self.quad.position, mode, people, detected,
                                  any(isinstance(e, Lost) for e in events), target,
                                  self.set_aside() > set_aside)
        return LoopStep(frame, mask, events, record, self)

    def advance(self, seconds: float) -> None:
        """Step the world and the quad by ``seconds`` (whole steps of ``dt``)."""
        for _ in range(max(1, int(round(seconds / self.settings.dt)))):
            self.world.step(self.settings.dt)
            if self.vehicle is None:
                self.controller.step(self.quad, self.settings.dt)
            else:
                self.vehicle.step(self.settings.dt)

    def close(self) -> None:
        self.world.close()


Observer = Callable[[LoopStep], None]


LINKS = ("inprocess", "socketio", "mavlink")


def run_loop(settings: LoopSettings, segmenter: Segmenter, link: str = "inprocess",
             config: FollowConfig | None = None, observers: Iterable[Observer] = (),
             progress: bool = True, mavlink: CommanderSettings | None = None,
             depth: bool = True) -> LoopMetrics:
    """Follow for ``settings.seconds`` of simulated time. ``link``: the follower in this
    process; as its Socket.IO server on 127.0.0.1 (an ephemeral port) with the sim as its
    QuadSim client; or over MAVLink to the quad as a PX4 or ArduPilot vehicle (``mavlink``:
    the autopilot, the command and the follower's safety settings; ``depth=False``: ranged by
    the ground, as from a camera without depth)."""
    if link not in LINKS:
        raise ValueError(f"--link {link}: choose one of {', '.join(LINKS)}")
    config = config or FollowConfig()
    tap = MaskTap(segmenter)
    frames = int(round(settings.seconds * settings.camera_hz))
    loop = ClosedLoop(settings)
    with contextlib.ExitStack() as stack:
        stack.callback(loop.close)
        if link == "socketio":
            server = stack.enter_context(
                ServerThread(tap, replace(config, host="127.0.0.1", port=0)))
            follower = SocketIOFollower(server.url, server.stats)
        elif link == "mavlink":
            mavlink = mavlink or CommanderSettings()
            loop.vehicle = stack.enter_context(contextlib.closing(
                sim_vehicle(loop.quad, mavlink)))
            follower = MavlinkSimLink(tap, loop.vehicle, mavlink, config, depth=depth)
            loop.holding = lambda: follower.follower.commander.holding
            loop.set_aside = lambda: follower.follower.commander.set_aside
        else:
            follower = InProcessFollower(tap, config)
        stack.callback(follower.close)
        for _ in tqdm(range(frames), desc="sim follow", unit="frame", disable=not progress):
            if loop.vehicle is not None:
                loop.vehicle.operator_selects(mavlink.command)
            frame, fields = loop.capture()
            if isinstance(segmenter, OracleSegmenter):
                segmenter.expect(fields, frame.labels)
            step = loop.answer(frame, follower.send(fields), tap.mask)
            for observe in observers:
                observe(step)
            loop.advance(1.0 / settings.camera_hz)
        loop.metrics.finish(loop.time)
    return loop.metrics
