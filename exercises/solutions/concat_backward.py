"""Reference solution for the concat_backward task."""
import numpy as np

from minidense.autograd import Function, Tensor


class Concat(Function):
    def __init__(self, axis=1):
        self.axis = axis

    def forward(self, *arrays):
        self.sizes = [a.shape[self.axis] for a in arrays]
        return np.concatenate(arrays, axis=self.axis)

    def backward(self, grad):
        parts = np.split(grad.data, np.cumsum(self.sizes)[:-1], axis=self.axis)
        return tuple(Tensor(part) for part in parts)


def concat(tensors, axis=1):
    """Given: concatenate a list of Tensors with the Concat Function."""
    return Concat(axis)(*tensors)
