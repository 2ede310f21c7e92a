"""Every differentiable op, one family per file, forward and backward side by side: the textbook.

    arithmetic.py   + - * / ** @            elementwise.py  exp log sqrt abs relu sigmoid tanh
    reduction.py    sum mean max min         shape.py        reshape transpose [] broadcast to
    concat.py       cat split stack

Where an op has a faster way to the same numbers it asks for its kernel by name; the fast kernels
live apart, in minidense/kernels/, and ``md.use_kernels("reference")`` runs the textbook ones.
The bottom of this file attaches the operators and methods to Tensor (``a + b`` calls ``add``).
"""
from ..autograd import Tensor
from .arithmetic import add, div, matmul, mul, neg, pow, sub
from .elementwise import abs, exp, log, relu, sigmoid, sqrt, tanh
from .concat import cat, split, stack
from .reduction import argmax, max, mean, min, sum
from .shape import broadcast_to, flatten, getitem, permute, reshape, sum_to, to, transpose


def _comparison(name):
    def compare(self, other):
        other = other.data if isinstance(other, Tensor) else other
        return Tensor(getattr(self.data, name)(other))
    compare.__name__ = name
    return compare


def _attach_tensor_methods():
    T = Tensor
    T.__add__ = T.__radd__ = lambda a, b: add(a, b)
    T.__sub__ = lambda a, b: sub(a, b)
    T.__rsub__ = lambda a, b: sub(b, a)
    T.__mul__ = T.__rmul__ = lambda a, b: mul(a, b)
    T.__truediv__ = lambda a, b: div(a, b)
    T.__rtruediv__ = lambda a, b: div(b, a)
    T.__neg__ = lambda a: neg(a)
    T.__pow__ = lambda a, c: pow(a, c)
    T.__rpow__ = lambda a, base: exp(a * log(a.data.dtype.type(base)))
    T.__matmul__ = lambda a, b: matmul(a, b)
    T.__rmatmul__ = lambda a, b: matmul(b, a)
    T.__getitem__ = lambda a, index: getitem(a, index)
    for name in ("__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__ne__"):
        setattr(T, name, _comparison(name))   # set after class creation: Tensor stays hashable
    for fn in (exp, log, sqrt, abs, relu, sigmoid, tanh, sum, mean, max, min, argmax, reshape,
               transpose, permute, flatten, broadcast_to, sum_to):
        setattr(T, fn.__name__, fn)
    T.view = reshape
    T.matmul = matmul
    T.pow = pow
    T.to = lambda self, device=None, dtype=None: to(self, device, dtype)
    T.cpu = lambda self: to(self, "cpu")
    T.cuda = lambda self: to(self, "cuda")
    T.float = lambda self: to(self, dtype="float32")
    T.double = lambda self: to(self, dtype="float64")
    T.astype = lambda self, dtype: to(self, dtype=dtype)
    T.T = property(lambda self: transpose(self))


_attach_tensor_methods()

# The neural-network families (their functional API is minidense.nn.functional):
#   conv.py conv2d, im2col/col2im    normalization.py batch_norm    pooling.py avg/max/adaptive pools
#   activation.py dropout softmax log_softmax                       loss.py cross_entropy nll_loss
#   windows.py: the sliding-window geometry conv.py and pooling.py share
from .activation import dropout, log_softmax, softmax
from .conv import col2im, col2im_naive, conv2d, conv2d_naive, im2col, im2col_naive
from .loss import cross_entropy, nll_loss
from .normalization import batch_norm
from .pooling import adaptive_avg_pool2d, avg_pool2d, max_pool2d

Tensor.softmax = softmax
Tensor.log_softmax = log_softmax
