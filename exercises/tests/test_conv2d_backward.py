"""Graded tests for the conv2d_backward task (10 points)."""
import numpy as np

import minidense as md
from forbidden_names import CONV2D
from minidense.grading import points
from minidense.grading.testing import tensor_op
from minidense.ops.conv import conv2d as reference_conv2d

TASK = "conv2d_backward"
FORBIDDEN = CONV2D


def random_problem(rng, x_shape=(2, 3, 5, 6), w_shape=(4, 3, 3, 3)):
    return rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])


def check_gradient(student, rng, wanted):
    """md.gradcheck (float64, random upstream gradient) on the inputs named in ``wanted``."""
    op = tensor_op(lambda x, w, b: student.conv2d_forward(x, w, b, stride=2, padding=1),
                   student.conv2d_backward)
    arrays = random_problem(rng, (2, 2, 5, 5), (3, 2, 3, 3))
    tensors = [md.tensor(a, dtype=md.float64, requires_grad=name in wanted)
               for a, name in zip(arrays, "xwb")]
    md.gradcheck(op, tensors)


@points(1)
def test_gradient_shapes(student, rng):
    x, w, b = random_problem(rng)
    out, cache = student.conv2d_forward(x, w, b, stride=1, padding=1)
    dx, dw, db = student.conv2d_backward(np.ones_like(out), cache)
    assert (dx.shape, dw.shape, db.shape) == (x.shape, w.shape, b.shape)


@points(1)
def test_bias_gradient(student, rng):
    x, w, b = random_problem(rng)
    out, cache = student.conv2d_forward(x, w, b)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(student.conv2d_backward(dout, cache)[2], dout.sum(axis=(0, 2, 3)))


@points(2)
def test_gradcheck_input(student, rng):
    check_gradient(student, rng, "x")


@points(2)
def test_gradcheck_weight(student, rng):
    check_gradient(student, rng, "w")


@points(2)
def test_matches_library_backward(student, rng):
    x, w, b = random_problem(rng)
    out, cache = student.conv2d_forward(x, w, b, stride=2, padding=1)
    dout = rng.standard_normal(out.shape)
    tensors = [md.tensor(a, requires_grad=True) for a in (x, w, b)]
    reference_conv2d(*tensors, stride=2, padding=1).backward(md.tensor(dout))
    for mine, reference in zip(student.conv2d_backward(dout, cache), tensors):
        np.testing.assert_allclose(mine, reference.grad.numpy(), rtol=1e-9, atol=1e-12)


@points(2)
def test_stride_larger_than_kernel_skips_pixels(student, rng):
    x, w, b = random_problem(rng, (1, 2, 5, 5), (3, 2, 1, 1))
    out, cache = student.conv2d_forward(x, w, b, stride=2)
    dx = student.conv2d_backward(rng.standard_normal(out.shape), cache)[0]
    np.testing.assert_array_equal(dx[:, :, 1::2, :], 0.0)       # rows no window touched
    np.testing.assert_array_equal(dx[:, :, :, 1::2], 0.0)
    assert np.all(dx[:, :, ::2, ::2] != 0.0)
