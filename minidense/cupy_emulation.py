"""CuPy emulated on the CPU: the ``device='cuda'`` code paths run, and are counted, without a GPU.

Underneath it is NumPy, but its arrays are a separate type that keeps CuPy's rules, so code that
runs here does not break on a real GPU:

* Device arrays and host (NumPy) arrays never mix: ``numpy.asarray(device_array)`` raises
  ``TypeError``, as does a NumPy array in arithmetic with a device array, as an argument of a
  ``cupy.<function>``, or assigned into one. ``.get()`` and ``cupy.asnumpy`` are the ways back.
* Only CuPy's names exist (``_cupy_surface.py``, read from CuPy's wheel): ``cupy.errstate`` or
  ``cupy.nanpercentile`` raise ``AttributeError``, ``numpy.<function>(device_array)`` works only
  for functions CuPy has, an array offers only ``cupy.ndarray``'s methods (no ``.ctypes``, no
  ``setflags``), ``ufunc.reduce`` works for ``add`` and ``multiply`` only, and the random
  Generator has CuPy's methods only.
* Out-of-bounds integer indices wrap around instead of raising, as CuPy's do.
* Reductions give 0-d device arrays, not NumPy scalars.

It also counts what a real GPU would be asked to do (``counting()``):

* **syncs**: each time the host waits for the device to read a value: ``float``, ``int``,
  ``bool``, ``.item()``, ``.tolist()``, ``.get()``, ``cupy.asnumpy``, printing, boolean-mask
  indexing and ``nonzero`` (their output size is only known on the device), and
  ``Device().synchronize()``;
* **launches**: kernel launches and host-to-device copies, each a call the host makes into CUDA.
  An operation whose result is a view of its input (``reshape`` of a contiguous array,
  ``transpose``, basic slicing) launches nothing; ``empty`` only allocates; ``einsum`` counts 3
  (CuPy without cuTENSOR runs it as two transposing copies and a batched matrix product); a
  matrix product counts one more for each operand that is not contiguous (the copy cuBLAS
  needs); a function made with ``cupy.fuse`` counts 1 however many operations it holds.

What it cannot show: speed, GPU memory, or where CuPy's numerics differ from NumPy's.

``emulated()`` makes minidense (and ``import cupy``) use it inside a ``with`` block;
``install(monkeypatch)`` does the same for one pytest test.
"""
import contextlib
import functools
import sys
import types

import numpy
from numpy.lib.mixins import NDArrayOperatorsMixin

from minidense import _cupy_surface as surface


# ------------------------------------------------------------------------------------------------
# Counting syncs and launches
# ------------------------------------------------------------------------------------------------
class Counts:
    """Host syncs and launches seen while a ``counting()`` block ran, with what caused them."""

    def __init__(self):
        self.syncs = 0
        self.launches = 0
        self.sync_causes = {}
        self.launch_causes = {}

    def __repr__(self):
        return f"Counts(syncs={self.syncs}, launches={self.launches})"


_active_counts = []
_fused_depth = [0]     # > 0 inside a cupy.fuse'd function: its operations are one kernel


def _launch(name, number=1):
    if number <= 0 or _fused_depth[0]:
        return
    for counts in _active_counts:
        counts.launches += number
        counts.launch_causes[name] = counts.launch_causes.get(name, 0) + number


def _sync(name):
    for counts in _active_counts:
        counts.syncs += 1
        counts.sync_causes[name] = counts.sync_causes.get(name, 0) + 1


@contextlib.contextmanager
def counting():
    """``with counting() as counts: ...`` then ``counts.syncs``, ``counts.launches``."""
    counts = Counts()
    _active_counts.append(counts)
    try:
        yield counts
    finally:
        _active_counts.remove(counts)


# ------------------------------------------------------------------------------------------------
# Device arrays
# ------------------------------------------------------------------------------------------------
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


def _buffers(value):
    """The NumPy buffers inside (nested) arguments."""
    if isinstance(value, numpy.ndarray):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _buffers(v)


