"""Where PyTorch defines what happens to NaN, empty batches and integer inputs, minidense agrees."""
import numpy as np
import pytest

import minidense as md
from minidense.nn import functional as F


@pytest.mark.parametrize("position", [0, 1, 3])
def test_max_pool_propagates_nan_wherever_it_is_in_the_window(position):
    values = np.array([1.0, 5.0, 3.0, 2.0], np.float32)
    values[position] = np.nan
    x = md.tensor(values.reshape(1, 1, 2, 2), requires_grad=True)
    y = F.max_pool2d(x, 2)
    assert np.isnan(y.item())
    y.sum().backward()
    expected = np.zeros(4, np.float32)
    expected[position] = 1.0                    # the NaN is the maximum and takes the gradient
    np.testing.assert_array_equal(x.grad.numpy().ravel(), expected)


def test_max_pool_with_two_nans_gives_the_gradient_to_the_first():
    x = md.tensor(np.array([[[[np.nan, 1.0], [np.nan, 2.0]]]], np.float32), requires_grad=True)
    F.max_pool2d(x, 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy().ravel(), [1.0, 0.0, 0.0, 0.0])


def test_max_pool_without_nan_is_unchanged():
    x = md.tensor(np.array([[[[1.0, 4.0], [4.0, 2.0]]]], np.float32), requires_grad=True)
    y = F.max_pool2d(x, 2)
    y.sum().backward()
    assert y.item() == 4.0
    np.testing.assert_array_equal(x.grad.numpy().ravel(), [0.0, 1.0, 0.0, 0.0])   # first tie


def test_cross_entropy_of_an_empty_batch_is_nan():
    logits = md.tensor(np.zeros((0, 10), np.float32), requires_grad=True)
    loss = F.cross_entropy(logits, md.tensor(np.zeros(0, np.int64)))
    assert np.isnan(loss.item())
    loss.backward()
    assert logits.grad.shape == (0, 10)
    summed = F.cross_entropy(logits, md.tensor(np.zeros(0, np.int64)), reduction="sum")
    assert summed.item() == 0.0


@pytest.mark.parametrize("function", [F.softmax, F.log_softmax])
@pytest.mark.parametrize("values", [[1, 2, 3], [True, False]])
def test_softmax_of_an_integer_or_bool_tensor_raises(function, values):
    with pytest.raises(TypeError, match="needs floating-point values.*x.float()"):
        function(md.tensor(values), axis=0)
    probabilities = function(md.tensor(values).float(), axis=0)
    assert probabilities.dtype == np.float32


def test_mean_of_an_empty_tensor_is_nan():
    assert np.isnan(md.tensor(np.zeros((0, 3))).mean().item())
    np.testing.assert_array_equal(md.tensor(np.zeros((0, 3))).mean(axis=0).numpy(), [np.nan] * 3)
    np.testing.assert_array_equal(md.tensor(np.ones((2, 3))).mean(axis=1).numpy(), [1.0, 1.0])


def test_max_and_min_send_the_gradient_to_the_nan():
    x = md.tensor(np.array([[1.0, np.nan, 3.0], [1.0, 2.0, 3.0]]), requires_grad=True)
    x.max(axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 1, 0], [0, 0, 1]])
    x.grad = None
    x.min(axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 1, 0], [1, 0, 0]])
