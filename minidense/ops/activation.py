"""Dropout, softmax and log-softmax. (relu, sigmoid and tanh are in elementwise.py.)

Dropout (inverted): while training, each element is kept with probability 1 - p and scaled by
1 / (1 - p), so the expected output equals the input and evaluation needs no rescaling:

    y = x * m,   m = keep / (1 - p),  keep ~ Bernoulli(1 - p)        dL/dx = dL/dy * m

Softmax and log-softmax along ``axis`` subtract the maximum first; that changes nothing
mathematically (the shift cancels) but keeps exp() from overflowing for large inputs:

    softmax:      y = exp(x - max) / sum(exp(x - max))      dL/dx = y * (dL/dy - sum(dL/dy * y))
    log_softmax:  y = x - max - log(sum(exp(x - max)))      dL/dx = dL/dy - softmax(x) * sum(dL/dy)

Both backwards are written with Tensor ops, so they can be differentiated again.
"""
from .. import backend
from ..autograd import Function, Tensor
from ..random import rng_for
from .reduction import sum
from .shape import normalize_axis


class Dropout(Function):
    """y = x * m, m = keep / (1 - p) with a fresh random mask.   dL/dx = dL/dy * m

    With p = 1 nothing is kept and m = 0 (as in PyTorch). Saved for backward: m, not x.
    """

    saves_inputs = False

    def __init__(self, p):
        self.p = p

    def forward(self, x):
        xp = backend.get_array_module(x)
        if self.p == 1:
            mask = xp.zeros_like(x)
        else:
            keep = rng_for(x).random(x.shape, dtype=xp.float32) >= self.p
            mask = keep.astype(x.dtype) * x.dtype.type(1 / (1 - self.p))
        self.save_for_backward(mask)
        return x * mask

    def backward(self, gy):
        (mask,) = self.saved_values
        return gy * Tensor(mask)


def dropout(x, p=0.5, training=True):
    """Inverted dropout (PyTorch's F.dropout): the identity when not training or when p == 0;
    all zeros when p == 1."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout: p is the probability of dropping an element and must be in "
                         f"[0, 1], got {p}")
    if not training or p == 0:
        return x
    return Dropout(p)(x)


def _shifted(x, axis):
    """x - max(x) along axis: the largest entry becomes 0, so exp() cannot overflow."""
    return x - x.max(axis=axis, keepdims=True)


class Softmax(Function):
    """y = exp(x) / sum(exp(x)) along axis.   dL/dx = y * (dL/dy - sum(dL/dy * y))"""

    def __init__(self, axis):
        self.axis = axis

    def forward(self, x):
        xp = backend.get_array_module(x)
        e = xp.exp(_shifted(x, self.axis))
        return e / e.sum(axis=self.axis, keepdims=True)

    def backward(self, gy):
        y = softmax(self.inputs[0], self.axis)
        return y * (gy - sum(gy * y, axis=self.axis, keepdims=True))


class LogSoftmax(Function):
    """y = x - log(sum(exp(x))) along axis.   dL/dx = dL/dy - softmax(x) * sum(dL/dy)"""

    def __init__(self, axis):
        self.axis = axis

    def forward(self, x):
        xp = backend.get_array_module(x)
        z = _shifted(x, self.axis)
        return z - xp.log(xp.exp(z).sum(axis=self.axis, keepdims=True))

    def backward(self, gy):
        y = softmax(self.inputs[0], self.axis)
        return gy - y * sum(gy, axis=self.axis, keepdims=True)


def softmax(x, axis=-1, dim=None):
    """Softmax along ``axis`` (``dim`` is accepted as PyTorch's name for it)."""
    _require_floating("softmax", x)
    return Softmax(normalize_axis(axis if dim is None else None, dim))(x)


def log_softmax(x, axis=-1, dim=None):
    """log(softmax(x)) computed stably along ``axis`` (``dim`` accepted as an alias)."""
    _require_floating("log_softmax", x)
    return LogSoftmax(normalize_axis(axis if dim is None else None, dim))(x)


def _require_floating(op, x):
    """Probabilities need a floating dtype; like PyTorch, refuse integer and bool tensors."""
    dtype = x.data.dtype if isinstance(x, Tensor) else getattr(x, "dtype", None)
    if dtype is not None and dtype.kind not in "fc":
        raise TypeError(f"{op}: the input has dtype {dtype}, but {op} needs floating-point "
                        f"values; convert it first, e.g. x.float()")
