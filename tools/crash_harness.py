"""Kill training at random moments and in the middle of each file write, fill the disk, start a
second run on the same folder; resume, and check that the run folder ends exactly as an
uninterrupted run's.

    python tools/crash_harness.py                 # every write of every run file, 10 random kills
    python tools/crash_harness.py --quick         # two checkpoint writes, 1 random kill

Each training runs in a child process (``python -m minidense train`` on a tiny DenseNet-BC). To
kill it "while a file is being written", the child replaces ``os.replace`` (the rename that
finishes every atomic write) with one that, at the chosen write, cuts the new file's temporary
copy to half its size and sends itself SIGKILL, so the disk holds exactly what a crash mid-write
leaves. Random kills send SIGKILL from outside after a random delay. After every kill the run is
resumed (``--resume`` once a ``last.npz`` exists) until it finishes; then its folder is compared
with the uninterrupted run's: the same weights, random state and per-epoch numbers in
``last.npz``, a ``best.npz`` holding the epoch that the metrics call best, no temporary files left,
strict JSON. POSIX only (SIGKILL).

Two more faults: a full disk, where the chosen write fails with ENOSPC (the child must exit with
status 2 and one line naming the epoch that ``last.npz`` holds and the ``--resume`` command), and
a concurrent run, where a second training on the same folder while the first trains must be
refused in one line naming the first run's pid and must leave nothing of its own behind.
"""
import argparse
import errno
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy

ROOT = Path(__file__).resolve().parents[1]
TINY_RUN = ["--depth", "10", "--growth-rate", "4", "--bottleneck", "--epochs", "3",
            "--batch-size", "32", "--lr", "0.1", "--limit-train", "64", "--limit-test", "32",
            "--quiet"]
CHECKPOINT_FILES = ("best.npz", "last.npz")
DETERMINISTIC_COLUMNS = ("epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc")
WRITES_LOG = "writes.log"   # the child of a straight run lists the files it renames, in order


