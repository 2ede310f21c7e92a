"""Hidden test for conv2d_backward: inputs the visible tests do not use."""
from minidense.grading import points
from test_conv2d_backward import FORBIDDEN, TASK, check_against_library  # noqa: F401


@points(1, visibility="after_published")
def test_hidden_non_square_kernel_padding_two(student, rng):
    x, w, b = (rng.standard_normal((3, 2, 4, 7)), rng.standard_normal((5, 2, 2, 3)),
               rng.standard_normal(5))
    check_against_library(student, x, w, b, 1, 2, rng)
