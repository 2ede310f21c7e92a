"""The engine: graph ordering, gradient accumulation, retain_grad, no_grad, double backward, errors."""
import numpy as np
import pytest

import minidense as md


def test_reused_node_gets_all_its_gradient():
    a = md.tensor([1.0, -2.0], requires_grad=True)
    b = a + a
    c = b + b
    c.sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [4.0, 4.0])


def test_dense_connectivity_pattern_matches_closed_form(rng):
    # x1 = f(x0), x2 = f(cat(x0, x1)), x3 = f(cat(x0, x1, x2)): every output feeds every later one.
    x0 = md.tensor(rng.standard_normal((2, 3)), dtype=md.float64, requires_grad=True)
    feats = [x0]
    for _ in range(3):
        feats.append(md.tanh(md.cat(feats, axis=1)).sum(axis=1, keepdims=True) * 0.5)
    out = md.cat(feats, axis=1).sum()
    out.backward()

    def forward(x):
        fs = [x]
        for _ in range(3):
            fs.append(md.tanh(md.cat(fs, axis=1)).sum(axis=1, keepdims=True) * 0.5)
        return md.cat(fs, axis=1)
    x = md.tensor(x0.numpy(), requires_grad=True)
    assert md.gradcheck(forward, (x,))
    g, = md.grad(forward(x).sum(), [x])
    np.testing.assert_allclose(x0.grad.numpy(), g.numpy(), rtol=1e-12)


def test_gradients_accumulate_into_leaves_across_backward_calls():
    x = md.tensor([3.0], requires_grad=True)
    (x * 2).sum().backward()
    (x * 5).sum().backward()
    assert x.grad.item() == pytest.approx(7.0)


def test_intermediate_gradients_only_with_retain_grad():
    x = md.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    z = y * y
    kept = x * 4
    kept.retain_grad()
    (z.sum() + kept.sum()).backward()
    assert y.grad is None
    np.testing.assert_allclose(kept.grad.numpy(), [1.0, 1.0])
    np.testing.assert_allclose(x.grad.numpy(), 18 * x.numpy() + 4)


def test_second_backward_through_freed_graph_raises():
    x = md.tensor([1.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_retain_graph_allows_a_second_pass():
    x = md.tensor([2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.item() == pytest.approx(8.0)


def test_no_grad_records_nothing():
    x = md.tensor([1.0], requires_grad=True)
    with md.no_grad():
        y = x * 2
    assert not y.requires_grad and y.creator is None
    assert md.is_grad_enabled()

    @md.no_grad()
    def double(t):
        return t * 2
    assert not double(x).requires_grad


def test_double_backward_of_cube_is_6x():
    x = md.tensor(np.array([-1.5, 0.5, 2.0]), requires_grad=True)
    y = (x ** 3).sum()
    y.backward(create_graph=True)
    first = x.grad
    np.testing.assert_allclose(first.numpy(), 3 * x.numpy() ** 2)
    x.grad = None
    first.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 6 * x.numpy())


def test_grad_function_returns_without_touching_dot_grad():
    x = md.tensor([1.0, 2.0], requires_grad=True)
    g, = md.grad((x * x).sum(), [x])
    np.testing.assert_allclose(g.numpy(), [2.0, 4.0])
    assert x.grad is None


def test_backward_on_non_scalar_needs_gradient():
    x = md.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"shape \(2,\) needs a gradient"):
        (x * 2).backward()
    (x * 2).backward(md.tensor([1.0, 10.0]))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 20.0])


def test_integer_tensor_cannot_require_grad():
    with pytest.raises(TypeError, match="floating-point.*int64"):
        md.tensor([1, 2, 3], requires_grad=True)


def test_unknown_device_and_missing_cuda_are_explained():
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        md.tensor([1.0], device="tpu")
    if not md.cuda_available():
        with pytest.raises(RuntimeError, match="CuPy|GPU"):
            md.tensor([1.0], device="cuda")


