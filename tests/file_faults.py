"""Faults of the machine for tests: a file the system refuses to open, a write that fails.

Patching works as root too (where chmod 000 would not stop anyone) and needs no special file
system. ``open`` is the builtin that gzip, the CIFAR and IDX readers and md.load call.
"""
import builtins
import errno
import os
from pathlib import Path


def deny_opening(monkeypatch, path):
    """Opening ``path`` fails with PermissionError, as for a file without read permission."""
    real_open, denied = builtins.open, os.path.abspath(path)

    def guarded_open(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and os.path.abspath(file) == denied:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)


def fail_write(monkeypatch, name, nth, error_number=errno.ENOSPC):
    """The nth atomic write of a file called ``name`` fails with ``error_number`` (ENOSPC: the
    disk is full) at its final rename, after which nothing of it is left."""
    real_replace, seen = os.replace, []

    def replace(source, destination):
        if Path(destination).name == name:
            seen.append(destination)
            if len(seen) == nth:
                raise OSError(error_number, os.strerror(error_number), os.fspath(destination))
        return real_replace(source, destination)

    monkeypatch.setattr(os, "replace", replace)
