"""DenseNet (Huang et al. 2017): structure, sizes from the paper, weights in torchvision's layout,
gradients, and agreement with a PyTorch implementation of the same network."""
import math

import numpy as np
import pytest

import minidense as md
from minidense import nn
from minidense.models import (MODELS, DenseBlock, DenseLayer, Transition,
                              densenet40, densenet100, densenet121, densenet169,
                              densenet_bc_100, densenet_bc_190, densenet_bc_250, densenet_cifar,
                              get_model)


def tiny_bc(**kwargs):
    """DenseNet-BC with 2 layers per block, k=2: small enough for gradient checks."""
    settings = dict(depth=16, growth_rate=2, bottleneck=True, compression=0.5, num_classes=3)
    settings.update(kwargs)
    return densenet_cifar(**settings)


# --------------------------------------------------------------------------------------------
# Sizes (the paper's Table 1 and Table 2)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("build, expected", [
    (densenet40, 1_019_722),                       # DenseNet (L=40, k=12)
    (densenet_bc_100, 769_162),                    # DenseNet-BC (L=100, k=12)
    (densenet121, 7_978_856),                      # DenseNet-121, 1000 classes
    (densenet169, 14_149_480),                     # torchvision's densenet169
])
def test_exact_parameter_counts(build, expected):
    assert build().num_parameters() == expected


@pytest.mark.parametrize("build, millions", [
    (densenet100, 7.0), (densenet_bc_250, 15.3), (densenet_bc_190, 25.6)])
def test_parameter_counts_match_table2_to_a_tenth_of_a_million(build, millions):
    assert round(build().num_parameters() / 1e6, 1) == millions


# --------------------------------------------------------------------------------------------
# Structure and names
# --------------------------------------------------------------------------------------------
def test_dense_layer_concatenates_old_channels_first():
    layer = DenseLayer(5, growth_rate=3).eval()
    x = md.randn(2, 5, 6, 6)
    with md.no_grad():
        y = layer(x)
        new = layer.new_features(x)
    assert y.shape == (2, 8, 6, 6)
    np.testing.assert_array_equal(y.numpy()[:, :5], x.numpy())
    np.testing.assert_allclose(y.numpy()[:, 5:], new.numpy())


def test_bottleneck_layer_has_4k_intermediate_maps_and_torchvision_names():
    layer = DenseLayer(10, growth_rate=6, bottleneck=True)
    assert layer.conv1.weight.shape == (24, 10, 1, 1)
    assert layer.conv2.weight.shape == (6, 24, 3, 3)
    assert list(layer.state_dict()) == [
        "norm1.weight", "norm1.bias", "norm1.running_mean", "norm1.running_var", "conv1.weight",
        "norm2.weight", "norm2.bias", "norm2.running_mean", "norm2.running_var", "conv2.weight"]
    basic = DenseLayer(10, growth_rate=6)
    assert basic.conv1.weight.shape == (6, 10, 3, 3)
    assert not hasattr(basic, "conv2")


def test_block_and_transition_shapes():
    block = DenseBlock(4, in_channels=8, growth_rate=5)
    assert [name for name, _ in block.named_children()] == [f"denselayer{i}" for i in range(1, 5)]
    assert block.out_channels == 28
    transition = Transition(28, 14)
    assert [name for name, _ in transition.named_children()] == ["norm", "relu", "conv", "pool"]
    with md.no_grad():
        y = transition(block(md.randn(2, 8, 8, 8)))
    assert y.shape == (2, 14, 4, 4)


def test_transition_keeps_floor_of_theta_times_m():
    model = densenet_cifar(40, growth_rate=12, compression=0.5)   # blocks end with 160, 304/2 + ...
    transitions = [m for m in model.modules() if isinstance(m, Transition)]
    assert [(t.in_channels, t.out_channels) for t in transitions] == [(160, 80), (224, 112)]
    odd = densenet_cifar(10, growth_rate=3, bottleneck=True, compression=0.5)  # 6 + 3 = 9 maps
    assert odd.features.transition1.out_channels == math.floor(0.5 * 9) == 4


