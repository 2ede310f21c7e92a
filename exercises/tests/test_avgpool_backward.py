"""Graded tests for the avgpool_backward task (10 points, 1 of them in a hidden test).

The forward pass and its cache come from the stub's given code on the grader's side; the
student's code is asked only for the backward pass."""
import numpy as np

import minidense as md
from forbidden_names import POOLING
from given import given
from minidense.grading import points
from minidense.grading.testing import assert_close, tensor_op
from minidense.ops.pooling import avg_pool2d as reference_avg_pool2d

TASK = "avgpool_backward"
FORBIDDEN = POOLING
avgpool_forward = given(TASK, "avgpool_forward")


def backward(student, x, dout_values, kernel_size, stride):
    out, cache = avgpool_forward(x, kernel_size, stride)
    return student.avgpool_backward(np.asarray(dout_values, dtype=float).reshape(out.shape), cache)


def check_against_library(student, x, kernel_size, stride, rng):
    out, cache = avgpool_forward(x, kernel_size, stride)
    dout = rng.standard_normal(out.shape)
    reference_x = md.tensor(x, requires_grad=True)
    reference_avg_pool2d(reference_x, kernel_size, stride).backward(md.tensor(dout))
    assert_close(student.avgpool_backward(dout, cache), reference_x.grad.numpy(), "dx",
                 rtol=1e-10)


@points(1)
def test_shape(student, rng):
    x = rng.standard_normal((2, 3, 7, 6))
    out, cache = avgpool_forward(x, 3, 2)
    assert student.avgpool_backward(np.ones_like(out), cache).shape == x.shape


@points(2)
def test_hand_example_two_by_two(student):
    dx = backward(student, np.zeros((1, 1, 4, 4)), [[1.0, 2.0], [3.0, 4.0]], 2, 2)
    expected = np.kron([[1.0, 2.0], [3.0, 4.0]], np.ones((2, 2))) / 4.0
    assert_close(dx[0, 0], expected, "dx")


@points(2)
def test_overlapping_windows_add_up(student):
    dx = backward(student, np.zeros((1, 1, 3, 3)), np.ones(4), 2, 1)
    assert_close(dx[0, 0], np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 4.0, "dx",
                 known_mistakes={"windows overlap when stride < kernel size: add (+=) each "
                                 "window's share, do not overwrite it":
                                 np.full((3, 3), 0.25)})


@points(3)
def test_gradcheck_with_random_upstream(student, rng):
    op = tensor_op(lambda x: avgpool_forward(x, 3, 2), student.avgpool_backward)
    md.gradcheck(op, md.tensor(rng.standard_normal((2, 2, 7, 6)), requires_grad=True))


@points(1)
def test_matches_library_backward(student, rng):
    check_against_library(student, rng.standard_normal((2, 3, 6, 6)), 2, 2, rng)
