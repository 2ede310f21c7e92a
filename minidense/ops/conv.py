"""2-D convolution, in chapter 3's order: the formula as loops, im2col/col2im, then ``Conv2d``.

Shapes (NCHW, PyTorch's layout):

    x       (N, C, H, W)          input batch
    weight  (O, C, kh, kw)        one C x kh x kw filter per output channel
    bias    (O,)
    y       (N, O, OH, OW)        OH = (H + 2 ph - kh) // sh + 1,  OW likewise

    y[n, o, r, s] = bias[o] + sum_{c,i,j} weight[o, c, i, j] * xpad[n, c, r*sh + i, s*sw + j]

``conv2d_naive`` computes exactly this, one output pixel at a time. ``Conv2d`` computes the same
numbers with im2col, which copies every window of the padded input into a column,

    cols[n, (c, i, j), (r, s)] = xpad[n, c, r*sh + i, s*sw + j]        cols: (N, C*kh*kw, OH*OW)

so that, with W2 = weight reshaped to (O, C*kh*kw), the convolution is one matrix product per image,

    y[n] = W2 @ cols[n]

and the backward pass is the product's backward followed by col2im, which adds every column back
into the window it came from (windows overlap when stride < kernel, so their gradients add up):

    dL/dW2 = sum_n dL/dy[n] @ cols[n]^T      dL/dx = col2im(W2^T @ dL/dy[n])      dL/dbias = sum dL/dy

``Conv2d`` asks for its kernels by name (minidense/kernels): the textbook ones are the im2col
functions below; the fast set runs stride 1 as shifted products, split over the cores
(kernels/conv.py). Both give the same numbers; the tests check that.
"""
from .. import backend
from ..autograd import ArrayFunction, ShapeError
from ..kernels import kernel, textbook_kernel
from .windows import check_windows, kernel_offsets, pad2d, pair, unpad2d


# ----------------------------------------------------------------------------------------------
# 1. The formula as loops: slow, and the reference everything else is tested against
# ----------------------------------------------------------------------------------------------
class Conv2dNaive(ArrayFunction):
    """The convolution one output pixel at a time.

    forward:  y[n, o, r, s] = bias[o] + sum(weight[o] * window(n, r, s))
    backward: every output pixel sends dL/dy[n, o, r, s] back to what it multiplied:
              dL/dwindow(n, r, s) += dL/dy[n, o, r, s] * weight[o]
              dL/dweight[o]       += dL/dy[n, o, r, s] * window(n, r, s)
              dL/dbias[o]         += dL/dy[n, o, r, s]
    """

    def __init__(self, stride=1, padding=0):
        self.stride = pair(stride, "stride", "conv2d_naive", 1)
        self.padding = pair(padding, "padding", "conv2d_naive", 0)

    def _windows(self, out_shape, kernel_size):
        """(n, o, r, s, rows, cols) for every output pixel, rows/cols the slices of its window."""
        n, out_channels, oh, ow = out_shape
        (sh, sw), (kh, kw) = self.stride, kernel_size
        for b in range(n):
            for o in range(out_channels):
                for r in range(oh):
                    for s in range(ow):
                        yield b, o, r, s, slice(r * sh, r * sh + kh), slice(s * sw, s * sw + kw)

    def forward(self, x, weight, bias=None):
        oh, ow = check_conv_inputs("conv2d_naive", x, weight, bias, self.stride, self.padding)
        xpad = pad2d(x, self.padding)
        self.save_for_backward(xpad, weight)
        y = backend.get_array_module(x).zeros((x.shape[0], weight.shape[0], oh, ow), x.dtype)
        for b, o, r, s, rows, cols in self._windows(y.shape, weight.shape[2:]):
            y[b, o, r, s] = (xpad[b, :, rows, cols] * weight[o]).sum()
            if bias is not None:
                y[b, o, r, s] += bias[o]
        return y

    def backward(self, gy):
        xpad, weight = self.saved_values
        xp = backend.get_array_module(gy)
        gxpad, gw = xp.zeros_like(xpad), xp.zeros_like(weight)
        for b, o, r, s, rows, cols in self._windows(gy.shape, weight.shape[2:]):
            gxpad[b, :, rows, cols] += gy[b, o, r, s] * weight[o]
            gw[o] += gy[b, o, r, s] * xpad[b, :, rows, cols]
        grads = (unpad2d(gxpad, self.padding), gw)
        return grads + ((gy.sum(axis=(0, 2, 3)),) if len(self.input_shapes) == 3 else ())


def conv2d_naive(x, weight, bias=None, stride=1, padding=0):
    """conv2d with explicit loops: the readable reference the fast ``conv2d`` is tested against."""
    op = Conv2dNaive(stride, padding)
    return op(x, weight) if bias is None else op(x, weight, bias)