def test_feature_children_are_named_like_torchvision():
    cifar = [name for name, _ in densenet40().features.named_children()]
    assert cifar == ["conv0", "denseblock1", "transition1", "denseblock2", "transition2",
                     "denseblock3", "norm5"]
    imagenet = [name for name, _ in densenet121().features.named_children()]
    assert imagenet[:4] == ["conv0", "norm0", "relu0", "pool0"]
    assert imagenet[-2:] == ["denseblock4", "norm5"]
    keys = densenet121().state_dict()
    assert "features.denseblock4.denselayer16.conv2.weight" in keys
    assert keys["features.transition3.conv.weight"].shape == (512, 1024, 1, 1)
    assert keys["classifier.weight"].shape == (1000, 1024)
    assert not any(k.endswith("num_batches_tracked") for k in keys)


def test_stems():
    bc = densenet_bc_100()
    assert bc.features.conv0.weight.shape == (24, 3, 3, 3)               # 2k for -BC
    assert densenet40().features.conv0.weight.shape == (16, 3, 3, 3)     # 16 for basic
    stem = densenet121().features
    assert stem.conv0.weight.shape == (64, 3, 7, 7)
    assert stem.conv0.stride == (2, 2) and stem.conv0.padding == (3, 3)
    assert isinstance(stem.pool0, nn.MaxPool2d) and stem.pool0.kernel_size == 3
    assert densenet_cifar(40, in_channels=1).features.conv0.weight.shape == (16, 1, 3, 3)


def test_dropout_after_every_conv_but_the_first():
    model = densenet_cifar(16, growth_rate=4, bottleneck=True, compression=0.5, drop_rate=0.2)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    drops = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert len(drops) == len(convs) - 1 and all(d.p == 0.2 for d in drops)
    assert not any(isinstance(m, nn.Dropout) for m in densenet40().modules())


def test_initialisation_follows_the_paper_code():
    model = densenet40()
    conv = model.features.denseblock3.denselayer12.conv1.weight.numpy()  # (12, 436, 3, 3)
    assert abs(conv.std() - math.sqrt(2 / (3 * 3 * 12))) < 0.02 * math.sqrt(2 / (3 * 3 * 12))
    assert abs(conv.mean()) < 0.01
    norm = model.features.norm5
    assert np.all(norm.weight.numpy() == 1) and np.all(norm.bias.numpy() == 0)
    assert np.all(model.classifier.bias.numpy() == 0)


# --------------------------------------------------------------------------------------------
# Output shapes
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, kwargs, shape, classes", [
    ("densenet40", {}, (1, 3, 32, 32), 10),
    ("densenet_bc_100", {"num_classes": 100}, (2, 3, 32, 32), 100),
    ("densenet_cifar", {"depth": 22, "bottleneck": True, "compression": 0.5}, (2, 3, 32, 32), 10),
    ("densenet_cifar", {"depth": 13, "drop_rate": 0.2, "in_channels": 1}, (2, 1, 28, 28), 10),
    ("densenet121", {}, (1, 3, 64, 64), 1000),
    ("densenet169", {"num_classes": 5}, (1, 3, 32, 32), 5),
])
def test_output_shapes(name, kwargs, shape, classes):
    model = get_model(name, **kwargs).eval()
    with md.no_grad():
        assert model(md.randn(*shape)).shape == (shape[0], classes)


# --------------------------------------------------------------------------------------------
# Constructors, registry, errors
# --------------------------------------------------------------------------------------------
def test_invalid_depth_says_which_depths_fit():
    with pytest.raises(ValueError, match=r"3n\+4.*40"):
        densenet_cifar(41)
    with pytest.raises(ValueError, match=r"6n\+4.*100"):
        densenet_cifar(43, bottleneck=True)


def test_unknown_model_lists_the_valid_names():
    with pytest.raises(ValueError, match="densenet_bc_100.*preact_resnet110"):
        get_model("densenet_bc_101")


def test_config_rebuilds_the_same_architecture():
    model = densenet_bc_100(num_classes=100, drop_rate=0.2)
    assert model.config["name"] == "densenet_bc_100"
    rebuilt = get_model(**model.config)
    assert list(rebuilt.state_dict()) == list(model.state_dict())
    assert rebuilt.num_parameters() == model.num_parameters()
    custom = densenet_cifar(22, growth_rate=6, bottleneck=True, compression=0.5)
    assert get_model(**custom.config).num_parameters() == custom.num_parameters()
    assert {"densenet40", "densenet_bc_250", "densenet264", "preact_resnet164"} <= set(MODELS)


