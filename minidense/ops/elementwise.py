"""Elementwise math: exp, log, sqrt, abs and the activations relu, sigmoid, tanh.

Each backward multiplies the incoming gradient by the op's local derivative f'(x). The derivative is
written with Tensor ops, so it can itself be differentiated (``create_graph=True``).
"""
from .. import backend
from ..autograd import Function, Tensor


class Exp(Function):
    """y = e^x.   dL/dx = dL/dy * e^x"""

    def forward(self, x):
        return backend.get_array_module(x).exp(x)

    def backward(self, gy):
        return gy * exp(self.inputs[0])


class Log(Function):
    """y = ln x.   dL/dx = dL/dy / x"""

    def forward(self, x):
        return backend.get_array_module(x).log(x)

    def backward(self, gy):
        return gy / self.inputs[0]


class Sqrt(Function):
    """y = sqrt(x).   dL/dx = dL/dy / (2 sqrt(x))"""

    def forward(self, x):
        return backend.get_array_module(x).sqrt(x)

    def backward(self, gy):
        return gy / (2 * sqrt(self.inputs[0]))


class Abs(Function):
    """y = |x|.   dL/dx = dL/dy * sign(x)   (0 at x = 0)"""

    def forward(self, x):
        return backend.get_array_module(x).abs(x)

    def backward(self, gy):
        x = self.inputs[0].data
        return gy * Tensor(backend.get_array_module(x).sign(x))


class ReLU(Function):
    """y = max(x, 0).   dL/dx = dL/dy * [x > 0]"""

    def forward(self, x):
        return backend.get_array_module(x).maximum(x, 0)

    def backward(self, gy):
        x = self.inputs[0].data
        return gy * Tensor((x > 0).astype(x.dtype))


class Sigmoid(Function):
    """y = 1 / (1 + e^-x).   dL/dx = dL/dy * y * (1 - y)"""

    def forward(self, x):
        xp = backend.get_array_module(x)
        return 0.5 * (xp.tanh(0.5 * x) + 1)   # the same function, without overflow for x << 0

    def backward(self, gy):
        y = sigmoid(self.inputs[0])
        return gy * y * (1 - y)


class Tanh(Function):
    """y = tanh(x).   dL/dx = dL/dy * (1 - y^2)"""

    def forward(self, x):
        return backend.get_array_module(x).tanh(x)

    def backward(self, gy):
        y = tanh(self.inputs[0])
        return gy * (1 - y * y)


def exp(x):
    return Exp()(x)


def log(x):
    return Log()(x)


def sqrt(x):
    return Sqrt()(x)


def abs(x):
    return Abs()(x)


def relu(x):
    return ReLU()(x)


def sigmoid(x):
    return Sigmoid()(x)


def tanh(x):
    return Tanh()(x)
