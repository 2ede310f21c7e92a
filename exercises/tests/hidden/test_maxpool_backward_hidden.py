"""Hidden tests for maxpool_backward: inputs the visible tests do not use."""
from minidense.grading import points
from test_maxpool_backward import FORBIDDEN, TASK, check_against_library  # noqa: F401


@points(1, visibility="after_published")
def test_hidden_matches_library_backward(student, rng):
    check_against_library(student, rng.standard_normal((2, 3, 6, 6)), 2, 2, rng)


@points(1, visibility="after_published")
def test_hidden_kernel_three_stride_one(student, rng):
    check_against_library(student, rng.standard_normal((1, 2, 6, 5)), 3, 1, rng)
