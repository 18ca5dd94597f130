"""A PyTorch module built from a Keras 2 functional-model config: its layers and inbound nodes.

Inside the module 4-D tensors are NCHW; tensors of other ranks keep the Keras (channels-last)
layout, so that a ``Reshape`` sees the same element order as it did in Keras.

The module returns logits: a softmax on the output layer (its ``activation`` or an
``Activation("softmax")`` layer) is left out, because every followme caller applies
``softmax(1)`` to the model's output. softmax of the pre-softmax values is then exactly the
Keras model's probability.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from followme.keras_import.ops import pad_same, resize_bilinear_tf1


class KerasImportError(ValueError):
    """A Keras model that cannot be imported; the message names the layer and the option."""


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

    def pair(self, option: str, default=None) -> tuple[int, int]:
        value = self.config.get(option, default)
        value = (value, value) if isinstance(value, int) else value
        if (not isinstance(value, list | tuple) or len(value) != 2
                or not all(isinstance(v, int) and v > 0 for v in value)):
            raise self.error(option, value, "a positive int or a pair of them")
        return tuple(value)

    def activation(self) -> str:
        return self.get("activation", "linear", tuple(ACTIVATIONS))

    def channels_last(self) -> None:
        self.get("data_format", "channels_last", ("channels_last", None))

    def padding(self) -> str:
        return self.get("padding", "valid", ("same", "valid"))


def _conv_options(o: _Options) -> dict:
    o.channels_last()
    o.get("groups", 1, (1,))
    return dict(kernel=o.pair("kernel_size"), stride=o.pair("strides", 1), padding=o.padding(),
                use_bias=o.get("use_bias", True, (True, False)), activation=o.activation())


def _conv2d(o: _Options, shapes: list[tuple]) -> KerasLayer:
    return Conv2D(shapes[0][1], o.config["filters"], dilation=o.pair("dilation_rate", 1),
                  **_conv_options(o))


def _separable(o: _Options, shapes: list[tuple]) -> KerasLayer:
    multiplier = o.get("depth_multiplier", 1)
    if not isinstance(multiplier, int) or multiplier < 1:
        raise o.error("depth_multiplier", multiplier, "a positive int")
    return SeparableConv2D(shapes[0][1], o.config["filters"], dilation=o.pair("dilation_rate", 1),
                           depth_multiplier=multiplier, **_conv_options(o))


def _transpose(o: _Options, shapes: list[tuple]) -> KerasLayer:
    o.get("output_padding", None, (None,))
    if o.pair("dilation_rate", 1) != (1, 1):
        raise o.error("dilation_rate", o.config["dilation_rate"], "1")
    return Conv2DTranspose(shapes[0][1], o.config["filters"], **_conv_options(o))


def _batchnorm(o: _Options, shapes: list[tuple]) -> KerasLayer:
    axis = o.get("axis", -1)
    axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
    ndim = len(shapes[0])
    if not isinstance(axis, int) or keras_axis(axis, ndim) != (1 if ndim == 4 else ndim - 1):
        raise o.error("axis", o.config.get("axis"), "the channel axis, -1")
    for option in ("renorm", "virtual_batch_size", "adjustment"):
        o.get(option, None, (None, False))
    return BatchNormalization(shapes[0][keras_axis(axis, ndim)], axis,
                              float(o.get("epsilon", 1e-3)), o.get("center", True, (True, False)),
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
    pool = o.pair("pool_size", 2)
    stride = pool if o.config.get("strides") is None else o.pair("strides")
    return MaxPooling2D(pool, stride, o.padding())


def _concatenate(o: _Options, shapes: list[tuple]) -> KerasLayer:
    return Concatenate(o.get("axis", -1))


def _reshape(o: _Options, shapes: list[tuple]) -> KerasLayer:
    return Reshape(tuple(o.config["target_shape"]))


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
        if entry[1] != 0 or entry[2] != 0 or (len(entry) > 3 and entry[3]):
            raise KerasImportError(f"layer {name!r}: inbound node {entry!r} is not supported "
                                   "(only node 0, tensor 0, no call arguments)")
        sources.append(entry[0])
    return sources


def _single(config: dict, key: str) -> str:
    ends = config.get(key, [])
    if len(ends) != 1:
        raise KerasImportError(f"the model has {len(ends)} {key}; exactly one is supported")
    return ends[0][0]


def _module_key(name: str) -> str:
    return re.sub(r"\W", "_", name)


def input_shape(layer: dict) -> list:
    """An InputLayer's [height, width, channels] (entries may be None)."""
    cfg = layer["config"]
    shape = cfg.get("batch_input_shape") or cfg.get("batch_shape")
    if not shape or len(shape) != 4:
        raise KerasImportError(f"input layer {layer['name']!r}: shape {shape!r}; an image input "
                               "(batch, height, width, channels) is needed")
    return list(shape[1:])


class KerasGraph(nn.Module):
    """The functional graph of a Keras 2 model config (``model.to_json()``, parsed)."""

    def __init__(self, model_config: dict, image_size: int | None = None):
        super().__init__()
        if model_config.get("class_name") not in ("Model", "Functional"):
            raise KerasImportError(f"model class {model_config.get('class_name')!r} is not "
                                   "supported; only functional models (Model) are")
        config = model_config["config"]
        self.keras_name = config.get("name", "model")
        layers = {layer["name"]: layer for layer in config["layers"]}
        self.input_name = _single(config, "input_layers")
        self.output_name = _single(config, "output_layers")
        height, width, channels = input_shape(layers[self.input_name])
        height, width = height or image_size, width or image_size
        if height is None or width is None:
            raise KerasImportError("the input layer has no fixed size; give the image size")
        self.image_size = (height, width)

        order = self._order(layers)
        shapes = {self.input_name: (1, channels, height, width)}
        self.layers = nn.ModuleDict()
        self.steps: list[tuple[str, str, list[str]]] = []
        for name in order:
            layer = layers[name]
            if layer["class_name"] == "InputLayer":
                continue
            sources = _inbound(layer)
            module = self._build(layer, [shapes[s] for s in sources],
                                 is_output=name == self.output_name)
            key = _module_key(name)
            if key in self.layers:
                raise KerasImportError(f"layer names {name!r} and another clash as {key!r}")
            self.layers[key] = module
            self.steps.append((name, key, sources))
            try:
                with torch.no_grad():
                    out = module(*[torch.zeros(shapes[s]) for s in sources])
            except RuntimeError as e:
                given = [shapes[s] for s in sources]
                raise KerasImportError(f"layer {name!r} ({layer['class_name']}) cannot take "
                                       f"inputs of shape {given}: {e}") from e
            shapes[name] = tuple(out.shape)
        self.output_shape = shapes[self.output_name]
        last_use = {}
        for i, (_, _, sources) in enumerate(self.steps):
            last_use.update({s: i for s in sources})
        self.free_after = [[s for s, j in last_use.items() if j == i and s != self.output_name]
                           for i in range(len(self.steps))]

    def _order(self, layers: dict[str, dict]) -> list[str]:
        """Layers in an order where every layer comes after its inputs, from the output back."""
        order: list[str] = []
        state: dict[str, str] = {}

        def visit(name: str) -> None:
            if state.get(name) == "done":
                return
            if state.get(name) == "visiting":
                raise KerasImportError(f"the graph has a cycle through layer {name!r}")
            if name not in layers:
                raise KerasImportError(f"an inbound node names layer {name!r}, which the config "
                                       "does not define")
            state[name] = "visiting"
            for source in _inbound(layers[name]):
                visit(source)
            state[name] = "done"
            order.append(name)

        visit(self.output_name)
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
