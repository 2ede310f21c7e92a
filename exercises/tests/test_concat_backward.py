"""Graded tests for the concat_backward task (10 points, 1 of them in a hidden test)."""
import numpy as np

import minidense as md
from forbidden_names import CONCAT
from minidense.grading import points

TASK = "concat_backward"
FORBIDDEN = CONCAT


def leaves(rng, *shapes):
    return [md.tensor(rng.standard_normal(s), requires_grad=True) for s in shapes]


@points(2)
def test_forward_values(student, rng):
    a, b = rng.standard_normal((2, 3, 4, 4)), rng.standard_normal((2, 5, 4, 4))
    out = student.concat([md.tensor(a), md.tensor(b)], axis=1)
    np.testing.assert_array_equal(out.numpy(), np.concatenate([a, b], axis=1))
    out0 = student.concat([md.tensor(a), md.tensor(a)], axis=0)
    np.testing.assert_array_equal(out0.numpy(), np.concatenate([a, a], axis=0))


@points(1)
def test_backward_shapes(student, rng):
    a, b = leaves(rng, (2, 3, 4, 4), (2, 5, 4, 4))
    student.concat([a, b]).sum().backward()
    assert a.grad.shape == a.shape and b.grad.shape == b.shape


@points(2)
def test_backward_gives_each_input_its_slice(student, rng):
    a, b, c = leaves(rng, (2, 1, 3), (2, 2, 3), (2, 3, 3))
    upstream = np.arange(2 * 6 * 3, dtype=float).reshape(2, 6, 3)
    student.concat([a, b, c], axis=1).backward(md.tensor(upstream))
    np.testing.assert_array_equal(a.grad.numpy(), upstream[:, :1])
    np.testing.assert_array_equal(b.grad.numpy(), upstream[:, 1:3])
    np.testing.assert_array_equal(c.grad.numpy(), upstream[:, 3:])


@points(2)
def test_gradcheck_with_random_upstream(student, rng):
    inputs = leaves(rng, (2, 2, 3, 3), (2, 1, 3, 3), (2, 3, 3, 3))
    md.gradcheck(lambda *xs: student.concat(list(xs), axis=1), inputs)
    inputs = leaves(rng, (2, 3, 2), (2, 3, 4))
    md.gradcheck(lambda *xs: student.concat(list(xs), axis=-1), inputs)


@points(2)
def test_reused_input_accumulates(student, rng):
    # DenseNet style: x feeds the first concatenation and, through it, the second
    x, y = leaves(rng, (2, 2, 3, 3), (2, 1, 3, 3))
    out = student.concat([x, student.concat([x, y])])
    upstream = rng.standard_normal(out.shape)
    out.backward(md.tensor(upstream))
    np.testing.assert_allclose(x.grad.numpy(), upstream[:, 0:2] + upstream[:, 2:4])
    np.testing.assert_allclose(y.grad.numpy(), upstream[:, 4:5])
