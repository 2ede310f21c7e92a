"""Task sgd_nesterov_step: one step of SGD with Nesterov momentum and weight decay (PyTorch's rule).

Run the tests:  python -m pytest exercises/tests/test_sgd_nesterov_step.py
"""
import numpy as np


def sgd_nesterov_step(param, grad, buffer, lr, momentum=0.9, weight_decay=0.0):
    """Return (new_param, new_buffer) after one update; do not modify the arguments.

    param, grad: arrays of the same shape.   buffer: the momentum buffer from the previous step,
    or None on the first step.

        g = grad + weight_decay * param
        buffer = g                              on the first step (buffer is None)
        buffer = momentum * buffer + g          afterwards
        g = g + momentum * buffer               (Nesterov: look one momentum step ahead)
        param = param - lr * g

    DenseNet trains with lr 0.1, momentum 0.9, weight decay 1e-4.
    """
    raise NotImplementedError("sgd_nesterov_step: implement sgd_nesterov_step(param, grad, ...)")
