"""The training loop: ``train_step``, ``evaluate`` and ``fit``, used by notebooks and the CLI.

In a notebook::

    from minidense.train import fit, evaluate
    result = fit(model, train_loader, test_loader, optimizer, scheduler, epochs=5, out_dir="runs/x")
    result.history[-1]["test_acc"]

One epoch of ``fit``: a training step on every batch (forward, cross-entropy, backward, optimizer
step), one ``scheduler.step()``, a pass over the test set, then the run folder is brought up to
date (``minidense.run_folder`` lists its files; ``minidense.checkpoints`` writes ``last.npz`` and
``best.npz`` so that a crash at any moment leaves them consistent). ``resume_from`` continues from
a checkpoint with exactly the numbers an uninterrupted run would have produced (the checkpoint
holds the random generator's state too). A loss that becomes NaN or infinite stops the run at once,
before a checkpoint could record it. Ctrl-C (or SIGTERM under the CLI) during the writes of an epoch
waits until they are complete; a full disk or a vanished run folder stops the run with a
``RunFolderError`` that names the epoch ``last.npz`` holds.

The command line around the loop lives in ``minidense.train_cli`` (``python -m minidense train``),
``minidense.evaluate_cli`` (``evaluate``) and ``minidense.run_settings`` (options to objects).
"""
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy

from . import backend, metrics
from . import random as md_random
from .autograd import no_grad
from .checkpoints import make_checkpoint, restore_state, write_checkpoints
from .errors import UsageError, UserError, signals_held  # noqa: F401  (UsageError: importable)
from .nn import functional as F
from .run_folder import (METRIC_COLUMNS, check_folder_present,  # noqa: F401  (METRIC_COLUMNS too)
                         folder_identity, storage_faults, write_history)


class TrainingDivergedError(UserError, FloatingPointError):
    """The training loss became NaN or infinite."""


# ----------------------------------------------------------------------------------------------
# One step, one pass over the test set
# ----------------------------------------------------------------------------------------------
def count_correct(logits, labels):
    """How many rows of ``logits`` have their largest value at the label's position."""
    return int(correct_on_device(logits, labels))


def correct_on_device(logits, labels):
    """The same count as a 0-d array where the logits live: on a GPU it stays there, unread."""
    return (logits.data.argmax(axis=1) == labels.data).sum()