def _is_view_of(result, inputs):
    """True when every array in ``result`` shares memory with an input: nothing was launched."""
    results = list(_buffers(result))
    sources = list(_buffers(inputs))
    return bool(results) and all(any(numpy.shares_memory(r, s) for s in sources) for r in results)


_SYNCING = {"nonzero", "argwhere", "flatnonzero", "unique", "tolist", "item", "get"}
_ALLOCATE_ONLY = {"empty", "empty_like"}
_MATRIX_PRODUCTS = {"matmul", "dot", "tensordot", "inner", "vdot"}


def _count_call(name, args, kwargs, result):
    """Count what a CuPy call with these (unwrapped) arguments and this result would cost."""
    if name in _SYNCING:
        _sync(name)
    if name in _ALLOCATE_ONLY or name in ("get", "item", "tolist"):
        return
    if kwargs.get("out") is None and _is_view_of(result, (args, list(kwargs.values()))):
        return
    if name == "einsum":
        _launch(name, 3)
    elif name in _MATRIX_PRODUCTS:
        copies = sum(1 for a in args if isinstance(a, numpy.ndarray) and a.ndim >= 2
                     and not (a.flags.c_contiguous or a.flags.f_contiguous))
        _launch(name, 1 + copies)
    elif name in ("var", "std"):
        _launch(name, 2)
    else:
        _launch(name)


def _wrap_out_of_bounds(index, shape):
    """CuPy wraps integer-array indices that fall outside an axis; NumPy would raise."""
    items = index if isinstance(index, tuple) else (index,)
    wrapped, axis = [], 0
    for position, item in enumerate(items):
        if item is Ellipsis:
            axis = len(shape) - sum(1 for i in items[position + 1:] if i is not None)
        elif item is not None:
            if isinstance(item, numpy.ndarray) and item.dtype.kind in "iu" and shape[axis:axis + 1]:
                item = item % shape[axis] if shape[axis] else item
            axis += 1
        wrapped.append(item)
    return tuple(wrapped) if isinstance(index, tuple) else wrapped[0]