# --------------------------------------------------------------------------------------------
# State dicts
# --------------------------------------------------------------------------------------------
def test_state_dict_round_trip_and_save_load(tmp_path):
    model = tiny_bc()
    x = md.randn(4, 3, 8, 8)
    model(x)                                  # one training forward: running stats move
    model.eval()
    state = model.state_dict()
    copy = tiny_bc()
    copy.load_state_dict(state)
    copy.eval()
    with md.no_grad():
        np.testing.assert_array_equal(copy(x).numpy(), model(x).numpy())
    if hasattr(md, "save"):
        md.save(state, tmp_path / "weights.npz")
        loaded = md.load(tmp_path / "weights.npz")
        third = tiny_bc()
        third.load_state_dict(loaded)
        for key, value in third.state_dict().items():
            np.testing.assert_array_equal(value, state[key])


def test_loads_a_torchvision_layout_dict_with_num_batches_tracked():
    model = tiny_bc()
    rng = np.random.default_rng(0)
    torchvision_style = {}
    for key, value in model.state_dict().items():
        torchvision_style[key] = rng.standard_normal(value.shape).astype(np.float32)
        if key.endswith("running_var"):
            torchvision_style[key] = np.abs(torchvision_style[key]) + 0.5
            torchvision_style[key.replace("running_var", "num_batches_tracked")] = np.array(7)
    model.load_state_dict(torchvision_style)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, torchvision_style[key])


def test_mismatched_state_dict_is_a_clear_error():
    with pytest.raises(RuntimeError, match=r"(?s)Missing keys:.*denselayer1\.norm2\.weight"):
        densenet_bc_100().load_state_dict(densenet40().state_dict())


