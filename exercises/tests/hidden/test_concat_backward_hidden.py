"""Hidden test for concat_backward: inputs the visible tests do not use."""
import numpy as np

import minidense as md
from minidense.grading import points
from minidense.grading.testing import assert_close
from test_concat_backward import FORBIDDEN, TASK, leaves  # noqa: F401


@points(1, visibility="after_published")
def test_hidden_four_inputs_along_axis_two(student, rng):
    inputs = leaves(rng, (2, 3, 1, 2), (2, 3, 4, 2), (2, 3, 2, 2), (2, 3, 1, 2))
    out = student.concat(inputs, axis=2)
    assert_close(out.numpy(), np.concatenate([t.numpy() for t in inputs], axis=2), "out")
    upstream = rng.standard_normal(out.shape)
    out.backward(md.tensor(upstream))
    for index, (start, stop) in enumerate([(0, 1), (1, 5), (5, 7), (7, 8)]):
        assert_close(inputs[index].grad.numpy(), upstream[:, :, start:stop],
                     f"the gradient of input {index}")
