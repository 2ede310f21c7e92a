"""Model summaries (multiply-adds from the paper) and the pre-activation ResNet baseline."""
import numpy as np
import pytest

import minidense as md
from minidense.models import (densenet40, densenet_bc_100, densenet_cifar, get_model,
                              preact_resnet, preact_resnet110, preact_resnet164, summary,
                              summary_main)
from minidense.models.resnet import PreActBasicBlock, PreActBottleneck, ZeroPadShortcut


# --------------------------------------------------------------------------------------------
# summary
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("build, macs_millions, params", [
    (densenet40, 264.8, 1_019_722),          # the paper's DenseNet (L=40, k=12)
    (densenet_bc_100, 287.9, 769_162),       # DenseNet-BC (L=100, k=12)
])
def test_multiply_adds_per_32x32_image(build, macs_millions, params):
    rows, totals = summary(build(), (3, 32, 32), print_table=False)
    assert round(totals["macs"] / 1e6, 1) == macs_millions
    assert totals["params"] == params == sum(r["params"] for r in rows)
    assert totals["output_shape"] == (1, 10)


def test_densenet40_rows_exact_values():
    rows, totals = summary(densenet40(), (3, 32, 32), print_table=False)
    assert totals["macs"] == 264_812_928
    by_name = {r["name"]: r for r in rows}
    first = by_name["features.denseblock1.denselayer1"]
    assert first["output_shape"] == (1, 28, 32, 32)
    assert (first["in_channels"], first["out_channels"], first["growth"]) == (16, 28, 12)
    assert first["params"] == 2 * 16 + 16 * 12 * 9
    assert first["macs"] == 32 * 32 * 12 * 16 * 9
    assert first["activation_bytes"] == 28 * 32 * 32 * 4
    transition = by_name["features.transition1"]
    assert transition["output_shape"] == (1, 160, 16, 16)
    assert transition["macs"] == 32 * 32 * 160 * 160        # the 1x1 conv runs before pooling
    assert by_name["classifier"]["macs"] == 448 * 10
    assert sum(r["growth"] is not None for r in rows) == 36


def test_summary_counts_a_batch_and_leaves_the_model_untouched():
    model = densenet_cifar(16, growth_rate=4, bottleneck=True, compression=0.5,
                           memory_efficient=True)
    state = model.state_dict()
    one = summary(model, (3, 32, 32), print_table=False)
    four = summary(model, (4, 3, 32, 32), print_table=False)
    assert four.totals["macs"] == 4 * one.totals["macs"]
    assert model.training and model.memory_efficient
    assert "forward" not in model.features.conv0.__dict__
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, state[key])     # running statistics not updated


def test_printed_table_and_the_three_ways_to_call_it(capsys):
    model = densenet_cifar(10, growth_rate=4, bottleneck=True, compression=0.5)
    result = md.summary(model, (3, 32, 32))
    printed = capsys.readouterr().out
    assert "features.denseblock1.denselayer1" in printed and "+4" in printed
    assert f"{model.num_parameters():,}" in printed
    assert model.summary((3, 32, 32), print_table=False).totals == result.totals


def test_command_line(capsys):
    assert summary_main(["densenet40", "--input-shape", "3", "32", "32"]) == 0
    out = capsys.readouterr().out
    assert "1,019,722" in out and "264.8M" in out
    with pytest.raises(SystemExit):
        summary_main(["densenet41"])
    assert "valid names" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# Pre-activation ResNet
# --------------------------------------------------------------------------------------------
def test_resnet_parameter_counts():
    resnet110 = preact_resnet110()
    assert resnet110.num_parameters() == 1_727_962           # basic units, parameter-free shortcuts
    assert not resnet110.bottleneck
    resnet164 = preact_resnet164()
    assert resnet164.num_parameters() == 1_703_258           # bottleneck units, 1x1 projections
    assert resnet164.bottleneck
    assert round(resnet110.num_parameters() / 1e6, 1) == round(resnet164.num_parameters() / 1e6,
                                                               1) == 1.7   # the paper: 1.7M
    assert preact_resnet(20).num_parameters() == 269_722


def test_resnet_structure_and_shapes():
    model = preact_resnet(20, num_classes=7)
    assert [len(list(stage.children())) for stage in (model.stage1, model.stage2, model.stage3)] \
        == [3, 3, 3]
    assert isinstance(model.stage2.unit1.shortcut, ZeroPadShortcut)
    assert model.stage1.unit1.shortcut is None
    bottleneck = preact_resnet(11, bottleneck=True)
    assert isinstance(bottleneck.stage1.unit1, PreActBottleneck)
    assert bottleneck.stage3.unit1.out_channels == 256
    model.eval()
    with md.no_grad():
        assert model(md.randn(2, 3, 32, 32)).shape == (2, 7)
        assert bottleneck.eval()(md.randn(1, 3, 32, 32)).shape == (1, 10)
    assert isinstance(get_model("preact_resnet", depth=56).stage1.unit1, PreActBasicBlock)
    assert get_model(**preact_resnet164(num_classes=100).config).fc.out_features == 100


def test_resnet_invalid_depth():
    with pytest.raises(ValueError, match=r"6n\+2"):
        preact_resnet(21)
    with pytest.raises(ValueError, match=r"9n\+2"):
        preact_resnet(21, bottleneck=True)


def test_zero_pad_shortcut_values_and_gradient():
    shortcut = ZeroPadShortcut(2, 5, stride=2)
    x = md.tensor(np.random.default_rng(0).standard_normal((2, 2, 4, 4)), dtype=md.float64,
                  requires_grad=True)
    y = shortcut(x)
    assert y.shape == (2, 5, 2, 2)
    np.testing.assert_array_equal(y.numpy()[:, :2], x.numpy()[:, :, ::2, ::2])
    assert not y.numpy()[:, 2:].any()
    md.gradcheck(shortcut, (x,))


def test_resnet_gradcheck_tiny():
    model = preact_resnet(11, bottleneck=True, num_classes=3).to(dtype=md.float64)
    x = md.tensor(np.random.default_rng(1).standard_normal((2, 3, 8, 8)), dtype=md.float64,
                  requires_grad=True)
    params = [model.conv1.weight, model.stage2.unit1.shortcut.weight,
              model.stage3.unit1.norm2.weight, model.fc.weight]
    md.gradcheck(lambda x, *ps: model(x), (x, *params), mode="directional", n_directions=3,
                 atol=1e-6, rtol=1e-4)
