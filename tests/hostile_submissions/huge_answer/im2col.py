"""Answers with an array larger than the grader accepts."""
import numpy as np


def im2col(x, kh, kw, stride=1, padding=0):
    return np.zeros(300 << 20, dtype=np.uint8)
