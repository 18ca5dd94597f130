"""A PyTorch module built from a Keras 2 functional-model config: its layers and inbound nodes.

Inside the module 4-D tensors are NCHW; tensors of other ranks keep the Keras (channels-last)
layout, so that a ``Reshape`` sees the same element order as it did in Keras.

The module returns logits: a softmax on the output layer (its ``activation`` or an
``Activation("softmax")`` layer) is left out, because every followme caller applies
``softmax(1)`` to the model's output. softmax of the pre-softmax values is then exactly the
Keras model's probability.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from followme.models.keras_ops import pad_same, resize_bilinear_tf1
from followme.models.sizes import MAX_IMAGE_SIZE, check_image_size


class KerasImportError(ValueError):
    """A Keras model that cannot be imported; the message names the layer and the option."""


# Bounds checked before anything is allocated: a small crafted config must not be able to ask
# for gigabytes or hours. The RoboND models are far inside them (160x160 inputs, 21 layers, at
# most 256 filters of 3x3, about 400 k parameters).
MAX_LAYERS = 1000
MAX_FILTERS = 4096  # filters of a layer, channels of the input
MAX_KERNEL = 15  # a side of a convolution kernel or a pooling window
MAX_STRIDE = 16  # strides, dilation rates and up-sampling factors
MAX_DEPTH_MULTIPLIER = 16
MAX_PARAMS = 100_000_000  # parameters and buffers of the whole model
MAX_ACTIVATION = 2**27  # values of one layer's output for one image (512 MiB of float32)
MAX_CONFIG_DEPTH = 64  # nesting of the config's lists and dicts


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_nesting(value, most: int = MAX_CONFIG_DEPTH) -> None:
    """Refuse lists and dicts nested more than ``most`` deep (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > most:
                raise KerasImportError(f"the config is nested more than {most} levels deep")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def _hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    return (0.2 * x + 0.5).clamp(0.0, 1.0)  # Keras 2's piecewise-linear definition


ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor] | None] = {
    "linear": None,
    "relu": F.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "softmax": lambda x: x.softmax(1 if x.ndim == 4 else -1),
    "elu": F.elu,
    "selu": F.selu,
    "softplus": F.softplus,
    "softsign": F.softsign,
    "hard_sigmoid": _hard_sigmoid,
}


def keras_axis(axis: int, ndim: int) -> int:
    """The dimension of our tensor that a Keras (channels-last) axis names."""
    axis %= ndim
    return (0, 2, 3, 1)[axis] if ndim == 4 else axis


def to_keras_layout(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1) if x.ndim == 4 else x


def from_keras_layout(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 1, 2) if x.ndim == 4 else x


def _conv_kernel(a: np.ndarray) -> np.ndarray:
    """Keras (kh, kw, in, out) -> torch Conv2d (out, in, kh, kw); for Conv2DTranspose, Keras
    (kh, kw, out, in) -> torch ConvTranspose2d (in, out, kh, kw): the same transpose."""
    return a.transpose(3, 2, 0, 1)


def _depthwise_kernel(a: np.ndarray) -> np.ndarray:
    """Keras (kh, kw, C, M) -> torch grouped Conv2d (C * M, 1, kh, kw); output channel c * M + m
    in both."""
    kh, kw, c, m = a.shape
    return a.transpose(2, 3, 0, 1).reshape(c * m, 1, kh, kw)


