"""The parallel paths (minidense/ops/parallel.py): ops split over the batch and run on threads.

Each test forces splitting on small inputs (``settings(threads=3, min_elements=0)``: three parts,
whatever the size) and checks the split op against numerical gradients in float64 with a random
upstream gradient, and against the same op run unsplit.
"""
import numpy as np
import pytest

import minidense as md
import minidense.nn.functional as F
from minidense import optim
from minidense.models import densenet_cifar
from minidense.ops import parallel

SPLIT = dict(threads=3, min_elements=0)


def unsplit_and_split(fn):
    """fn() once with one thread and once split in three parts."""
    with parallel.settings(threads=1):
        plain = fn()
    with parallel.settings(**SPLIT):
        split = fn()
    return plain, split


def grads_of(fn, inputs, upstream):
    """fn(*inputs) and the gradients of its inputs for the given upstream gradient (arrays)."""
    leaves = [md.tensor(a, dtype=md.float64, requires_grad=True) for a in inputs]
    out = fn(*leaves)
    out.backward(md.tensor(upstream))
    return [out.numpy()] + [leaf.grad.numpy() for leaf in leaves]


def assert_same(plain, split):
    for a, b in zip(plain, split):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)


def test_batch_slices_cover_the_batch_in_order():
    assert parallel.batch_slices(7, 3) == [slice(0, 2), slice(2, 4), slice(4, 7)]
    assert parallel.batch_slices(2, 2) == [slice(0, 1), slice(1, 2)]


def test_parts_follow_the_settings():
    x = np.zeros((5, 2, 3, 3))
    with parallel.settings(threads=1, min_elements=0):
        assert parallel.parts_for(x) == 1
    with parallel.settings(threads=8, min_elements=0):
        assert parallel.parts_for(x) == 5                  # never more parts than images
    with parallel.settings(threads=2, min_elements=x.size + 1):
        assert parallel.parts_for(x) == 1                  # too small to be worth it
    with pytest.raises(ValueError, match="set_num_threads"):
        parallel.set_num_threads(0)


def test_default_thread_count_follows_the_environment(monkeypatch):
    monkeypatch.setenv("MINIDENSE_NUM_THREADS", "3")
    assert parallel._default_threads() == 3
    monkeypatch.delenv("MINIDENSE_NUM_THREADS")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")        # sharing the machine: one thread
    assert parallel._default_threads() == 1
    with parallel.settings(threads=2):
        assert md.get_num_threads() == 2


def test_openblas_is_held_to_one_thread_inside_split_products_and_restored_after():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not parallel.blas_is_managed():
        pytest.skip("threadpoolctl finds no BLAS library in this process")

    def blas_threads():
        return [lib["num_threads"] for lib in threadpoolctl.threadpool_info()
                if lib["user_api"] == "blas"]
    seen = []

    def part(a):
        seen.append(blas_threads())
        return a
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        with parallel.settings(**SPLIT):
            parallel.over_batch(part, np.zeros((6, 4)), matmul=True)
        after = blas_threads()
    assert len(seen) == 3 and all(threads == [1] * len(before) for threads in seen)
    assert after == before


def test_an_error_in_a_part_reaches_the_caller():
    def fail(part):
        raise RuntimeError("part failed")
    with parallel.settings(**SPLIT), pytest.raises(RuntimeError, match="part failed"):
        parallel.over_batch(fail, np.zeros((4, 2)))


@pytest.mark.parametrize("kernel, stride, padding, bias", [
    (3, 1, 1, False), (1, 1, 0, False), (3, 1, 0, True), (3, 2, 1, True)],
    ids=["3x3-pad1", "1x1", "3x3-valid-bias", "3x3-stride2-im2col"])
def test_split_convolution_matches_numerical_and_unsplit_gradients(rng, kernel, stride, padding,
                                                                   bias):
    x = rng.standard_normal((5, 3, 6, 6))
    w = rng.standard_normal((4, 3, kernel, kernel))
    b = rng.standard_normal(4)
    inputs = (x, w, b) if bias else (x, w)

    def conv(*t):
        return F.conv2d(t[0], t[1], t[2] if bias else None, stride=stride, padding=padding)
    upstream = rng.standard_normal(conv(*[md.tensor(a) for a in inputs]).shape)
    assert_same(*unsplit_and_split(lambda: grads_of(conv, inputs, upstream)))
    with parallel.settings(**SPLIT):
        md.gradcheck(conv, [md.tensor(a, requires_grad=True) for a in inputs])


