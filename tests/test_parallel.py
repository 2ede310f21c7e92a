"""The batch split (minidense/kernels/threads.py): fast kernels split over the batch, run on threads.

Each test forces splitting on small inputs (``settings(threads=3, min_elements=0)``: three parts,
whatever the size) and checks the split op against numerical gradients in float64 with a random
upstream gradient, and against the same op run unsplit.
"""
import numpy as np
import pytest

import minidense as md
import minidense.nn.functional as F
from minidense.kernels import threads

SPLIT = dict(threads=3, min_elements=0)


def unsplit_and_split(fn):
    """fn() once with one thread and once split in three parts."""
    with threads.settings(threads=1):
        plain = fn()
    with threads.settings(**SPLIT):
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
    assert threads.batch_slices(7, 3) == [slice(0, 2), slice(2, 4), slice(4, 7)]
    assert threads.batch_slices(2, 2) == [slice(0, 1), slice(1, 2)]


def test_parts_follow_the_settings():
    x = np.zeros((5, 2, 3, 3))
    with threads.settings(threads=1, min_elements=0):
        assert threads.parts_for(x) == 1
    with threads.settings(threads=8, min_elements=0):
        assert threads.parts_for(x) == 5                  # never more parts than images
    with threads.settings(threads=2, min_elements=x.size + 1):
        assert threads.parts_for(x) == 1                  # too small to be worth it
    with pytest.raises(ValueError, match="set_num_threads"):
        threads.set_num_threads(0)


def test_default_thread_count_follows_the_environment(monkeypatch):
    monkeypatch.setenv("MINIDENSE_NUM_THREADS", "3")
    assert threads._default_threads() == 3
    monkeypatch.delenv("MINIDENSE_NUM_THREADS")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")        # sharing the machine: one thread
    assert threads._default_threads() == 1
    with threads.settings(threads=2):
        assert md.get_num_threads() == 2


def test_openblas_is_held_to_one_thread_inside_split_products_and_restored_after():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not threads.blas_is_managed():
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
        with threads.settings(**SPLIT):
            threads.over_batch(part, np.zeros((6, 4)), matmul=True)
        after = blas_threads()
    assert len(seen) == 3 and all(threads == [1] * len(before) for threads in seen)
    assert after == before


def test_an_error_in_a_part_reaches_the_caller():
    def fail(part):
        raise RuntimeError("part failed")
    with threads.settings(**SPLIT), pytest.raises(RuntimeError, match="part failed"):
        threads.over_batch(fail, np.zeros((4, 2)))


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
    with threads.settings(**SPLIT):
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
    with threads.settings(**SPLIT):
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
    with threads.settings(**SPLIT):
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
    with threads.settings(**SPLIT):
        md.gradcheck(pool, [md.tensor(x, requires_grad=True)])


@pytest.mark.parametrize("axis", [1, 0, -1])
def test_split_cat_matches_numerical_and_unsplit_gradients(rng, axis):
    a, b = rng.standard_normal((4, 3, 2, 2)), rng.standard_normal((4, 3, 2, 2))

    def join(a, b):
        return md.cat([a, b * 2], axis=axis)
    upstream = rng.standard_normal(join(md.tensor(a), md.tensor(b)).shape)
    assert_same(*unsplit_and_split(lambda: grads_of(join, (a, b), upstream)))
    with threads.settings(**SPLIT):
        md.gradcheck(join, [md.tensor(a, requires_grad=True), md.tensor(b, requires_grad=True)])


def test_device_arrays_are_never_split(cuda, rng):
    x = md.tensor(rng.standard_normal((4, 3, 5, 5)), device=cuda, requires_grad=True)
    w = md.tensor(rng.standard_normal((2, 3, 3, 3)), device=cuda, requires_grad=True)
    with threads.settings(**SPLIT):
        assert threads.parts_for(x.data) == 1
        y = F.batch_norm_relu(F.conv2d(x, w, padding=1), None, None, training=True)
        md.cat([y, y], axis=1).sum().backward()
    assert x.grad.device == "cuda" and w.grad.device == "cuda"


def test_a_forked_child_splits_with_its_own_threads():
    if not hasattr(__import__("os"), "fork"):
        pytest.skip("no fork on this system")
    import multiprocessing
    x = np.arange(8.0).reshape(8, 1)
    with threads.settings(**SPLIT):
        threads.over_batch(lambda part: part * 2, x)          # the parent's pool exists now
        with multiprocessing.get_context("fork").Pool(1) as pool:
            total = pool.apply(_split_sum, (x,))
    assert total == x.sum()


def _split_sum(x):
    with threads.settings(**SPLIT):
        return float(sum(part.sum() for part in threads.over_batch(lambda part: part, x)))