def test_mixed_devices_are_refused_with_the_shapes(cuda):
    a = md.tensor([1.0, 2.0])
    b = md.tensor([1.0, 2.0], device=cuda, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"add: .*\(2,\) on cpu, \(2,\) on cuda"):
        a + b
    with pytest.raises(RuntimeError, match=r"backward\(\): gradient on cpu .* on cuda"):
        (b * 2).backward(md.tensor([1.0, 1.0]))
    with pytest.raises(RuntimeError, match=r"batch_norm: running_mean lives on cpu .*\(3, 2\) on cuda"):
        md.nn.functional.batch_norm(md.ones(3, 2, device=cuda), md.zeros(2), md.ones(2), training=True)
    # a 0-d CPU constant (a NumPy scalar, a float) joins GPU tensors as in PyTorch
    y = b * md.tensor(3.0) + np.float32(1.0)
    assert y.device == "cuda" and y.tolist() == [4.0, 7.0]
    assert (2 ** b).tolist() == [2.0, 4.0]


def test_backward_on_tensor_without_graph_is_explained():
    with pytest.raises(RuntimeError, match="does not require grad"):
        md.tensor([1.0]).sum().backward()


def test_dtype_defaults_follow_pytorch():
    assert md.tensor([1.0, 2.0]).dtype == np.float32
    assert md.tensor([1, 2]).dtype == np.int64
    assert md.tensor(np.zeros(2)).dtype == np.float64
    x32 = md.tensor([1.0], requires_grad=True)
    assert (x32 * 2.5 + 1).dtype == np.float32          # Python scalars do not upcast
    assert (np.float64(2.0) * x32).dtype == np.float32
    assert md.zeros(2, 3).shape == (2, 3) and md.ones((2,)).dtype == np.float32


def test_manual_seed_makes_randn_reproducible():
    md.manual_seed(7)
    a = md.randn(3, 4).numpy()
    md.manual_seed(7)
    b = md.randn(3, 4).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, md.randn(3, 4).numpy())


def test_tensor_basics_and_repr():
    x = md.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    assert x.shape == (2, 2) and x.ndim == 2 and x.numel() == 4 and x.device == "cpu"
    assert x.is_leaf and not (x * 2).is_leaf
    assert "requires_grad=True" in repr(x) and "grad_fn=<mul>" in repr(x * 2)
    assert x.sum().item() == 10.0
    d = x.detach()
    assert not d.requires_grad and d.data is x.data
    assert (x > 2).numpy().tolist() == [[False, False], [True, True]]
    assert len({x, d}) == 2   # tensors stay hashable


def test_to_moves_dtype_with_gradient():
    x = md.tensor([1.0, 2.0], requires_grad=True)
    y = x.double()
    assert y.dtype == np.float64
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])
    assert x.to("cpu") is x


# -- what the engine tells an op, and what the graph keeps -----------------------------------------
class _Recorder(md.Function):
    """y = a * b, recording what the engine says and what it asks for."""

    seen = []

    def forward(self, a, b):
        return a * b

    def backward(self, gy):
        a, b = self.inputs
        _Recorder.seen.append(self.needs_input_grad)
        need_a, need_b = self.needs_input_grad
        return (gy * b if need_a else None), (gy * a if need_b else None)


def test_function_sees_which_inputs_need_grad():
    _Recorder.seen = []
    a = md.tensor([2.0, 3.0], requires_grad=True)
    b = md.tensor([5.0, 7.0])                            # a constant: nobody needs its gradient
    _Recorder()(a, b).sum().backward()
    assert _Recorder.seen == [(True, False)]
    np.testing.assert_array_equal(a.grad.numpy(), [5.0, 7.0])
    assert b.grad is None
    with md.no_grad():
        op = _Recorder()
        op(a, b)
    assert op.needs_input_grad == (False, False)


