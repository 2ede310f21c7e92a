"""Figure 5 (feature reuse): matrices from planted weights, masking, rescaling, the paper's values,
the four observations, the plots and the `heatmap` command."""
import csv
import math

import numpy as np
import pytest

import minidense as md
from minidense.analysis import (feature_reuse, heatmap_main, paper_figure5, plot_compare_paper,
                                plot_feature_reuse, rescale_columns, reuse_observations,
                                write_feature_reuse)
from minidense.analysis.plot import close_figure

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def planted_value(block, target, source):
    """The |weight| planted for (block, target, source); target L+1 is the layer after the block."""
    return 0.001 * (100 * block + 10 * target + source) + 0.0005


def _fill(weight, slices, block, target, rng):
    """Give each source's channel slice a constant magnitude with random signs."""
    for source, part in enumerate(slices):
        signs = rng.choice([-1.0, 1.0], size=weight[:, part].shape)
        weight[:, part] = signs * planted_value(block, target, source)


def _batch_norm(state, prefix, channels):
    state[f"{prefix}.weight"] = np.ones(channels, np.float32)
    state[f"{prefix}.bias"] = np.zeros(channels, np.float32)
    state[f"{prefix}.running_mean"] = np.zeros(channels, np.float32)
    state[f"{prefix}.running_var"] = np.ones(channels, np.float32)


def planted_densenet(layers=(3, 3, 3), growth=12, stem=16, bottleneck=False, compression=1.0,
                     num_classes=10, imagenet_stem=False, seed=0):
    """A DenseNet state dict (torchvision key layout) with planted weights, and its expected matrices."""
    rng = np.random.default_rng(seed)
    kernel = (7, 7) if imagenet_stem else (3, 3)
    state = {"features.conv0.weight": np.zeros((stem, 3, *kernel), np.float32)}
    if imagenet_stem:
        _batch_norm(state, "features.norm0", stem)
    expected = []
    channels = stem
    for block, num_layers in enumerate(layers, start=1):
        c0 = channels
        slices = [slice(0, c0)] + [slice(c0 + (j - 1) * growth, c0 + j * growth)
                                   for j in range(1, num_layers + 1)]
        matrix = np.full((num_layers + 1, num_layers + 1), np.nan)
        for target in range(1, num_layers + 1):
            prefix = f"features.denseblock{block}.denselayer{target}"
            inputs = c0 + (target - 1) * growth
            _batch_norm(state, f"{prefix}.norm1", inputs)
            if bottleneck:
                conv1 = np.zeros((4 * growth, inputs, 1, 1), np.float32)
                _batch_norm(state, f"{prefix}.norm2", 4 * growth)
                state[f"{prefix}.conv2.weight"] = np.full((growth, 4 * growth, 3, 3), 9.0, np.float32)
            else:
                conv1 = np.zeros((growth, inputs, 3, 3), np.float32)
            _fill(conv1, slices[:target], block, target, rng)
            state[f"{prefix}.conv1.weight"] = conv1
            for source in range(target):
                matrix[source, target - 1] = np.float32(planted_value(block, target, source))
        channels = c0 + num_layers * growth
        if block < len(layers):
            out = math.floor(compression * channels)
            _batch_norm(state, f"features.transition{block}.norm", channels)
            following = np.zeros((out, channels, 1, 1), np.float32)
            state[f"features.transition{block}.conv.weight"] = following
            channels_next = out
        else:
            _batch_norm(state, "features.norm5", channels)
            following = np.zeros((num_classes, channels), np.float32)
            state["classifier.weight"] = following
            state["classifier.bias"] = np.zeros(num_classes, np.float32)
            channels_next = channels
        _fill(following, slices, block, num_layers + 1, rng)
        matrix[:, num_layers] = [np.float32(planted_value(block, num_layers + 1, s))
                                 for s in range(num_layers + 1)]
        expected.append(matrix)
        channels = channels_next
    return state, expected


CASES = {
    "basic-c0=16-k=12-L=3": dict(layers=(3, 3, 3)),
    "bc-k=12-L=4": dict(layers=(4, 4, 4), stem=24, bottleneck=True, compression=0.5),
    "basic-uneven-depths": dict(layers=(5, 1, 7), growth=6, stem=10),
    "two-blocks": dict(layers=(2, 4), growth=4, stem=8, compression=0.5, num_classes=3),
    "imagenet-4-blocks": dict(layers=(2, 3, 4, 2), growth=8, stem=16, bottleneck=True,
                              compression=0.5, num_classes=7, imagenet_stem=True),
}


# ---------------------------------------------------------------- matrices from planted weights

