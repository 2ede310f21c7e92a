"""Write minidense/_cupy_surface.py: the names real CuPy offers, for the CPU emulation of CuPy.

    pip download --no-deps cupy-cuda12x==14.2.0 && unzip cupy_cuda12x-*.whl -d /tmp/cupy-wheel
    pip install --target /tmp/cupy-deps "cuda-pathfinder>=1.3.4,<2"
    PYTHONPATH=/tmp/cupy-wheel:/tmp/cupy-deps python tools/cupy_surface.py

CuPy imports without a GPU, so its names can be read on any machine; nothing here runs on a
device. The emulation (``minidense/cupy_emulation.py``) offers exactly these names and refuses the
rest, so code that passes on it does not call something a real GPU lacks. Which ufuncs support
which methods is not visible from outside CuPy; it is taken from CuPy's documentation of
``cupy.ufunc`` ("These methods are only available for selected ufuncs").
"""
import pathlib
import pprint

import cupy
import cupy.linalg
import cupy.random

UFUNC_METHODS = {   # CuPy's documentation of cupy.ufunc, v14
    "reduce": ["add", "multiply"],
    "accumulate": ["add", "multiply"],
    "reduceat": ["add"],
    "at": ["add", "subtract", "maximum", "minimum", "bitwise_and", "bitwise_or", "bitwise_xor"],
    "outer": ["*"],
}


def public(names):
    return sorted(n for n in names if not n.startswith("_"))


def main():
    surface = {
        "VERSION": cupy.__version__,
        "MODULE": public(dir(cupy)),
        "LINALG": public(dir(cupy.linalg)),
        "RANDOM": public(dir(cupy.random)),
        "GENERATOR": public(dir(cupy.random.Generator)),
        "NDARRAY": public(dir(cupy.ndarray)),
        "FLAGS": ["c_contiguous", "f_contiguous", "owndata"],
        "UFUNCS": public(n for n in dir(cupy) if isinstance(getattr(cupy, n), cupy.ufunc)),
        "UFUNC_METHODS": UFUNC_METHODS,
    }
    lines = ['"""The names real CuPy offers, read from its wheel by tools/cupy_surface.py: do not edit."""']
    for key, value in surface.items():
        lines.append(f"{key} = {pprint.pformat(value, width=100, compact=True)}")
    target = pathlib.Path(__file__).resolve().parents[1] / "minidense" / "_cupy_surface.py"
    target.write_text("\n".join(lines) + "\n")
    print(f"wrote {target} from CuPy {cupy.__version__}")


if __name__ == "__main__":
    main()
