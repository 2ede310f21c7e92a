"""The run folder of ``python -m minidense train``: where it goes, and the files written into it.

    config.json     the run's arguments          metrics.csv / metrics.jsonl   one row per epoch
    curves.png      loss and error per epoch     last.npz / best.npz           checkpoints
    results.json    final accuracy and timings   figure5.png / figure5.csv     feature reuse

Every file is replaced atomically (``minidense.fileio``), so Ctrl-C or a crash never leaves a half
written one. The checkpoints are written by ``minidense.checkpoints``.
"""
import math
import os
from datetime import datetime
from pathlib import Path

import numpy

from . import metrics
from .errors import UsageError

METRIC_COLUMNS = ["epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "test_error",
                  "seconds", "images_per_s"]


def default_out_dir(settings):
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{settings['model']}-{settings['dataset']}-{stamp}"


def check_writable_folder(folder, option="--out"):
    """Raise UsageError unless ``folder`` is, or can be created as, a folder this process can
    write into. Creates nothing."""
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        where = "is a file" if existing == folder else f"lies under the file {existing}"
        raise UsageError(f"{option} {folder} {where}; choose a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {folder}: {existing} is not writable; choose a folder you can "
                         f"write to")


def make_folder(folder, option="--out"):
    """Create ``folder`` (and its parents); a refusal by the system is a UsageError."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"{option} {folder}: cannot create it ({error.strerror}); choose another "
                         f"folder") from None


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
