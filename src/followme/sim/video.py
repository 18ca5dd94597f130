"""Pictures of a closed-loop run: each frame is the camera view with the follower's overlay
beside a top-down map, written as MP4 or GIF through imageio; and a plot of the run.

Camera view: the predicted hero tinted blue with a white cross on her centroid (``followme
follow --viz``'s overlay), the true hero's outline in yellow. Map (north = world +x, up; west =
+y, left), centred between the quad and the hero: paths, plaza, trees and buildings; people in
grey, the hero in red with her track, the quad in blue with its track and camera wedge, the
follower's box markers in cyan.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from followme.follower.viz import hero_centroid, mask_overlay
from followme.labels import HERO
from followme.sim.camera import FOV_DEG
from followme.sim.loop import LoopStep
from followme.sim.metrics import LoopMetrics
from followme.sim.world import World

MAP_METRES = 30.0       # side of the map window
TRACK_SECONDS = 20.0
GRASS, PATH, PAVED = (96, 138, 78), (196, 180, 150), (170, 170, 165)
TREE, BUILDING = (52, 92, 44), (120, 82, 70)
PERSON_RGB, HERO_RGB, QUAD_RGB, MARKER = (90, 90, 90), (230, 30, 30), (30, 70, 230), (0, 220, 230)
MODE_COLOURS = {"patrol": "tab:grey", "follow": "tab:green", "hold": "tab:orange",
                "search": "tab:red"}


def _outline(mask: np.ndarray) -> np.ndarray:
    inner = mask.copy()
    inner[1:-1, 1:-1] = (mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1]
                         & mask[1:-1, :-2] & mask[1:-1, 2:])
    return mask & ~inner


def camera_panel(step: LoopStep) -> np.ndarray:
    """(S, S, 3): the frame, the predicted hero tinted, the true hero outlined."""
    rgb = step.frame.rgb
    if step.mask is not None:
        out = mask_overlay(rgb, step.mask, hero_centroid(step.mask))
    else:
        out = rgb.copy()
    out[_outline(step.frame.labels == HERO)] = (255, 230, 0)
    return out


class TopDownMap:
    """The world drawn once at ``px_per_m``; ``draw`` crops a window and adds what moves."""

    def __init__(self, world: World, size: int = 256, metres: float = MAP_METRES):
        self.size, self.ppm = size, size / metres
        self.half = world.size / 2
        n = int(math.ceil(world.size * self.ppm))
        self.base = Image.new("RGB", (n, n), PAVED)
        d = ImageDraw.Draw(self.base)
        inner = world.size / 2 - world.band
        d.rectangle([self._px((inner, inner)), self._px((-inner, -inner))], fill=GRASS)
        width = max(1, int(round(world.path_width * self.ppm)))
        for a, b in world.edges:
            d.line([self._px(world.nodes[a]), self._px(world.nodes[b])], fill=PATH, width=width)
        for node in world.nodes:
            self._disc(d, node, world.path_width / 2, PATH)
        centre, radius = world.plaza
        d.rectangle([self._px(centre + radius), self._px(centre - radius)], fill=PAVED)
        for x, y, sx, sy, _ in world.buildings:
            d.rectangle([self._px((x + sx / 2, y + sy / 2)), self._px((x - sx / 2, y - sy / 2))],
                        fill=BUILDING)
        for xy in world.trees:
            self._disc(d, xy, 1.2, TREE)
        self.hero_track: list[tuple[float, np.ndarray]] = []
        self.quad_track: list[tuple[float, np.ndarray]] = []

    def _px(self, xy, origin=None) -> tuple[float, float]:
        """World (x, y) -> (col, row) on the base image, or on a window whose top-left world
        corner (x, y) is ``origin``."""
        ox, oy = (self.half, self.half) if origin is None else origin
        return (oy - xy[1]) * self.ppm, (ox - xy[0]) * self.ppm

    def _disc(self, d: ImageDraw.ImageDraw, xy, radius: float, fill, origin=None) -> None:
        c, r = self._px(xy, origin)
        rad = max(radius * self.ppm, 1.5)
        d.ellipse([c - rad, r - rad, c + rad, r + rad], fill=fill)

    def draw(self, step: LoopStep) -> np.ndarray:
        loop = step.loop
        world, quad, t = loop.world, loop.quad, loop.time
        hero = world.hero.position
        for track, xy in ((self.hero_track, hero), (self.quad_track, quad.position[:2])):
            track.append((t, np.array(xy[:2], float)))
            while track and track[0][0] < t - TRACK_SECONDS:
                track.pop(0)
        centre = (hero + quad.position[:2]) / 2
        span = self.size / self.ppm / 2
        origin = (centre[0] + span, centre[1] + span)
        c0, r0 = self._px(origin)
        view = self.base.crop((int(round(c0)), int(round(r0)), int(round(c0)) + self.size,
                               int(round(r0)) + self.size))
        origin = (self.half - int(round(r0)) / self.ppm, self.half - int(round(c0)) / self.ppm)
        d = ImageDraw.Draw(view)
        for track, colour in ((self.hero_track, HERO_RGB), (self.quad_track, QUAD_RGB)):
            if len(track) > 1:
                d.line([self._px(xy, origin) for _, xy in track], fill=colour, width=1)
        for w in world.people[1:]:
            self._disc(d, w.position, 0.35, PERSON_RGB, origin)
        self._disc(d, hero, 0.45, HERO_RGB, origin)
        for position, _ in loop.markers.values():
            c, r = self._px(position, origin)
            d.rectangle([c - 4, r - 4, c + 4, r + 4], outline=MARKER, width=2)
        qc, qr = self._px(quad.position, origin)
        for side in (-1, 1):   # the camera's horizontal field of view
            a = math.radians(quad.gimbal_yaw + side * FOV_DEG / 2)
            end = quad.position[:2] + 8.0 * np.array([math.cos(a), math.sin(a)])
            d.line([(qc, qr), self._px(end, origin)], fill=(255, 255, 255), width=1)
        a = math.radians(quad.yaw)
        tri = [quad.position[:2] + 0.9 * np.array([math.cos(a + da), math.sin(a + da)])
               for da in (0.0, 2.5, -2.5)]
        d.polygon([self._px(p, origin) for p in tri], fill=QUAD_RGB, outline=(255, 255, 255))
        rec = step.record
        d.rectangle([0, 0, self.size, 13], fill=(0, 0, 0))
        d.text((3, 1), f"t {t:5.1f} s  {rec.mode:6s}  {rec.distance:4.1f} m  "
                       f"alt {quad.position[2]:4.1f} m", fill=(255, 255, 255))
        return np.asarray(view)


def compose(step: LoopStep, top_down: TopDownMap) -> np.ndarray:
    """(S, 2 S, 3): camera view | map."""
    cam = Image.fromarray(camera_panel(step))
    rec = step.record
    label = "hero in view" if rec.in_view else "hero not in view"
    if rec.detected:
        label += ", detected" + ("!" if rec.wrong_detection else "")
    if rec.wrong_target:
        label += ", FOLLOWS SOMEONE ELSE" if rec.wrong_person else ", target off"
    d = ImageDraw.Draw(cam)
    d.rectangle([0, 0, cam.width, 13], fill=(0, 0, 0))
    d.text((3, 1), label, fill=(255, 255, 255))
    return np.concatenate([np.asarray(cam), top_down.draw(step)], axis=1)


class LoopVideo:
    """An observer that writes the run as ``path``, camera view and map side by side: .mp4
    through imageio-ffmpeg, or .gif through Pillow (every ``gif_every``-th frame); and one
    frame, twice the size, as the PNG ``snapshot``: the first detection at or after
    ``snapshot_at`` seconds."""

    def __init__(self, path: str | Path, fps: float, snapshot: str | Path | None = None,
                 snapshot_at: float = 0.0, gif_every: int = 2):
        import imageio.v2 as imageio

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        suffix = self.path.suffix.lower()
        if suffix not in (".mp4", ".gif"):
            raise ValueError(f"{self.path}: the video must be .mp4 or .gif")
        self.every = gif_every if suffix == ".gif" else 1
        if suffix == ".gif":
            self.writer = imageio.get_writer(self.path, mode="I", loop=0,
                                             duration=1000.0 * self.every / fps)
        else:
            self.writer = imageio.get_writer(self.path, fps=fps, codec="libx264", quality=4,
                                             macro_block_size=16)
        self.snapshot, self.snapshot_at = (Path(snapshot) if snapshot else None), snapshot_at
        self.snapshot_written = False
        self.top_down: TopDownMap | None = None
        self.count = 0

    def __call__(self, step: LoopStep) -> None:
        if self.top_down is None:
            self.top_down = TopDownMap(step.loop.world)
        picture = compose(step, self.top_down)   # every frame: the map keeps its tracks
        if self.count % self.every == 0:
            self.writer.append_data(picture)
        self.count += 1
        if (self.snapshot and not self.snapshot_written and step.record.detected
                and step.loop.time >= self.snapshot_at):
            self.snapshot.parent.mkdir(parents=True, exist_ok=True)
            im = Image.fromarray(picture)
            im.resize((im.width * 2, im.height * 2), Image.NEAREST).save(self.snapshot)
            self.snapshot_written = True

    def close(self) -> None:
        self.writer.close()


def plot_run(metrics: LoopMetrics, path: str | Path, title: str = "") -> None:
    """Distance to the hero with the 2-6 m band, hero pixels with detections and losses, and
    the controller's mode, against simulated time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f = metrics.frames
    t = np.array([r.t for r in f])
    fig, (a, b, c) = plt.subplots(3, 1, figsize=(9, 6), sharex=True,
                                  gridspec_kw={"height_ratios": [3, 3, 1]})
    a.axhspan(*metrics.near, color="tab:green", alpha=0.15, label="2-6 m")
    a.plot(t, [r.distance for r in f], lw=1, label="quad to hero")
    a.plot(t, [r.height for r in f], lw=1, label="quad altitude")
    a.set(ylabel="m", title=title)
    a.legend(loc="upper right", fontsize=8)
    b.semilogy(t, np.maximum([r.hero_pixels for r in f], 0.5), lw=1, label="true hero pixels")
    det = [r.t for r in f if r.detected]
    b.plot(det, np.full(len(det), 0.7), "|", color="tab:green", label="object_detected")
    for r in f:
        if r.lost:
            b.axvline(r.t, color="tab:red", lw=1)
    for key, mark, y in (("wrong_detection", "x", 0.6), ("wrong_target", "o", 0.55)):
        times = [r.t for r in f if getattr(r, key)]
        if times:
            b.plot(times, np.full(len(times), y), mark, color="tab:red", ms=4,
                   label=key.replace("_", " "))
    b.set(ylabel="pixels")
    b.legend(loc="upper right", fontsize=8)
    for mode, colour in MODE_COLOURS.items():
        on = np.array([r.mode == mode for r in f])
        if on.any():
            c.fill_between(t, 0, 1, where=on, color=colour, step="post", label=mode)
    c.set(yticks=[], xlabel="simulated seconds")
    c.legend(loc="upper right", fontsize=7, ncol=4)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


