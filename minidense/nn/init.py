"""Weight initialisation, in place (the trailing ``_`` says so, as in PyTorch).

Defaults used by minidense's layers (following the DenseNet paper's code):

* ``Conv2d`` weight: He normal with n = kh * kw * out_channels ("fan out"):
  ``w ~ Normal(0, std = sqrt(2 / n))``, so a ReLU network keeps its activation scale in the backward
  pass (He et al. 2015). Conv bias: 0.
* ``BatchNorm2d``: weight (gamma) 1, bias (beta) 0.
* ``Linear`` weight: ``Uniform(-1/sqrt(in_features), 1/sqrt(in_features))`` like PyTorch;
  bias 0 (PyTorch draws it uniformly too, the DenseNet code sets it to zero).

All random numbers come from ``minidense.random.generator``, so ``md.manual_seed(n)`` makes the
initial weights reproducible.
"""
import math

from ..random import generator
from .. import backend


def _fill(tensor, values):
    """Write ``values`` into ``tensor.data`` keeping its dtype and device; return the tensor."""
    tensor.data[...] = values.astype(tensor.dtype, copy=False)
    return tensor


def _rng(tensor):
    return generator(backend.get_array_module(tensor.data))


def calculate_gain(nonlinearity, param=None):
    """The factor that keeps activations' scale: relu sqrt(2), leaky_relu sqrt(2/(1+a^2)),
    tanh 5/3, linear/sigmoid 1."""
    if nonlinearity in ("linear", "conv2d", "sigmoid", "identity"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope ** 2))
    raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}")


def calculate_fans(tensor):
    """(fan_in, fan_out): in * kh * kw and out * kh * kw for a (out, in, kh, kw) weight."""
    if tensor.ndim < 2:
        raise ValueError(f"fan in/out need a weight with at least 2 dimensions, got shape "
                         f"{tensor.shape}")
    receptive_field = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    """He normal: ``Normal(0, gain / sqrt(fan))``, fan = fan_in or fan_out (``mode``).

    The DenseNet convolutions use ``mode='fan_out', nonlinearity='relu'``: std = sqrt(2 / n),
    n = kh * kw * out_channels.
    """
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming_normal_: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = calculate_fans(tensor)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan_in if mode == "fan_in" else fan_out)
    return normal_(tensor, 0.0, std)


def normal_(tensor, mean=0.0, std=1.0):
    """Fill with samples from Normal(mean, std)."""
    return _fill(tensor, mean + std * _rng(tensor).standard_normal(tensor.shape))


def uniform_(tensor, a=0.0, b=1.0):
    """Fill with samples from Uniform(a, b)."""
    return _fill(tensor, a + (b - a) * _rng(tensor).random(tensor.shape))


def constant_(tensor, value):
    tensor.data[...] = value
    return tensor


def zeros_(tensor):
    return constant_(tensor, 0)


def ones_(tensor):
    return constant_(tensor, 1)
