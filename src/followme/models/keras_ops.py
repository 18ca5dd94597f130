"""TensorFlow 1 semantics in PyTorch: "same" padding and ``resize_bilinear``.

Tensors are NCHW here; the Keras models they reproduce were NHWC.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's "same" padding of one spatial axis: (before, after).

    The output has ceil(size / stride) positions; when the total padding is odd the extra row or
    column goes after (bottom/right), which a symmetric PyTorch ``padding=`` cannot express.
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def pad_same(x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int],
             dilation: tuple[int, int] = (1, 1), value: float = 0.0) -> torch.Tensor:
    """Pad an NCHW tensor so that a VALID window op on it equals TensorFlow's SAME op."""
    top, bottom = same_padding(x.shape[-2], kernel[0], stride[0], dilation[0])
    left, right = same_padding(x.shape[-1], kernel[1], stride[1], dilation[1])
    if top == bottom == left == right == 0:
        return x
    return F.pad(x, (left, right, top, bottom), value=value)


def _source_positions(out_size: int, in_size: int, device: torch.device):
    """TF1 ``resize_bilinear`` (align_corners=False, no half-pixel centres): output position d
    samples the input at d * in / out (float32, as TensorFlow computes it)."""
    scale = torch.tensor(in_size / out_size, dtype=torch.float32)
    src = torch.arange(out_size, dtype=torch.float32) * scale
    lower = src.floor()
    lerp = (src - lower).to(device)
    lo = lower.long().clamp(max=in_size - 1)
    hi = src.ceil().long().clamp(max=in_size - 1)
    return lo.to(device), hi.to(device), lerp


def resize_bilinear_tf1(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``tf.image.resize_bilinear(x, (height, width))`` of TensorFlow 1 on an NCHW tensor.

    PyTorch's ``interpolate(align_corners=False)`` samples at (d + 0.5) * in / out - 0.5 instead,
    which shifts the image by a quarter pixel at 2x. The arithmetic follows TensorFlow's kernel:
    left + (right - left) * x_lerp per row, then top + (bottom - top) * y_lerp.
    """
    x_lo, x_hi, x_lerp = _source_positions(width, x.shape[-1], x.device)
    left, right = x.index_select(-1, x_lo), x.index_select(-1, x_hi)
    rows = left + (right - left) * x_lerp.to(x.dtype)
    y_lo, y_hi, y_lerp = _source_positions(height, x.shape[-2], x.device)
    top, bottom = rows.index_select(-2, y_lo), rows.index_select(-2, y_hi)
    return top + (bottom - top) * y_lerp.to(x.dtype)[:, None]
