"""Hidden test for im2col: inputs the visible tests do not use."""
from minidense.grading import points
from test_im2col import FORBIDDEN, TASK, check_against_library  # noqa: F401


@points(1, visibility="after_published")
def test_hidden_tall_kernel_padding_two(student, rng):
    check_against_library(student, rng.standard_normal((2, 4, 6, 5)), 3, 2, 1, 2)
