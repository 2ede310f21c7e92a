"""Training checkpoints: what ``last.npz`` and ``best.npz`` hold, and writing and reading them.

A checkpoint is a dict of plain values and arrays (see ``make_checkpoint``) stored with
``md.save``, so a checkpoint from someone else can hold numbers and text only, never code.

The two files are written so that a crash at any moment leaves them consistent with each other:
``best.npz`` first (when the epoch improved), then ``last.npz``. ``last.npz`` is what a resumed run
starts from, so an epoch counts as finished only once it is written; a run killed between the two
writes repeats that epoch, gets the same accuracy and writes ``best.npz`` again. Each write is
atomic, so neither file is ever half written.
"""
from pathlib import Path

from . import random as md_random
from .errors import UsageError
from .models import get_model
from .serialization import load, save

TRAINING_KEYS = ("model", "optimizer", "rng", "epoch", "best_accuracy", "history", "arguments")


def make_checkpoint(model, optimizer, scheduler, epoch, best_accuracy, history, arguments=None):
    """Everything needed to continue a run or rebuild its model, as md.save-able values."""
    return {
        "model": model.state_dict(),
        "model_config": dict(model.config or {}),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": md_random.get_state(),
        "epoch": epoch,
        "best_accuracy": best_accuracy,
        "history": history,
        "arguments": arguments or {},
    }


def write_checkpoints(out_dir, checkpoint, improved):
    """Write ``best.npz`` (if this epoch improved) and then ``last.npz``; see the module notes."""
    out_dir = Path(out_dir)
    if improved:
        save(checkpoint, out_dir / "best.npz")
    save(checkpoint, out_dir / "last.npz")


def restore_state(checkpoint, model, optimizer, scheduler):
    """Load a checkpoint's weights, optimizer and scheduler state, and random state, in place.

    Weights that do not fit ``model`` raise UsageError naming the first mismatch, before
    anything is changed.
    """
    load_weights(model, checkpoint["model"], "the checkpoint")
    optimizer.load_state_dict(checkpoint["optimizer"])
    if scheduler is not None and checkpoint.get("scheduler") is not None:
        scheduler.load_state_dict(checkpoint["scheduler"])
    md_random.set_state(checkpoint["rng"])


def load_weights(model, state_dict, source):
    """``model.load_state_dict`` whose mismatch is one line: UsageError with the first problem."""
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as error:
        lines = [line.strip() for line in str(error).splitlines()[1:] if line.strip()]
        first = next((line for line in lines if not line.endswith(":")), "")
        raise UsageError(f"{source} does not fit the model {model.config.get('name', '')} built "
                         f"from its options ({first[:200]}); the options differ from those it was "
                         f"trained with") from None


def read_training_checkpoint(path):
    """``md.load(path)`` of a checkpoint written by training; UsageError if it is something else
    (a bare state dict, say)."""
    checkpoint = load(path)
    missing = ([key for key in TRAINING_KEYS if key not in checkpoint]
               if isinstance(checkpoint, dict) else list(TRAINING_KEYS))
    if not missing and not (isinstance(checkpoint["arguments"], dict)
                            and isinstance(checkpoint["history"], list)):
        missing = ["arguments as a dict", "history as a list"]
    if missing:
        raise UsageError(f"{path} is not a training checkpoint (it lacks {', '.join(missing)}); "
                         f"a file of weights alone loads with "
                         f"model.load_state_dict(md.load(path)); to train, start a new run with "
                         f"another --out")
    return checkpoint


def model_from_checkpoint(checkpoint, source="the checkpoint"):
    """Rebuild a checkpoint's model from its stored config and load its weights."""
    config = checkpoint.get("model_config") if isinstance(checkpoint, dict) else None
    if not isinstance(config, dict) or "name" not in config or "model" not in checkpoint:
        raise UsageError(f"{source} has no model config (was it written by "
                         f"`python -m minidense train`?); build the model yourself and use "
                         f"model.load_state_dict(md.load(path))")
    config = dict(config)
    try:
        model = get_model(config.pop("name"), **config)
    except (ValueError, TypeError) as error:      # a config the model constructors refuse
        raise UsageError(f"{source} describes a model that cannot be built: {error}") from None
    load_weights(model, checkpoint["model"], source)
    return model
