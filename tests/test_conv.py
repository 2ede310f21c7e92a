"""conv2d: hand-computed values, im2col/col2im against the loop versions, conv2d == naive loops,
float64 gradient checks (random upstream gradient) over strides, paddings and kernel sizes, errors,
and PyTorch as an optional oracle. (The fast kernels against the textbook ones: test_kernels.py.)"""
import numpy as np
import pytest

import minidense as md
import minidense.nn.functional as F
from minidense.ops.conv import (Conv2d, col2im, col2im_naive, conv2d_backward_im2col,
                                conv2d_forward_im2col, conv2d_naive, im2col, im2col_naive)

# (x shape, weight shape, stride, padding, with bias)
CONV_CASES = [
    ((2, 3, 5, 6), (4, 3, 3, 3), 1, 1, True),
    ((2, 3, 5, 6), (4, 3, 3, 3), 2, 1, False),
    ((1, 2, 6, 5), (3, 2, 3, 3), 1, 0, True),
    ((1, 2, 4, 7), (2, 2, 3, 2), (2, 1), (2, 0), True),
    ((2, 4, 3, 5), (3, 4, 1, 1), 1, 0, False),    # stride 1, 1x1: shifted products, one offset
    ((2, 4, 3, 5), (3, 4, 1, 1), 1, 0, True),
    ((1, 2, 5, 5), (2, 2, 1, 1), 2, 1, True),     # 1x1 with stride 2 and padding: im2col
    ((1, 1, 4, 4), (2, 1, 4, 4), 1, 2, False),    # kernel as large as the input
]


def _conv_inputs(randt, x_shape, w_shape, bias):
    x, w = randt(*x_shape), randt(*w_shape)
    b = randt(w_shape[0]) if bias else None
    return x, w, b


def test_conv2d_matches_hand_computed_example():
    x = md.tensor(np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4))
    w = md.tensor(np.array([[[[1, 0], [0, -1]]]], dtype=np.float32))   # x[r, s] - x[r+1, s+1]
    y = F.conv2d(x, w, md.tensor([0.5]))
    np.testing.assert_array_equal(y.numpy(), np.full((1, 1, 3, 3), -5 + 0.5, dtype=np.float32))
    # padding 1, stride 2, a 3x3 box filter: sums of the 3x3 neighbourhoods at (0,0),(0,2),(2,0),(2,2)
    box = md.ones(1, 1, 3, 3)
    y = F.conv2d(x, box, stride=2, padding=1)
    expected = [[0 + 1 + 4 + 5, 1 + 2 + 3 + 5 + 6 + 7],
                [4 + 5 + 8 + 9 + 12 + 13, 5 + 6 + 7 + 9 + 10 + 11 + 13 + 14 + 15]]
    np.testing.assert_array_equal(y.numpy()[0, 0], expected)


def test_conv2d_output_shape_and_float32_kept():
    x, w = md.randn(2, 3, 7, 9), md.randn(5, 3, 3, 3)
    y = F.conv2d(x, w, stride=2, padding=1)
    assert y.shape == (2, 5, 4, 5) and y.dtype == np.float32


def test_conv2d_rejects_mixed_dtypes():
    with pytest.raises(TypeError, match="float32 but weight is float64"):
        F.conv2d(md.randn(1, 1, 3, 3), md.randn(1, 1, 3, 3, dtype=md.float64))


@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv2d_gradcheck(case, randt):
    x_shape, w_shape, stride, padding, bias = case
    x, w, b = _conv_inputs(randt, x_shape, w_shape, bias)
    inputs = (x, w) if b is None else (x, w, b)
    md.gradcheck(lambda *t: F.conv2d(*t, stride=stride, padding=padding), inputs)


@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_fast_conv_equals_naive_conv_forward_and_gradients(case, rng):
    x_shape, w_shape, stride, padding, bias = case
    arrays = [rng.standard_normal(s) for s in (x_shape, w_shape, (w_shape[0],))][:3 if bias else 2]
    results = []
    for conv in (F.conv2d, conv2d_naive):
        inputs = [md.tensor(a, dtype=md.float64, requires_grad=True) for a in arrays]
        y = conv(*inputs, stride=stride, padding=padding)
        y.backward(md.tensor(np.random.default_rng(7).standard_normal(y.shape), dtype=md.float64))
        results.append([y.numpy()] + [t.grad.numpy() for t in inputs])
    for fast, naive in zip(*results):
        np.testing.assert_allclose(fast, naive, rtol=1e-12, atol=1e-12)


def test_conv2d_naive_gradcheck(randt):
    x, w, b = _conv_inputs(randt, (1, 2, 4, 5), (2, 2, 3, 3), True)
    md.gradcheck(lambda *t: conv2d_naive(*t, stride=2, padding=1), (x, w, b))


@pytest.mark.parametrize("kernel, stride, padding", [(3, 1, 1), ((2, 3), (2, 1), (0, 2)), (1, 1, 0),
                                                     (2, 2, 0), (3, 2, 1)])
