"""cpu_memory: minidense asks glibc to keep freed memory at import, and only there; the
environment switch turns it off. Values only: what it saves in time lives in BENCHMARKS.md."""
import ctypes
import subprocess
import sys

import numpy as np
import pytest

from minidense import cpu_memory


def _has_glibc_mallopt():
    try:
        ctypes.CDLL(None).mallopt
        return True
    except (OSError, AttributeError):
        return False


def _keeps_in_fresh_process(env_value):
    env = {"PATH": "/usr/bin:/bin"}
    if env_value is not None:
        env["MINIDENSE_KEEP_FREED_MEMORY"] = env_value
    done = subprocess.run([sys.executable, "-c", "import minidense.cpu_memory as c, minidense; "
                           "print(c.keeps_freed_memory())"],
                          capture_output=True, text=True, env=env, check=True)
    return done.stdout.strip()


@pytest.mark.skipif(not _has_glibc_mallopt(), reason="needs glibc's mallopt (Linux)")
def test_import_keeps_freed_memory_unless_switched_off():
    assert _keeps_in_fresh_process(None) == "True"
    assert _keeps_in_fresh_process("1") == "True"
    assert _keeps_in_fresh_process("0") == "False"


@pytest.mark.skipif(not _has_glibc_mallopt(), reason="needs glibc's mallopt (Linux)")
def test_large_arrays_still_work_after_it():
    assert cpu_memory.keep_freed_memory() is True and cpu_memory.keeps_freed_memory()
    for _ in range(3):                       # 64 MB each: above glibc's largest mmap threshold
        a = np.ones(16 * 2 ** 20, np.float32)
        assert float(a.sum()) == 16 * 2 ** 20
        del a
