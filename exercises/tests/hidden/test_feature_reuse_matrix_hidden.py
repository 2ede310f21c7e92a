"""Hidden test for feature_reuse_matrix: inputs the visible tests do not use."""
from minidense.grading import points
from minidense.grading.testing import assert_close
from test_feature_reuse_matrix import FORBIDDEN, TASK, expected_matrix  # noqa: F401


@points(1, visibility="after_published")
def test_hidden_five_layers_growth_three(student, rng):
    layers = [rng.standard_normal((4, 3 + 3 * i, 3, 3)) for i in range(5)]
    following = rng.standard_normal((6, 18, 1, 1))
    assert_close(student.feature_reuse_matrix(layers, following, 3, 3),
                 expected_matrix(layers, following, 3, 3), "the matrix", rtol=1e-9,
                 equal_nan=True)
