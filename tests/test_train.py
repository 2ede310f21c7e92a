"""The training loop and run folder: files, resume, Ctrl-C, evaluate, checkpoint mismatches.

One tiny DenseNet-BC (depth 10, k=4) on 256 training / 128 test images of the embedded sample is
trained for two epochs once per module and shared by the tests that only read its folder.
"""
import json
import shutil
import sys

import numpy as np
import pytest

import minidense as md
from minidense import checkpoints, evaluate_cli, run_settings, train, train_cli
from minidense.data import ArrayDataset, get_dataset
from minidense.models import densenet_cifar

TINY_RUN = ["--depth", "10", "--growth-rate", "4", "--bottleneck", "--epochs", "2",
            "--batch-size", "64", "--lr", "0.1", "--limit-train", "256", "--limit-test", "128", "--quiet"]
RUN_FILES = ["config.json", "metrics.csv", "metrics.jsonl", "curves.png", "last.npz", "best.npz",
             "results.json", "figure5.png", "figure5.csv"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def read_metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def deterministic_columns(rows):
    """The per-epoch numbers that must repeat exactly (timings never do)."""
    keys = ["epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "test_error"]
    return [{k: row[k] for k in keys} for row in rows]


def leftover_temporary_files(run_dir):
    return [p.name for p in run_dir.iterdir() if p.name.endswith(".tmp")]


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    """A finished two-epoch run, plus the loss of its very first training batch."""
    run_dir = tmp_path_factory.mktemp("straight") / "run"
    losses = []
    original_step = train.step_on_device

    def recording_step(*args):
        loss, correct = original_step(*args)
        losses.append(float(loss))
        return loss, correct

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train, "step_on_device", recording_step)
        code = train_cli.train_main(TINY_RUN + ["--out", str(run_dir)])
    assert code == 0
    return run_dir, losses[0]


def test_run_writes_every_file(straight_run):
    run_dir, _ = straight_run
    for name in RUN_FILES:
        assert (run_dir / name).is_file(), name
    for name in ["curves.png", "figure5.png"]:
        assert (run_dir / name).read_bytes()[:8] == PNG_MAGIC
    assert leftover_temporary_files(run_dir) == []
    header = (run_dir / "metrics.csv").read_text().splitlines()[0]
    assert header == ",".join(train.METRIC_COLUMNS)
    assert len((run_dir / "metrics.csv").read_text().splitlines()) == 3      # header + 2 epochs


def test_training_lowers_the_loss(straight_run):
    run_dir, first_batch_loss = straight_run
    rows = read_metrics(run_dir)
    assert first_batch_loss == pytest.approx(np.log(10), abs=0.5)        # an untrained classifier
    assert rows[-1]["train_loss"] < first_batch_loss - 0.05
    assert rows[-1]["test_error"] == pytest.approx(1 - rows[-1]["test_acc"])
    assert [row["epoch"] for row in rows] == [1, 2]
    assert rows[0]["lr"] == pytest.approx(0.1)
    assert rows[1]["lr"] == pytest.approx(0.05)                          # cosine over 2 epochs


def test_results_and_config(straight_run):
    run_dir, _ = straight_run
    results = json.loads((run_dir / "results.json").read_text())
    rows = read_metrics(run_dir)
    assert results["test_accuracy"] == pytest.approx(rows[-1]["test_acc"])
    assert results["test_error"] == pytest.approx(1 - results["test_accuracy"])
    assert results["epochs"] == 2
    assert results["parameters"] == densenet_cifar(10, 4, bottleneck=True, compression=0.5,
                                                   in_channels=1).num_parameters()
    assert set(results["per_class_accuracy"]) == set(get_dataset("sample").classes)
    config = json.loads((run_dir / "config.json").read_text())
    assert config["depth"] == 10 and config["growth_rate"] == 4 and config["dataset"] == "sample"
    assert config["nesterov"] is True and config["schedule"] == "cosine"


def test_checkpoint_contents(straight_run):
    run_dir, _ = straight_run
    checkpoint = md.load(run_dir / "last.npz")
    assert checkpoint["epoch"] == 2
    assert checkpoint["model_config"]["name"] == "densenet_cifar"
    assert checkpoint["model_config"]["in_channels"] == 1
    assert checkpoint["arguments"]["limit_train"] == 256
    assert len(checkpoint["history"]) == 2
    assert "features.denseblock1.denselayer1.conv1.weight" in checkpoint["model"]
    assert checkpoint["optimizer"]["param_groups"][0]["nesterov"] is True
    best = md.load(run_dir / "best.npz")
    assert best["best_accuracy"] == pytest.approx(max(r["test_acc"] for r in read_metrics(run_dir)))


def test_ctrl_c_keeps_the_last_epoch_and_resume_matches_a_straight_run(straight_run, tmp_path,
                                                                       monkeypatch, capsys):
    straight_dir, _ = straight_run
    run_dir = tmp_path / "run"
    original_step = train.step_on_device
    calls = []

    def interrupted_step(*args):
        calls.append(1)
        if len(calls) == 6:                     # 4 batches per epoch: batch 2 of epoch 2
            raise KeyboardInterrupt
        return original_step(*args)

    monkeypatch.setattr(train, "step_on_device", interrupted_step)
    assert train_cli.train_main(TINY_RUN + ["--out", str(run_dir)]) == 130
    message = capsys.readouterr().err
    assert "1 of 2 epochs finished" in message and "--resume" in message
    assert md.load(run_dir / "last.npz")["epoch"] == 1
    assert len(read_metrics(run_dir)) == 1
    assert not (run_dir / "results.json").exists()
    assert leftover_temporary_files(run_dir) == []

    monkeypatch.setattr(train, "step_on_device", original_step)
    assert train_cli.train_main(["--out", str(run_dir), "--resume", "--quiet"]) == 0
    assert deterministic_columns(read_metrics(run_dir)) == \
        deterministic_columns(read_metrics(straight_dir))
    resumed, straight = md.load(run_dir / "last.npz"), md.load(straight_dir / "last.npz")
    assert resumed["model"].keys() == straight["model"].keys()
    for name, value in straight["model"].items():
        np.testing.assert_array_equal(resumed["model"][name], value, err_msg=name)
    assert resumed["rng"] == straight["rng"]


def test_resume_with_another_architecture_names_the_option_in_one_line(straight_run, tmp_path,
                                                                       capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(straight_run[0], run_dir)
    before = (run_dir / "last.npz").read_bytes()
    code = train_cli.train_main(["--out", str(run_dir), "--resume", "--depth", "16", "--quiet"])
    assert code == 2
    error = capsys.readouterr().err
    assert error == ("python -m minidense train: error: the checkpoint is depth 10, you asked for "
                     "16: drop --depth or use a new --out\n")
    assert (run_dir / "last.npz").read_bytes() == before


def test_existing_run_is_not_overwritten_without_resume(straight_run, capsys):
    assert train_cli.train_main(TINY_RUN + ["--out", str(straight_run[0])]) == 2
    assert "--resume" in capsys.readouterr().err


def test_resume_needs_a_checkpoint(tmp_path, capsys):
    assert train_cli.train_main(["--out", str(tmp_path / "empty"), "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_evaluate_prints_accuracy_and_writes_the_confusion_matrix(straight_run, tmp_path, capsys):
    run_dir, _ = straight_run
    out = tmp_path / "eval"
    code = evaluate_cli.evaluate_main([str(run_dir / "last.npz"), "--limit", "128", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    results = json.loads((run_dir / "results.json").read_text())
    assert f"accuracy {100 * results['test_accuracy']:.2f}%" in printed   # same images, same model
    assert "Ankle boot" in printed and "Sneaker" in printed
    assert (out / "confusion.png").read_bytes()[:8] == PNG_MAGIC
    lines = (out / "confusion.csv").read_text().splitlines()
    assert len(lines) == 11
    counts = np.array([[int(v) for v in line.split(",")[1:]] for line in lines[1:]])
    assert counts.sum() == 128
    assert np.trace(counts) == round(results["test_accuracy"] * 128)


def test_evaluate_reports_a_missing_dataset_clearly(straight_run, tmp_path, capsys):
    code = evaluate_cli.evaluate_main([str(straight_run[0] / "best.npz"), "--dataset", "cifar10",
                                "--data-root", str(tmp_path)])
    assert code == 2
    assert "cifar10" in capsys.readouterr().err.lower()


def test_model_that_does_not_fit_the_dataset_is_rejected(straight_run):
    model = checkpoints.model_from_checkpoint(md.load(straight_run[0] / "best.npz"))
    colour = ArrayDataset(np.zeros((2, 3, 32, 32), np.uint8), [0, 1], list("abcdefghij"),
                          (0.5,) * 3, (0.25,) * 3, name="colour")
    with pytest.raises(train.UsageError, match="1-channel images.*colour has 3-channel"):
        evaluate_cli.check_model_fits(model, colour)


def test_rebuilt_model_rejects_weights_of_another_architecture(straight_run):
    checkpoint = md.load(straight_run[0] / "last.npz")
    checkpoint["model_config"]["depth"] = 16
    with pytest.raises(train.UsageError, match="does not fit.*denselayer2"):
        checkpoints.model_from_checkpoint(checkpoint)


def test_fit_in_memory_for_notebooks():
    setup = run_settings.build_from_args(dict(run_settings.DEFAULTS, depth=10, growth_rate=4, epochs=1,
                                       limit_train=128, limit_test=64, device="cpu"))
    result = train.fit(setup.model, setup.train_loader, setup.test_loader, setup.optimizer,
                       setup.scheduler, epochs=1, quiet=True)
    assert not result.interrupted
    assert len(result.history) == 1
    assert result.last_evaluation["confusion"].sum() == 64
    assert result.best_accuracy == result.history[0]["test_acc"]


def test_paper_preset_and_explicit_overrides():
    parser = train_cli.build_train_parser()
    settings = run_settings.resolve_settings(parser.parse_args(["--preset", "paper", "--epochs", "40"]))
    assert settings["epochs"] == 40                      # explicit flag beats the preset
    assert settings["batch_size"] == 64 and settings["augment"] is True
    assert settings["schedule"] == "multistep" and settings["nesterov"] is True
    assert settings["weight_decay"] == 1e-4 and settings["lr"] == 0.1
    preset_only = run_settings.resolve_settings(parser.parse_args(["--preset", "paper"]))
    assert preset_only["epochs"] == 300


def test_architecture_flags_only_apply_to_models_that_take_them():
    parser = train_cli.build_train_parser()
    settings = run_settings.resolve_settings(parser.parse_args(["--model", "densenet40"]))
    assert all(settings[name] is None for name in run_settings.ARCHITECTURE_OPTIONS)
    settings = run_settings.resolve_settings(parser.parse_args(["--model", "densenet40", "--drop-rate",
                                                         "0.2"]))
    assert settings["drop_rate"] == 0.2 and settings["depth"] is None


def test_multistep_schedule_divides_by_ten_at_half_and_three_quarters():
    model = densenet_cifar(10, 4, bottleneck=True)
    settings = dict(run_settings.DEFAULTS, epochs=300, schedule="multistep", lr=0.1)
    optimizer = run_settings.build_optimizer(settings, model.parameters())
    scheduler = run_settings.build_scheduler(settings, optimizer)
    assert scheduler.milestones == [150, 225]
    lrs = []
    for _ in range(300):
        lrs.append(train.current_lr(optimizer))
        scheduler.step()
    assert lrs[149] == pytest.approx(0.1) and lrs[150] == pytest.approx(0.01)
    assert lrs[224] == pytest.approx(0.01) and lrs[225] == pytest.approx(0.001)


# ----------------------------------------------------------------------------------------------
# User errors: one line, exit status 2, nothing written
# ----------------------------------------------------------------------------------------------
def one_line_error(capsys, program="train"):
    """The stderr of a command that must have failed with a single-line message."""
    error = capsys.readouterr().err
    assert error.startswith(f"python -m minidense {program}: error: ") and error.count("\n") == 1
    return error


@pytest.mark.parametrize("flags, expected", [
    (["--growth-rate", "0"], "--growth-rate must be at least 1, got 0"),
    (["--growth-rate", "-4"], "--growth-rate must be at least 1, got -4"),
    (["--epochs", "0"], "--epochs must be at least 1, got 0"),
    (["--epochs", "-2", "--schedule", "none"], "--epochs must be at least 1, got -2"),
    (["--lr", "nan"], "--lr must be a finite number above 0, got nan"),
    (["--lr", "inf"], "--lr must be a finite number above 0, got inf"),
    (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    (["--compression", "1.5"], "--compression must be in (0, 1], got 1.5"),
])
def test_options_that_cannot_train_are_named(tmp_path, capsys, flags, expected):
    run_dir = tmp_path / "run"
    assert train_cli.train_main(flags + ["--out", str(run_dir), "--quiet"]) == 2
    assert expected in one_line_error(capsys)
    assert not run_dir.exists()


def test_out_that_is_a_file_or_under_one_is_refused(tmp_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    assert train_cli.train_main(["--out", str(a_file), "--quiet"]) == 2
    assert f"--out {a_file} is a file; choose a folder" in one_line_error(capsys)
    assert train_cli.train_main(["--out", str(a_file / "run"), "--quiet"]) == 2
    assert f"lies under the file {a_file}" in one_line_error(capsys)


def test_out_that_is_not_writable_is_refused(tmp_path, capsys, monkeypatch):
    from minidense import run_folder
    monkeypatch.setattr(run_folder.os, "access", lambda path, mode: False)
    assert train_cli.train_main(["--out", str(tmp_path / "run"), "--quiet"]) == 2
    assert f"{tmp_path} is not writable" in one_line_error(capsys)


def test_resume_from_a_bare_state_dict_says_what_the_file_is(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    md.save(densenet_cifar(10, 4, bottleneck=True).state_dict(), run_dir / "last.npz")
    assert train_cli.train_main(["--out", str(run_dir), "--resume"]) == 2
    error = one_line_error(capsys)
    assert "is not a training checkpoint (it lacks model, optimizer, rng, epoch" in error
    assert "model.load_state_dict(md.load(path))" in error


def test_hostile_cifar_pickle_is_one_line(tmp_path, capsys):
    import pickle

    class Shell:
        def __reduce__(self):
            return (shutil.rmtree, ("/nonexistent",))

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in ["data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch",
                 "batches.meta"]:
        (folder / name).write_bytes(b"unused")
    (folder / "data_batch_1").write_bytes(pickle.dumps({b"data": Shell()}, protocol=2))
    assert train_cli.train_main(["--dataset", "cifar10", "--data-root", str(tmp_path), "--out",
                             str(tmp_path / "run"), "--quiet"]) == 2
    assert "refused to load the global 'shutil.rmtree'" in one_line_error(capsys)


@pytest.mark.parametrize("flags, expected", [
    (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    (["--limit", "0"], "--limit must be at least 1"),
])
def test_evaluate_options_that_cannot_run_are_named(straight_run, capsys, flags, expected):
    assert evaluate_cli.evaluate_main([str(straight_run[0] / "best.npz"), *flags]) == 2
    assert expected in one_line_error(capsys, "evaluate")


def test_evaluate_into_a_file_is_refused(straight_run, tmp_path, capsys):
    a_file = tmp_path / "taken"
    a_file.write_text("x")
    assert evaluate_cli.evaluate_main([str(straight_run[0] / "best.npz"), "--out", str(a_file)]) == 2
    assert "is a file; choose a folder" in one_line_error(capsys, "evaluate")


def test_heatmap_of_a_truncated_checkpoint_is_one_line(straight_run, tmp_path, capsys):
    from minidense.analysis.cli import heatmap_main
    cut = tmp_path / "cut.npz"
    data = (straight_run[0] / "best.npz").read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    assert heatmap_main([str(cut), "--out", str(tmp_path / "f.png")]) == 2
    assert "cut.npz" in one_line_error(capsys, "heatmap")


# ----------------------------------------------------------------------------------------------
# Runs that go wrong, and runs that are extended
# ----------------------------------------------------------------------------------------------
def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch,
                                                                     capsys):
    run_dir = tmp_path / "run"
    original_step, calls = train.step_on_device, []

    def diverging_step(*args):
        calls.append(1)
        loss, correct = original_step(*args)
        return (np.asarray(float("nan")) if len(calls) == 6 else loss), correct  # epoch 2, batch 2

    monkeypatch.setattr(train, "step_on_device", diverging_step)
    assert train_cli.train_main(TINY_RUN + ["--out", str(run_dir)]) == 2
    error = one_line_error(capsys)
    assert "the loss became nan at epoch 2, batch 2 of 4 (lr 0.05)" in error
    assert "lower learning rate" in error and f"{run_dir / 'last.npz'} still holds epoch 1" in error
    assert md.load(run_dir / "last.npz")["epoch"] == 1
    assert [row["epoch"] for row in read_metrics(run_dir)] == [1]
    assert not (run_dir / "results.json").exists()


def test_extending_a_finished_run_rebuilds_its_schedule(straight_run, tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(straight_run[0], run_dir)
    assert train_cli.train_main(["--out", str(run_dir), "--resume", "--epochs", "1"]) == 2
    assert "already trained 2 epochs; pass --epochs 3 or more" in one_line_error(capsys)
    assert train_cli.train_main(["--out", str(run_dir), "--resume", "--epochs", "3", "--quiet",
                             "--no-heatmap"]) == 0
    assert "planned 2 epochs and now has 3: its cosine schedule is rebuilt for 3 epochs " \
           "(epoch 3 starts at lr 0.025)" in capsys.readouterr().err
    lrs = [row["lr"] for row in read_metrics(run_dir)]
    assert lrs == pytest.approx([0.1, 0.05, 0.1 * (1 + np.cos(2 * np.pi / 3)) / 2])


def test_every_json_file_is_strict(tmp_path):
    from minidense import metrics
    metrics.write_json(tmp_path / "r.json", {"loss": float("nan"), "rows": [np.float32("inf"), 1]})
    metrics.write_jsonl(tmp_path / "r.jsonl", [{"x": -np.inf}])
    reject = lambda name: pytest.fail(f"{name} is not strict JSON")    # noqa: E731
    assert json.loads((tmp_path / "r.json").read_text(), parse_constant=reject) == \
        {"loss": None, "rows": [None, 1]}
    assert json.loads((tmp_path / "r.jsonl").read_text(), parse_constant=reject) == {"x": None}


def test_plots_written_to_files_leave_matplotlib_backend_and_pyplot_alone(tmp_path, monkeypatch):
    """A notebook that trains with out_dir= must keep showing its own figures inline afterwards."""
    matplotlib = pytest.importorskip("matplotlib")
    from minidense import metrics

    def switch_backend(*args, **kwargs):
        raise AssertionError(f"library code called matplotlib.use{args}")
    monkeypatch.setattr(matplotlib, "use", switch_backend)
    pyplot_loaded = "matplotlib.pyplot" in sys.modules
    history = [{"epoch": 1, "train_loss": 2.0, "test_loss": 2.1, "train_acc": 0.2, "test_acc": 0.2},
               {"epoch": 2, "train_loss": 1.5, "test_loss": 1.7, "train_acc": 0.4, "test_acc": 0.3}]
    metrics.plot_curves(history, tmp_path / "curves.png")
    metrics.plot_confusion(np.eye(3, dtype=np.int64), ["a", "b", "c"], tmp_path / "confusion.png")
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    if pyplot_loaded:
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []
