"""Graded tests for the softmax_cross_entropy_backward task (10 points)."""
import numpy as np

import minidense as md
from forbidden_names import SOFTMAX_CROSS_ENTROPY
from minidense.grading import points
from minidense.grading.testing import tensor_op
from minidense.ops.loss import cross_entropy as reference_cross_entropy

TASK = "softmax_cross_entropy_backward"
FORBIDDEN = SOFTMAX_CROSS_ENTROPY
TARGETS = np.array([1, 3, 0])


def backward(student, logits, targets=TARGETS, dloss=1.0):
    _, cache = student.softmax_cross_entropy_forward(logits, targets)
    return student.softmax_cross_entropy_backward(dloss, cache)


@points(1)
def test_shape(student, rng):
    assert backward(student, rng.standard_normal((3, 4))).shape == (3, 4)


@points(2)
def test_uniform_logits(student):
    dlogits = backward(student, np.zeros((2, 4)), np.array([1, 3]))
    expected = (np.full((2, 4), 0.25) - np.eye(4)[[1, 3]]) / 2
    np.testing.assert_allclose(dlogits, expected, atol=1e-15)


@points(1)
def test_rows_sum_to_zero_and_scale_with_upstream(student, rng):
    logits = rng.standard_normal((3, 5))
    np.testing.assert_allclose(backward(student, logits).sum(axis=1), 0.0, atol=1e-15)
    np.testing.assert_allclose(backward(student, logits, dloss=2.5),
                               2.5 * backward(student, logits), rtol=1e-12)


@points(3)
def test_gradcheck_with_random_upstream(student, rng):
    op = tensor_op(lambda z: student.softmax_cross_entropy_forward(z, TARGETS),
                   lambda dloss, cache: student.softmax_cross_entropy_backward(dloss.item(), cache))
    md.gradcheck(op, md.tensor(rng.standard_normal((3, 4)), requires_grad=True))


@points(1)
def test_large_logits_stay_finite(student):
    logits = np.array([[1000.0, 0.0, -1000.0], [0.0, 1000.0, 1000.0]])
    dlogits = backward(student, logits, np.array([0, 2]))
    np.testing.assert_allclose(dlogits, [[0.0, 0.0, 0.0], [0.0, 0.25, -0.25]], atol=1e-12)


@points(2)
def test_matches_library_backward(student, rng):
    logits = rng.standard_normal((3, 4))
    reference_logits = md.tensor(logits, requires_grad=True)
    loss = reference_cross_entropy(reference_logits, md.tensor(TARGETS))
    loss.backward(md.tensor(np.array(0.7)))
    np.testing.assert_allclose(backward(student, logits, dloss=0.7),
                               reference_logits.grad.numpy(), rtol=1e-9, atol=1e-12)
