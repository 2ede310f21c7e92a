"""Every core op: forward values, float64 gradients with a random upstream gradient, and errors."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minidense as md

BINARY = {
    "add": (lambda a, b: a + b, np.add),
    "sub": (lambda a, b: a - b, np.subtract),
    "mul": (lambda a, b: a * b, np.multiply),
    "div": (lambda a, b: a / b, np.divide),
}
BROADCAST_CASES = [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 1), (1, 4)), ((2, 3, 4), (3, 1)),
                   ((5,), (2, 1, 5)), ((2, 3), ())]


@pytest.mark.parametrize("name", BINARY)
@pytest.mark.parametrize("shapes", BROADCAST_CASES)
def test_binary_ops_broadcast_forward_and_gradients(name, shapes, randt):
    op, reference = BINARY[name]
    a, b = randt(*shapes[0]), randt(*shapes[1], positive=(name == "div"))
    np.testing.assert_allclose(op(a, b).numpy(), reference(a.numpy(), b.numpy()))
    report = md.gradcheck(op, (a, b))
    assert report.passed and report.rows[0]["shape"] == shapes[0]


UNARY = {
    "exp": (md.exp, np.exp, False), "log": (md.log, np.log, True),
    "sqrt": (md.sqrt, np.sqrt, True), "tanh": (md.tanh, np.tanh, False),
    "sigmoid": (md.sigmoid, lambda x: 1 / (1 + np.exp(-x)), False),
    "relu": (md.relu, lambda x: np.maximum(x, 0), False), "abs": (md.abs, np.abs, False),
    "neg": (lambda x: -x, np.negative, False),
    "pow3": (lambda x: x ** 3, lambda x: x ** 3, False),
    "pow-half": (lambda x: x ** -0.5, lambda x: x ** -0.5, True),
}


@pytest.mark.parametrize("name", UNARY)
def test_unary_ops_forward_and_gradients(name, randt):
    op, reference, positive = UNARY[name]
    x = randt(3, 5, positive=positive)
    np.testing.assert_allclose(op(x).numpy(), reference(x.numpy()), rtol=1e-12)
    assert md.gradcheck(op, (x,))


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "tanh", "sigmoid", "pow3"])
def test_unary_ops_double_backward(name, randt):
    op, _, positive = UNARY[name]
    assert md.gradgradcheck(op, (randt(2, 3, positive=positive),))


def test_sigmoid_is_stable_for_huge_inputs():
    x = md.tensor([-1000.0, 0.0, 1000.0], requires_grad=True)
    y = md.sigmoid(x)
    np.testing.assert_allclose(y.numpy(), [0.0, 0.5, 1.0])
    y.sum().backward()
    assert np.isfinite(x.grad.numpy()).all()


@pytest.mark.parametrize("a_shape,b_shape", [((3, 4), (4, 5)), ((2, 3, 4), (4, 2)),
                                             ((2, 3, 4), (2, 4, 5)), ((4, 3), (2, 3, 2))])
def test_matmul_forward_gradients_and_double_backward(a_shape, b_shape, randt):
    a, b = randt(*a_shape), randt(*b_shape)
    np.testing.assert_allclose((a @ b).numpy(), a.numpy() @ b.numpy())
    assert md.gradcheck(lambda p, q: p @ q, (a, b))
    assert md.gradgradcheck(lambda p, q: (p @ q).tanh(), (a, b))


def test_matmul_errors_name_the_shapes():
    a, b = md.ones(3, 4), md.ones(3, 5)
    with pytest.raises(ValueError, match=r"matmul: inner dimensions differ, \(3, 4\) @ \(3, 5\)"):
        a @ b
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        md.ones(3) @ md.ones(3, 2)


def test_broadcast_error_names_the_op_and_shapes():
    with pytest.raises(ValueError, match=r"add: .*\(2, 3\), \(4,\)"):
        md.ones(2, 3) + md.ones(4)


@pytest.mark.parametrize("axis,keepdims", [(None, False), (0, False), (1, True), ((0, 2), False),
                                           (-1, True)])
@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
def test_reductions_forward_and_gradients(reduce, axis, keepdims, randt):
    x = randt(2, 3, 4)
    y = getattr(x, reduce)(axis=axis, keepdims=keepdims)
    expected = getattr(np, {"sum": "sum", "mean": "mean", "max": "max", "min": "min"}[reduce])(
        x.numpy(), axis=axis, keepdims=keepdims)
    np.testing.assert_allclose(y.numpy(), expected)
    assert md.gradcheck(lambda t: getattr(t, reduce)(axis=axis, keepdims=keepdims), (x,))


def test_reductions_accept_pytorch_dim_and_keepdim(randt):
    x = randt(2, 3)
    np.testing.assert_allclose(x.sum(dim=1, keepdim=True).numpy(), x.numpy().sum(1, keepdims=True))
    assert md.gradgradcheck(lambda t: (t * t).mean(dim=0), (x,))


def test_max_splits_the_gradient_between_ties():
    x = md.tensor([[1.0, 3.0, 3.0], [2.0, 0.0, -1.0]], requires_grad=True)
    x.max(axis=1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0, 0.5, 0.5], [1, 0, 0]])


def test_add_sub_and_sum_keep_only_the_shapes_of_their_inputs():
    a = md.tensor(np.arange(3.0).reshape(3, 1), requires_grad=True)
    b = md.tensor(np.ones((2, 3, 4)), requires_grad=True)
    for y in (a + b, a - b, b.sum(axis=0)):
        assert y.creator.inputs is None
    ((a + b) - b).sum(axis=0).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), np.full((3, 1), 8.0))    # 2 * 4 copies each
    np.testing.assert_array_equal(b.grad.numpy(), np.zeros((2, 3, 4)))


def test_reshape_transpose_permute_and_their_gradients(randt):
    x = randt(2, 3, 4)
    assert x.reshape(6, 4).shape == (6, 4) and x.reshape((4, -1)).shape == (4, 6)
    assert x.transpose(0, 2).shape == (4, 3, 2)       # PyTorch: swap two dims
    assert x.transpose().shape == (4, 3, 2)           # NumPy: reverse
    assert x.permute(1, 2, 0).shape == (3, 4, 2)
    assert md.flatten(x, 1).shape == (2, 12)
    for fn in (lambda t: t.reshape(4, 6), lambda t: t.transpose(0, 1), lambda t: t.permute(2, 0, 1),
               lambda t: t.T, lambda t: md.flatten(t, 1)):
        assert md.gradcheck(fn, (x,))
        assert md.gradgradcheck(lambda t: fn(t) * fn(t), (x,))
    with pytest.raises(ValueError, match=r"reshape: cannot view \(2, 3, 4\)"):
        x.reshape(5, 5)


@pytest.mark.parametrize("index", [1, (slice(None), 2), (Ellipsis, slice(1, 3)),
                                   ([0, 0, 1], slice(None)), (np.array([1, 1]), [0, 2]),
                                   (slice(None, None, -1),)])
def test_indexing_forward_and_gradients(index, randt):
    x = randt(2, 3, 4)
    np.testing.assert_allclose(x[index].numpy(), x.numpy()[index])
    assert md.gradcheck(lambda t: t[index], (x,))
    assert md.gradgradcheck(lambda t: t[index] ** 2, (x,))


def test_repeated_index_adds_gradients():
    x = md.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[[0, 0, 2]].sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 0.0, 1.0])


def test_cat_split_stack(randt):
    a, b, c = randt(2, 1, 3), randt(2, 4, 3), randt(2, 2, 3)
    y = md.cat([a, b, c], axis=1)             # DenseNet's channel axis
    assert y.shape == (2, 7, 3)
    assert md.cat([a, a]).shape == (4, 1, 3)  # the default axis is 0, as in NumPy and PyTorch
    assert md.split(y, [1, 4, 2], dim=1)[1].shape == (2, 4, 3)      # PyTorch's dim alias
    assert md.stack([a, a], dim=1).shape == (2, 2, 1, 3)
    np.testing.assert_array_equal(y.numpy(), np.concatenate([a.numpy(), b.numpy(), c.numpy()], 1))
    assert md.gradcheck(lambda p, q, r: md.cat([p, q, r], dim=1), (a, b, c))
    assert md.gradgradcheck(lambda p, q: md.cat([p, q], axis=1) ** 2, (a, b))
    parts = md.split(y, [1, 4, 2], axis=1)
    assert [p.shape for p in parts] == [(2, 1, 3), (2, 4, 3), (2, 2, 3)]
    assert [p.shape[0] for p in md.split(randt(5, 2), 2)] == [2, 2, 1]
    assert md.gradcheck(lambda t: md.split(t, 2, axis=1)[1] * 3, (y,))   # unused pieces get zeros
    s = md.stack([a, a * 2], axis=1)
    assert s.shape == (2, 2, 1, 3)
    assert md.gradcheck(lambda p, q: md.stack([p, q], axis=0), (b, randt(2, 4, 3)))
    with pytest.raises(ValueError, match=r"cat: along axis 1.*\(2, 1, 3\), \(3, 4, 3\)"):
        md.cat([a, md.ones(3, 4, 3, dtype=md.float64, device=a.device)], axis=1)
    with pytest.raises(ValueError, match="split: sizes"):
        md.split(y, [3, 3], axis=1)


def test_rpow_and_comparisons(randt):
    x = randt(4)
    np.testing.assert_allclose((2 ** x).numpy(), 2 ** x.numpy())
    assert md.gradcheck(lambda t: 2 ** t, (x,))
    assert ((x > 0).numpy() == (x.numpy() > 0)).all()
    with pytest.raises(TypeError, match="exponent"):
        x ** x


shapes = st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple)


@settings(max_examples=60, deadline=None, derandomize=True)  # the same examples on every run
@given(shape=shapes, drop=st.data())
def test_broadcast_gradient_always_has_the_input_shape(shape, drop):
    # Make a second shape broadcastable to the first by replacing some dims with 1 / dropping some.
    keep = drop.draw(st.integers(0, len(shape)))
    other = tuple(1 if drop.draw(st.booleans()) else n for n in shape[len(shape) - keep:])
    rng = np.random.default_rng(0)
    a = md.tensor(rng.standard_normal(shape), requires_grad=True)
    b = md.tensor(rng.standard_normal(other), requires_grad=True)
    (a * b + b).sum().backward()
    assert a.grad.shape == a.shape and b.grad.shape == b.shape
    expected_b = np.broadcast_to(a.numpy() + 1, np.broadcast_shapes(shape, other))
    lead = len(expected_b.shape) - len(other)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(other) if n == 1)
    np.testing.assert_allclose(b.grad.numpy(), expected_b.sum(axis=axes, keepdims=True).reshape(other))


def test_gradcheck_catches_a_wrong_backward_that_all_ones_misses(randt):
    """Softmax's outputs sum to 1, so with an all-ones upstream gradient the true gradient is 0:
    a backward that wrongly returns zeros passes the ones-check and fails the random check."""
    class WrongSoftmax(md.Function):
        def forward(self, x):
            e = np.exp(x - x.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)

        def backward(self, gy):
            return gy * 0

    x = randt(3, 4)
    ones = md.gradcheck(lambda t: WrongSoftmax()(t), (x,), upstream="ones", raise_exception=False)
    assert not ones.passed and ones.rows[0]["vacuous"]          # the vacuity guard notices
    ones_allowed = md.gradcheck(lambda t: WrongSoftmax()(t), (x,), upstream="ones", allow_zero=True)
    assert ones_allowed.passed                                   # ...the all-ones check alone lies
    with pytest.raises(md.gradcheck_module.GradcheckError, match="MISMATCH"):
        md.gradcheck(lambda t: WrongSoftmax()(t), (x,))


def test_gradcheck_report_and_directional_mode(randt):
    x = randt(40, 60)
    report = md.gradcheck(lambda t: (t * t).tanh(), (x,), max_elements=100)
    assert report.mode == "directional" and report.passed
    assert "max rel err" in str(report) and report.rows[0]["max_rel_error"] < 1e-5
    with pytest.raises(TypeError, match="float64"):
        md.gradcheck(lambda t: t * 2, (md.tensor([1.0], requires_grad=True),))


def test_integer_tensor_to_a_fractional_power_is_float():
    y = md.tensor([4, 9]) ** 0.5
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.numpy(), [2.0, 3.0])
    squared = md.tensor([4, 9]) ** 2                  # an integer power keeps the integers
    assert squared.dtype == md.tensor([1]).dtype
    np.testing.assert_array_equal(squared.numpy(), [16, 81])


def test_pow_gradcheck_fractional_and_negative_exponents(rng):
    x = md.tensor(rng.uniform(0.5, 2.0, size=(3, 2)), dtype=md.float64, requires_grad=True)
    md.gradcheck(lambda t: t ** 0.5, (x,))
    md.gradcheck(lambda t: t ** -2, (x,))


@pytest.mark.parametrize("reduce", [md.sum, md.mean, md.max, md.min])
def test_reduction_over_a_missing_axis_names_the_op_and_shape(reduce):
    with pytest.raises(md.ShapeError, match=r"axis 2 does not exist in a tensor of shape \(2, 3\)"):
        reduce(md.ones(2, 3), axis=2)
    x = md.ones(2, 3)
    np.testing.assert_array_equal(reduce(x, axis=-1).numpy(), reduce(x, axis=1).numpy())
