"""Task col2im: the adjoint of im2col, used by the convolution's backward pass.

Run the tests:  python -m pytest exercises/tests/test_col2im.py
"""
import numpy as np


def col2im(cols, x_shape, kh, kw, stride=1, padding=0):
    """Add every column back into the window it was copied from.

    cols:     (N, C*kh*kw, OH*OW), laid out as im2col makes it:
              cols[n, (c, i, j), (r, s)] belongs to xpad[n, c, r*stride + i, s*stride + j]
    x_shape:  (N, C, H, W), the shape of the image the columns came from
    returns:  (N, C, H, W) array

    Windows overlap when stride < kernel size; overlapping values ADD UP (col2im is the gradient of
    im2col, and a pixel used by several windows collects the gradient of each). Accumulate into a
    zero-padded (N, C, H + 2p, W + 2p) array, then cut the padding off.

    Check: for any x and c, sum(im2col(x) * c) == sum(x * col2im(c)).
    Hint: reshape cols to (N, C, kh, kw, OH, OW) and loop over the kernel offsets (i, j), adding
    cols[:, :, i, j] into the strided slice xpad[:, :, i:i + stride*OH:stride, j:j + stride*OW:stride].
    """
    raise NotImplementedError("col2im: implement col2im(cols, x_shape, kh, kw, stride, padding)")
