"""Closed-loop scenarios, a registry: ``followme sim follow --scenario NAME``, listed by
``followme sim scenarios``. A scenario is a name, what it tests, and what it changes: the loop's
settings (``adjust``) and the world once it is built (``prepare(world, rng)``, ``rng`` drawn
from the loop's ``--seed``, so that each stays reproducible). Adding one is an entry in
``SCENARIOS``.
"""

from __future__ import annotations

import argparse
import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw

from followme.sim import assets
from followme.sim.engine import pybullet as p
from followme.sim.world import Gait, Lighting, Walker, World

ROOF = 2.3                 # m: a covered passage's roof, over her head, under the quad
PASSAGE_LENGTH = (2.0, 5.5)  # m along the path: 1 to 6 s out of sight at 0.9 to 1.5 m/s
RUN_SPEED = 3.0            # m/s
LOOKALIKE_START_APART = 5.0  # m: no look-alike starts nearer her than this


def her_route(world: World, edges: int) -> list[tuple[int, int]]:
    """The first ``edges`` path segments the hero will walk, from the one she is on: her walk
    replayed with a copy of her random stream (she is drawn to no one)."""
    hero = world.hero
    walker = copy.copy(hero)
    walker.rng = copy.deepcopy(hero.rng)
    route = [(hero.previous, hero.node)]
    while len(route) < edges:
        walker.previous, walker.node = walker.node, world._next_node(walker)
        route.append((walker.previous, walker.node))
    return route