def child_main(argv):
    """In the child: ``[fault, target, nth, *train args]``; at the nth rename onto ``target``,
    fault 'kill' sends SIGKILL, 'full' fails as a full disk does (target '-' does neither and
    logs every rename into the run folder's parent)."""
    fault, target, nth, train_args = argv[0], argv[1], int(argv[2]), argv[3:]
    real_replace, seen = os.replace, []

    def replace(source, destination):
        name = os.path.basename(destination)
        seen.append(name)
        if target == "-":
            with open(Path(destination).parent.parent / WRITES_LOG, "a") as log:
                log.write(name + "\n")
        elif name == target and seen.count(name) == nth and fault == "full":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(destination))
        elif name == target and seen.count(name) == nth:
            os.truncate(source, os.path.getsize(source) // 2)    # half written, then gone
            os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(source, destination)

    os.replace = replace
    from minidense.train_cli import train_main
    return train_main(train_args)


def start_child(run_dir, target="-", nth=0, extra=(), fault="kill"):
    """Start a training child; ``--resume`` is added when the folder holds a last.npz."""
    resume = ["--resume"] if (Path(run_dir) / "last.npz").exists() else []
    command = [sys.executable, str(Path(__file__).resolve()), "--child", fault, target, str(nth),
               *TINY_RUN, *extra, "--out", str(run_dir), *resume]
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return subprocess.Popen(command, env=environment, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def finish(run_dir, extra=()):
    """Resume the run until it exits normally; return how many processes that took."""
    for attempt in range(1, 6):
        child = start_child(run_dir, extra=extra)
        _, error = child.communicate(timeout=600)
        if child.returncode == 0:
            return attempt
        if child.returncode != -signal.SIGKILL:
            raise AssertionError(f"resuming {run_dir} failed with exit {child.returncode}: "
                                 f"{error.strip()}")
    raise AssertionError(f"{run_dir} did not finish after 5 attempts")


def straight_run(work, extra=()):
    """An uninterrupted run; returns (folder, seconds, the run files it renamed in order)."""
    run_dir = work / "straight" / "run"
    run_dir.parent.mkdir(parents=True)
    start = time.perf_counter()
    child = start_child(run_dir, extra=extra)
    _, error = child.communicate(timeout=600)
    if child.returncode != 0:
        raise AssertionError(f"the straight run failed: {error.strip()}")
    writes = (run_dir.parent / WRITES_LOG).read_text().split()
    return run_dir, time.perf_counter() - start, writes


def kill_while_writing(work, straight_dir, target, nth, extra=()):
    """Kill at the nth write of ``target``, resume to the end, compare; returns a report line."""
    run_dir = work / f"kill-{target}-{nth}" / "run"
    run_dir.parent.mkdir(parents=True)
    child = start_child(run_dir, target, nth, extra)
    _, error = child.communicate(timeout=600)
    if child.returncode != -signal.SIGKILL:
        raise AssertionError(f"the child did not die at write {nth} of {target} "
                             f"(exit {child.returncode}): {error.strip()}")
    processes = finish(run_dir, extra)
    compare_runs(run_dir, straight_dir)
    return f"killed while writing {target} (write {nth}): resumed in {processes}, identical"


def fill_disk_while_writing(work, straight_dir, target, nth, extra=()):
    """Fail the nth write of ``target`` as a full disk does; the run must stop in one line naming
    the epoch last.npz holds and how to resume; resume it to the end and compare."""
    from minidense import load
    run_dir = work / f"full-{target}-{nth}" / "run"
    run_dir.parent.mkdir(parents=True)
    child = start_child(run_dir, target, nth, extra, fault="full")
    _, error = child.communicate(timeout=600)
    kept = load(run_dir / "last.npz")["epoch"] if (run_dir / "last.npz").exists() else 0
    expected = (f"last.npz holds epoch {kept}; free some disk space, then resume with: "
                f"python -m minidense train --out {run_dir} --resume" if kept
                else "no epoch was saved; free some disk space, then start the run again")
    if child.returncode != 2 or error.count("\n") != 1 or expected not in error \
            or "No space left on device" not in error:
        raise AssertionError(f"a full disk at write {nth} of {target} gave exit "
                             f"{child.returncode} and {error.strip()!r}; expected one line "
                             f"with {expected!r}")
    processes = finish(run_dir, extra)
    compare_runs(run_dir, straight_dir)
    named = f"naming epoch {kept}" if kept else "saying no epoch was saved"
    return (f"disk full while writing {target} (write {nth}): one line {named}, resumed in "
            f"{processes}, identical")


def second_run_on_the_same_folder(work, straight_dir, extra=()):
    """Start a second run (another seed) on a folder while the first trains: it must be refused
    in one line naming the first's pid, and the first must end as the straight run."""
    run_dir = work / "concurrent" / "run"
    run_dir.parent.mkdir(parents=True)
    first = start_child(run_dir, extra=extra)
    lock = run_dir / ".lock"
    deadline = time.monotonic() + 300
    while f'"pid": {first.pid}' not in (lock.read_text() if lock.exists() else ""):
        if first.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"the first run never held the lock (exit {first.returncode})")
        time.sleep(0.05)
    second = start_child(run_dir, extra=[*extra, "--seed", "7"])
    _, second_error = second.communicate(timeout=600)
    _, first_error = first.communicate(timeout=600)
    if first.returncode != 0:
        raise AssertionError(f"the first run failed: {first_error.strip()}")
    if second.returncode != 2 or f"in use by another training run (pid {first.pid}" \
            not in second_error or second_error.count("\n") != 1:
        raise AssertionError(f"the second run gave exit {second.returncode} and "
                             f"{second_error.strip()!r}")
    compare_runs(run_dir, straight_dir)
    return f"second run refused while the first (pid {first.pid}) trained; the first identical"


def kill_at_random(work, straight_dir, seconds, generator, index, extra=()):
    """SIGKILL after a random delay within the straight run's duration, resume, compare."""
    run_dir = work / f"random-{index}" / "run"
    run_dir.parent.mkdir(parents=True)
    delay = generator.uniform(0.2, seconds)
    child = start_child(run_dir, extra=extra)
    try:
        child.communicate(timeout=delay)
    except subprocess.TimeoutExpired:
        child.send_signal(signal.SIGKILL)
        child.communicate()
    processes = finish(run_dir, extra)
    compare_runs(run_dir, straight_dir)
    return f"killed after {delay:.2f} s: resumed in {processes}, identical"


def compare_runs(run_dir, straight_dir):
    """Raise AssertionError unless ``run_dir`` ends as ``straight_dir`` did."""
    from minidense import load
    leftovers = [p.name for p in run_dir.iterdir() if p.name.endswith(".tmp")]
    assert not leftovers, f"{run_dir}: temporary files left: {leftovers}"
    rows, expected_rows = read_metrics(run_dir), read_metrics(straight_dir)
    assert rows == expected_rows, f"{run_dir}: metrics differ from the straight run's"
    last, expected = load(run_dir / "last.npz"), load(straight_dir / "last.npz")
    for name, value in expected["model"].items():
        assert numpy.array_equal(last["model"][name], value), f"{run_dir}: weight {name} differs"
    assert last["rng"] == expected["rng"], f"{run_dir}: random state differs"
    best = load(run_dir / "best.npz")
    best_epoch = max(rows, key=lambda row: row["test_acc"])["epoch"]    # the first best epoch
    assert best["epoch"] == best_epoch, (f"{run_dir}: best.npz holds epoch {best['epoch']}, the "
                                         f"metrics say epoch {best_epoch} is best")
    expected_best = load(straight_dir / "best.npz")
    for name, value in expected_best["model"].items():
        assert numpy.array_equal(best["model"][name], value), f"{run_dir}: best {name} differs"
    for name in ("results.json", "config.json"):
        json.loads((run_dir / name).read_text(), parse_constant=reject_constant)


def read_metrics(run_dir):
    """The per-epoch numbers that must repeat exactly (timings never do)."""
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{key: json.loads(line, parse_constant=reject_constant)[key]
             for key in DETERMINISTIC_COLUMNS} for line in lines]