def im2col_naive(x, kernel_size, stride=1, padding=0, pad_value=0.0):
    """Every kh x kw window of x (N, C, H, W) as a column, window by window: (N, C*kh*kw, OH*OW)."""
    kh, kw = pair(kernel_size, "kernel_size", "im2col_naive", 1)
    sh, sw = stride = pair(stride, "stride", "im2col_naive", 1)
    padding = pair(padding, "padding", "im2col_naive", 0)
    oh, ow = check_windows("im2col_naive", x.shape, (kh, kw), stride, padding)
    xpad = pad2d(x, padding, pad_value)
    cols = backend.get_array_module(x).empty((x.shape[0], x.shape[1] * kh * kw, oh * ow), x.dtype)
    for b in range(x.shape[0]):
        for r in range(oh):
            for s in range(ow):
                window = xpad[b, :, r * sh:r * sh + kh, s * sw:s * sw + kw]   # (C, kh, kw)
                cols[b, :, r * ow + s] = window.reshape(-1)
    return cols


def col2im_naive(cols, x_shape, kernel_size, stride=1, padding=0):
    """The adjoint of ``im2col_naive``: add every column back into its window, window by window."""
    kh, kw = pair(kernel_size, "kernel_size", "col2im_naive", 1)
    sh, sw = stride = pair(stride, "stride", "col2im_naive", 1)
    ph, pw = padding = pair(padding, "padding", "col2im_naive", 0)
    oh, ow = check_windows("col2im_naive", x_shape, (kh, kw), stride, padding)
    n, c, h, w = x_shape
    xpad = backend.get_array_module(cols).zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    for b in range(n):
        for r in range(oh):
            for s in range(ow):
                xpad[b, :, r * sh:r * sh + kh, s * sw:s * sw + kw] += \
                    cols[b, :, r * ow + s].reshape(c, kh, kw)
    return unpad2d(xpad, padding)


# ----------------------------------------------------------------------------------------------
# 2. im2col / col2im: the same columns with a loop over the kh*kw kernel offsets only
# ----------------------------------------------------------------------------------------------
def im2col(x, kernel_size, stride=1, padding=0, pad_value=0.0):
    """Copy every kh x kw window of x (N, C, H, W) into a column: returns (N, C*kh*kw, OH*OW).

    For each kernel offset (i, j), the input pixels that offset touches in all windows form one
    strided slice of the padded input (``kernel_offsets``), so kh*kw slice copies fill the array.
    """
    kh, kw = pair(kernel_size, "kernel_size", "im2col", 1)
    stride, padding = pair(stride, "stride", "im2col", 1), pair(padding, "padding", "im2col", 0)
    oh, ow = check_windows("im2col", x.shape, (kh, kw), stride, padding)
    n, c = x.shape[:2]
    xpad = pad2d(x, padding, pad_value)
    cols = backend.get_array_module(x).empty((n, c, kh, kw, oh, ow), dtype=x.dtype)
    for i, j, rows, columns in kernel_offsets((kh, kw), stride, (oh, ow)):
        cols[:, :, i, j] = xpad[:, :, rows, columns]
    return cols.reshape(n, c * kh * kw, oh * ow)


def col2im(cols, x_shape, kernel_size, stride=1, padding=0):
    """The adjoint of im2col: add every column back into its window. Returns (N, C, H, W).

    Where windows overlap, their values add up; that is exactly the gradient of im2col.
    """
    kh, kw = pair(kernel_size, "kernel_size", "col2im", 1)
    stride, padding = pair(stride, "stride", "col2im", 1), pair(padding, "padding", "col2im", 0)
    oh, ow = check_windows("col2im", x_shape, (kh, kw), stride, padding)
    n, c, h, w = x_shape
    if cols.shape != (n, c * kh * kw, oh * ow):
        raise ShapeError(f"col2im: columns of shape {cols.shape} do not fit input shape "
                         f"{tuple(x_shape)} with a {kh}x{kw} kernel (expected "
                         f"{(n, c * kh * kw, oh * ow)})")
    cols = cols.reshape(n, c, kh, kw, oh, ow)
    xpad = backend.get_array_module(cols).zeros(
        (n, c, h + 2 * padding[0], w + 2 * padding[1]), dtype=cols.dtype)
    for i, j, rows, columns in kernel_offsets((kh, kw), stride, (oh, ow)):
        xpad[:, :, rows, columns] += cols[:, :, i, j]
    return unpad2d(xpad, padding)


