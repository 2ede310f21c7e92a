"""Hidden test for avgpool_backward: inputs the visible tests do not use."""
from minidense.grading import points
from test_avgpool_backward import FORBIDDEN, TASK, check_against_library  # noqa: F401


@points(1, visibility="after_published")
def test_hidden_kernel_three_stride_one(student, rng):
    check_against_library(student, rng.standard_normal((3, 2, 5, 7)), 3, 1, rng)