class _Flags:
    """cupy.ndarray.flags: contiguity and ownership only (no ``writeable``)."""

    def __init__(self, array):
        self.c_contiguous = array.flags.c_contiguous
        self.f_contiguous = array.flags.f_contiguous
        self.owndata = array.flags.owndata


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
        _sync("get")
        return self._array.copy()

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        return _Ufunc(ufunc)._apply(method, inputs, out=out, **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        if func.__name__ not in surface.MODULE:
            return NotImplemented      # NumPy then raises TypeError, as it does for CuPy arrays
        return _DeviceFunction(func)(*args, **kwargs)

    # -- attributes and methods: CuPy's only -----------------------------------------------------
    shape = property(lambda self: self._array.shape)
    dtype = property(lambda self: self._array.dtype)
    ndim = property(lambda self: self._array.ndim)
    size = property(lambda self: self._array.size)
    nbytes = property(lambda self: self._array.nbytes)
    itemsize = property(lambda self: self._array.itemsize)
    strides = property(lambda self: self._array.strides)
    flags = property(lambda self: _Flags(self._array))
    T = property(lambda self: ndarray(self._array.T))
    device = property(lambda self: "<emulated CUDA device 0>")

    def __getattr__(self, name):
        if name not in surface.NDARRAY:
            raise AttributeError(f"'cupy.ndarray' object has no attribute {name!r}")
        attribute = getattr(self._array, name)
        if not callable(attribute):
            return _wrap(attribute)
        return _DeviceFunction(attribute, name=name, owner=self._array)

    def __getitem__(self, index):
        index = _unwrap(index, "cupy.ndarray.__getitem__", allow_host=True)
        if any(isinstance(i, numpy.ndarray) and i.dtype == bool
               for i in (index if isinstance(index, tuple) else (index,))):
            _sync("boolean-mask indexing")
        else:
            index = _wrap_out_of_bounds(index, self._array.shape)
        result = self._array[index]
        if not (isinstance(result, numpy.ndarray) and numpy.shares_memory(result, self._array)):
            _launch("take")
        return _wrap(result)

    def __setitem__(self, index, value):
        where = "cupy.ndarray.__setitem__"
        if isinstance(value, list):
            raise TypeError(f"Unsupported type {type(value)} in {where}")
        index = _wrap_out_of_bounds(_unwrap(index, where, allow_host=True), self._array.shape)
        self._array[index] = _unwrap(value, where)
        _launch("setitem")

    def __len__(self):
        return len(self._array)

    def __iter__(self):
        return (_wrap(row) for row in self._array)

    def _read(self, cast, name):
        _sync(name)
        return cast(self._array)

    def __bool__(self):
        return self._read(bool, "bool")

    def __float__(self):
        return self._read(float, "float")

    def __int__(self):
        return self._read(int, "int")

    def __index__(self):
        return self._read(int, "index")

    def __repr__(self):
        return self._read(repr, "repr").replace("array(", "cuda-emulated array(")

    def __deepcopy__(self, memo):
        _launch("copy")
        return ndarray(self._array.copy())

    def __reduce__(self):
        raise TypeError("refusing to pickle an emulated CuPy array")


class _DeviceFunction:
    """A ``cupy.<function>`` (or array method): NumPy's on unwrapped arguments, host arrays refused,
    counted."""

    def __init__(self, function, allow_host=False, name=None, owner=None):
        self._function, self._allow_host, self._owner = function, allow_host, owner
        self.__name__ = name or getattr(function, "__name__", "function")

    def __call__(self, *args, **kwargs):
        where = f"cupy.{self.__name__}"
        args = _unwrap(args, where, self._allow_host)
        kwargs = _unwrap(kwargs, where, self._allow_host)
        out = kwargs.get("out")
        result = self._function(*args, **kwargs)
        inputs = args if self._owner is None else (self._owner, *args)   # a method's own array
        _count_call(self.__name__, inputs, kwargs, result)
        return _wrap(out if out is not None else result)


class _Ufunc:
    """``cupy.add``, ``cupy.maximum``, ...: calls, and only the methods CuPy gives each ufunc."""

    def __init__(self, ufunc):
        self._ufunc = ufunc
        self.__name__ = ufunc.__name__

    def __call__(self, *inputs, out=None, **kwargs):
        return self._apply("__call__", inputs, out=out, **kwargs)

    def __getattr__(self, method):
        allowed = surface.UFUNC_METHODS.get(method)
        if allowed is None:
            return getattr(self._ufunc, method)      # nin, nout, types, ...
        if "*" not in allowed and self.__name__ not in allowed:
            raise NotImplementedError(f"cupy.{self.__name__}.{method} is not supported by CuPy "
                                      f"(only {', '.join(allowed)})")
        return lambda *inputs, out=None, **kwargs: self._apply(method, inputs, out=out, **kwargs)

    def _apply(self, method, inputs, out=None, **kwargs):
        where = f"cupy.{self.__name__}" + ("" if method == "__call__" else f".{method}")
        if method == "at":     # ufunc.at(target, index, values): the index may be a host array
            inputs = (_unwrap(inputs[0], where), _unwrap(inputs[1], where, allow_host=True),
                      *_unwrap(inputs[2:], where))
        else:
            inputs = _unwrap(inputs, where)
        if out is not None:
            kwargs["out"] = _unwrap(out, where)
        result = getattr(self._ufunc, method)(*inputs, **kwargs)
        _count_call(self.__name__ if method == "__call__" else f"{self.__name__}.{method}",
                    inputs, kwargs, result)
        if out is not None:
            return out[0] if isinstance(out, tuple) and len(out) == 1 else out
        return _wrap(result)


def _to_device(value, dtype=None, copy=True, **kwargs):
    """cupy.array / cupy.asarray: the one way in for host data (a host-to-device copy)."""
    if isinstance(value, ndarray):
        array = value._array
        if dtype is not None and numpy.dtype(dtype) != array.dtype:
            array = array.astype(dtype)
            _launch("astype")
        elif copy:
            array = array.copy()
            _launch("copy")
        return ndarray(array)
    _launch("host-to-device copy")
    return ndarray(numpy.array(_unwrap(value, "cupy.asarray", allow_host=True), dtype=dtype))


def asnumpy(value):
    if isinstance(value, ndarray):
        _sync("asnumpy")
        return value._array.copy()
    return numpy.asarray(value)


def fuse(*args, **kwargs):
    """cupy.fuse: one kernel for a whole elementwise function (here: the function, counted once).
    As in CuPy, ``fuse(f)`` fuses f and ``fuse(kernel_name=...)`` returns a decorator."""
    if len(args) == 1 and not kwargs and callable(args[0]):
        return _fuse(args[0])
    return lambda function: _fuse(function, **kwargs)


def _fuse(function, kernel_name=None):
    @functools.wraps(function)
    def fused(*args):
        _fused_depth[0] += 1
        try:
            result = function(*args)
        finally:
            _fused_depth[0] -= 1
        _launch(f"fused {kernel_name or function.__name__}")
        return result
    return fused


class _Generator:
    """cupy.random.Generator: NumPy's generator behind CuPy's methods, results on the device."""

    def __init__(self, seed=None):
        self._generator = numpy.random.default_rng(seed)

    def __getattr__(self, name):
        if name not in surface.GENERATOR:
            raise AttributeError(f"'cupy.random.Generator' object has no attribute {name!r}")
        return _DeviceFunction(getattr(self._generator, name), name=name)


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
        _sync("synchronize")


class _Module(types.ModuleType):
    """The ``cupy`` module: CuPy's names only, each NumPy's function made a device function."""

    ndarray = ndarray
    asarray = staticmethod(lambda value, dtype=None: _to_device(value, dtype, copy=False))
    array = staticmethod(_to_device)
    asnumpy = staticmethod(asnumpy)
    fuse = staticmethod(fuse)
    random = types.SimpleNamespace(default_rng=_Generator, Generator=_Generator)
    cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: 1),
                                 Device=_Device, is_available=lambda: True)
    get_default_memory_pool = staticmethod(_MemoryPool)
    __version__ = f"{surface.VERSION} (emulated on the CPU)"

    def __getattr__(self, name):
        if name not in surface.MODULE:
            raise AttributeError(f"module 'cupy' has no attribute {name!r}")
        if not hasattr(numpy, name):
            raise AttributeError(f"cupy.{name} exists in CuPy but not in its CPU emulation")
        attribute = getattr(numpy, name)
        if isinstance(attribute, numpy.ufunc):
            return _Ufunc(attribute)
        if callable(attribute) and not isinstance(attribute, type):
            return _DeviceFunction(attribute)
        return attribute  # dtypes (cupy.float32 is numpy.float32), constants, pi, newaxis


