"""A learner's mistakes get PyTorch's answer, in words that say what to change: text or objects
in a tensor, a fractional batch size, a layer fed another dtype than its weights."""
import numpy as np
import pytest

import minidense as md
from minidense import nn
from minidense.data import DataLoader, get_dataset


@pytest.mark.parametrize("data, shown", [
    (["1", "2"], "dtype <U1 (text)"),
    (np.array([{}, 1], dtype=object), "dtype object (Python objects)"),
    (np.array([b"ab"]), "dtype |S2 (bytes)"),
])
def test_tensors_hold_numbers_and_booleans_only(data, shown):
    with pytest.raises(TypeError) as info:
        md.tensor(data)
    message = str(info.value)
    assert "a tensor holds numbers or booleans, as in PyTorch" in message and shown in message


def test_adding_text_to_a_tensor_is_refused():
    with pytest.raises(TypeError, match="dtype <U1 \\(text\\)"):
        md.tensor([1.0, 2.0]) + "1"


def test_numbers_and_booleans_still_make_tensors():
    assert md.tensor([1, 2]).dtype == np.int64 and md.tensor([1.5]).dtype == np.float32
    assert md.tensor([True, False]).dtype == np.bool_
    assert md.tensor(np.array([1 + 2j])).dtype == np.complex128


@pytest.mark.parametrize("option, value", [("batch_size", 2.5), ("batch_size", 0),
                                           ("batch_size", True), ("limit", 1.5)])
def test_data_loader_refuses_counts_that_are_not_whole(option, value):
    with pytest.raises(ValueError) as info:
        DataLoader(get_dataset("sample", train=False), **{option: value})
    assert str(info.value) == (f"DataLoader: {option} must be a whole number of at least 1, got "
                               f"{value!r}")


def test_data_loader_accepts_numpy_integers():
    loader = DataLoader(get_dataset("sample", train=False), batch_size=np.int64(100))
    assert loader.batch_size == 100 and len(loader) == 20        # 2,000 test images


@pytest.mark.parametrize("layer, input_shape", [(nn.Linear(3, 2), (4, 3)),
                                                (nn.Conv2d(3, 2, 1), (4, 3, 5, 5))])
def test_every_layer_refuses_an_input_of_another_dtype_naming_both(layer, input_shape):
    x = md.tensor(np.ones(input_shape))          # float64; the layer's weights are float32
    with pytest.raises(TypeError) as info:
        layer(x)
    assert "input is float64 but weight is float32" in str(info.value)


def test_linear_runs_once_the_dtypes_agree():
    layer = nn.Linear(3, 2)
    assert layer(md.ones(4, 3)).dtype == np.float32
    assert layer.to(md.float64)(md.tensor(np.ones((4, 3)))).dtype == np.float64
