"""Task im2col: turn every receptive field of an image batch into a column.

Run the tests:  python -m pytest exercises/tests/test_im2col.py
"""
import numpy as np


def im2col(x, kh, kw, stride=1, padding=0):
    """Copy every kh x kw window of the zero-padded input into one column.

    x:        (N, C, H, W) array
    returns:  cols of shape (N, C*kh*kw, OH*OW), where
              OH = (H + 2*padding - kh) // stride + 1   and   OW likewise with W, kw.

        cols[n, (c, i, j), (r, s)] = xpad[n, c, r*stride + i, s*stride + j]

    The row index (c, i, j) is flattened as c*kh*kw + i*kw + j (channel slowest), the column index
    (r, s) as r*OW + s. xpad is x with ``padding`` rows/columns of zeros on every side.

    Hints: np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))) pads only the spatial axes. A loop over the
    kh*kw kernel offsets is enough: for offset (i, j) the pixels of all windows are the strided
    slice xpad[:, :, i:i + stride*OH:stride, j:j + stride*OW:stride].
    """
    raise NotImplementedError("im2col: implement im2col(x, kh, kw, stride, padding)")
