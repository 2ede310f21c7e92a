"""The two kernel sets (minidense/kernels): every op gives the same outputs and gradients on its
textbook kernel and on the fast one, in float64, and each set passes the numerical gradient check
with a random upstream gradient; the switch, the lookup, and a whole DenseNet training step.

The fast set runs with splitting forced on small inputs (three parts, whatever the size), so the
split paths are exercised too.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minidense as md
import minidense.nn.functional as F
from minidense import kernels, optim
from minidense.kernels import conv as fast_conv, cuda as gpu_kernels, threads
from minidense.models import densenet_cifar
from minidense.ops.conv import conv2d_backward_im2col, conv2d_forward_im2col


class kernel_set:
    """``with kernel_set(name):`` runs inside it on that set, the fast one split in ``parts``
    parts of the batch whatever its size (1: not split)."""

    def __init__(self, name, parts=3):
        self.name, self.parts = name, parts

    def __enter__(self):
        self.switch = md.use_kernels(self.name)
        self.split = threads.settings(threads=self.parts, min_elements=0) \
            if self.name == "fast" else threads.settings()
        self.split.__enter__()

    def __exit__(self, *exc):
        self.split.__exit__(*exc)
        self.switch.__exit__(*exc)


KERNEL_SETS = ["reference", "fast"]


def outputs_and_grads(fn, arrays, upstream_seed=7, device="cpu"):
    """fn on float64 leaves made from ``arrays``: its output and the inputs' gradients for a
    random upstream gradient."""
    leaves = [md.tensor(a, dtype=md.float64, requires_grad=True, device=device) for a in arrays]
    out = fn(*leaves)
    upstream = np.random.default_rng(upstream_seed).standard_normal(out.shape)
    out.backward(md.tensor(upstream, device=device))
    return [out.numpy()] + [leaf.grad.numpy() for leaf in leaves]


def assert_same_under_both_sets(fn, arrays, device="cpu"):
    """The textbook set against the fast one (on a GPU: the fast set's CuPy kernels)."""
    results = {}
    for name in KERNEL_SETS:
        with kernel_set(name):
            results[name] = outputs_and_grads(fn, arrays, device=device)
    for reference, fast in zip(results["reference"], results["fast"]):
        np.testing.assert_allclose(fast, reference, rtol=1e-12, atol=1e-12)


def gradcheck_under(name, fn, arrays):
    with kernel_set(name):
        md.gradcheck(fn, [md.tensor(a, dtype=md.float64, requires_grad=True) for a in arrays])


def _conv(stride, padding, bias):
    def conv(x, w, *b):
        return F.conv2d(x, w, b[0] if bias else None, stride=stride, padding=padding)
    return conv


def _bn(training, relu):
    def norm(x, gamma, beta):
        xp = md.backend.get_array_module(x.data)
        op = F.batch_norm_relu if relu else F.batch_norm
        return op(x, xp.zeros(4), xp.full(4, 1.5), gamma, beta, training=training)
    return norm


# (name, function of Tensors, input shapes)
OPS = [
    ("conv 3x3 pad 1", _conv(1, 1, False), [(5, 3, 6, 6), (4, 3, 3, 3)]),
    ("conv 1x1", _conv(1, 0, False), [(5, 3, 6, 6), (4, 3, 1, 1)]),
    ("conv 3x3 valid, bias", _conv(1, 0, True), [(5, 3, 6, 6), (4, 3, 3, 3), (4,)]),
    ("conv 3x3 stride 2", _conv(2, 1, True), [(5, 3, 6, 6), (4, 3, 3, 3), (4,)]),
    ("conv 2x3 stride (2,1)", _conv((2, 1), (0, 1), False), [(3, 2, 5, 6), (3, 2, 2, 3)]),
    ("batch norm train", _bn(True, False), [(6, 4, 3, 3), (4,), (4,)]),
    ("batch norm eval", _bn(False, False), [(6, 4, 3, 3), (4,), (4,)]),
    ("batch norm-relu train", _bn(True, True), [(6, 4, 3, 3), (4,), (4,)]),
    ("batch norm-relu eval", _bn(False, True), [(6, 4, 3, 3), (4,), (4,)]),
    ("batch norm 2-d", _bn(True, False), [(6, 4), (4,), (4,)]),
    ("avg pool 2x2", lambda x: F.avg_pool2d(x, 2), [(5, 3, 6, 6)]),
    ("avg pool 3x3 s2 p1", lambda x: F.avg_pool2d(x, 3, 2, 1), [(5, 3, 6, 6)]),
    ("cat channels", lambda a, b: md.cat([a, b * 2], axis=1), [(4, 3, 2, 2), (4, 1, 2, 2)]),
    ("cat batch", lambda a, b: md.cat([a, b], axis=0), [(4, 3, 2, 2), (2, 3, 2, 2)]),
    ("add", lambda a, b: a + b * 3, [(5, 3, 2), (5, 3, 2)]),
    ("add broadcast", lambda a, b: a + b, [(5, 3, 2), (3, 1)]),
]
OP_IDS = [name for name, _, _ in OPS]


@pytest.mark.parametrize("name, fn, shapes", OPS, ids=OP_IDS)
def test_fast_kernels_give_the_textbook_outputs_and_gradients(name, fn, shapes, rng):
    arrays = [rng.standard_normal(shape) * 2 + 0.5 for shape in shapes]
    assert_same_under_both_sets(fn, arrays)


@pytest.mark.parametrize("name, fn, shapes", OPS, ids=OP_IDS)
def test_gpu_kernels_give_the_textbook_outputs_and_gradients(name, fn, shapes, rng, cuda):
    """kernels/cuda.py against the textbook, on CuPy arrays (the CPU emulation without a GPU)."""
    arrays = [rng.standard_normal(shape) * 2 + 0.5 for shape in shapes]
    assert_same_under_both_sets(fn, arrays, device=cuda)


@pytest.mark.parametrize("options", [dict(momentum=0.9, nesterov=True, weight_decay=1e-4),
                                     dict(momentum=0.9), dict(momentum=0.5, dampening=0.1),
                                     dict(weight_decay=0.01), dict()],
                         ids=["nesterov", "momentum", "dampening", "plain-decay", "plain"])
def test_the_fused_gpu_sgd_update_follows_the_textbook_rule(options, rng, cuda):
    start = rng.standard_normal((3, 4))
    grads = [rng.standard_normal((3, 4)) for _ in range(3)]
    results = {}
    for name in KERNEL_SETS:
        with md.use_kernels(name):
            param = md.nn.Parameter(md.tensor(start, dtype=md.float64, device=cuda))
            opt = optim.SGD([param], lr=0.1, **options)
            for grad in grads:
                param.grad = md.tensor(grad, device=cuda)
                opt.step()
            results[name] = param.numpy()
    np.testing.assert_allclose(results["fast"], results["reference"], rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("kernels_used", KERNEL_SETS)
@pytest.mark.parametrize("name, fn, shapes", OPS, ids=OP_IDS)
def test_every_op_passes_the_gradient_check_on_both_sets(name, fn, shapes, kernels_used, rng):
    arrays = [rng.standard_normal(shape) * 2 + 0.5 for shape in shapes]
    gradcheck_under(kernels_used, fn, arrays)


@pytest.mark.parametrize("config", [dict(depth=10, growth_rate=4),
                                    dict(depth=16, growth_rate=4, bottleneck=True,
                                         compression=0.5),
                                    dict(depth=16, growth_rate=4, bottleneck=True,
                                         compression=0.5, memory_efficient=True)],
                         ids=["basic", "bc", "bc-memory-efficient"])
def test_a_densenet_training_step_gives_the_same_loss_and_gradients_on_both_sets(config):
    """The textbook kernels, the fast ones on one thread, the fast ones split in three parts."""
    images = np.random.default_rng(7).standard_normal((6, 3, 16, 16))
    labels = md.tensor(np.arange(6) % 10)
    results = {}
    for name, parts in (("reference", 1), ("fast", 1), ("fast", 3)):
        md.manual_seed(3)
        model = densenet_cifar(**config).to(dtype=md.float64)
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True,
                        weight_decay=1e-4)
        with kernel_set(name, parts):
            loss = F.cross_entropy(model(md.tensor(images)), labels)
            loss.backward()
            grads = [p.grad.numpy() for p in model.parameters()]
            opt.step()
            loss_after_step = F.cross_entropy(model(md.tensor(images)), labels)
        results[name, parts] = [loss.numpy(), loss_after_step.numpy(), *grads,
                                *model.state_dict().values()]
    reference = results["reference", 1]
    for fast in (results["fast", 1], results["fast", 3]):
        assert len(fast) == len(reference)
        for expected, value in zip(reference, fast):
            np.testing.assert_allclose(value, expected, rtol=1e-9, atol=1e-11)


# ---------------------------------------------------------------------------------------------
# The stride-1 shifted products (kernels/conv.py)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stride, path", [(1, "_stride1_forward"), (2, "conv2d_forward_im2col"),
                                          ((1, 2), "conv2d_forward_im2col")])
