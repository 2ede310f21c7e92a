"""Task maxpool_backward: the gradient of 2-D max pooling.

Run the tests:  python -m pytest exercises/tests/test_maxpool_backward.py
The forward pass is given (no padding).
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def maxpool_forward(x, kernel_size, stride):
    """Given: out[n, c, r, s] = max of the window x[n, c, r*stride:r*stride + k, s*stride:s*stride + k]."""
    windows = sliding_window_view(x, (kernel_size, kernel_size), axis=(2, 3))
    out = windows[:, :, ::stride, ::stride].max(axis=(4, 5))
    return out, (x, kernel_size, stride)


def maxpool_backward(dout, cache):
    """dx = dL/dx given dout = dL/dout.

    dout:  (N, C, OH, OW)      cache: (x, kernel_size, stride) from maxpool_forward
    returns dx with x's shape.

    Only the largest input of each window affected the output, with slope 1, so the whole of
    dout[n, c, r, s] goes to the position of that window's maximum and every other input of the
    window gets nothing from it. If several inputs tie for the maximum, give it to ONE of them
    (the first in row-major order, as np.argmax does). Overlapping windows (stride < k) may pick
    the same input: add the contributions up.

    Hint: loop over output positions (r, s); for each, np.argmax over the flattened window of all
    (n, c) at once, then np.unravel_index gives the (i, j) offset inside the window.
    """
    raise NotImplementedError("maxpool_backward: implement maxpool_backward(dout, cache)")
