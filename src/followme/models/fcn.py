"""The encoder-decoder FCN family: the course's seed network and its stronger relatives.

One configurable module serves every registered architecture. Blocks follow the seed's
order: separable conv (depthwise 3x3, pointwise 1x1 + bias) -> ReLU -> BatchNorm.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class FCNConfig:
    encoder: list[int] = field(default_factory=lambda: [32, 64, 128])
    # residual blocks after each encoder's stride-2 conv
    encoder_blocks: list[int] = field(default_factory=lambda: [0, 0, 0])
    middle: int = 256  # 1x1 conv width at the bottom
    context: bool = False  # add a global-average-pool branch at the bottom
    dilations: list[int] = field(default_factory=lambda: [1])  # of the bottom's residual blocks
    decoder: list[int] = field(default_factory=lambda: [128, 64, 32])  # the last one at full size
    decoder_convs: int = 1  # separable convs per decoder block (the full-size block always has 1)
    num_classes: int = 3

    def to_dict(self) -> dict:
        return asdict(self)

    def check(self) -> None:
        """Refuse a config that is malformed or too big to build (ValueError, naming the field):
        checkpoints carry their config, so a damaged or hostile file must not allocate terabytes."""
        for name, ok in (("encoder", 1 <= _len(self.encoder) <= MAX_STAGES),
                         ("decoder", _len(self.decoder) == _len(self.encoder)),
                         ("encoder_blocks", _len(self.encoder_blocks) == _len(self.encoder)),
                         ("dilations", 1 <= _len(self.dilations) <= MAX_BLOCKS)):
            if not ok:
                want = {"encoder": f"a list of 1 to {MAX_STAGES} widths",
                        "dilations": f"a list of 1 to {MAX_BLOCKS} ints"}.get(
                    name, f"a list as long as encoder ({_len(self.encoder)})")
                raise ValueError(f"{name} = {_show(getattr(self, name))}: want {want}")
        for name, values, low, high in (("encoder", self.encoder, 1, MAX_WIDTH),
                                        ("decoder", self.decoder, 1, MAX_WIDTH),
                                        ("encoder_blocks", self.encoder_blocks, 0, MAX_BLOCKS),
                                        ("dilations", self.dilations, 1, MAX_DILATION)):
            for i, v in enumerate(values):
                if not _int_in(v, low, high):
                    raise ValueError(f"{name}[{i}] = {_show(v)}: want an int in {low}..{high}")
        for name, low, high in (("middle", 1, MAX_WIDTH), ("decoder_convs", 1, MAX_BLOCKS),
                                ("num_classes", 1, MAX_CLASSES)):
            if not _int_in(getattr(self, name), low, high):
                raise ValueError(f"{name} = {_show(getattr(self, name))}: "
                                 f"want an int in {low}..{high}")
        if not isinstance(self.context, bool):
            raise ValueError(f"context = {_show(self.context)}: want true or false")
        if (n := self.parameter_count()) > MAX_PARAMETERS:
            raise ValueError(f"{n:,} parameters: more than the {MAX_PARAMETERS:,} allowed")

    def parameter_count(self) -> int:
        """The FCN's number of parameters, from the config alone (nothing is allocated)."""
        def sep(cin, cout):  # depthwise 3x3, pointwise 1x1 + bias, BatchNorm weight + bias
            return 9 * cin + cin * cout + 3 * cout

        widths = [3, *self.encoder]
        last = len(self.encoder) - 1
        n = sum(sep(widths[i], widths[i + 1])
                + self.encoder_blocks[i] * sep(widths[i + 1], widths[i + 1])
                for i in range(len(self.encoder)))
        n += self.encoder[-1] * self.middle + 3 * self.middle
        n += self.middle * self.middle + self.middle if self.context else 0
        skips = list(reversed(widths[:-1]))
        ins = [self.middle, *self.decoder[:-1]]
        for i, cout in enumerate(self.decoder):
            convs = 1 if i == last else self.decoder_convs
            n += sep(ins[i] + skips[i], cout) + (convs - 1) * sep(cout, cout)
        return n + self.decoder[-1] * self.num_classes + self.num_classes


