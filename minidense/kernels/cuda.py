"""GPU kernels (CuPy): the textbook's numbers in fewer, larger launches.

On a GPU the arithmetic of a DenseNet training step is cheap; what costs is the host issuing the
kernels (each CuPy call spends 10-20 us of Python and driver time, and a step makes thousands)
and every time the host waits for the device. So on CuPy arrays these kernels replace the
textbook ones:

* Elementwise chains are fused into one kernel with ``cupy.fuse``: batch norm's scale-shift-ReLU,
  its input gradient, the ReLU mask, 1/sqrt(var + eps), and SGD's whole update with momentum and
  weight decay (9 kernels per parameter before, 1 now).
* Per-channel sums are reductions over N, H, W (one kernel each), not ``einsum``, which CuPy
  without cuTENSOR runs as two transposing copies and a batched product.
* A stride-1 convolution multiplies first, for the whole batch in one product, then shifts and
  adds the kh*kw partial outputs, which have only O channels (the CPU's fast kernel does the same
  image by image); a 1x1 convolution is the product alone. The backward pass shifts dL/dy into
  the kh*kw offsets once (O channels again) and takes one product each for dL/dx and dL/dW, the
  transposed operand read as it lies in memory (cuBLAS takes the transpose as a flag).

``cupy.fuse`` compiles the Python function into one CUDA kernel the first time it meets new
argument types. On the CPU emulation of CuPy (``cupy_emulation.py``) it runs the same Python
function and counts one launch, so the test suite checks these kernels' numbers against the
textbook kernels and counts their launches without a GPU.
"""
import functools

from .. import backend
from ..ops.conv import conv2d_backward_im2col, conv2d_forward_im2col
from ..ops.normalization import channel_axes, per_channel
from ..ops.windows import output_size
from . import fast_kernel


# ------------------------------------------------------------------------------------------------
# The fused elementwise functions, compiled once per array module
# ------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def fused(xp):
    """The fused kernels for the array module ``xp`` (CuPy, or its CPU emulation)."""
    maximum, sqrt = xp.maximum, xp.sqrt

    def scale_shift(x_hat, gamma, beta):
        return x_hat * gamma + beta

    def scale_shift_relu(x_hat, gamma, beta):
        return maximum(x_hat * gamma + beta, 0)

    def relu_mask(gy, activated):                     # dL/dz = dL/da * [a > 0]
        return gy * (activated > 0)

    def inverse_std(var, eps):
        return 1 / sqrt(var + eps)

    def batch_norm_input_grad(g, x_hat, gamma, inv_std, sum_g, sum_g_xhat, inv_m):
        # dL/dx = gamma / sigma * (dL/dy - (sum(dL/dy) + x_hat * sum(dL/dy * x_hat)) / M)
        return gamma * inv_std * (g - (sum_g + x_hat * sum_g_xhat) * inv_m)

    def scaled(g, gamma, inv_std):                    # evaluation mode: dL/dx = dL/dy gamma/sigma
        return g * gamma * inv_std

    def sgd_nesterov(param, grad, buf, lr, momentum, weight_decay):
        # PyTorch's rule with dampening 0 (optim/sgd.py); buf starts at 0, so the first step's
        # buf = 0 * momentum + g = g exactly, as the rule's "buf = g on the first step" says.
        g = grad + weight_decay * param
        buf *= momentum
        buf += g
        param -= lr * (g + momentum * buf)

    def sgd_momentum(param, grad, buf, lr, momentum, weight_decay):
        buf *= momentum
        buf += grad + weight_decay * param
        param -= lr * buf

    def sgd_plain(param, grad, lr, weight_decay):
        param -= lr * (grad + weight_decay * param)

    functions = (scale_shift, scale_shift_relu, relu_mask, inverse_std, batch_norm_input_grad,
                 scaled, sgd_nesterov, sgd_momentum, sgd_plain)
    return _Fused({f.__name__: xp.fuse(kernel_name=f.__name__)(f) for f in functions})


class _Fused(dict):
    __getattr__ = dict.__getitem__


