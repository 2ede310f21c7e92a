"""Using every CPU core: split a kernel's work over the batch and run the parts on a few threads.

A convolution, a batch norm or a concatenation treats every image of the batch the same way, so
the batch can be cut into one part per core and the same NumPy code run on each part at once:

    y[part] = op(x[part])              for each part, in parallel        (convolution, cat)
    stats   = sum over parts of op(x[part])                              (batch norm's sums)

This works with plain Python threads because NumPy lets go of Python's lock (the GIL) inside large
array operations and matrix products, so the parts really run on different cores. It pays off
for the passes over memory that NumPy otherwise runs on one core (batch norm, the transposes and
shifted adds of a convolution, concatenation). Only CPU (NumPy) arrays are split; on a GPU one
kernel already uses the whole device.

The matrix products are split too, and while the parts run, OpenBLAS (NumPy's matrix library) is
held to one thread. Otherwise each part's product would start OpenBLAS's own threads as well, and
those keep spinning on the cores for a while after every product, so they would compete with the
parts for the same cores. That limit goes through ``threadpoolctl`` (installed with
minidense); where it is missing minidense splits nothing unless ``set_num_threads`` asks for it.

    set_num_threads(n)   use n threads (1: no splitting, every op runs as written)
    get_num_threads()    how many are used now

The default is one thread per core this process may use (at most 8), fewer when
``OPENBLAS_NUM_THREADS`` or ``OMP_NUM_THREADS`` asks for fewer (``OPENBLAS_NUM_THREADS=1``, the way
to share a machine, means one thread here too), or the value of ``MINIDENSE_NUM_THREADS``; one
thread without threadpoolctl. Only the fast kernels split; the textbook kernels (the reference set,
see kernels/__init__.py) never do, and the tests check that both give the same numbers.
"""
import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait

import numpy

from .. import backend

MIN_ELEMENTS = 1 << 18    # a pass over fewer values takes about as long as handing it to a
                          # thread (tens of microseconds), so smaller arrays are not split
MAX_DEFAULT_THREADS = 8

_state = threading.local()
_pool = None
_pool_size = 0
_pool_pid = None
_threads = None           # None: not decided yet (see get_num_threads)
_min_elements = MIN_ELEMENTS
_blas = None              # threadpoolctl's controllers of the loaded BLAS libraries ([]: none)
_blas_lock = threading.Lock()
_blas_holders = 0
_blas_saved = []


def _blas_controllers():
    """threadpoolctl's handles on the BLAS libraries NumPy loaded; [] without threadpoolctl."""
    global _blas
    if _blas is None:
        try:
            from threadpoolctl import ThreadpoolController
            _blas = ThreadpoolController().select(user_api="blas").lib_controllers
        except Exception:          # not installed, or it cannot inspect this process
            _blas = []
    return _blas


def blas_is_managed():
    """True when minidense can hold OpenBLAS to one thread while split ops run (threadpoolctl)."""
    return bool(_blas_controllers())


def _default_threads():
    """MINIDENSE_NUM_THREADS if set; else one per core, at most what OPENBLAS_NUM_THREADS or
    OMP_NUM_THREADS allow; 1 when OpenBLAS cannot be held to one thread inside split ops."""
    env = os.environ.get("MINIDENSE_NUM_THREADS", "").strip()
    if env:
        return max(1, int(env))
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:         # not Linux
        cores = os.cpu_count() or 1
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        limit = os.environ.get(name, "").strip()
        if limit.isdigit():
            cores = min(cores, max(1, int(limit)))
            break
    if not blas_is_managed():
        return 1                   # OpenBLAS's spinning threads would compete with ours
    return max(1, min(cores, MAX_DEFAULT_THREADS))


def get_num_threads():
    """The number of threads minidense splits CPU work over (1 = none)."""
    global _threads
    if _threads is None:
        _threads = _default_threads()
    return _threads


def set_num_threads(n):
    """Use ``n`` threads for CPU ops (like ``torch.set_num_threads``); 1 turns splitting off."""
    global _threads
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive int, got {n!r}")
    _threads = n


