"""batch_norm: training and evaluation values, the running-statistics update (unbiased variance),
gradients for x, weight and bias in both modes, the array-level helpers, errors, PyTorch oracle."""
import numpy as np
import pytest

import minidense as md
import minidense.nn.functional as F
from minidense.ops.normalization import (BatchNorm, batch_norm_backward, batch_statistics,
                                         scale_shift, update_running_stats)


def test_training_normalises_with_batch_statistics_and_updates_running_stats():
    # channel 0 holds 1..4, channel 1 holds 10, 10, 20, 20 (N=2, H=1, W=2)
    x = md.tensor(np.array([[[[1, 2]], [[10, 10]]], [[[3, 4]], [[20, 20]]]], dtype=np.float32))
    running_mean, running_var = md.zeros(2), md.ones(2)
    y = F.batch_norm(x, running_mean, running_var, md.tensor([2.0, 1.0]), md.tensor([0.5, 0.0]),
                     training=True, momentum=0.1, eps=0.0)
    # channel 0: mean 2.5, biased var 1.25; channel 1: mean 15, biased var 25
    expected0 = 2 * (np.array([1, 2, 3, 4]) - 2.5) / np.sqrt(1.25) + 0.5
    np.testing.assert_allclose(y.numpy()[:, 0].ravel(), expected0, rtol=1e-6)
    np.testing.assert_allclose(y.numpy()[:, 1].ravel(), [-1, -1, 1, 1], rtol=1e-6)
    # running stats: 0.9 * old + 0.1 * batch, with the unbiased variance (M = 4: var * 4/3)
    np.testing.assert_allclose(running_mean.numpy(), [0.25, 1.5], rtol=1e-6)
    np.testing.assert_allclose(running_var.numpy(), [0.9 + 0.1 * 1.25 * 4 / 3, 0.9 + 0.1 * 25 * 4 / 3],
                               rtol=1e-6)


def test_running_stats_as_arrays_are_updated_in_place_and_2d_input_works(rng):
    x = md.tensor(rng.standard_normal((6, 3)) * 2 + 5, dtype=md.float32)
    running_mean, running_var = np.zeros(3, np.float32), np.ones(3, np.float32)
    ids = id(running_mean), id(running_var)
    y = F.batch_norm(x, running_mean, running_var, training=True, momentum=0.5)
    assert (id(running_mean), id(running_var)) == ids and running_mean.dtype == np.float32
    np.testing.assert_allclose(running_mean, 0.5 * x.numpy().mean(0), rtol=1e-5)
    np.testing.assert_allclose(running_var, 0.5 + 0.5 * x.numpy().var(0, ddof=1), rtol=1e-5)
    np.testing.assert_allclose(y.numpy().mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(y.numpy().var(0), 1, rtol=1e-3)
    assert y.dtype == np.float32


def test_evaluation_uses_running_stats_and_leaves_them_alone():
    x = md.tensor(np.arange(8, dtype=np.float32).reshape(2, 2, 1, 2))
    running_mean, running_var = md.tensor([1.0, 2.0]), md.tensor([4.0, 0.25])
    y = F.batch_norm(x, running_mean, running_var, md.tensor([1.0, 3.0]), md.tensor([0.0, 1.0]),
                     training=False, eps=0.0)
    data = x.numpy()
    expected = np.stack([(data[:, 0] - 1) / 2, 3 * (data[:, 1] - 2) / 0.5 + 1], axis=1)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-6)
    np.testing.assert_array_equal(running_mean.numpy(), [1, 2])
    np.testing.assert_array_equal(running_var.numpy(), [4, 0.25])


