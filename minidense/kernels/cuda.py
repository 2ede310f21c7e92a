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
* A convolution builds its columns with one copy (the kh*kw shifted views of the padded input,
  stacked) and multiplies once for the whole batch; a 1x1 convolution is the product alone. The
  weight gradient multiplies the matrices as they lie in memory (cuBLAS reads a transposed
  operand by a flag), so no transposed copy is made, and for stride 1 the input gradient is the
  convolution of dL/dy with the flipped kernel instead of col2im's kh*kw scattered additions.

``cupy.fuse`` compiles the Python function into one CUDA kernel the first time it meets new
argument types. On the CPU emulation of CuPy (``cupy_emulation.py``) it runs the same Python
function and counts one launch, so the test suite checks these kernels' numbers against the
textbook kernels and counts their launches without a GPU.
"""
import functools

from .. import backend
from ..ops.conv import conv2d_backward_im2col
from ..ops.normalization import channel_axes, per_channel
from ..ops.windows import kernel_offsets, output_size
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


def _columns(x, kernel_size, stride, padding):
    """im2col in two copies: the padded input, then its kh*kw shifted views stacked along a new
    axis. Returns (N, C*kh*kw, OH*OW), the textbook im2col's layout."""
    xp = backend.get_array_module(x)
    (n, c, h, w), (ph, pw) = x.shape, padding
    out_hw = (output_size(h, kernel_size[0], stride[0], ph),
              output_size(w, kernel_size[1], stride[1], pw))
    if ph or pw:
        padded = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=x.dtype)
        padded[:, :, ph:ph + h, pw:pw + w] = x
    else:
        padded = x
    views = [padded[:, :, rows, columns]
             for _, _, rows, columns in kernel_offsets(kernel_size, stride, out_hw)]
    return xp.stack(views, axis=2).reshape(n, c * kernel_size[0] * kernel_size[1], -1), out_hw


@fast_kernel("conv2d_forward", array_module="cupy")
def conv2d_forward(x, weight, stride, padding):
    """y[n] = W2 @ columns(x)[n] for the whole batch in one batched product (no bias)."""
    xp = backend.get_array_module(x)
    n, out_channels = x.shape[0], weight.shape[0]
    if _is_pointwise(weight, stride, padding):
        y = xp.matmul(weight.reshape(out_channels, -1), x.reshape(n, x.shape[1], -1))
        return y.reshape(n, out_channels, *x.shape[2:])
    cols, out_hw = _columns(x, weight.shape[2:], stride, padding)
    return xp.matmul(weight.reshape(out_channels, -1), cols).reshape(n, out_channels, *out_hw)


@fast_kernel("conv2d_backward", array_module="cupy")
def conv2d_backward(gy, x, weight, stride, padding, need_x=True, need_weight=True):
    """dL/dW2 = sum_n dL/dy[n] @ columns(x)[n]^T, the transposed operand read in place; for
    stride 1, dL/dx = the convolution of dL/dy with the kernel flipped and its channel axes
    swapped, padded by kh-1-ph (what col2im's scattered additions add up to); otherwise the
    textbook's col2im."""
    xp = backend.get_array_module(gy)
    n, out_channels = gy.shape[:2]
    kh, kw = weight.shape[2:]
    gx = gw = None
    if need_weight:
        if _is_pointwise(weight, stride, padding):
            cols = x.reshape(n, x.shape[1], -1)
        else:
            cols, _ = _columns(x, (kh, kw), stride, padding)
        gy_matrix = gy.reshape(n, out_channels, -1)
        gw = xp.matmul(gy_matrix, cols.transpose(0, 2, 1)).sum(axis=0).reshape(weight.shape)
    if need_x:
        if _is_pointwise(weight, stride, padding):
            gx = xp.matmul(weight.reshape(out_channels, -1).T, gy.reshape(n, out_channels, -1))
            gx = gx.reshape(x.shape)
        elif stride == (1, 1) and padding[0] <= kh - 1 and padding[1] <= kw - 1:
            flipped = xp.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
            gx = conv2d_forward(gy, flipped, (1, 1), (kh - 1 - padding[0], kw - 1 - padding[1]))
        else:
            gx, _ = conv2d_backward_im2col(gy, x, weight, stride, padding, need_weight=False)
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
