"""Memory-efficient dense blocks (Pleiss et al. 2017): the same numbers as the naive blocks, the
running statistics updated once, no copies for the concatenation, and less memory kept."""
import tracemalloc

import numpy as np
import pytest

import minidense as md
from minidense.models import DenseBlock, densenet_cifar
from minidense.models.memory_efficient import SharedConcat, SharedStorage


def build(memory_efficient, bottleneck, drop_rate=0.0):
    md.manual_seed(7)
    depth = 16 if bottleneck else 13     # 2 and 3 layers per block
    model = densenet_cifar(depth, growth_rate=3, bottleneck=bottleneck,
                           compression=0.5 if bottleneck else 1.0, drop_rate=drop_rate,
                           num_classes=4, memory_efficient=memory_efficient)
    model.to(dtype=md.float64)
    for name, buffer in model.named_buffers():   # non-trivial running statistics to start from
        rng = np.random.default_rng(len(name))
        buffer.data[...] = rng.uniform(0.5, 1.5, buffer.shape) if "var" in name else \
            rng.uniform(-0.5, 0.5, buffer.shape)
    return model


def training_step(model, seed=0):
    rng = np.random.default_rng(seed)
    x = md.tensor(rng.standard_normal((4, 3, 8, 8)), dtype=md.float64, requires_grad=True)
    md.manual_seed(11)                               # the same dropout masks in both versions
    logits = model(x)
    (logits * md.tensor(rng.standard_normal(logits.shape), dtype=md.float64)).sum().backward()
    grads = {name: p.grad.numpy() for name, p in model.named_parameters()}
    return logits.numpy(), x.grad.numpy(), grads, model.state_dict()


@pytest.mark.parametrize("bottleneck", [False, True])
@pytest.mark.parametrize("drop_rate", [0.0, 0.2])
def test_training_step_equals_the_naive_version(bottleneck, drop_rate):
    naive = training_step(build(False, bottleneck, drop_rate))
    efficient = training_step(build(True, bottleneck, drop_rate))
    np.testing.assert_allclose(efficient[0], naive[0], rtol=1e-12, atol=1e-12)   # logits
    np.testing.assert_allclose(efficient[1], naive[1], rtol=1e-10, atol=1e-12)   # dL/dx
    assert efficient[2].keys() == naive[2].keys()
    for name in naive[2]:                                                       # dL/dparameters
        np.testing.assert_allclose(efficient[2][name], naive[2][name], rtol=1e-10, atol=1e-12,
                                   err_msg=name)
    for name in naive[3]:                                   # running statistics after the step
        np.testing.assert_allclose(efficient[3][name], naive[3][name], rtol=1e-12, err_msg=name)


def test_running_statistics_move_once_per_step():
    model = build(True, bottleneck=True)
    norm = model.features.denseblock2.denselayer2.norm1
    before = norm.running_mean.numpy().copy()
    x = md.tensor(np.random.default_rng(0).standard_normal((4, 3, 8, 8)), dtype=md.float64)
    logits = model(x)
    after_forward = norm.running_mean.numpy().copy()
    logits.sum().backward()                        # recomputes BN: must not move the statistics
    assert not np.allclose(after_forward, before)
    np.testing.assert_array_equal(norm.running_mean.numpy(), after_forward)


@pytest.mark.parametrize("bottleneck", [False, True])
def test_eval_outputs_equal(bottleneck):
    x = md.tensor(np.random.default_rng(1).standard_normal((2, 3, 8, 8)), dtype=md.float64)
    naive, efficient = build(False, bottleneck).eval(), build(True, bottleneck).eval()
    with md.no_grad():
        np.testing.assert_allclose(efficient(x).numpy(), naive(x).numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(efficient(x).numpy(), naive(x).numpy(), rtol=1e-12, atol=1e-13)


def test_switching_modes_on_a_built_model():
    model = build(False, bottleneck=True)
    assert not model.memory_efficient
    model.memory_efficient = True
    assert model.memory_efficient and all(b.memory_efficient for b in model.dense_blocks())


def test_layer_inputs_are_views_of_one_shared_buffer():
    x = md.randn(2, 5, 4, 4)
    storage = SharedStorage(x, total_channels=9)
    new = md.randn(2, 4, 4, 4)
    expected = np.concatenate([x.numpy(), new.numpy()], axis=1)
    storage.append(new)
    joined = SharedConcat(storage)(x, new)
    np.testing.assert_array_equal(joined.numpy(), expected)
    assert np.shares_memory(joined.data, storage.buffer)
    assert np.shares_memory(new.data, storage.buffer)       # the new maps are stored once
    with pytest.raises(RuntimeError, match="shared storage holds 9"):
        SharedConcat(storage)(x)


def test_block_output_is_the_shared_buffer():
    block = DenseBlock(3, in_channels=4, growth_rate=2, memory_efficient=True)
    out = block(md.randn(2, 4, 6, 6, requires_grad=True))
    assert out.shape == (2, 10, 6, 6)
    assert isinstance(out.creator, SharedConcat)


def _graph_bytes(memory_efficient):
    """Bytes NumPy allocated and still held after a training forward (what backward will read)."""
    md.manual_seed(0)
    block = DenseBlock(12, in_channels=16, growth_rate=8, bottleneck=False,
                       memory_efficient=memory_efficient)
    x = md.randn(8, 16, 16, 16, requires_grad=True)
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    out = block(x)
    held = tracemalloc.get_traced_memory()[0] - baseline
    tracemalloc.stop()
    out.sum().backward()
    return held


def test_keeps_far_less_memory_for_backward():
    naive, efficient = _graph_bytes(False), _graph_bytes(True)
    channel = 8 * 16 * 16 * 4                            # float32 bytes of one (N, 1, H, W) map
    # Naive: one array of every layer's growing input (the BN-ReLU output: 16 + 8 i channels for
    # layer i; the concatenations themselves are freed), the block's x_hat, shared by the
    # layers' batch norms (SharedBatchStatistics, 16 + 12 x 8 channels), and the block's output;
    # efficient: only the shared buffer, which is the output.
    block_sized = (16 + 12 * 8) * channel
    one_per_layer = sum(16 + 8 * i for i in range(12)) * channel + 2 * block_sized
    assert one_per_layer <= naive < 1.05 * one_per_layer
    shared_buffer = (16 + 12 * 8) * channel              # (N, c0 + L*k, H, W)
    assert shared_buffer <= efficient < 1.1 * shared_buffer
