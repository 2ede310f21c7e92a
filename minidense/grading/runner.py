"""Run each task's tests in its own pytest process and collect one result per test.

One child process per task (not per test) keeps grading fast; inside it the plugin limits every
test's time. From outside, a watchdog kills a child that shows no progress for twice that limit
(plus a second). When a child dies mid-task (``os._exit``, a hang that ignores the signal), the test that
was running fails, and the tests it did not reach run again in a fresh process.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from .testing import FORBIDDEN_REASON, TASK_DIR_VARIABLE

STARTUP_GRACE_SECONDS = 60.0   # interpreter + pytest + NumPy start-up, on a slow shared machine


@dataclass
class TestResult:
    task: str
    test: str
    max_score: float
    score: float
    status: str        # 'passed' or 'failed'
    reason: str = ""
    output: str = ""

    def as_dict(self):
        return asdict(self)


def discover_tasks(exercise_dir):
    """{task id: test file} from ``<exercise_dir>/tests/test_<id>.py``, sorted by id."""
    tests = Path(exercise_dir) / "tests"
    if not tests.is_dir():
        raise FileNotFoundError(f"grade: {exercise_dir} has no tests/ folder; pass the exercises "
                                f"folder (the one holding tasks/, tests/ and solutions/)")
    return {path.stem[len("test_"):]: path for path in sorted(tests.glob("test_*.py"))}


def _child_environment(task_dir):
    environment = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])   # makes `import minidense` work
    environment["PYTHONPATH"] = os.pathsep.join(
        p for p in (package_root, environment.get("PYTHONPATH")) if p)
    environment[TASK_DIR_VARIABLE] = str(Path(task_dir).resolve())
    environment["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"   # faster start, no stray plugins
    environment["PYTHONDONTWRITEBYTECODE"] = "1"
    # Tasks run side by side (--jobs) on small arrays: one BLAS thread each, or the BLAS threads
    # of the parallel processes fight over the cores and everything slows down many times over.
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        environment.setdefault(variable, "1")
    return environment


def _run_pytest(targets, task_dir, progress_path, timeout, cwd):
    """Run pytest on ``targets``; return (exit code or 'timeout', stderr tail)."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "-p", "minidense.grading.plugin", "--grading-progress", str(progress_path),
               "--grading-timeout", str(timeout), *targets]
    with tempfile.TemporaryFile("w+") as log:
        child = subprocess.Popen(command, cwd=cwd, env=_child_environment(task_dir),
                                 stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        started = time.time()
        while child.poll() is None:
            time.sleep(0.05)
            last_event = progress_path.stat().st_mtime if progress_path.exists() else started
            allowed = STARTUP_GRACE_SECONDS if not progress_path.exists() else \
                2 * timeout + 1 if timeout > 0 else float("inf")
            if time.time() - max(last_event, started) > allowed:
                _kill_group(child)
                return "timeout", ""
        log.seek(0)
        return child.returncode, log.read()[-2000:]


def _kill_group(child):
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (OSError, AttributeError):
        child.kill()
    child.wait()


def grade_task(task_id, test_file, task_dir, timeout=10.0):
    """Grade one task: a list of TestResult, one per test in ``test_file``."""
    test_file = Path(test_file).resolve()
    finished, tests, forbidden = {}, None, None
    targets = [str(test_file)]
    with tempfile.TemporaryDirectory(prefix=f"grade-{task_id}-") as scratch:
        for attempt in range(1000):                       # bounded by the number of tests
            progress_path = Path(scratch) / f"progress{attempt}.json"
            code, log = _run_pytest(targets, task_dir, progress_path, timeout, test_file.parent)
            progress = _read(progress_path)
            if tests is None:
                if not progress["tests"]:
                    return [TestResult(task_id, "(could not run the tests)", 0.0, 0.0, "failed",
                                       f"pytest exit code {code}", log)]
                tests = progress["tests"]
            finished.update(progress["results"])
            forbidden = forbidden or (progress["forbidden"] or {}).get(task_id)
            current = progress["current"]
            if current and current not in finished:
                why = (f"timed out (killed after {2 * timeout + 1:g} s)" if code == "timeout"
                       else f"the test process ended during this test (exit code {code})")
                finished[current] = {"status": "failed", "reason": why, "output": log}
            remaining = [t["nodeid"] for t in tests if t["nodeid"] not in finished]
            if not remaining or (not current and not progress["results"]):
                break
            targets = [f"{test_file}::{nodeid.split('::', 1)[1]}" for nodeid in remaining]
    return [_result(task_id, test, finished.get(test["nodeid"]), forbidden) for test in tests]


def _read(progress_path):
    empty = {"tests": [], "results": {}, "current": None, "forbidden": None}
    try:
        return {**empty, **json.loads(progress_path.read_text(encoding="utf-8"))}
    except (OSError, ValueError):
        return empty


def _result(task_id, test, outcome, forbidden):
    name, points = test["name"], test["points"]
    if forbidden:
        return TestResult(task_id, name, points, 0.0, "failed", FORBIDDEN_REASON, forbidden)
    if outcome is None:
        return TestResult(task_id, name, points, 0.0, "failed", "not run")
    passed = outcome["status"] == "passed"
    return TestResult(task_id, name, points, points if passed else 0.0, outcome["status"],
                      outcome.get("reason", ""), outcome.get("output", ""))


def grade_exercises(exercise_dir, task_dir, task_ids=None, timeout=10.0, jobs=1,
                    on_task_done=None):
    """Grade every task (or those in ``task_ids``) with the modules in ``task_dir``.

    ``jobs`` tasks run at the same time (each in its own process); results keep the task order.
    ``on_task_done(task_id, results)`` is called as each task finishes.
    """
    tasks = discover_tasks(exercise_dir)
    unknown = sorted(set(task_ids or ()) - set(tasks))
    if unknown:
        raise ValueError(f"grade: unknown task(s) {', '.join(unknown)}; "
                         f"known tasks: {', '.join(tasks)}")
    chosen = [(t, f) for t, f in tasks.items() if not task_ids or t in task_ids]

    def grade_one(task):
        task_results = grade_task(*task, task_dir, timeout)
        if on_task_done:
            on_task_done(task[0], task_results)
        return task_results

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return [r for task_results in pool.map(grade_one, chosen) for r in task_results]
