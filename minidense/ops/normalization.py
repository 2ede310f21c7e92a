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

On the CPU, a large batch is cut into parts that run at once on the cores (parallel.py): every
pass over memory runs on each part, and the per-channel sums of the parts add up to the batch's.
``_batch_statistics_split``, ``scale_shift``'s second branch and ``_backward_split`` are those
parallel paths, next to the plain ones.
"""
from .. import backend
from ..autograd import ArrayFunction, ShapeError, Tensor
from . import parallel

def channel_sum(a, b=None):
    """Per channel c: the sum of a[n, c, h, w] over n, h, w, or of a * b without storing the
    product. einsum does either in one pass over memory, 1.5-3x faster on a CPU than
    ``(a * b).sum(axis=(0, 2, 3))``, which first writes the whole product out."""
    xp = backend.get_array_module(a)
    index = "nchw"[:a.ndim]
    if b is None:
        return xp.einsum(f"{index}->c", a)
    return xp.einsum(f"{index},{index}->c", a, b)


def _per_channel(values, ndim):
    """A (C,) vector shaped to broadcast against an (N, C, ...) array."""
    return values.reshape((1, -1) + (1,) * (ndim - 2))


def check_batch_norm_inputs(x, *per_channel):
    """x must be (N, C) or (N, C, H, W); every per-channel array must have shape (C,)."""
    if x.ndim not in (2, 4):
        raise ShapeError(f"batch_norm: expected an (N, C) or (N, C, H, W) input, got shape {x.shape}")
    channels = x.shape[1]
    for name, a in per_channel:
        if a is not None and tuple(a.shape) != (channels,):
            raise ShapeError(f"batch_norm: {name} has shape {tuple(a.shape)} but the input "
                             f"{x.shape} has {channels} channels (expected ({channels},))")


def batch_statistics(x, eps=1e-5, out=None):
    """Normalise x with the batch's own statistics. Returns (x_hat, inv_std, mean, var): x_hat
    (written into ``out`` when given), 1/sigma shaped to broadcast, and the batch mean and biased
    variance, each of shape (C,), for the running statistics.

    The variance is computed from the centred values, mean((x - mu)^2), not as E[x^2] - mu^2:
    the shortcut loses every digit to cancellation in float32 when |mu| >> sigma, and the centred
    values are needed for x_hat anyway.
    """
    count = x.size // x.shape[1]
    if count < 2:
        raise ValueError(f"batch_norm: training needs more than one value per channel to compute "
                         f"a variance, got input shape {x.shape}")
    parts = parallel.parts_for(x)
    if parts > 1:
        return _batch_statistics_split(x, eps, out, parts)
    xp = backend.get_array_module(x)
    mean = _per_channel(channel_sum(x) / x.dtype.type(count), x.ndim)
    x_hat = xp.subtract(x, mean, out=out)
    var = _per_channel(channel_sum(x_hat, x_hat) / x.dtype.type(count), x.ndim)
    inv_std = 1 / xp.sqrt(var + x.dtype.type(eps))
    x_hat *= inv_std                                       # in place: no second x-sized buffer
    return x_hat, inv_std, mean.reshape(-1), var.reshape(-1)


def _batch_statistics_split(x, eps, out, parts):
    """The parallel path of ``batch_statistics``: the same passes over memory, each run on
    ``parts`` parts of the batch at once; the per-channel sums of the parts add up."""
    xp = backend.get_array_module(x)
    count = x.dtype.type(x.size // x.shape[1])
    mean = _per_channel(sum(parallel.over_batch(channel_sum, x, parts=parts)) / count, x.ndim)
    x_hat = xp.empty_like(x) if out is None else out

    def centre(x_part, x_hat_part):                         # x_hat = x - mu, and sum (x - mu)^2
        xp.subtract(x_part, mean, out=x_hat_part)
        return channel_sum(x_hat_part, x_hat_part)
    var = _per_channel(sum(parallel.over_batch(centre, x, x_hat, parts=parts)) / count, x.ndim)
    inv_std = 1 / xp.sqrt(var + x.dtype.type(eps))

    def normalise(x_hat_part):
        x_hat_part *= inv_std
    parallel.over_batch(normalise, x_hat, parts=parts)
    return x_hat, inv_std, mean.reshape(-1), var.reshape(-1)


def scale_shift(x_hat, gamma, beta, relu=False):
    """y = gamma * x_hat + beta per channel, then max(y, 0) with ``relu`` (a new array)."""
    parts = parallel.parts_for(x_hat)
    if parts == 1:
        return _scale_shift(x_hat, gamma, beta, relu)
    y = backend.get_array_module(x_hat).empty(x_hat.shape, x_hat.dtype)   # the parallel path
    parallel.over_batch(lambda x_hat_part, y_part: _scale_shift(x_hat_part, gamma, beta, relu,
                                                                out=y_part),
                        x_hat, y, parts=parts)
    return y


def _scale_shift(x_hat, gamma, beta, relu, out=None):
    """y = gamma * x_hat + beta per channel (then max(y, 0) with ``relu``), into ``out`` if given."""
    xp = backend.get_array_module(x_hat)
    y = xp.multiply(x_hat, _per_channel(gamma, x_hat.ndim), out=out)
    y += _per_channel(beta, x_hat.ndim)
    if relu:
        xp.maximum(y, 0, out=y)
    return y


def batch_norm_train_forward(x, gamma, beta, eps=1e-5, relu=False):
    """Training-mode batch norm in two steps: ``batch_statistics`` then ``scale_shift``. Returns
    (y, x_hat, inv_std, mean, var); ``relu=True``: y is max(y, 0) (the fused BN-ReLU)."""
    x_hat, inv_std, mean, var = batch_statistics(x, eps)
    return scale_shift(x_hat, gamma, beta, relu), x_hat, inv_std, mean, var


def batch_norm_eval_forward(x, running_mean, running_var, gamma, beta, eps=1e-5, relu=False):
    """Normalise with fixed (running) statistics. Returns (y, x_hat, inv_std)."""
    xp = backend.get_array_module(x)
    mean = _per_channel(running_mean.astype(x.dtype, copy=False), x.ndim)
    var = _per_channel(running_var.astype(x.dtype, copy=False), x.ndim)
    inv_std = 1 / xp.sqrt(var + x.dtype.type(eps))
    x_hat = x - mean
    x_hat *= inv_std
    return scale_shift(x_hat, gamma, beta, relu), x_hat, inv_std


def batch_norm_backward(gy, x_hat, inv_std, gamma, training, need_x=True, need_gamma=True,
                        need_beta=True, relu_output=None):
    """(dL/dx, dL/dgamma, dL/dbeta) from dL/dy and what the forward pass returned; None where not
    needed. ``training``: the statistics were the batch's (they depend on x) or fixed ones.
    ``relu_output``: the output a = max(y, 0) of a fused BN-ReLU, whose dL/da is given as gy;
    then dL/dy = gy * [a > 0] first."""
    parts = parallel.parts_for(gy)
    if parts > 1:
        return _backward_split(gy, x_hat, inv_std, gamma, training, need_x, need_gamma, need_beta,
                               relu_output, parts)
    own_gy = relu_output is not None
    if own_gy:
        gy = gy * (relu_output > 0)
    sum_gy = channel_sum(gy)                                # also dL/dbeta
    sum_gy_xhat = channel_sum(gy, x_hat) if need_x and training or need_gamma else None
    gx = None
    if need_x:
        m = gy.size // gy.shape[1]
        gx = _input_grad(gy, x_hat, inv_std, gamma, training, m, sum_gy, sum_gy_xhat,
                         out=gy if own_gy else None)
    return gx, (sum_gy_xhat if need_gamma else None), (sum_gy if need_beta else None)


def _input_grad(gy, x_hat, inv_std, gamma, training, m, sum_gy, sum_gy_xhat, out=None):
    """dL/dx into ``out`` (a new array if None; ``out`` may be gy itself). In training,

        dL/dx = scale / m * (m gy - sum_gy - x_hat sum_gy_xhat),       scale = gamma / sigma
              = scale * gy  +  x_hat * (-scale sum_gy_xhat / m)  +  (-scale sum_gy / m)

    the second line computed in four passes over memory, with per-channel factors. m is the
    number of values per channel in the whole batch (also when gy is one part of it)."""
    xp = backend.get_array_module(gy)
    scale = _per_channel(gamma, gy.ndim) * inv_std
    gx = xp.multiply(gy, scale, out=out)
    if training:
        factor = gy.dtype.type(1 / m)
        gx += x_hat * (-scale * _per_channel(sum_gy_xhat, gy.ndim) * factor)
        gx += -scale * _per_channel(sum_gy, gy.ndim) * factor
    return gx


def _backward_split(gy, x_hat, inv_std, gamma, training, need_x, need_gamma, need_beta,
                    relu_output, parts):
    """The parallel path of ``batch_norm_backward``: the sums of the parts add up to the
    batch's, then every part computes its rows of dL/dx."""
    xp = backend.get_array_module(gy)
    need_sum_xhat = need_x and training or need_gamma
    g = gy if relu_output is None else xp.empty_like(gy)       # dL/dy of batch norm itself

    def sums(gy_part, x_hat_part, g_part, *relu_part):
        if relu_part:
            xp.multiply(gy_part, relu_part[0] > 0, out=g_part)
        return (channel_sum(g_part),
                channel_sum(g_part, x_hat_part) if need_sum_xhat else None)
    extra = () if relu_output is None else (relu_output,)
    results = parallel.over_batch(sums, gy, x_hat, g, *extra, parts=parts)
    sum_gy = sum(r[0] for r in results)
    sum_gy_xhat = sum(r[1] for r in results) if need_sum_xhat else None
    gx = None
    if need_x:
        m = gy.size // gy.shape[1]
        gx = g if g is not gy else xp.empty_like(gy)       # in place over our own buffer

        def input_grad(g_part, x_hat_part, gx_part):
            _input_grad(g_part, x_hat_part, inv_std, gamma, training, m, sum_gy, sum_gy_xhat,
                        out=gx_part)
        parallel.over_batch(input_grad, g, x_hat, gx, parts=parts)
    return gx, (sum_gy_xhat if need_gamma else None), (sum_gy if need_beta else None)


