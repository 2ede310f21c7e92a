"""Classification losses with integer class targets: nll_loss and cross_entropy.

    nll_loss(log_probs, t)      = -mean_n log_probs[n, t_n]
    cross_entropy(logits, t)    = nll_loss(log_softmax(logits, axis=1), t)

Both are built from ops that already have a backward (log_softmax, indexing, mean), so the chain
rule gives the well-known gradient with no new code:

    dL/dlogits[n] = (softmax(logits[n]) - onehot(t_n)) / N        (reduction='mean')
"""
from .. import backend
from ..autograd import ShapeError, Tensor
from .activation import log_softmax

REDUCTIONS = ("mean", "sum", "none")


def class_targets(op, scores, targets):
    """Targets as an integer array of shape (N,), checked against scores (N, C).

    On the CPU a target outside [0, C) is an error that names it. On a GPU, looking at the
    targets' values would make the host wait for the device on every batch, so there the check
    happens on the device instead: an out-of-range target gets a NaN loss (``_nan_if_invalid``),
    which a training loop stops on (PyTorch's GPU kernels stop with a device-side assertion).
    minidense's datasets check their labels once, on the host, when they are made.
    """
    if scores.ndim != 2:
        raise ShapeError(f"{op}: expected scores of shape (N, C), got {scores.shape}; flatten "
                         f"extra dimensions first")
    data = targets.data if isinstance(targets, Tensor) else targets
    xp = backend.get_array_module(scores.data)
    data = xp.asarray(data)
    n, classes = scores.shape
    if data.dtype.kind not in "iu":
        raise TypeError(f"{op}: targets must be integer class indices, got dtype {data.dtype}")
    if data.shape != (n,):
        raise ShapeError(f"{op}: targets must have shape ({n},) to match scores {scores.shape}, "
                         f"got {data.shape}")
    if n and backend.device_of(data) == "cpu" and (data.min() < 0 or data.max() >= classes):
        bad = data[(data < 0) | (data >= classes)]
        raise ValueError(f"{op}: target class indices must be in [0, {classes - 1}] for {classes} "
                         f"classes, got {sorted(set(bad.tolist()))[:10]}")
    return data


def _nan_if_invalid(losses, targets, classes):
    """On a GPU: the losses, with NaN where a target is outside [0, classes) (see class_targets)."""
    if backend.device_of(targets) == "cpu":
        return losses
    xp = backend.get_array_module(targets)
    valid = (targets >= 0) & (targets < classes)
    return losses + Tensor(xp.where(valid, 0.0, float("nan")).astype(losses.dtype))


def _reduce(op, losses, reduction):
    if reduction == "mean":
        if losses.data.size == 0:      # the mean of no losses is NaN, as in PyTorch
            return losses.sum() * float("nan")
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    if reduction == "none":
        return losses
    raise ValueError(f"{op}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _nll(op, log_probs, t, reduction):
    xp = backend.get_array_module(t)
    picked = log_probs[xp.arange(t.shape[0]), t]
    return _reduce(op, _nan_if_invalid(-picked, t, log_probs.shape[1]), reduction)


def nll_loss(log_probs, targets, reduction="mean"):
    """Negative log-likelihood of the target classes: -log_probs[n, t_n], averaged over the batch."""
    return _nll("nll_loss", log_probs, class_targets("nll_loss", log_probs, targets), reduction)


def cross_entropy(logits, targets, reduction="mean"):
    """Softmax cross-entropy (PyTorch's F.cross_entropy) of logits (N, C) and class targets (N,)."""
    t = class_targets("cross_entropy", logits, targets)
    return _nll("cross_entropy", log_softmax(logits, axis=1), t, reduction)
