"""Crashes never cost a run folder anything: the short form of tools/crash_harness.py.

Training is killed (SIGKILL) while it writes the latest best.npz, while it writes last.npz, and
at a random moment; its disk fills up while it writes last.npz; each run is resumed and must end
with the same weights, random state, metrics and best checkpoint as an uninterrupted run. A second
run started on the folder while the first trains is refused and changes nothing.
``python tools/crash_harness.py`` does this at every write of every run file and at ten random
moments.
"""
import importlib.util
import shutil
import signal
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[1] / "tools" / "crash_harness.py"

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")


def load_harness():
    spec = importlib.util.spec_from_file_location("crash_harness", HARNESS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def harness_run(tmp_path_factory):
    """The harness module, its work folder after the short form, and its report."""
    harness, work = load_harness(), tmp_path_factory.mktemp("crashes")
    return harness, work, harness.run(work, quick=True, seed=0)


def test_killed_runs_resume_to_the_straight_run(harness_run):
    _, _, report = harness_run
    assert len(report) == 6
    assert report[1].startswith("killed while writing best.npz")
    assert report[2].startswith("killed while writing last.npz (write 2)")
    assert report[4] == ("disk full while writing last.npz (write 2): one line naming epoch 1, "
                         "resumed in 1, identical")
    assert report[5].startswith("second run refused while the first (pid ")
    assert all(line.endswith("identical") for line in report[1:])


def test_the_harness_notices_a_stale_best_checkpoint(harness_run, tmp_path):
    from minidense import load, save
    harness, work, _ = harness_run
    straight_dir = work / "straight" / "run"
    copy = tmp_path / "run"
    shutil.copytree(straight_dir, copy)
    stale = load(copy / "last.npz")
    stale["epoch"] = 0          # a best.npz that is not the best epoch
    save(stale, copy / "best.npz")
    with pytest.raises(AssertionError, match="best.npz holds epoch 0"):
        harness.compare_runs(copy, straight_dir)
