"""Reductions: sum, mean, max, min over an ``axis`` (NumPy names; PyTorch's ``dim``/``keepdim``
are accepted too).

A reduction's backward spreads the gradient back over the elements that were reduced: ``sum`` gives
every element the full gradient, ``mean`` a 1/n share, ``max`` only the elements equal to the maximum
(split evenly between ties, like ``torch.amax``).
"""
import builtins

from .. import backend
from ..autograd import Function, ShapeError, Tensor
from .shape import broadcast_to, keepdims_shape, normalize_axis, reshape


def _axis_tuple(axis):
    return tuple(axis) if isinstance(axis, list) else axis


def check_axis(op, shape, axis):
    """Every axis must exist in ``shape`` (negative axes count from the end)."""
    for a in (axis if isinstance(axis, tuple) else () if axis is None else (axis,)):
        if not -len(shape) <= a < len(shape):
            raise ShapeError(f"{op}: axis {a} does not exist in a tensor of shape {tuple(shape)} "
                             f"(valid axes: {-len(shape)} to {len(shape) - 1})")


class Sum(Function):
    """y = sum of x over axis.   dL/dx = dL/dy broadcast back to x.shape"""

    saves_inputs = False        # backward reads only the input's shape

    def __init__(self, axis, keepdims):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        check_axis("sum", x.shape, self.axis)
        return x.sum(axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy):
        shape = self.input_shapes[0]
        return broadcast_to(reshape(gy, keepdims_shape(shape, self.axis)), shape)


class Max(Function):
    """y = max of x over axis.   dL/dx = dL/dy at the maxima (shared evenly by ties), 0 elsewhere.

    A NaN is the maximum of its window (NumPy and PyTorch propagate it), so the NaNs are where
    the gradient goes."""

    def __init__(self, axis, keepdims):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        check_axis("max", x.shape, self.axis)
        return x.max(axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy):
        x = self.inputs[0].data
        xp = backend.get_array_module(x)
        peak = x.max(axis=self.axis, keepdims=True)
        is_max = ((x == peak) | (xp.isnan(x) & xp.isnan(peak))).astype(x.dtype)
        share = is_max / is_max.sum(axis=self.axis, keepdims=True)
        return broadcast_to(reshape(gy, keepdims_shape(x.shape, self.axis)), x.shape) * Tensor(share)


def sum(x, axis=None, keepdims=False, dim=None, keepdim=None):
    axis = _axis_tuple(normalize_axis(axis, dim))
    return Sum(axis, keepdims if keepdim is None else keepdim)(x)


def mean(x, axis=None, keepdims=False, dim=None, keepdim=None):
    axis = _axis_tuple(normalize_axis(axis, dim))
    total = sum(x, axis, keepdims if keepdim is None else keepdim)
    count = x.data.size // builtins.max(total.data.size, 1)     # values averaged per output
    return total * (1.0 / count if count else float("nan"))     # an empty mean is NaN


def max(x, axis=None, keepdims=False, dim=None, keepdim=None):
    axis = _axis_tuple(normalize_axis(axis, dim))
    if x.data.size == 0:
        raise ValueError(f"max: the tensor of shape {x.shape} is empty")
    return Max(axis, keepdims if keepdim is None else keepdim)(x)


def min(x, axis=None, keepdims=False, dim=None, keepdim=None):
    return -max(-x, axis, keepdims, dim, keepdim)


def argmax(x, axis=None, dim=None):
    """Index of the maximum (no gradient)."""
    data = x.data if isinstance(x, Tensor) else x
    return Tensor(data.argmax(axis=normalize_axis(axis, dim)))
