"""Graded tests for the batchnorm_forward task (10 points, 1 of them in a hidden test)."""
import numpy as np

import minidense as md
from forbidden_names import BATCH_NORM
from minidense.grading import in_out, points
from minidense.ops.normalization import batch_norm as reference_batch_norm

TASK = "batchnorm_forward"
FORBIDDEN = BATCH_NORM
EPS = 1e-5


def run(student, x, gamma=None, beta=None, mean=None, var=None, training=True, momentum=0.1):
    channels = x.shape[1]
    gamma = np.ones(channels) if gamma is None else gamma
    beta = np.zeros(channels) if beta is None else beta
    mean = np.zeros(channels) if mean is None else mean
    var = np.ones(channels) if var is None else var
    # the running statistics are updated in place: in_out gives the student's changes back
    out, _ = student.batchnorm_forward(x, gamma, beta, in_out(mean), in_out(var), training,
                                       momentum, EPS)
    return out, mean, var


@points(2)
def test_train_output_is_normalized(student, rng):
    x = 3.0 + 2.0 * rng.standard_normal((4, 3, 5, 5))
    out, _, _ = run(student, x)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0.0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=(0, 2, 3)), 1.0, atol=1e-4)   # var/(var+eps)


@points(2)
def test_hand_example_with_gamma_and_beta(student):
    x = np.array([1.0, 3.0, 5.0, 7.0]).reshape(2, 1, 1, 2)     # mean 4, biased variance 5
    out, _, _ = run(student, x, gamma=np.array([2.0]), beta=np.array([0.5]))
    np.testing.assert_allclose(out, 2.0 * (x - 4.0) / np.sqrt(5.0 + EPS) + 0.5)


@points(2)
def test_running_statistics_are_updated_in_place(student):
    x = np.array([1.0, 3.0, 5.0, 7.0]).reshape(2, 1, 1, 2)
    mean, var = np.array([1.0]), np.array([2.0])
    run(student, x, mean=mean, var=var, momentum=0.1)
    np.testing.assert_allclose(mean, [0.9 * 1.0 + 0.1 * 4.0])
    np.testing.assert_allclose(var, [0.9 * 2.0 + 0.1 * 20.0 / 3.0])    # unbiased: 20 / (4 - 1)


@points(2)
def test_eval_uses_running_statistics(student, rng):
    x = rng.standard_normal((2, 3, 4, 4))
    gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
    mean, var = rng.standard_normal(3), rng.uniform(0.5, 2.0, 3)
    saved = mean.copy(), var.copy()
    out, mean_after, var_after = run(student, x, gamma, beta, mean, var, training=False)
    expected = (gamma.reshape(1, 3, 1, 1) * (x - saved[0].reshape(1, 3, 1, 1))
                / np.sqrt(saved[1].reshape(1, 3, 1, 1) + EPS) + beta.reshape(1, 3, 1, 1))
    np.testing.assert_allclose(out, expected, rtol=1e-10)
    np.testing.assert_array_equal(mean_after, saved[0])
    np.testing.assert_array_equal(var_after, saved[1])


@points(1)
def test_matches_library_in_training(student, rng):
    x = rng.standard_normal((3, 4, 5, 5))
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    out, mean, var = run(student, x, gamma, beta, np.zeros(4), np.ones(4))
    reference_mean, reference_var = np.zeros(4), np.ones(4)
    expected = reference_batch_norm(md.tensor(x), reference_mean, reference_var, md.tensor(gamma),
                                    md.tensor(beta), training=True, eps=EPS)
    np.testing.assert_allclose(out, expected.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(mean, reference_mean, rtol=1e-12)
    np.testing.assert_allclose(var, reference_var, rtol=1e-12)
