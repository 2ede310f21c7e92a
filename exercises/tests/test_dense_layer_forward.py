"""Graded tests for the dense_layer_forward task (10 points)."""
import numpy as np

import minidense as md
from forbidden_names import DENSENET
from minidense.grading import points
from minidense.models.densenet import DenseLayer as ReferenceDenseLayer

TASK = "dense_layer_forward"
FORBIDDEN = DENSENET


def batch(rng, shape=(2, 3, 5, 5)):
    return md.tensor(rng.standard_normal(shape).astype(np.float32))


@points(2)
def test_output_shape(student, rng):
    assert student.DenseLayer(3, 4)(batch(rng)).shape == (2, 7, 5, 5)


@points(2)
def test_input_channels_come_first(student, rng):
    x = batch(rng)
    out = student.DenseLayer(3, 4)(x)
    np.testing.assert_array_equal(out.numpy()[:, :3], x.numpy())


@points(2)
def test_parameter_names_and_shapes(student):
    state = student.DenseLayer(3, 4).state_dict()
    expected = {"norm1.weight": (3,), "norm1.bias": (3,), "norm1.running_mean": (3,),
                "norm1.running_var": (3,), "conv1.weight": (4, 3, 3, 3)}
    assert {name: tuple(value.shape) for name, value in state.items()} == expected


@points(3)
def test_matches_library_layer(student, rng):
    mine, reference = student.DenseLayer(3, 4), ReferenceDenseLayer(3, 4)
    reference.load_state_dict(mine.state_dict())
    x = batch(rng)
    np.testing.assert_allclose(mine(x).numpy(), reference(x).numpy(), rtol=1e-5, atol=1e-6)
    mine.eval(), reference.eval()
    np.testing.assert_allclose(mine(x).numpy(), reference(x).numpy(), rtol=1e-5, atol=1e-6)


@points(1)
def test_gradcheck_through_the_layer(student, rng):
    layer = student.DenseLayer(2, 2).to(dtype=md.float64)
    x = md.tensor(rng.standard_normal((2, 2, 3, 3)), requires_grad=True)
    md.gradcheck(layer, x)