class KerasLayer(nn.Module):
    """One Keras layer. ``targets`` maps each of its HDF5 array names to the tensor it fills and
    the conversion from the Keras layout; layers without weights have none."""

    def targets(self) -> dict[str, tuple[torch.Tensor, Callable[[np.ndarray], np.ndarray]]]:
        return {}

    def keras_shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape each HDF5 array of the layer must have (Keras layout)."""
        shapes = {}
        for name, (tensor, convert) in self.targets().items():
            s = tuple(tensor.shape)
            shapes[name] = (s[2], s[3], s[1], s[0]) if convert is _conv_kernel else s
        return shapes

    @torch.no_grad()
    def load_keras(self, layer: str, arrays: dict[str, np.ndarray]) -> None:
        targets = self.targets()
        if set(arrays) != set(targets):
            raise KerasImportError(
                f"layer {layer!r}: the weights file has arrays {sorted(arrays)}, "
                f"the config needs {sorted(targets)}")
        for name, (tensor, convert) in targets.items():
            a = np.asarray(arrays[name], dtype=np.float32)
            try:
                value = torch.from_numpy(np.ascontiguousarray(convert(a)))
            except ValueError:
                value = None
            if value is None or value.shape != tensor.shape:
                raise KerasImportError(f"layer {layer!r}: array {name!r} has shape {a.shape}, "
                                       f"which does not fit the layer's config")
            tensor.copy_(value)


class Activation(KerasLayer):
    def __init__(self, activation: str):
        super().__init__()
        self.activation = activation

    def act(self, x: torch.Tensor) -> torch.Tensor:
        fn = ACTIVATIONS[self.activation]
        return x if fn is None else fn(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x)

    def extra_repr(self) -> str:
        return self.activation


class _Windowed(Activation):
    """A sliding-window layer with TensorFlow's padding. A stride-1 "same" window with an even
    total padding is padded symmetrically by the convolution itself; any other "same" window is
    padded per input size, bottom/right getting the odd pixel."""

    def __init__(self, kernel: tuple[int, int], stride: tuple[int, int],
                 dilation: tuple[int, int], padding: str, activation: str):
        super().__init__(activation)
        self.kernel, self.stride, self.dilation, self.padding = kernel, stride, dilation, padding
        totals = [(k - 1) * d for k, d in zip(kernel, dilation, strict=True)]
        self.symmetric = (padding == "same" and stride == (1, 1)
                          and all(t % 2 == 0 for t in totals))
        self.conv_padding = tuple(t // 2 for t in totals) if self.symmetric else (0, 0)

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding != "same" or self.symmetric:
            return x
        return pad_same(x, self.kernel, self.stride, self.dilation)


class Conv2D(_Windowed):
    def __init__(self, cin: int, filters: int, kernel: tuple[int, int], stride: tuple[int, int],
                 dilation: tuple[int, int], padding: str, use_bias: bool, activation: str):
        super().__init__(kernel, stride, dilation, padding, activation)
        self.conv = nn.Conv2d(cin, filters, kernel, stride, self.conv_padding, dilation,
                              bias=use_bias)

    def targets(self):
        t = {"kernel": (self.conv.weight, _conv_kernel)}
        if self.conv.bias is not None:
            t["bias"] = (self.conv.bias, np.asarray)
        return t

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(self.pad(x)))


class SeparableConv2D(_Windowed):
    """Depthwise (with the padding and stride), then pointwise 1x1, then bias, then activation:
    ``tf.nn.separable_conv2d`` as Keras 2 and the course's SeparableConv2DKeras called it."""

    def __init__(self, cin: int, filters: int, kernel: tuple[int, int], stride: tuple[int, int],
                 dilation: tuple[int, int], padding: str, use_bias: bool, activation: str,
                 depth_multiplier: int = 1):
        super().__init__(kernel, stride, dilation, padding, activation)
        mid = cin * depth_multiplier
        self.depthwise = nn.Conv2d(cin, mid, kernel, stride, self.conv_padding, dilation,
                                   groups=cin, bias=False)
        self.pointwise = nn.Conv2d(mid, filters, 1, bias=use_bias)

    def targets(self):
        t = {"depthwise_kernel": (self.depthwise.weight, _depthwise_kernel),
             "pointwise_kernel": (self.pointwise.weight, _conv_kernel)}
        if self.pointwise.bias is not None:
            t["bias"] = (self.pointwise.bias, np.asarray)
        return t

    def keras_shapes(self):
        shapes = super().keras_shapes()
        cin = self.depthwise.groups
        shapes["depthwise_kernel"] = (*self.kernel, cin, self.depthwise.out_channels // cin)
        return shapes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.pointwise(self.depthwise(self.pad(x))))


