"""Graded tests for the softmax_cross_entropy_backward task (10 points, 1 of them hidden).

The forward pass and its cache come from the stub's given code on the grader's side; the
student's code is asked only for the backward pass."""
import numpy as np

import minidense as md
from forbidden_names import SOFTMAX_CROSS_ENTROPY
from given import given
from minidense.grading import points
from minidense.grading.testing import assert_close, tensor_op
from minidense.ops.loss import cross_entropy as reference_cross_entropy

TASK = "softmax_cross_entropy_backward"
FORBIDDEN = SOFTMAX_CROSS_ENTROPY
TARGETS = np.array([1, 3, 0])
softmax_cross_entropy_forward = given(TASK, "softmax_cross_entropy_forward")


def backward(student, logits, targets=TARGETS, dloss=1.0):
    _, cache = softmax_cross_entropy_forward(logits, targets)
    return student.softmax_cross_entropy_backward(dloss, cache)


@points(1)
def test_shape(student, rng):
    assert backward(student, rng.standard_normal((3, 4))).shape == (3, 4)


@points(2)
def test_uniform_logits(student):
    dlogits = backward(student, np.zeros((2, 4)), np.array([1, 3]))
    expected = (np.full((2, 4), 0.25) - np.eye(4)[[1, 3]]) / 2
    assert_close(dlogits, expected, "dlogits", atol=1e-15,
                 known_mistakes={"divide by the batch size: the loss is a mean over the batch":
                                 expected * 2})


def reference_dlogits(logits, targets, dloss):
    reference_logits = md.tensor(logits, requires_grad=True)
    loss = reference_cross_entropy(reference_logits, md.tensor(targets))
    loss.backward(md.tensor(np.array(dloss)))
    return reference_logits.grad.numpy()


@points(1)
def test_rows_sum_to_zero_and_scale_with_upstream(student, rng):
    logits = rng.standard_normal((3, 5))
    assert_close(backward(student, logits).sum(axis=1), np.zeros(3), "dlogits summed per row",
                 atol=1e-15)
    expected = reference_dlogits(logits, TARGETS, 2.5)
    assert_close(backward(student, logits, dloss=2.5), expected, "dlogits with dloss = 2.5",
                 rtol=1e-9, known_mistakes={"multiply by the upstream gradient dloss":
                                            expected / 2.5})


@points(3)
def test_gradcheck_with_random_upstream(student, rng):
    op = tensor_op(lambda z: softmax_cross_entropy_forward(z, TARGETS),
                   lambda dloss, cache: student.softmax_cross_entropy_backward(dloss.item(), cache))
    md.gradcheck(op, md.tensor(rng.standard_normal((3, 4)), requires_grad=True))


@points(1)
def test_large_logits_stay_finite(student):
    logits = np.array([[1000.0, 0.0, -1000.0], [0.0, 1000.0, 1000.0]])
    dlogits = backward(student, logits, np.array([0, 2]))
    assert_close(dlogits, [[0.0, 0.0, 0.0], [0.0, 0.25, -0.25]], "dlogits", atol=1e-12)


@points(1)
def test_matches_library_backward(student, rng):
    logits = rng.standard_normal((3, 4))
    assert_close(backward(student, logits, dloss=0.7), reference_dlogits(logits, TARGETS, 0.7),
                 "dlogits", rtol=1e-9, atol=1e-12)