def test_builtin_ops_skip_gradients_nobody_needs(rng):
    x = md.tensor(rng.standard_normal((2, 3, 5, 5)))     # data: no gradient wanted
    w = md.tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    y = md.nn.functional.conv2d(x, w, padding=1)
    op = y.creator
    assert op.needs_input_grad == (False, True)
    (gx, gw) = op.backward(np.ones(y.shape))
    assert gx is None and gw.shape == (4, 3, 3, 3)


class _ArraySquare(md.ArrayFunction):
    """y = x^2 on arrays, backward on arrays: dL/dx = 2 x dL/dy."""

    def forward(self, x):
        self.save_for_backward(x)
        return x * x

    def backward(self, gy):
        (x,) = self.saved_values
        return 2 * x * gy


def test_array_function_saves_what_backward_reads_and_is_gradchecked(rng):
    x = md.tensor(rng.standard_normal((3, 2)), dtype=md.float64, requires_grad=True)
    md.gradcheck(lambda t: _ArraySquare()(t), (x,))
    y = _ArraySquare()(x)
    assert y.creator.inputs is None and len(y.creator.saved_values) == 1
    y.sum().backward()
    assert y.creator.saved_values == ()              # freed by backward
    with pytest.raises(RuntimeError, match="create_graph=True is not supported"):
        md.grad(_ArraySquare()(x).sum(), [x], create_graph=True)


def test_old_style_array_backward_still_works():
    """A Function that sets differentiable_backward = False and wraps arrays itself."""
    class Concat(md.Function):
        differentiable_backward = False

        def forward(self, *arrays):
            self.sizes = [a.shape[1] for a in arrays]
            return np.concatenate(arrays, axis=1)

        def backward(self, grad):
            parts = np.split(grad.data, np.cumsum(self.sizes)[:-1], axis=1)
            return tuple(md.Tensor(p) for p in parts)

    a = md.tensor(np.ones((2, 1)), requires_grad=True)
    b = md.tensor(np.ones((2, 2)), requires_grad=True)
    (Concat()(a, b) * md.tensor([[1.0, 2.0, 3.0]])).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [[1.0], [1.0]])
    np.testing.assert_array_equal(b.grad.numpy(), [[2.0, 3.0], [2.0, 3.0]])


def test_batch_norm_and_cat_do_not_keep_their_inputs_alive():
    import gc
    import weakref
    x = md.randn(4, 3, 2, 2, requires_grad=True)
    gamma, beta = md.ones(3, requires_grad=True), md.zeros(3, requires_grad=True)
    joined = md.cat([x, x * 2.0], axis=1)
    watch = weakref.ref(joined.data)
    y = md.nn.functional.batch_norm(md.cat([joined, x], axis=1), None, None,
                                    md.ones(9, requires_grad=True), md.zeros(9), training=True)
    del joined
    gc.collect()
    assert watch() is None                 # neither cat nor batch norm holds the concatenation
    y.sum().backward()                     # and backward still works
    assert x.grad.shape == (4, 3, 2, 2)


def test_retain_grad_after_use_and_grad_of_intermediate():
    a = md.tensor([1.0, 2.0], requires_grad=True)
    b = md.cat([a, a], axis=0)
    c = (b * b).sum()
    b.retain_grad()                        # asked for after b was used: still honoured
    c.backward(retain_graph=True)
    np.testing.assert_array_equal(b.grad.numpy(), [2.0, 4.0, 2.0, 4.0])
    (gb,) = md.grad(c, [b])
    np.testing.assert_array_equal(gb.numpy(), [2.0, 4.0, 2.0, 4.0])


def test_errors_keep_their_kind():
    with pytest.raises(ValueError, match=r"pow: an integer tensor .* negative power -1") as info:
        md.tensor([4, 9]) ** -1
    assert not isinstance(info.value, md.ShapeError)
    with pytest.raises(md.ShapeError, match=r"mul: shapes \(2,\), \(3,\) cannot be broadcast"):
        md.ones(2) * md.ones(3)
