"""A rendered frame -> QuadSim's ``sensor_frame`` event fields, as its ``CommandServer.cs`` sends
them: ``timestamp`` (seconds, a string), ``rgb_image`` (base64 JPEG, Unity's default quality
75), ``depth_image`` (base64 RGBA PNG, channel 0 = depth / 100 m x 255, the sky 255), ``pose`` and
``gimbal_pose`` ("x,y,z,roll,pitch,yaw", four decimals)."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from followme.sim.camera import Frame, encode_depth

JPEG_QUALITY = 75


def _b64(image: np.ndarray, fmt: str, **kw) -> str:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, fmt, **kw)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def sensor_frame(frame: Frame, timestamp: float) -> dict[str, str]:
    """The five string fields of one ``sensor_frame``; ``frame.quad_pose`` must be set."""
    if frame.quad_pose is None:
        raise ValueError("sensor_frame needs the quad's pose")
    depth = encode_depth(frame.depth)
    rgba = np.concatenate([depth, np.full(depth.shape[:2] + (1,), 255, np.uint8)], axis=2)
    return {"timestamp": f"{timestamp:.3f}",
            "rgb_image": _b64(frame.rgb, "JPEG", quality=JPEG_QUALITY),
            "depth_image": _b64(rgba, "PNG"),
            "pose": frame.quad_pose.to_string(),
            "gimbal_pose": frame.gimbal_pose.to_string()}
