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
