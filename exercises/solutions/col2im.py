"""Reference solution for the col2im task."""
import numpy as np


def col2im(cols, x_shape, kh, kw, stride=1, padding=0):
    n, c, h, w = x_shape
    oh = (h + 2 * padding - kh) // stride + 1
    ow = (w + 2 * padding - kw) // stride + 1
    cols = cols.reshape(n, c, kh, kw, oh, ow)
    xpad = np.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            xpad[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride] += cols[:, :, i, j]
    return xpad[:, :, padding:padding + h, padding:padding + w]
