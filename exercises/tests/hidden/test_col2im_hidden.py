"""Hidden test for col2im: inputs the visible tests do not use."""
from minidense.grading import points
from minidense.grading.testing import assert_close
from test_col2im import FORBIDDEN, TASK, reference_col2im  # noqa: F401


@points(1, visibility="after_published")
def test_hidden_stride_two_padding_two(student, rng):
    shape = (2, 3, 5, 6)                               # 3x2 kernel: 4 x 5 windows
    cols = rng.standard_normal((2, 3 * 3 * 2, 4 * 5))
    assert_close(student.col2im(cols, shape, 3, 2, stride=2, padding=2),
                 reference_col2im(cols, shape, (3, 2), stride=2, padding=2), "x", rtol=1e-10)
