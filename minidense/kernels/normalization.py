"""Fast batch-norm kernels: one-pass sums, the batch split over the cores, fused BN-ReLU, and the
batch statistics a dense block shares.

The numbers are those of the textbook (ops/normalization.py); what changes is how often memory is
read and written, and by how many cores:

* ``channel_sum``: sum(a) and sum(a * b) per channel in one pass (einsum), without writing the
  product out first.
* On the CPU a large batch is cut into parts that run at once on the cores (threads.py): every pass
  over memory runs on each part, and the per-channel sums of the parts add up to the batch's.
* ``BatchNormReLU``: a = max(batch_norm(x), 0) as one op, the ReLU taken in place on batch norm's
  output (one stored array instead of two) and its backward folded in:
  dL/dz = dL/da * [a > 0] (z: batch norm's output), then batch norm's backward.
* ``SharedBatchStatistics``: the channels of a dense block's growing concatenation, each
  normalised once for all the layers that read it.
"""
from .. import backend
from ..autograd import ShapeError
from ..ops.normalization import BatchNorm, complete_arguments, per_channel
from . import fast_kernel, kernel, threads


def channel_sum(a, b=None):
    """Per channel c: the sum of a[n, c, h, w] over n, h, w, or of a * b without storing the
    product. einsum does either in one pass over memory, 1.5-3x faster on a CPU than
    ``(a * b).sum(axis=(0, 2, 3))``, which first writes the whole product out."""
    xp = backend.get_array_module(a)
    index = "nchw"[:a.ndim]
    if b is None:
        return xp.einsum(f"{index}->c", a)
    return xp.einsum(f"{index},{index}->c", a, b)


