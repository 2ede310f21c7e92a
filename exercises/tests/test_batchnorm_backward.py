"""Graded tests for the batchnorm_backward task (10 points)."""
import numpy as np

import minidense as md
from forbidden_names import BATCH_NORM
from minidense.grading import points
from minidense.grading.testing import tensor_op
from minidense.ops.normalization import batch_norm as reference_batch_norm

TASK = "batchnorm_backward"
FORBIDDEN = BATCH_NORM


def random_problem(rng, shape=(3, 2, 3, 3)):
    return (1.5 + rng.standard_normal(shape), rng.uniform(0.5, 2.0, shape[1]),
            rng.standard_normal(shape[1]))


def check_gradient(student, rng, wanted):
    """md.gradcheck (float64, random upstream gradient) on the inputs named in ``wanted``."""
    op = tensor_op(student.batchnorm_forward, student.batchnorm_backward)
    tensors = [md.tensor(a, dtype=md.float64, requires_grad=name in wanted)
               for a, name in zip(random_problem(rng), ("x", "gamma", "beta"))]
    md.gradcheck(op, tensors)


@points(1)
def test_gradient_shapes(student, rng):
    x, gamma, beta = random_problem(rng)
    out, cache = student.batchnorm_forward(x, gamma, beta)
    dx, dgamma, dbeta = student.batchnorm_backward(np.ones_like(out), cache)
    assert (dx.shape, dgamma.shape, dbeta.shape) == (x.shape, gamma.shape, beta.shape)


@points(2)
def test_gamma_and_beta_gradients(student, rng):
    x, gamma, beta = random_problem(rng)
    out, cache = student.batchnorm_forward(x, gamma, beta)
    dout = rng.standard_normal(out.shape)
    _, dgamma, dbeta = student.batchnorm_backward(dout, cache)
    x_hat = (out - beta.reshape(1, -1, 1, 1)) / gamma.reshape(1, -1, 1, 1)
    np.testing.assert_allclose(dbeta, dout.sum(axis=(0, 2, 3)))
    np.testing.assert_allclose(dgamma, (dout * x_hat).sum(axis=(0, 2, 3)), rtol=1e-10)


@points(3)
def test_gradcheck_input_with_random_upstream(student, rng):
    check_gradient(student, rng, ["x"])


@points(1)
def test_gradcheck_gamma_and_beta(student, rng):
    check_gradient(student, rng, ["gamma", "beta"])


@points(1)
def test_input_gradient_sums_to_zero_per_channel(student, rng):
    # shifting a channel of x by a constant does not change the output, so dx sums to 0
    x, gamma, beta = random_problem(rng)
    out, cache = student.batchnorm_forward(x, gamma, beta)
    dx = student.batchnorm_backward(rng.standard_normal(out.shape), cache)[0]
    np.testing.assert_allclose(dx.sum(axis=(0, 2, 3)), 0.0, atol=1e-10)


@points(2)
def test_matches_library_backward(student, rng):
    x, gamma, beta = random_problem(rng, (4, 3, 2, 5))
    out, cache = student.batchnorm_forward(x, gamma, beta)
    dout = rng.standard_normal(out.shape)
    tensors = [md.tensor(a, requires_grad=True) for a in (x, gamma, beta)]
    reference_batch_norm(tensors[0], np.zeros(3), np.ones(3), tensors[1], tensors[2],
                         training=True).backward(md.tensor(dout))
    for mine, reference in zip(student.batchnorm_backward(dout, cache), tensors):
        np.testing.assert_allclose(mine, reference.grad.numpy(), rtol=1e-8, atol=1e-10)