# ----------------------------------------------------------------------------------------------
# 3. Conv2d: im2col, then one matrix product per image
# ----------------------------------------------------------------------------------------------
@textbook_kernel("conv2d_forward")
def conv2d_forward_im2col(x, weight, stride, padding):
    """y[n] = W2 @ cols[n], with W2 the weight as an (O, C*kh*kw) matrix (no bias)."""
    xp = backend.get_array_module(x)
    out_channels = weight.shape[0]
    oh, ow = check_windows("conv2d", x.shape, weight.shape[2:], stride, padding)
    cols = im2col(x, weight.shape[2:], stride, padding)                # (N, C*kh*kw, OH*OW)
    y = xp.matmul(weight.reshape(out_channels, -1), cols)              # (N, O, OH*OW)
    return y.reshape(x.shape[0], out_channels, oh, ow)


@textbook_kernel("conv2d_backward")
def conv2d_backward_im2col(gy, x, weight, stride, padding, need_x=True, need_weight=True):
    """dL/dW2 = sum_n dL/dy[n] @ cols[n]^T,   dL/dx = col2im(W2^T @ dL/dy[n]); None where not
    needed. The columns are rebuilt rather than kept from the forward pass: one more im2col, but
    the graph does not hold kh*kw copies of the input (9x for 3x3 kernels) until backward."""
    xp = backend.get_array_module(gy)
    n, out_channels = gy.shape[:2]
    gy = gy.reshape(n, out_channels, -1)                               # (N, O, OH*OW)
    gx = gw = None
    if need_weight:
        cols = im2col(x, weight.shape[2:], stride, padding)
        gw = xp.matmul(gy, cols.transpose(0, 2, 1)).sum(axis=0).reshape(weight.shape)
    if need_x:
        gcols = xp.matmul(weight.reshape(out_channels, -1).T, gy)      # (N, C*kh*kw, OH*OW)
        gx = col2im(gcols, x.shape, weight.shape[2:], stride, padding)
    return gx, gw


def check_conv_inputs(op, x, weight, bias, stride, padding):
    """Shapes and dtypes of a convolution's inputs; returns the output size (OH, OW)."""
    if weight.ndim != 4:
        raise ShapeError(f"{op}: weight must be 4-D (out_channels, in_channels, kh, kw), got shape "
                         f"{weight.shape}")
    if x.ndim == 4 and x.shape[1] != weight.shape[1]:
        raise ShapeError(f"{op}: input has {x.shape[1]} channels (shape {x.shape}) but the weight "
                         f"expects {weight.shape[1]} (weight shape {weight.shape})")
    size = check_windows(op, x.shape, weight.shape[2:], stride, padding)
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ShapeError(f"{op}: bias must have shape ({weight.shape[0]},) to match weight "
                         f"{weight.shape}, got {bias.shape}")
    for name, a in (("weight", weight), ("bias", bias)):
        if a is not None and a.dtype != x.dtype:
            raise TypeError(f"{op}: input is {x.dtype} but {name} is {a.dtype}; convert one of "
                            f"them (e.g. x.float() or layer.to(dtype)) so both match")
    return size


class Conv2d(ArrayFunction):
    """y = conv2d(x, weight) + bias, by the kernels ``conv2d_forward`` / ``conv2d_backward``
    (textbook: ``conv2d_forward_im2col`` / ``conv2d_backward_im2col`` above).

        forward   y[n] = W2 @ im2col(x)[n] + bias
        backward  dL/dx = col2im(W2^T @ dL/dy[n]),  dL/dW2 = sum_n dL/dy[n] @ im2col(x)[n]^T,
                  dL/dbias = dL/dy summed over batch and pixels

    ``Conv2d(stride, padding)(x, weight)`` or ``(x, weight, bias)``; stride and padding are
    checked here, once, and handed to the kernels as (height, width) pairs.
    """

    def __init__(self, stride=1, padding=0):
        self.stride = pair(stride, "stride", "conv2d", 1)
        self.padding = pair(padding, "padding", "conv2d", 0)

    def forward(self, x, weight, bias=None):
        check_conv_inputs("conv2d", x, weight, bias, self.stride, self.padding)
        self.save_for_backward(x, weight)
        y = kernel("conv2d_forward", x)(x, weight, self.stride, self.padding)
        if bias is not None:
            y += bias.reshape(1, -1, 1, 1)
        return y

    def backward(self, gy):
        x, weight = self.saved_values
        need_x, need_weight, *need_bias = self.needs_input_grad     # need_bias: [] without bias
        gx, gw = kernel("conv2d_backward", gy)(gy, x, weight, self.stride, self.padding,
                                               need_x, need_weight)
        return (gx, gw) + tuple(gy.sum(axis=(0, 2, 3)) if need else None for need in need_bias)


def conv2d(x, weight, bias=None, stride=1, padding=0):
    """2-D convolution (PyTorch's F.conv2d): x (N, C, H, W), weight (O, C, kh, kw), bias (O,)."""
    op = Conv2d(stride, padding)
    return op(x, weight) if bias is None else op(x, weight, bias)
