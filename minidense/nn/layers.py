"""The layers DenseNet needs. Each one holds its parameters and calls ``minidense.nn.functional``.

    Conv2d  BatchNorm2d  Linear  ReLU  Dropout  AvgPool2d  MaxPool2d  AdaptiveAvgPool2d  Flatten
    Identity

Shapes are NCHW. A layer checks its input first, so a wrong shape is reported by the layer that
got it, e.g.
``Conv2d(3, 16, kernel_size=3): expected input with 3 channels, got shape (8, 1, 32, 32)``.
"""
import math

import numpy

from .. import creation
from ..autograd import ShapeError
from ..ops import flatten
from ..ops.windows import pair
from . import functional as F
from . import init
from .module import Module, Parameter


def _compact(pair):
    """(3, 3) -> 3, (1, 2) -> (1, 2): the short form for reprs."""
    return pair[0] if pair[0] == pair[1] else pair


def check_same_dtype(layer, x, **parameters):
    """One rule for every layer, as for Conv2d and BatchNorm2d: input and parameters share one
    dtype (float64 input to a float32 layer is refused, not silently promoted)."""
    for name, parameter in parameters.items():
        if parameter is not None and parameter.dtype != x.dtype:
            raise TypeError(f"{layer.describe()}: input is {x.dtype} but {name} is "
                            f"{parameter.dtype}; convert one of them (x.float() or "
                            f"layer.to(x.dtype)) so both match")


def _new_parameter(*shape):
    return Parameter(creation.zeros(*shape, dtype=numpy.float32))


class _ChannelLayer(Module):
    """Shared input check for layers that read NCHW input with a fixed number of channels."""

    def _check_channels(self, x, channels):
        if x.ndim != 4:
            raise ValueError(f"{self.describe()}: expected NCHW input of shape "
                             f"(N, {channels}, H, W), got shape {tuple(x.shape)}")
        if x.shape[1] != channels:
            raise ValueError(f"{self.describe()}: expected input with {channels} channels, "
                             f"got shape {tuple(x.shape)}")


class Conv2d(_ChannelLayer):
    """2-D convolution (cross-correlation) over NCHW input.

    ``y[n, o] = bias[o] + sum_{c, i, j} weight[o, c, i, j] * x_padded[n, c, s*h + i, s*w + j]``

    weight: (out_channels, in_channels, kh, kw), He normal init with std = sqrt(2 / (kh*kw*out));
    bias: (out_channels,), zeros (or no bias with ``bias=False``, as before a BatchNorm).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = pair(kernel_size, "kernel_size", "Conv2d", 1)
        self.stride = pair(stride, "stride", "Conv2d", 1)
        self.padding = pair(padding, "padding", "Conv2d", 0)
        self.weight = _new_parameter(out_channels, in_channels, *self.kernel_size)
        self.bias = _new_parameter(out_channels) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, x):
        self._check_channels(x, self.in_channels)
        return F.conv2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding)

    def extra_repr(self):
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={_compact(self.kernel_size)}"
        if self.stride != (1, 1):
            text += f", stride={_compact(self.stride)}"
        if self.padding != (0, 0):
            text += f", padding={_compact(self.padding)}"
        return text + (", bias=False" if self.bias is None else "")


class BatchNorm2d(_ChannelLayer):
    """Batch normalisation per channel: ``y = (x - mean) / sqrt(var + eps) * weight + bias``.

    Training mode uses the batch's mean and (biased) variance over N, H, W and updates the buffers
    ``running_mean`` (starts at 0) and ``running_var`` (starts at 1, updated with the unbiased
    variance): ``running = (1 - momentum) * running + momentum * batch``.
    Evaluation mode (``model.eval()``) uses the running statistics instead.
    weight (gamma) starts at 1, bias (beta) at 0.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = _new_parameter(num_features)
        self.bias = _new_parameter(num_features)
        self.register_buffer("running_mean", creation.zeros(num_features))
        self.register_buffer("running_var", creation.ones(num_features))
        self.reset_parameters()

    def reset_parameters(self):
        init.ones_(self.weight)
        init.zeros_(self.bias)
        init.zeros_(self.running_mean)
        init.ones_(self.running_var)

    def forward(self, x):
        return self._normalize(F.batch_norm, x)

    def forward_with_relu(self, x, statistics=None):
        """relu(self(x)) through ``F.batch_norm_relu``, which the fast kernels run as one fused op:
        the same numbers, one stored array fewer. ``statistics``: a dense block's shared batch
        statistics (training mode, fast kernels)."""
        return self._normalize(F.batch_norm_relu, x, statistics=statistics)

    def _normalize(self, function, x, **options):
        self._check_channels(x, self.num_features)
        return function(x, self.running_mean, self.running_var, self.weight, self.bias,
                        training=self.training, momentum=self.momentum, eps=self.eps, **options)

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class Linear(Module):
    """Fully connected layer: ``y = x @ weight.T + bias``, weight (out_features, in_features).

    weight ~ Uniform(-1/sqrt(in_features), 1/sqrt(in_features)) as in PyTorch; bias starts at 0
    (as in the DenseNet code; PyTorch draws it uniformly).
    """

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = _new_parameter(out_features, in_features)
        self.bias = _new_parameter(out_features) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.in_features)
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, x):
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ShapeError(f"{self.describe()}: expected input whose last dimension is "
                             f"{self.in_features}, got shape {tuple(x.shape)}; flatten feature "
                             f"maps first (nn.Flatten() or nn.AdaptiveAvgPool2d(1) + Flatten)")
        check_same_dtype(self, x, weight=self.weight, bias=self.bias)
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class ReLU(Module):
    """``max(x, 0)`` elementwise. ``inplace`` is accepted for PyTorch code and ignored: minidense
    always returns a new tensor."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        return F.relu(x)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class Dropout(Module):
    """Training mode: zero each element with probability p and scale survivors by 1/(1-p).
    Evaluation mode: identity. The mask comes from the run's seeded generator."""

    def __init__(self, p=0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout(p={p}): p is a probability, it must be in [0, 1]")
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class _Pool2d(Module):
    """Pooling over kh x kw windows; ``stride`` defaults to the kernel size (no overlap)."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.padding = kernel_size, padding
        self.stride = kernel_size if stride is None else stride

    def forward(self, x):
        if x.ndim != 4:
            raise ValueError(f"{self.describe()}: expected NCHW input with 4 dimensions, got shape "
                             f"{tuple(x.shape)}")
        return self.pool(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(_Pool2d):
    """Mean of each window (DenseNet's transition layers: 2x2, stride 2)."""
    pool = staticmethod(lambda x, k, s, p: F.avg_pool2d(x, k, stride=s, padding=p))


class MaxPool2d(_Pool2d):
    """Maximum of each window (the ImageNet DenseNet stem: 3x3, stride 2, padding 1)."""
    pool = staticmethod(lambda x, k, s, p: F.max_pool2d(x, k, stride=s, padding=p))


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size; ``AdaptiveAvgPool2d(1)`` = global average pool."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        if x.ndim != 4:
            raise ValueError(f"{self.describe()}: expected NCHW input with 4 dimensions, got shape "
                             f"{tuple(x.shape)}")
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class Flatten(Module):
    """Merge dimensions start_dim..end_dim into one: (N, C, 1, 1) -> (N, C)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Identity(Module):
    """Returns its input unchanged (a placeholder, e.g. a layer switched off)."""

    def forward(self, x):
        return x
