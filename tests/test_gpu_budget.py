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
from conftest import REAL_GPU
from minidense import bench, cupy_emulation, optim
from minidense.models import densenet40

pytestmark = pytest.mark.skipif(REAL_GPU, reason="counts kernels on the CPU emulation of CuPy")

LAUNCH_BUDGET = 2200        # per training step: model, loss, backward, SGD with Nesterov momentum


def densenet40_step(cuda, batch=2, size=32):
    """The benchmark's training step (SGD with Nesterov momentum), without its clock's sync."""
    step, _, _ = bench._minidense_step_fn("densenet40", batch, cuda, memory_efficient=False,
                                          image_size=size, synchronize=False)
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


class _Progress:
    def update(self, n):
        pass

    def set_postfix(self, *args, **kwargs):
        pass


def test_training_on_a_gpu_reads_the_device_once_per_logging_interval(cuda):
    """The loss and the correct count stay on the device; the loop reads their totals every
    GPU_READ_EVERY batches and at the end: at most one host sync per step, here one in three."""
    from minidense import train
    from minidense.data import ArrayDataset, DataLoader
    from minidense.data.transforms import standard_transform
    rng = np.random.default_rng(0)
    data = ArrayDataset(rng.integers(0, 256, (6, 3, 32, 32), dtype=np.uint8),
                        rng.integers(0, 10, 6), [str(i) for i in range(10)], (0.5,) * 3,
                        (0.25,) * 3, "random")
    loader = DataLoader(data, batch_size=2, shuffle=True, seed=0, device=cuda,
                        transform=standard_transform(data, augment=True))
    md.manual_seed(0)
    model = densenet40().to(cuda)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
    train.train_one_epoch(model, loader, opt, _Progress())          # warm-up: momentum buffers
    with cupy_emulation.counting() as counts:
        loss, accuracy, _ = train.train_one_epoch(model, loader, opt, _Progress())
    steps = len(loader)
    assert steps == 3 < train.GPU_READ_EVERY
    assert counts.syncs == 1, counts.sync_causes                 # the one read, at the end
    assert counts.launches / steps <= LAUNCH_BUDGET + 30                      # + loader, totals
    assert np.isfinite(loss) and 0 <= accuracy <= 1