class SharedBatchStatistics:
    """x_hat, 1/sigma, mean and variance of a growing concatenation, each channel computed once.

    In a dense block, layer l normalises [x_0, ..., x_{l-1}] and layer l+1 normalises
    [x_0, ..., x_{l-1}, x_l]. In training mode every channel but the new ones holds the same
    values in both, so the same batch mean and variance and the same x_hat = (x - mu) / sigma;
    only gamma and beta are the layer's own. So a block keeps one (N, C_total, H, W) array of
    x_hat and fills in each layer's new channels once; layer l's batch norm reads the view of the
    first C_l channels and only scales and shifts it. Per layer that saves the passes for the mean,
    the centring, the variance and the normalisation over all older channels, and a stored x_hat
    of its own (the backward pass reads the same views).

    ``normalise(x, eps)`` expects x's first channels to be the very values it normalised before,
    as in a dense block, where each layer's input starts with the previous layer's input.
    """

    def __init__(self, total_channels):
        self.total_channels = total_channels
        self.x_hat = self.inv_std = self.mean = self.var = self.eps = None
        self.filled = 0

    def normalise(self, x, eps):
        """(x_hat, inv_std, mean, var) of x, as ``batch_statistics(x, eps)`` returns them, with
        only the channels not seen before computed."""
        channels = x.shape[1]
        if self.x_hat is None:
            xp = backend.get_array_module(x)
            n, _, *spatial = x.shape
            self.x_hat = xp.empty((n, self.total_channels, *spatial), x.dtype)
            self.inv_std = xp.empty((1, self.total_channels) + (1,) * len(spatial), x.dtype)
            self.mean = xp.empty(self.total_channels, x.dtype)
            self.var = xp.empty(self.total_channels, x.dtype)
            self.eps = eps
        continues = (x.shape[0] == self.x_hat.shape[0] and x.shape[2:] == self.x_hat.shape[2:]
                     and self.filled <= channels <= self.total_channels
                     and eps == self.eps and x.dtype == self.x_hat.dtype)
        if not continues:
            raise ShapeError(f"SharedBatchStatistics: an input of shape {x.shape} ({x.dtype}, "
                             f"eps {eps}) cannot continue the {self.filled} channels normalised so "
                             f"far (arrays {self.x_hat.shape}, {self.x_hat.dtype}, eps {self.eps})")
        if channels > self.filled:                    # the new channels: their statistics
            new = slice(self.filled, channels)
            _, self.inv_std[:, new], self.mean[new], self.var[new] = batch_statistics(
                x[:, new], eps, out=self.x_hat[:, new])
            self.filled = channels
        return (self.x_hat[:, :channels], self.inv_std[:, :channels], self.mean[:channels],
                self.var[:channels])


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

    ``statistics``: where training mode gets x_hat, 1/sigma and the batch mean and variance.
    None computes them from x (``batch_statistics``); a dense block passes its
    ``SharedBatchStatistics``, which computes each channel's once for all the layers that read it.

    Saved for backward: x_hat, 1/sigma and gamma. Not x: the backward formula never reads it, so
    the input (in DenseNet, the concatenation of all earlier feature maps) can be freed.
    """

    relu = False        # BatchNormReLU: max(y, 0) on the way out

    def __init__(self, training, eps=1e-5, running_mean=None, running_var=None, momentum=0.1,
                 statistics=None):
        self.training, self.eps, self.momentum = training, eps, momentum
        self.running_mean, self.running_var = running_mean, running_var
        self.statistics = statistics

    def forward(self, x, gamma, beta):
        check_batch_norm_inputs(x, ("weight", gamma), ("bias", beta),
                                ("running_mean", self.running_mean), ("running_var", self.running_var))
        for name, a in (("weight", gamma), ("bias", beta)):
            if a.dtype != x.dtype:
                raise TypeError(f"batch_norm: input is {x.dtype} but {name} is {a.dtype}; convert "
                                f"one of them so both match")
        if self.training:
            if self.statistics is None:
                x_hat, inv_std, mean, var = batch_statistics(x, self.eps)
            else:
                x_hat, inv_std, mean, var = self.statistics.normalise(x, self.eps)
            y = scale_shift(x_hat, gamma, beta, self.relu)
            if self.running_mean is not None and self.running_var is not None:
                update_running_stats(self.running_mean, self.running_var, mean, var,
                                     x.size // x.shape[1], self.momentum)
        else:
            if self.running_mean is None or self.running_var is None:
                raise ValueError("batch_norm: evaluation mode (training=False) needs running_mean "
                                 "and running_var")
            y, x_hat, inv_std = batch_norm_eval_forward(x, self.running_mean, self.running_var,
                                                        gamma, beta, self.eps, self.relu)
        self.running_mean = self.running_var = self.statistics = None   # not needed by backward
        self.save_for_backward(x_hat, inv_std, gamma)
        return y

    def backward(self, gy):
        x_hat, inv_std, gamma = self.saved_values
        return batch_norm_backward(gy, x_hat, inv_std, gamma, self.training,
                                   *self.needs_input_grad)


class BatchNormReLU(BatchNorm):
    """a = max(batch_norm(x), 0) as one op: the numbers of relu(batch_norm(x)), with the ReLU done
    in place on batch norm's output (one stored array instead of two) and its backward folded in:

        dL/dz = dL/da * [a > 0]        (z: batch norm's output), then batch norm's backward

    Saved for backward: batch norm's x_hat, 1/sigma and gamma, and a.
    """

    relu = True

    def forward(self, x, gamma, beta):
        activated = super().forward(x, gamma, beta)      # max(z, 0), taken in place
        self.save_for_backward(*self.saved_values, activated)
        return activated

    def backward(self, gy):
        x_hat, inv_std, gamma, activated = self.saved_values
        return batch_norm_backward(gy, x_hat, inv_std, gamma, self.training,
                                   *self.needs_input_grad, relu_output=activated)


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalization (PyTorch's F.batch_norm). ``running_mean``/``running_var`` are Tensors or
    arrays of shape (C,), updated in place when ``training``; ``weight`` (gamma) and ``bias``
    (beta) default to 1 and 0."""
    return _apply(BatchNorm, x, running_mean, running_var, weight, bias, training, momentum, eps)


def batch_norm_relu(x, running_mean, running_var, weight=None, bias=None, training=False,
                    momentum=0.1, eps=1e-5, statistics=None):
    """relu(batch_norm(x, ...)) as the single op BatchNormReLU: the same numbers, one stored
    array fewer (DenseNet's BN-ReLU-Conv layers use it). Arguments as for ``batch_norm``;
    ``statistics``: a dense block's ``SharedBatchStatistics`` (see ``BatchNorm``)."""
    return _apply(BatchNormReLU, x, running_mean, running_var, weight, bias, training, momentum,
                  eps, statistics)


def _apply(op, x, running_mean, running_var, weight, bias, training, momentum, eps,
           statistics=None):
    """Check and complete batch_norm's arguments, then run ``op`` (BatchNorm or BatchNormReLU)."""
    if momentum is None:
        raise ValueError("batch_norm: momentum=None (a cumulative average) is not supported; "
                         "pass a number such as 0.1")
    data = x.data if isinstance(x, Tensor) else x
    xp = backend.get_array_module(data)
    channels = data.shape[1] if data.ndim >= 2 else 0
    if weight is None:
        weight = Tensor(xp.ones(channels, dtype=data.dtype))
    if bias is None:
        bias = Tensor(xp.zeros(channels, dtype=data.dtype))
    stats = [s.data if isinstance(s, Tensor) else s for s in (running_mean, running_var)]
    for name, stat in zip(("running_mean", "running_var"), stats):
        if stat is not None and backend.device_of(stat) != backend.device_of(data):
            raise RuntimeError(f"batch_norm: {name} lives on {backend.device_of(stat)} but the "
                               f"input {tuple(data.shape)} on {backend.device_of(data)}; keep the "
                               f"running statistics on the input's device")
    return op(training, eps, stats[0], stats[1], momentum, statistics)(x, weight, bias)