@pytest.mark.parametrize("fused_relu", [False, True], ids=["bn", "bn-relu"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_split_batch_norm_matches_numerical_and_unsplit_gradients(rng, fused_relu, training):
    x = rng.standard_normal((6, 4, 3, 3)) * 2 + 1
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    op = F.batch_norm_relu if fused_relu else F.batch_norm

    def norm(x, gamma, beta):
        return op(x, np.zeros(4), np.ones(4) * 1.5, gamma, beta, training=training)
    upstream = rng.standard_normal(x.shape)
    assert_same(*unsplit_and_split(lambda: grads_of(norm, (x, gamma, beta), upstream)))
    with parallel.settings(**SPLIT):
        md.gradcheck(norm, [md.tensor(a, requires_grad=True) for a in (x, gamma, beta)])


def test_split_batch_norm_updates_the_running_statistics_as_unsplit(rng):
    x = md.tensor(rng.standard_normal((6, 4, 5, 5)) * 3 - 2)

    def stats():
        mean, var = np.zeros(4), np.ones(4)
        F.batch_norm(x, mean, var, training=True, momentum=0.3)
        return mean, var
    assert_same(*unsplit_and_split(stats))


def test_split_add_matches_numerical_and_unsplit_gradients(rng):
    a, b = rng.standard_normal((5, 3, 2)), rng.standard_normal((5, 3, 2))
    upstream = rng.standard_normal(a.shape)
    assert_same(*unsplit_and_split(lambda: grads_of(lambda a, b: a + b * 3, (a, b), upstream)))
    with parallel.settings(**SPLIT):
        md.gradcheck(lambda a, b: a + b, [md.tensor(a, requires_grad=True),
                                           md.tensor(b, requires_grad=True)])
        assert (md.tensor(a) + 1).shape == a.shape                # broadcasting: not split
        assert (md.tensor(np.float32(2)) + md.tensor(np.float32(3))).item() == 5


@pytest.mark.parametrize("kernel, stride, padding", [(2, 2, 0), (3, 2, 1)])
def test_split_average_pooling_matches_numerical_and_unsplit_gradients(rng, kernel, stride,
                                                                       padding):
    x = rng.standard_normal((5, 3, 6, 6))

    def pool(x):
        return F.avg_pool2d(x, kernel, stride, padding)
    upstream = rng.standard_normal(pool(md.tensor(x)).shape)
    assert_same(*unsplit_and_split(lambda: grads_of(pool, (x,), upstream)))
    with parallel.settings(**SPLIT):
        md.gradcheck(pool, [md.tensor(x, requires_grad=True)])


@pytest.mark.parametrize("axis", [1, 0, -1])
def test_split_cat_matches_numerical_and_unsplit_gradients(rng, axis):
    a, b = rng.standard_normal((4, 3, 2, 2)), rng.standard_normal((4, 3, 2, 2))

    def join(a, b):
        return md.cat([a, b * 2], axis=axis)
    upstream = rng.standard_normal(join(md.tensor(a), md.tensor(b)).shape)
    assert_same(*unsplit_and_split(lambda: grads_of(join, (a, b), upstream)))
    with parallel.settings(**SPLIT):
        md.gradcheck(join, [md.tensor(a, requires_grad=True), md.tensor(b, requires_grad=True)])


@pytest.mark.parametrize("config", [dict(depth=10, growth_rate=4),
                                    dict(depth=16, growth_rate=4, bottleneck=True,
                                         compression=0.5),
                                    dict(depth=16, growth_rate=4, bottleneck=True,
                                         compression=0.5, memory_efficient=True)],
                         ids=["basic", "bc", "bc-memory-efficient"])
def test_split_densenet_training_steps_match_unsplit(config):
    images = np.random.default_rng(7).standard_normal((6, 3, 16, 16))      # float64 throughout
    labels = md.tensor(np.arange(6) % 10)

    def two_steps():
        md.manual_seed(3)
        model = densenet_cifar(**config).to(dtype=md.float64)
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True,
                        weight_decay=1e-4)
        losses = []
        for _ in range(2):
            opt.zero_grad()
            loss = F.cross_entropy(model(md.tensor(images)), labels)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return [np.array(losses)] + [v for v in model.state_dict().values()]
    plain, split = unsplit_and_split(two_steps)
    for a, b in zip(plain, split):
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-10)


def test_device_arrays_are_never_split(cuda, rng):
    x = md.tensor(rng.standard_normal((4, 3, 5, 5)), device=cuda, requires_grad=True)
    w = md.tensor(rng.standard_normal((2, 3, 3, 3)), device=cuda, requires_grad=True)
    with parallel.settings(**SPLIT):
        assert parallel.parts_for(x.data) == 1
        y = F.batch_norm_relu(F.conv2d(x, w, padding=1), None, None, training=True)
        md.cat([y, y], axis=1).sum().backward()
    assert x.grad.device == "cuda" and w.grad.device == "cuda"


def test_a_forked_child_splits_with_its_own_threads():
    if not hasattr(__import__("os"), "fork"):
        pytest.skip("no fork on this system")
    import multiprocessing
    x = np.arange(8.0).reshape(8, 1)
    with parallel.settings(**SPLIT):
        parallel.over_batch(lambda part: part * 2, x)          # the parent's pool exists now
        with multiprocessing.get_context("fork").Pool(1) as pool:
            total = pool.apply(_split_sum, (x,))
    assert total == x.sum()


def _split_sum(x):
    with parallel.settings(**SPLIT):
        return float(sum(part.sum() for part in parallel.over_batch(lambda part: part, x)))
