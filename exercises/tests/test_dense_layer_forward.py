"""Graded tests for the dense_layer_forward task (10 points, 1 of them in a hidden test).

Weights always go from the test into the student's layer (``load_state_dict``), never the other
way: the expected values come from the library's layer with the test's own weights."""
import numpy as np

import minidense as md
from forbidden_names import DENSENET
from minidense.grading import points
from minidense.grading.testing import assert_close
from minidense.models.densenet import DenseLayer as ReferenceDenseLayer
from reference_layers import check_same_outputs, random_state

TASK = "dense_layer_forward"
FORBIDDEN = DENSENET


def batch(rng, shape=(2, 3, 5, 5), dtype=np.float32):
    return md.tensor(rng.standard_normal(shape).astype(dtype))


def reference_layer(rng, in_channels, growth_rate):
    return random_state(rng, ReferenceDenseLayer(in_channels, growth_rate))


def check_against_library(student, rng, in_channels, growth_rate, shape):
    check_same_outputs(student.DenseLayer(in_channels, growth_rate),
                       reference_layer(rng, in_channels, growth_rate), batch(rng, shape))


@points(2)
def test_output_shape(student, rng):
    assert student.DenseLayer(3, 4)(batch(rng)).shape == (2, 7, 5, 5)


@points(1)
def test_input_channels_come_first(student, rng):
    x = batch(rng)
    out = student.DenseLayer(3, 4)(x)
    assert_close(out.numpy()[:, :3], x.numpy(), "the output's first 3 channels", rtol=0,
                 known_mistakes={"concatenate [x, new features], the input first":
                                 out.numpy()[:, -3:]})


@points(2)
def test_parameter_names_and_shapes(student):
    state = student.DenseLayer(3, 4).state_dict()
    expected = {"norm1.weight": (3,), "norm1.bias": (3,), "norm1.running_mean": (3,),
                "norm1.running_var": (3,), "conv1.weight": (4, 3, 3, 3)}
    assert {name: tuple(value.shape) for name, value in state.items()} == expected


@points(3)
def test_matches_library_layer(student, rng):
    check_against_library(student, rng, 3, 4, (2, 3, 5, 5))


@points(1)
def test_input_gradient_matches_library(student, rng):
    reference = reference_layer(rng, 2, 2).to(dtype=md.float64)
    mine = student.DenseLayer(2, 2).to(dtype=md.float64)
    mine.load_state_dict(reference.state_dict())
    values = rng.standard_normal((2, 2, 3, 3))
    upstream = md.tensor(rng.standard_normal((2, 4, 3, 3)))
    grads = []
    for layer in (mine, reference):
        x = md.tensor(values, requires_grad=True)
        layer(x).backward(upstream)
        grads.append(x.grad.numpy())
    assert_close(grads[0], grads[1], "dL/dx through the layer", rtol=1e-8, atol=1e-10)
