"""Arithmetic: + - * / ** and matrix multiply, with NumPy broadcasting.

When an input was broadcast in the forward pass, its gradient is summed back to its own shape
(``sum_to``): every copy of a broadcast value contributed to the output, so their gradients add.
"""
import numpy

from .. import backend
from ..autograd import Function, ShapeError, Tensor
from ..kernels import kernel, textbook_kernel
from .shape import sum_to, transpose


class _Elementwise(Function):
    """Two inputs combined element by element, after NumPy broadcasting."""

    def __call__(self, a, b):
        shapes = [tuple(v.shape) for v in (a, b) if hasattr(v, "shape")]
        try:
            numpy.broadcast_shapes(*shapes)
        except ValueError:
            raise ShapeError(f"{self.name}: shapes {', '.join(map(str, shapes))} cannot be "
                             f"broadcast together; each axis, counted from the right, must have "
                             f"equal sizes or size 1 (reshape one of them)") from None
        return super().__call__(a, b)


@textbook_kernel("add")
def add_arrays(a, b):
    return a + b


class Add(_Elementwise):
    """y = a + b.   dL/da = dL/dy,  dL/db = dL/dy   (each summed to its input's shape)"""

    saves_inputs = False        # backward reads only the inputs' shapes

    def forward(self, a, b):
        return kernel("add", a, b)(a, b)

    def backward(self, gy):
        a_shape, b_shape = self.input_shapes
        return sum_to(gy, a_shape), sum_to(gy, b_shape)


class Sub(_Elementwise):
    """y = a - b.   dL/da = dL/dy,  dL/db = -dL/dy"""

    saves_inputs = False        # backward reads only the inputs' shapes

    def forward(self, a, b):
        return a - b

    def backward(self, gy):
        a_shape, b_shape = self.input_shapes
        return sum_to(gy, a_shape), sum_to(-gy, b_shape)


class Mul(_Elementwise):
    """y = a * b.   dL/da = dL/dy * b,  dL/db = dL/dy * a"""

    def forward(self, a, b):
        return a * b

    def backward(self, gy):
        (a, b), (need_a, need_b) = self.inputs, self.needs_input_grad
        return (sum_to(gy * b, a.shape) if need_a else None,
                sum_to(gy * a, b.shape) if need_b else None)


class Div(_Elementwise):
    """y = a / b.   dL/da = dL/dy / b,  dL/db = -dL/dy * a / b**2"""

    def forward(self, a, b):
        return a / b

    def backward(self, gy):
        (a, b), (need_a, need_b) = self.inputs, self.needs_input_grad
        return (sum_to(gy / b, a.shape) if need_a else None,
                sum_to(-gy * a / (b * b), b.shape) if need_b else None)


class Neg(Function):
    """y = -x.   dL/dx = -dL/dy"""

    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


class Pow(Function):
    """y = x ** c for a constant c.   dL/dx = dL/dy * c * x ** (c - 1)

    An integer tensor to a non-integer power gives float32, as in PyTorch (``[4, 9] ** 0.5`` is
    ``[2., 3.]``); to a negative integer power it is an error, as in NumPy.
    """

    def __init__(self, exponent):
        self.exponent = exponent

    def forward(self, x):
        xp = backend.get_array_module(x)
        integral = isinstance(self.exponent, (int, numpy.integer))
        if x.dtype.kind in "iub" and integral and self.exponent < 0:
            raise ValueError(f"pow: an integer tensor (dtype {x.dtype}) to the negative power "
                             f"{self.exponent} has no integer result; convert it first, e.g. "
                             f"x.float() ** {self.exponent}")
        if x.dtype.kind in "iub" and not integral:
            x = x.astype(xp.float32)
        return x ** xp.asarray(self.exponent, dtype=x.dtype)

    def backward(self, gy):
        x, c = self.inputs[0], self.exponent
        return gy * c * x ** (c - 1)

class MatMul(Function):
    """y = a @ b (batched over leading axes).   dL/da = dL/dy @ b^T,  dL/db = a^T @ dL/dy"""

    def forward(self, a, b):
        if a.ndim < 2 or b.ndim < 2:
            raise ShapeError(f"matmul: both operands need at least 2 dimensions, got {a.shape} @ "
                             f"{b.shape}; reshape a vector to (1, n) or (n, 1)")
        if a.shape[-1] != b.shape[-2]:
            raise ShapeError(f"matmul: inner dimensions differ, {a.shape} @ {b.shape} "
                             f"({a.shape[-1]} != {b.shape[-2]})")
        return a @ b

    def backward(self, gy):
        (a, b), (need_a, need_b) = self.inputs, self.needs_input_grad
        return (sum_to(gy @ transpose(b, -1, -2), a.shape) if need_a else None,
                sum_to(transpose(a, -1, -2) @ gy, b.shape) if need_b else None)


def add(a, b):
    return Add()(a, b)


def sub(a, b):
    return Sub()(a, b)


def mul(a, b):
    return Mul()(a, b)


def div(a, b):
    return Div()(a, b)


def neg(x):
    return Neg()(x)


def pow(x, exponent):
    if isinstance(exponent, Tensor):
        raise TypeError("pow: the exponent must be a Python number; for a tensor exponent write "
                        "exp(b * log(a))")
    return Pow(exponent)(x)


def matmul(a, b):
    return MatMul()(a, b)
