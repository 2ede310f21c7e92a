"""Pooling: hand-computed values, max-pool ties (the gradient goes to one element), padding,
adaptive sizes, float64 gradient checks, errors, and PyTorch as an optional oracle."""
import numpy as np
import pytest

import minidense as md
import minidense.nn.functional as F

X4 = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)

# (kernel, stride, padding) for avg and max pooling, on a (2, 3, 5, 6) input
POOL_CASES = [(2, None, 0), (2, 1, 0), (3, 2, 1), ((2, 3), (1, 2), (1, 1)), (3, 3, 0)]


def test_avg_pool_hand_computed():
    y = F.avg_pool2d(md.tensor(X4), 2)
    np.testing.assert_allclose(y.numpy()[0, 0], [[2.5, 4.5], [10.5, 12.5]])
    # padding zeros are counted (PyTorch's count_include_pad=True): corner window holds 0, 1, 4, 5
    y = F.avg_pool2d(md.tensor(X4), 3, stride=2, padding=1)
    np.testing.assert_allclose(y.numpy()[0, 0, 0, 0], (0 + 1 + 4 + 5) / 9, rtol=1e-6)


def test_max_pool_hand_computed_and_padding_never_wins():
    y = F.max_pool2d(md.tensor(X4), 2)
    np.testing.assert_array_equal(y.numpy()[0, 0], [[5, 7], [13, 15]])
    negative = md.tensor(-1 - X4)                       # all values below the zero padding
    y = F.max_pool2d(negative, 3, stride=2, padding=1)
    np.testing.assert_array_equal(y.numpy()[0, 0], [[-1, -2], [-5, -6]])


def test_max_pool_ties_send_the_gradient_to_the_first_maximum_only():
    x = md.tensor(np.ones((1, 1, 2, 4)), dtype=md.float64, requires_grad=True)
    F.max_pool2d(x, 2).backward(md.tensor([[[[3.0, 5.0]]]], dtype=md.float64))
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], [[3, 0, 5, 0], [0, 0, 0, 0]])


def test_overlapping_max_windows_add_their_gradients():
    x = md.tensor(np.array([[[[0, 0, 0], [0, 9, 0], [0, 0, 0]]]]), dtype=md.float64,
                  requires_grad=True)
    y = F.max_pool2d(x, 2, stride=1)                    # all four windows pick the centre
    y.backward(md.tensor(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), dtype=md.float64))
    assert x.grad.numpy()[0, 0, 1, 1] == 10 and x.grad.numpy().sum() == 10


@pytest.mark.parametrize("pool", [F.avg_pool2d, F.max_pool2d])
@pytest.mark.parametrize("kernel, stride, padding", POOL_CASES)
def test_pool_gradcheck(pool, kernel, stride, padding, randt):
    x = randt(2, 3, 5, 6)
    md.gradcheck(lambda x: pool(x, kernel, stride=stride, padding=padding), (x,))


@pytest.mark.parametrize("size, expected_shape", [(1, (2, 3, 1, 1)), ((1, 1), (2, 3, 1, 1)),
                                                  ((2, 3), (2, 3, 2, 3)), (3, (2, 3, 3, 3)),
                                                  ((None, 2), (2, 3, 4, 2))])
def test_adaptive_avg_pool_shapes_and_gradcheck(size, expected_shape, randt):
    x = randt(2, 3, 4, 6)
    assert F.adaptive_avg_pool2d(x, size).shape == expected_shape
    md.gradcheck(lambda x: F.adaptive_avg_pool2d(x, size), (x,))


def test_global_average_pool_is_the_mean():
    x = md.randn(2, 5, 8, 8)
    np.testing.assert_allclose(F.adaptive_avg_pool2d(x, 1).numpy(),
                               x.numpy().mean(axis=(2, 3), keepdims=True), rtol=1e-6)