class Conv2DTranspose(Activation):
    """Keras' output size: in * stride ("same") or in * stride + max(kernel - stride, 0)
    ("valid"); for "same", the full transposed convolution is cropped by TensorFlow's padding of
    the forward convolution, (kernel - stride) // 2 at the top/left."""

    def __init__(self, cin: int, filters: int, kernel: tuple[int, int], stride: tuple[int, int],
                 padding: str, use_bias: bool, activation: str):
        super().__init__(activation)
        self.kernel, self.stride, self.padding = kernel, stride, padding
        self.weight = nn.Parameter(torch.empty(cin, filters, *kernel))
        self.bias = nn.Parameter(torch.zeros(filters)) if use_bias else None

    def targets(self):
        t = {"kernel": (self.weight, _conv_kernel)}
        if self.bias is not None:
            t["bias"] = (self.bias, np.asarray)
        return t

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv_transpose2d(x, self.weight, stride=self.stride)
        pads = []
        for size, k, s in zip(reversed(x.shape[-2:]), reversed(self.kernel),
                              reversed(self.stride), strict=True):
            full, extra = (size - 1) * s + k, max(k - s, 0)
            before = extra // 2 if self.padding == "same" else 0
            out = size * s if self.padding == "same" else size * s + extra
            pads += [-before, out - full + before]
        y = F.pad(y, pads)
        if self.bias is not None:
            y = y + self.bias[:, None, None]
        return self.act(y)


class BatchNormalization(KerasLayer):
    """Inference batch norm as ``tf.nn.batch_normalization`` computes it, with the config's
    epsilon (Keras: 1e-3, PyTorch's default is 1e-5)."""

    def __init__(self, channels: int, axis: int, epsilon: float, center: bool, scale: bool):
        super().__init__()
        self.axis, self.epsilon, self.center, self.scale = axis, epsilon, center, scale
        for name, init in (("gamma", torch.ones), ("beta", torch.zeros),
                           ("moving_mean", torch.zeros), ("moving_variance", torch.ones)):
            self.register_buffer(name, init(channels))

    def targets(self):
        names = ["moving_mean", "moving_variance"] + ["gamma"] * self.scale + ["beta"] * self.center
        return {n: (getattr(self, n), np.asarray) for n in names}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = [1] * x.ndim
        shape[keras_axis(self.axis, x.ndim)] = -1
        inv = torch.rsqrt(self.moving_variance + self.epsilon) * self.gamma
        return x * inv.view(shape) + (self.beta - self.moving_mean * inv).view(shape)

    def extra_repr(self) -> str:
        return f"{self.gamma.numel()}, epsilon={self.epsilon}"


class BilinearUpSampling2D(KerasLayer):
    """The course's layer: TF1 ``resize_bilinear`` to size * input size."""

    def __init__(self, size: tuple[int, int]):
        super().__init__()
        self.size = size

    def extra_repr(self) -> str:
        return f"size={self.size}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return resize_bilinear_tf1(x, x.shape[-2] * self.size[0], x.shape[-1] * self.size[1])


