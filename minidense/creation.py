"""Making tensors: md.tensor, zeros, ones, randn, rand, arange, full, *_like (PyTorch's names)."""
import contextlib
import math

import numpy

from . import backend
from .autograd import Tensor
from .random import generator


def _dtype(dtype, default=numpy.float32):
    return numpy.dtype(default if dtype is None else dtype)


def tensor(data, requires_grad=False, dtype=None, device=None):
    """A new leaf tensor holding a copy of ``data``.

    Python floats become float32 (as in PyTorch); a NumPy array keeps its dtype, so float64 data
    stays float64 for gradient checks.
    """
    if isinstance(data, Tensor):
        data = data.data
    if not isinstance(data, backend.get_array_module(data).ndarray):
        array = numpy.array(data)
        if dtype is None and array.dtype == numpy.float64:
            array = array.astype(numpy.float32)
    else:
        array = data.copy()
    if dtype is not None:
        array = array.astype(numpy.dtype(dtype))
    device = backend.check_device(device) if device is not None else (
        backend.device_of(array) if backend.device_of(array) == "cuda" else backend.default_device())
    return Tensor(backend.to_device(array, device), requires_grad=requires_grad)


def _shape(shape):
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape


_budget = []    # [values left, error to raise]: inside ``allocation_budget``


@contextlib.contextmanager
def allocation_budget(values, error):
    """Inside the block, the functions below refuse (raising ``error``) to make more than
    ``values`` numbers in all, before allocating them. For models described by a file from
    elsewhere: a checkpoint that holds N weights may make minidense build a model of N numbers,
    not whatever size its description asks for."""
    _budget.append([values, error])
    try:
        yield
    finally:
        _budget.pop()


def _make(fill, shape, dtype, device, requires_grad):
    xp = backend.array_module(device if device is not None else backend.default_device())
    shape = _shape(shape)
    if _budget:
        _budget[-1][0] -= math.prod(int(n) for n in shape)
        if _budget[-1][0] < 0:
            raise _budget[-1][1]
    return Tensor(fill(xp, shape, _dtype(dtype)), requires_grad=requires_grad)


def zeros(*shape, dtype=None, device=None, requires_grad=False):
    return _make(lambda xp, s, d: xp.zeros(s, dtype=d), shape, dtype, device, requires_grad)


def ones(*shape, dtype=None, device=None, requires_grad=False):
    return _make(lambda xp, s, d: xp.ones(s, dtype=d), shape, dtype, device, requires_grad)


def full(shape, fill_value, dtype=None, device=None, requires_grad=False):
    return _make(lambda xp, s, d: xp.full(s, fill_value, dtype=d), (shape,), dtype, device,
                 requires_grad)


def randn(*shape, dtype=None, device=None, requires_grad=False):
    """Standard normal samples from the run's seeded generator."""
    return _make(lambda xp, s, d: generator(xp).standard_normal(s).astype(d), shape, dtype, device,
                 requires_grad)


def rand(*shape, dtype=None, device=None, requires_grad=False):
    """Uniform [0, 1) samples from the run's seeded generator."""
    return _make(lambda xp, s, d: generator(xp).random(s).astype(d), shape, dtype, device,
                 requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    if end is None:
        start, end = 0, start
    default = numpy.int64 if all(isinstance(v, int) for v in (start, end, step)) else numpy.float32
    return _make(lambda xp, s, d: xp.arange(start, end, step, dtype=d), (), dtype or default,
                 device, requires_grad)


def zeros_like(t, dtype=None, requires_grad=False):
    return zeros(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def ones_like(t, dtype=None, requires_grad=False):
    return ones(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def randn_like(t, dtype=None, requires_grad=False):
    return randn(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)
