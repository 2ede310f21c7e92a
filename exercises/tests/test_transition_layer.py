"""Graded tests for the transition_layer task (10 points, 1 of them in a hidden test).

Weights always go from the test into the student's layer (``load_state_dict``), never the other
way: the expected values come from the test's own numbers or the library's layer."""
import numpy as np

import minidense as md
from forbidden_names import DENSENET
from minidense.grading import points
from minidense.grading.testing import assert_close
from minidense.models.densenet import Transition as ReferenceTransition
from reference_layers import check_same_outputs, random_state

TASK = "transition_layer"
FORBIDDEN = DENSENET


def batch(rng, shape=(2, 6, 8, 8)):
    return md.tensor(rng.standard_normal(shape).astype(np.float32))


@points(2)
def test_output_shape(student, rng):
    assert student.Transition(6, 3)(batch(rng)).shape == (2, 3, 4, 4)


@points(1)
def test_odd_size_is_floored(student, rng):
    assert student.Transition(6, 3)(batch(rng, (1, 6, 5, 7))).shape == (1, 3, 2, 3)


@points(2)
def test_parameter_names_and_shapes(student):
    state = student.Transition(6, 3).state_dict()
    expected = {"norm.weight": (6,), "norm.bias": (6,), "norm.running_mean": (6,),
                "norm.running_var": (6,), "conv.weight": (3, 6, 1, 1)}
    assert {name: tuple(value.shape) for name, value in state.items()} == expected


@points(2)
def test_hand_example_in_eval_mode(student, rng):
    layer = student.Transition(2, 1).eval()          # BN with running stats 0 and 1: x/sqrt(1+eps)
    layer.load_state_dict({"norm.weight": np.ones(2), "norm.bias": np.zeros(2),
                           "norm.running_mean": np.zeros(2), "norm.running_var": np.ones(2),
                           "conv.weight": np.array([[[[1.0]], [[-2.0]]]])})
    x = rng.standard_normal((1, 2, 4, 4)).astype(np.float32)
    mixed = np.maximum(x / np.sqrt(1 + 1e-5), 0) * np.array([1.0, -2.0]).reshape(1, 2, 1, 1)
    expected = mixed.sum(axis=1).reshape(1, 1, 2, 2, 2, 2).mean(axis=(3, 5))
    assert_close(layer(md.tensor(x)).numpy(), expected, "the output", rtol=1e-5, atol=1e-6)


def check_against_library(student, rng, in_channels, out_channels, shape):
    check_same_outputs(student.Transition(in_channels, out_channels),
                       random_state(rng, ReferenceTransition(in_channels, out_channels)),
                       batch(rng, shape))


@points(2)
def test_matches_library_transition(student, rng):
    check_against_library(student, rng, 6, 3, (2, 6, 8, 8))