@fast_kernel("batch_statistics")
def batch_statistics(x, eps=1e-5, out=None):
    """(x_hat, inv_std, mean, var) as the textbook kernel returns them, x_hat written into ``out``
    when given. Three passes over x: the mean, the centring with the sum of squares, the scaling."""
    xp = backend.get_array_module(x)
    count = x.dtype.type(x.size // x.shape[1])
    parts = threads.parts_for(x)
    x_hat = xp.empty_like(x) if out is None else out
    mean = per_channel(sum(threads.over_batch(channel_sum, x, parts=parts)) / count, x.ndim)

    def centre(x_part, x_hat_part):                         # x_hat = x - mu, and sum (x - mu)^2
        xp.subtract(x_part, mean, out=x_hat_part)
        return channel_sum(x_hat_part, x_hat_part)
    var = per_channel(sum(threads.over_batch(centre, x, x_hat, parts=parts)) / count, x.ndim)
    inv_std = 1 / xp.sqrt(var + x.dtype.type(eps))

    def normalise(x_hat_part):
        x_hat_part *= inv_std                               # in place: no second x-sized buffer
    threads.over_batch(normalise, x_hat, parts=parts)
    return x_hat, inv_std, mean.reshape(-1), var.reshape(-1)


@fast_kernel("scale_shift")
def scale_shift(x_hat, gamma, beta, relu=False):
    """y = gamma * x_hat + beta per channel, then max(y, 0) with ``relu`` (a new array), split over
    the batch."""
    xp = backend.get_array_module(x_hat)
    y = xp.empty(x_hat.shape, x_hat.dtype)

    def scale_shift_part(x_hat_part, y_part):
        xp.multiply(x_hat_part, per_channel(gamma, x_hat.ndim), out=y_part)
        y_part += per_channel(beta, x_hat.ndim)
        if relu:
            xp.maximum(y_part, 0, out=y_part)
    threads.over_batch(scale_shift_part, x_hat, y)
    return y


@fast_kernel("scale_shift_relu")
def scale_shift_relu(x_hat, gamma, beta):
    """max(gamma * x_hat + beta, 0): batch norm's last step and the ReLU in one pass."""
    return scale_shift(x_hat, gamma, beta, relu=True)


@fast_kernel("batch_norm_backward")
def batch_norm_backward(gy, x_hat, inv_std, gamma, training, need_x=True, need_gamma=True,
                        need_beta=True, relu_output=None):
    """The textbook backward, split over the batch: the sums of the parts add up to the batch's,
    then every part computes its rows of dL/dx. ``relu_output``: the output a = max(y, 0) of a
    fused BN-ReLU, whose dL/da is given as gy; then dL/dy = gy * [a > 0] first."""
    xp = backend.get_array_module(gy)
    parts = threads.parts_for(gy)
    need_sum_xhat = need_x and training or need_gamma
    g = gy if relu_output is None else xp.empty_like(gy)       # dL/dy of batch norm itself

    def sums(gy_part, x_hat_part, g_part, *relu_part):
        if relu_part:
            xp.multiply(gy_part, relu_part[0] > 0, out=g_part)
        return (channel_sum(g_part),
                channel_sum(g_part, x_hat_part) if need_sum_xhat else None)
    extra = () if relu_output is None else (relu_output,)
    results = threads.over_batch(sums, gy, x_hat, g, *extra, parts=parts)
    sum_gy = sum(r[0] for r in results)
    sum_gy_xhat = sum(r[1] for r in results) if need_sum_xhat else None
    gx = None
    if need_x:
        m = gy.size // gy.shape[1]
        gx = g if g is not gy else xp.empty_like(gy)           # in place over our own buffer

        def input_grad(g_part, x_hat_part, gx_part):
            _input_grad(g_part, x_hat_part, inv_std, gamma, training, m, sum_gy, sum_gy_xhat,
                        out=gx_part)
        threads.over_batch(input_grad, g, x_hat, gx, parts=parts)
    return gx, (sum_gy_xhat if need_gamma else None), (sum_gy if need_beta else None)


@fast_kernel("batch_norm_relu_backward")
def batch_norm_relu_backward(gy, relu_output, x_hat, inv_std, gamma, training, need_x=True,
                             need_gamma=True, need_beta=True):
    """The fused BN-ReLU's backward: dL/dz = gy * [a > 0], then batch norm's, in the same passes."""
    return batch_norm_backward(gy, x_hat, inv_std, gamma, training, need_x, need_gamma, need_beta,
                               relu_output=relu_output)


def _input_grad(gy, x_hat, inv_std, gamma, training, m, sum_gy, sum_gy_xhat, out=None):
    """dL/dx into ``out`` (``out`` may be gy itself). In training,

        dL/dx = scale / m * (m gy - sum_gy - x_hat sum_gy_xhat),       scale = gamma / sigma
              = scale * gy  +  x_hat * (-scale sum_gy_xhat / m)  +  (-scale sum_gy / m)

    the second line computed in four passes over memory, with per-channel factors. m is the
    number of values per channel in the whole batch (also when gy is one part of it)."""
    xp = backend.get_array_module(gy)
    scale = per_channel(gamma, gy.ndim) * inv_std
    gx = xp.multiply(gy, scale, out=out)
    if training:
        factor = gy.dtype.type(1 / m)
        gx += x_hat * (-scale * per_channel(sum_gy_xhat, gy.ndim) * factor)
        gx += -scale * per_channel(sum_gy, gy.ndim) * factor
    return gx


@fast_kernel("shared_batch_statistics")
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
        same_batch = x.shape[0] == self.x_hat.shape[0] and x.shape[2:] == self.x_hat.shape[2:]
        same_kind = eps == self.eps and x.dtype == self.x_hat.dtype
        if not (same_batch and same_kind and self.filled <= channels <= self.total_channels):
            raise ShapeError(f"SharedBatchStatistics: an input of shape {x.shape} ({x.dtype}, "
                             f"eps {eps}) cannot continue the {self.filled} channels normalised so "
                             f"far (arrays {self.x_hat.shape}, {self.x_hat.dtype}, eps {self.eps})")
        if channels > self.filled:                    # the new channels: their statistics
            new = slice(self.filled, channels)
            _, self.inv_std[:, new], self.mean[new], self.var[new] = kernel(
                "batch_statistics", x)(x[:, new], eps, out=self.x_hat[:, new])
            self.filled = channels
        return (self.x_hat[:, :channels], self.inv_std[:, :channels], self.mean[:channels],
                self.var[:channels])


class BatchNormReLU(BatchNorm):
    """a = max(batch_norm(x), 0) as one op: the numbers of relu(batch_norm(x)), one stored array
    fewer (see the module docstring). ``statistics``: a dense block's ``SharedBatchStatistics``,
    where training mode takes x_hat, 1/sigma, mean and variance from.

    Saved for backward: batch norm's x_hat, 1/sigma and gamma, and a.
    """

    def __init__(self, training, eps=1e-5, running_mean=None, running_var=None, momentum=0.1,
                 statistics=None):
        super().__init__(training, eps, running_mean, running_var, momentum)
        self.statistics = statistics

    def forward(self, x, gamma, beta):
        self.check_inputs(x, gamma, beta)
        x_hat, inv_std = self.normalise(x)
        self.statistics = None                                 # backward does not need it
        activated = kernel("scale_shift_relu", x)(x_hat, gamma, beta)
        self.save_for_backward(x_hat, inv_std, gamma, activated)
        return activated

    def backward(self, gy):
        x_hat, inv_std, gamma, activated = self.saved_values
        return kernel("batch_norm_relu_backward", gy)(gy, activated, x_hat, inv_std, gamma,
                                                      self.training, *self.needs_input_grad)

    def batch_statistics(self, x):
        if self.statistics is None:
            return super().batch_statistics(x)
        return self.statistics.normalise(x, self.eps)


@fast_kernel("batch_norm_relu")
def batch_norm_relu(x, running_mean, running_var, weight=None, bias=None, training=False,
                    momentum=0.1, eps=1e-5, statistics=None):
    """relu(batch_norm(x, ...)) as the single op ``BatchNormReLU``."""
    weight, bias, running_mean, running_var = complete_arguments(x, running_mean, running_var,
                                                                 weight, bias, momentum)
    op = BatchNormReLU(training, eps, running_mean, running_var, momentum, statistics)
    return op(x, weight, bias)