def step_on_device(model, images, labels, optimizer):
    """Forward, loss, backward and one optimizer step. Returns (loss, correct) as 0-d arrays on
    the batch's device: reading them would make the host wait for a GPU, so callers add them up
    there and read the totals now and then (``train_one_epoch``)."""
    logits = model(images)
    loss = F.cross_entropy(logits, labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.data, correct_on_device(logits, labels)


def train_step(model, images, labels, optimizer):
    """Forward, loss, backward and one optimizer step on a batch. Returns (loss, correct)."""
    loss, correct = step_on_device(model, images, labels, optimizer)
    return float(loss), int(correct)


def evaluate(model, loader, num_classes=None):
    """Loss, accuracy and confusion matrix of ``model`` on every batch of ``loader``.

    The model runs in eval mode (batch norm uses its running statistics, no dropout) and without
    recording a graph; its previous mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    num_classes = num_classes or len(loader.dataset.classes)
    total_loss, targets, predictions = 0.0, [], []
    try:
        with no_grad():
            for images, labels in loader:
                logits = model(images)
                total_loss += F.cross_entropy(logits, labels).item() * len(labels.data)
                predictions.append(backend.to_numpy(logits.data.argmax(axis=1)))
                targets.append(backend.to_numpy(labels.data))
    finally:
        model.train(was_training)
    targets, predictions = numpy.concatenate(targets), numpy.concatenate(predictions)
    confusion = metrics.confusion_matrix(targets, predictions, num_classes)
    accuracy = float(numpy.mean(targets == predictions))
    return {"loss": total_loss / len(targets), "accuracy": accuracy, "confusion": confusion}


# ----------------------------------------------------------------------------------------------
# The loop
# ----------------------------------------------------------------------------------------------
@dataclass
class FitResult:
    """What ``fit`` returns: the per-epoch rows, the best test accuracy, the last evaluation."""
    history: list = field(default_factory=list)
    best_accuracy: float = 0.0
    last_evaluation: dict = None
    interrupted: bool = False


def current_lr(optimizer):
    return float(optimizer.param_groups[0]["lr"])


def restore_checkpoint(checkpoint, model, optimizer, scheduler, source="the checkpoint"):
    """Load a checkpoint's weights, optimizer/scheduler state and random state; return it as a
    FitResult so ``fit`` can continue (start at ``checkpoint['epoch']``). Every value is checked
    before anything is changed (``minidense.checkpoints.restore_state``)."""
    restore_state(checkpoint, model, optimizer, scheduler, source)
    return FitResult(history=list(checkpoint["history"]),
                     best_accuracy=float(checkpoint["best_accuracy"]))


def _totals(loss, count, correct):
    """[loss * count, correct] as one float64 array where they live, so one read gets both."""
    xp = backend.get_array_module(loss)
    return xp.stack([loss.astype(xp.float64) * count, correct.astype(xp.float64)])


GPU_READ_EVERY = 20     # batches between reads of the running totals on a GPU (one sync each)


def train_one_epoch(model, loader, optimizer, progress, epoch=None):
    """One pass over ``loader`` with a training step per batch. Returns (mean loss, accuracy,
    images per second). A non-finite loss raises TrainingDivergedError naming epoch and batch.

    The loss and the correct count of each batch are added up where they are computed. On the
    CPU the totals are read after every batch; on a GPU every ``GPU_READ_EVERY`` batches and at
    the end, since each read makes the host wait until the device has caught up (a host sync):
    the progress bar then moves in steps, and a non-finite loss is caught within that many
    batches."""
    model.train()
    totals, seen, total_loss, correct, last_read = None, 0, 0.0, 0, 0
    start = time.perf_counter()
    for batch, (images, labels) in enumerate(loader, start=1):
        loss, batch_correct = step_on_device(model, images, labels, optimizer)
        read_every = 1 if backend.device_of(loss) == "cpu" else GPU_READ_EVERY
        count = len(labels.data)
        batch_totals = _totals(loss, count, batch_correct)
        totals = batch_totals if totals is None else totals + batch_totals
        seen += count
        progress.update(1)
        if batch % read_every and batch != len(loader):
            continue
        total_loss, correct = backend.to_numpy(totals).tolist()     # the one read (a sync)
        correct = int(correct)
        if not math.isfinite(total_loss):
            where = (f"batch {batch}" if batch - last_read == 1
                     else f"one of batches {last_read + 1}-{batch}")
            raise TrainingDivergedError(
                f"training diverged: the loss became {total_loss} at epoch {epoch}, {where} of "
                f"{len(loader)} (lr {current_lr(optimizer):.4g}); try a lower learning rate")
        last_read = batch
        progress.set_postfix({"loss": f"{total_loss / seen:.4f}", "acc": f"{correct / seen:.3f}",
                              "lr": f"{current_lr(optimizer):.4g}",
                              "img/s": f"{seen / (time.perf_counter() - start):.0f}"},
                             refresh=False)
    return total_loss / seen, correct / seen, seen / (time.perf_counter() - start)


def fit(model, train_loader, test_loader, optimizer, scheduler=None, epochs=1, out_dir=None, *,
        resume_from=None, arguments=None, quiet=False):
    """Train ``model`` for ``epochs`` epochs (in total, counting epochs already done).

    out_dir      folder for metrics, curves and checkpoints (None: keep everything in memory).
    resume_from  a checkpoint dict (``md.load('run/last.npz')``) to continue from, or the
                 FitResult that ``restore_checkpoint`` returned for it.
    arguments    plain values stored in the checkpoints (the CLI stores its options).

    Ctrl-C stops after tidying up: the last finished epoch's checkpoint stays intact and the result
    has ``interrupted=True``. A NaN or infinite training loss raises TrainingDivergedError and
    leaves the last finished epoch's checkpoint as it was; a disk that fills up (or turns
    read-only) and a run folder that disappears raise RunFolderError. Returns a ``FitResult``.
    """
    from tqdm.auto import tqdm

    out_dir = Path(out_dir) if out_dir is not None else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        folder_id = folder_identity(out_dir)
    result = resume_from if isinstance(resume_from, FitResult) else FitResult()
    if isinstance(resume_from, dict):
        result = restore_checkpoint(resume_from, model, optimizer, scheduler)
    finished = len(result.history)
    if out_dir is not None and finished:    # a run stopped between last.npz and metrics catches up
        with signals_held():
            save_epoch(out_dir, folder_id, result.history, finished)
    say = (lambda text: None) if quiet else tqdm.write
    on_gpu = any(p.device == "cuda" for p in model.parameters())
    try:
        for epoch in range(finished + 1, epochs + 1):
            epoch_start, lr = time.perf_counter(), current_lr(optimizer)
            if on_gpu:   # dropout masks on the GPU: a generator that a resumed run can rebuild
                md_random.reseed_device_generator(backend.array_module("cuda"), epoch)
            with tqdm(total=len(train_loader), desc=f"epoch {epoch}/{epochs}", unit="batch",
                      disable=quiet, leave=False, dynamic_ncols=True) as progress:
                train_loss, train_acc, images_per_s = train_one_epoch(model, train_loader,
                                                                      optimizer, progress, epoch)
            if scheduler is not None:
                scheduler.step()
            result.last_evaluation = evaluate(model, test_loader)
            test_acc = result.last_evaluation["accuracy"]
            result.history.append({
                "epoch": epoch, "lr": lr, "train_loss": train_loss, "train_acc": train_acc,
                "test_loss": result.last_evaluation["loss"], "test_acc": test_acc,
                "test_error": 1.0 - test_acc, "seconds": time.perf_counter() - epoch_start,
                "images_per_s": images_per_s})
            improved = test_acc > result.best_accuracy
            result.best_accuracy = max(result.best_accuracy, test_acc)
            with signals_held():    # Ctrl-C waits until the epoch is saved and counted
                if out_dir is not None:
                    checkpoint = make_checkpoint(model, optimizer, scheduler, epoch,
                                                 result.best_accuracy, result.history, arguments)
                    save_epoch(out_dir, folder_id, result.history, finished, checkpoint,
                               improved)
                finished = epoch
            say(f"epoch {epoch}/{epochs}  lr {lr:.4g}  train loss {train_loss:.4f} "
                f"acc {100 * train_acc:.2f}%  test loss {result.last_evaluation['loss']:.4f} "
                f"acc {100 * test_acc:.2f}%  ({result.history[-1]['seconds']:.1f} s, "
                f"{images_per_s:.0f} img/s)")
    except TrainingDivergedError as error:
        if out_dir is None:
            raise
        kept = (f"{out_dir / 'last.npz'} still holds epoch {finished}" if finished
                else "no checkpoint was written")
        raise TrainingDivergedError(f"{error}; {kept}") from None
    except KeyboardInterrupt:
        result.interrupted = True
        where = f"; {out_dir / 'last.npz'} holds it" if out_dir is not None and finished else ""
        print(f"\ninterrupted: {finished} of {epochs} epochs finished{where}", file=sys.stderr)
    return result


def save_epoch(out_dir, folder_id, history, saved_epoch, checkpoint=None, improved=False):
    """Bring the run folder up to date: checkpoints (if given), metrics and curves.

    A run folder that is no longer the one ``folder_id`` identifies (deleted, moved) and a fault
    of the machine (disk full, read-only, quota) raise RunFolderError naming the epoch that
    ``last.npz`` holds (``saved_epoch`` until the new checkpoint is written)."""
    check_folder_present(out_dir, folder_id, saved_epoch)
    if checkpoint is not None:
        with storage_faults(out_dir, saved_epoch, folder_id):
            write_checkpoints(out_dir, checkpoint, improved)
        saved_epoch = checkpoint["epoch"]
    with storage_faults(out_dir, saved_epoch, folder_id):
        write_history(out_dir, history)
    check_folder_present(out_dir, folder_id, saved_epoch)
