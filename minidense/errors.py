"""The one error family the command line reports without a traceback, and how commands stop.

``UserError`` marks a problem the user can fix (a bad option, a damaged or foreign file, a run that
diverged, a full disk). Its message is one line: what is wrong and how to fix it. The commands
catch only this type, print the message and exit with status 2; any other exception is a bug in
minidense and keeps its traceback.

Concrete errors also derive from the built-in type a Python reader expects (``ValueError``,
``FileNotFoundError``, ``OSError``, ...), so ``except ValueError`` keeps working.

Stopping: ``StopSignals`` makes SIGTERM stop a command the way Ctrl-C does (a KeyboardInterrupt),
and ``signals_held`` delays both until a block of file writes is complete.
"""
import errno
import signal
import sys
import threading
from contextlib import contextmanager


class UserError(Exception):
    """Something the user can fix; the command line prints it as one line and exits with 2."""


class UsageError(UserError):
    """A problem with the command line or the run folder."""


class FileAccessError(UserError, OSError):
    """The system refused to read or write a file: permission denied, read-only file system,
    disk full, quota exceeded. ``errno`` is the system's error number."""

    def __init__(self, message, error_number=None):
        super().__init__(message)
        self.errno = error_number


# errno -> what to do about it (the system's own words, ``strerror``, say what happened)
ACCESS_REMEDIES = {
    errno.EACCES: "check its permissions (ls -l) or use a file you own",
    errno.EPERM: "check its permissions (ls -l) or use a file you own",
    errno.EROFS: "use a folder on a writable file system",
    errno.ENOSPC: "free some disk space",
    errno.EDQUOT: "free some space within your disk quota",
    errno.EIO: "check the disk and its connection (dmesg shows the system's view)",
}
# The faults of the machine that stop a run without being minidense's fault.
STORAGE_FAULTS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO)


def is_access_error(error):
    """True for an OSError that the system raised about a file (it has an errno), as opposed to
    the OSErrors that readers raise for bad content (gzip.BadGzipFile has none)."""
    return isinstance(error, OSError) and error.errno is not None


def file_access_error(path, error, action="read"):
    """A FileAccessError for ``error`` (an OSError with an errno) met while ``action``-ing ``path``:
    ``cannot read data/x.gz: Permission denied; check its permissions (ls -l) ...``."""
    reason = error.strerror or errno.errorcode.get(error.errno, str(error))
    remedy = ACCESS_REMEDIES.get(error.errno, "check the file and the disk")
    return FileAccessError(f"cannot {action} {path}: {reason}; {remedy}", error.errno)


@contextmanager
def file_access_errors(path, action="read"):
    """Inside the block, an OSError the system raises about a file (permission denied, disk full,
    ...) becomes the FileAccessError of ``file_access_error``, naming that file (else ``path``).
    Other errors pass unchanged."""
    try:
        yield
    except OSError as error:
        if not is_access_error(error):
            raise
        raise file_access_error(error.filename or path, error, action) from error


def report_user_error(program, error):
    """Print ``error`` as the one line ``PROGRAM: error: MESSAGE``; return exit status 2."""
    print(f"{program}: error: {error}", file=sys.stderr)
    return 2


def run_command(program, parser, run, argv=None, what="command"):
    """Parse ``argv`` with ``parser`` and return ``run(args)``, the exit status; a UserError is
    one line and status 2, Ctrl-C or SIGTERM the line '<signal>: WHAT stopped' and 130 or 143."""
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_request:          # --help, or argparse already printed the error
        return exit_request.code
    with StopSignals() as stop:
        try:
            return run(args)
        except UserError as error:
            return report_user_error(program, error)
        except KeyboardInterrupt:
            print(f"\n{stop.name}: {what} stopped", file=sys.stderr)
            return stop.exit_status


# ----------------------------------------------------------------------------------------------
# Ctrl-C and SIGTERM
# ----------------------------------------------------------------------------------------------
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM")
                     if hasattr(signal, name))


def in_main_thread():
    return threading.current_thread() is threading.main_thread()


class StopSignals:
    """``with StopSignals() as stop:`` SIGTERM raises KeyboardInterrupt, as Ctrl-C does, so a
    command stopped either way tidies up and says how to go on. ``stop.exit_status`` is then
    128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM), the shell's convention.
    Outside the main thread (where Python cannot handle signals) it changes nothing."""

    def __init__(self):
        self.received = signal.SIGINT
        self.previous = None

    @property
    def exit_status(self):
        return 128 + int(self.received)

    @property
    def name(self):
        return "Ctrl-C" if self.received == signal.SIGINT else signal.Signals(self.received).name

    def _interrupt(self, number, frame):
        self.received = number
        raise KeyboardInterrupt

    def __enter__(self):
        if in_main_thread() and hasattr(signal, "SIGTERM"):
            self.previous = signal.signal(signal.SIGTERM, self._interrupt)
        return self

    def __exit__(self, *exc_info):
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)
        return False


@contextmanager
def signals_held():
    """Hold Ctrl-C and SIGTERM until the block ends, then deliver them as they would have been.

    Used around a run folder's writes, so that an interrupt never lands inside a library (a plot
    half drawn) and the files written together are all complete."""
    if not in_main_thread():
        yield
        return
    received = []
    previous = {}
    for number in STOP_SIGNALS:
        handler = signal.getsignal(number)
        if handler is not None:         # None: a handler not installed from Python; leave it
            previous[number] = handler
            signal.signal(number, lambda caught, frame: received.append(caught))
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    for number in dict.fromkeys(received):
        signal.raise_signal(number)