cupy = _Module("cupy")
cupyx = types.ModuleType("cupyx")


# ------------------------------------------------------------------------------------------------
# Putting it in place of CuPy
# ------------------------------------------------------------------------------------------------
def _replacements():
    from minidense import backend, random
    return [(backend, "_cupy", cupy), (backend, "_cupy_error", None), (random, "_generators", {}),
            (sys.modules, "cupy", cupy), (sys.modules, "cupyx", cupyx)]


@contextlib.contextmanager
def emulated():
    """Inside the block, ``device='cuda'`` runs on this emulation (and ``import cupy`` gets it)."""
    saved = []
    for target, name, value in _replacements():
        if isinstance(target, dict):
            saved.append((target, name, target.get(name, _MISSING)))
            target[name] = value
        else:
            saved.append((target, name, getattr(target, name)))
            setattr(target, name, value)
    try:
        yield cupy
    finally:
        for target, name, value in reversed(saved):
            if isinstance(target, dict):
                target.pop(name, None) if value is _MISSING else target.__setitem__(name, value)
            else:
                setattr(target, name, value)


_MISSING = object()


def install(monkeypatch):
    """Make minidense (and ``import cupy``) see the emulation for the rest of one pytest test."""
    for target, name, value in _replacements():
        if isinstance(target, dict):
            monkeypatch.setitem(target, name, value)
        else:
            monkeypatch.setattr(target, name, value)
