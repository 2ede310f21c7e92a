"""Asks for far more memory than the worker may have."""
import numpy as np


def im2col(x, kh, kw, stride=1, padding=0):
    return np.ones((1 << 34,), dtype=np.uint8)
