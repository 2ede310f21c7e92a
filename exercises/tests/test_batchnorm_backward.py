"""Graded tests for the batchnorm_backward task (10 points, 1 of them in a hidden test).

The forward pass and its cache come from the stub's given code on the grader's side; the
student's code is asked only for the backward pass."""
import numpy as np

import minidense as md
from forbidden_names import BATCH_NORM
from given import given
from minidense.grading import points
from minidense.grading.testing import assert_close, tensor_op
from minidense.ops.normalization import batch_norm as reference_batch_norm

TASK = "batchnorm_backward"
FORBIDDEN = BATCH_NORM
batchnorm_forward = given(TASK, "batchnorm_forward")
AXES = (0, 2, 3)


def random_problem(rng, shape=(3, 2, 3, 3)):
    return (1.5 + rng.standard_normal(shape), rng.uniform(0.5, 2.0, shape[1]),
            rng.standard_normal(shape[1]))


def check_gradient(student, rng, wanted):
    """md.gradcheck (float64, random upstream gradient) on the inputs named in ``wanted``."""
    op = tensor_op(batchnorm_forward, student.batchnorm_backward)
    tensors = [md.tensor(a, dtype=md.float64, requires_grad=name in wanted)
               for a, name in zip(random_problem(rng), ("x", "gamma", "beta"))]
    md.gradcheck(op, tensors)


def known_mistakes(dout, cache):
    """{hint: the dx that mistake gives}: the paths through the mean and the variance."""
    x_hat, inv_std, gamma = cache
    dx_hat = dout * gamma.reshape(1, -1, 1, 1)
    mean = lambda a: a.mean(axis=AXES, keepdims=True)         # noqa: E731
    return {"dx misses the path through the variance (the term with "
            "x_hat * mean(dx_hat * x_hat))": inv_std * (dx_hat - mean(dx_hat)),
            "dx misses the path through the mean (the term -mean(dx_hat))":
                inv_std * (dx_hat - x_hat * mean(dx_hat * x_hat)),
            "dx misses both the mean's and the variance's dependence on x": inv_std * dx_hat}


def check_against_library(student, x, gamma, beta, dout):
    out, cache = batchnorm_forward(x, gamma, beta)
    tensors = [md.tensor(a, requires_grad=True) for a in (x, gamma, beta)]
    channels = x.shape[1]
    reference_batch_norm(tensors[0], np.zeros(channels), np.ones(channels), tensors[1],
                         tensors[2], training=True).backward(md.tensor(dout))
    dx, dgamma, dbeta = student.batchnorm_backward(dout, cache)
    assert_close(dx, tensors[0].grad.numpy(), "dx", rtol=1e-8, atol=1e-10,
                 known_mistakes=known_mistakes(dout, cache))
    assert_close(dgamma, tensors[1].grad.numpy(), "dgamma", rtol=1e-8, atol=1e-10)
    assert_close(dbeta, tensors[2].grad.numpy(), "dbeta", rtol=1e-8, atol=1e-10)


@points(1)
def test_gradient_shapes(student, rng):
    x, gamma, beta = random_problem(rng)
    out, cache = batchnorm_forward(x, gamma, beta)
    dx, dgamma, dbeta = student.batchnorm_backward(np.ones_like(out), cache)
    assert (dx.shape, dgamma.shape, dbeta.shape) == (x.shape, gamma.shape, beta.shape)


@points(2)
def test_gamma_and_beta_gradients(student, rng):
    x, gamma, beta = random_problem(rng)
    out, cache = batchnorm_forward(x, gamma, beta)
    dout = rng.standard_normal(out.shape)
    _, dgamma, dbeta = student.batchnorm_backward(dout, cache)
    x_hat = cache[0]                                  # the grader's own forward pass
    assert_close(dbeta, dout.sum(axis=AXES), "dbeta")
    assert_close(dgamma, (dout * x_hat).sum(axis=AXES), "dgamma", rtol=1e-10,
                 known_mistakes={"dgamma sums dout * x (the input), not dout * x_hat":
                                 (dout * x).sum(axis=AXES)})


@points(2)
def test_gradcheck_input_with_random_upstream(student, rng):
    check_gradient(student, rng, ["x"])


@points(1)
def test_gradcheck_gamma_and_beta(student, rng):
    check_gradient(student, rng, ["gamma", "beta"])


@points(1)
def test_input_gradient_ignores_shift_and_scale(student, rng):
    # shifting or scaling a channel of x does not change x_hat: dx sums to 0 per channel (the
    # mean's path) and is orthogonal to x_hat (the variance's path; up to what eps changes)
    x, gamma, beta = random_problem(rng)
    out, cache = batchnorm_forward(x, gamma, beta)
    dx = student.batchnorm_backward(rng.standard_normal(out.shape), cache)[0]
    assert_close(dx.sum(axis=AXES), np.zeros(2), "dx summed per channel", atol=1e-10)
    assert_close((dx * cache[0]).sum(axis=AXES), np.zeros(2), "dx * x_hat summed per channel",
                 atol=1e-3)


@points(2)
def test_matches_library_backward(student, rng):
    x, gamma, beta = random_problem(rng, (4, 3, 2, 5))
    check_against_library(student, x, gamma, beta, rng.standard_normal((4, 3, 2, 5)))
