"""The command line: `python -m minidense` lists its commands; bad names exit 2 clearly."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from minidense import evaluate_cli, train_cli
from minidense.data import DATASETS
from minidense.models import MODELS

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args):
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    environment = dict(os.environ, PYTHONPATH=path)
    return subprocess.run([sys.executable, "-m", "minidense", *args], capture_output=True,
                          text=True, cwd=ROOT, env=environment, timeout=120)


def test_help_lists_the_commands():
    finished = run_cli("--help")
    assert finished.returncode == 0
    for command in ["train", "evaluate", "heatmap", "summary", "grade", "bench"]:
        assert f"  {command} " in finished.stdout


def test_unknown_model_on_the_command_line_exits_2_without_a_traceback():
    finished = run_cli("train", "--model", "densenet7")
    assert finished.returncode == 2
    assert "invalid choice: 'densenet7'" in finished.stderr
    assert "densenet_bc_100" in finished.stderr and "Traceback" not in finished.stderr


def test_train_help_shows_the_options(capsys):
    assert train_cli.train_main(["--help"]) == 0
    text = capsys.readouterr().out
    for option in ["--model", "--depth", "--growth-rate", "--no-bottleneck", "--dataset",
                   "--epochs", "--batch-size", "--lr", "--no-nesterov", "--weight-decay",
                   "--optimizer", "--schedule", "--no-augment", "--limit-train", "--device",
                   "--seed", "--out", "--resume", "--memory-efficient", "--preset",
                   "--no-heatmap", "--quiet"]:
        assert option in text, option


@pytest.mark.parametrize("argv, valid_names", [
    (["--model", "resnet9000"], MODELS),
    (["--dataset", "imagenet"], DATASETS),
])
def test_unknown_names_list_the_valid_ones(argv, valid_names, capsys):
    assert train_cli.train_main(argv) == 2
    error = capsys.readouterr().err
    assert "invalid choice" in error
    for name in valid_names:
        assert name in error


def test_evaluate_with_an_unknown_dataset_lists_the_valid_ones(capsys):
    assert evaluate_cli.evaluate_main(["run/best.npz", "--dataset", "svhn"]) == 2
    error = capsys.readouterr().err
    assert all(name in error for name in DATASETS)


def test_evaluate_missing_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert evaluate_cli.evaluate_main([str(tmp_path / "missing.npz")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_depth_that_does_not_fit_is_a_clear_error(tmp_path, capsys):
    code = train_cli.train_main(["--depth", "11", "--out", str(tmp_path / "run"), "--quiet"])
    assert code == 2
    error = capsys.readouterr().err
    assert "depth=11" in error and "Traceback" not in error


# ----------------------------------------------------------------------------------------------
# heatmap and evaluate: one line for what the user can fix
# ----------------------------------------------------------------------------------------------
def one_line_error(capsys, program):
    error = capsys.readouterr().err
    assert error.startswith(f"python -m minidense {program}: error: ") and error.count("\n") == 1
    return error


@pytest.fixture(scope="module")
def resnet_files(tmp_path_factory):
    """A ResNet's training-style checkpoint and its bare state dict."""
    import minidense as md
    from minidense.models import preact_resnet
    folder = tmp_path_factory.mktemp("resnet")
    model = preact_resnet(8, num_classes=10)
    md.save({"model": model.state_dict(), "model_config": model.config}, folder / "ckpt.npz")
    md.save(model.state_dict(), folder / "weights.npz")
    return folder


def test_heatmap_of_a_resnet_checkpoint_is_one_line(resnet_files, tmp_path, capsys):
    from minidense.analysis.cli import heatmap_main
    assert heatmap_main([str(resnet_files / "ckpt.npz"), "--out", str(tmp_path / "f.png")]) == 2
    error = one_line_error(capsys, "heatmap")
    assert f"{resnet_files / 'ckpt.npz'} holds a preact_resnet; the feature-reuse heatmap " \
           f"(Figure 5) needs a DenseNet" in error
    assert heatmap_main([str(resnet_files / "weights.npz"), "--out", str(tmp_path / "f.png")]) == 2
    assert "does not look like a DenseNet state dict" in one_line_error(capsys, "heatmap")
    assert list(tmp_path.iterdir()) == []


