"""Batch normalization (Ioffe & Szegedy 2015), per channel, for (N, C, H, W) or (N, C) inputs.

Training, with statistics over the M = N*H*W values of each channel c:

    mu = mean(x)          var = mean((x - mu)^2)   (biased)          sigma = sqrt(var + eps)
    x_hat = (x - mu) / sigma                       y = gamma * x_hat + beta

    dL/dbeta  = sum(dL/dy)                         dL/dgamma = sum(dL/dy * x_hat)
    dL/dx     = gamma / (sigma M) * (M dL/dy - sum(dL/dy) - x_hat * sum(dL/dy * x_hat))

(the last line is the chain rule through mu and var, collected into one formula; every sum is over
the channel's M values). The running statistics move towards the batch's,

    running_mean <- (1 - momentum) running_mean + momentum mu
    running_var  <- (1 - momentum) running_var  + momentum var * M / (M - 1)   (unbiased)

Evaluation uses the running statistics, which are constants, so dL/dx = dL/dy * gamma / sigma.

``BatchNorm`` asks for three kernels by name: ``batch_statistics``, ``scale_shift`` and
``batch_norm_backward``; the textbook ones are below. The fast ones (kernels/normalization.py)
compute the same numbers split over the cores, with each sum taken in one pass over memory, and
add a fused BN-ReLU and the shared statistics of a dense block.
"""
from .. import backend
from ..autograd import ArrayFunction, ShapeError, Tensor
from ..kernels import kernel, textbook_kernel
from .elementwise import relu


def channel_axes(a):
    """The axes a per-channel statistic runs over: all but the channel axis 1, i.e. N, H, W."""
    return (0,) + tuple(range(2, a.ndim))


def per_channel(values, ndim):
    """A (C,) vector shaped to broadcast against an (N, C, ...) array."""
    return values.reshape((1, -1) + (1,) * (ndim - 2))


@textbook_kernel("batch_statistics")
def batch_statistics(x, eps=1e-5):
    """Normalise x with the batch's own statistics. Returns (x_hat, inv_std, mean, var): x_hat,
    1/sigma shaped to broadcast, and the batch mean and biased variance, each of shape (C,).

    The variance is the mean of the centred values squared, not E[x^2] - mu^2: the shortcut loses
    every digit to cancellation in float32 when |mu| >> sigma, and x_hat needs x - mu anyway.
    """
    xp, axes = backend.get_array_module(x), channel_axes(x)
    mean = x.mean(axis=axes, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=axes, keepdims=True)
    inv_std = 1 / xp.sqrt(var + x.dtype.type(eps))
    return centred * inv_std, inv_std, mean.reshape(-1), var.reshape(-1)


def normalise_with_running_statistics(x, running_mean, running_var, eps):
    """Evaluation: x_hat = (x - running_mean) / sqrt(running_var + eps). Returns (x_hat, inv_std)."""
    xp = backend.get_array_module(x)
    mean = per_channel(running_mean.astype(x.dtype, copy=False), x.ndim)
    var = per_channel(running_var.astype(x.dtype, copy=False), x.ndim)
    inv_std = 1 / xp.sqrt(var + x.dtype.type(eps))
    return (x - mean) * inv_std, inv_std


@textbook_kernel("scale_shift")
def scale_shift(x_hat, gamma, beta):
    """y = gamma * x_hat + beta, per channel."""
    return per_channel(gamma, x_hat.ndim) * x_hat + per_channel(beta, x_hat.ndim)


@textbook_kernel("batch_norm_backward")
def batch_norm_backward(gy, x_hat, inv_std, gamma, training, need_x=True, need_gamma=True,
                        need_beta=True):
    """(dL/dx, dL/dgamma, dL/dbeta) from dL/dy and what the forward pass kept; None where not
    needed. ``training``: the statistics were the batch's (they depend on x) or fixed ones."""
    axes = channel_axes(gy)
    sum_gy = gy.sum(axis=axes)                                  # dL/dbeta
    sum_gy_xhat = (gy * x_hat).sum(axis=axes)                   # dL/dgamma
    gx = None
    if need_x:
        scale = per_channel(gamma, gy.ndim) * inv_std           # gamma / sigma
        if training:
            m = gy.size // gy.shape[1]
            gx = scale / m * (m * gy - per_channel(sum_gy, gy.ndim)
                              - x_hat * per_channel(sum_gy_xhat, gy.ndim))
        else:
            gx = scale * gy
    return gx, (sum_gy_xhat if need_gamma else None), (sum_gy if need_beta else None)


def update_running_stats(running_mean, running_var, mean, var, count, momentum):
    """Move the running statistics (arrays, updated in place) towards the batch's mean and biased
    variance over ``count`` values per channel; the variance is stored unbiased,
    var * count / (count - 1)."""
    unbiased_var = var * (count / (count - 1))
    running_mean *= 1 - momentum
    running_mean += momentum * mean.astype(running_mean.dtype, copy=False)
    running_var *= 1 - momentum
    running_var += momentum * unbiased_var.astype(running_var.dtype, copy=False)