@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_planted_weights_give_exact_cells(case):
    state, expected = planted_densenet(**case)
    matrices = feature_reuse(state)
    assert len(matrices) == len(case["layers"])
    for got, want, num_layers in zip(matrices, expected, case["layers"]):
        assert got.dtype == np.float64
        assert got.shape == (num_layers + 1, num_layers + 1)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=0, equal_nan=True)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_mask_is_exactly_sources_at_or_after_target(case):
    state, _ = planted_densenet(**case)
    for matrix in feature_reuse(state):
        num_layers = matrix.shape[0] - 1
        source, target = np.indices((num_layers + 1, num_layers))
        np.testing.assert_array_equal(np.isnan(matrix[:, :-1]), source >= target + 1)
        assert np.isfinite(matrix[:, -1]).all()


def test_last_column_reads_transition_then_classifier():
    state, _ = planted_densenet(layers=(3, 3, 3))
    matrices = feature_reuse(state)
    # block 1's last column is the transition conv: 0.001 * (100 + 40 + s) + 0.0005
    np.testing.assert_allclose(matrices[0][:, -1], 0.001 * (140 + np.arange(4)) + 0.0005, rtol=1e-6)
    # block 3's last column is the classifier's Linear weight; block 3 starts with 16 + 6*12 = 88 maps
    np.testing.assert_allclose(matrices[2][:, -1], 0.001 * (340 + np.arange(4)) + 0.0005, rtol=1e-6)
    state["classifier.weight"][:, :88] *= 2.0      # the classifier's features from block 3's input
    np.testing.assert_allclose(feature_reuse(state)[2][0, -1], 2 * (0.001 * 340 + 0.0005), rtol=1e-6)


def test_cell_is_mean_absolute_weight_over_outputs_inputs_and_kernel():
    state, _ = planted_densenet(layers=(2, 2, 2), growth=2, stem=3)
    signs = np.where(np.arange(90) % 2, 1.0, -1.0)
    weight = (np.arange(1.0, 91.0) * signs).reshape(2, 5, 3, 3)    # 3 block-input + 2 new channels
    state["features.denseblock1.denselayer2.conv1.weight"] = weight
    matrix = feature_reuse(state)[0]
    assert matrix[0, 1] == pytest.approx(np.abs(weight[:, :3]).mean())
    assert matrix[1, 1] == pytest.approx(np.abs(weight[:, 3:5]).mean())


class _Model:
    def __init__(self, state):
        self._state = state

    def state_dict(self):
        return self._state


def _nested(flat):
    tree = {}
    for key, value in flat.items():
        *parents, leaf = key.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


@pytest.mark.parametrize("wrap", [
    pytest.param(lambda s: _Model(s), id="model"),
    pytest.param(lambda s: {"model": s, "config": {"depth": 13}, "epoch": 3}, id="checkpoint"),
    pytest.param(lambda s: {"model": _nested(s)}, id="nested-checkpoint"),
    pytest.param(lambda s: {k: md.tensor(v) for k, v in s.items()}, id="tensor-values"),
])
def test_accepts_models_checkpoints_and_nested_dicts(wrap):
    state, expected = planted_densenet(layers=(3, 3, 3))
    for got, want in zip(feature_reuse(wrap(state)), expected):
        np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True)


def test_error_when_no_dense_blocks():
    with pytest.raises(ValueError, match="denseblock"):
        feature_reuse({"fc.weight": np.zeros((10, 4))})


