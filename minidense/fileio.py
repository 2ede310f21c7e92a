"""Writing files so that a crash or Ctrl-C never leaves half of one: checkpoints, run files, downloads.

``atomic_write`` writes to a temporary file in the destination's folder, flushes it to disk, and
only then renames it over the destination (``os.replace`` is atomic on POSIX and Windows). A reader
therefore sees the old file or the new one, never a mix; on any error the temporary file is removed
and the old file is untouched. A process killed mid-write cannot clean up, so each successful write
also removes the temporary files that earlier, interrupted writes of the same destination left.
"""
import glob
import os
import tempfile
from pathlib import Path

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path, write, check=None):
    """Call ``write(file)`` on a temporary binary file next to ``path``, then rename it into place.

    ``check(temporary_path)``, if given, runs before the rename and may raise to reject the file
    (a download whose checksum is wrong, say). Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=temporary_prefix(path),
                                           suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        if check is not None:
            check(temporary)
        os.chmod(temporary, 0o666 & ~_UMASK)    # mkstemp makes owner-only files
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    _sync_folder(path.parent)
    remove_stale_temporaries(path)
    return path


def temporary_prefix(path):
    """How the temporary files of writes to ``path`` begin: ``.NAME.`` in the same folder."""
    return f".{Path(path).name}."


def remove_stale_temporaries(path):
    """Delete the temporary files that interrupted writes of ``path`` left behind.

    Two processes writing the same file at once are not supported: one may remove the other's
    temporary file, and its rename then fails without harming ``path``. (A training run locks its
    folder, ``minidense.run_folder.RunLock``, so two runs never write the same files.)
    """
    path = Path(path)
    for leftover in path.parent.glob(glob.escape(temporary_prefix(path)) + "*.tmp"):
        try:
            leftover.unlink()
        except OSError:     # already gone, or not ours to remove
            pass


def _sync_folder(folder):
    """Make the rename itself durable (POSIX); harmless to skip where folders cannot be opened."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
