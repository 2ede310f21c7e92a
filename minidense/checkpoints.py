"""Training checkpoints: what ``last.npz`` and ``best.npz`` hold, and writing and reading them.

A checkpoint is a dict of plain values and arrays (see ``make_checkpoint``) stored with
``md.save``, so a checkpoint from someone else can hold numbers and text only, never code.

The two files are written so that a crash at any moment leaves them consistent with each other:
``best.npz`` first (when the epoch improved), then ``last.npz``. ``last.npz`` is what a resumed run
starts from, so an epoch counts as finished only once it is written; a run killed between the two
writes repeats that epoch, gets the same accuracy and writes ``best.npz`` again. Each write is
atomic, so neither file is ever half written.

A checkpoint may come from elsewhere or be edited by hand, so its training state is checked value
by value before anything uses it (``check_training_state``, then against the model, optimizer and
scheduler it is loaded into, in ``restore_state``); a wrong value is a CheckpointError naming it.
"""
import contextlib
import math
from pathlib import Path

import numpy

from . import creation, random as md_random
from .errors import UsageError
from .models import get_model
from .run_folder import METRIC_COLUMNS
from .run_settings import check_settings
from .serialization import CheckpointError, load, save

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


def restore_state(checkpoint, model, optimizer, scheduler, source="the checkpoint"):
    """Load a checkpoint's weights, optimizer and scheduler state, and random state, in place.

    Every value is checked first (CheckpointError naming the first wrong one); weights that do
    not fit ``model`` raise UsageError naming the first mismatch, before anything is changed.
    """
    check_training_state(checkpoint, source)
    groups = optimizer.state_dict()["param_groups"]
    check_like(checkpoint["optimizer"]["param_groups"], groups, "optimizer param_groups", source)
    for index, (saved, group) in enumerate(zip(checkpoint["optimizer"]["param_groups"], groups)):
        if saved["params"] != group["params"]:
            refuse(source, f"optimizer param_groups[{index}]['params']", saved["params"],
                   group["params"])
    check_optimizer_state(checkpoint["optimizer"]["state"], list(model.parameters()), source)
    if scheduler is not None and checkpoint.get("scheduler") is not None:
        check_like(checkpoint["scheduler"], scheduler.state_dict(), "scheduler", source)
    load_weights(model, checkpoint["model"], source)
    optimizer.load_state_dict(checkpoint["optimizer"])
    if scheduler is not None and checkpoint.get("scheduler") is not None:
        scheduler.load_state_dict(checkpoint["scheduler"])
    md_random.set_state(checkpoint["rng"])


def load_weights(model, state_dict, source):
    """``model.load_state_dict`` whose mismatch is one line: UsageError with the first problem."""
    if not isinstance(state_dict, dict):
        raise UsageError(f"{source} holds a {type(state_dict).__name__} where the model's weights "
                         f"should be (a dict of parameter names to arrays); it was not written by "
                         f"minidense, or was edited")
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
    check_training_state(checkpoint, path)
    check_settings(checkpoint["arguments"], source=path)
    return checkpoint


# ----------------------------------------------------------------------------------------------
# Checking a checkpoint's values
# ----------------------------------------------------------------------------------------------
def refuse(source, what, value, expected):
    """Raise the CheckpointError for a value that is not what training writes."""
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    raise CheckpointError(f"{source}: {what} is {shown}, expected {expected}; the file was "
                          f"edited or damaged: restore it, or start a new run with another --out")


def is_number(value):
    return isinstance(value, (int, float, numpy.number)) and not isinstance(value, (bool,
                                                                                   numpy.bool_))


def check_training_state(checkpoint, source="the checkpoint"):
    """Raise CheckpointError unless every entry of a training checkpoint has the type and range
    that ``make_checkpoint`` gives it (the weights' fit to a model is checked on loading)."""
    model = checkpoint.get("model")
    if not isinstance(model, dict) or not model:
        refuse(source, "'model'", model, "a dict of parameter names to arrays")
    for name, value in model.items():
        if not isinstance(value, numpy.ndarray) or value.dtype.kind not in "biuf":
            refuse(source, f"the weight {name!r}", value, "a numeric array")
    history = checkpoint.get("history")
    if not isinstance(history, list):
        refuse(source, "'history'", history, "a list of per-epoch rows")
    for number, row in enumerate(history, start=1):
        if not isinstance(row, dict) or not all(is_number(row.get(key)) for key in METRIC_COLUMNS):
            refuse(source, f"history row {number}", row, f"numbers for {', '.join(METRIC_COLUMNS)}")
        if row["epoch"] != number:
            refuse(source, f"history row {number}'s epoch", row["epoch"], number)
    epoch = checkpoint.get("epoch")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch != len(history):
        refuse(source, "'epoch'", epoch, f"{len(history)}, the number of rows in its history")
    best = checkpoint.get("best_accuracy")
    if not is_number(best) or not 0 <= best <= 1:
        refuse(source, "'best_accuracy'", best, "a number from 0 to 1")
    check_rng_state(checkpoint.get("rng"), source)
    optimizer = checkpoint.get("optimizer")
    if not (isinstance(optimizer, dict) and isinstance(optimizer.get("state"), dict)
            and isinstance(optimizer.get("param_groups"), list)):
        refuse(source, "'optimizer'", optimizer, "a dict with 'state' and 'param_groups'")
    if not isinstance(checkpoint.get("scheduler"), (dict, type(None))):
        refuse(source, "'scheduler'", checkpoint.get("scheduler"), "a dict or None")
    if not isinstance(checkpoint.get("arguments"), dict):
        refuse(source, "'arguments'", checkpoint.get("arguments"), "a dict of options")


