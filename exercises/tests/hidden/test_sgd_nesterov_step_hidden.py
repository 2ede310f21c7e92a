"""Hidden test for sgd_nesterov_step: inputs the visible tests do not use."""
from minidense.grading import points
from test_sgd_nesterov_step import FORBIDDEN, TASK, check_against_library  # noqa: F401


@points(1, visibility="after_published")
def test_hidden_three_steps_strong_decay(student, rng):
    check_against_library(student, rng, (7,), 3, lr=0.05, momentum=0.5, weight_decay=0.1)
