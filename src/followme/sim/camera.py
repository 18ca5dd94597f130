"""The quad's gimbal camera: a 256x256 pinhole with QuadSim's 60 degree field of view (fx = fy =
221.7 px, principal point at the image centre) and 100 m far clip plane, rendered by PyBullet's
TinyRenderer (CPU, no shadows). The evidence for both is in ``follower/geometry.py``.

Camera body frame (as ``gimbal_pose`` describes it, like QuadSim): x along the optical axis,
y towards the image's left edge, z towards the image's top edge. Image: row 0 at the top,
column 0 at the left; pixel (row, col) is centred at (v, u) = (row + 0.5, col + 0.5).

A world point at camera-frame (x, y, z) lands at u = cx - fx y / x, v = cy - fy z / x, and its
planar depth is x. ``Frame.depth`` is that planar depth in metres (inf where nothing was drawn);
``encode_depth`` writes it as QuadSim does: channel 0 = depth / 100 m x 255, the sky 255.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from followme.follower.geometry import QUADSIM_DEPTH_MAX, QUADSIM_FOCAL, QUADSIM_FOV_DEG, Pose
from followme.sim.engine import pybullet as p

SIZE = 256
FOV_DEG = QUADSIM_FOV_DEG
FOCAL_PX = SIZE * QUADSIM_FOCAL  # 221.7
NEAR, FAR = 0.1, QUADSIM_DEPTH_MAX  # the prefab's clip planes
DEPTH_MAX = QUADSIM_DEPTH_MAX


@dataclass
class Frame:
    """One camera frame: rgb (H, W, 3) uint8; depth (H, W) float32 planar metres, inf for the
    sky; labels (H, W) uint8 (0 background, 1 other people, 2 hero); the poses it was taken
    from (QuadSim strings via ``Pose.to_string``)."""

    rgb: np.ndarray
    depth: np.ndarray
    labels: np.ndarray
    gimbal_pose: Pose
    quad_pose: Pose | None = None


def view_matrix(pose: Pose) -> list[float]:
    """PyBullet's (OpenGL) view matrix for a camera at ``pose`` (camera body frame above)."""
    r = pose.rotation()
    eye = pose.position
    return list(p.computeViewMatrix(eye.tolist(), (eye + r[:, 0]).tolist(), r[:, 2].tolist()))


def projection_matrix(near: float = NEAR, far: float = FAR) -> list[float]:
    return list(p.computeProjectionMatrixFOV(FOV_DEG, 1.0, near, far))


def depth_from_buffer(buffer: np.ndarray, near: float = NEAR, far: float = FAR) -> np.ndarray:
    """The nonlinear depth buffer in [0, 1] -> planar depth in metres (float32); 1 -> inf."""
    b = np.asarray(buffer, np.float64)
    with np.errstate(divide="ignore"):
        z = far * near / (far - (far - near) * b)
    z[b >= 1.0] = np.inf
    return z.astype(np.float32)


def encode_depth(depth: np.ndarray, depth_max: float = DEPTH_MAX) -> np.ndarray:
    """Planar depth (H, W) metres -> QuadSim's depth image (H, W, 3) uint8, every channel
    depth / depth_max x 255 (``Linear01Depth`` of the far clip plane): 255 at or beyond
    depth_max and where nothing was drawn (the sky)."""
    v = np.clip(np.rint(np.where(np.isfinite(depth), depth, depth_max) / depth_max * 255), 0, 255)
    return np.repeat(v.astype(np.uint8)[..., None], 3, axis=2)


def project(pose: Pose, point: np.ndarray) -> tuple[float, float, float]:
    """A world point -> (row, col, planar depth) in continuous image coordinates of the camera at
    ``pose`` (the pixel containing it is (floor(row), floor(col)))."""
    x, y, z = pose.rotation().T @ (np.asarray(point, float) - pose.position)
    c = SIZE / 2
    return c - FOCAL_PX * z / x, c - FOCAL_PX * y / x, float(x)


def _sky(lighting, pose: Pose) -> np.ndarray:
    """(H, W, 3) float sky behind everything: horizon colour blending to the zenith colour with
    the elevation of each pixel's ray."""
    rows = (np.arange(SIZE) + 0.5 - SIZE / 2) / FOCAL_PX
    cols = (np.arange(SIZE) + 0.5 - SIZE / 2) / FOCAL_PX
    rays = np.stack(np.broadcast_arrays(1.0, -cols[None, :], -rows[:, None]), -1)
    up = rays @ pose.rotation()[2]                      # world z of each ray
    elevation = np.clip(up / np.linalg.norm(rays, axis=-1), 0, 1)[..., None] ** 0.5
    return (np.array(lighting.sky_horizon) * (1 - elevation)
            + np.array(lighting.sky_zenith) * elevation)


def render(world, gimbal_pose: Pose, quad_pose: Pose | None = None) -> Frame:
    """Render ``world`` (a ``followme.sim.world.World``) from ``gimbal_pose``."""
    world.sync()
    light = world.lighting
    _, _, rgba, buffer, seg = p.getCameraImage(
        SIZE, SIZE, view_matrix(gimbal_pose), projection_matrix(),
        renderer=p.ER_TINY_RENDERER, shadow=0,
        lightDirection=list(light.direction), lightColor=list(light.colour),
        lightAmbientCoeff=light.ambient, lightDiffuseCoeff=light.diffuse,
        lightSpecularCoeff=light.specular, physicsClientId=world.client)
    seg = np.asarray(seg).reshape(SIZE, SIZE)
    rgb = np.asarray(rgba, np.uint8).reshape(SIZE, SIZE, 4)[..., :3].astype(np.float32)
    sky = seg < 0
    if sky.any():
        rgb[sky] = _sky(light, gimbal_pose)[sky]
    rgb = np.clip(rgb * np.asarray(light.white_balance, np.float32), 0, 255).astype(np.uint8)
    depth = depth_from_buffer(np.asarray(buffer).reshape(SIZE, SIZE))
    depth[sky] = np.inf
    labels = world.labels(seg)
    return Frame(rgb=rgb, depth=depth, labels=labels, gimbal_pose=gimbal_pose,
                 quad_pose=quad_pose)
