"""The world: a walled park with paths, trees and benches, a walking crowd and the hero.

Frame: ROS world, x forward, y left, z up, metres; the ground is z = 0 and the world is the
square [-size/2, size/2]^2. An outer band is paved and lined with brick buildings; the park
inside is grass crossed by gravel paths between jittered grid nodes, with a paved plaza. People
walk the paths node to node (a random walk, seeded per walker), posed kinematically by the walk
clip: bodies are placed, never simulated.

Every World owns its own PyBullet DIRECT client (``world.client``), so several can live in one
process. A seed fixes the layout, the crowd, the clothing and the lighting.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from followme.labels import HERO, PEOPLE
from followme.sim import assets
from followme.sim.engine import pybullet as p
from followme.sim.motion import (
    REVOLUTE,
    SPHERICAL,
    WalkClip,
    load_walk,
    quat_mul,
    rotate,
    yaw_quat,
)

HUMANOID_SCALE = 0.25           # the DeepMimic humanoid at 0.25 is about 1.65 m tall
WALK_SPEED = (0.9, 1.5)         # m/s
TURN_RATE = math.radians(180)   # rad/s, how fast a walker turns into a new path segment
ARRIVE = 1.0                    # m, a node counts as reached this close
PERSONAL_SPACE = 0.6            # m between two walkers' centres: they pass, not walk through
PATH_WIDTH = (2.0, 3.0)         # m
FACADE_TILE = 3.0               # m, one brick bay with a window

_clip: WalkClip | None = None


def walk_clip() -> WalkClip:
    global _clip
    if _clip is None:
        _clip = load_walk()
    return _clip


@dataclass(frozen=True)
class Lighting:
    """Per-scenario light and colour: the direction towards the sun (unit (3,), world), its
    colour (3,) 0..1, TinyRenderer's ambient/diffuse/specular coefficients, the sky colours at
    the zenith and the horizon (RGB 0..255), and white-balance gains (3,) on the final image."""

    direction: tuple[float, float, float]
    colour: tuple[float, float, float]
    ambient: float
    diffuse: float
    specular: float
    sky_zenith: tuple[int, int, int]
    sky_horizon: tuple[int, int, int]
    white_balance: tuple[float, float, float]


def random_lighting(rng: np.random.Generator) -> Lighting:
    elevation = rng.uniform(math.radians(25), math.radians(80))
    azimuth = rng.uniform(0, 2 * math.pi)
    direction = (math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth),
                 math.sin(elevation))
    warmth = rng.uniform(-1, 1)
    colour = tuple(float(c) for c in np.clip(1 + 0.12 * warmth * np.array([1, 0.2, -1]), 0, 1))
    overcast = rng.uniform(0, 1)
    zenith = np.array([70, 120, 200]) * (1 - overcast) + np.array([170, 175, 185]) * overcast
    horizon = np.array([190, 210, 235]) * (1 - overcast) + np.array([215, 215, 220]) * overcast
    return Lighting(
        direction=tuple(float(d) for d in direction), colour=colour,
        ambient=float(rng.uniform(0.45, 0.7) + 0.15 * overcast),
        diffuse=float(rng.uniform(0.35, 0.6) * (1 - 0.5 * overcast)),
        specular=float(rng.uniform(0.0, 0.15)),
        sky_zenith=tuple(int(c) for c in zenith), sky_horizon=tuple(int(c) for c in horizon),
        white_balance=tuple(float(g) for g in rng.uniform(0.92, 1.08, 3)),
    )


@dataclass
class Gait:
    """A walker's changing pace: phases of (seconds, speed m/s), repeated; after a phase whose
    ``turn_back`` is set the walker turns round sharply (at ``turn_rate`` rad/s)."""

    phases: list[tuple[float, float, bool]]  # (seconds, speed, turn_back after it)
    turn_rate: float = 2 * TURN_RATE
    _phase: int = 0
    _left: float = 0.0

    def __post_init__(self):
        self._left = self.phases[0][0]

    def step(self, dt: float) -> tuple[float, bool]:
        """Advance ``dt`` s: (the speed now, whether to turn back now)."""
        self._left -= dt
        turn = False
        while self._left <= 0:
            turn = turn or self.phases[self._phase][2]
            self._phase = (self._phase + 1) % len(self.phases)
            self._left += self.phases[self._phase][0]
        return self.phases[self._phase][1], turn


@dataclass
class Walker:
    """A person on the paths. ``position`` (2,) is the ground point under the pelvis, ``heading``
    the walking direction in radians from +x towards +y; ``offset`` keeps them that many metres
    left of a path's centre line."""

    body: int
    label: int
    position: np.ndarray
    heading: float
    node: int
    previous: int
    offset: float
    speed: float
    clip_time: float
    rng: np.random.Generator = field(repr=False)
    gait: Gait | None = None        # a changing pace; None: ``speed`` throughout
    attract: Walker | None = None   # at each node, usually take the way nearest this walker
    shun: Walker | None = None      # at each node, take the way furthest from this walker
    detour: np.ndarray | None = None  # (2,) walk straight there first, then back to the paths

    @property
    def position3(self) -> np.ndarray:
        """(3,) the ground point under the pelvis, z = 0."""
        return np.array([self.position[0], self.position[1], 0.0])