# Bounds of a buildable config (FCNConfig.check).
MAX_STAGES, MAX_WIDTH, MAX_BLOCKS, MAX_DILATION, MAX_CLASSES = 8, 4096, 16, 16, 256
MAX_PARAMETERS = 100_000_000


def _len(values) -> int:
    """The length of a list (or tuple) of values; -1 for anything else."""
    return len(values) if isinstance(values, (list, tuple)) else -1


def _int_in(v, low: int, high: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def _show(v) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


class SepConvReLUBN(nn.Sequential):
    """Separable conv 3x3 -> ReLU -> BatchNorm, as the seed's ``separable_conv2d_batchnorm``."""

    def __init__(self, cin: int, cout: int, stride: int = 1, dilation: int = 1):
        super().__init__(
            nn.Conv2d(cin, cin, 3, stride, padding=dilation, dilation=dilation, groups=cin,
                      bias=False),
            nn.Conv2d(cin, cout, 1),
            nn.ReLU(inplace=True),
            nn.BatchNorm2d(cout, eps=1e-3),
        )


class Conv1x1ReLUBN(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__(nn.Conv2d(cin, cout, 1), nn.ReLU(inplace=True),
                         nn.BatchNorm2d(cout, eps=1e-3))


class Residual(nn.Module):
    def __init__(self, channels: int, dilation: int = 1):
        super().__init__()
        self.block = SepConvReLUBN(channels, channels, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class Encoder(nn.Sequential):
    """A stride-2 separable conv, then ``blocks`` residual separable convs."""

    def __init__(self, cin: int, cout: int, blocks: int, dilations: list[int] | None = None):
        dil = dilations or [1]
        super().__init__(SepConvReLUBN(cin, cout, stride=2),
                         *[Residual(cout, dil[i % len(dil)]) for i in range(blocks)])


class Decoder(nn.Module):
    """Bilinear x2 upsample, concat with the skip, then ``convs`` separable convs."""

    def __init__(self, cin: int, cskip: int, cout: int, convs: int):
        super().__init__()
        layers = [SepConvReLUBN(cin + cskip, cout)]
        layers += [SepConvReLUBN(cout, cout) for _ in range(convs - 1)]
        self.convs = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        return self.convs(torch.cat([x, skip], dim=1))


class Context(nn.Module):
    """Adds a global-average-pool summary of the whole image to every position."""

    def __init__(self, channels: int):
        super().__init__()
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.relu(self.proj(x.mean(dim=(2, 3), keepdim=True)))


class FCN(nn.Module):
    """(B, 3, H, W) float in [-1, 1] -> (B, num_classes, H, W) logits. H and W divisible by
    2 ** len(encoder)."""

    def __init__(self, config: FCNConfig):
        super().__init__()
        c = config
        if len(c.decoder) != len(c.encoder):
            raise ValueError("an FCN needs as many decoder blocks as encoder blocks")
        c.check()
        self.config = c
        widths = [3, *c.encoder]
        last = len(c.encoder) - 1
        self.encoders = nn.ModuleList(
            Encoder(widths[i], widths[i + 1], c.encoder_blocks[i],
                    c.dilations if i == last else None)
            for i in range(len(c.encoder))
        )
        self.middle = Conv1x1ReLUBN(c.encoder[-1], c.middle)
        self.context = Context(c.middle) if c.context else nn.Identity()
        skips = list(reversed(widths[:-1]))  # encoder outputs from deep to shallow, then the input
        ins = [c.middle, *c.decoder[:-1]]
        self.decoders = nn.ModuleList(
            Decoder(ins[i], skips[i], c.decoder[i], 1 if i == last else c.decoder_convs)
            for i in range(len(c.decoder))
        )
        self.head = nn.Conv2d(c.decoder[-1], c.num_classes, 1)

    def features(self, x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        """Every block's output, named as the seed notebook printed them."""
        out = [("input", x)]
        for i, enc in enumerate(self.encoders):
            out.append((f"encoder{i + 1}", enc(out[-1][1])))
        skips = [t for _, t in out[:-1]][::-1]
        x = self.context(self.middle(out[-1][1]))
        out.append(("1x1 conv", x))
        for i, dec in enumerate(self.decoders):
            x = dec(x, skips[i])
            out.append((f"decoder{i + 1}", x))
        out.append(("output", self.head(x)))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)[-1][1]
