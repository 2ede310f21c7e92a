"""Hidden test for softmax_cross_entropy_backward: inputs the visible tests do not use."""
import numpy as np

from minidense.grading import points
from minidense.grading.testing import assert_close
from test_softmax_cross_entropy_backward import (FORBIDDEN, TASK, backward,  # noqa: F401
                                                 reference_dlogits)


@points(1, visibility="after_published")
def test_hidden_many_classes_repeated_targets(student, rng):
    logits, targets = 4.0 * rng.standard_normal((6, 9)), np.array([8, 8, 0, 3, 3, 5])
    assert_close(backward(student, logits, targets, dloss=-1.3),
                 reference_dlogits(logits, targets, -1.3), "dlogits", rtol=1e-9, atol=1e-12)
