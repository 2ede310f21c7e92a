"""Hidden test for batchnorm_backward: inputs the visible tests do not use."""
from minidense.grading import points
from test_batchnorm_backward import FORBIDDEN, TASK, check_against_library  # noqa: F401


@points(1, visibility="after_published")
def test_hidden_one_sample_many_pixels(student, rng):
    x = 3.0 * rng.standard_normal((1, 4, 6, 3)) - 2.0
    check_against_library(student, x, rng.uniform(-2.0, 2.0, 4), rng.standard_normal(4),
                          rng.standard_normal(x.shape))
