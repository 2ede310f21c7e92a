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
    """Targets as an integer array of shape (N,), each in [0, C), checked against scores (N, C)."""
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
    if n and (int(data.min()) < 0 or int(data.max()) >= classes):
        bad = backend.to_numpy(data[(data < 0) | (data >= classes)])
        raise ValueError(f"{op}: target class indices must be in [0, {classes - 1}] for {classes} "
                         f"classes, got {sorted(set(bad.tolist()))[:10]}")
    return data


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


def nll_loss(log_probs, targets, reduction="mean"):
    """Negative log-likelihood of the target classes: -log_probs[n, t_n], averaged over the batch."""
    t = class_targets("nll_loss", log_probs, targets)
    xp = backend.get_array_module(t)
    picked = log_probs[xp.arange(t.shape[0]), t]
    return _reduce("nll_loss", -picked, reduction)


def cross_entropy(logits, targets, reduction="mean"):
    """Softmax cross-entropy (PyTorch's F.cross_entropy) of logits (N, C) and class targets (N,)."""
    class_targets("cross_entropy", logits, targets)
    return nll_loss(log_softmax(logits, axis=1), targets, reduction)