def test_one_window_pooling_drops_the_rows_and_columns_beyond_it(randt):
    x = randt(2, 3, 9, 10)                    # an 8x8 window fits once; row 8, columns 8-9 unused
    y = F.avg_pool2d(x, 8)
    np.testing.assert_allclose(y.numpy(), x.numpy()[:, :, :8, :8].mean(axis=(2, 3), keepdims=True))
    y.backward(md.ones(*y.shape, dtype=md.float64, device=x.device))
    assert (x.grad.numpy()[:, :, :8, :8] == 1 / 64).all()
    assert (x.grad.numpy()[:, :, 8:, :] == 0).all() and (x.grad.numpy()[:, :, :, 8:] == 0).all()
    md.gradcheck(lambda t: F.avg_pool2d(t, 8), (x,))


def test_adaptive_uneven_windows_overlap():
    # 5 columns to 3 cells: column windows [0, 2), [1, 4), [3, 5)
    x = md.tensor(np.arange(5.0).reshape(1, 1, 1, 5))
    y = F.adaptive_avg_pool2d(x, (1, 3))
    np.testing.assert_allclose(y.numpy().ravel(), [0.5, 2.0, 3.5])


def test_pools_keep_float32():
    x = md.randn(2, 3, 6, 6)
    for y in (F.avg_pool2d(x, 2), F.avg_pool2d(x, 3, 2, 1), F.max_pool2d(x, 3, 2, 1),
              F.adaptive_avg_pool2d(x, 1), F.adaptive_avg_pool2d(x, 4)):
        assert y.dtype == np.float32


@pytest.mark.parametrize("call, error, match", [
    (lambda: F.avg_pool2d(md.zeros(3, 4, 4), 2), md.ShapeError,
     r"avg_pool2d: expected a 4-D input \(N, C, H, W\), got shape \(3, 4, 4\)"),
    (lambda: F.max_pool2d(md.zeros(1, 1, 2, 2), 3), md.ShapeError,
     r"max_pool2d: kernel 3x3 is larger than the padded input 2x2"),
    (lambda: F.max_pool2d(md.zeros(1, 1, 4, 4), 2, padding=2), ValueError,
     r"max_pool2d: padding \(2, 2\) must be at most half the kernel size"),
    (lambda: F.avg_pool2d(md.zeros(1, 1, 4, 4), 2, stride=0), ValueError,
     r"avg_pool2d: stride must be at least 1"),
    (lambda: F.adaptive_avg_pool2d(md.zeros(4, 4), 1), md.ShapeError, r"adaptive_avg_pool2d.*\(4, 4\)"),
])
def test_pool_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("kernel, stride, padding", POOL_CASES)
def test_pools_match_torch(kernel, stride, padding, rng):
    torch = pytest.importorskip("torch")
    # distinct values, so that max pooling has no ties for the two libraries to break differently
    data = rng.permutation(2 * 3 * 5 * 6).reshape(2, 3, 5, 6) / 7.0
    gy_seed = np.random.default_rng(3)
    tf = torch.nn.functional
    for ours_fn, theirs_fn in ((F.avg_pool2d, tf.avg_pool2d), (F.max_pool2d, tf.max_pool2d)):
        x = md.tensor(data, dtype=md.float64, requires_grad=True)
        xt = torch.tensor(data, requires_grad=True)
        y = ours_fn(x, kernel, stride=stride, padding=padding)
        yt = theirs_fn(xt, kernel, stride=stride, padding=padding)
        np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-12)
        gy = gy_seed.standard_normal(y.shape)
        y.backward(md.tensor(gy, dtype=md.float64))
        yt.backward(torch.tensor(gy))
        np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("size", [1, (2, 3), 3, (4, 5)])
def test_adaptive_avg_pool_matches_torch(size, rng):
    torch = pytest.importorskip("torch")
    data = rng.standard_normal((2, 3, 7, 6))
    x = md.tensor(data, dtype=md.float64, requires_grad=True)
    xt = torch.tensor(data, requires_grad=True)
    y, yt = F.adaptive_avg_pool2d(x, size), torch.nn.functional.adaptive_avg_pool2d(xt, size)
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-12)
    gy = rng.standard_normal(y.shape)
    y.backward(md.tensor(gy, dtype=md.float64))
    yt.backward(torch.tensor(gy))
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-12)
