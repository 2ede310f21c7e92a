"""Hidden tests for maxpool_backward: inputs the visible tests do not use."""
from minidense.grading import points
from minidense.grading.testing import assert_close
from test_maxpool_backward import FORBIDDEN, TASK, maxpool_forward, reference_dx  # noqa: F401


@points(1, visibility="after_published")
def test_hidden_matches_library_backward(student, rng):
    x = rng.standard_normal((2, 3, 6, 6))
    out, cache = maxpool_forward(x, 2, 2)
    dout = rng.standard_normal(out.shape)
    assert_close(student.maxpool_backward(dout, cache), reference_dx(x, dout, 2, 2), "dx")


@points(1, visibility="after_published")
def test_hidden_kernel_three_stride_one(student, rng):
    x = rng.standard_normal((1, 2, 6, 5))
    out, cache = maxpool_forward(x, 3, 1)
    dout = rng.standard_normal(out.shape)
    assert_close(student.maxpool_backward(dout, cache), reference_dx(x, dout, 3, 1), "dx")
