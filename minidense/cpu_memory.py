"""Keeping freed CPU memory for the next array, the way CuPy's memory pool does on a GPU.

A training step allocates and frees the same large arrays every time: feature maps, their
gradients, the columns of a convolution. NumPy gets each one from the C library's ``malloc``.
On Linux (glibc), ``malloc`` serves an array above its "mmap threshold" (at most 32 MB) with
fresh pages from the kernel and hands them back on ``free``. Fresh pages cost time twice: the
kernel zero-fills each 4 KB page on first touch (a page fault), and again on the next step, since
the pages were given back. A DenseNet-40 step at batch 64 makes arrays of up to 40 MB, so much of
its memory takes that route: on a 2-core machine the kernel's share of a DenseNet-BC-100 step
fell from 5.8 s to 1.2 s of CPU time per run, and a step from 4.3 s to 3.8 s, once the pages were
kept (BENCHMARKS.md, "Both cores").

``keep_freed_memory()`` asks glibc (``mallopt``) to take every array from its heap and to keep
up to 2 GB of freed memory there instead of handing it back, so the next step reuses pages
already mapped. The process then holds on to its peak memory until it exits, as a CuPy pool
does on a GPU (``cupy.get_default_memory_pool().free_all_blocks()`` is the GPU's way back; on the
CPU it is ending the process). minidense calls it once at import, on glibc systems only;
``MINIDENSE_KEEP_FREED_MEMORY=0`` in the environment leaves ``malloc`` as it is. Elsewhere (macOS,
Windows, musl) nothing changes.
"""
import ctypes
import os

M_TRIM_THRESHOLD = -1          # free memory at the top of the heap above this goes back to the OS
M_MMAP_MAX = -4                # how many allocations may get their own mapping (0: none)
KEEP_AT_MOST = 2 ** 31 - 1     # bytes; mallopt takes a C int, so 2 GB is the most it can keep

_kept = False


def keep_freed_memory():
    """Ask glibc's malloc to serve large arrays from its heap and keep freed memory for reuse.
    Returns True when it did (or already had), False where there is no glibc ``mallopt``."""
    global _kept
    if _kept:
        return True
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):          # not glibc: nothing to set
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # mallopt returns 1 on success. Once M_MMAP_MAX is 0, an allocation the heap cannot grow
    # for still gets its own mapping (glibc falls back to it), so nothing fails that worked before.
    _kept = bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, KEEP_AT_MOST))
    return _kept


def keeps_freed_memory():
    """True when ``keep_freed_memory`` is in effect in this process."""
    return _kept


def keep_freed_memory_unless_switched_off():
    """What ``import minidense`` does: keep freed memory unless MINIDENSE_KEEP_FREED_MEMORY=0."""
    if os.environ.get("MINIDENSE_KEEP_FREED_MEMORY", "").strip() != "0":
        keep_freed_memory()
