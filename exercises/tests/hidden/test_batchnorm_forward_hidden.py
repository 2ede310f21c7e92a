"""Hidden test for batchnorm_forward: inputs the visible tests do not use."""
import minidense as md
from minidense.grading import points
from minidense.grading.testing import assert_close
from test_batchnorm_forward import EPS, FORBIDDEN, TASK, reference_batch_norm, run  # noqa: F401


@points(1, visibility="after_published")
def test_hidden_training_with_momentum_three_tenths(student, rng):
    x = 2.0 - rng.standard_normal((5, 2, 3, 2))
    gamma, beta = rng.standard_normal(2), rng.standard_normal(2)
    start_mean, start_var = rng.standard_normal(2), rng.uniform(0.5, 2.0, 2)
    out, mean, var = run(student, x, gamma, beta, start_mean.copy(), start_var.copy(),
                         momentum=0.3)
    reference_mean, reference_var = start_mean.copy(), start_var.copy()
    expected = reference_batch_norm(md.tensor(x), reference_mean, reference_var,
                                    md.tensor(gamma), md.tensor(beta), training=True,
                                    momentum=0.3, eps=EPS)
    assert_close(out, expected.numpy(), "out", rtol=1e-9, atol=1e-12)
    assert_close(mean, reference_mean, "running_mean", rtol=1e-12)
    assert_close(var, reference_var, "running_var", rtol=1e-12)
