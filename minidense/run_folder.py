"""The run folder of ``python -m minidense train``: where it goes, and the files written into it.

    config.json     the run's arguments          metrics.csv / metrics.jsonl   one row per epoch
    curves.png      loss and error per epoch     last.npz / best.npz           checkpoints
    results.json    final accuracy and timings   figure5.png / figure5.csv     feature reuse
    .lock           held while a run trains (who: pid, host, start time)

Every file is replaced atomically (``minidense.fileio``), so Ctrl-C or a crash never leaves a half
written one. The checkpoints are written by ``minidense.checkpoints``.

A run holds ``RunLock`` on its folder for as long as it trains, so a second run on the same folder
is refused instead of mixing its files with the first one's. A fault of the machine while the
folder is written (disk full, read-only, quota, permission) or a folder that disappears stops the
run with a ``RunFolderError`` naming the epoch that ``last.npz`` still holds.
"""
import json
import math
import os
import socket
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import numpy

from . import metrics
from .errors import (ACCESS_REMEDIES, STORAGE_FAULTS, FileAccessError, UsageError, UserError,
                     file_access_errors, is_access_error)

try:
    import fcntl
except ImportError:     # pragma: no cover - Windows: runs are not locked
    fcntl = None

LOCK_NAME = ".lock"

METRIC_COLUMNS = ["epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "test_error",
                  "seconds", "images_per_s"]


def default_out_dir(settings):
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{settings['model']}-{settings['dataset']}-{stamp}"


def check_writable_folder(folder, option="--out", value=None):
    """Raise UsageError unless ``folder`` is, or can be created as, a folder this process can
    write into. Creates nothing. ``value``: what the user gave for ``option`` (a file in
    ``folder``, say), for the message; default ``folder``."""
    folder = Path(folder)
    value = folder if value is None else Path(value)
    existing = folder
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        where = "is a file" if existing == value else f"lies under the file {existing}"
        raise UsageError(f"{option} {value} {where}; choose a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {value}: {existing} is not writable; choose a folder you can "
                         f"write to")


