"""Sliding windows: the geometry convolution (conv.py) and pooling (pooling.py) share.

A kh x kw window slides over the input, padded with ph rows and pw columns on each side, in steps
of (sh, sw). Along one axis it fits

    OH = (H + 2 ph - kh) // sh + 1          times (OW likewise),

and window (r, s) covers the padded rows r*sh .. r*sh + kh - 1 and columns s*sw .. s*sw + kw - 1.
Seen from one kernel offset (i, j) instead, the pixels that offset touches in all OH x OW windows
form one strided slice of the padded input, xpad[:, :, i::sh, j::sw] cut to OH x OW
(``kernel_offsets``): a loop over the kh*kw offsets visits every window at once.
"""
from .. import backend
from ..autograd import ShapeError


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


def unpad2d(xpad, padding):
    """The inverse of ``pad2d``: the padded array cut back to the input's rows and columns."""
    (ph, pw), (height, width) = padding, xpad.shape[2:]
    return xpad[:, :, ph:height - ph, pw:width - pw]
