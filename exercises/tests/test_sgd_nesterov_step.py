"""Graded tests for the sgd_nesterov_step task (10 points, 1 of them in a hidden test)."""
import numpy as np

import minidense as md
from forbidden_names import OPTIMIZERS
from minidense.grading import in_out, points
from minidense.grading.testing import assert_close
from minidense.nn import Parameter
from minidense.optim import SGD

TASK = "sgd_nesterov_step"
FORBIDDEN = OPTIMIZERS


@points(2)
def test_first_step_starts_the_buffer(student):
    param, grad = np.array([1.0, -2.0]), np.array([0.5, 1.0])
    new_param, buffer = student.sgd_nesterov_step(param, grad, None, lr=0.1, momentum=0.9)
    np.testing.assert_allclose(buffer, grad)
    np.testing.assert_allclose(new_param, param - 0.1 * (grad + 0.9 * grad))


@points(2)
def test_second_step_by_hand(student):
    param, buffer = np.array([1.0]), np.array([2.0])
    new_param, new_buffer = student.sgd_nesterov_step(param, np.array([1.0]), buffer, lr=0.5,
                                                      momentum=0.5)
    np.testing.assert_allclose(new_buffer, [0.5 * 2.0 + 1.0])            # 2.0
    np.testing.assert_allclose(new_param, [1.0 - 0.5 * (1.0 + 0.5 * 2.0)])  # 0.0


@points(2)
def test_weight_decay_joins_the_gradient(student):
    param, grad = np.array([2.0]), np.array([0.0])
    new_param, buffer = student.sgd_nesterov_step(param, grad, None, lr=0.1, momentum=0.9,
                                                  weight_decay=0.5)
    np.testing.assert_allclose(buffer, [1.0])                              # 0 + 0.5 * 2
    np.testing.assert_allclose(new_param, [2.0 - 0.1 * (1.0 + 0.9 * 1.0)])


def check_against_library(student, rng, shape, steps, **settings):
    """``steps`` steps of the student's function and of the library's SGD on the same gradients
    (the student's buffer goes back into the student's next step, as in training)."""
    start = rng.standard_normal(shape)
    weight = Parameter(md.tensor(start.copy()))
    optimizer = SGD([weight], nesterov=True, **settings)
    param, buffer = start.copy(), None
    for _ in range(steps):
        grad = rng.standard_normal(start.shape)
        weight.grad = md.tensor(grad.copy())
        optimizer.step()
        param, buffer = student.sgd_nesterov_step(param, grad, buffer, **settings)
    assert_close(param, weight.numpy(), f"param after {steps} steps", rtol=1e-12)


@points(2)
def test_matches_library_sgd_over_five_steps(student, rng):
    check_against_library(student, rng, (3, 4), 5, lr=0.1, momentum=0.9, weight_decay=1e-4)


@points(1)
def test_arguments_are_not_modified(student, rng):
    param, grad, buffer = (rng.standard_normal(5) for _ in range(3))
    saved = param.copy(), grad.copy(), buffer.copy()
    student.sgd_nesterov_step(in_out(param), in_out(grad), in_out(buffer), lr=0.1, momentum=0.9,
                              weight_decay=0.1)
    for now, before in zip((param, grad, buffer), saved):
        np.testing.assert_array_equal(now, before)