class LiveView:
    """``sim follow --view``: each step's camera panel, map and running figures for the live
    page (``follower/live.py``), as an observer of the loop."""

    def __init__(self, title: str):
        from followme.follower.live import LiveFeed

        self.feed = LiveFeed(title, self._figures, self._map_png)
        self.map: TopDownMap | None = None
        self._map: np.ndarray | None = None
        self._metrics: LoopMetrics | None = None
        self._png: tuple[int, bytes] | None = None

    def __call__(self, step: LoopStep) -> None:
        if self.map is None:
            self.map = TopDownMap(step.loop.world)
        self._map = self.map.draw(step)
        self._metrics = step.loop.metrics
        rec = step.record
        state = "detected" if rec.detected else ("lost" if rec.lost else None)
        if state is None and self.feed.state == "waiting":
            state = "searching"
        self.feed.frame(camera_panel(step), None, None, state)
        self.feed.map_id += 1

    def _map_png(self) -> bytes | None:
        """The latest map as PNG, encoded once per map."""
        drawn, map_id = self._map, self.feed.map_id
        if drawn is None:
            return None
        if self._png is None or self._png[0] != map_id:
            import io

            buf = io.BytesIO()
            Image.fromarray(drawn).save(buf, "PNG")
            self._png = (map_id, buf.getvalue())
        return self._png[1]

    def _figures(self) -> dict:
        if self._metrics is None or not self._metrics.frames:
            return {}
        frames = self._metrics.frames
        in_view = sum(f.in_view for f in frames) / len(frames)
        near = sum(2.0 <= f.distance <= 6.0 for f in frames) / len(frames)
        return {"simulated s": f"{frames[-1].t:.1f}", "mode": frames[-1].mode,
                "hero in view": f"{in_view:.1%}", "within 2-6 m": f"{near:.1%}",
                "losses": sum(f.lost for f in frames),
                "wrong-person frames": sum(f.wrong_person for f in frames),
                "distance m": f"{frames[-1].distance:.1f}"}
