"""Kernels: the array code an op runs, looked up by name, and the one switch that picks the set.

An op in ``minidense/ops/`` is the textbook: its forward and backward are the computation its
chapter derives. Where a computation can be done faster, the op does not do it inline; it asks
for the kernel by name and calls what it gets:

    y = kernel("conv2d_forward", x)(x, weight, stride, padding)

Two sets of kernels answer:

    reference   the textbook kernels, written next to their ops (``@textbook_kernel``): im2col
                convolution, plain batch norm, each dense layer normalising its own input, one
                batch at a time (no splitting over the cores).
    fast        this package (``@fast_kernel``): the batch split over the cores (threads.py), the
                stride-1 shifted products (conv.py), fused BN-ReLU and the shared batch statistics
                of a dense block (normalization.py), and the split passes of pooling.py,
                concat.py and arithmetic.py. A name without a fast kernel runs its textbook one.

The default is ``fast``. ``MINIDENSE_KERNELS=reference`` in the environment, or

    md.use_kernels("reference")              # from now on
    with md.use_kernels("reference"): ...    # inside the block only

runs every op on its textbook kernel; the tests run each op under both sets and check that they
agree. A fast kernel may be registered for one array module (``array_module="cupy"``): for an op on
GPU arrays that one is chosen first, then a fast kernel for any module, then the textbook one.
"""
import importlib
import os

KERNEL_SETS = ("fast", "reference")
FAST_MODULES = ("arithmetic", "concat", "conv", "normalization", "pooling", "cuda")  # this package

_textbook = {}        # name -> the textbook kernel
_fast = {}            # (name, array module name or None for any) -> a fast kernel
_fast_loaded = False
_REQUIRED = object()


def _checked(name, source):
    if name not in KERNEL_SETS:
        raise ValueError(f"{source}: unknown kernel set {name!r}; use 'fast' (the default) or "
                         f"'reference' (every op on its textbook kernel)")
    return name


_active = _checked(os.environ.get("MINIDENSE_KERNELS", "fast").strip() or "fast",
                   "MINIDENSE_KERNELS")


def textbook_kernel(name):
    """Decorator: ``function`` is the textbook kernel ``name`` (what the reference set runs)."""
    def register(function):
        _textbook[name] = function
        return function
    return register


def fast_kernel(name, array_module=None):
    """Decorator: ``function`` is the fast kernel ``name``, for arrays of ``array_module``
    ('numpy' or 'cupy') or, with None, for any."""
    def register(function):
        _fast[(name, array_module)] = function
        return function
    return register


def kernel(name, *arrays, default=_REQUIRED):
    """The kernel ``name`` the active set runs on ``arrays`` (they choose the array module).
    ``default`` is returned when the set has no such kernel (some fast kernels have no textbook
    counterpart, e.g. a dense block's shared statistics)."""
    if _active == "fast":
        _load_fast_kernels()
        module = _array_module_name(arrays)
        for key in ((name, module), (name, None)):
            if key in _fast:
                return _fast[key]
    if name in _textbook:
        return _textbook[name]
    if default is not _REQUIRED:
        return default
    raise KeyError(f"kernel {name!r}: no {_active} kernel of that name (known: "
                   f"{', '.join(sorted(known_kernels()))})")


def known_kernels():
    _load_fast_kernels()
    return set(_textbook) | {name for name, _ in _fast}


def active_kernels():
    """'fast' or 'reference': the set ``kernel`` answers from now."""
    return _active


class use_kernels:
    """Switch every op to the ``'fast'`` or the ``'reference'`` kernels: at once when called, and
    back to the previous set at the end of a ``with`` block."""

    def __init__(self, name):
        global _active
        self.name = _checked(name, "use_kernels")
        self.previous, _active = _active, self.name

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        global _active
        _active = self.previous

    def __repr__(self):
        return f"use_kernels({self.name!r})"


def _array_module_name(arrays):
    from ..backend import get_array_module
    return get_array_module(*arrays).__name__ if arrays else None


def _load_fast_kernels():
    """Import this package's kernel files once (they register themselves). Done on first use, as
    they build on the ops, which import this file."""
    global _fast_loaded
    if not _fast_loaded:
        _fast_loaded = True
        for module in FAST_MODULES:
            importlib.import_module(f"{__name__}.{module}")
