"""Assets of the simulated world: procedural textures and meshes, clothing palettes, the
humanoid and its walk clip.

Textures are drawn in numpy and written once as PNG into ``cache_dir()`` (under
``$FOLLOWME_CACHE/sim``, default ``~/.cache/followme/sim``), named by their parameters, so that
a seed always gives the same files. Nothing is downloaded.

The humanoid (``humanoid/humanoid.urdf``) and the walk clip (``data/motions/humanoid3d_walk.txt``)
come with the ``pybullet_data`` package; they are from the DeepMimic project (Peng et al. 2018,
https://github.com/xbpeng/DeepMimic, MIT licence). The URDF is Y-up, has no visual geometry
(PyBullet draws its collision shapes) and ends in a NUL byte.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from followme.atomic import write_atomic, write_text_atomic
from followme.data.cache import default_cache_dir

TEXTURE_VERSION = 1  # bump when a texture function changes, so that cached PNGs are redrawn

# Surface ids of the ground map, in ground_texture().
GRASS, PATH, PAVEMENT = 0, 1, 2

# Clothing colours (RGB 0..255). No strong reds: red is the hero's.
SHIRTS = np.array([
    (40, 70, 160), (30, 110, 190), (20, 40, 90), (60, 140, 70), (30, 90, 50), (200, 200, 200),
    (240, 240, 235), (35, 35, 40), (90, 90, 100), (230, 200, 60), (250, 160, 40),
    (120, 60, 150), (70, 170, 170), (150, 180, 220), (180, 160, 120), (230, 150, 190),
])
TROUSERS = np.array([
    (30, 40, 80), (50, 60, 110), (25, 25, 30), (70, 70, 75), (120, 110, 90), (170, 150, 110),
    (60, 80, 60), (200, 200, 190), (90, 70, 50), (40, 50, 70),
])
SKIN = np.array([(255, 220, 190), (235, 190, 150), (200, 150, 110), (160, 110, 75),
                 (110, 75, 50), (80, 55, 40)])
HAIR = np.array([(20, 15, 10), (60, 40, 25), (110, 75, 40), (200, 170, 110), (140, 140, 140),
                 (90, 30, 20)])
SHOES = np.array([(20, 20, 20), (240, 240, 240), (90, 60, 40), (40, 40, 60)])
HERO_SHIRT = (210, 25, 25)
HERO_TROUSERS = (150, 20, 25)


def cache_dir() -> Path:
    d = default_cache_dir() / "sim"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _pybullet_data() -> Path:
    import pybullet_data

    return Path(pybullet_data.getDataPath())


def walk_clip_path() -> Path:
    return _pybullet_data() / "data" / "motions" / "humanoid3d_walk.txt"


def humanoid_urdf() -> Path:
    """A clean copy of pybullet_data's humanoid.urdf: the trailing NUL removed (so that XML
    parsers read it) and an axis given to the spherical joints (PyBullet warns on each load
    otherwise; a spherical joint ignores it)."""
    src = _pybullet_data() / "humanoid" / "humanoid.urdf"
    text = src.read_bytes().replace(b"\0", b"").decode()
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    out = cache_dir() / f"humanoid-{digest}.urdf"
    if not out.exists():
        text = re.sub(r'(<joint name="\w+" type="spherical" >)', r'\1<axis xyz="0 0 1" />', text)
        write_text_atomic(out, text)
    return out


def cached_png(name: str, draw: Callable[[], np.ndarray]) -> Path:
    """``cache_dir()/name``, drawing it with ``draw()`` -> (H, W, 3) uint8 if it is not there.
    ``name`` must cover everything the image depends on (TEXTURE_VERSION included)."""
    out = cache_dir() / f"v{TEXTURE_VERSION}-{name}"
    if not out.exists():
        image = Image.fromarray(draw())
        write_atomic(out, lambda f: image.save(f, "PNG", compress_level=1))
    return out


# ---- textures -----------------------------------------------------------------------------

def value_noise(rng: np.random.Generator, shape: tuple[int, int], cell: float) -> np.ndarray:
    """Smooth noise in [0, 1], (H, W) float32: random values on a grid of ``cell`` pixels,
    bilinearly interpolated."""
    gh, gw = int(np.ceil(shape[0] / cell)) + 2, int(np.ceil(shape[1] / cell)) + 2
    grid = Image.fromarray(rng.random((gh, gw), dtype=np.float32), mode="F")
    big = grid.resize((int(gw * cell), int(gh * cell)), Image.Resampling.BILINEAR)
    return np.asarray(big, np.float32)[: shape[0], : shape[1]]


def _octaves(rng: np.random.Generator, shape: tuple[int, int], cells: tuple[float, ...]):
    n = sum(value_noise(rng, shape, c) for c in cells) / len(cells)
    return (n - n.mean()) / (n.std() + 1e-6)


def ground_texture(surface: np.ndarray, rng: np.random.Generator, px_per_m: float,
                   tint: np.ndarray) -> np.ndarray:
    """The ground image (H, W, 3) uint8 for a surface map (H, W) of GRASS / PATH / PAVEMENT.

    Grass is patchy green with blade speckle; paths are gravel; pavement is square slabs of
    0.5 m with joints. ``tint`` (3,) multiplies the result (per-scenario colour).
    """
    shape = surface.shape
    c = px_per_m
    grass_base = np.array([70, 120, 45]) * rng.uniform(0.8, 1.15, 3)
    patches = _octaves(rng, shape, (6 * c, 2 * c))[..., None]
    speckle = rng.normal(0, 1, shape + (1,)).astype(np.float32)
    grass = grass_base * (1 + 0.12 * patches + 0.10 * speckle)

    gravel_base = np.array([175, 160, 130]) * rng.uniform(0.85, 1.1, 3)
    gravel = gravel_base * (1 + 0.06 * _octaves(rng, shape, (1.5 * c,))[..., None]
                            + 0.12 * speckle)

    slab = 0.5 * c
    yy, xx = np.mgrid[0: shape[0], 0: shape[1]]
    joints = ((yy % slab) < max(1.0, c / 20)) | ((xx % slab) < max(1.0, c / 20))
    slab_id = (yy // slab).astype(np.int64) * 100003 + (xx // slab).astype(np.int64)
    slab_shade = (np.sin(slab_id * 12.9898) * 43758.5453) % 1.0     # a fixed hash per slab
    paving_base = np.array([150, 150, 148]) * rng.uniform(0.85, 1.1)
    paving = paving_base * (0.92 + 0.16 * slab_shade[..., None] + 0.04 * speckle)
    paving[joints] *= 0.7

    out = np.where((surface == GRASS)[..., None], grass,
                   np.where((surface == PATH)[..., None], gravel, paving))
    return np.clip(out * tint, 0, 255).astype(np.uint8)


def brick_texture(rng: np.random.Generator, px_per_m: int = 64, bay_m: float = 3.0) -> np.ndarray:
    """One facade bay of ``bay_m`` x ``bay_m`` metres, (H, W, 3) uint8: bricks with a window.
    The image's top row is the top of the bay."""
    n = int(px_per_m * bay_m)
    base = np.array([150, 70, 50]) * rng.uniform(0.7, 1.2, 3)
    mortar = np.array([190, 185, 175]) * rng.uniform(0.85, 1.05)
    yy, xx = np.mgrid[0:n, 0:n]
    course_h, brick_w = 0.075 * px_per_m, 0.25 * px_per_m
    course = (yy // course_h).astype(int)
    shifted = xx + (course % 2) * brick_w / 2
    brick_id = course * 1009 + (shifted // brick_w).astype(int)
    shade = (np.sin(brick_id * 78.233) * 43758.5453) % 1.0
    img = base * (0.8 + 0.35 * shade[..., None])
    is_mortar = ((yy % course_h) < 1.5) | ((shifted % brick_w) < 1.5)
    img[is_mortar] = mortar
    w0, w1 = int(0.3 * n), int(0.7 * n)
    h0, h1 = int(0.25 * n), int(0.7 * n)
    glass = np.array([60, 80, 100]) * rng.uniform(0.7, 1.3)
    img[h0:h1, w0:w1] = np.array([230, 230, 225])                   # frame
    img[h0 + 4:h1 - 4, w0 + 4:w1 - 4] = glass
    img[h0 + 4:h1 - 4, (w0 + w1) // 2 - 2:(w0 + w1) // 2 + 2] = (230, 230, 225)
    return np.clip(img, 0, 255).astype(np.uint8)


# ---- meshes -----------------------------------------------------------------------------------

def _write_obj(name: str, vertices: list, uvs: list, faces: list) -> Path:
    out = cache_dir() / name
    if not out.exists():
        lines = [f"v {x:.4f} {y:.4f} {z:.4f}" for x, y, z in vertices]
        lines += [f"vt {u:.4f} {v:.4f}" for u, v in uvs]
        lines += ["f " + " ".join(f"{i + 1}/{i + 1}" for i in f) for f in faces]
        write_text_atomic(out, "\n".join(lines) + "\n")
    return out


def ground_obj(size: float) -> Path:
    """A square of ``size`` metres centred on the origin at z = 0, the texture stretched over
    it once: image column 0 at y = +size/2 (the left), image row 0 at x = +size/2 (ahead)."""
    h = size / 2
    verts = [(-h, h, 0), (-h, -h, 0), (h, -h, 0), (h, h, 0)]
    uvs = [(0, 0), (1, 0), (1, 1), (0, 1)]
    return _write_obj(f"ground-{size:g}.obj", verts, uvs, [(0, 1, 2), (0, 2, 3)])


def facade_box_obj(sx: float, sy: float, sz: float, tile: float) -> Path:
    """The four walls of a box sx x sy x sz metres (origin at the centre of its base), the
    texture repeated every ``tile`` metres; the roof is a separate body."""
    sx, sy, sz = (round(v * 2) / 2 for v in (sx, sy, sz))
    hx, hy = sx / 2, sy / 2
    corners = [(hx, hy), (-hx, hy), (-hx, -hy), (hx, -hy), (hx, hy)]  # counter-clockwise
    verts, uvs, faces = [], [], []
    for (x0, y0), (x1, y1) in zip(corners[:-1], corners[1:], strict=True):
        u1 = float(np.hypot(x1 - x0, y1 - y0)) / tile
        v1 = sz / tile
        i = len(verts)
        # outward-facing quads, bottom edge at z = 0
        verts += [(x1, y1, 0), (x0, y0, 0), (x0, y0, sz), (x1, y1, sz)]
        uvs += [(0, 0), (u1, 0), (u1, v1), (0, v1)]
        faces += [(i, i + 1, i + 2), (i, i + 2, i + 3)]
    return _write_obj(f"facade-{sx:g}x{sy:g}x{sz:g}-{tile:g}.obj", verts, uvs, faces)