class World:
    """A seeded scenario: layout, crowd of ``n_people`` (plus the hero), lighting. ``size`` is
    the side of the square world in metres, ``px_per_m`` the ground texture's resolution."""

    def __init__(self, seed: int = 0, n_people: int = 20, size: float = 80.0,
                 px_per_m: float = 20.0):
        self.seed, self.size, self.time = seed, float(size), 0.0
        self.hooks: list[Callable[[World, float], None]] = []   # called after each step
        # one stream per concern, so that e.g. a cached texture (not redrawn) shifts nothing else
        layout_rng, people_rng, light_rng, ground_rng, brick_rng = (
            np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5))
        self.lighting = random_lighting(light_rng)
        self.client = p.connect(p.DIRECT)
        if self.client < 0:
            raise RuntimeError("PyBullet could not open a DIRECT client")
        self._dirty = True
        try:
            self._layout(layout_rng)
            self._build_ground(ground_rng, px_per_m)
            self._build_buildings(layout_rng, brick_rng)
            self._build_park(layout_rng)
            self._build_people(people_rng, n_people)
        except BaseException:
            self.close()
            raise
        self._lut = np.zeros(p.getNumBodies(physicsClientId=self.client) + 1, np.uint8)
        for w in self.people:
            self._lut[w.body + 1] = w.label

    # ---- lifetime ----
    def close(self) -> None:
        if self.client is not None and p.isConnected(self.client):
            p.disconnect(self.client)
        self.client = None

    def __enter__(self) -> World:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- layout ----
    def _layout(self, rng: np.random.Generator) -> None:
        half = self.size / 2
        self.band = float(np.clip(0.15 * self.size, 6.0, 12.0))   # paved band with buildings
        inner = half - self.band - 2.0
        n = max(2, int(round(2 * inner / 16.0)) + 1)
        grid = np.linspace(-inner, inner, n)
        spacing = grid[1] - grid[0]
        xs, ys = np.meshgrid(grid, grid, indexing="ij")
        nodes = np.stack([xs.ravel(), ys.ravel()], 1)
        nodes += rng.uniform(-0.15, 0.15, nodes.shape) * spacing
        self.nodes = nodes                                             # (K, 2) path nodes
        idx = np.arange(n * n).reshape(n, n)
        edges = [(idx[i, j], idx[i + 1, j]) for i in range(n - 1) for j in range(n)]
        edges += [(idx[i, j], idx[i, j + 1]) for i in range(n) for j in range(n - 1)]
        self.edges = edges
        self.neighbours = {k: [] for k in range(len(nodes))}
        for a, b in edges:
            self.neighbours[a].append(b)
            self.neighbours[b].append(a)
        self.path_width = float(rng.uniform(*PATH_WIDTH))
        self.inner = inner
        self.plaza = (nodes[rng.integers(len(nodes))], float(rng.uniform(4.0, 7.0)))

    def _to_px(self, xy: np.ndarray, px_per_m: float) -> tuple[float, float]:
        """World (x, y) -> ground image (col, row): row 0 at x = +size/2, col 0 at y = +size/2."""
        half = self.size / 2
        return (half - xy[1]) * px_per_m, (half - xy[0]) * px_per_m

    def _build_ground(self, rng: np.random.Generator, px_per_m: float) -> None:
        n = int(round(self.size * px_per_m))
        surface = Image.new("L", (n, n), assets.PAVEMENT)
        draw = ImageDraw.Draw(surface)
        lo, hi = self._to_px(np.array([self.size / 2 - self.band] * 2), px_per_m), \
            self._to_px(np.array([-self.size / 2 + self.band] * 2), px_per_m)
        draw.rectangle([lo, hi], fill=assets.GRASS)
        width = self.path_width * px_per_m
        for a, b in self.edges:
            draw.line([self._to_px(self.nodes[a], px_per_m), self._to_px(self.nodes[b], px_per_m)],
                      fill=assets.PATH, width=int(round(width)))
        for node in self.nodes:
            c, r = self._to_px(node, px_per_m)
            draw.ellipse([c - width / 2, r - width / 2, c + width / 2, r + width / 2],
                         fill=assets.PATH)
        centre, radius = self.plaza
        c, r = self._to_px(centre, px_per_m)
        rad = radius * px_per_m
        draw.rectangle([c - rad, r - rad, c + rad, r + rad], fill=assets.PAVEMENT)
        texture = assets.cached_png(
            f"ground-{self.seed}-{self.size:g}-{px_per_m:g}.png",
            lambda: assets.ground_texture(np.asarray(surface), rng, px_per_m,
                                          tint=rng.uniform(0.85, 1.1, 3)))
        shape = p.createVisualShape(p.GEOM_MESH, fileName=str(assets.ground_obj(self.size)),
                                    physicsClientId=self.client)
        self.ground = p.createMultiBody(0, -1, shape, physicsClientId=self.client)
        self.ground_png, self.px_per_m = texture, px_per_m
        tex = p.loadTexture(str(texture), physicsClientId=self.client)
        p.changeVisualShape(self.ground, -1, textureUniqueId=tex, rgbaColor=[1, 1, 1, 1],
                            physicsClientId=self.client)

    def _static(self, shape_type: int, position, rgb, yaw: float = 0.0, **kw) -> int:
        shape = p.createVisualShape(shape_type, rgbaColor=[*(np.asarray(rgb) / 255), 1],
                                    physicsClientId=self.client, **kw)
        return p.createMultiBody(0, -1, shape, basePosition=list(position),
                                 baseOrientation=p.getQuaternionFromEuler([0, 0, yaw]),
                                 physicsClientId=self.client)

    def _build_buildings(self, rng: np.random.Generator, brick_rng: np.random.Generator) -> None:
        half, band = self.size / 2, self.band
        textures = []
        for k, brick_seed in enumerate(brick_rng.integers(2 ** 63, size=3)):
            png = assets.cached_png(
                f"brick-{self.seed}-{k}.png",
                lambda s=brick_seed: assets.brick_texture(np.random.default_rng(s)))
            textures.append(p.loadTexture(str(png), physicsClientId=self.client))
        self.buildings = []
        for side in range(4):
            along = -half + band
            while along < half - band - 4:
                width = min(rng.uniform(8, 16), half - band - along)
                depth = rng.uniform(0.5, 0.8) * band
                height = rng.uniform(6, 20)
                centre_out = half - 1.0 - depth / 2
                centre = np.array([along + width / 2, centre_out])
                rot = [(1, 0), (0, 1), (-1, 0), (0, -1)][side]   # rotate the side into place
                x = rot[0] * centre[0] - rot[1] * centre[1]
                y = rot[1] * centre[0] + rot[0] * centre[1]
                sx, sy = (width, depth) if side % 2 == 0 else (depth, width)
                obj = assets.facade_box_obj(sx, sy, height, FACADE_TILE)
                shape = p.createVisualShape(p.GEOM_MESH, fileName=str(obj),
                                            physicsClientId=self.client)
                body = p.createMultiBody(0, -1, shape, basePosition=[x, y, 0],
                                         physicsClientId=self.client)
                p.changeVisualShape(body, -1, textureUniqueId=textures[rng.integers(3)],
                                    rgbaColor=[1, 1, 1, 1], physicsClientId=self.client)
                sx, sy, height = (round(v * 2) / 2 for v in (sx, sy, height))
                roof = rng.uniform(60, 110) * np.ones(3)
                self._static(p.GEOM_BOX, (x, y, height), roof,
                             halfExtents=[sx / 2, sy / 2, 0.15])
                self.buildings.append((x, y, sx, sy, height))
                along += width + rng.uniform(2, 8)

    def distance_to_paths(self, xy: np.ndarray) -> float:
        """Metres from ground point ``xy`` (2,) to the nearest path centre line or the plaza."""
        a = self.nodes[[e[0] for e in self.edges]]
        b = self.nodes[[e[1] for e in self.edges]]
        ab = b - a
        t = np.clip(((xy - a) * ab).sum(1) / (ab * ab).sum(1), 0, 1)
        d = np.linalg.norm(a + t[:, None] * ab - xy, axis=1).min()
        centre, radius = self.plaza
        return float(min(d, np.abs(xy - centre).max() - radius))

    def _build_park(self, rng: np.random.Generator) -> None:
        lim = self.size / 2 - self.band
        n_trees = int((2 * lim) ** 2 / 110)
        trees: list[np.ndarray] = []
        self.crowns: list[tuple[float, float, float, float]] = []   # (x, y, z, radius)
        for _ in range(n_trees * 20):
            if len(trees) >= n_trees:
                break
            xy = rng.uniform(-lim + 1, lim - 1, 2)
            if self.distance_to_paths(xy) < self.path_width / 2 + 2.0:
                continue
            if any(np.linalg.norm(xy - t) < 3.5 for t in trees):
                continue
            trees.append(xy)
            # at most 4.9 m tall: the patrol flies at 5 m and more
            trunk_h, crown_r = rng.uniform(1.2, 2.0), rng.uniform(0.9, 1.6)
            bark = np.array([90, 65, 45]) * rng.uniform(0.7, 1.2)
            self._static(p.GEOM_CYLINDER, (*xy, trunk_h / 2), bark,
                         radius=rng.uniform(0.12, 0.25), length=trunk_h)
            leaves = np.array([50, 110, 40]) * rng.uniform(0.6, 1.3, 3)
            self._static(p.GEOM_SPHERE, (*xy, trunk_h + crown_r * 0.8), leaves, radius=crown_r)
            self.crowns.append((float(xy[0]), float(xy[1]), trunk_h + crown_r * 0.8, crown_r))
        self.trees = np.array(trees).reshape(-1, 2)
        # a bench or a lamp post beside each path segment
        for a, b in self.edges:
            pa, pb = self.nodes[a], self.nodes[b]
            direction = (pb - pa) / np.linalg.norm(pb - pa)
            normal = np.array([-direction[1], direction[0]]) * rng.choice([-1, 1])
            at = pa + rng.uniform(0.3, 0.7) * (pb - pa) + normal * (self.path_width / 2 + 0.6)
            if rng.random() < 0.5:
                yaw = math.atan2(direction[1], direction[0])
                shape = p.createVisualShape(p.GEOM_BOX, halfExtents=[0.8, 0.25, 0.22],
                                            rgbaColor=[0.45, 0.3, 0.18, 1],
                                            physicsClientId=self.client)
                p.createMultiBody(0, -1, shape, basePosition=[*at, 0.22],
                                  baseOrientation=p.getQuaternionFromEuler([0, 0, yaw]),
                                  physicsClientId=self.client)
            else:
                self._static(p.GEOM_CYLINDER, (*at, 2.0), (50, 50, 55), radius=0.07, length=4.0)

    # ---- people ----
    def _build_people(self, rng: np.random.Generator, n_people: int) -> None:
        urdf = str(assets.humanoid_urdf())
        self.people: list[Walker] = []
        clip = walk_clip()
        for k in range(n_people + 1):
            hero = k == 0
            body = p.loadURDF(urdf, globalScaling=HUMANOID_SCALE, useFixedBase=True,
                              physicsClientId=self.client)
            if k == 0:
                self._link = {p.getJointInfo(body, j, physicsClientId=self.client)[12].decode(): j
                              for j in range(p.getNumJoints(body, physicsClientId=self.client))}
                self._spherical = [self._link[n] for n in SPHERICAL]
                self._revolute = [self._link[n] for n in REVOLUTE]
            self._dress(body, rng, hero)
            a = int(rng.integers(len(self.nodes)))
            b = int(rng.choice(self.neighbours[a]))
            start = self.nodes[a] + rng.uniform(0.1, 0.9) * (self.nodes[b] - self.nodes[a])
            d = self.nodes[b] - self.nodes[a]
            walker = Walker(body=body, label=HERO if hero else PEOPLE, position=start,
                            heading=math.atan2(d[1], d[0]), node=b, previous=a,
                            offset=float(rng.uniform(-0.35, 0.35) * self.path_width),
                            speed=float(rng.uniform(*WALK_SPEED)),
                            clip_time=float(rng.uniform(0, clip.duration)),
                            rng=np.random.default_rng(rng.integers(2 ** 63)))
            self.people.append(walker)

    def _dress(self, body: int, rng: np.random.Generator, hero: bool) -> None:
        def pick(palette: np.ndarray) -> np.ndarray:
            return palette[rng.integers(len(palette))] * rng.uniform(0.85, 1.1)

        skin, hair, shoes = pick(assets.SKIN), pick(assets.HAIR), pick(assets.SHOES)
        if hero:
            shirt = np.array(assets.HERO_SHIRT) * rng.uniform(0.9, 1.1)
            trousers = np.array(assets.HERO_TROUSERS) * rng.uniform(0.9, 1.1)
            forearm, shin = shirt, trousers
        else:
            shirt, trousers = pick(assets.SHIRTS), pick(assets.TROUSERS)
            forearm = skin if rng.random() < 0.5 else shirt
            shin = skin if rng.random() < 0.25 else trousers
        head = hair if rng.random() < 0.8 else skin
        colours = {"root": trousers, "chest": shirt, "neck": head,
                   "right_shoulder": shirt, "left_shoulder": shirt,
                   "right_elbow": forearm, "left_elbow": forearm,
                   "right_wrist": skin, "left_wrist": skin,
                   "right_hip": trousers, "left_hip": trousers,
                   "right_knee": shin, "left_knee": shin,
                   "right_ankle": shoes, "left_ankle": shoes}
        for name, rgb in colours.items():
            p.changeVisualShape(body, self._link[name],
                                rgbaColor=[*np.clip(np.asarray(rgb) / 255, 0, 1), 1],
                                physicsClientId=self.client)

    def labels(self, segmentation: np.ndarray) -> np.ndarray:
        """PyBullet's segmentation buffer (H, W) of body ids, -1 for the sky -> class labels
        (H, W) uint8: 0 background, 1 other people, 2 the hero."""
        index = segmentation + 1
        inside = (index >= 0) & (index < len(self._lut))
        return np.where(inside, self._lut[np.where(inside, index, 0)], 0).astype(np.uint8)

    @property
    def hero(self) -> Walker:
        return self.people[0]

    def _waypoint(self, w: Walker) -> np.ndarray:
        """The walker's current target: its next node, shifted ``offset`` to its left."""
        d = self.nodes[w.node] - self.nodes[w.previous]
        d = d / (np.linalg.norm(d) + 1e-9)
        return self.nodes[w.node] + w.offset * np.array([-d[1], d[0]])

    def _next_node(self, w: Walker) -> int:
        """Onwards at random (not back, unless it is a dead end); a walker drawn to another
        takes the way nearest them four times in five, one shunning another the way furthest
        from them."""
        options = [n for n in self.neighbours[w.node] if n != w.previous] or \
            self.neighbours[w.node]
        def gaps(other: Walker) -> list[float]:
            return [float(np.linalg.norm(self.nodes[n] - other.position)) for n in options]

        if w.shun is not None:
            return int(options[int(np.argmax(gaps(w.shun)))])
        if w.attract is not None and w.rng.random() < 0.8:
            return int(options[int(np.argmin(gaps(w.attract)))])
        return int(w.rng.choice(options))

    def step(self, dt: float) -> None:
        """Advance every walker by ``dt`` seconds along its path (no physics)."""
        clip = walk_clip()
        for w in self.people:
            turn_rate = TURN_RATE
            if w.gait is not None:
                w.speed, turn_back = w.gait.step(dt)
                turn_rate = w.gait.turn_rate
                if turn_back:
                    w.previous, w.node = w.node, w.previous
            if w.detour is not None and np.linalg.norm(w.detour - w.position) < ARRIVE:
                w.detour = None
                nearest = int(np.argmin(np.linalg.norm(self.nodes - w.position, axis=1)))
                w.previous, w.node = nearest, nearest
            target = self._waypoint(w) if w.detour is None else w.detour
            if w.detour is None and np.linalg.norm(target - w.position) < ARRIVE:
                w.previous, w.node = w.node, self._next_node(w)
                target = self._waypoint(w)
            want = math.atan2(target[1] - w.position[1], target[0] - w.position[0])
            turn = (want - w.heading + math.pi) % (2 * math.pi) - math.pi
            w.heading += float(np.clip(turn, -turn_rate * dt, turn_rate * dt))
            w.position = w.position + w.speed * dt * np.array([math.cos(w.heading),
                                                               math.sin(w.heading)])
            w.clip_time += dt * w.speed / clip.speed
        self._keep_apart()
        self.time += dt
        for hook in self.hooks:
            hook(self, dt)
        self._dirty = True

    def _keep_apart(self, space: float = PERSONAL_SPACE) -> None:
        """Walkers nearer each other than ``space`` are moved apart along the line between them:
        people pass each other, as they do, instead of walking through one another. Two of the
        crowd share the step; the hero keeps her way and speed, and the other steps aside."""
        if len(self.people) < 2:
            return
        xy = np.array([w.position for w in self.people])
        gap = xy[:, None, :] - xy[None, :, :]
        dist = np.linalg.norm(gap, axis=2)
        i, j = np.nonzero(np.triu(dist < space, k=1))
        if not len(i):
            return
        away = gap[i, j] / np.maximum(dist[i, j], 1e-6)[:, None]
        step = (space - dist[i, j])[:, None] * away
        share = np.where(i == 0, 0.0, 0.5)[:, None]   # i < j: the hero (0) is only ever i
        np.add.at(xy, i, share * step)
        np.add.at(xy, j, -(1.0 - share) * step)
        for k in np.unique(np.concatenate([i, j])):
            self.people[k].position = xy[k]

    def sync(self) -> None:
        """Place every body at its walker's pose (called before rendering)."""
        if not self._dirty:
            return
        pose = walk_clip().sample(np.array([w.clip_time for w in self.people]))   # (W, ...)
        q_heading = yaw_quat(np.array([w.heading for w in self.people]))          # (W, 4)
        ground = np.array([w.position3 for w in self.people])                     # (W, 3)
        bases = (ground + rotate(q_heading, pose.root_position)).tolist()
        orientations = quat_mul(q_heading, pose.root_orientation).tolist()
        joints = self._spherical + self._revolute
        for k, w in enumerate(self.people):
            p.resetBasePositionAndOrientation(w.body, bases[k], orientations[k],
                                              physicsClientId=self.client)
            values = pose.spherical[k].tolist() + pose.revolute[k][:, None].tolist()
            p.resetJointStatesMultiDof(w.body, joints, values, physicsClientId=self.client)
        self._dirty = False