def check_rng_state(state, source):
    """The random generator's state must be one NumPy's PCG64 accepts, with a seed of 0 or more."""
    seed = state.get("seed") if isinstance(state, dict) else None
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        refuse(source, "the random generator's seed", seed, "a whole number, 0 or more")
    try:
        numpy.random.PCG64().state = state.get("numpy")
    except (TypeError, ValueError, KeyError, IndexError, OverflowError):
        refuse(source, "the random generator's state", state.get("numpy"),
               "the state of NumPy's PCG64 generator")


def check_like(saved, reference, what, source):
    """Raise CheckpointError unless ``saved`` has the structure of ``reference`` (what a freshly
    built optimizer or scheduler reports): the same keys, lengths and kinds of values."""
    if isinstance(reference, dict):
        if not isinstance(saved, dict) or set(saved) != set(reference):
            refuse(source, what, saved, f"a dict with the keys {sorted(map(str, reference))}")
        for key, value in reference.items():
            check_like(saved[key], value, f"{what}[{key!r}]", source)
    elif isinstance(reference, (list, tuple)):
        if not isinstance(saved, (list, tuple)) or len(saved) != len(reference):
            refuse(source, what, saved, f"a list of {len(reference)} values")
        for index, (item, value) in enumerate(zip(saved, reference)):
            check_like(item, value, f"{what}[{index}]", source)
    elif isinstance(reference, bool):
        if not isinstance(saved, bool):
            refuse(source, what, saved, "true or false")
    elif is_number(reference):
        whole = isinstance(reference, int)
        if not is_number(saved) or not math.isfinite(saved) or (whole and
                                                                not isinstance(saved, int)):
            refuse(source, what, saved, "a whole number" if whole else "a finite number")
        if whole and reference > 0 and saved < 1:       # a period or a milestone
            refuse(source, what, saved, "a whole number, 1 or more")
        if reference >= 0 > saved:
            refuse(source, what, saved, "a number, 0 or more")
    elif saved != reference:        # None, or text such as a schedule's name
        refuse(source, what, saved, repr(reference))


def check_optimizer_state(state, parameters, source):
    """Each saved per-parameter state: a known parameter index, numbers or arrays of that
    parameter's shape."""
    for index, entries in state.items():
        where = f"optimizer state {index!r}"
        if not isinstance(index, (int, str)) or not str(index).isdigit() \
                or int(index) >= len(parameters) or not isinstance(entries, dict):
            refuse(source, where, entries, f"per-parameter state for parameters 0 to "
                                           f"{len(parameters) - 1}")
        shape = parameters[int(index)].shape
        for name, value in entries.items():
            if is_number(value) or (isinstance(value, numpy.ndarray) and value.dtype.kind == "f"
                                    and value.shape == shape):
                continue
            refuse(source, f"{where}[{name!r}]", value, f"a number or a float array of shape "
                                                        f"{shape}")


def weights_bound_the_model(checkpoint, source="the checkpoint"):
    """A block in which building a model may make little more than the checkpoint's weights hold
    (the model's parameters and buffers are exactly those weights): a description edited to ask
    for a huge model is refused before anything that size is allocated."""
    weights = checkpoint.get("model") if isinstance(checkpoint, dict) else None
    if not isinstance(weights, dict):          # the checks of the weights themselves say why
        return contextlib.nullcontext()
    held = sum(int(numpy.size(v)) for v in weights.values())
    # room for a model somewhat off (its weights then fail to load with the layer named), not
    # for one of any size: twice the weights plus a million numbers (4 MB of float32)
    return creation.allocation_budget(2 * held + 2 ** 20, CheckpointError(
        f"{source} describes a model larger than the {held:,} weights it holds; the file was "
        f"edited or damaged: use another checkpoint or start a new run"))


def model_from_checkpoint(checkpoint, source="the checkpoint"):
    """Rebuild a checkpoint's model from its stored config and load its weights."""
    config = checkpoint.get("model_config") if isinstance(checkpoint, dict) else None
    if not isinstance(config, dict) or "name" not in config or "model" not in checkpoint:
        raise UsageError(f"{source} has no model config (was it written by "
                         f"`python -m minidense train`?); build the model yourself and use "
                         f"model.load_state_dict(md.load(path))")
    config = dict(config)
    try:
        with weights_bound_the_model(checkpoint, source):
            model = get_model(config.pop("name"), **config)
    except CheckpointError:
        raise
    except (ValueError, TypeError) as error:      # a config the model constructors refuse
        raise UsageError(f"{source} describes a model that cannot be built: {error}") from None
    load_weights(model, checkpoint["model"], source)
    return model