class UpSampling2D(BilinearUpSampling2D):
    """Nearest neighbour: every pixel repeated size times."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.repeat_interleave(self.size[0], -2).repeat_interleave(self.size[1], -1)


class MaxPooling2D(KerasLayer):
    def __init__(self, pool: tuple[int, int], stride: tuple[int, int], padding: str):
        super().__init__()
        self.pool, self.stride, self.padding = pool, stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding == "same":
            x = pad_same(x, self.pool, self.stride, value=float("-inf"))
        return F.max_pool2d(x, self.pool, self.stride)


class Concatenate(KerasLayer):
    def __init__(self, axis: int):
        super().__init__()
        self.axis = axis

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, keras_axis(self.axis, xs[0].ndim))


class Add(KerasLayer):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class Identity(KerasLayer):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Reshape(KerasLayer):
    def __init__(self, target_shape: tuple[int, ...]):
        super().__init__()
        self.target_shape = target_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = to_keras_layout(x).reshape(x.shape[0], *self.target_shape)
        return from_keras_layout(y)


# --- building layers from their configs -------------------------------------------------------

class _Options:
    """A layer's config, read with checks: every rejected value names the layer and option."""

    def __init__(self, name: str, class_name: str, config: dict):
        self.name, self.class_name, self.config = name, class_name, config

    def error(self, option: str, value, allowed: str) -> KerasImportError:
        return KerasImportError(f"layer {self.name!r} ({self.class_name}): {option}={value!r} is "
                                f"not supported (supported: {allowed})")

    def get(self, option: str, default=None, allowed: tuple | None = None):
        value = self.config.get(option, default)
        if allowed is not None and value not in allowed:
            raise self.error(option, value, ", ".join(map(repr, allowed)))
        return value

    def pair(self, option: str, default=None, most: int = MAX_STRIDE) -> tuple[int, int]:
        value = self.config.get(option, default)
        pair = (value, value) if _is_int(value) else value
        if (not isinstance(pair, list | tuple) or len(pair) != 2
                or not all(_is_int(v) and 0 < v <= most for v in pair)):
            raise self.error(option, value, f"an int in 1..{most} or a pair of them")
        return tuple(pair)

    def count(self, option: str, most: int, default=None) -> int:
        """A positive int option of at most ``most`` (filters, depth_multiplier)."""
        value = self.config.get(option, default)
        if not _is_int(value) or not 0 < value <= most:
            raise self.error(option, value, f"an int in 1..{most}")
        return value

    def activation(self) -> str:
        return self.get("activation", "linear", tuple(ACTIVATIONS))

    def channels_last(self) -> None:
        self.get("data_format", "channels_last", ("channels_last", None))

    def padding(self) -> str:
        return self.get("padding", "valid", ("same", "valid"))


def _conv_options(o: _Options) -> dict:
    o.channels_last()
    o.get("groups", 1, (1,))
    return dict(kernel=o.pair("kernel_size", most=MAX_KERNEL), stride=o.pair("strides", 1),
                padding=o.padding(),
                use_bias=o.get("use_bias", True, (True, False)), activation=o.activation())


def _image_input(o: _Options, shapes: list[tuple]) -> int:
    """The channels of an image (4-D) input."""
    if len(shapes[0]) != 4:
        raise KerasImportError(f"layer {o.name!r} ({o.class_name}) needs an image input "
                               f"(batch, height, width, channels), not shape {shapes[0]}")
    return shapes[0][1]


def _conv2d(o: _Options, shapes: list[tuple]) -> KerasLayer:
    return Conv2D(_image_input(o, shapes), o.count("filters", MAX_FILTERS),
                  dilation=o.pair("dilation_rate", 1), **_conv_options(o))


def _separable(o: _Options, shapes: list[tuple]) -> KerasLayer:
    return SeparableConv2D(_image_input(o, shapes), o.count("filters", MAX_FILTERS),
                           dilation=o.pair("dilation_rate", 1),
                           depth_multiplier=o.count("depth_multiplier", MAX_DEPTH_MULTIPLIER, 1),
                           **_conv_options(o))


def _transpose(o: _Options, shapes: list[tuple]) -> KerasLayer:
    o.get("output_padding", None, (None,))
    if o.pair("dilation_rate", 1) != (1, 1):
        raise o.error("dilation_rate", o.config["dilation_rate"], "1")
    return Conv2DTranspose(_image_input(o, shapes), o.count("filters", MAX_FILTERS),
                           **_conv_options(o))