@pytest.mark.parametrize("shape", [(4, 3, 2, 3), (5, 2)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradcheck_for_x_weight_bias(shape, training, randt, rng):
    x, gamma, beta = randt(*shape), randt(shape[1]), randt(shape[1])
    mean, var = rng.standard_normal(shape[1]), rng.random(shape[1]) + 0.5

    def fn(x, gamma, beta):
        # fresh copies: the training-mode update must not change what the check sees
        return F.batch_norm(x, md.tensor(mean, device=x.device), md.tensor(var, device=x.device),
                            gamma, beta, training=training)
    report = md.gradcheck(fn, (x, gamma, beta))
    assert [r["shape"] for r in report.rows] == [shape, (shape[1],), (shape[1],)]


def test_batch_norm_without_affine_parameters_has_gradient_for_x(randt):
    x = randt(4, 2, 2, 2)
    md.gradcheck(lambda x: F.batch_norm(x, None, None, training=True), (x,))


def test_array_helpers_match_the_function_and_the_compact_formula(rng):
    x = rng.standard_normal((4, 3, 2, 2))
    gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
    x_hat, inv_std, _, _ = batch_statistics(x, eps=1e-5)
    y = scale_shift(x_hat, gamma, beta)
    xt, gt, bt = (md.tensor(a, dtype=md.float64, requires_grad=True) for a in (x, gamma, beta))
    yt = BatchNorm(training=True)(xt, gt, bt)       # no running stats given: nothing updated
    np.testing.assert_allclose(y, yt.numpy(), rtol=1e-12, atol=1e-12)
    gy = rng.standard_normal(y.shape)
    yt.backward(md.tensor(gy, dtype=md.float64))
    gx, ggamma, gbeta = batch_norm_backward(gy, x_hat, inv_std, gamma, training=True)
    # the long way round: differentiate x_hat = (x - mu) / sigma through mu and var
    m, axes = 4 * 2 * 2, (0, 2, 3)
    mu, var = x.mean(axes, keepdims=True), x.var(axes, keepdims=True)
    sigma = np.sqrt(var + 1e-5)
    g_xhat = gy * gamma.reshape(1, 3, 1, 1)
    g_var = (g_xhat * (x - mu) * -0.5 * sigma ** -3).sum(axes, keepdims=True)
    g_mu = (-g_xhat / sigma).sum(axes, keepdims=True) + g_var * (-2 * (x - mu)).mean(axes, keepdims=True)
    long_way = g_xhat / sigma + g_var * 2 * (x - mu) / m + g_mu / m
    np.testing.assert_allclose(gx, long_way, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ggamma, gt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gbeta, gy.sum(axes), rtol=1e-10, atol=1e-12)


def test_update_running_stats_separately_from_forward(rng):
    x = rng.standard_normal((3, 2, 2, 2)).astype(np.float32)
    _, _, batch_mean, batch_var = batch_statistics(x)
    mean, var = np.zeros(2, np.float32), np.ones(2, np.float32)
    update_running_stats(mean, var, batch_mean, batch_var, count=3 * 2 * 2, momentum=1.0)
    np.testing.assert_allclose(mean, x.mean((0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(var, x.var((0, 2, 3), ddof=1), rtol=1e-5)


def test_large_mean_does_not_destroy_the_float32_variance():
    x = md.tensor((1e4 + np.arange(8, dtype=np.float64)).reshape(8, 1).astype(np.float32))
    y = F.batch_norm(x, None, None, training=True, eps=0.0)
    expected = (np.arange(8) - 3.5) / np.arange(8).std()
    np.testing.assert_allclose(y.numpy().ravel(), expected, rtol=1e-3)


@pytest.mark.parametrize("call, error, match", [
    (lambda: F.batch_norm(md.zeros(2, 3, 4), md.zeros(3), md.ones(3), training=True),
     md.ShapeError, r"batch_norm: expected an \(N, C\) or \(N, C, H, W\) input, got shape \(2, 3, 4\)"),
    (lambda: F.batch_norm(md.zeros(2, 3, 2, 2), md.zeros(4), md.ones(4)),
     md.ShapeError, r"running_mean has shape \(4,\) but the input \(2, 3, 2, 2\) has 3 channels"),
    (lambda: F.batch_norm(md.zeros(2, 3), md.zeros(3), md.ones(3), md.ones(2)),
     md.ShapeError, r"weight has shape \(2,\)"),
    (lambda: F.batch_norm(md.zeros(1, 3), None, None, training=True),
     ValueError, r"more than one value per channel.*\(1, 3\)"),
    (lambda: F.batch_norm(md.zeros(2, 3), None, None, training=False),
     ValueError, r"evaluation mode .* needs running_mean"),
])
def test_batch_norm_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_batch_norm_matches_torch_including_running_stats(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((4, 3, 3, 2)) * 3 + 1
    gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
    gy = rng.standard_normal(x.shape)
    mean, var = np.zeros(3), np.ones(3)
    mean_t, var_t = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    ours = [md.tensor(a, dtype=md.float64, requires_grad=True) for a in (x, gamma, beta)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, gamma, beta)]
    for training in (True, True, False):
        y = F.batch_norm(ours[0], mean, var, ours[1], ours[2], training=training, momentum=0.2)
        yt = torch.nn.functional.batch_norm(theirs[0], mean_t, var_t, theirs[1], theirs[2],
                                            training=training, momentum=0.2)
        np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(mean, mean_t.numpy(), rtol=1e-12)
        np.testing.assert_allclose(var, var_t.numpy(), rtol=1e-12)
        y.backward(md.tensor(gy, dtype=md.float64))
        yt.backward(torch.tensor(gy))
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 2, 5)])
def test_channel_sum_is_the_sum_over_all_axes_but_the_channels(shape, rng, device):
    from minidense.kernels.normalization import channel_sum
    xp = md.backend.array_module(device)
    a, b = rng.standard_normal(shape), rng.standard_normal(shape)
    axes = (0,) + tuple(range(2, len(shape)))
    np.testing.assert_allclose(md.backend.to_numpy(channel_sum(xp.asarray(a))), a.sum(axis=axes))
    np.testing.assert_allclose(md.backend.to_numpy(channel_sum(xp.asarray(a), xp.asarray(b))),
                               (a * b).sum(axis=axes))


@pytest.mark.parametrize("training", [True, False])
def test_fused_batch_norm_relu_is_relu_of_batch_norm(training, randt, rng):
    x, gamma, beta = randt(4, 3, 2, 3), randt(3), randt(3)
    mean0, var0 = rng.standard_normal(3), rng.random(3) + 0.5

    def run(fused):
        mean, var = md.tensor(mean0, device=x.device), md.tensor(var0, device=x.device)
        if fused:
            y = F.batch_norm_relu(x, mean, var, gamma, beta, training=training)
        else:
            y = F.relu(F.batch_norm(x, mean, var, gamma, beta, training=training))
        gy = md.tensor(np.random.default_rng(5).standard_normal(y.shape), device=x.device)
        grads = md.grad(y, [x, gamma, beta], gy)
        return [a.numpy() for a in (y, *grads, mean, var)]
    for fused_value, plain_value in zip(run(True), run(False)):
        np.testing.assert_array_equal(fused_value, plain_value)
    md.gradcheck(lambda x, g, b: F.batch_norm_relu(x, None, None, g, b, training=True),
                 (x, gamma, beta))


def test_batch_norm_layer_with_fused_relu_names_itself_on_bad_input():
    with pytest.raises(ValueError, match=r"BatchNorm2d\(4.*expected input with 4 channels"):
        md.nn.BatchNorm2d(4).forward_with_relu(md.zeros(2, 3, 5, 5))


def test_shared_statistics_refuse_an_input_that_does_not_continue_the_channels_seen(rng):
    from minidense.kernels.normalization import SharedBatchStatistics
    statistics = SharedBatchStatistics(total_channels=6)
    x = rng.standard_normal((2, 4, 3, 3))
    x_hat, inv_std, mean, var = statistics.normalise(x, 1e-5)
    np.testing.assert_allclose(mean, x.mean(axis=(0, 2, 3)))
    np.testing.assert_allclose(x_hat, (x - x.mean(axis=(0, 2, 3), keepdims=True))
                               / np.sqrt(x.var(axis=(0, 2, 3), keepdims=True) + 1e-5))
    with pytest.raises(md.ShapeError, match=r"SharedBatchStatistics: an input of shape \(2, 3, 3, 3\)"):
        statistics.normalise(x[:, :3], 1e-5)             # fewer channels than already normalised
    with pytest.raises(md.ShapeError, match=r"\(3, 5, 3, 3\)"):
        statistics.normalise(rng.standard_normal((3, 5, 3, 3)), 1e-5)   # another batch size
    with pytest.raises(md.ShapeError, match="eps 0.001"):
        statistics.normalise(rng.standard_normal((2, 5, 3, 3)), 1e-3)
    with pytest.raises(md.ShapeError, match=r"\(2, 7, 3, 3\)"):
        statistics.normalise(rng.standard_normal((2, 7, 3, 3)), 1e-5)   # more than the total
