"""Task avgpool_backward: the gradient of 2-D average pooling.

Run the tests:  python -m pytest exercises/tests/test_avgpool_backward.py
The forward pass is given (no padding).
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def avgpool_forward(x, kernel_size, stride):
    """Given: out[n, c, r, s] = mean of the window x[n, c, r*stride:r*stride + k, s*stride:s*stride + k]."""
    windows = sliding_window_view(x, (kernel_size, kernel_size), axis=(2, 3))
    out = windows[:, :, ::stride, ::stride].mean(axis=(4, 5))
    return out, (x.shape, kernel_size, stride)


def avgpool_backward(dout, cache):
    """dx = dL/dx given dout = dL/dout.

    dout:  (N, C, OH, OW)      cache: (x_shape, kernel_size, stride) from avgpool_forward
    returns dx of shape x_shape.

    Every input in the k x k window of out[n, c, r, s] contributed 1/k**2 of it, so
        dx[n, c, r*stride + i, s*stride + j] += dout[n, c, r, s] / k**2     for 0 <= i, j < k.
    Windows overlap when stride < k: use +=, the contributions add up. Rows and columns no window
    covers (when (H - k) is not a multiple of the stride) get 0.
    """
    raise NotImplementedError("avgpool_backward: implement avgpool_backward(dout, cache)")
