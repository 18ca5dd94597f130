"""Headless CPU rendering: MuJoCo (OpenGL on Mesa llvmpipe, via EGL or OSMesa) against the
project's PyBullet TinyRenderer, 256x256 with fx = fy = 256 (fovy 53.13 deg), median ms/frame.

MuJoCo renders a stand-in scene built here: a checker ground (512x512 texture), a gradient
skybox, 4 box buildings, 6 trees and N+1 humanoids of 16 capsules/spheres/boxes each (a free
joint and 8 hinges), posed kinematically every frame (qpos, mj_kinematics, mj_camlight) from 8 m
back and 4 m up. Its Renderer draws one pass per output, so RGB + depth + segmentation is three
passes; "rgb+depth 1 pass" reads both buffers of one mjr_render. Each runs with shadows on and
4x MSAA (MuJoCo's defaults; the 1-pass rows skipped), shadows off, and shadows and MSAA off.
PyBullet renders
``followme.sim.world.World(seed=0, n_people=N)`` (N walkers and the hero) from the gimbal pose
``start_quad`` picks: ``camera.render`` (one TinyRenderer pass: RGB, depth and segmentation, plus
the sky, depth and label post-processing) and the bare ``getCameraImage`` with and without the
segmentation mask. Frame timings include posing the people; the walk step between PyBullet
frames is not timed.

Each engine runs only where it is importable, so run this once per environment:

    MUJOCO_GL=egl /tmp/venv-mujoco/bin/python bench/sim_engines.py     # or MUJOCO_GL=osmesa
    .venv/bin/python bench/sim_engines.py
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from collections.abc import Callable
from functools import partial

import numpy as np

SIZE = 256
FOVY_DEG = math.degrees(2 * math.atan(SIZE / 2 / 256.0))
LIMB_SIDES = (1, -1)


def median_ms(frame: Callable[[], object], between: Callable[[], object], frames: int,
              warmup: int) -> float:
    times = []
    for k in range(warmup + frames):
        between()
        start = time.perf_counter()
        frame()
        if k >= warmup:
            times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


# ---- MuJoCo ----
def _person(i: int, x: float, y: float, rng: np.random.Generator) -> str:
    shirt, trousers = (" ".join(f"{c:.2f}" for c in rng.uniform(0.1, 0.9, 3)) + " 1"
                       for _ in range(2))
    skin = "0.8 0.6 0.5 1"
    foot = '<geom type="box" pos="0.05 0 -0.43" size="0.1 0.05 0.03" rgba="0.2 0.2 0.2 1"/>'

    def limb(name: str, pos: str, length: float, radius: float, rgba: str, end: str) -> str:
        return (f'<body name="{name}" pos="{pos}"><joint type="hinge" axis="0 1 0"/>'
                f'<geom type="capsule" fromto="0 0 0 0 0 -{length}" size="{radius}" '
                f'rgba="{rgba}"/>{end}</body>')

    arms = "".join(
        limb(f"p{i}ua{s}", f"0 {0.2 * s} 1.38", 0.28, 0.045, shirt,
             limb(f"p{i}la{s}", "0 0 -0.3", 0.25, 0.04, skin,
                  f'<geom type="sphere" pos="0 0 -0.3" size="0.045" rgba="{skin}"/>'))
        for s in LIMB_SIDES)
    legs = "".join(
        limb(f"p{i}ul{s}", f"0 {0.1 * s} 0.88", 0.4, 0.065, trousers,
             limb(f"p{i}ll{s}", "0 0 -0.43", 0.38, 0.05, trousers, foot))
        for s in LIMB_SIDES)
    return (f'<body name="p{i}" pos="{x:.2f} {y:.2f} 0"><freejoint/>'
            f'<geom type="capsule" fromto="0 0 0.95 0 0 1.4" size="0.15" rgba="{shirt}"/>'
            f'<geom type="sphere" pos="0 0 0.9" size="0.14" rgba="{trousers}"/>'
            f'<geom type="capsule" fromto="0 0 1.42 0 0 1.5" size="0.05" rgba="{skin}"/>'
            f'<geom type="sphere" pos="0 0 1.6" size="0.11" rgba="{skin}"/>'
            f"{arms}{legs}</body>")


def mujoco_scene(n_figures: int, offsamples: int = 4, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(-8, 8, (n_figures, 2))
    people = "".join(_person(i, x, y, rng) for i, (x, y) in enumerate(xy))
    buildings = "".join(
        f'<geom type="box" pos="{x} {y} 6" size="{sx} {sy} 6" rgba="0.6 0.35 0.3 1"/>'
        for x, y, sx, sy in ((30, 0, 4, 20), (-30, 0, 4, 20), (0, 30, 20, 4), (0, -30, 20, 4)))
    trees = "".join(
        f'<geom type="cylinder" pos="{x} {y} 1.5" size="0.2 1.5" rgba="0.4 0.25 0.1 1"/>'
        f'<geom type="sphere" pos="{x} {y} 4" size="1.5" rgba="0.2 0.5 0.2 1"/>'
        for x, y in ((12, 5), (12, -6), (-12, 8), (-12, -4), (5, 14), (-6, -14)))
    eye, target = np.array([-8.0, 0.0, 4.0]), np.array([0.0, 0.0, 1.0])
    back = (eye - target) / np.linalg.norm(eye - target)
    right = np.cross([0.0, 0.0, 1.0], back)
    right /= np.linalg.norm(right)
    up = np.cross(back, right)
    xyaxes = " ".join(f"{v:.4f}" for v in (*right, *up))
    return f"""<mujoco>
  <visual>
    <global offwidth="{SIZE}" offheight="{SIZE}"/><quality offsamples="{offsamples}"/>
  </visual>
  <asset>
    <texture name="sky" type="skybox" builtin="gradient" rgb1="0.5 0.7 0.95" rgb2="0.8 0.85 0.9"
             width="256" height="256"/>
    <texture name="grid" type="2d" builtin="checker" rgb1="0.3 0.5 0.25" rgb2="0.35 0.55 0.3"
             width="512" height="512"/>
    <material name="grid" texture="grid" texrepeat="20 20"/>
  </asset>
  <worldbody>
    <light directional="true" pos="0 0 30" dir="-0.3 -0.4 -1" castshadow="true"/>
    <geom type="plane" size="40 40 0.1" material="grid"/>
    {buildings}{trees}{people}
    <camera name="gimbal" pos="{eye[0]} {eye[1]} {eye[2]}" xyaxes="{xyaxes}" fovy="{FOVY_DEG}"/>
  </worldbody>