def _batchnorm(o: _Options, shapes: list[tuple]) -> KerasLayer:
    axis = o.get("axis", -1)
    axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
    ndim = len(shapes[0])
    if not isinstance(axis, int) or keras_axis(axis, ndim) != (1 if ndim == 4 else ndim - 1):
        raise o.error("axis", o.config.get("axis"), "the channel axis, -1")
    for option in ("renorm", "virtual_batch_size", "adjustment"):
        o.get(option, None, (None, False))
    epsilon = o.get("epsilon", 1e-3)
    if not (isinstance(epsilon, int | float) and not isinstance(epsilon, bool)
            and 0 <= epsilon < 1):
        raise o.error("epsilon", epsilon, "a number in [0, 1)")
    return BatchNormalization(shapes[0][keras_axis(axis, ndim)], axis, float(epsilon),
                              o.get("center", True, (True, False)),
                              o.get("scale", True, (True, False)))


def _upsampling(o: _Options, shapes: list[tuple]) -> KerasLayer:
    o.channels_last()
    o.get("interpolation", "nearest", ("nearest",))
    return UpSampling2D(o.pair("size", 2))


def _bilinear(o: _Options, shapes: list[tuple]) -> KerasLayer:
    o.channels_last()
    return BilinearUpSampling2D(o.pair("size", 2))


def _maxpool(o: _Options, shapes: list[tuple]) -> KerasLayer:
    o.channels_last()
    pool = o.pair("pool_size", 2, most=MAX_KERNEL)
    stride = pool if o.config.get("strides") is None else o.pair("strides")
    return MaxPooling2D(pool, stride, o.padding())


def _concatenate(o: _Options, shapes: list[tuple]) -> KerasLayer:
    axis = o.get("axis", -1)
    ndim = len(shapes[0])
    if not _is_int(axis) or not -ndim <= axis < ndim:
        raise o.error("axis", axis, f"an int in {-ndim}..{ndim - 1}")
    return Concatenate(axis)


def _reshape(o: _Options, shapes: list[tuple]) -> KerasLayer:
    target = o.config["target_shape"]
    if (not isinstance(target, list | tuple) or not 0 < len(target) <= 8
            or not all(_is_int(v) and (v > 0 or v == -1) for v in target)):
        raise o.error("target_shape", target, "1 to 8 positive ints (one may be -1)")
    return Reshape(tuple(target))


BUILDERS: dict[str, Callable[[_Options, list[tuple]], KerasLayer]] = {
    "Conv2D": _conv2d,
    "SeparableConv2D": _separable,
    "SeparableConv2DKeras": _separable,
    "Conv2DTranspose": _transpose,
    "BatchNormalization": _batchnorm,
    "BilinearUpSampling2D": _bilinear,
    "UpSampling2D": _upsampling,
    "MaxPooling2D": _maxpool,
    "Concatenate": _concatenate,
    "Add": lambda o, shapes: Add(),
    "Activation": lambda o, shapes: Activation(o.activation()),
    "Dropout": lambda o, shapes: Identity(),
    "Reshape": _reshape,
}
SUPPORTED = ("InputLayer", *BUILDERS)


# --- the graph ---------------------------------------------------------------------------------