# ------------------------------------------------------------------------------------------------
# Batch norm
# ------------------------------------------------------------------------------------------------
@fast_kernel("batch_statistics", array_module="cupy")
def batch_statistics(x, eps=1e-5, out=None):
    """(x_hat, inv_std, mean, var) as the textbook kernel returns them, x_hat written into ``out``
    when given: the mean, the centring, the variance (two kernels), 1/sigma and the scaling."""
    xp, axes = backend.get_array_module(x), channel_axes(x)
    mean = x.mean(axis=axes, keepdims=True)
    centred = xp.subtract(x, mean, out=out)
    var = (centred * centred).mean(axis=axes, keepdims=True)
    inv_std = fused(xp).inverse_std(var, x.dtype.type(eps))
    centred *= inv_std
    return centred, inv_std, mean.reshape(-1), var.reshape(-1)


@fast_kernel("scale_shift", array_module="cupy")
def scale_shift(x_hat, gamma, beta, relu=False):
    """gamma * x_hat + beta per channel, with ``relu`` max(., 0) too: one kernel."""
    kernels = fused(backend.get_array_module(x_hat))
    kernel = kernels.scale_shift_relu if relu else kernels.scale_shift
    return kernel(x_hat, per_channel(gamma, x_hat.ndim), per_channel(beta, x_hat.ndim))


@fast_kernel("scale_shift_relu", array_module="cupy")
def scale_shift_relu(x_hat, gamma, beta):
    return scale_shift(x_hat, gamma, beta, relu=True)


@fast_kernel("batch_norm_backward", array_module="cupy")
def batch_norm_backward(gy, x_hat, inv_std, gamma, training, need_x=True, need_gamma=True,
                        need_beta=True, relu_output=None):
    """The textbook backward in five kernels: the ReLU mask (for a fused BN-ReLU, whose output is
    ``relu_output``), two per-channel sums as reductions, and dL/dx fused into one."""
    xp, axes = backend.get_array_module(gy), channel_axes(gy)
    kernels = fused(xp)
    g = gy if relu_output is None else kernels.relu_mask(gy, relu_output)
    sum_g = g.sum(axis=axes)
    sum_g_xhat = (g * x_hat).sum(axis=axes) if (need_gamma or need_x and training) else None
    gx = None
    if need_x:
        gamma_c = per_channel(gamma, gy.ndim)
        if training:
            gx = kernels.batch_norm_input_grad(
                g, x_hat, gamma_c, inv_std, per_channel(sum_g, gy.ndim),
                per_channel(sum_g_xhat, gy.ndim), gy.dtype.type(gy.shape[1] / gy.size))
        else:
            gx = kernels.scaled(g, gamma_c, inv_std)
    return gx, (sum_g_xhat if need_gamma else None), (sum_g if need_beta else None)


@fast_kernel("batch_norm_relu_backward", array_module="cupy")
def batch_norm_relu_backward(gy, relu_output, x_hat, inv_std, gamma, training, need_x=True,
                             need_gamma=True, need_beta=True):
    return batch_norm_backward(gy, x_hat, inv_std, gamma, training, need_x, need_gamma,
                               need_beta, relu_output=relu_output)


# ------------------------------------------------------------------------------------------------
# Convolution
# ------------------------------------------------------------------------------------------------
def _is_pointwise(weight, stride, padding):
    return weight.shape[2:] == (1, 1) and stride == (1, 1) and padding == (0, 0)


def _pad(a, ph, pw):
    """a (N, C, H, W) with ph zero rows above and below and pw zero columns on each side."""
    if not (ph or pw):
        return a
    n, c, h, w = a.shape
    padded = backend.get_array_module(a).zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=a.dtype)
    padded[:, :, ph:ph + h, pw:pw + w] = a
    return padded


def _offsets(kernel_size):
    return [(i, j) for i in range(kernel_size[0]) for j in range(kernel_size[1])]


