"""An emulated CuPy that runs on the CPU, so the ``device='cuda'`` code paths run without a GPU.

Underneath it is NumPy, but its arrays are a separate type that keeps CuPy's rule that matters
most for portable code: device arrays and host (NumPy) arrays never mix silently.

* ``numpy.asarray(device_array)`` raises ``TypeError`` (CuPy: "Implicit conversion to a NumPy
  array is not allowed"); ``.get()`` and ``cupy.asnumpy`` are the explicit ways back.
* A NumPy array inside arithmetic with a device array, as an argument of a ``cupy.<function>`` or
  as the value of ``device_array[...] = value`` raises ``TypeError`` ("Unsupported type").
* Reductions give 0-d device arrays, not NumPy scalars, as CuPy's do.
* ``numpy.<function>(device_array)`` dispatches to the device module (``__array_function__``),
  as it does for CuPy.

What it cannot show: speed, GPU memory, kernel launches, or the places where CuPy's numerics or
function coverage differ from NumPy's. Tests that run on it are named ``[cuda-emulated]``; on a
machine with a GPU and CuPy the same tests run on the real thing instead.

``install(monkeypatch)`` puts it in place of CuPy for one test.
"""
import sys
import types

import numpy
from numpy.lib.mixins import NDArrayOperatorsMixin


def _refuse_host(value, where):
    raise TypeError(f"Unsupported type {type(value)} in {where}: a NumPy (host) array cannot be "
                    f"used with device arrays; move it with cupy.asarray first")


def _unwrap(value, where, allow_host=False):
    """Device arrays -> their NumPy buffers (recursively); host arrays refused unless allowed."""
    if isinstance(value, ndarray):
        return value._array
    if isinstance(value, numpy.ndarray) and not allow_host:
        _refuse_host(value, where)
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v, where, allow_host) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v, where, allow_host) for k, v in value.items()}
    return value


def _wrap(value):
    """NumPy results -> device arrays (NumPy scalars become 0-d device arrays, as in CuPy)."""
    if isinstance(value, numpy.ndarray):
        return ndarray(value)
    if isinstance(value, numpy.generic):
        return ndarray(numpy.asarray(value))
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


