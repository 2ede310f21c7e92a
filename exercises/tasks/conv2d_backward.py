"""Task conv2d_backward: the gradients of a 2-D convolution.

Run the tests:  python -m pytest exercises/tests/test_conv2d_backward.py
The forward pass is given. You may use the library's im2col/col2im:
``from minidense.ops.conv import im2col, col2im``.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def conv2d_forward(x, w, b, stride=1, padding=0):
    """Given: out[n, o, r, s] = b[o] + sum_{c,i,j} w[o, c, i, j] * xpad[n, c, r*stride + i, s*stride + j]."""
    xpad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    windows = sliding_window_view(xpad, w.shape[2:], axis=(2, 3))[:, :, ::stride, ::stride]
    out = np.einsum("ncrsij,ocij->nors", windows, w) + b.reshape(1, -1, 1, 1)
    return out, (x, w, b, stride, padding)


def conv2d_backward(dout, cache):
    """Gradients of the loss with respect to x, w and b, given dout = dL/dout.

    dout:   (N, O, OH, OW)          cache: (x, w, b, stride, padding) from conv2d_forward
    returns (dx, dw, db) with the shapes of x (N, C, H, W), w (O, C, kh, kw) and b (O,).

    Each output pixel out[n, o, r, s] used the window xpad[n, :, r*stride:r*stride + kh,
    s*stride:s*stride + kw] and the filter w[o], so it sends dout[n, o, r, s] back to both:

        dw[o]      += dout[n, o, r, s] * window(n, r, s)
        dwindow    += dout[n, o, r, s] * w[o]            (then drop the padding)
        db[o]       = sum of dout[:, o]

    In matrix form, with cols = im2col(x) (N, C*kh*kw, OH*OW) and dY = dout.reshape(N, O, OH*OW):
        dw = sum_n dY[n] @ cols[n].T  (reshaped to w.shape),   dx = col2im(w2.T @ dY),
    where w2 = w.reshape(O, -1).
    Expected: md.gradcheck reports a max relative error around 1e-8 for a correct backward.
    """
    raise NotImplementedError("conv2d_backward: implement conv2d_backward(dout, cache)")