# --------------------------------------------------------------------------------------------
# Gradients
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("memory_efficient", [False, True])
def test_gradcheck_through_a_tiny_densenet_bc(memory_efficient):
    model = tiny_bc(memory_efficient=memory_efficient).to(dtype=md.float64)
    x = md.tensor(np.random.default_rng(3).standard_normal((3, 3, 8, 8)), dtype=md.float64,
                  requires_grad=True)
    blocks = model.features
    params = [blocks.conv0.weight, blocks.denseblock1.denselayer2.norm1.weight,
              blocks.denseblock2.denselayer1.conv1.weight, blocks.transition2.conv.weight,
              blocks.denseblock3.denselayer2.norm2.bias, model.classifier.weight]
    md.gradcheck(lambda x, *ps: model(x), (x, *params), mode="directional", n_directions=3,
                 atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("training", [True, False])
def test_matches_pytorch_logits_and_gradients(training):
    torch = pytest.importorskip("torch")
    from minidense.models.torch_reference import torch_mirror
    source = densenet_cifar(16, growth_rate=3, bottleneck=True, compression=0.5, num_classes=4)
    source.to(dtype=md.float64)
    rng = np.random.default_rng(0)
    for name, module in source.named_modules():      # non-trivial BN parameters and statistics
        if isinstance(module, md.nn.BatchNorm2d):
            c = module.num_features
            module.running_mean.data[...] = rng.uniform(-0.5, 0.5, c)
            module.running_var.data[...] = rng.uniform(0.5, 1.5, c)
            module.weight.data[...] = rng.uniform(0.5, 1.5, c)
            module.bias.data[...] = rng.uniform(-0.5, 0.5, c)
    reference = torch_mirror(source).train(training)
    # torch -> minidense: NumPy arrays in torchvision's layout, num_batches_tracked included
    model = densenet_cifar(16, growth_rate=3, bottleneck=True, compression=0.5, num_classes=4)
    model.to(dtype=md.float64).load_state_dict(
        {k: v.detach().numpy() for k, v in reference.state_dict().items()})
    assert any(k.endswith("num_batches_tracked") for k in reference.state_dict())
    model.train(training)

    x = rng.standard_normal((4, 3, 16, 16))
    upstream = rng.standard_normal((4, 4))
    tx = torch.tensor(x, requires_grad=True)
    t_logits = reference(tx)
    (t_logits * torch.tensor(upstream)).sum().backward()
    mx = md.tensor(x, dtype=md.float64, requires_grad=True)
    m_logits = model(mx)
    (m_logits * md.tensor(upstream, dtype=md.float64)).sum().backward()

    np.testing.assert_allclose(m_logits.numpy(), t_logits.detach().numpy(), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(mx.grad.numpy(), tx.grad.numpy(), rtol=1e-8, atol=1e-10)
    torch_params = dict(reference.named_parameters())
    for name, param in model.named_parameters():
        np.testing.assert_allclose(param.grad.numpy(), torch_params[name].grad.numpy(),
                                   rtol=1e-8, atol=1e-10, err_msg=name)
    torch_state = reference.state_dict()
    for name, value in model.state_dict().items():   # running statistics after the step
        np.testing.assert_allclose(value, torch_state[name].numpy(), rtol=1e-12, err_msg=name)


# --------------------------------------------------------------------------------------------
# Shared batch statistics in a training block
# --------------------------------------------------------------------------------------------
def _run_block(block, x_np, share):
    """Forward + backward (random upstream) through ``block``, its layers sharing batch
    statistics (DenseBlock.forward) or each computing its own (the layers called one by one)."""
    x = md.tensor(x_np, requires_grad=True)
    if share:
        out = block(x)
    else:
        out = x
        for layer in block.layers():
            out = layer(out)
    out.backward(md.tensor(np.random.default_rng(5).standard_normal(out.shape)))
    grads = [p.grad.data.copy() for p in block.parameters()]
    stats = [b.data.copy() for b in block.buffers()]
    return [out.data, x.grad.data] + grads + stats


@pytest.mark.parametrize("bottleneck", [False, True])
@pytest.mark.parametrize("threads", [1, 2])
def test_a_training_block_normalises_each_channel_once_with_the_same_results(bottleneck, threads,
                                                                             monkeypatch):
    from minidense import kernels
    from minidense.kernels import normalization, threads as kernel_threads
    computed = []
    original = normalization.batch_statistics

    def counting(x, *args, **kwargs):
        computed.append(x.shape[1])
        return original(x, *args, **kwargs)
    x_np = np.random.default_rng(4).standard_normal((4, 5, 6, 6)) * 3 + 1
    results = []
    for share in (True, False):
        md.manual_seed(0)
        block = DenseBlock(4, 5, 3, bottleneck=bottleneck).to(dtype=md.float64)
        with monkeypatch.context() as patch:
            patch.setattr(normalization, "batch_statistics", counting)     # the shared statistics
            patch.setitem(kernels._fast, ("batch_statistics", None), counting)   # every other BN
            with kernel_threads.settings(threads=threads, min_elements=0):
                results.append(_run_block(block, x_np, share))
        if share:   # first batch norms: 5 channels, then 3 new per layer; bottleneck BNs: 12 each
            assert computed == ([5, 12, 3, 12, 3, 12, 3, 12] if bottleneck else [5, 3, 3, 3])
        computed.clear()
    for shared, own in zip(*results):
        np.testing.assert_allclose(shared, own, rtol=1e-12, atol=1e-12)


def test_with_the_reference_kernels_each_layer_normalises_its_own_input(monkeypatch):
    from minidense.ops import normalization
    computed = []
    original = normalization.batch_statistics

    def counting(x, *args, **kwargs):
        computed.append(x.shape[1])
        return original(x, *args, **kwargs)
    monkeypatch.setitem(md.kernels._textbook, "batch_statistics", counting)
    block = DenseBlock(3, 5, 2).to(dtype=md.float64)
    with md.use_kernels("reference"):
        block(md.tensor(np.random.default_rng(4).standard_normal((2, 5, 4, 4))))
    assert computed == [5, 7, 9]                 # every layer its whole input


def test_new_features_hands_the_shared_statistics_to_its_step():
    from minidense.models.memory_efficient import norm_relu_conv_recomputed
    layer, x, statistics = DenseLayer(4, 2), md.randn(2, 4, 3, 3), object()
    seen = []

    def step(norm, relu, conv, x, statistics=None):
        seen.append(statistics)
        return conv(relu(norm(x)))
    assert layer.new_features(x, step, statistics=statistics).shape == (2, 2, 3, 3)
    assert seen == [statistics]
    with pytest.raises(ValueError, match="take no shared batch statistics"):
        layer.new_features(x, norm_relu_conv_recomputed, statistics=statistics)


def test_an_evaluating_block_uses_each_layers_running_statistics():
    md.manual_seed(0)
    block = DenseBlock(3, 4, 2)
    for layer in block.layers():                 # running statistics that differ per layer
        layer.norm1.running_mean.data[:] = np.arange(layer.in_channels) * 0.1
        layer.norm1.running_var.data[:] = 1 + np.arange(layer.in_channels) * 0.2
    block.eval()
    x = md.randn(2, 4, 5, 5)
    expected = x
    for layer in block.layers():
        expected = layer(expected)
    np.testing.assert_array_equal(block(x).numpy(), expected.numpy())
