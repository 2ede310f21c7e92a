"""Hidden test for dense_layer_forward: inputs the visible tests do not use."""
from minidense.grading import points
from test_dense_layer_forward import FORBIDDEN, TASK, check_against_library  # noqa: F401


@points(1, visibility="after_published")
def test_hidden_matches_library_wider_layer(student, rng):
    check_against_library(student, rng, 5, 3, (3, 5, 4, 6))
