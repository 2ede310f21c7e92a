"""Module machinery (registration, modes, devices, state dicts, repr), containers, layers, init."""
import math

import numpy as np
import pytest

import minidense as md
import minidense.nn as nn
import minidense.nn.functional as F


class Block(nn.Module):
    """A tiny module with a parameter, a buffer and two children, in a known order."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(md.ones(2))
        self.register_buffer("count", md.zeros(1))
        self.first = nn.Linear(2, 3)
        self.second = nn.Linear(3, 1, bias=False)
        self.note = "plain attribute"

    def forward(self, x):
        return self.second(F.relu(self.first(x * self.scale)))


def small_net():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))


# -- registration ------------------------------------------------------------------------------
def test_registration_order_and_names():
    block = Block()
    assert [n for n, _ in block.named_parameters()] == [
        "scale", "first.weight", "first.bias", "second.weight"]
    assert [n for n, _ in block.named_buffers()] == ["count"]
    assert [n for n, _ in block.named_children()] == ["first", "second"]
    assert [n for n, _ in block.named_modules()] == ["", "first", "second"]
    assert block.note == "plain attribute" and "note" not in block._parameters
    assert block.num_parameters() == 2 + (6 + 3) + 3
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in block.parameters())


def test_sequential_names_indexing_and_append():
    net = small_net()
    assert [n for n, _ in net.named_parameters()] == [
        "0.weight", "1.weight", "1.bias", "5.weight", "5.bias"]
    assert len(net) == 6 and isinstance(net[1], nn.BatchNorm2d) and net[-1] is net[5]
    assert [type(m).__name__ for m in net[3:5]] == ["AdaptiveAvgPool2d", "Flatten"]
    net.append(nn.Identity())
    assert len(net) == 7 and "6" in dict(net.named_children())
    with pytest.raises(IndexError, match="out of range"):
        net[7]


def test_module_list_and_dict_register_children():
    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2)])
            self.heads = nn.ModuleDict({"a": nn.Linear(2, 1)})

    holder = Holder()
    names = [n for n, _ in holder.named_parameters()]
    assert names == ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias",
                     "heads.a.weight", "heads.a.bias"]
    assert list(holder.heads) == ["a"] and "a" in holder.heads and len(holder.layers) == 2


def test_shared_parameter_listed_once():
    layer = nn.Linear(2, 2)
    net = nn.Sequential(layer, layer)
    assert len(list(net.parameters())) == 2


def test_reassignment_and_deletion():
    block = Block()
    block.first = nn.Identity()
    assert isinstance(block.first, nn.Identity) and "first.weight" not in dict(
        block.named_parameters())
    with pytest.raises(TypeError, match="nn.Parameter"):
        block.scale = md.ones(2)
    del block.second
    assert [n for n, _ in block.named_children()] == ["first"]


def test_forgetting_super_init_is_explained():
    class Broken(nn.Module):
        def __init__(self):
            self.layer = nn.Linear(1, 1)

    with pytest.raises(AttributeError, match="super\\(\\).__init__"):
        Broken()


# -- modes, zero_grad, apply, to -----------------------------------------------------------------
def test_train_eval_propagates():
    net = nn.Sequential(nn.Sequential(nn.Dropout(0.5)), nn.BatchNorm2d(2))
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())


def test_dropout_follows_mode():
    drop = nn.Dropout(0.5)
    x = md.ones(4, 100)
    assert (drop(x).numpy() == 0).any()
    drop.eval()
    np.testing.assert_array_equal(drop(x).numpy(), x.numpy())


def test_batchnorm_train_updates_running_stats_and_eval_uses_them():
    bn = nn.BatchNorm2d(2, momentum=0.1)
    x = md.tensor(np.arange(16, dtype=np.float32).reshape(2, 2, 2, 2))
    y = bn(x)
    channel0 = x.numpy()[:, 0].ravel()
    np.testing.assert_allclose(bn.running_mean.numpy()[0], 0.1 * channel0.mean(), rtol=1e-6)
    np.testing.assert_allclose(bn.running_var.numpy()[0], 0.9 + 0.1 * channel0.var(ddof=1),
                               rtol=1e-6)
    np.testing.assert_allclose(y.numpy()[:, 0].mean(), 0.0, atol=1e-6)
    bn.eval()
    before = bn.running_mean.numpy().copy()
    y_eval = bn(x)
    np.testing.assert_array_equal(bn.running_mean.numpy(), before)
    expected = (x.numpy() - before[None, :, None, None]) / np.sqrt(
        bn.running_var.numpy()[None, :, None, None] + 1e-5)
    np.testing.assert_allclose(y_eval.numpy(), expected, rtol=1e-5)


def test_zero_grad_and_apply():
    net = small_net()
    net(md.randn(2, 3, 5, 5)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all((p.grad.numpy() == 0).all() for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Sequential" and seen[0] == "Conv2d"


def test_to_moves_in_place_and_casts(device):
    net = small_net()
    weight = net[0].weight
    assert net.to(device) is net
    assert net[0].weight is weight and weight.device == device
    assert net[1].running_mean.device == device
    out = net(md.randn(2, 3, 5, 5, device=device))
    assert out.device == device
    net.to(md.float64)
    assert weight.dtype == np.float64 and net[1].running_var.dtype == np.float64


# -- state_dict / load_state_dict --------------------------------------------------------------
def test_state_dict_is_numpy_copies_with_buffers():
    net = small_net()
    sd = net.state_dict()
    assert list(sd) == ["0.weight", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                        "5.weight", "5.bias"]
    assert all(isinstance(v, np.ndarray) for v in sd.values())
    sd["1.bias"][...] = 7
    assert (net[1].bias.numpy() == 0).all()


def test_state_dict_round_trip_including_running_stats():
    source, target = small_net(), small_net()
    source(md.randn(4, 3, 5, 5))            # training step moves the BN running stats
    result = target.load_state_dict(source.state_dict())
    assert result == ([], [])
    for (name, a), b in zip(source.state_dict().items(), target.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert not (target[1].running_mean.numpy() == 0).all()
    x = md.randn(2, 3, 5, 5)
    source.eval(), target.eval()
    np.testing.assert_array_equal(source(x).numpy(), target(x).numpy())


def test_load_state_dict_accepts_tensors_casts_dtype_and_ignores_num_batches_tracked():
    net = small_net()
    sd = {k: md.tensor(v.astype(np.float64) + 1) for k, v in net.state_dict().items()}
    sd["1.num_batches_tracked"] = np.array(12, dtype=np.int64)
    net.load_state_dict(sd)
    assert net[1].running_var.dtype == np.float32
    np.testing.assert_allclose(net[1].running_var.numpy(), 2.0)


def test_load_state_dict_reports_missing_unexpected_and_shapes():
    net = small_net()
    sd = net.state_dict()
    del sd["1.running_var"]
    sd["extra.weight"] = np.zeros(3)
    sd["5.weight"] = np.zeros((3, 4), dtype=np.float32)
    with pytest.raises(RuntimeError) as info:
        net.load_state_dict(sd)
    message = str(info.value)
    assert "Missing keys: 1.running_var" in message
    assert "Unexpected keys: extra.weight" in message
    assert "5.weight: shape (3, 4) in the state dict, (2, 4) in the model" in message


def test_load_state_dict_non_strict_returns_keys_and_changes_nothing_on_error():
    net = small_net()
    sd = net.state_dict()
    del sd["0.weight"]
    sd["head.bias"] = np.zeros(2)
    sd["1.bias"] = sd["1.bias"] + 3
    missing, unexpected = net.load_state_dict(sd, strict=False)
    assert missing == ["0.weight"] and unexpected == ["head.bias"]
    np.testing.assert_array_equal(net[1].bias.numpy(), 3.0)

    before = net[1].bias.numpy().copy()
    bad = net.state_dict()
    bad["1.bias"] = bad["1.bias"] + 1
    bad["5.bias"] = np.zeros(5)
    with pytest.raises(RuntimeError, match="5.bias: shape \\(5,\\)"):
        net.load_state_dict(bad, strict=False)
    np.testing.assert_array_equal(net[1].bias.numpy(), before)


# -- repr and layer errors ---------------------------------------------------------------------
def test_repr_is_nested_like_pytorch():
    net = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False),
                        nn.Sequential(nn.BatchNorm2d(16), nn.ReLU()), nn.Linear(16, 10))
    assert repr(net) == (
        "Sequential(\n"
        "  (0): Conv2d(3, 16, kernel_size=3, stride=2, padding=1, bias=False)\n"
        "  (1): Sequential(\n"
        "    (0): BatchNorm2d(16, eps=1e-05, momentum=0.1)\n"
        "    (1): ReLU()\n"
        "  )\n"
        "  (2): Linear(in_features=16, out_features=10, bias=True)\n"
        ")")


def test_layer_errors_name_the_layer_and_shape():
    with pytest.raises(ValueError, match=r"Conv2d\(3, 16, kernel_size=3\): expected input with 3 "
                                         r"channels, got shape \(8, 1, 32, 32\)"):
        nn.Conv2d(3, 16, 3)(md.zeros(8, 1, 32, 32))
    with pytest.raises(ValueError, match=r"BatchNorm2d\(4.*\(N, 4, H, W\).*\(2, 4\)"):
        nn.BatchNorm2d(4)(md.zeros(2, 4))
    with pytest.raises(ValueError, match=r"Linear\(in_features=3.*last dimension is 3"):
        nn.Linear(3, 2)(md.zeros(2, 5))


def test_layer_outputs():
    x = md.randn(2, 3, 8, 8)
    assert nn.Conv2d(3, 5, 3, stride=2, padding=1)(x).shape == (2, 5, 4, 4)
    assert nn.AvgPool2d(2)(x).shape == (2, 3, 4, 4)
    assert nn.MaxPool2d(3, stride=2, padding=1)(x).shape == (2, 3, 4, 4)
    pooled = nn.AdaptiveAvgPool2d(1)(x)
    np.testing.assert_allclose(pooled.numpy()[:, :, 0, 0], x.numpy().mean(axis=(2, 3)), rtol=1e-5)
    assert nn.Flatten()(pooled).shape == (2, 3)
    assert nn.Identity()(x) is x
    np.testing.assert_array_equal(nn.ReLU()(x).numpy(), np.maximum(x.numpy(), 0))
    linear = nn.Linear(3, 2)
    h = md.randn(4, 3)
    np.testing.assert_allclose(linear(h).numpy(), h.numpy() @ linear.weight.numpy().T +
                               linear.bias.numpy(), rtol=1e-5)


# -- initialisation ----------------------------------------------------------------------------
def test_conv_init_is_he_normal_fan_out():
    conv = nn.Conv2d(64, 128, 3)
    w = conv.weight.numpy()
    assert w.dtype == np.float32 and conv.bias.dtype == np.float32
    assert w.std() == pytest.approx(math.sqrt(2 / (9 * 128)), rel=0.02)
    assert abs(w.mean()) < 1e-3
    assert (conv.bias.numpy() == 0).all()


def test_linear_and_batchnorm_init():
    linear = nn.Linear(400, 300)
    w = linear.weight.numpy()
    bound = 1 / math.sqrt(400)
    assert w.min() >= -bound and w.max() <= bound
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.02)   # std of Uniform(-b, b)
    assert (linear.bias.numpy() == 0).all()
    bn = nn.BatchNorm2d(5)
    assert (bn.weight.numpy() == 1).all() and (bn.bias.numpy() == 0).all()
    assert (bn.running_mean.numpy() == 0).all() and (bn.running_var.numpy() == 1).all()


def test_init_is_reproducible_with_manual_seed():
    md.manual_seed(7)
    a = nn.Conv2d(3, 4, 3).weight.numpy()
    md.manual_seed(7)
    b = nn.Conv2d(3, 4, 3).weight.numpy()
    np.testing.assert_array_equal(a, b)


def test_init_functions():
    t = nn.Parameter(md.zeros(200, 100))
    assert nn.init.kaiming_normal_(t) is t
    assert t.numpy().std() == pytest.approx(math.sqrt(2 / 100), rel=0.03)   # fan_in default
    nn.init.normal_(t, mean=3.0, std=0.5)
    assert t.numpy().mean() == pytest.approx(3.0, abs=0.01)
    nn.init.uniform_(t, -2.0, -1.0)
    assert t.numpy().min() >= -2.0 and t.numpy().max() <= -1.0
    nn.init.ones_(t)
    assert (t.numpy() == 1).all()
    nn.init.zeros_(t)
    assert (t.numpy() == 0).all() and t.dtype == np.float32


def test_parameter_from_list_is_float32_and_deepcopy_is_independent():
    import copy

    assert nn.Parameter([1.0, 2.0]).dtype == np.float32
    net = small_net()
    twin = copy.deepcopy(net)
    twin[0].weight.data[...] = 0
    assert not (net[0].weight.numpy() == 0).all()
    assert list(twin.state_dict()) == list(net.state_dict())
