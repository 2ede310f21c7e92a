"""Pooling: average, max and adaptive average over kh x kw windows of an (N, C, H, W) input.

Pooling works on every channel separately, with the window geometry of convolution (windows.py).
It loops over the kh*kw kernel offsets: for offset (i, j), the pixels that offset sees in all
OH x OW windows form one strided slice of the padded input, x_(i,j) = xpad[:, :, i::sh, j::sw]
(cut to OH x OW). So no columns are stored, unlike im2col:

    avg:  y = sum_(i,j) x_(i,j) / (kh*kw)           dL/dx_(i,j) += dL/dy / (kh*kw)
    max:  y = max_(i,j) x_(i,j), remembering which   dL/dx_(i,j) += dL/dy where (i,j) won
          offset won (the first one on ties)

The backward adds into the slices, so windows that overlap add their gradients up. Global average
pooling (one window over the whole input: DenseNet's last pooling) is simply a mean over H and W.
For small windows the loop over offsets is the fast way even when they tile the input: DenseNet-40's
first transition (2x2 windows, batch 64) pools in 25 ms this way and in 115 ms as a reshape to
(N, C, OH, 2, OW, 2) and a mean over the two inner axes, which NumPy reduces slowly.

Average pooling asks for its kernels by name (``avg_pool2d_forward``/``avg_pool2d_backward``); the
fast ones (kernels/pooling.py) run the functions below on parts of the batch at once.
"""
from .. import backend
from ..autograd import ArrayFunction, ShapeError
from ..kernels import kernel, textbook_kernel
from .windows import check_windows, kernel_offsets, pad2d, pair, unpad2d


def offset_slices(x_shape, kernel_size, stride, padding, op="pooling"):
    """(k, rows, columns) for each kernel offset, k counting offsets row by row (see windows.py)."""
    out_size = check_windows(op, x_shape, kernel_size, stride, padding)
    for i, j, rows, columns in kernel_offsets(kernel_size, stride, out_size):
        yield i * kernel_size[1] + j, rows, columns


def add_into_windows(x_shape, kernel_size, stride, padding, gradient_at_offset, like):
    """dL/dx of shape ``x_shape``: gradient_at_offset(k) added into the slice of each offset k,
    then the padding dropped. ``like``: an array of the gradient's module and dtype."""
    (ph, pw), (h, w) = padding, x_shape[2:]
    gxpad = backend.get_array_module(like).zeros(tuple(x_shape[:2]) + (h + 2 * ph, w + 2 * pw),
                                                 dtype=like.dtype)
    for k, rows, columns in offset_slices(x_shape, kernel_size, stride, padding):
        gxpad[:, :, rows, columns] += gradient_at_offset(k)
    return unpad2d(gxpad, padding)


@textbook_kernel("avg_pool2d_forward")
def average_windows(x, kernel_size, stride, padding):
    """y = the sum of the kh*kw offset slices of the zero-padded x, divided by kh*kw."""
    xpad = pad2d(x, padding)
    total = None
    for _, rows, columns in offset_slices(x.shape, kernel_size, stride, padding):
        if total is None:
            total = xpad[:, :, rows, columns].copy()
        else:
            total += xpad[:, :, rows, columns]
    return total / x.dtype.type(kernel_size[0] * kernel_size[1])


@textbook_kernel("avg_pool2d_backward")
def average_windows_backward(gy, x_shape, kernel_size, stride, padding):
    """dL/dx: every window hands dL/dy / (kh*kw) to each of its pixels."""
    share = gy / gy.dtype.type(kernel_size[0] * kernel_size[1])
    return add_into_windows(x_shape, kernel_size, stride, padding, lambda k: share, gy)


class _Pool2d(ArrayFunction):
    """What average and max pooling share: their arguments, checked once."""

    def __init__(self, op, kernel_size, stride=None, padding=0):
        self.op = op
        self.kernel_size = pair(kernel_size, "kernel_size", op, 1)
        self.stride = self.kernel_size if stride is None else pair(stride, "stride", op, 1)
        self.padding = pair(padding, "padding", op, 0)
        if self.padding[0] > self.kernel_size[0] // 2 or self.padding[1] > self.kernel_size[1] // 2:
            raise ValueError(f"{op}: padding {self.padding} must be at most half the kernel size "
                             f"{self.kernel_size}")