def test_im2col_and_col2im_match_the_loop_versions(kernel, stride, padding, rng):
    x = rng.standard_normal((2, 3, 5, 6))
    cols = im2col(x, kernel, stride, padding)
    np.testing.assert_array_equal(cols, im2col_naive(x, kernel, stride, padding))
    g = rng.standard_normal(cols.shape)
    np.testing.assert_allclose(col2im(g, x.shape, kernel, stride, padding),
                               col2im_naive(g, x.shape, kernel, stride, padding), atol=1e-12)
    # col2im is the adjoint (transpose) of im2col: <im2col(x), g> == <x, col2im(g)>
    np.testing.assert_allclose((cols * g).sum(), (x * col2im(g, x.shape, kernel, stride, padding)).sum())


def test_im2col_layout_on_a_tiny_example():
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    cols = im2col(x, 2)
    # one column per window (row-major over window positions), rows are the 2x2 offsets
    np.testing.assert_array_equal(cols[0], [[0, 1, 3, 4], [1, 2, 4, 5], [3, 4, 6, 7], [4, 5, 7, 8]])
    # the centre pixel sits in all four windows, so col2im of ones counts 4 there
    counts = col2im(np.ones_like(cols), x.shape, 2)
    np.testing.assert_array_equal(counts[0, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])


def test_textbook_kernels_can_be_called_on_arrays(rng):
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    w = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    y = conv2d_forward_im2col(x, w, stride=(1, 1), padding=(1, 1)) + b.reshape(1, 5, 1, 1)
    xt, wt, bt = (md.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = Conv2d(1, 1)(xt, wt, bt)
    np.testing.assert_allclose(y, yt.numpy(), rtol=1e-5, atol=1e-5)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    gx, gw = conv2d_backward_im2col(gy, x, w, stride=(1, 1), padding=(1, 1))
    yt.backward(md.tensor(gy))
    for manual, auto in ((gx, xt), (gw, wt), (gy.sum(axis=(0, 2, 3)), bt)):
        assert manual.dtype == np.float32
        np.testing.assert_allclose(manual, auto.grad.numpy(), rtol=1e-4, atol=1e-4)
    gx_only = conv2d_backward_im2col(gy, x, w, (1, 1), (1, 1), need_weight=False)
    assert gx_only[1] is None
    np.testing.assert_array_equal(gx_only[0], gx)


def test_gradient_only_where_required():
    x = md.randn(1, 2, 4, 4)                       # no grad needed for the input
    w = md.randn(3, 2, 3, 3, requires_grad=True)
    F.conv2d(x, w, padding=1).sum().backward()
    assert x.grad is None and w.grad.shape == (3, 2, 3, 3)


@pytest.mark.parametrize("x_shape, w_shape, kwargs, error, match", [
    ((3, 8, 8), (4, 3, 3, 3), {}, md.ShapeError, r"conv2d: expected a 4-D input.*\(3, 8, 8\)"),
    ((2, 3, 8, 8), (4, 5, 3, 3), {}, md.ShapeError,
     r"input has 3 channels \(shape \(2, 3, 8, 8\)\) but the weight expects 5 "
     r"\(weight shape \(4, 5, 3, 3\)\)"),
    ((1, 1, 3, 3), (1, 1, 5, 5), {}, md.ShapeError, r"kernel 5x5 is larger than the padded input 3x3"),
    ((1, 1, 3, 3), (1, 1, 6, 6), {"padding": 1}, md.ShapeError, r"kernel 6x6 .* padded input 5x5"),
    ((1, 1, 4, 4), (1, 1, 3, 3), {"stride": 0}, ValueError, r"conv2d: stride must be at least 1"),
    ((1, 1, 4, 4), (1, 1, 3, 3), {"padding": -1}, ValueError, r"conv2d: padding must be at least 0"),
    ((1, 1, 4, 4), (1, 1, 3, 3), {"stride": (1, 2, 3)}, ValueError, r"stride must be an int or a pair"),
    ((1, 1, 4, 4), (2, 1, 3, 3), {"bias": md.zeros(3)}, md.ShapeError, r"bias must have shape \(2,\)"),
])
def test_conv2d_errors_name_the_op_and_shapes(x_shape, w_shape, kwargs, error, match):
    with pytest.raises(error, match=match):
        F.conv2d(md.zeros(*x_shape), md.zeros(*w_shape), **kwargs)


# ---------------------------------------------------------------------------------------------
# PyTorch as an oracle (optional)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv2d_matches_torch(case, rng):
    torch = pytest.importorskip("torch")
    x_shape, w_shape, stride, padding, bias = case
    arrays = [rng.standard_normal(s) for s in (x_shape, w_shape, (w_shape[0],))]
    ours = [md.tensor(a, dtype=md.float64, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    y = F.conv2d(ours[0], ours[1], ours[2] if bias else None, stride=stride, padding=padding)
    yt = torch.nn.functional.conv2d(theirs[0], theirs[1], theirs[2] if bias else None,
                                    stride=stride, padding=padding)
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    gy = rng.standard_normal(y.shape)
    y.backward(md.tensor(gy, dtype=md.float64))
    yt.backward(torch.tensor(gy))
    for a, b in zip(ours[:3 if bias else 2], theirs):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-10, atol=1e-12)
