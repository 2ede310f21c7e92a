"""What layer tests share: weights of the test's own, pushed into the student's layer."""
from minidense.grading.testing import assert_close


def random_state(rng, layer):
    """Give ``layer`` (the library's) random weights and batch-norm statistics; returns it."""
    state = {name: rng.uniform(0.5, 1.5, value.shape) if name.endswith(("weight", "var"))
             else rng.standard_normal(value.shape) for name, value in layer.state_dict().items()}
    for name, value in state.items():
        if value.ndim == 4:                                    # a convolution's weight
            state[name] = 0.3 * rng.standard_normal(value.shape)
    layer.load_state_dict(state)
    return layer


def check_same_outputs(mine, reference, x):
    """Load the reference's weights into the student's layer (never the other way) and compare
    their outputs in training mode, then in evaluation mode."""
    mine.load_state_dict(reference.state_dict())
    for mode in ("training", "eval"):
        if mode == "eval":
            mine.eval(), reference.eval()
        assert_close(mine(x).numpy(), reference(x).numpy(), f"the output in {mode} mode",
                     rtol=1e-5, atol=1e-5)