class AvgPool2d(_Pool2d):
    """y = mean of each kh x kw window (padding zeros count, like PyTorch's count_include_pad).

    dL/dx[p] = sum over the windows w containing p of dL/dy[w] / (kh*kw)
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__("avg_pool2d", kernel_size, stride, padding)

    def _is_global(self, x_shape):
        """True when there is one window, at the top left, and no padding: a plain mean does it
        (rows/columns beyond the window, which PyTorch drops too, are left out)."""
        out_size = check_windows(self.op, x_shape, self.kernel_size, self.stride, self.padding)
        return out_size == (1, 1) and self.padding == (0, 0)

    def forward(self, x):
        kh, kw = self.kernel_size
        if self._is_global(x.shape):
            return x[:, :, :kh, :kw].mean(axis=(2, 3), keepdims=True)
        return kernel("avg_pool2d_forward", x)(x, self.kernel_size, self.stride, self.padding)

    def backward(self, gy):
        x_shape, (kh, kw) = self.input_shapes[0], self.kernel_size
        if self._is_global(x_shape):
            gx = backend.get_array_module(gy).zeros(x_shape, dtype=gy.dtype)
            gx[:, :, :kh, :kw] = gy / gy.dtype.type(kh * kw)   # (N, C, 1, 1) over the window
            return gx
        return kernel("avg_pool2d_backward", gy)(gy, x_shape, self.kernel_size, self.stride,
                                                 self.padding)


class MaxPool2d(_Pool2d):
    """y = max of each kh x kw window (padding is -inf, so it never wins).

    dL/dx[p] = sum over the windows w whose maximum is p of dL/dy[w]. With ties the first maximum
    in the window (row by row) takes the whole gradient, as in PyTorch. A NaN in a window is its
    maximum (the first NaN takes the gradient), so NaN propagates as in PyTorch.
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__("max_pool2d", kernel_size, stride, padding)

    def forward(self, x):
        xp = backend.get_array_module(x)
        xpad = pad2d(x, self.padding, value=-float("inf"))
        best = winner = None
        for k, rows, columns in offset_slices(x.shape, self.kernel_size, self.stride, self.padding,
                                              self.op):
            candidate = xpad[:, :, rows, columns]
            if best is None:
                best, winner = candidate.copy(), xp.zeros(candidate.shape, dtype=xp.int32)
                continue
            # strictly greater: earlier offsets win ties; a NaN wins over any number (PyTorch
            # propagates NaN through max pooling)
            better = (candidate > best) | (xp.isnan(candidate) & ~xp.isnan(best))
            xp.copyto(best, candidate, where=better)
            xp.copyto(winner, winner.dtype.type(k), where=better)   # a NumPy scalar, as CuPy wants
        self.save_for_backward(winner)             # (N, C, OH, OW): which offset held the max
        return best

    def backward(self, gy):
        (winner,) = self.saved_values
        xp, zero = backend.get_array_module(gy), gy.dtype.type(0)

        def gradient_at_offset(k):                 # dL/dy where offset k won, 0 elsewhere
            return xp.where(winner == k, gy, zero)
        return add_into_windows(self.input_shapes[0], self.kernel_size, self.stride, self.padding,
                                gradient_at_offset, gy)


class AdaptiveAvgPool2d(ArrayFunction):
    """Average pooling to a fixed output size (oh, ow), windows chosen by the input size: output
    cell (r, s) averages rows floor(r H / oh) .. ceil((r + 1) H / oh) - 1 (columns likewise).

    dL/dx[p] = sum over the cells whose window contains p of dL/dy[cell] / (window area)

    (adaptive_avg_pool2d uses the faster AvgPool2d whenever H and W divide evenly.)
    """

    def __init__(self, output_size):
        self.output_size = output_size

    def _cells(self, x_shape):
        """(r, s, row slice, column slice) of each output cell."""
        (h, w), (oh, ow) = x_shape[2:], self.output_size
        for r in range(oh):
            rows = slice(r * h // oh, -(-(r + 1) * h // oh))
            for s in range(ow):
                yield r, s, rows, slice(s * w // ow, -(-(s + 1) * w // ow))

    def forward(self, x):
        xp = backend.get_array_module(x)
        y = xp.empty(x.shape[:2] + tuple(self.output_size), dtype=x.dtype)
        for r, s, rows, cols in self._cells(x.shape):
            y[:, :, r, s] = x[:, :, rows, cols].mean(axis=(2, 3))
        return y

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        x_shape = self.input_shapes[0]
        gx = xp.zeros(x_shape, dtype=gy.dtype)
        for r, s, rows, cols in self._cells(x_shape):
            area = (rows.stop - rows.start) * (cols.stop - cols.start)
            gx[:, :, rows, cols] += (gy[:, :, r, s] / gy.dtype.type(area))[:, :, None, None]
        return gx


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Average pooling (PyTorch's F.avg_pool2d, count_include_pad=True); stride defaults to the
    kernel size."""
    return AvgPool2d(kernel_size, stride, padding)(x)


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Max pooling (PyTorch's F.max_pool2d); stride defaults to the kernel size."""
    return MaxPool2d(kernel_size, stride, padding)(x)


def adaptive_avg_pool2d(x, output_size):
    """Average pooling to ``output_size`` (an int, a pair, or None in a pair to keep that size);
    ``adaptive_avg_pool2d(x, 1)`` is the global average pool."""
    if x.ndim != 4:
        raise ShapeError(f"adaptive_avg_pool2d: expected a 4-D input (N, C, H, W), got shape {x.shape}")
    h, w = x.shape[2:]
    sizes = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size,) * 2
    sizes = (h if sizes[0] is None else sizes[0], w if sizes[1] is None else sizes[1])
    oh, ow = pair(sizes, "output_size", "adaptive_avg_pool2d", 1)
    if h % oh == 0 and w % ow == 0:
        return avg_pool2d(x, (h // oh, w // ow))
    return AdaptiveAvgPool2d((oh, ow))(x)