class settings:
    """Context manager for tests and experiments: ``with settings(threads=2, min_elements=0):``
    splits even tiny arrays, so the split paths can be checked on small inputs."""

    def __init__(self, threads=None, min_elements=None):
        self.threads, self.min_elements = threads, min_elements

    def __enter__(self):
        global _threads, _min_elements
        self.saved = (_threads, _min_elements)
        if self.threads is not None:
            set_num_threads(self.threads)
        if self.min_elements is not None:
            _min_elements = self.min_elements
        return self

    def __exit__(self, *exc):
        global _threads, _min_elements
        _threads, _min_elements = self.saved


def parts_for(*arrays):
    """How many parts to split these arrays' batch axis into: 1 (do not split) for GPU arrays,
    small arrays, a batch of one, inside a part already, or when one thread is configured."""
    first = arrays[0]
    if getattr(_state, "inside", False) or backend.get_array_module(*arrays) is not numpy:
        return 1
    if first.ndim == 0 or first.size < _min_elements:
        return 1
    return max(1, min(get_num_threads(), first.shape[0]))


def batch_slices(n, parts):
    """``parts`` consecutive slices of range(n), as equal as possible."""
    bounds = [n * k // parts for k in range(parts + 1)]
    return [slice(bounds[k], bounds[k + 1]) for k in range(parts)]


def over_batch(fn, *arrays, parts=None, matmul=False):
    """[fn(a[part], b[part], ...) for each part of the batch axis (axis 0)], the parts run on
    the thread pool at once; one part (fn on the whole arrays) when splitting does not pay.

    ``fn`` must only write into its own parts (or return new arrays): the parts run at the same
    time. Arrays that are not split (weights, per-channel statistics) are closed over by ``fn``.
    ``matmul=True``: ``fn`` multiplies matrices, so OpenBLAS is held to one thread meanwhile.
    """
    parts = parts_for(*arrays) if parts is None else parts
    if parts <= 1:
        return [fn(*arrays)]
    slices = batch_slices(arrays[0].shape[0], parts)
    work = [[a[s] for a in arrays] for s in slices]
    pool = _get_pool(parts - 1)
    if matmul:
        _hold_blas_to_one_thread(True)
    try:
        futures = [pool.submit(_run_part, fn, part) for part in work[1:]]
        try:
            results = [_run_part(fn, work[0])]           # the calling thread does part 0
        finally:
            wait(futures)                                # no part outlives the call
        results += [f.result() for f in futures]
    finally:
        if matmul:
            _hold_blas_to_one_thread(False)
    return results


def fill_over_batch(out, fn, *arrays, parts=None):
    """out[part] = fn(a[part], b[part], ...) for each part of the batch axis, the parts at once;
    returns ``out``."""
    def fill(out_part, *array_parts):
        out_part[...] = fn(*array_parts)
    over_batch(fill, out, *arrays, parts=parts)
    return out


def _run_part(fn, arrays):
    _state.inside = True           # an op called inside a part runs unsplit
    try:
        return fn(*arrays)
    finally:
        _state.inside = False


def _get_pool(workers):
    """The thread pool, made anew when it is too small or this is a forked child process (a
    fork copies the pool object but not its threads)."""
    global _pool, _pool_size, _pool_pid
    if _pool is None or _pool_size < workers or _pool_pid != os.getpid():
        if _pool is not None and _pool_pid == os.getpid():
            _pool.shutdown(wait=False)
        _pool = ThreadPoolExecutor(workers, thread_name_prefix="minidense")
        _pool_size, _pool_pid = workers, os.getpid()
    return _pool


def _hold_blas_to_one_thread(hold):
    """While any split op runs, OpenBLAS runs each product on the thread that called it."""
    global _blas_holders, _blas_saved
    controllers = _blas_controllers()
    if not controllers:
        return
    with _blas_lock:
        if hold:
            _blas_holders += 1
            if _blas_holders == 1:
                _blas_saved = [c.get_num_threads() for c in controllers]
                for c in controllers:
                    c.set_num_threads(1)
        else:
            _blas_holders -= 1
            if _blas_holders == 0:
                for c, n in zip(controllers, _blas_saved):
                    c.set_num_threads(n)
