"""Faults of the machine and files edited elsewhere, met by `python -m minidense train`: each is one
line and exit status 2 (130 or 143 for Ctrl-C and SIGTERM) naming what to do, and nothing that
was on disk is lost.

The runs are tiny (DenseNet-BC depth 10, k = 4, 64 training images in 2 batches, 2 epochs).
"""
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import minidense as md
from file_faults import deny_opening, fail_write
from minidense import train, train_cli
from minidense.run_folder import RunLock

TINY_RUN = ["--depth", "10", "--growth-rate", "4", "--bottleneck", "--epochs", "2",
            "--batch-size", "32", "--limit-train", "64", "--limit-test", "32", "--quiet",
            "--no-heatmap"]
PROGRAM = "python -m minidense train"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def one_line_error(capsys):
    error = capsys.readouterr().err
    assert error.startswith(f"{PROGRAM}: error: ") and error.count("\n") == 1, error
    return error


def resume_hint(run_dir):
    return f"resume with: {PROGRAM} --out {run_dir} --resume"


def epochs_in(run_dir):
    return [json.loads(line)["epoch"]
            for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def at_batch(monkeypatch, number, action):
    """Run ``action()`` just before the ``number``th training step of the run (2 per epoch)."""
    original_step, calls = train.step_on_device, []

    def step(*args):
        calls.append(1)
        if len(calls) == number:
            action()
        return original_step(*args)

    monkeypatch.setattr(train, "step_on_device", step)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    assert train_cli.train_main(TINY_RUN + ["--out", str(run_dir)]) == 0
    return run_dir


# ----------------------------------------------------------------------------------------------
# A full disk, a read-only file system, a quota
# ----------------------------------------------------------------------------------------------
def test_a_full_disk_in_epoch_2_names_the_epoch_kept_and_the_resume_command(tmp_path, monkeypatch,
                                                                          capsys):
    run_dir = tmp_path / "run"
    fail_write(monkeypatch, "last.npz", 2)
    assert train_cli.train_main(TINY_RUN + ["--out", str(run_dir)]) == 2
    error = one_line_error(capsys)
    assert f"cannot write {run_dir / 'last.npz'}: No space left on device" in error
    assert (f"{run_dir / 'last.npz'} holds epoch 1; free some disk space, then "
            f"{resume_hint(run_dir)}") in error
    assert md.load(run_dir / "last.npz")["epoch"] == 1
    assert [p.name for p in run_dir.iterdir() if p.name.endswith(".tmp")] == []
    monkeypatch.undo()
    assert train_cli.train_main(["--out", str(run_dir), "--resume", "--quiet", "--no-heatmap"]) == 0
    assert epochs_in(run_dir) == [1, 2] and md.load(run_dir / "last.npz")["epoch"] == 2


@pytest.mark.parametrize("name, nth, error_number, expected", [
    ("config.json", 1, errno.EROFS, "Read-only file system; no epoch was saved; use a folder on a "
                                    "writable file system, then start the run again"),
    ("curves.png", 1, errno.EDQUOT, "holds epoch 1; free some space within your disk quota, "
                                    "then resume with"),
    ("results.json", 1, errno.ENOSPC, "holds epoch 2; free some disk space, then resume with"),
])
def test_read_only_and_quota_faults_are_one_line(tmp_path, monkeypatch, capsys, name, nth,
                                                 error_number, expected):
    run_dir = tmp_path / "run"
    fail_write(monkeypatch, name, nth, error_number)
    assert train_cli.train_main(TINY_RUN + ["--out", str(run_dir)]) == 2
    error = one_line_error(capsys)
    assert f"cannot write {run_dir / name}: {os.strerror(error_number)}" in error
    assert expected in error


def mount_tmpfs(folder, size):
    """Mount a small tmpfs at ``folder``; skip the test where this process may not."""
    folder.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small file system needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")


def test_a_real_file_system_filling_up_in_epoch_2(tmp_path, monkeypatch, capsys):
    disk = tmp_path / "disk"
    mount_tmpfs(disk, "4m")
    try:
        run_dir, filler = disk / "run", disk / "filler"

        def fill_the_disk():
            with open(filler, "wb") as file:
                try:
                    while True:
                        file.write(bytes(1 << 16))
                        file.flush()
                except OSError as error:
                    assert error.errno == errno.ENOSPC

        at_batch(monkeypatch, 3, fill_the_disk)             # epoch 2, batch 1
        assert train_cli.train_main(TINY_RUN + ["--out", str(run_dir)]) == 2
        error = one_line_error(capsys)
        assert "No space left on device" in error
        assert f"holds epoch 1; free some disk space, then {resume_hint(run_dir)}" in error
        filler.unlink()
        monkeypatch.undo()
        assert train_cli.train_main(["--out", str(run_dir), "--resume", "--quiet",
                                 "--no-heatmap"]) == 0
        assert epochs_in(run_dir) == [1, 2]
    finally:
        subprocess.run(["umount", str(disk)], check=True)


# ----------------------------------------------------------------------------------------------
# Two runs on one folder; a folder deleted during a run
# ----------------------------------------------------------------------------------------------
def test_a_second_run_on_a_locked_folder_is_refused_naming_the_first(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with RunLock(run_dir):
        assert train_cli.train_main(TINY_RUN + ["--out", str(run_dir)]) == 2
        error = one_line_error(capsys)
        lock = json.loads((run_dir / ".lock").read_text())
    assert f"--out {run_dir} is in use by another training run (pid {os.getpid()} on " in error
    assert f"started {lock['started']}); wait for it to finish" in error
    assert sorted(p.name for p in run_dir.iterdir()) == []


def test_a_lock_left_by_a_killed_run_is_taken_over(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / ".lock").write_text('{"pid": 999999, "host": "gone", "started": "yesterday"}')
    assert train_cli.train_main(TINY_RUN + ["--out", str(run_dir)]) == 0
    assert epochs_in(run_dir) == [1, 2] and not (run_dir / ".lock").exists()


def test_a_run_folder_deleted_during_training_stops_the_run(tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "run"
    at_batch(monkeypatch, 3, lambda: shutil.rmtree(run_dir))
    assert train_cli.train_main(TINY_RUN + ["--out", str(run_dir)]) == 2
    error = one_line_error(capsys)
    assert (f"the run folder {run_dir} disappeared during the run (deleted or moved?) after 1 "
            f"finished epochs; the run stopped without recreating it") in error
    assert not run_dir.exists()


def test_a_run_folder_moved_during_training_keeps_its_files(tmp_path, monkeypatch, capsys):
    run_dir, moved = tmp_path / "run", tmp_path / "moved"
    at_batch(monkeypatch, 3, lambda: run_dir.rename(moved))
    assert train_cli.train_main(TINY_RUN + ["--out", str(run_dir)]) == 2
    assert "disappeared during the run" in one_line_error(capsys)
    assert not run_dir.exists() and md.load(moved / "last.npz")["epoch"] == 1
    monkeypatch.undo()
    assert train_cli.train_main(["--out", str(moved), "--resume", "--quiet", "--no-heatmap"]) == 0
    assert epochs_in(moved) == [1, 2]


# ----------------------------------------------------------------------------------------------
# SIGTERM and Ctrl-C
# ----------------------------------------------------------------------------------------------
def test_sigterm_stops_like_ctrl_c_with_status_143_and_the_resume_command(tmp_path, monkeypatch,
                                                                       capsys):
    run_dir = tmp_path / "run"
    at_batch(monkeypatch, 4, lambda: os.kill(os.getpid(), signal.SIGTERM))  # epoch 2, batch 2
    assert train_cli.train_main(TINY_RUN + ["--out", str(run_dir)]) == 143
    error = capsys.readouterr().err
    assert "interrupted: 1 of 2 epochs finished" in error
    assert f"SIGTERM: stopped; {resume_hint(run_dir)}" in error
    assert md.load(run_dir / "last.npz")["epoch"] == 1
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_ctrl_c_while_the_curves_are_drawn_waits_for_them(tmp_path, monkeypatch, capsys):
    from minidense import metrics
    run_dir, real_plot = tmp_path / "run", metrics.plot_curves

    def plot_interrupted(history, path):
        os.kill(os.getpid(), signal.SIGINT)         # Ctrl-C in the middle of the drawing
        return real_plot(history, path)

    monkeypatch.setattr(metrics, "plot_curves", plot_interrupted)
    assert train_cli.train_main(TINY_RUN + ["--out", str(run_dir)]) == 130
    error = capsys.readouterr().err
    assert "interrupted: 1 of 2 epochs finished" in error and resume_hint(run_dir) in error
    assert (run_dir / "curves.png").read_bytes()[:8] == PNG_MAGIC
    assert md.load(run_dir / "last.npz")["epoch"] == 1 and epochs_in(run_dir) == [1]


def test_sigterm_sent_to_a_training_process_exits_143(tmp_path):
    """The real thing: `python -m minidense train` sent SIGTERM from outside once it has saved an
    epoch (of 20, so that it is still training)."""
    run_dir = tmp_path / "run"
    environment = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    process = subprocess.Popen([sys.executable, "-m", "minidense", "train", *TINY_RUN,
                                "--epochs", "20", "--out", str(run_dir)],
                               stderr=subprocess.PIPE, text=True, env=environment)
    try:
        while not (run_dir / "last.npz").exists() and process.poll() is None:
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        _, error = process.communicate(timeout=300)
    finally:
        process.kill()
    assert process.returncode == 143
    assert error.strip().endswith(f"SIGTERM: stopped; {resume_hint(run_dir)}")
    saved = md.load(run_dir / "last.npz")["epoch"]
    assert 1 <= saved < 20 and epochs_in(run_dir) == list(range(1, saved + 1))


# ----------------------------------------------------------------------------------------------
# A checkpoint that cannot be read, or holds values training never writes
# ----------------------------------------------------------------------------------------------
def copy_of(finished_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    return run_dir


def test_permission_denied_on_last_npz_says_so(finished_run, tmp_path, monkeypatch, capsys):
    run_dir = copy_of(finished_run, tmp_path)
    deny_opening(monkeypatch, run_dir / "last.npz")
    assert train_cli.train_main(["--out", str(run_dir), "--resume", "--epochs", "3"]) == 2
    error = one_line_error(capsys)
    assert f"cannot read {run_dir / 'last.npz'}: Permission denied; check its permissions" in error
    assert "corrupted" not in error and "damaged" not in error


def edited(checkpoint, key, value):
    """``checkpoint`` with ``key`` (a path like 'arguments/lr') set to ``value``."""
    *parents, last = [int(name) if name.isdigit() else name for name in key.split("/")]
    entry = checkpoint
    for name in parents:
        entry = entry[name]
    entry[last] = value
    return checkpoint


@pytest.mark.parametrize("key, value, expected", [
    ("arguments/lr", "0.1", "holds the option lr='0.1', which must be a number"),
    ("arguments/batch_size", "32", "holds the option batch_size='32', which must be a whole "
                                   "number"),
    ("arguments/optimizer", "rmsprop", "holds the option optimizer='rmsprop', which must be one "
                                       "of adam, adamw, sgd"),
    ("rng/numpy", {"bit_generator": "PCG64", "state": "x"}, "the random generator's state is"),
    ("rng/seed", -1, "the random generator's seed is -1"),
    ("history", [1], "history row 1 is 1, expected numbers for epoch, lr"),
    ("history", [], "'epoch' is 2, expected 0, the number of rows in its history"),
    ("best_accuracy", "x", "'best_accuracy' is 'x', expected a number from 0 to 1"),
    ("model", [1, 2], "'model' is [1, 2], expected a dict of parameter names to arrays"),
    ("optimizer/param_groups/0/lr", "0.1", "optimizer param_groups[0]['lr'] is '0.1', expected "
                                           "a finite number"),
    ("optimizer/param_groups/0/params/0", 1, "['params'] is [1, 1, 2, 3, 4, 5,"),
    ("scheduler/T_max", 0, "scheduler['T_max'] is 0, expected a whole number, 1 or more"),
])
def test_edited_checkpoint_values_are_named_in_one_line(finished_run, tmp_path, capsys, key,
                                                        value, expected):
    run_dir = copy_of(finished_run, tmp_path)
    md.save(edited(md.load(run_dir / "last.npz"), key, value), run_dir / "last.npz")
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    assert train_cli.train_main(["--out", str(run_dir), "--resume", "--epochs", "3"]) == 2
    error = one_line_error(capsys)
    assert f"{run_dir / 'last.npz'}" in error and expected in error
    assert "edited or damaged" in error
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before


@pytest.mark.parametrize("key, value", [("arguments/depth", 30_004),
                                        ("arguments/growth_rate", 100_000)])
def test_a_checkpoint_asking_for_a_huge_model_is_refused_before_it_is_built(
        finished_run, tmp_path, capsys, key, value):
    """A few edited bytes must not make minidense allocate a model far larger than the file."""
    import tracemalloc
    run_dir = copy_of(finished_run, tmp_path)
    md.save(edited(md.load(run_dir / "last.npz"), key, value), run_dir / "last.npz")
    tracemalloc.start()
    try:
        assert train_cli.train_main(["--out", str(run_dir), "--resume", "--epochs", "3"]) == 2
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    error = one_line_error(capsys)
    assert f"{run_dir / 'last.npz'} describes a model larger than the" in error
    assert "edited or damaged" in error
    assert peak < 200 * 2 ** 20


def test_a_checkpoint_that_passes_the_checks_resumes(finished_run, tmp_path):
    run_dir = copy_of(finished_run, tmp_path)
    checkpoint = md.load(run_dir / "last.npz")
    np.testing.assert_array_equal(checkpoint["rng"]["numpy"]["state"]["state"],
                                  md.load(finished_run / "last.npz")["rng"]["numpy"]["state"]
                                  ["state"])
    assert train_cli.train_main(["--out", str(run_dir), "--resume", "--epochs", "3", "--quiet",
                                 "--no-heatmap"]) == 0
    assert epochs_in(run_dir) == [1, 2, 3]
