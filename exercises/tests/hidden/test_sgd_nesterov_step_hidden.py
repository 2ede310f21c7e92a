"""Hidden test for sgd_nesterov_step: inputs the visible tests do not use."""
import minidense as md
from minidense.grading import points
from minidense.grading.testing import assert_close
from test_sgd_nesterov_step import FORBIDDEN, SGD, TASK, Parameter  # noqa: F401


@points(1, visibility="after_published")
def test_hidden_three_steps_strong_decay(student, rng):
    start = rng.standard_normal(7)
    weight = Parameter(md.tensor(start.copy()))
    optimizer = SGD([weight], lr=0.05, momentum=0.5, nesterov=True, weight_decay=0.1)
    param, buffer = start.copy(), None
    for _ in range(3):
        grad = rng.standard_normal(start.shape)
        weight.grad = md.tensor(grad.copy())
        optimizer.step()
        param, buffer = student.sgd_nesterov_step(param, grad, buffer, lr=0.05, momentum=0.5,
                                                  weight_decay=0.1)
    assert_close(param, weight.numpy(), "param after 3 steps", rtol=1e-12)
