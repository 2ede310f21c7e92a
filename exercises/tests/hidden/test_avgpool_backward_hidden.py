"""Hidden test for avgpool_backward: inputs the visible tests do not use."""
import numpy as np

from minidense.grading import points
from minidense.grading.testing import assert_close
from test_avgpool_backward import FORBIDDEN, TASK, avgpool_forward, reference_dx  # noqa: F401


@points(1, visibility="after_published")
def test_hidden_kernel_three_stride_one(student, rng):
    x = rng.standard_normal((3, 2, 5, 7))
    out, cache = avgpool_forward(x, 3, 1)
    dout = rng.standard_normal(out.shape)
    assert_close(student.avgpool_backward(dout, cache), reference_dx(x, dout, 3, 1), "dx",
                 rtol=1e-10)