def test_the_fast_convolution_takes_shifted_products_for_stride_1_only(stride, path, rng,
                                                                      monkeypatch):
    calls = []
    original = getattr(fast_conv, path)
    monkeypatch.setattr(fast_conv, path, lambda *args: calls.append(path) or original(*args))
    x, w = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
    stride = stride if isinstance(stride, tuple) else (stride, stride)
    with md.use_kernels("fast"):
        kernels.kernel("conv2d_forward", x)(x, w, stride, (1, 1))
    assert calls == [path]


@pytest.mark.parametrize("w_shape, padding", [((3, 2, 3, 3), (1, 1)), ((4, 2, 1, 1), (0, 0)),
                                               ((2, 2, 2, 3), (0, 1))])
def test_shifted_products_and_im2col_give_the_same_stride1_convolution(w_shape, padding, rng):
    x, w = rng.standard_normal((2, 2, 5, 4)), rng.standard_normal(w_shape)
    y = fast_conv._stride1_forward(x, w, padding)
    np.testing.assert_allclose(y, conv2d_forward_im2col(x, w, (1, 1), padding), atol=1e-12)
    gy = rng.standard_normal(y.shape)
    shifted = fast_conv._stride1_backward(gy, x, w, padding, True, True)
    columns = conv2d_backward_im2col(gy, x, w, (1, 1), padding, True, True)
    for a, b in zip(shifted, columns):
        np.testing.assert_allclose(a, b, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# The switch and the lookup
# ---------------------------------------------------------------------------------------------
def test_use_kernels_switches_at_once_and_a_with_block_switches_back():
    assert md.active_kernels() == "fast"
    with md.use_kernels("reference"):
        assert md.active_kernels() == "reference"
        x = np.zeros((1, 1, 3, 3))
        assert kernels.kernel("conv2d_forward", x) is conv2d_forward_im2col
    assert md.active_kernels() == "fast"
    assert kernels.kernel("conv2d_forward", x) is fast_conv.conv2d_forward
    md.use_kernels("reference")
    try:
        assert md.active_kernels() == "reference"
    finally:
        md.use_kernels("fast")


def test_an_unknown_kernel_set_or_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown kernel set 'quick'.*'fast'.*'reference'"):
        md.use_kernels("quick")
    assert md.active_kernels() == "fast"
    with pytest.raises(KeyError, match="kernel 'conv3d_forward'.*known: .*conv2d_forward"):
        kernels.kernel("conv3d_forward")
    assert kernels.kernel("shared_batch_statistics", default=None) is not None
    with md.use_kernels("reference"):
        assert kernels.kernel("shared_batch_statistics", default=None) is None


def test_a_kernel_for_one_array_module_comes_first_for_its_arrays(monkeypatch, cuda):
    def numpy_only(*args):
        return "numpy kernel"
    monkeypatch.setitem(kernels._fast, ("conv2d_forward", "numpy"), numpy_only)
    on_cpu = np.zeros((1, 1, 3, 3))
    on_gpu = md.zeros(1, 1, 3, 3, device=cuda).data
    assert kernels.kernel("conv2d_forward", on_cpu) is numpy_only
    assert kernels.kernel("conv2d_forward", on_gpu) is gpu_kernels.conv2d_forward
    monkeypatch.delitem(kernels._fast, ("conv2d_forward", "cupy"))
    assert kernels.kernel("conv2d_forward", on_gpu) is fast_conv.conv2d_forward   # for any module
    with md.use_kernels("reference"):
        assert kernels.kernel("conv2d_forward", on_cpu) is conv2d_forward_im2col


def test_the_environment_variable_chooses_the_set_at_start():
    code = "import minidense as md; print(md.active_kernels())"
    environment = dict(os.environ, MINIDENSE_KERNELS="reference")
    run = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True,
                         text=True, check=True)
    assert run.stdout.strip() == "reference"


def test_a_task_that_forbids_an_op_forbids_every_kernel_of_it(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "exercises" / "tests"))
    import forbidden_names as lists
    from minidense.grading.testing import is_forbidden
    family = {"conv2d": lists.CONV2D, "batch": lists.BATCH_NORM, "scale_shift": lists.BATCH_NORM,
              "shared_batch_statistics": lists.BATCH_NORM, "avg_pool2d": lists.POOLING,
              "concatenate": lists.CONCAT, "sgd": lists.OPTIMIZERS}
    kernels.known_kernels()                                  # every fast kernel registered
    registered = list(kernels._textbook.items()) + [(name, f) for (name, _), f in kernels._fast.items()]
    checked = 0
    for name, function in registered:
        forbidden = next((names for prefix, names in family.items() if name.startswith(prefix)),
                         None)
        if forbidden is not None:
            assert is_forbidden(f"{function.__module__}.{function.__name__}", forbidden), name
            checked += 1
    assert checked >= 20
    for helper in ("kernel_offsets", "pad2d"):                # the im2col tasks' window slicing
        assert is_forbidden(f"minidense.ops.windows.{helper}", lists.IM2COL)