class BatchNorm(ArrayFunction):
    """y = gamma * (x - mu) / sqrt(var + eps) + beta per channel; the math is in the module docstring.

    ``BatchNorm(training, eps, running_mean, running_var, momentum)(x, gamma, beta)``. In training
    mode the forward pass updates ``running_mean``/``running_var`` (arrays) in place when they are
    given; pass None for them to normalise without touching any statistics (as a recomputation in
    a memory-efficient backward must). In evaluation mode they are required.

    Saved for backward: x_hat, 1/sigma and gamma. Not x: the backward formula never reads it, so
    the input (in DenseNet, the concatenation of all earlier feature maps) can be freed.
    """

    def __init__(self, training, eps=1e-5, running_mean=None, running_var=None, momentum=0.1):
        self.training, self.eps, self.momentum = training, eps, momentum
        self.running_mean, self.running_var = running_mean, running_var

    def forward(self, x, gamma, beta):
        self.check_inputs(x, gamma, beta)
        x_hat, inv_std = self.normalise(x)
        self.save_for_backward(x_hat, inv_std, gamma)
        return kernel("scale_shift", x)(x_hat, gamma, beta)

    def backward(self, gy):
        x_hat, inv_std, gamma = self.saved_values
        return kernel("batch_norm_backward", gy)(gy, x_hat, inv_std, gamma, self.training,
                                                 *self.needs_input_grad)

    def normalise(self, x):
        """(x_hat, 1/sigma): in training with the batch's statistics, moving the running ones
        towards them; in evaluation with the running statistics."""
        if self.training:
            x_hat, inv_std, mean, var = self.batch_statistics(x)
            if self.running_mean is not None and self.running_var is not None:
                update_running_stats(self.running_mean, self.running_var, mean, var,
                                     x.size // x.shape[1], self.momentum)
        else:
            x_hat, inv_std = normalise_with_running_statistics(x, self.running_mean,
                                                               self.running_var, self.eps)
        self.running_mean = self.running_var = None           # backward needs neither
        return x_hat, inv_std

    def batch_statistics(self, x):
        return kernel("batch_statistics", x)(x, self.eps)

    def check_inputs(self, x, gamma, beta):
        """x (N, C) or (N, C, H, W); gamma, beta and the running statistics (C,), x's dtype."""
        if x.ndim not in (2, 4):
            raise ShapeError(f"batch_norm: expected an (N, C) or (N, C, H, W) input, got shape "
                             f"{x.shape}")
        per_channel_inputs = (("weight", gamma), ("bias", beta),
                              ("running_mean", self.running_mean), ("running_var", self.running_var))
        for name, a in per_channel_inputs:
            if a is not None and tuple(a.shape) != (x.shape[1],):
                raise ShapeError(f"batch_norm: {name} has shape {tuple(a.shape)} but the input "
                                 f"{x.shape} has {x.shape[1]} channels (expected ({x.shape[1]},))")
        for name, a in per_channel_inputs[:2]:
            if a.dtype != x.dtype:
                raise TypeError(f"batch_norm: input is {x.dtype} but {name} is {a.dtype}; convert "
                                f"one of them so both match")
        if self.training and x.size // x.shape[1] < 2:
            raise ValueError(f"batch_norm: training needs more than one value per channel to "
                             f"compute a variance, got input shape {x.shape}")
        if not self.training and (self.running_mean is None or self.running_var is None):
            raise ValueError("batch_norm: evaluation mode (training=False) needs running_mean "
                             "and running_var")


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalization (PyTorch's F.batch_norm). ``running_mean``/``running_var`` are Tensors or
    arrays of shape (C,), updated in place when ``training``; ``weight`` (gamma) and ``bias``
    (beta) default to 1 and 0."""
    weight, bias, running_mean, running_var = complete_arguments(x, running_mean, running_var,
                                                                 weight, bias, momentum)
    return BatchNorm(training, eps, running_mean, running_var, momentum)(x, weight, bias)


@textbook_kernel("batch_norm_relu")
def relu_of_batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
                       momentum=0.1, eps=1e-5, statistics=None):
    """relu(batch_norm(x, ...)), two ops. Each call normalises its own input: ``statistics`` (a
    dense block's shared statistics) is for the fast, fused kernel only."""
    return relu(batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps))


def complete_arguments(x, running_mean, running_var, weight, bias, momentum):
    """batch_norm's arguments checked and completed: (weight, bias, running_mean, running_var),
    gamma = 1 and beta = 0 where None, the running statistics as arrays on x's device."""
    if momentum is None:
        raise ValueError("batch_norm: momentum=None (a cumulative average) is not supported; "
                         "pass a number such as 0.1")
    data = x.data if isinstance(x, Tensor) else x
    xp = backend.get_array_module(data)
    channels = data.shape[1] if data.ndim >= 2 else 0
    weight = Tensor(xp.ones(channels, dtype=data.dtype)) if weight is None else weight
    bias = Tensor(xp.zeros(channels, dtype=data.dtype)) if bias is None else bias
    stats = [s.data if isinstance(s, Tensor) else s for s in (running_mean, running_var)]
    for name, stat in zip(("running_mean", "running_var"), stats):
        if stat is not None and backend.device_of(stat) != backend.device_of(data):
            raise RuntimeError(f"batch_norm: {name} lives on {backend.device_of(stat)} but the "
                               f"input {tuple(data.shape)} on {backend.device_of(data)}; keep the "
                               f"running statistics on the input's device")
    return weight, bias, stats[0], stats[1]
