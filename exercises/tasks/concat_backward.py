"""Task concat_backward: concatenation as a minidense Function (DenseNet's every-layer connection).

Run the tests:  python -m pytest exercises/tests/test_concat_backward.py
"""
import numpy as np

from minidense.autograd import Function, Tensor


class Concat(Function):
    """Concatenate arrays along ``axis``: forward on arrays, backward on gradient Tensors.

    forward(*arrays) -> one array, e.g. shapes (N, 3, H, W) and (N, 5, H, W) -> (N, 8, H, W) for
        axis=1. Remember the sizes along ``axis`` (self.sizes = [...]) for backward.
    backward(grad) -> one gradient Tensor per input: the slice of grad.data that came from that
        input (here grad.data[:, :3] and grad.data[:, 3:]), each wrapped as Tensor(array).

    The engine (minidense.autograd) calls forward with the inputs' arrays and backward with the
    gradient of the output, and adds up gradients of inputs used more than once, as in DenseNet,
    where the block's input is concatenated into every later layer's input.
    Hints: np.concatenate; np.cumsum(self.sizes)[:-1] gives the cut points for np.split.
    Negative axes (axis=-1) should work as in NumPy.
    """

    def __init__(self, axis=1):
        self.axis = axis

    def forward(self, *arrays):
        raise NotImplementedError("concat_backward: implement Concat.forward(*arrays)")

    def backward(self, grad):
        raise NotImplementedError("concat_backward: implement Concat.backward(grad)")


def concat(tensors, axis=1):
    """Given: concatenate a list of Tensors with the Concat Function."""
    return Concat(axis)(*tensors)
