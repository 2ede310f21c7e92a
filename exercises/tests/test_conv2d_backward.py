"""Graded tests for the conv2d_backward task (10 points, 1 of them in a hidden test).

The forward pass and its cache come from the stub's given code on the grader's side; the
student's code is asked only for the backward pass."""
import numpy as np

import minidense as md
from forbidden_names import CONV2D
from given import given
from minidense.grading import points
from minidense.grading.testing import assert_close, tensor_op
from minidense.ops.conv import conv2d as reference_conv2d

TASK = "conv2d_backward"
FORBIDDEN = CONV2D
conv2d_forward = given(TASK, "conv2d_forward")


def random_problem(rng, x_shape=(2, 3, 5, 6), w_shape=(4, 3, 3, 3)):
    return rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])


def check_gradient(student, rng, wanted):
    """md.gradcheck (float64, random upstream gradient) on the inputs named in ``wanted``."""
    op = tensor_op(lambda x, w, b: conv2d_forward(x, w, b, stride=2, padding=1),
                   student.conv2d_backward)
    arrays = random_problem(rng, (2, 2, 5, 5), (3, 2, 3, 3))
    tensors = [md.tensor(a, dtype=md.float64, requires_grad=name in wanted)
               for a, name in zip(arrays, "xwb")]
    md.gradcheck(op, tensors)


@points(1)
def test_gradient_shapes(student, rng):
    x, w, b = random_problem(rng)
    out, cache = conv2d_forward(x, w, b, stride=1, padding=1)
    dx, dw, db = student.conv2d_backward(np.ones_like(out), cache)
    assert (dx.shape, dw.shape, db.shape) == (x.shape, w.shape, b.shape)


@points(1)
def test_bias_gradient(student, rng):
    x, w, b = random_problem(rng)
    out, cache = conv2d_forward(x, w, b)
    dout = rng.standard_normal(out.shape)
    assert_close(student.conv2d_backward(dout, cache)[2], dout.sum(axis=(0, 2, 3)), "db")


@points(2)
def test_gradcheck_input(student, rng):
    check_gradient(student, rng, "x")


@points(2)
def test_gradcheck_weight(student, rng):
    check_gradient(student, rng, "w")


def check_against_library(student, x, w, b, stride, padding, rng):
    out, cache = conv2d_forward(x, w, b, stride=stride, padding=padding)
    dout = rng.standard_normal(out.shape)
    tensors = [md.tensor(a, requires_grad=True) for a in (x, w, b)]
    reference_conv2d(*tensors, stride=stride, padding=padding).backward(md.tensor(dout))
    grads = student.conv2d_backward(dout, cache)
    assert isinstance(grads, (tuple, list)) and len(grads) == 3, "return (dx, dw, db)"
    for mine, reference, name in zip(grads, tensors, ("dx", "dw", "db")):
        assert_close(mine, reference.grad.numpy(), name, rtol=1e-9, atol=1e-12)


@points(1)
def test_matches_library_backward(student, rng):
    check_against_library(student, *random_problem(rng), 2, 1, rng)


@points(2)
def test_stride_larger_than_kernel_skips_pixels(student, rng):
    x, w, b = random_problem(rng, (1, 2, 5, 5), (3, 2, 1, 1))
    out, cache = conv2d_forward(x, w, b, stride=2)
    dx = student.conv2d_backward(rng.standard_normal(out.shape), cache)[0]
    assert_close(dx[:, :, 1::2, :], np.zeros((1, 2, 2, 5)), "dx on rows no window touched")
    assert_close(dx[:, :, :, 1::2], np.zeros((1, 2, 5, 2)), "dx on columns no window touched")
    assert np.all(dx[:, :, ::2, ::2] != 0.0)