def test_heatmap_out_that_is_a_folder_or_under_a_file_is_one_line(tmp_path, capsys):
    from minidense.analysis.cli import heatmap_main
    from minidense.pretrained import folder
    weights = str(folder("densenet40_fashion_sample") / "weights.npz")
    assert heatmap_main([weights, "--out", str(tmp_path)]) == 2
    assert f"--out {tmp_path} is a folder; give the file to write, e.g. --out " \
           f"{tmp_path / 'figure5.png'}" in one_line_error(capsys, "heatmap")
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    assert heatmap_main([weights, "--out", str(a_file / "f.png")]) == 2
    assert f"lies under the file {a_file}" in one_line_error(capsys, "heatmap")
    assert heatmap_main([weights, "--out", str(tmp_path / "new" / "f.png")]) == 0
    assert (tmp_path / "new" / "f.png").read_bytes()[:4] == b"\x89PNG"


def test_evaluate_out_under_a_file_is_one_line(tmp_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    assert evaluate_cli.evaluate_main([str(tmp_path / "best.npz"), "--out", str(a_file / "x")]) == 2
    assert f"lies under the file {a_file}" in one_line_error(capsys, "evaluate")


def test_evaluate_the_shipped_weights_with_the_model_json_beside_them(tmp_path, capsys):
    from minidense.pretrained import folder
    weights = folder("densenet40_fashion_sample") / "weights.npz"
    assert evaluate_cli.evaluate_main([str(weights), "--limit", "64", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert f"{weights} on sample (64 test images): accuracy " in printed
    counts = [line.split(",")[1:] for line in
              (tmp_path / "confusion.csv").read_text().splitlines()[1:]]
    assert sum(int(value) for row in counts for value in row) == 64


def test_ctrl_c_during_evaluate_is_one_line(tmp_path, monkeypatch, capsys):
    from minidense import evaluate_cli
    from minidense.pretrained import folder

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluate_cli, "evaluate", interrupted)
    weights = folder("densenet40_fashion_sample") / "weights.npz"
    assert evaluate_cli.evaluate_main([str(weights), "--limit", "64", "--out",
                                       str(tmp_path)]) == 130
    assert capsys.readouterr().err == "\nCtrl-C: evaluation stopped\n"
    assert list(tmp_path.iterdir()) == []


def test_evaluate_a_checkpoint_whose_weights_are_not_a_dict_is_one_line(tmp_path, capsys):
    import minidense as md
    from minidense.models import densenet_cifar
    model = densenet_cifar(10, 4, bottleneck=True, in_channels=1)
    md.save({"model": [1, 2], "model_config": model.config}, tmp_path / "edited.npz")
    assert evaluate_cli.evaluate_main([str(tmp_path / "edited.npz"), "--limit", "8"]) == 2
    assert f"{tmp_path / 'edited.npz'} holds a list where the model's weights should be" \
        in one_line_error(capsys, "evaluate")


def test_evaluate_refuses_a_model_config_larger_than_its_weights(tmp_path, capsys):
    import minidense as md
    from minidense.models import densenet_cifar
    model = densenet_cifar(10, 4, bottleneck=True, in_channels=1)
    md.save({"model": model.state_dict(), "model_config": dict(model.config, depth=40_000)},
            tmp_path / "edited.npz")
    assert evaluate_cli.evaluate_main([str(tmp_path / "edited.npz"), "--limit", "8"]) == 2
    assert f"{tmp_path / 'edited.npz'} describes a model larger than the" \
        in one_line_error(capsys, "evaluate")


def test_ctrl_c_while_evaluate_draws_waits_for_its_files(tmp_path, monkeypatch, capsys):
    import os
    import signal
    from minidense import metrics
    from minidense.pretrained import folder
    real_plot = metrics.plot_confusion

    def plot_interrupted(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)         # Ctrl-C in the middle of the drawing
        return real_plot(*args, **kwargs)

    monkeypatch.setattr(metrics, "plot_confusion", plot_interrupted)
    weights = folder("densenet40_fashion_sample") / "weights.npz"
    assert evaluate_cli.evaluate_main([str(weights), "--limit", "16", "--out", str(tmp_path)]) == 130
    assert capsys.readouterr().err.endswith("\nCtrl-C: evaluation stopped\n")
    assert (tmp_path / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    assert len((tmp_path / "confusion.csv").read_text().splitlines()) == 11
