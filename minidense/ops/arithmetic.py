"""Arithmetic: + - * / ** and matrix multiply, with NumPy broadcasting.

When an input was broadcast in the forward pass, its gradient is summed back to its own shape
(``sum_to``): every copy of a broadcast value contributed to the output, so their gradients add.
"""
from .. import backend
from ..autograd import Function, ShapeError, Tensor
from .shape import sum_to, transpose


class Add(Function):
    """y = a + b.   dL/da = dL/dy,  dL/db = dL/dy   (each summed to its input's shape)"""

    def forward(self, a, b):
        return a + b

    def backward(self, gy):
        a, b = self.inputs
        return sum_to(gy, a.shape), sum_to(gy, b.shape)


class Sub(Function):
    """y = a - b.   dL/da = dL/dy,  dL/db = -dL/dy"""

    def forward(self, a, b):
        return a - b

    def backward(self, gy):
        a, b = self.inputs
        return sum_to(gy, a.shape), sum_to(-gy, b.shape)


class Mul(Function):
    """y = a * b.   dL/da = dL/dy * b,  dL/db = dL/dy * a"""

    def forward(self, a, b):
        return a * b

    def backward(self, gy):
        a, b = self.inputs
        return sum_to(gy * b, a.shape), sum_to(gy * a, b.shape)


class Div(Function):
    """y = a / b.   dL/da = dL/dy / b,  dL/db = -dL/dy * a / b**2"""

    def forward(self, a, b):
        return a / b

    def backward(self, gy):
        a, b = self.inputs
        return sum_to(gy / b, a.shape), sum_to(-gy * a / (b * b), b.shape)


class Neg(Function):
    """y = -x.   dL/dx = -dL/dy"""

    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


class Pow(Function):
    """y = x ** c for a constant c.   dL/dx = dL/dy * c * x ** (c - 1)"""

    def __init__(self, exponent):
        self.exponent = exponent

    def forward(self, x):
        return x ** backend.get_array_module(x).asarray(self.exponent, dtype=x.dtype)

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
        a, b = self.inputs
        return sum_to(gy @ transpose(b, -1, -2), a.shape), sum_to(transpose(a, -1, -2) @ gy, b.shape)


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
