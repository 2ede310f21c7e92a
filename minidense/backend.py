"""Array backends: NumPy on the CPU, CuPy on an NVIDIA GPU.

Every op asks its inputs which array module they live in (``xp = get_array_module(a)``)
and then calls ``xp.<function>``; nothing in minidense calls ``numpy.<function>`` on data
that may be on a GPU. Devices are named ``'cpu'`` and ``'cuda'`` as in PyTorch.
"""
import os

import numpy

_cupy = None
_cupy_error = None


def _load_cupy():
    """Import CuPy once and check that a GPU answers; remember why not otherwise."""
    global _cupy, _cupy_error
    if _cupy is not None or _cupy_error is not None:
        return _cupy
    try:
        import cupy
    except ImportError:
        _cupy_error = ("CuPy is not installed. Install the build that matches your CUDA, "
                       "e.g. `pip install cupy-cuda12x`, or use device='cpu'.")
        return None
    try:
        cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CuPy present but no driver or no device
        _cupy_error = f"CuPy is installed but no CUDA GPU is usable ({exc}). Use device='cpu'."
        return None
    try:   # one elementwise kernel (compiled by NVRTC), one reduction, one product (cuBLAS)
        x = cupy.arange(6, dtype=cupy.float32).reshape(2, 3)
        float((x @ x.T * 2).sum())
    except Exception as exc:
        _cupy_error = (f"CuPy sees a GPU but cannot run kernels on it ({type(exc).__name__}: "
                       f"{exc}); CuPy's CUDA libraries (NVRTC, cuBLAS) are probably missing: "
                       f"install them with `pip install 'cupy-cuda12x[ctk]'` (or a CUDA toolkit), "
                       f"or use device='cpu'.")
        return None
    _cupy = cupy
    return _cupy


def cuda_available():
    """True when CuPy imports and sees at least one GPU."""
    return _load_cupy() is not None


def check_device(device):
    """Normalise a device name ('cpu', 'cuda', 'cuda:0', None) to 'cpu' or 'cuda'."""
    if device is None:
        return default_device()
    name = str(device).lower()
    if name == "cpu":
        return "cpu"
    if name == "cuda" or name.startswith("cuda:") or name == "gpu":
        if _load_cupy() is None:
            raise RuntimeError(f"device='{device}' was requested but {_cupy_error}")
        return "cuda"
    raise ValueError(f"unknown device {device!r}: use 'cpu' or 'cuda'")


def default_device():
    """'cuda' when MINIDENSE_DEVICE=cuda is set, else 'cpu'."""
    env = os.environ.get("MINIDENSE_DEVICE", "cpu")
    return check_device(env) if env.lower() != "cpu" else "cpu"


def array_module(device):
    """The array module (numpy or cupy) for a device name."""
    return _load_cupy() if check_device(device) == "cuda" else numpy


def _is_cupy_array(array):
    """True for a CuPy array, also one made before minidense loaded CuPy (recognised by its type)."""
    if _cupy is not None:
        return isinstance(array, _cupy.ndarray)
    return type(array).__module__.partition(".")[0] == "cupy" and _load_cupy() is not None


def get_array_module(*arrays):
    """numpy or cupy, whichever the given arrays live in (numpy for plain Python values)."""
    for a in arrays:
        if _is_cupy_array(a):
            return _cupy
    return numpy


def device_of(array):
    """'cuda' for a CuPy array, 'cpu' otherwise."""
    return "cuda" if _is_cupy_array(array) else "cpu"


def to_device(array, device):
    """Copy an array to 'cpu' (NumPy) or 'cuda' (CuPy); a no-op when it is already there."""
    device = check_device(device)
    if device_of(array) == device:
        return array
    if device == "cpu":
        return _cupy.asnumpy(array)
    return _cupy.asarray(array)


def to_numpy(array):
    """A NumPy array from a NumPy or CuPy array (copies from the GPU)."""
    return to_device(array, "cpu") if device_of(array) == "cuda" else numpy.asarray(array)


def scatter_add(target, index, values):
    """target[index] += values, adding repeated indices up (``add.at``, in NumPy and in CuPy)."""
    get_array_module(target).add.at(target, index, values)
