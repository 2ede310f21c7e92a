"""Reference solution for the conv2d_backward task."""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from minidense.ops.conv import col2im, im2col


def conv2d_forward(x, w, b, stride=1, padding=0):
    """Given: out[n, o, r, s] = b[o] + sum_{c,i,j} w[o, c, i, j] * xpad[n, c, r*stride + i, s*stride + j]."""
    xpad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    windows = sliding_window_view(xpad, w.shape[2:], axis=(2, 3))[:, :, ::stride, ::stride]
    out = np.einsum("ncrsij,ocij->nors", windows, w) + b.reshape(1, -1, 1, 1)
    return out, (x, w, b, stride, padding)


def conv2d_backward(dout, cache):
    x, w, b, stride, padding = cache
    n, out_channels = dout.shape[:2]
    kernel = w.shape[2:]
    dy = dout.reshape(n, out_channels, -1)
    cols = im2col(x, kernel, stride, padding)
    dw = np.matmul(dy, cols.transpose(0, 2, 1)).sum(axis=0).reshape(w.shape)
    dcols = np.matmul(w.reshape(out_channels, -1).T, dy)
    dx = col2im(dcols, x.shape, kernel, stride, padding)
    return dx, dw, dy.sum(axis=(0, 2))