def _inbound(layer: dict) -> list[str]:
    """The names of the layers feeding ``layer`` (Keras 2 format: one node, a list of
    [name, node_index, tensor_index, kwargs])."""
    name, nodes = layer["name"], layer.get("inbound_nodes", [])
    if layer["class_name"] == "InputLayer":
        return []
    if not isinstance(nodes, list):
        raise KerasImportError(f"layer {name!r}: inbound_nodes is a {type(nodes).__name__}, "
                               "not a list")
    if len(nodes) != 1:
        raise KerasImportError(f"layer {name!r}: {len(nodes)} inbound nodes; only layers called "
                               "exactly once are supported (no shared layers)")
    if not isinstance(nodes[0], list):
        raise KerasImportError(f"layer {name!r}: inbound nodes in a newer Keras format "
                               f"({type(nodes[0]).__name__}); only Keras 2 configs are supported")
    sources = []
    for entry in nodes[0]:
        if not isinstance(entry, list) or len(entry) < 3:
            raise KerasImportError(f"layer {name!r}: inbound node {entry!r} is not in the Keras 2 "
                                   "format [layer, node_index, tensor_index, kwargs]")
        if not isinstance(entry[0], str):
            raise KerasImportError(f"layer {name!r}: inbound node {entry!r:.80} does not name a "
                                   "layer")
        if entry[1] != 0 or entry[2] != 0 or (len(entry) > 3 and entry[3]):
            raise KerasImportError(f"layer {name!r}: inbound node {entry!r} is not supported "
                                   "(only node 0, tensor 0, no call arguments)")
        sources.append(entry[0])
    return sources


def _single(config: dict, key: str) -> str:
    ends = config.get(key, [])
    if not isinstance(ends, list):
        raise KerasImportError(f"{key} is a {type(ends).__name__}, not a list")
    if len(ends) != 1:
        raise KerasImportError(f"the model has {len(ends)} {key}; exactly one is supported")
    if not isinstance(ends[0], list) or not ends[0] or not isinstance(ends[0][0], str):
        raise KerasImportError(f"{key} {ends!r:.80} does not name a layer")
    return ends[0][0]


def _check_layers(layers) -> dict[str, dict]:
    """{name: layer} of a config's layer list, with each layer's name, class and config."""
    if not isinstance(layers, list) or not layers:
        raise KerasImportError("the config has no list of layers")
    if len(layers) > MAX_LAYERS:
        raise KerasImportError(f"the config has {len(layers)} layers; at most {MAX_LAYERS} are "
                               "supported")
    by_name: dict[str, dict] = {}
    for i, layer in enumerate(layers):
        if (not isinstance(layer, dict) or not isinstance(layer.get("name"), str)
                or not isinstance(layer.get("class_name"), str)
                or not isinstance(layer.get("config"), dict)):
            raise KerasImportError(f"layer #{i} of the config is not a Keras layer (a dict with "
                                   "a 'name', a 'class_name' and a 'config')")
        if layer["name"] in by_name:
            raise KerasImportError(f"two layers are named {layer['name']!r}")
        by_name[layer["name"]] = layer
    return by_name


def _module_key(name: str) -> str:
    return re.sub(r"\W", "_", name)


def input_shape(layer: dict) -> list:
    """An InputLayer's [height, width, channels] (entries may be None)."""
    cfg = layer["config"]
    shape = cfg.get("batch_input_shape") or cfg.get("batch_shape")
    if (not isinstance(shape, list | tuple) or len(shape) != 4
            or not all(v is None or _is_int(v) for v in shape)):
        raise KerasImportError(f"input layer {layer['name']!r}: shape {shape!r:.80}; an image "
                               "input (batch, height, width, channels) is needed")
    return list(shape[1:])


