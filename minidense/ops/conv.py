"""2-D convolution: a readable loop version and two fast paths, all checked against each other.

Shapes (NCHW, PyTorch's layout):

    x       (N, C, H, W)          input batch
    weight  (O, C, kh, kw)        one C x kh x kw filter per output channel
    bias    (O,)
    y       (N, O, OH, OW)        OH = (H + 2 ph - kh) // sh + 1,  OW likewise

    y[n, o, r, s] = bias[o] + sum_{c,i,j} weight[o, c, i, j] * xpad[n, c, r*sh + i, s*sw + j]

``conv2d_naive`` computes exactly this, one output pixel at a time. ``conv2d`` computes the same
numbers by one of two paths, chosen in one place (``conv2d_forward`` / ``conv2d_backward``):

    stride 1 (every convolution in a CIFAR DenseNet)   ->  shifted products
    any other stride (e.g. an ImageNet stem's 7x7/2)   ->  im2col

im2col turns the convolution into one matrix multiply. It copies every receptive field (window) of
the padded input into a column:

    cols[n, (c, i, j), (r, s)] = xpad[n, c, r*sh + i, s*sw + j]        cols: (N, C*kh*kw, OH*OW)

so that, with W2 = weight reshaped to (O, C*kh*kw),

    y[n] = W2 @ cols[n]                                (one batched matmul, BLAS does the work)

and the backward pass is the matmul's backward followed by col2im, which adds every column back
into the window it came from (windows overlap when stride < kernel, so their gradients add up):

    dL/dW2   = sum_n dL/dy[n] @ cols[n]^T
    dL/dcols = W2^T @ dL/dy[n]          dL/dx = col2im(dL/dcols)
    dL/dbias = dL/dy summed over n, r, s

Shifted products (stride 1) avoid the columns altogether. im2col copies the input kh*kw times (9x
for 3x3), and with only O = k = 12 output channels the matmul that follows is thin and
memory-bound. Take the product the other way round: multiply first, on the input as it is, then
shift and add the kh*kw partial outputs, which have only O channels each:

    partial[n, i, j] = weight[:, :, i, j] @ x[n]        per image one matmul: (kh*kw*O, C) @ (C, H*W)
    y[n, :, r, s] = sum_{i,j} partial[n, i, j][:, r + i - ph, s + j - pw]     (shift and add)

A 1x1 kernel without padding has one offset and no shift: the convolution is that one matmul
(DenseNet-BC's bottleneck layers and the transitions). The backward pass mirrors it: shift dL/dy
into the kh*kw positions (a small im2col of dL/dy, which has O channels, not C), then one matmul
each for dL/dx and dL/dweight. Same arithmetic, far less memory traffic; the tests check both
paths against ``conv2d_naive``. Every product is taken image by image (x[n] is a C x (H*W)
matrix as it lies in memory; ``matmul`` runs the N products in one call), so no transposed copy
of x, of dL/dx or of y is ever made.
"""
from .. import backend
from ..autograd import ArrayFunction, ShapeError
from . import parallel


# ----------------------------------------------------------------------------------------------
# Arguments and geometry (shared with pooling.py)
# ----------------------------------------------------------------------------------------------
def pair(value, name, op, minimum):
    """An int or a pair of ints -> (height, width) pair, each at least ``minimum``."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(values) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if min(values) < minimum:
        raise ValueError(f"{op}: {name} must be at least {minimum}, got {value!r}")
    return values


def output_size(size, kernel, stride, padding):
    """Number of window positions along one axis: (size + 2 padding - kernel) // stride + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def check_windows(op, x_shape, kernel, stride, padding):
    """Validate a sliding-window op on an NCHW input and return the output size (OH, OW)."""
    if len(x_shape) != 4:
        hint = " (for one image use x.reshape(1, C, H, W))" if len(x_shape) == 3 else ""
        raise ShapeError(f"{op}: expected a 4-D input (N, C, H, W), got shape {tuple(x_shape)}{hint}")
    height, width = x_shape[2] + 2 * padding[0], x_shape[3] + 2 * padding[1]
    if kernel[0] > height or kernel[1] > width:
        raise ShapeError(f"{op}: kernel {kernel[0]}x{kernel[1]} is larger than the padded input "
                         f"{height}x{width} (input shape {tuple(x_shape)}, padding {padding})")
    return (output_size(x_shape[2], kernel[0], stride[0], padding[0]),
            output_size(x_shape[3], kernel[1], stride[1], padding[1]))


