"""Writing files so that a crash or Ctrl-C never leaves half of one: checkpoints, run files, downloads.

``atomic_write`` writes to a temporary file in the destination's folder, flushes it to disk, and
only then renames it over the destination (``os.replace`` is atomic on POSIX and Windows). A reader
therefore sees the old file or the new one, never a mix; on any error the temporary file is removed
and the old file is untouched.
"""
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
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
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
    return path


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
