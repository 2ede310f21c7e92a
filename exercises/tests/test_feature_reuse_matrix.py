"""Graded tests for the feature_reuse_matrix task (10 points, 1 of them in a hidden test)."""
import numpy as np

from forbidden_names import FEATURE_REUSE
from minidense.analysis.feature_reuse import feature_reuse as reference_feature_reuse
from minidense.grading import points
from minidense.grading.testing import assert_close
from minidense.models.densenet import DenseNet

TASK = "feature_reuse_matrix"
FORBIDDEN = FEATURE_REUSE


def hand_example():
    """A block with c0 = 2 input maps, growth rate k = 1 and L = 2 layers."""
    layer1 = np.array([1.0, -3.0]).reshape(1, 2, 1, 1)
    layer2 = np.array([2.0, -4.0, 6.0]).reshape(1, 3, 1, 1)
    classifier = np.array([[1.0, 1.0, 2.0, 4.0], [-3.0, 5.0, 6.0, -8.0]])
    return [layer1, layer2], classifier


def expected_matrix(layer_weights, next_weight, c0, k):
    """The heatmap worked out here: cell (s, l-1) is the mean |weight| of target l over the
    input channels source s produced (s = 0: the block's input); the last column is the next
    layer's; cells with s >= l are NaN."""
    count = len(layer_weights)
    matrix = np.full((count + 1, count + 1), np.nan)
    sources = [slice(0, c0)] + [slice(c0 + (s - 1) * k, c0 + s * k) for s in range(1, count + 1)]
    targets = list(layer_weights) + [np.asarray(next_weight).reshape(
        next_weight.shape[0], next_weight.shape[1], -1)]
    for column, weight in enumerate(targets):
        for source in range(column + 1):
            matrix[source, column] = np.abs(weight[:, sources[source]]).mean()
    return matrix


@points(2)
def test_shape_and_mask(student, rng):
    layers = [rng.standard_normal((3, 4 + 3 * i, 3, 3)) for i in range(4)]
    matrix = student.feature_reuse_matrix(layers, rng.standard_normal((5, 16, 1, 1)), 4, 3)
    assert matrix.shape == (5, 5)
    source, column = np.indices((5, 5))
    masked = (column < 4) & (source >= column + 1)     # s >= l, with target l in column l-1
    assert_close(np.isnan(matrix), masked, "the mask (NaN cells)", rtol=0)


@points(3)
def test_hand_example(student):
    layers, classifier = hand_example()
    expected = np.array([[2.0, 3.0, 2.5],
                         [np.nan, 6.0, 4.0],
                         [np.nan, np.nan, 6.0]])
    assert_close(student.feature_reuse_matrix(layers, classifier, 2, 1), expected, "the matrix",
                 equal_nan=True)


@points(2)
def test_conv_and_linear_next_layers(student, rng):
    layers = [rng.standard_normal((2, 3 + 2 * i, 3, 3)) for i in range(3)]
    linear = rng.standard_normal((4, 9))
    expected = expected_matrix(layers, linear, 3, 2)
    assert_close(student.feature_reuse_matrix(layers, linear.reshape(4, 9, 1, 1), 3, 2),
                 expected, "the matrix with a 1x1 convolution next", equal_nan=True)
    assert_close(student.feature_reuse_matrix(layers, linear, 3, 2), expected,
                 "the matrix with a Linear layer next", equal_nan=True)


@points(2)
def test_matches_library_on_a_small_densenet(student):
    state = DenseNet(growth_rate=2, block_config=(2, 3), num_init_features=4,
                     num_classes=3).state_dict()
    for block, expected in enumerate(reference_feature_reuse(state), start=1):
        layers = [state[f"features.denseblock{block}.denselayer{l}.conv1.weight"]
                  for l in range(1, expected.shape[0])]
        next_key = "features.transition1.conv.weight" if block == 1 else "classifier.weight"
        matrix = student.feature_reuse_matrix(layers, state[next_key], layers[0].shape[1], 2)
        assert_close(matrix, expected, f"the matrix of block {block}", rtol=1e-6, equal_nan=True)