@fast_kernel("conv2d_forward", array_module="cupy")
def conv2d_forward(x, weight, stride, padding):
    """Stride 1: multiply first, for the whole batch in one product, then shift and add,

        partial[n, (i, j)] = W[:, :, i, j] @ x[n]     (O maps per offset)
        y[n, :, r, s] = sum_ij partial[n, (i, j)][:, r + i - ph, s + j - pw]

    so only the kh*kw partial outputs of O channels each are copied, never kh*kw copies of the
    input (C channels). A 1x1 convolution is the product alone; other strides take the textbook
    kernel."""
    if stride != (1, 1):
        return conv2d_forward_im2col(x, weight, stride, padding)
    xp = backend.get_array_module(x)
    (n, c, h, w), (o, _, kh, kw), (ph, pw) = x.shape, weight.shape, padding
    if _is_pointwise(weight, stride, padding):
        return xp.matmul(weight.reshape(o, c), x.reshape(n, c, h * w)).reshape(n, o, h, w)
    oh, ow = output_size(h, kh, 1, ph), output_size(w, kw, 1, pw)
    by_offset = xp.ascontiguousarray(weight.transpose(2, 3, 0, 1)).reshape(kh * kw * o, c)
    partial = _pad(xp.matmul(by_offset, x.reshape(n, c, h * w)).reshape(n, kh * kw * o, h, w),
                   ph, pw)
    shifted = [partial[:, k * o:(k + 1) * o, i:i + oh, j:j + ow]
               for k, (i, j) in enumerate(_offsets((kh, kw)))]
    return xp.stack(shifted, axis=1).sum(axis=1)


@fast_kernel("conv2d_backward", array_module="cupy")
def conv2d_backward(gy, x, weight, stride, padding, need_x=True, need_weight=True):
    """Stride 1, the mirror image: dL/dy shifted into the kh*kw offsets (an im2col of dL/dy, which
    has O channels, not C), then one product for dL/dx and one for dL/dW over the batch:

        G[n, (o, i, j), p, q] = dL/dy[n, o, p + ph - i, q + pw - j]     (0 outside)
        dL/dx[n] = W^T G[n]        dL/dW = sum_n G[n] x[n]^T

    The transposed operand is read as it lies (cuBLAS takes the transpose as a flag). Other
    strides, and padding wider than the kernel, take the textbook kernel."""
    (n, c, h, w), (o, _, kh, kw), (ph, pw) = x.shape, weight.shape, padding
    if stride != (1, 1) or ph > kh - 1 or pw > kw - 1:
        return conv2d_backward_im2col(gy, x, weight, stride, padding, need_x, need_weight)
    xp = backend.get_array_module(gy)
    if _is_pointwise(weight, stride, padding):
        shifted = gy.reshape(n, o, h * w)
        flat_weight = weight.reshape(o, c)
    else:
        padded = _pad(gy, kh - 1 - ph, kw - 1 - pw)
        views = [padded[:, :, kh - 1 - i:kh - 1 - i + h, kw - 1 - j:kw - 1 - j + w]
                 for i, j in _offsets((kh, kw))]
        shifted = xp.stack(views, axis=2).reshape(n, o * kh * kw, h * w)
        flat_weight = weight.reshape(o, c, kh * kw).transpose(0, 2, 1).reshape(o * kh * kw, c)
    gx = gw = None
    if need_x:
        gx = xp.matmul(flat_weight.T, shifted).reshape(x.shape)
    if need_weight:
        by_offset = xp.matmul(shifted, x.reshape(n, c, h * w).transpose(0, 2, 1)).sum(axis=0)
        gw = xp.ascontiguousarray(by_offset.reshape(o, kh, kw, c).transpose(0, 3, 1, 2))
    return gx, gw


# ------------------------------------------------------------------------------------------------
# SGD
# ------------------------------------------------------------------------------------------------
@fast_kernel("sgd_update", array_module="cupy")
def sgd_update(param, grad, state, lr, momentum, dampening, nesterov, weight_decay):
    """optim/sgd.py's update in one fused kernel (in place on the parameter and its momentum
    buffer). Dampening other than 0 takes the textbook path."""
    xp = backend.get_array_module(param)
    kernels, dtype = fused(xp), param.dtype.type
    if momentum == 0:
        kernels.sgd_plain(param, grad, dtype(lr), dtype(weight_decay))
        return
    if dampening != 0:
        from ..optim.sgd import sgd_update_arrays
        sgd_update_arrays(param, grad, state, lr, momentum, dampening, nesterov, weight_decay)
        return
    if state.get("momentum_buffer") is None:
        state["momentum_buffer"] = xp.zeros_like(param)
    update = kernels.sgd_nesterov if nesterov else kernels.sgd_momentum
    update(param, grad, state["momentum_buffer"], dtype(lr), dtype(momentum), dtype(weight_decay))