def make_folder(folder, option="--out"):
    """Create ``folder`` (and its parents); a refusal by the system is a UsageError."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"{option} {folder}: cannot create it ({error.strerror}); choose another "
                         f"folder") from None


class RunFolderError(UserError, OSError):
    """The run folder could not be written (a fault of the machine) or disappeared during a run.
    ``epoch``: the last epoch that ``last.npz`` holds (0: none); ``resumable``: whether
    ``--resume`` can continue from it once the cause is fixed."""

    def __init__(self, message, epoch, resumable=True):
        super().__init__(message)
        self.epoch, self.resumable = epoch, resumable


@contextmanager
def storage_faults(out_dir, epoch, folder_id=None):
    """Turn a fault of the machine inside the block (disk full, read-only, quota, permission)
    into a RunFolderError naming ``epoch``, the one ``last.npz`` holds; with ``folder_id``, an
    error because the run folder has gone says so instead. Other errors pass unchanged."""
    try:
        yield
    except OSError as error:
        if folder_id is not None:
            check_folder_present(out_dir, folder_id, epoch)
        if not is_access_error(error) or error.errno not in STORAGE_FAULTS:
            raise
        raise RunFolderError(f"cannot write {error.filename or out_dir}: {error.strerror}; "
                             f"{kept_epoch(out_dir, epoch)}; {ACCESS_REMEDIES[error.errno]}",
                             epoch) from error


def folder_identity(folder):
    """(device, inode) of a folder, or None where there is none: tells a folder from one that was
    deleted and created again under the same name."""
    try:
        status = os.stat(folder)
    except OSError:
        return None
    return (status.st_dev, status.st_ino) if os.path.isdir(folder) else None


def check_folder_present(out_dir, identity, epoch):
    """Raise RunFolderError unless ``out_dir`` is still the folder whose ``folder_identity`` was
    ``identity``: a run folder deleted or moved during the run is not written into again."""
    if folder_identity(out_dir) != identity:
        raise RunFolderError(f"the run folder {out_dir} disappeared during the run (deleted or "
                             f"moved?) after {epoch} finished epochs; the run stopped without "
                             f"recreating it (a moved folder resumes with --out NEW_PLACE "
                             f"--resume)", epoch, resumable=False)


def kept_epoch(out_dir, epoch):
    """'RUN/last.npz holds epoch N' or 'no epoch was saved'."""
    return (f"{Path(out_dir) / 'last.npz'} holds epoch {epoch}" if epoch
            else "no epoch was saved")


class RunLock:
    """``with RunLock(out_dir):`` an exclusive lock on a run folder for the length of a run.

    The lock is an ``flock`` on ``out_dir/.lock``, which also records who holds it (pid, host,
    start time) for the message a second run gets. The system releases an ``flock`` when its
    process dies, so a lock file left by a killed run is simply taken over. POSIX only; elsewhere
    runs are not locked."""

    def __init__(self, out_dir, option="--out"):
        self.path = Path(out_dir) / LOCK_NAME
        self.option = option
        self.descriptor = None

    def __enter__(self):
        if fcntl is None:
            return self
        while self.descriptor is None:
            with file_access_errors(self.path, "create"):
                descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:             # another process holds it
                os.close(descriptor)
                raise self.refusal() from None
            except OSError:                     # a file system without locks: run unlocked
                os.close(descriptor)
                return self
            if self.still_named(descriptor):
                self.descriptor = descriptor
            else:       # the holder removed the file just before we locked it: take the new one
                os.close(descriptor)
        os.ftruncate(self.descriptor, 0)
        os.write(self.descriptor, json.dumps(
            {"pid": os.getpid(), "host": socket.gethostname(),
             "started": datetime.now().isoformat(timespec="seconds")}).encode())
        return self

    def check_free(self):
        """Raise the refusal now if another run holds the folder (taking nothing)."""
        if self.path.parent.is_dir():
            try:
                with self:
                    pass
            except FileAccessError:     # a folder we cannot write: check_writable_folder says so
                pass

    def still_named(self, descriptor):
        """True when ``descriptor`` is the file that ``self.path`` names now."""
        try:
            return os.stat(self.path).st_ino == os.fstat(descriptor).st_ino
        except FileNotFoundError:
            return False

    def refusal(self):
        """The UsageError for a folder that another run holds, naming that run."""
        try:
            holder = json.loads(self.path.read_text()[:1000])
            who = (f"pid {int(holder['pid'])} on {str(holder['host'])[:100]}, started "
                   f"{str(holder['started'])[:40]}")
        except (OSError, ValueError, KeyError, TypeError):
            who = "a process that is just starting"
        return UsageError(f"{self.option} {self.path.parent} is in use by another training run "
                          f"({who}); wait for it to finish, stop it, or choose another "
                          f"{self.option}")

    def __exit__(self, *exc_info):
        if self.descriptor is not None:
            if self.still_named(self.descriptor):
                try:
                    os.unlink(self.path)        # removed while still locked: no one slips in
                except OSError:                 # a folder that turned read-only: leave it
                    pass
            os.close(self.descriptor)
            self.descriptor = None
        return False


def write_history(out_dir, history):
    """metrics.csv, metrics.jsonl and curves.png from the per-epoch rows (rewritten each epoch)."""
    out_dir = Path(out_dir)
    metrics.write_csv(out_dir / "metrics.csv", history, METRIC_COLUMNS)
    metrics.write_jsonl(out_dir / "metrics.jsonl", history)
    metrics.plot_curves(history, out_dir / "curves.png")


def describe(setup, settings, out_dir):
    """The lines printed before training: model, data, recipe, run folder."""
    parameters = setup.model.num_parameters()
    config = ", ".join(f"{k}={v}" for k, v in setup.model.config.items() if k != "name")
    return (f"{setup.model.config['name']}({config}): {parameters:,} parameters\n"
            f"{settings['dataset']}: {setup.train_loader.num_samples} train / "
            f"{setup.test_loader.num_samples} test images, batch {settings['batch_size']}, "
            f"{settings['epochs']} epochs, {settings['optimizer']} lr {settings['lr']} "
            f"({settings['schedule']}), augment={settings['augment']}, "
            f"device {settings['device']}\n"
            f"run folder: {out_dir}")


def write_results(out_dir, setup, settings, result, evaluation):
    """results.json: final accuracy and error, per-class accuracy, timings, size."""
    history = result.history
    per_class = metrics.per_class_accuracy(evaluation["confusion"])
    results = {
        "model": setup.model.config, "dataset": settings["dataset"],
        "test_accuracy": evaluation["accuracy"], "test_error": 1.0 - evaluation["accuracy"],
        "test_loss": evaluation["loss"], "best_test_accuracy": result.best_accuracy,
        "per_class_accuracy": {name: (None if math.isnan(a) else float(a))
                               for name, a in zip(setup.classes, per_class)},
        "epochs": len(history),
        "wall_time_s": sum(row["seconds"] for row in history),
        "images_per_s": (float(numpy.mean([row["images_per_s"] for row in history]))
                         if history else None),
        "parameters": setup.model.num_parameters(),
    }
    metrics.write_json(Path(out_dir) / "results.json", results)
    return results