def reject_constant(name):
    raise ValueError(f"not strict JSON: {name}")


def run(work, quick=False, random_kills=None, seed=0, extra=(), say=None):
    """The whole harness in ``work``; returns the report lines (each also passed to ``say`` as it
    comes). ``quick``: two checkpoint writes, one random kill, a full disk at the second
    last.npz write and a concurrent run (the form the test suite runs)."""
    work = Path(work)
    generator = random.Random(seed)
    straight_dir, seconds, writes = straight_run(work, extra)
    report = ReportLines(say)
    report.append(f"straight run: {seconds:.1f} s, {len(writes)} file writes")
    if quick:   # the latest best.npz (the write a stale best would miss) and a middle last.npz
        targets = [("best.npz", writes.count("best.npz")), ("last.npz", 2)]
    else:
        targets = [(name, nth) for name in dict.fromkeys(writes)
                   for nth in range(1, writes.count(name) + 1)]
    for name, nth in targets:
        report.append(kill_while_writing(work, straight_dir, name, nth, extra))
    for index in range(random_kills if random_kills is not None else (1 if quick else 10)):
        report.append(kill_at_random(work, straight_dir, seconds, generator, index, extra))
    full_disk = [("last.npz", 2)] if quick else targets
    for name, nth in full_disk:
        report.append(fill_disk_while_writing(work, straight_dir, name, nth, extra))
    report.append(second_run_on_the_same_folder(work, straight_dir, extra))
    return report


class ReportLines(list):
    """A list of report lines that also hands each line to ``say`` when it is added."""

    def __init__(self, say=None):
        super().__init__()
        self.say = say

    def append(self, line):
        super().append(line)
        if self.say is not None:
            self.say(line)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return child_main(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the last best.npz write, the second "
                        "last.npz write and one random kill only")
    parser.add_argument("--random-kills", type=int, help="how many random kills (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the random kill times")
    parser.add_argument("--work", help="folder for the runs (default: a temporary one)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as temporary:
        run(args.work or temporary, args.quick, args.random_kills, args.seed,
            say=lambda line: print(line, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
