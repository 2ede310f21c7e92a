"""Hidden test for conv2d_forward: inputs the visible tests do not use."""
from minidense.grading import points
from minidense.grading.testing import assert_close
from test_conv2d_forward import FORBIDDEN, TASK, library_conv2d  # noqa: F401


@points(1, visibility="after_published")
def test_hidden_stride_three_wide_kernel(student, rng):
    x, w, b = (rng.standard_normal((2, 3, 8, 9)), rng.standard_normal((4, 3, 2, 4)),
               rng.standard_normal(4))
    out, _ = student.conv2d_forward(x, w, b, stride=3, padding=1)
    assert_close(out, library_conv2d(x, w, b, 3, 1), "out", rtol=1e-9, atol=1e-12)