def kernel_offsets(kernel, stride, out_size):
    """For each kernel offset (i, j): the rows and columns of the padded input that this offset
    touches across all OH x OW windows, as two strided slices (every sh-th row from row i, ...)."""
    (kh, kw), (sh, sw), (oh, ow) = kernel, stride, out_size
    for i in range(kh):
        for j in range(kw):
            yield i, j, slice(i, i + sh * (oh - 1) + 1, sh), slice(j, j + sw * (ow - 1) + 1, sw)


def pad2d(x, padding, value=0.0):
    """x (N, C, H, W) with ``padding`` = (ph, pw) rows/columns of ``value`` added on each side."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    xp = backend.get_array_module(x)
    n, c, h, w = x.shape
    padded = xp.full((n, c, h + 2 * ph, w + 2 * pw), value, dtype=x.dtype)
    padded[:, :, ph:ph + h, pw:pw + w] = x
    return padded


# ----------------------------------------------------------------------------------------------
# im2col / col2im: the fast versions (a loop over the kh*kw kernel offsets only) ...
# ----------------------------------------------------------------------------------------------
def im2col(x, kernel_size, stride=1, padding=0, pad_value=0.0):
    """Copy every kh x kw window of x (N, C, H, W) into a column: returns (N, C*kh*kw, OH*OW).

    For each kernel offset (i, j), the input pixels that offset touches in all windows form one
    strided slice of the padded input, xpad[:, :, i::sh, j::sw] (cut to OH x OW), so kh*kw slice
    copies fill the whole array.
    """
    kh, kw = pair(kernel_size, "kernel_size", "im2col", 1)
    stride = pair(stride, "stride", "im2col", 1)
    padding = pair(padding, "padding", "im2col", 0)
    oh, ow = check_windows("im2col", x.shape, (kh, kw), stride, padding)
    xp = backend.get_array_module(x)
    n, c = x.shape[:2]
    xpad = pad2d(x, padding, pad_value)
    cols = xp.empty((n, c, kh, kw, oh, ow), dtype=x.dtype)
    for i, j, rows, columns in kernel_offsets((kh, kw), stride, (oh, ow)):
        cols[:, :, i, j] = xpad[:, :, rows, columns]
    return cols.reshape(n, c * kh * kw, oh * ow)


def col2im(cols, x_shape, kernel_size, stride=1, padding=0):
    """The adjoint of im2col: add every column back into its window. Returns (N, C, H, W).

    Where windows overlap, their values add up; that is exactly the gradient of im2col.
    """
    kh, kw = pair(kernel_size, "kernel_size", "col2im", 1)
    stride = pair(stride, "stride", "col2im", 1)
    ph, pw = padding = pair(padding, "padding", "col2im", 0)
    oh, ow = check_windows("col2im", x_shape, (kh, kw), stride, padding)
    n, c, h, w = x_shape
    if cols.shape != (n, c * kh * kw, oh * ow):
        raise ShapeError(f"col2im: columns of shape {cols.shape} do not fit input shape "
                         f"{tuple(x_shape)} with a {kh}x{kw} kernel (expected "
                         f"{(n, c * kh * kw, oh * ow)})")
    xp = backend.get_array_module(cols)
    cols = cols.reshape(n, c, kh, kw, oh, ow)
    xpad = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    for i, j, rows, columns in kernel_offsets((kh, kw), stride, (oh, ow)):
        xpad[:, :, rows, columns] += cols[:, :, i, j]
    return xpad[:, :, ph:ph + h, pw:pw + w]


# ... and the naive ones, one window at a time, to read and to test the fast ones against.
def im2col_naive(x, kernel_size, stride=1, padding=0, pad_value=0.0):
    """Same result as ``im2col``, built window by window with explicit loops."""
    kh, kw = pair(kernel_size, "kernel_size", "im2col_naive", 1)
    sh, sw = stride = pair(stride, "stride", "im2col_naive", 1)
    padding = pair(padding, "padding", "im2col_naive", 0)
    oh, ow = check_windows("im2col_naive", x.shape, (kh, kw), stride, padding)
    xp = backend.get_array_module(x)
    n, c = x.shape[:2]
    xpad = pad2d(x, padding, pad_value)
    cols = xp.empty((n, c * kh * kw, oh * ow), dtype=x.dtype)
    for b in range(n):
        for r in range(oh):
            for s in range(ow):
                window = xpad[b, :, r * sh:r * sh + kh, s * sw:s * sw + kw]   # (C, kh, kw)
                cols[b, :, r * ow + s] = window.reshape(-1)
    return cols


def col2im_naive(cols, x_shape, kernel_size, stride=1, padding=0):
    """Same result as ``col2im``, adding the columns back window by window."""
    kh, kw = pair(kernel_size, "kernel_size", "col2im_naive", 1)
    sh, sw = stride = pair(stride, "stride", "col2im_naive", 1)
    ph, pw = padding = pair(padding, "padding", "col2im_naive", 0)
    oh, ow = check_windows("col2im_naive", x_shape, (kh, kw), stride, padding)
    xp = backend.get_array_module(cols)
    n, c, h, w = x_shape
    xpad = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    for b in range(n):
        for r in range(oh):
            for s in range(ow):
                window = cols[b, :, r * ow + s].reshape(c, kh, kw)
                xpad[b, :, r * sh:r * sh + kh, s * sw:s * sw + kw] += window
    return xpad[:, :, ph:ph + h, pw:pw + w]


# ----------------------------------------------------------------------------------------------
# Convolution on arrays: the one place where the path is chosen
# ----------------------------------------------------------------------------------------------
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


def conv2d_forward(x, weight, bias=None, stride=1, padding=0):
    """y = conv2d(x, weight) + bias on arrays, by one of two paths with the same result:

        stride 1      shifted products: multiply first, then shift and add   (_stride1_forward)
        other stride  im2col, then one matmul                                (_im2col_forward)

    On the CPU a large batch is cut into one part per core and the parts are convolved at once
    (parallel.py): every image is convolved on its own, so each part fills its rows of y.
    """
    stride = pair(stride, "stride", "conv2d", 1)
    padding = pair(padding, "padding", "conv2d", 0)
    oh, ow = check_conv_inputs("conv2d", x, weight, bias, stride, padding)

    def path(x_part, out=None):
        if stride == (1, 1):
            return _stride1_forward(x_part, weight, padding, out)
        return _im2col_forward(x_part, weight, stride, padding, out)

    parts = parallel.parts_for(x)
    if parts == 1:
        y = path(x)
    else:                                                   # the parallel path
        y = backend.get_array_module(x).empty((x.shape[0], weight.shape[0], oh, ow), x.dtype)
        parallel.over_batch(path, x, y, parts=parts, matmul=True)
    if bias is not None:
        y += bias.reshape(1, -1, 1, 1)
    return y


def conv2d_backward(gy, x, weight, stride=1, padding=0, need_x=True, need_weight=True):
    """(dL/dx, dL/dweight) of conv2d from dL/dy, by the path the forward pass took; None where
    not needed. (dL/dbias is dL/dy summed over batch and pixels: it needs neither x nor weight.)

    Split over the batch like the forward pass: each part fills its rows of dL/dx, and dL/dweight
    is the sum of the parts' dL/dweight (a sum over images, like the product it replaces).
    """
    stride = pair(stride, "stride", "conv2d", 1)
    padding = pair(padding, "padding", "conv2d", 0)

    def path(gy_part, x_part, out=None):
        if stride == (1, 1):
            return _stride1_backward(gy_part, x_part, weight, padding, need_x, need_weight, out)
        return _im2col_backward(gy_part, x_part, weight, stride, padding, need_x, need_weight,
                                out)

    parts = parallel.parts_for(x)
    if parts == 1:
        return path(gy, x)
    # the parallel path
    gx = backend.get_array_module(x).empty(x.shape, gy.dtype) if need_x else None
    results = parallel.over_batch(path, gy, x, *([gx] if need_x else []), parts=parts,
                                  matmul=True)
    gw = sum(r[1] for r in results) if need_weight else None
    return gx, gw


# ----------------------------------------------------------------------------------------------
# Any stride: im2col, then one matmul (see the module docstring)
# ----------------------------------------------------------------------------------------------
def _im2col_forward(x, weight, stride, padding, out=None):
    """y[n] = W2 @ cols[n], with W2 the weight as an (O, C*kh*kw) matrix (written into ``out``
    when given)."""
    xp = backend.get_array_module(x)
    out_channels = weight.shape[0]
    oh, ow = check_windows("conv2d", x.shape, weight.shape[2:], stride, padding)
    cols = im2col(x, weight.shape[2:], stride, padding)                # (N, C*kh*kw, OH*OW)
    y = xp.matmul(weight.reshape(out_channels, -1), cols)              # (N, O, OH*OW)
    return _into(out, y.reshape(x.shape[0], out_channels, oh, ow))


def _into(out, a):
    """``a``, copied into ``out`` when an output buffer is given."""
    if out is None:
        return a
    out[...] = a
    return out


def _im2col_backward(gy, x, weight, stride, padding, need_x, need_weight, out=None):
    """dL/dW2 = sum_n dL/dy[n] @ cols[n]^T,   dL/dx = col2im(W2^T @ dL/dy[n]).

    The columns are rebuilt here rather than kept from the forward pass: one more im2col, but the
    graph does not hold kh*kw copies of the input (9x for 3x3 kernels) until backward.
    """
    xp = backend.get_array_module(gy)
    n, out_channels = gy.shape[:2]
    gy = gy.reshape(n, out_channels, -1)                               # (N, O, OH*OW)
    gx = gw = None
    if need_weight:
        cols = im2col(x, weight.shape[2:], stride, padding)
        # sum over images of dL/dy[n] @ cols[n]^T: a batched matmul, then a small sum
        gw = xp.matmul(gy, cols.transpose(0, 2, 1)).sum(axis=0).reshape(weight.shape)
    if need_x:
        gcols = xp.matmul(weight.reshape(out_channels, -1).T, gy)      # (N, C*kh*kw, OH*OW)
        gx = _into(out, col2im(gcols, x.shape, weight.shape[2:], stride, padding))
    return gx, gw


# ----------------------------------------------------------------------------------------------
# Stride 1: multiply first, then shift and add (see the module docstring)
# ----------------------------------------------------------------------------------------------
def _per_image(a):
    """(N, C, H, W) -> (N, C, H*W): each image a C x (H*W) matrix (a view when ``a`` is contiguous)."""
    return a.reshape(a.shape[0], a.shape[1], -1)


def _matmul_into(a, b, out, shape):
    """(a @ b).reshape(shape), written straight into ``out`` when given (the parts of the parallel
    path are C-contiguous, so the product needs no copy)."""
    xp = backend.get_array_module(b)
    if out is None or not out.flags.c_contiguous:
        return _into(out, xp.matmul(a, b).reshape(shape))
    xp.matmul(a, b, out=out.reshape(b.shape[:-2] + (a.shape[-2], b.shape[-1])))
    return out


def _valid_range(out_size, in_size, offset, pad):
    """Output positions r whose input position r + offset - pad lies inside the input."""
    return max(0, pad - offset), min(out_size, in_size + pad - offset)


def _shifts(kernel, padding, out_hw, in_hw):
    """For each kernel offset (i, j): the output slice and the input slice it connects."""
    (kh, kw), (ph, pw) = kernel, padding
    for i in range(kh):
        r0, r1 = _valid_range(out_hw[0], in_hw[0], i, ph)
        for j in range(kw):
            s0, s1 = _valid_range(out_hw[1], in_hw[1], j, pw)
            yield i, j, (slice(r0, r1), slice(s0, s1)), \
                (slice(r0 + i - ph, r1 + i - ph), slice(s0 + j - pw, s1 + j - pw))


def _stride1_forward(x, weight, padding, out=None):
    """y = conv2d(x, weight, stride=1): per image one matmul on x itself, then shift-and-add
    (O channels). Written into ``out`` when given."""
    xp = backend.get_array_module(x)
    n, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    oh, ow = h + 2 * padding[0] - kh + 1, w + 2 * padding[1] - kw + 1
    w_offsets = weight.transpose(2, 3, 0, 1).reshape(kh * kw * o, c)    # rows ordered (i, j, o)
    if (kh, kw) == (1, 1) and tuple(padding) == (0, 0):
        return _matmul_into(w_offsets, _per_image(x), out, (n, o, h, w))  # y[n] = W @ x[n]
    partial = xp.matmul(w_offsets, _per_image(x)).reshape(n, kh, kw, o, h, w)
    if out is None:
        y = xp.zeros((n, o, oh, ow), dtype=partial.dtype)
    else:
        y = out
        y[...] = 0
    for i, j, (rows, cols), (in_rows, in_cols) in _shifts((kh, kw), padding, (oh, ow), (h, w)):
        y[:, :, rows, cols] += partial[:, i, j, :, in_rows, in_cols]
    return y


def _stride1_backward(gy, x, weight, padding, need_x, need_weight, out=None):
    """dL/dx and dL/dweight of the stride-1 convolution, per image n:

    shifted[n, i, j][:, r + i - ph, s + j - pw] = dL/dy[n, :, r, s]    (dL/dy moved to each offset)
    dL/dx[n]   = sum_{i,j,o} weight[o, :, i, j] * shifted[n, i, j, o]  one matmul
    dL/dweight = sum_n x[n] @ shifted[n]^T                            one matmul per image, summed
    """
    xp = backend.get_array_module(gy)
    n, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    oh, ow = gy.shape[2:]
    if (kh, kw) == (1, 1) and tuple(padding) == (0, 0):
        shifted = _per_image(gy)                                         # (N, O, H*W)
    else:
        shifted = xp.zeros((n, kh, kw, o, h, w), dtype=gy.dtype)
        for i, j, (rows, cols), (in_rows, in_cols) in _shifts((kh, kw), padding, (oh, ow), (h, w)):
            shifted[:, i, j, :, in_rows, in_cols] = gy[:, :, rows, cols]
        shifted = shifted.reshape(n, kh * kw * o, h * w)
    gx = gw = None
    if need_x:
        w_by_input = weight.transpose(1, 2, 3, 0).reshape(c, kh * kw * o)   # columns (i, j, o)
        gx = _matmul_into(w_by_input, shifted, out, x.shape)
    if need_weight:
        # per image (C, H*W) @ (H*W, kh*kw*O), BLAS reading shifted[n] transposed in place
        gw_by_input = xp.matmul(_per_image(x), shifted.transpose(0, 2, 1)).sum(axis=0)
        gw = xp.ascontiguousarray(gw_by_input.reshape(c, kh, kw, o).transpose(3, 0, 1, 2))
    return gx, gw


class Conv2d(ArrayFunction):
    """y = conv2d(x, weight) + bias; the module docstring has the math of both paths:

        stride 1       y = sum_(i,j) shift_(i,j)(weight[:, :, i, j] @ x)     shifted products
        other strides  y[n] = W2 @ im2col(x)[n]                              im2col

    dL/dx and dL/dweight come from ``conv2d_backward``, by the same path as the forward pass;
    dL/dbias = dL/dy summed over batch and pixels.

    Called as ``Conv2d(stride, padding)(x, weight)`` or ``(x, weight, bias)``. Its ``forward`` and
    ``backward`` use ``conv2d_forward`` / ``conv2d_backward``, which work on plain arrays too.
    """

    def __init__(self, stride=1, padding=0):
        self.stride = pair(stride, "stride", "conv2d", 1)
        self.padding = pair(padding, "padding", "conv2d", 0)

    def forward(self, x, weight, bias=None):
        self.save_for_backward(x, weight)
        return conv2d_forward(x, weight, bias, self.stride, self.padding)

    def backward(self, gy):
        x, weight = self.saved_values
        need_x, need_weight, *need_bias = self.needs_input_grad     # need_bias: [] without bias
        gx, gw = conv2d_backward(gy, x, weight, self.stride, self.padding, need_x, need_weight)
        return (gx, gw) + tuple(gy.sum(axis=(0, 2, 3)) if need else None for need in need_bias)


def conv2d(x, weight, bias=None, stride=1, padding=0):
    """2-D convolution (PyTorch's F.conv2d): x (N, C, H, W), weight (O, C, kh, kw), bias (O,)."""
    op = Conv2d(stride, padding)
    return op(x, weight) if bias is None else op(x, weight, bias)


# ----------------------------------------------------------------------------------------------
# The reference: a convolution written as the formula, with explicit loops
# ----------------------------------------------------------------------------------------------
class Conv2dNaive(ArrayFunction):
    """The same convolution, one output pixel at a time (slow; for reading and testing).

    forward:  y[n, o, r, s] = bias[o] + sum(weight[o] * window(n, r, s))
    backward: every output pixel sends dL/dy[n, o, r, s] back to what it multiplied:
              dL/dwindow(n, r, s) += dL/dy[n, o, r, s] * weight[o]
              dL/dweight[o]       += dL/dy[n, o, r, s] * window(n, r, s)
              dL/dbias[o]         += dL/dy[n, o, r, s]
    """

    def __init__(self, stride=1, padding=0):
        self.stride = pair(stride, "stride", "conv2d_naive", 1)
        self.padding = pair(padding, "padding", "conv2d_naive", 0)

    def _windows(self, out_shape, kernel):
        """(n, o, r, s, rows, cols) for every output pixel, rows/cols the slices of its window."""
        n, out_channels, oh, ow = out_shape
        (sh, sw), (kh, kw) = self.stride, kernel
        for b in range(n):
            for o in range(out_channels):
                for r in range(oh):
                    for s in range(ow):
                        yield b, o, r, s, slice(r * sh, r * sh + kh), slice(s * sw, s * sw + kw)

    def forward(self, x, weight, bias=None):
        oh, ow = check_conv_inputs("conv2d_naive", x, weight, bias, self.stride, self.padding)
        xp = backend.get_array_module(x)
        xpad = pad2d(x, self.padding)
        self.save_for_backward(xpad, weight)
        y = xp.zeros((x.shape[0], weight.shape[0], oh, ow), dtype=x.dtype)
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
        (ph, pw), (h, w) = self.padding, self.input_shapes[0][2:]
        grads = (gxpad[:, :, ph:ph + h, pw:pw + w], gw)
        if len(self.input_shapes) == 3:
            grads += (gy.sum(axis=(0, 2, 3)),)
        return grads


def conv2d_naive(x, weight, bias=None, stride=1, padding=0):
    """conv2d with explicit loops: the readable reference the fast ``conv2d`` is tested against."""
    op = Conv2dNaive(stride, padding)
    return op(x, weight) if bias is None else op(x, weight, bias)
