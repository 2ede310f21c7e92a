"""dropout, softmax, log_softmax, cross_entropy, nll_loss and linear: values, statistics,
determinism, float64 gradient checks, stability for large logits, errors, PyTorch oracle."""
import numpy as np
import pytest

import minidense as md
from conftest import REAL_GPU
import minidense.nn as nn
import minidense.nn.functional as F


# ---------------------------------------------------------------------------------------------
# dropout
# ---------------------------------------------------------------------------------------------
def test_dropout_statistics_and_scaling():
    x = md.ones(200, 500)
    y = F.dropout(x, p=0.3, training=True).numpy()
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.005                  # 100k draws: std of the mean ~0.0015
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)   # survivors scaled by 1 / (1 - p)
    assert abs(y.mean() - 1.0) < 0.01                      # expectation preserved
    assert y.dtype == np.float32


def test_dropout_is_reproducible_with_manual_seed():
    md.manual_seed(42)
    first = F.dropout(md.ones(4, 50), 0.5).numpy()
    md.manual_seed(42)
    again = F.dropout(md.ones(4, 50), 0.5).numpy()
    different = F.dropout(md.ones(4, 50), 0.5).numpy()
    np.testing.assert_array_equal(first, again)
    assert (first != different).any()


def test_dropout_is_the_identity_in_eval_or_with_p_zero():
    x = md.randn(3, 4, requires_grad=True)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0, training=True) is x


def test_dropout_gradient_uses_the_same_mask(randt):
    x = randt(6, 7)
    y = F.dropout(x, 0.4)
    gy = np.random.default_rng(0).standard_normal(y.shape)
    y.backward(md.tensor(gy, dtype=md.float64, device=x.device))
    mask = y.numpy() / x.numpy()
    np.testing.assert_allclose(x.grad.numpy(), gy * mask)
    assert set(np.round(np.unique(mask), 6)) <= {0.0, round(1 / 0.6, 6)}


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_dropout_rejects_bad_probabilities(p):
    with pytest.raises(ValueError, match=rf"dropout: .* \[0, 1\], got {p}"):
        F.dropout(md.ones(2), p)


def test_dropout_with_p_one_zeroes_everything_and_its_gradient(randt):
    x = randt(3, 4)
    y = F.dropout(x, 1.0, training=True)
    np.testing.assert_array_equal(y.numpy(), np.zeros((3, 4)))
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((3, 4)))
    drop = nn.Dropout(1.0)
    np.testing.assert_array_equal(drop(md.ones(2, 5)).numpy(), np.zeros((2, 5)))
    drop.eval()
    np.testing.assert_array_equal(drop(md.ones(2, 5)).numpy(), np.ones((2, 5)))


# ---------------------------------------------------------------------------------------------
# softmax and log_softmax
# ---------------------------------------------------------------------------------------------
def test_softmax_and_log_softmax_values():
    x = md.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, np.log(2.0)]])
    e = np.exp([1.0, 2.0, 3.0])
    np.testing.assert_allclose(F.softmax(x).numpy()[0], e / e.sum(), rtol=1e-6)
    np.testing.assert_allclose(F.softmax(x, dim=1).numpy()[1], [0.25, 0.25, 0.5], rtol=1e-6)
    np.testing.assert_allclose(F.log_softmax(x, axis=-1).numpy()[1], np.log([0.25, 0.25, 0.5]),
                               rtol=1e-6)
    np.testing.assert_allclose(F.softmax(x, axis=0).numpy().sum(0), 1, rtol=1e-6)


def test_softmax_is_stable_for_huge_inputs():
    x = md.tensor([[1000.0, 1001.0, 999.0], [-1000.0, -1001.0, -1002.0]])
    for y in (F.softmax(x, 1), F.log_softmax(x, 1)):
        assert np.isfinite(y.numpy()).all()
    np.testing.assert_allclose(F.log_softmax(x, 1).numpy()[0],
                               [-1, 0, -2] - np.log(np.exp([-1, 0, -2]).sum()), rtol=1e-6)