class KerasGraph(nn.Module):
    """The functional graph of a Keras 2 model config (``model.to_json()``, parsed)."""

    def __init__(self, model_config: dict, image_size: int | None = None):
        super().__init__()
        if not isinstance(model_config, dict):
            raise KerasImportError("the model config is not a dict")
        if model_config.get("class_name") not in ("Model", "Functional"):
            raise KerasImportError(f"model class {model_config.get('class_name')!r:.80} is not "
                                   "supported; only functional models (Model) are")
        config = model_config.get("config")
        if not isinstance(config, dict):
            raise KerasImportError("the model config has no 'config' dict")
        check_nesting(model_config)
        self.keras_name = str(config.get("name", "model"))[:200]
        layers = _check_layers(config.get("layers"))
        self.input_name = _single(config, "input_layers")
        self.output_name = _single(config, "output_layers")
        if layers.get(self.input_name, {}).get("class_name") != "InputLayer":
            raise KerasImportError(f"the input {self.input_name!r} is not an InputLayer of the "
                                   "config")
        height, width, channels = input_shape(layers[self.input_name])
        if image_size is not None and not (_is_int(image_size)
                                           and 0 < image_size <= MAX_IMAGE_SIZE):
            raise KerasImportError(f"image size {image_size!r}: at most {MAX_IMAGE_SIZE} is "
                                   "supported")
        height, width = height or image_size, width or image_size
        if height is None or width is None:
            raise KerasImportError("the input layer has no fixed size; give the image size")
        if not (0 < height <= MAX_IMAGE_SIZE and 0 < width <= MAX_IMAGE_SIZE):
            raise KerasImportError(f"input {height}x{width}: at most {MAX_IMAGE_SIZE}x"
                                   f"{MAX_IMAGE_SIZE} pixels is supported")
        if channels is None or not 0 < channels <= MAX_FILTERS:
            raise KerasImportError(f"input with {channels} channels: 1..{MAX_FILTERS} are "
                                   "supported")
        self.image_size = (height, width)
        self.input_channels = channels

        order = self._order(layers)
        shapes = {self.input_name: (1, channels, height, width)}
        self.layers = nn.ModuleDict()
        self.steps: list[tuple[str, str, list[str]]] = []
        params = 0
        for name in order:
            layer = layers[name]
            if layer["class_name"] == "InputLayer":
                continue
            sources = _inbound(layer)
            given = [shapes[s] for s in sources]
            is_output = name == self.output_name
            key = _module_key(name)
            if key in self.layers:
                raise KerasImportError(f"layer names {name!r} and another clash as {key!r}")
            # First on the meta device: sizes and shapes without allocating anything.
            with torch.device("meta"):
                probe = self._build(layer, given, is_output)
            params += sum(t.numel() for t in itertools.chain(probe.parameters(), probe.buffers()))
            if params > MAX_PARAMS:
                raise KerasImportError(f"layer {name!r} brings the model to {params:,} "
                                       f"parameters; at most {MAX_PARAMS:,} are supported")
            try:
                with torch.no_grad():
                    out = probe(*[torch.empty(s, device="meta") for s in given])
            except RuntimeError as e:
                detail = " ".join(str(e).split())[:300]
                raise KerasImportError(f"layer {name!r} ({layer['class_name']}) cannot take "
                                       f"inputs of shape {given}: {detail}") from e
            if out.numel() > MAX_ACTIVATION:
                raise KerasImportError(f"layer {name!r} ({layer['class_name']}) outputs "
                                       f"{out.numel():,} values per image (shape "
                                       f"{tuple(out.shape)}); at most {MAX_ACTIVATION:,} are "
                                       "supported")
            self.layers[key] = self._build(layer, given, is_output)
            self.steps.append((name, key, sources))
            shapes[name] = tuple(out.shape)
        self.output_shape = shapes[self.output_name]
        last_use = {}
        for i, (_, _, sources) in enumerate(self.steps):
            last_use.update({s: i for s in sources})
        self.free_after = [[s for s, j in last_use.items() if j == i and s != self.output_name]
                           for i in range(len(self.steps))]

    def _order(self, layers: dict[str, dict]) -> list[str]:
        """Layers in an order where every layer comes after its inputs, from the output back
        (a depth-first walk with a stack of its own: a long chain is no deep recursion)."""
        order: list[str] = []
        state: dict[str, str] = {}
        stack: list[tuple[str, bool]] = [(self.output_name, False)]
        while stack:
            name, inputs_done = stack.pop()
            if inputs_done:
                state[name] = "done"
                order.append(name)
                continue
            if state.get(name) == "done":
                continue
            if state.get(name) == "visiting":
                raise KerasImportError(f"the graph has a cycle through layer {name!r}")
            if name not in layers:
                raise KerasImportError(f"an inbound node names layer {name!r:.80}, which the "
                                       "config does not define")
            state[name] = "visiting"
            stack.append((name, True))
            stack.extend((source, False) for source in reversed(_inbound(layers[name])))
        if self.input_name not in order:
            raise KerasImportError(f"the output does not depend on the input {self.input_name!r}")
        return order

    def _build(self, layer: dict, shapes: list[tuple], is_output: bool) -> KerasLayer:
        name, class_name = layer["name"], layer["class_name"]
        if class_name not in BUILDERS:
            raise KerasImportError(f"layer {name!r}: Keras layer type {class_name!r} is not "
                                   f"supported (supported: {', '.join(SUPPORTED)})")
        config = dict(layer["config"])
        if is_output and "activation" in config:
            if config["activation"] not in ("softmax", "linear"):
                raise KerasImportError(
                    f"output layer {name!r}: activation={config['activation']!r} is not "
                    "supported: followme needs class scores that softmax turns into "
                    "probabilities (softmax or linear)")
            config["activation"] = "linear"  # softmax is applied by every followme caller
        if not shapes:
            raise KerasImportError(f"layer {name!r} ({class_name}) has no inputs")
        if class_name not in ("Concatenate", "Add") and len(shapes) != 1:
            raise KerasImportError(f"layer {name!r} ({class_name}) has {len(shapes)} inputs")
        try:
            return BUILDERS[class_name](_Options(name, class_name, config), shapes)
        except KeyError as e:
            raise KerasImportError(f"layer {name!r} ({class_name}): its config has no {e}") from e
        except (TypeError, RuntimeError) as e:
            detail = " ".join(str(e).split())[:300]
            raise KerasImportError(f"layer {name!r} ({class_name}): a bad config ({detail})") from e

    def keras_shapes(self) -> dict[str, dict[str, tuple[int, ...]]]:
        """{layer name: {HDF5 array name: the shape it must have}}, for reading the weights
        file without reading anything of another shape."""
        return {name: self.layers[key].keras_shapes() for name, key, _ in self.steps}

    def load_keras_weights(self, weights: dict[str, dict[str, np.ndarray]]) -> None:
        """Fill every layer from ``weights[layer name][array name]`` (HDF5 arrays, by name)."""
        names = {name for name, _, _ in self.steps}
        stray = sorted(n for n, arrays in weights.items() if arrays and n not in names)
        if stray:
            raise KerasImportError(f"the weights file has arrays for layers the config does not "
                                   f"have: {', '.join(stray)}")
        for name, key, _ in self.steps:
            self.layers[key].load_keras(name, weights.get(name, {}))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = {self.input_name: x}
        for (name, key, sources), done in zip(self.steps, self.free_after, strict=True):
            values[name] = self.layers[key](*[values[s] for s in sources])
            for s in done:
                del values[s]
        return values[self.output_name]


def check_keras_config(config: dict, image_size: int | None = None) -> None:
    """A checkpoint's model_config for an imported graph, {"keras": <Keras model config>,
    "image_size": S}: its kinds and sizes (the graph itself is checked as it is built)."""
    if not isinstance(config, dict):
        raise ValueError(f"model_config is a {type(config).__name__}, not a dict")
    if not isinstance(config.get("keras"), dict):
        raise ValueError(f"model_config keras is a {type(config.get('keras')).__name__}, "
                         "not a dict")
    for name, size in (("image_size", image_size),
                       ("model_config image_size", config.get("image_size"))):
        if size is not None:  # an imported model may be tiny (tests), but not huge
            check_image_size(name, size, 1)


def build_keras(config: dict) -> KerasGraph:
    """Rebuild an imported graph from a checkpoint's model_config."""
    check_keras_config(config)
    return KerasGraph(config["keras"], config.get("image_size"))