</mujoco>"""


class MujocoBench:
    def __init__(self, n_figures: int, shadows: bool = True, offsamples: int = 4, seed: int = 0):
        import mujoco

        self.mj = mujoco
        self.model = mujoco.MjModel.from_xml_string(mujoco_scene(n_figures, offsamples, seed))
        self.model.vis.map.znear = 0.1 / self.model.stat.extent
        self.model.vis.map.zfar = 200.0 / self.model.stat.extent
        self.data = mujoco.MjData(self.model)
        self.renderer = mujoco.Renderer(self.model, SIZE, SIZE)
        self.renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = shadows
        rng = np.random.default_rng(seed + 1)
        self.n = n_figures
        self.xy = self.data.qpos.reshape(n_figures, 15)[:, :2].copy()
        self.heading = rng.uniform(-math.pi, math.pi, n_figures)
        self.phase = rng.uniform(0, 2 * math.pi, n_figures)
        root = self.model.body_rootid[self.model.geom_bodyid]
        self.geom_label = np.append(np.where(root == 1, 2, root > 0), 0).astype(np.uint8)
        self.near, self.far = 0.1, 200.0
        self.rgb = np.empty((SIZE, SIZE, 3), np.uint8)
        self.labels = np.zeros((SIZE, SIZE), np.uint8)
        self.zbuf = np.empty((SIZE, SIZE), np.float32)
        self.step()

    def close(self) -> None:
        self.renderer.close()

    def step(self, dt: float = 0.05) -> None:
        self.phase += 2 * math.pi * dt
        self.xy += dt * 1.2 * np.stack([np.cos(self.heading), np.sin(self.heading)], 1)

    def pose(self) -> None:
        q = self.data.qpos.reshape(self.n, 15)
        q[:, :2], q[:, 2] = self.xy, 0.0
        q[:, 3], q[:, 4:6], q[:, 6] = np.cos(self.heading / 2), 0.0, np.sin(self.heading / 2)
        swing = 0.5 * np.sin(self.phase)[:, None]
        q[:, 7:15] = swing * np.array([1, 0.5, -1, -0.5, -1, 0.6, 1, 0.6])
        self.mj.mj_kinematics(self.model, self.data)
        self.mj.mj_camlight(self.model, self.data)
        self.renderer.update_scene(self.data, "gimbal")

    def render(self, depth: bool, seg: bool, one_pass: bool = False) -> np.ndarray | None:
        r = self.renderer
        self.pose()
        planar = None
        if one_pass:
            self.mj.mjr_render(r._rect, r.scene, r._mjr_context)
            self.mj.mjr_readPixels(self.rgb, self.zbuf, r._rect, r._mjr_context)
            self.rgb[:] = self.rgb[::-1]
            n, f = np.float32(self.near), np.float32(self.far)
            planar = f * n / (n + self.zbuf[::-1] * (f - n))
        else:
            r.render(out=self.rgb)
            if depth:
                r.enable_depth_rendering()
                planar = r.render()
                r.disable_depth_rendering()
        if seg:
            r.enable_segmentation_rendering()
            self.labels = self.geom_label[r.render()[..., 0]]
            r.disable_segmentation_rendering()
        return planar


def run_mujoco(people: list[int], frames: int, warmup: int) -> list[tuple[str, int, str, float]]:
    os.environ.setdefault("MUJOCO_GL", "egl")
    import mujoco
    from OpenGL import GL

    rows = []
    for n in people:
        for shadows, msaa in ((True, 4), (False, 4), (False, 0)):
            bench = MujocoBench(n + 1, shadows, msaa)
            if not rows:
                device = GL.glGetString(GL.GL_RENDERER).decode()
                print(f"mujoco {mujoco.__version__}, MUJOCO_GL={os.environ['MUJOCO_GL']}, {device}")
            variants = {"rgb": (False, False, False), "rgb+depth": (True, False, False),
                        "rgb+depth+seg": (True, True, False),
                        "rgb+depth 1 pass": (True, False, True),
                        "rgb+depth 1 pass + seg": (True, True, True)}
            for name, args in variants.items():
                if shadows and args[2]:
                    continue
                ms = median_ms(partial(bench.render, *args), bench.step, frames, warmup)
                shadow = "on" if shadows else "off"
                rows.append(("mujoco", n, f"{name}, shadows {shadow}, {msaa}x MSAA", ms))
            bench.close()
    return rows


# ---- PyBullet ----
def _tiny(world, pose, flags: int) -> None:
    from followme.sim import camera
    from followme.sim.engine import pybullet as p

    world.sync()
    p.getCameraImage(SIZE, SIZE, camera.view_matrix(pose), camera.projection_matrix(),
                     renderer=p.ER_TINY_RENDERER, shadow=0, flags=flags,
                     physicsClientId=world.client)


def run_pybullet(people: list[int], frames: int, warmup: int) -> list[tuple[str, int, str, float]]:
    from followme.sim import camera
    from followme.sim.engine import pybullet as p
    from followme.sim.loop import LoopSettings, start_quad
    from followme.sim.world import World

    rows = []
    for n in people:
        settings = LoopSettings(people=n)
        with World(seed=0, n_people=n) as world:
            rng = np.random.default_rng(np.random.SeedSequence([0, 6]))
            pose = start_quad(world, rng, settings)[0].gimbal_pose()

            variants = {"camera.render (rgb+depth+seg, post-processed)":
                        partial(camera.render, world, pose),
                        "getCameraImage rgb+depth+seg": partial(_tiny, world, pose, 0),
                        "getCameraImage rgb+depth":
                        partial(_tiny, world, pose, p.ER_NO_SEGMENTATION_MASK)}
            for name, frame in variants.items():
                ms = median_ms(frame, partial(world.step, 0.05), frames, warmup)
                rows.append(("pybullet", n, name, ms))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, nargs="+", default=[20, 40])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    rows = []
    for engine, run in (("mujoco", run_mujoco), ("pybullet", run_pybullet)):
        try:
            rows += run(args.people, args.frames, args.warmup)
        except ImportError as e:
            print(f"{engine} skipped: {e}")
        except Exception as e:
            print(f"{engine} skipped: {type(e).__name__}: {e}")
    if rows:
        print(f"\n{'engine':9} {'people':>6}  {'ms/frame':>8}  variant")
        for engine, n, name, ms in rows:
            print(f"{engine:9} {n:>6}  {ms:8.1f}  {name}")


if __name__ == "__main__":
    main()