def covered_passages(world: World, rng: np.random.Generator, every: int = 4,
                     others: float = 0.05, route: int = 24
                     ) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Arcades over every ``every``-th segment of her route (``her_route``) and ``others`` of
    the rest: two walls and a roof at ``ROOF`` m, so that from the quad's 2.5 to 3 m she
    vanishes under it and comes out at the far end. Returns each one's (centre (2,), direction
    along the path (2,), length m)."""
    hers = {tuple(sorted(e)) for k, e in enumerate(her_route(world, route))
            if k % every == every - 1}
    built = []
    for a, b in world.edges:
        if (a, b) not in hers and (b, a) not in hers and rng.random() >= others:
            continue
        pa, pb = world.nodes[a], world.nodes[b]
        span = float(np.linalg.norm(pb - pa))
        length = min(rng.uniform(*PASSAGE_LENGTH), span - 4.0)
        if length < PASSAGE_LENGTH[0]:
            continue
        along = (pb - pa) / span
        centre = pa + along * rng.uniform(2.0 + length / 2, span - 2.0 - length / 2)
        yaw = math.atan2(along[1], along[0])
        across = np.array([-along[1], along[0]])
        half_width = world.path_width / 2 + 0.5
        stone = np.array([150, 140, 125]) * rng.uniform(0.7, 1.1)
        for side in (-1, 1):
            world._static(p.GEOM_BOX, (*(centre + side * half_width * across), ROOF / 2), stone,
                          yaw=yaw, halfExtents=[length / 2, 0.2, ROOF / 2])
        world._static(p.GEOM_BOX, (*centre, ROOF + 0.15), stone * 0.8, yaw=yaw,
                      halfExtents=[length / 2, half_width + 0.2, 0.15])
        built.append((centre, along, float(length)))
    return built


def dress_alike(world: World, rng: np.random.Generator, count: int,
                apart: float = LOOKALIKE_START_APART) -> list[Walker]:
    """``count`` of the crowd dressed as the hero is (her shirt and trousers, as jittered),
    started on the paths around her and drawn towards her, so that they walk near her and
    cross her path. They stay other people in the truth. None starts within ``apart`` m of
    her: a look-alike at her side in the first frame would make the follower's first lock a
    guess (it has only looks to go on, and theirs are hers)."""
    hero = world.hero
    for walker in world.people[1:1 + count]:
        world._dress(walker.body, rng, hero=True)
        walker.attract = hero
        a = int(rng.choice(world.neighbours[hero.node]))
        walker.previous, walker.node = a, hero.node
        d = world.nodes[hero.node] - world.nodes[a]
        far_enough = [t for t in rng.uniform(0.2, 0.8, 20) if np.linalg.norm(
            world.nodes[a] + t * d - hero.position) >= apart]
        walker.position = world.nodes[a] + (far_enough[0] if far_enough else 0.0) * d
        walker.heading = math.atan2(d[1], d[0])
    world._dirty = True
    return world.people[1:1 + count]


class PassBy:
    """A world hook for look-alikes drawn to her: one who comes within ``reach`` m of her walks
    on for ``away`` s (drawn between the two), his pace ``pace`` faster when he is ahead of
    her and as much slower when behind (he pulls away), taking at each node the way furthest
    from her; then she draws him again. They meet her and cross her path again and again, but
    none walks at her side for long (``escort`` keeps them there)."""

    def __init__(self, rng: np.random.Generator, walkers: list[Walker], reach: float = 1.5,
                 away: tuple[float, float] = (15.0, 30.0), pace: float = 0.4):
        self.rng, self.walkers, self.reach, self.away, self.pace = rng, walkers, reach, away, pace
        self.back: dict[int, tuple[float, float]] = {}  # walker -> (when she draws him, speed)

    def __call__(self, world: World, dt: float) -> None:
        hero = world.hero
        for k, w in enumerate(self.walkers):
            if w.shun is not None:
                when, speed = self.back[k]
                if world.time >= when:
                    w.shun, w.attract, w.speed = None, hero, speed
            elif np.linalg.norm(w.position - hero.position) < self.reach:
                self.back[k] = (world.time + float(self.rng.uniform(*self.away)), w.speed)
                w.shun, w.attract = hero, None
                ahead = np.dot(w.position - hero.position,
                               [math.cos(hero.heading), math.sin(hero.heading)]) > 0
                w.speed *= 1 + self.pace if ahead else 1 - self.pace


class CrossBehind:
    """A world hook: every 2 to 5 s one of the crowd (the one furthest from her, out of sight)
    steps out 3 m to one side of her path and crosses it to 3 m on the other side, timed to
    pass 1 to 3 m behind her: between her and a quad that follows her."""

    def __init__(self, rng: np.random.Generator, side: float = 3.0):
        self.rng, self.side = rng, side
        self.next = float(rng.uniform(2, 5))
        self.crossings = 0

    def __call__(self, world: World, dt: float) -> None:
        if world.time < self.next:
            return
        self.next = world.time + float(self.rng.uniform(2, 5))
        hero = world.hero
        free = [w for w in world.people[1:] if w.detour is None]
        if not free or hero.speed < 0.2:
            return
        walker = max(free, key=lambda w: float(np.linalg.norm(w.position - hero.position)))
        ahead = np.array([math.cos(hero.heading), math.sin(hero.heading)])
        across = np.array([-ahead[1], ahead[0]]) * self.side * self.rng.choice([-1, 1])
        # she walks on while he reaches her line: aim where she will be 1 to 3 m past
        reach = self.side / walker.speed * hero.speed
        crossing = hero.position + ahead * (reach - self.rng.uniform(1.0, 3.0))
        walker.position = crossing + across
        walker.detour = crossing - across
        walker.heading = math.atan2(-across[1], -across[0])
        self.crossings += 1


def crowd_around(world: World, rng: np.random.Generator, share: float = 0.5) -> None:
    """``share`` of the crowd drawn towards the hero, and the rest sent across her path behind
    her one at a time (``CrossBehind``)."""
    for walker in world.people[1:]:
        if rng.random() < share:
            walker.attract = world.hero
    world.hooks.append(CrossBehind(rng))


def running_gait(rng: np.random.Generator, cycles: int = 12) -> Gait:
    """Walk, run at ``RUN_SPEED``, stop; after half of the stops she turns back sharply."""
    phases = []
    for _ in range(cycles):
        phases += [(rng.uniform(4, 12), rng.uniform(1.1, 1.5), False),
                   (rng.uniform(3, 8), RUN_SPEED, False),
                   (rng.uniform(1.5, 4), 0.0, bool(rng.random() < 0.5))]
    return Gait(phases)


def dusk_lighting(rng: np.random.Generator) -> Lighting:
    """The sun 10 to 18 degrees up, orange; little sky light."""
    elevation = math.radians(rng.uniform(10, 18))
    azimuth = rng.uniform(0, 2 * math.pi)
    return Lighting(
        direction=(math.cos(elevation) * math.cos(azimuth),
                   math.cos(elevation) * math.sin(azimuth), math.sin(elevation)),
        colour=(1.0, 0.72, 0.45), ambient=float(rng.uniform(0.3, 0.4)),
        diffuse=float(rng.uniform(0.55, 0.7)), specular=0.05,
        sky_zenith=(45, 55, 95), sky_horizon=(235, 150, 90),
        white_balance=(1.06, 0.95, 0.82))


def long_shadows(world: World, darkness: float = 0.45) -> None:
    """The buildings' and trees' shadows, as long as the lighting's low sun casts them, painted
    into the ground's texture (TinyRenderer draws none): every ground point from which the sun
    is hidden is ``darkness`` as bright."""
    dx, dy, dz = world.lighting.direction
    cast = -np.array([dx, dy]) / dz            # ground offset of a point per metre of height
    rgb = np.asarray(Image.open(world.ground_png).convert("RGB"))
    shade = Image.new("L", (rgb.shape[1], rgb.shape[0]), 0)
    draw = ImageDraw.Draw(shade)

    def px(xy: np.ndarray) -> tuple[float, float]:
        return world._to_px(xy, world.px_per_m)

    for x, y, sx, sy, height in world.buildings:
        corners = np.array([[x - sx / 2, y - sy / 2], [x + sx / 2, y - sy / 2],
                            [x + sx / 2, y + sy / 2], [x - sx / 2, y + sy / 2]])
        for k in range(4):
            c1, c2 = corners[k], corners[(k + 1) % 4]
            draw.polygon([px(c1), px(c2), px(c2 + height * cast), px(c1 + height * cast)],
                         fill=255)
    angles = np.linspace(0, 2 * math.pi, 24, endpoint=False)
    along = cast / (np.linalg.norm(cast) + 1e-9)
    for x, y, z, radius in world.crowns:
        centre = np.array([x, y]) + z * cast
        stretch = radius * math.hypot(1.0, float(np.linalg.norm(cast)))
        ring = [centre + along * stretch * math.cos(t) + np.array([-along[1], along[0]]) * radius
                * math.sin(t) for t in angles]
        draw.polygon([px(q) for q in ring], fill=255)
        draw.line([px(np.array([x, y])), px(centre)], fill=255,
                  width=max(1, int(0.3 * world.px_per_m)))
    factor = 1 - (1 - darkness) * np.asarray(shade, np.float32)[..., None] / 255
    shaded = (rgb * factor).astype(np.uint8)
    # the scenario's rng, and so its sun, is the world's seed's
    png = assets.cached_png(f"{world.ground_png.stem}-dusk.png", lambda: shaded)
    texture = p.loadTexture(str(png), physicsClientId=world.client)
    p.changeVisualShape(world.ground, -1, textureUniqueId=texture, physicsClientId=world.client)
    world.ground_png = png


def _occlusion(world: World, rng: np.random.Generator) -> None:
    covered_passages(world, rng)


def _lookalikes(world: World, rng: np.random.Generator) -> None:
    alike = dress_alike(world, rng, int(rng.integers(3, 6)))
    world.hooks.append(PassBy(rng, alike))


def _escort(world: World, rng: np.random.Generator) -> None:
    dress_alike(world, rng, int(rng.integers(3, 6)))


def _run(world: World, rng: np.random.Generator) -> None:
    world.hero.gait = running_gait(rng)


def _dusk(world: World, rng: np.random.Generator) -> None:
    world.lighting = dusk_lighting(rng)
    long_shadows(world)


@dataclass(frozen=True)
class Scenario:
    name: str
    about: str
    adjust: Callable = lambda settings: settings  # LoopSettings -> LoopSettings
    prepare: Callable[[World, np.random.Generator], None] = lambda world, rng: None
    stream: str | None = None  # draw this scenario's random numbers: its world but for prepare


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("park", "the park: paths, trees, buildings, a walking crowd and the hero in red"),
    Scenario("occlusion", "covered passages over every 4th segment of her route: she is out "
             "of sight 1 to 6 s under each", prepare=_occlusion),
    Scenario("lookalikes", "3 to 5 people dressed as she is walk near her and cross her path",
             prepare=_lookalikes),
    Scenario("crossing", "a crowd of 45 or more, half of it drawn towards her, and one "
             "crossing between her and the quad every 2 to 5 s",
             adjust=lambda s: replace(s, people=max(s.people, 45)),
             prepare=lambda world, rng: crowd_around(world, rng)),
    Scenario("run", f"she walks, runs at {RUN_SPEED:g} m/s, stops and turns back sharply",
             prepare=_run),
    Scenario("dusk", "a low orange sun, little sky light, long shadows of buildings and trees",
             prepare=_dusk),
    # beyond issue 16's list, and last, so that the others keep their seeds: lookalikes as
    # first built, where a look-alike who reaches her walks at her side, often for 10 s
    Scenario("escort", "3 to 5 people dressed as she is are drawn to her throughout: once "
             "they reach her, they walk at her side", prepare=_escort, stream="lookalikes"),
)}
DEFAULT = "park"


def scenario(name: str) -> Scenario:
    if name not in SCENARIOS:
        raise ValueError(f"--scenario {name}: choose one of {', '.join(SCENARIOS)} "
                         "(followme sim scenarios lists them)")
    return SCENARIOS[name]


def prepare(name: str, world: World) -> None:
    """Apply scenario ``name`` to a freshly built ``world``, seeded by the world's seed."""
    index = list(SCENARIOS).index(scenario(name).stream or name)
    scenario(name).prepare(world, np.random.default_rng(
        np.random.SeedSequence([world.seed, 16, index])))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``followme sim scenarios``: no options."""


def run(a: argparse.Namespace) -> int:
    width = max(len(name) for name in SCENARIOS)
    for s in SCENARIOS.values():
        print(f"{s.name:<{width}}  {s.about}")
    return 0
