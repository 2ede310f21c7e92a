"""Graded tests for the maxpool_backward task (10 points, 2 of them in hidden tests).

The forward pass and its cache come from the stub's given code on the grader's side; the
student's code is asked only for the backward pass."""
import numpy as np

import minidense as md
from forbidden_names import POOLING
from given import given
from minidense.grading import points
from minidense.grading.testing import assert_close, tensor_op
from minidense.ops.pooling import max_pool2d as reference_max_pool2d

TASK = "maxpool_backward"
FORBIDDEN = POOLING
maxpool_forward = given(TASK, "maxpool_forward")


def backward(student, x, dout_values, kernel_size, stride):
    out, cache = maxpool_forward(x, kernel_size, stride)
    return student.maxpool_backward(np.asarray(dout_values, dtype=float).reshape(out.shape), cache)


@points(1)
def test_shape(student, rng):
    x = rng.standard_normal((2, 3, 7, 6))
    out, cache = maxpool_forward(x, 3, 2)
    assert student.maxpool_backward(np.ones_like(out), cache).shape == x.shape


@points(2)
def test_hand_example(student):
    x = np.array([[1, 5, 0, 2],
                  [3, 2, 7, 1],
                  [0, 0, 1, 1],
                  [9, 0, 2, 3.0]]).reshape(1, 1, 4, 4)
    dx = backward(student, x, [[10, 20], [30, 40]], 2, 2)
    expected = np.array([[0, 10, 0, 0],
                         [0, 0, 20, 0],
                         [0, 0, 0, 0],
                         [30, 0, 0, 40.0]])
    assert_close(dx[0, 0], expected, "dx", rtol=0)


@points(2)
def test_overlapping_windows_add_up(student):
    x = np.array([[0, 1, 0], [1, 9, 1], [0, 1, 0.0]]).reshape(1, 1, 3, 3)
    dx = backward(student, x, [1.0, 2.0, 3.0, 4.0], 2, 1)     # every window's max is the centre
    assert_close(dx[0, 0], [[0, 0, 0], [0, 10, 0], [0, 0, 0]], "dx", rtol=0,
                 known_mistakes={"windows overlap when stride < kernel size: add (+=) each "
                                 "window's gradient at its maximum, do not overwrite it":
                                 [[0, 0, 0], [0, 4, 0], [0, 0, 0]]})


@points(2)
def test_gradcheck_with_random_upstream(student, rng):
    op = tensor_op(lambda x: maxpool_forward(x, 3, 2), student.maxpool_backward)
    md.gradcheck(op, md.tensor(rng.standard_normal((2, 2, 7, 6)), requires_grad=True))


@points(1)
def test_ties_send_the_gradient_once(student):
    dx = backward(student, np.ones((1, 1, 4, 4)), [[1.0, 2.0], [3.0, 4.0]], 2, 2)
    blocks = dx[0, 0].reshape(2, 2, 2, 2).transpose(0, 2, 1, 3).reshape(4, 4)   # one row per window
    np.testing.assert_array_equal(blocks.sum(axis=1), [1, 2, 3, 4])
    np.testing.assert_array_equal((blocks != 0).sum(axis=1), [1, 1, 1, 1])


def check_against_library(student, x, kernel_size, stride, rng):
    out, cache = maxpool_forward(x, kernel_size, stride)
    dout = rng.standard_normal(out.shape)
    reference_x = md.tensor(x, requires_grad=True)
    reference_max_pool2d(reference_x, kernel_size, stride).backward(md.tensor(dout))
    assert_close(student.maxpool_backward(dout, cache), reference_x.grad.numpy(), "dx")
