"""What a DenseNet-40 training step asks of a GPU: kernel launches and host syncs, counted on the
CPU emulation of CuPy (minidense/cupy_emulation.py).

On a GPU the host issuing kernels, not the arithmetic, limits a DenseNet step (BENCHMARKS.md,
"GPU"), and every host sync stops the host until the device has caught up. The counts do not
depend on the batch size or the image size, so a batch of two small images counts the same as
the benchmark's batch of 64 at 32x32.
"""
import numpy as np
import pytest

import minidense as md
import minidense.nn.functional as F
from conftest import REAL_GPU
from minidense import cupy_emulation, optim
from minidense.models import densenet40

pytestmark = pytest.mark.skipif(REAL_GPU, reason="counts kernels on the CPU emulation of CuPy")

LAUNCH_BUDGET = 2200        # per training step: model, loss, backward, SGD with Nesterov momentum


def densenet40_step(cuda, batch=2, size=32):
    md.manual_seed(0)
    model = densenet40().to(cuda)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
    rng = np.random.default_rng(0)
    images = md.tensor(rng.standard_normal((batch, 3, size, size)).astype(np.float32), device=cuda)
    labels = md.tensor(rng.integers(0, 10, batch), device=cuda)

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(images), labels)
        loss.backward()
        opt.step()
        return loss
    return step


def test_a_densenet40_training_step_stays_within_its_launch_budget_and_never_syncs(cuda):
    step = densenet40_step(cuda)
    step()                                         # the first step also creates momentum buffers
    with cupy_emulation.counting() as counts:
        loss = step()
    assert counts.syncs == 0, counts.sync_causes
    assert counts.launches <= LAUNCH_BUDGET, sorted(counts.launch_causes.items(),
                                                    key=lambda kv: -kv[1])[:12]
    assert np.isfinite(loss.item())


def test_the_counts_do_not_depend_on_the_batch_or_image_size(cuda):
    counted = []
    for batch, size in ((2, 32), (3, 16)):
        step = densenet40_step(cuda, batch, size)
        step()
        with cupy_emulation.counting() as counts:
            step()
        counted.append((counts.launches, counts.syncs))
    assert counted[0] == counted[1]


def test_the_textbook_kernels_on_a_gpu_launch_far_more(cuda):
    """Why kernels/cuda.py exists: the same step on the textbook kernels, counted the same way."""
    with md.use_kernels("reference"):
        step = densenet40_step(cuda)
        step()
        with cupy_emulation.counting() as counts:
            step()
    assert counts.launches > 1.5 * LAUNCH_BUDGET