def test_error_names_key_and_shapes_on_inconsistent_input_channels():
    state, _ = planted_densenet(layers=(3, 3, 3))
    state["features.denseblock2.denselayer3.conv1.weight"] = np.zeros((12, 70, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"denseblock2\.denselayer3\.conv1\.weight.*\(12, 70, 3, 3\)"):
        feature_reuse(state)


def test_error_on_missing_transition_and_layer_gaps():
    state, _ = planted_densenet(layers=(3, 3, 3))
    del state["features.transition1.conv.weight"]
    with pytest.raises(KeyError, match="transition1"):
        feature_reuse(state)
    state, _ = planted_densenet(layers=(3, 3, 3))
    del state["features.denseblock1.denselayer2.conv1.weight"]
    with pytest.raises(ValueError, match=r"block 1 has layers \[1, 3\]"):
        feature_reuse(state)


def test_error_on_wrong_classifier_width():
    state, _ = planted_densenet(layers=(3, 3, 3))
    state["classifier.weight"] = np.zeros((10, 123), np.float32)
    with pytest.raises(ValueError, match=r"classifier\.weight.*\(10, 123\).*124 channels"):
        feature_reuse(state)


# ---------------------------------------------------------------- rescaling

def test_rescale_columns_min_max_per_column_keeping_mask():
    matrix = np.array([[2.0, 1.0, 4.0],
                       [np.nan, 3.0, 6.0],
                       [np.nan, np.nan, 5.0]])
    want = np.array([[1.0, 0.0, 0.0],
                     [np.nan, 1.0, 1.0],
                     [np.nan, np.nan, 0.5]])
    np.testing.assert_allclose(rescale_columns(matrix), want, equal_nan=True)


def test_rescale_constant_column_becomes_ones():
    matrix = np.array([[3.0, 0.5], [np.nan, 0.5]])
    np.testing.assert_array_equal(rescale_columns(matrix)[:, 1], [1.0, 1.0])
    assert rescale_columns(matrix)[0, 0] == 1.0


def test_rescale_does_not_modify_its_input():
    matrix = np.array([[1.0, 2.0], [np.nan, 4.0]])
    rescale_columns(matrix)
    np.testing.assert_array_equal(matrix, [[1.0, 2.0], [np.nan, 4.0]])


# ---------------------------------------------------------------- the paper's Figure 5

def test_paper_figure5_shapes_mask_and_range():
    paper = paper_figure5()
    assert len(paper) == 3
    source, target = np.indices((13, 12))
    for matrix in paper:
        assert matrix.shape == (13, 13)
        np.testing.assert_array_equal(np.isnan(matrix[:, :-1]), source >= target + 1)
        assert np.isfinite(matrix[:, -1]).all()
        values = matrix[np.isfinite(matrix)]
        assert values.min() == 0.0 and values.max() == 1.0
        # already rescaled per column: rescaling again changes nothing
        np.testing.assert_allclose(rescale_columns(matrix), matrix, equal_nan=True)


def test_paper_figure5_known_cells():
    block1, block2, block3 = paper_figure5()
    assert block1[0, 0] == 1.0 and block1[4, 12] == pytest.approx(0.794)
    np.testing.assert_array_equal(block2[0, 1:], 0.0)      # transition 1's outputs: least weight
    assert block3[12, 12] == 1.0 and block3[0, 12] == 0.0   # classifier favours the last layer


def test_observations_hold_on_the_papers_figure():
    observations = reuse_observations(paper_figure5())
    assert [o["id"] for o in observations] == [1, 2, 3, 4]
    for observation in observations:
        assert observation["holds"] is True, observation
        assert any(ch.isdigit() for ch in observation["evidence"])
    assert "26/30" in observations[0]["evidence"]
    assert "transition 1: 0.92" in observations[1]["evidence"]
    assert "row 0 mean 0.000" in observations[2]["evidence"]
    assert "0.730 vs 0.035" in observations[3]["evidence"]


def test_observations_same_on_raw_and_rescaled():
    state, _ = planted_densenet(layers=(4, 4, 4))
    raw = feature_reuse(state)
    verdicts = [o["holds"] for o in reuse_observations(raw)]
    assert verdicts == [o["holds"] for o in reuse_observations([rescale_columns(m) for m in raw])]


def test_observations_fail_when_pattern_is_reversed():
    # planted weights grow with the source index everywhere, except make row 0 the largest and
    # the classifier favour the earliest sources
    state, _ = planted_densenet(layers=(4, 4, 4))
    matrices = feature_reuse(state)
    for matrix in matrices:
        matrix[0, 1:-1] = 1.0
    matrices[-1][:, -1] = np.linspace(1.0, 0.0, 5)
    by_id = {o["id"]: o for o in reuse_observations(matrices)}
    assert by_id[3]["holds"] is False
    assert by_id[4]["holds"] is False


def test_observation_three_needs_two_blocks():
    state, _ = planted_densenet(layers=(4,))
    by_id = {o["id"]: o for o in reuse_observations(feature_reuse(state))}
    assert by_id[3]["holds"] is False and "two dense blocks" in by_id[3]["evidence"]
    assert by_id[2]["holds"] is False and "no transition" in by_id[2]["evidence"]


# ---------------------------------------------------------------- plots

def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_plot_writes_png_with_paper_layout(tmp_path):
    state, _ = planted_densenet(layers=(3, 3, 3))
    path = tmp_path / "fig5.png"
    figure = plot_feature_reuse(feature_reuse(state), path)
    width, height = _png_size(path)
    assert path.stat().st_size > 10_000 and width > 2 * height
    heatmaps = [axes for axes in figure.axes if axes.get_title()]
    assert [axes.get_title() for axes in heatmaps] == ["Dense Block 1", "Dense Block 2", "Dense Block 3"]
    assert [axes.get_xticklabels()[-1].get_text() for axes in heatmaps] == [
        "Transition layer 1", "Transition layer 2", "Classification layer"]
    assert heatmaps[0].get_ylabel() == "Source layer (s)"
    assert heatmaps[0].get_xlabel() == "Target layer (\u2113)"
    image = heatmaps[0].get_images()[0]
    assert image.cmap.N == 64 and image.get_clim() == (0.0, 1.0)
    bottom, top = heatmaps[0].get_ylim()
    assert top < bottom                                    # source 0 at the top
    close_figure(figure)


def test_plot_raw_and_four_blocks(tmp_path):
    state, _ = planted_densenet(**CASES["imagenet-4-blocks"])
    path = tmp_path / "raw.png"
    figure = plot_feature_reuse(feature_reuse(state), path, rescale=False)
    assert _png_size(path)[0] > 0
    heatmaps = [axes for axes in figure.axes if axes.get_title()]
    assert len(heatmaps) == 4
    assert heatmaps[0].get_images()[0].get_clim()[1] == pytest.approx(0.4325, rel=1e-6)
    close_figure(figure)


def test_plot_compare_paper(tmp_path):
    state, _ = planted_densenet(layers=(12, 12, 12))
    path = tmp_path / "vs_paper.png"
    figure = plot_compare_paper(feature_reuse(state), path)
    width, height = _png_size(path)
    assert height > width / 3
    assert len([axes for axes in figure.axes if axes.get_title()]) == 6
    close_figure(figure)

    state, _ = planted_densenet(**CASES["two-blocks"])
    figure = plot_compare_paper(feature_reuse(state), tmp_path / "two.png")
    assert len([axes for axes in figure.axes if axes.get_title()]) == 2
    assert "2 dense blocks" in figure.get_suptitle()
    close_figure(figure)


# ---------------------------------------------------------------- files and the command

def _read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_write_feature_reuse_files_and_csv_values(tmp_path):
    state, expected = planted_densenet(layers=(3, 3, 3))
    png, table = write_feature_reuse({"model": state}, tmp_path / "run")
    assert png.name == "figure5.png" and table.name == "figure5.csv"
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    rows = _read_csv(table)
    assert list(rows[0]) == ["block", "source", "t1", "t2", "t3", "t_next", "kind"]
    assert len(rows) == 2 * 3 * 4
    raw = {(r["block"], r["source"]): r for r in rows if r["kind"] == "raw"}
    assert float(raw["2", "1"]["t3"]) == pytest.approx(expected[1][1, 2], rel=1e-5)
    assert raw["2", "3"]["t3"] == ""                      # masked cell
    assert float(raw["3", "0"]["t_next"]) == pytest.approx(expected[2][0, 3], rel=1e-5)
    rescaled = [r for r in rows if r["kind"] == "rescaled" and r["block"] == "1"]
    assert [float(r["t_next"]) for r in rescaled] == [0.0, pytest.approx(1 / 3), pytest.approx(2 / 3), 1.0]


def test_csv_pads_blocks_with_fewer_layers(tmp_path):
    state, _ = planted_densenet(**CASES["basic-uneven-depths"])
    _, table = write_feature_reuse(state, tmp_path)
    rows = _read_csv(table)
    assert list(rows[0])[2:-2] == [f"t{l}" for l in range(1, 8)]
    block2 = [r for r in rows if r["block"] == "2" and r["kind"] == "raw"]
    assert len(block2) == 2 and block2[0]["t1"] != "" and block2[0]["t2"] == ""


def test_heatmap_command_with_stubbed_loader(tmp_path, monkeypatch, capsys):
    state, expected = planted_densenet(layers=(4, 4, 4))
    monkeypatch.setattr(md, "load", lambda path: {"model": state, "config": {}}, raising=False)
    out = tmp_path / "figs" / "fig5.png"
    assert heatmap_main(["ckpt.npz", "--out", str(out), "--compare-paper"]) == 0
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    assert (tmp_path / "figs" / "fig5_vs_paper.png").read_bytes()[:8] == PNG_SIGNATURE
    rows = _read_csv(tmp_path / "figs" / "fig5.csv")
    assert float(rows[0]["t1"]) == pytest.approx(expected[0][0, 0], rel=1e-5)
    printed = capsys.readouterr().out
    for number in ("(1)", "(2)", "(3)", "(4)"):
        assert number in printed
    assert printed.count("paper: holds.") == 4


def test_heatmap_command_on_a_saved_checkpoint(tmp_path, capsys):
    if not hasattr(md, "save"):
        pytest.skip("minidense.save is not available yet")
    state, expected = planted_densenet(layers=(3, 3, 3), bottleneck=True, stem=24, compression=0.5)
    checkpoint = tmp_path / "ckpt.npz"
    md.save({"model": state, "config": {"depth": 22}}, checkpoint)
    out = tmp_path / "fig5.png"
    assert heatmap_main([str(checkpoint), "--out", str(out), "--raw"]) == 0
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    raw = [r for r in _read_csv(tmp_path / "fig5.csv") if r["kind"] == "raw"]
    assert float(raw[0]["t_next"]) == pytest.approx(expected[0][0, -1], rel=1e-5)

    plain = tmp_path / "state.npz"                         # a plain state-dict file works too
    md.save(state, plain)
    assert heatmap_main([str(plain), "--out", str(tmp_path / "plain.png")]) == 0