class ndarray(NDArrayOperatorsMixin):  # noqa: N801 (CuPy's name)
    """A 'device' array: a NumPy buffer that refuses to be mixed with host arrays."""

    __array_priority__ = 100

    def __init__(self, array):
        self._array = array

    # -- the host/device boundary ----------------------------------------------------------------
    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")

    def get(self):
        return self._array.copy()

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        where = f"cupy.{ufunc.__name__}"
        inputs = _unwrap(inputs, where)
        if out is not None:
            kwargs["out"] = _unwrap(out, where)
        result = getattr(ufunc, method)(*inputs, **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(result)

    def __array_function__(self, func, types, args, kwargs):
        where = f"cupy.{func.__name__}"
        return _wrap(func(*_unwrap(args, where), **_unwrap(kwargs, where)))

    # -- attributes and methods: NumPy's, with arguments unwrapped and results wrapped -------------
    shape = property(lambda self: self._array.shape)
    dtype = property(lambda self: self._array.dtype)
    ndim = property(lambda self: self._array.ndim)
    size = property(lambda self: self._array.size)
    nbytes = property(lambda self: self._array.nbytes)
    itemsize = property(lambda self: self._array.itemsize)
    strides = property(lambda self: self._array.strides)
    flags = property(lambda self: self._array.flags)
    T = property(lambda self: ndarray(self._array.T))
    device = property(lambda self: "<emulated CUDA device 0>")

    def __getattr__(self, name):
        if name.startswith("__"):   # not NumPy's __array_interface__ & co.: no back doors to host
            raise AttributeError(name)
        attribute = getattr(self._array, name)
        if not callable(attribute):
            return _wrap(attribute)
        where = f"cupy.ndarray.{name}"
        return lambda *args, **kwargs: _wrap(attribute(*_unwrap(args, where),
                                                       **_unwrap(kwargs, where)))

    def __getitem__(self, index):
        return _wrap(self._array[_unwrap(index, "cupy.ndarray.__getitem__", allow_host=True)])

    def __setitem__(self, index, value):
        where = "cupy.ndarray.__setitem__"
        if isinstance(value, list):
            raise TypeError(f"Unsupported type {type(value)} in {where}")
        self._array[_unwrap(index, where, allow_host=True)] = _unwrap(value, where)

    def __len__(self):
        return len(self._array)

    def __iter__(self):
        return (_wrap(row) for row in self._array)

    def __bool__(self):
        return bool(self._array)

    def __float__(self):
        return float(self._array)

    def __int__(self):
        return int(self._array)

    def __repr__(self):
        return repr(self._array).replace("array(", "cuda-emulated array(")

    def __deepcopy__(self, memo):
        return ndarray(self._array.copy())

    def __reduce__(self):
        raise TypeError("refusing to pickle an emulated CuPy array")


class _DeviceFunction:
    """A ``cupy.<function>``: NumPy's function on unwrapped arguments, refusing host arrays."""

    def __init__(self, function, allow_host=False):
        self._function, self._allow_host = function, allow_host
        self.__name__ = getattr(function, "__name__", "function")

    def __call__(self, *args, **kwargs):
        where = f"cupy.{self.__name__}"
        out = kwargs.get("out")
        result = self._function(*_unwrap(args, where, self._allow_host),
                                **_unwrap(kwargs, where, self._allow_host))
        return out if isinstance(out, ndarray) else _wrap(result)

    def __getattr__(self, name):  # ufunc methods: cupy.add.reduce, cupy.maximum.accumulate, ...
        return _DeviceFunction(getattr(self._function, name), self._allow_host)


def _to_device(value, dtype=None, copy=True, **kwargs):
    """cupy.asarray / cupy.array: the one way in for host data."""
    if isinstance(value, ndarray):
        array = value._array.astype(dtype) if dtype is not None else value._array
        return ndarray(array.copy() if copy and array is value._array else array)
    return ndarray(numpy.array(_unwrap(value, "cupy.asarray", allow_host=True), dtype=dtype))


def asnumpy(value):
    return value.get() if isinstance(value, ndarray) else numpy.asarray(value)


class _Generator:
    """cupy.random.Generator: NumPy's generator, results on the device."""

    def __init__(self, seed):
        self._generator = numpy.random.default_rng(seed)

    def __getattr__(self, name):
        return _DeviceFunction(getattr(self._generator, name))


class _MemoryPool:
    def used_bytes(self):
        return 0

    def total_bytes(self):
        return 0

    def free_all_blocks(self):
        pass


class _Device:
    def __init__(self, index=0):
        self.id = index

    def synchronize(self):
        pass


class _Module(types.ModuleType):
    """The ``cupy`` module: NumPy's names, with functions made device functions."""

    ndarray = ndarray
    asarray = staticmethod(lambda value, dtype=None: _to_device(value, dtype, copy=False))
    array = staticmethod(_to_device)
    asnumpy = staticmethod(asnumpy)
    random = types.SimpleNamespace(default_rng=_Generator)
    cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: 1),
                                 Device=_Device, is_available=lambda: True)
    get_default_memory_pool = staticmethod(_MemoryPool)

    def __getattr__(self, name):
        attribute = getattr(numpy, name)
        if isinstance(attribute, numpy.ufunc) or (callable(attribute)
                                                  and not isinstance(attribute, type)):
            return _DeviceFunction(attribute)
        return attribute  # dtypes (cupy.float32 is numpy.float32), constants, pi, newaxis


def scatter_add(target, index, values):
    """cupyx.scatter_add: ``target[index] += values`` with repeated indices summed."""
    where = "cupyx.scatter_add"
    numpy.add.at(_unwrap(target, where), _unwrap(index, where, allow_host=True),
                 _unwrap(values, where))


cupy = _Module("cupy")
cupyx = types.ModuleType("cupyx")
cupyx.scatter_add = scatter_add


def install(monkeypatch):
    """Make minidense (and ``import cupy``) see the emulated CuPy for the rest of one test."""
    from minidense import backend, random

    monkeypatch.setattr(backend, "_cupy", cupy)
    monkeypatch.setattr(backend, "_cupy_error", None)
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.setitem(sys.modules, "cupyx", cupyx)
    monkeypatch.setattr(random, "_generators", {})