@pytest.mark.parametrize("fn", [F.softmax, F.log_softmax])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_gradcheck(fn, axis, randt):
    x = randt(3, 4, 2)
    md.gradcheck(lambda x: fn(x, axis=axis), (x,))


@pytest.mark.parametrize("fn", [F.softmax, F.log_softmax])
def test_softmax_second_derivative(fn, randt):
    md.gradgradcheck(lambda x: fn(x, axis=1), (randt(2, 4),))


# ---------------------------------------------------------------------------------------------
# cross_entropy, nll_loss
# ---------------------------------------------------------------------------------------------
def test_cross_entropy_value_and_gradient_by_hand():
    logits = md.tensor([[0.0, 0.0, np.log(2.0)], [1.0, 1.0, 1.0]], requires_grad=True)
    loss = F.cross_entropy(logits, md.tensor([2, 0]))
    np.testing.assert_allclose(loss.item(), (-np.log(0.5) - np.log(1 / 3)) / 2, rtol=1e-6)
    loss.backward()
    onehot = np.array([[0, 0, 1], [1, 0, 0]])
    probs = np.array([[0.25, 0.25, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    np.testing.assert_allclose(logits.grad.numpy(), (probs - onehot) / 2, rtol=1e-6)


def test_cross_entropy_is_finite_and_right_for_logits_around_1e3():
    logits = md.tensor([[1000.0, 1010.0, 990.0], [-1000.0, -1003.0, -998.0]], requires_grad=True)
    targets = np.array([1, 0])
    loss = F.cross_entropy(logits, targets)
    shifted = logits.numpy().astype(np.float64)
    shifted -= shifted.max(1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    expected = -log_probs[[0, 1], targets].mean()
    assert np.isfinite(loss.item())
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-5)
    loss.backward()
    assert np.isfinite(logits.grad.numpy()).all()
    np.testing.assert_allclose(logits.grad.numpy().sum(1), 0, atol=1e-6)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_gradcheck(reduction, randt):
    logits = randt(4, 5)
    targets = md.tensor([0, 4, 2, 2])
    md.gradcheck(lambda z: F.cross_entropy(z, targets, reduction=reduction), (logits,))


def test_nll_loss_picks_the_target_entries(randt):
    log_probs = randt(3, 4)
    targets = np.array([3, 0, 1])
    loss = F.nll_loss(log_probs, targets, reduction="none")
    np.testing.assert_allclose(loss.numpy(), -log_probs.numpy()[[0, 1, 2], targets])
    md.gradcheck(lambda z: F.nll_loss(z, targets), (log_probs,))


@pytest.mark.parametrize("logits_shape, targets, error, match", [
    ((2, 3), [0, 3], ValueError, r"cross_entropy: target class indices must be in \[0, 2\] for 3 "
                                  r"classes, got \[3\]"),
    ((2, 3), [-1, 0], ValueError, r"got \[-1\]"),
    ((2, 3), [0, 1, 2], md.ShapeError, r"targets must have shape \(2,\) to match scores \(2, 3\), "
                                        r"got \(3,\)"),
    ((2, 3), [[0], [1]], md.ShapeError, r"got \(2, 1\)"),
    ((2, 3), [0.0, 1.0], TypeError, r"targets must be integer class indices, got dtype float"),
    ((2, 3, 4), [0, 1], md.ShapeError, r"expected scores of shape \(N, C\), got \(2, 3, 4\)"),
])
def test_cross_entropy_errors(logits_shape, targets, error, match):
    with pytest.raises(error, match=match):
        F.cross_entropy(md.zeros(*logits_shape), np.array(targets))


def test_on_a_gpu_out_of_range_targets_give_nan_without_a_host_sync(cuda):
    """Reading targets back would stall the GPU every batch: the check happens on the device."""
    from minidense import cupy_emulation
    logits = md.tensor(np.zeros((3, 4)), device=cuda, requires_grad=True)
    good, bad = md.tensor([0, 3, 1], device=cuda), md.tensor([0, 4, 1], device=cuda)
    with cupy_emulation.counting() as counts:
        losses = F.cross_entropy(logits, bad, reduction="none")
        loss = F.cross_entropy(logits, good)
    if not REAL_GPU:
        assert counts.syncs == 0
    values = losses.numpy()
    assert np.isnan(values[1]) and np.allclose(values[[0, 2]], np.log(4))
    assert loss.item() == pytest.approx(np.log(4))
    loss.backward()
    assert np.isfinite(logits.grad.numpy()).all()


def test_unknown_reduction_is_refused():
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.cross_entropy(md.zeros(2, 3), np.array([0, 1]), reduction="average")


# ---------------------------------------------------------------------------------------------
# linear
# ---------------------------------------------------------------------------------------------
def test_linear_value_and_gradcheck(randt):
    x, w, b = randt(4, 3), randt(2, 3), randt(2)
    np.testing.assert_allclose(F.linear(x, w, b).numpy(), x.numpy() @ w.numpy().T + b.numpy())
    md.gradcheck(F.linear, (x, w, b))
    md.gradcheck(lambda x, w: F.linear(x, w), (x, w))


def test_linear_accepts_one_sample_as_a_1d_input(randt):
    x, w, b = randt(3), randt(2, 3), randt(2)
    y = F.linear(x, w, b)
    assert y.shape == (2,)
    np.testing.assert_allclose(y.numpy(), w.numpy() @ x.numpy() + b.numpy())
    md.gradcheck(F.linear, (x, w, b))
    layer = nn.Linear(3, 2)
    np.testing.assert_allclose(layer(md.tensor([1.0, 2.0, 3.0])).numpy(),
                               layer(md.tensor([[1.0, 2.0, 3.0]])).numpy()[0], rtol=1e-6)


def test_linear_feature_mismatch_names_the_shapes():
    with pytest.raises(md.ShapeError, match=r"linear: input of shape \(4, 3\) has 3 features but "
                                            r"the weight \(2, 5\) expects 5"):
        F.linear(md.zeros(4, 3), md.zeros(2, 5))


def test_flatten_and_relu_are_exported():
    x = md.tensor(np.array([[[[-1.0, 2.0]]]]))
    assert F.flatten(x, 1).shape == (1, 2)
    np.testing.assert_array_equal(F.relu(x).numpy(), [[[[0, 2]]]])


# ---------------------------------------------------------------------------------------------
# PyTorch as an oracle (optional)
# ---------------------------------------------------------------------------------------------
def test_cross_entropy_and_log_softmax_match_torch(rng):
    torch = pytest.importorskip("torch")
    data = rng.standard_normal((6, 5)) * 300     # large logits
    targets = rng.integers(0, 5, size=6)
    for reduction in ("mean", "sum", "none"):
        z = md.tensor(data, dtype=md.float64, requires_grad=True)
        zt = torch.tensor(data, requires_grad=True)
        loss = F.cross_entropy(z, targets, reduction=reduction)
        loss_t = torch.nn.functional.cross_entropy(zt, torch.tensor(targets), reduction=reduction)
        np.testing.assert_allclose(loss.numpy(), loss_t.detach().numpy(), rtol=1e-12)
        gy = rng.standard_normal(loss.shape)
        loss.backward(md.tensor(gy, dtype=md.float64))
        loss_t.backward(torch.tensor(gy))
        np.testing.assert_allclose(z.grad.numpy(), zt.grad.numpy(), rtol=1e-10, atol=1e-14)
    z = md.tensor(data / 300, dtype=md.float64)
    np.testing.assert_allclose(F.log_softmax(z, dim=0).numpy(),
                               torch.log_softmax(torch.tensor(data / 300), dim=0).numpy(), rtol=1e-12)
