"""Task conv2d_forward: a 2-D convolution (cross-correlation, as in every framework).

Run the tests:  python -m pytest exercises/tests/test_conv2d_forward.py
You may use the library's im2col: ``from minidense.ops.conv import im2col``.
"""
import numpy as np


def conv2d_forward(x, w, b, stride=1, padding=0):
    """out = conv2d(x, w) + b.

    x:  (N, C, H, W)      w: (O, C, kh, kw)      b: (O,)
    returns (out, cache): out of shape (N, O, OH, OW), OH = (H + 2*padding - kh) // stride + 1,
    and a cache of anything a backward pass would need, e.g. (x, w, b, stride, padding).

        out[n, o, r, s] = b[o] + sum_{c, i, j} w[o, c, i, j] * xpad[n, c, r*stride + i, s*stride + j]

    Hint: with cols = im2col(x, (kh, kw), stride, padding) of shape (N, C*kh*kw, OH*OW), the whole
    convolution is one matrix product: w.reshape(O, -1) @ cols -> (N, O, OH*OW). Reshape, add b.
    """
    raise NotImplementedError("conv2d_forward: implement conv2d_forward(x, w, b, stride, padding)")
