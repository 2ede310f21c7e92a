"""Hidden test for transition_layer: inputs the visible tests do not use."""
from minidense.grading import points
from test_transition_layer import FORBIDDEN, TASK, check_against_library  # noqa: F401


@points(1, visibility="after_published")
def test_hidden_matches_library_odd_sizes(student, rng):
    check_against_library(student, rng, 4, 5, (3, 4, 7, 5))
