"""Run the graded tests in a trusted pytest process and collect one result per test.

The tests run in a child process that never imports student code (the student's functions run
in sandboxed workers, see student.py). ``jobs`` children share the tasks between them. The plugin
in each child records every result in a progress file as it happens and limits every test's time;
from outside, a watchdog kills a child that shows no progress for twice that limit (plus a
second). If a child dies anyway, the test it was running fails and the tests it had not reached
run again in a fresh child.
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

from .sandbox import STARTUP_SECONDS as WORKER_START_SECONDS
from .testing import (ABSENT_VARIABLE, BUDGET_VARIABLE, FORBIDDEN_REASON, ISOLATION_VARIABLE,
                      SCANNED_VARIABLE, TASK_DIR_VARIABLE, declared_forbidden, scan_task_file)

STARTUP_GRACE_SECONDS = 60.0   # interpreter + pytest + NumPy start-up, on a slow shared machine
BUDGET_GRACE_SECONDS = 5.0
DEFAULT_BUDGET_SECONDS = 300.0  # wall-clock time per submission, worker start-ups included


def budget_reason(budget):
    return (f"not run: the submission's time budget ({budget:g} s, worker start-ups included) "
            f"was used up")


@dataclass
class TestResult:
    task: str
    test: str
    max_score: float
    score: float
    status: str        # 'passed' or 'failed'
    reason: str = ""
    output: str = ""
    visibility: str = "visible"

    def as_dict(self):
        return asdict(self)


HIDDEN_TESTS = "hidden"       # tests/hidden/test_<id>_hidden.py: graded, never in the handout


def discover_tasks(exercise_dir):
    """{task id: [test files]} from ``<exercise_dir>/tests/test_<id>.py`` and, when there is one,
    ``tests/hidden/test_<id>_hidden.py``; sorted by id."""
    tests = Path(exercise_dir) / "tests"
    if not tests.is_dir():
        raise FileNotFoundError(f"grade: {exercise_dir} has no tests/ folder; pass the exercises "
                                f"folder (the one holding tasks/, tests/ and solutions/)")
    tasks = {}
    for path in sorted(tests.glob("test_*.py")):
        hidden = tests / HIDDEN_TESTS / f"{path.stem}_hidden.py"
        tasks[path.stem[len("test_"):]] = [path] + ([hidden] if hidden.is_file() else [])
    return tasks


def _child_environment(task_dir, isolation, scanned, budget_ends, absent):
    environment = dict(os.environ)
    environment[ABSENT_VARIABLE] = json.dumps(sorted(absent))
    environment[ISOLATION_VARIABLE] = isolation
    environment[SCANNED_VARIABLE] = json.dumps(scanned)
    environment[BUDGET_VARIABLE] = repr(budget_ends)
    package_root = str(Path(__file__).resolve().parents[2])   # makes `import minidense` work
    environment["PYTHONPATH"] = os.pathsep.join(
        p for p in (package_root, environment.get("PYTHONPATH")) if p)
    environment[TASK_DIR_VARIABLE] = str(Path(task_dir).resolve())
    environment["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"   # faster start, no stray plugins
    environment["PYTHONDONTWRITEBYTECODE"] = "1"
    # Children run side by side (--jobs) on small arrays: one BLAS thread each, or the BLAS threads
    # of the parallel processes fight over the cores and everything slows down many times over.
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        environment.setdefault(variable, "1")
    return environment


def _run_pytest(targets, task_dir, progress_path, timeout, cwd, isolation, on_progress, scanned,
                budget_ends, absent):
    """Run pytest on ``targets``; return (exit code, 'timeout' or 'budget', output tail)."""
    command = [sys.executable, "-m", "pytest", "-q", "--tb=short", "-p", "no:cacheprovider",
               "--continue-on-collection-errors",
               "-p", "minidense.grading.plugin", "--grading-progress", str(progress_path),
               "--grading-timeout", str(timeout), "--rootdir", str(cwd), *targets]
    with tempfile.TemporaryFile("w+") as log:
        child = subprocess.Popen(command, cwd=cwd,
                                 env=_child_environment(task_dir, isolation, scanned, budget_ends,
                                                         absent),
                                 stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        started = time.time()
        while child.poll() is None:
            time.sleep(0.05)
            last_event = progress_path.stat().st_mtime if progress_path.exists() else started
            allowed = STARTUP_GRACE_SECONDS if not progress_path.exists() else \
                2 * timeout + 1 + WORKER_START_SECONDS if timeout > 0 else float("inf")
            if time.time() - max(last_event, started) > allowed:
                _kill_group(child)
                return "timeout", ""
            if time.time() > budget_ends + BUDGET_GRACE_SECONDS:   # the plugin did not stop it
                _kill_group(child)
                return "budget", ""
            on_progress(progress_path)
        on_progress(progress_path)
        log.seek(0)
        return child.returncode, log.read()[-2000:]


def _kill_group(child):
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (OSError, AttributeError):
        child.kill()
    child.wait()


def task_of(nodeid):
    """'test_im2col.py::test_shape' (or 'hidden/test_im2col_hidden.py::...') -> 'im2col'."""
    stem = Path(nodeid.split("::", 1)[0]).stem[len("test_"):]
    return stem[:-len("_hidden")] if nodeid.startswith(HIDDEN_TESTS + "/") else stem


def scan_sources(tasks, task_dir):
    """{task id: message, or None when clean}: the static scan of each task file, run here
    before pytest starts, so no test's time limit can cut it short. A task whose test file
    cannot be read is left out (pytest reports that test file)."""
    found = {}
    for task_id, test_files in tasks.items():
        try:
            forbidden = declared_forbidden(test_files[0])
        except Exception:                        # noqa: BLE001 - a broken test file
            continue
        found[task_id] = scan_task_file(task_id, Path(task_dir) / f"{task_id}.py", forbidden)
    return found


def grade_tasks(tasks, task_dir, timeout, isolation="auto", on_task_done=None, budget=None,
                budget_ends=None, absent=()):
    """Grade ``tasks`` ({task id: [test files]}) in one trusted child (more if one dies).

    Returns {task id: [TestResult]}; ``on_task_done(task_id, results)`` is called as soon as each
    task's tests are all done. Tests not started before ``budget_ends`` (epoch seconds) fail
    with the budget as their reason; the tests of ``absent`` tasks (not submitted) fail at once,
    without a worker.
    """
    budget = DEFAULT_BUDGET_SECONDS if budget is None else budget
    budget_ends = time.time() + budget if budget_ends is None else budget_ends
    test_files = [Path(f).resolve() for files in tasks.values() for f in files]
    scanned = scan_sources({t: files for t, files in tasks.items() if t not in absent}, task_dir)
    finished, tests, reported = {}, None, set()
    forbidden = {task_id: message for task_id, message in scanned.items() if message}
    targets = [str(f) for f in test_files]

    def report_done(progress_path):
        progress = _read(progress_path)
        done = {**finished, **progress["results"]}
        forbidden.update(progress["forbidden"] or {})
        for task_id in tasks:
            own = [t for t in progress["tests"] if task_of(t["nodeid"]) == task_id]
            if own and task_id not in reported and all(t["nodeid"] in done for t in own):
                reported.add(task_id)
                if on_task_done:
                    on_task_done(task_id, [_result(task_id, t, done[t["nodeid"]],
                                                   forbidden.get(task_id)) for t in own])

    with tempfile.TemporaryDirectory(prefix="minidense-grade-") as scratch:
        for attempt in range(1000):                       # bounded by the number of tests
            progress_path = Path(scratch) / f"progress{attempt}.json"
            code, log = _run_pytest(targets, task_dir, progress_path, timeout,
                                    test_files[0].parent, isolation, report_done, scanned,
                                    budget_ends, absent)
            progress = _read(progress_path)
            if tests is None:
                if not progress["tests"]:
                    return {task_id: [TestResult(task_id, "(could not run the tests)", 0.0, 0.0,
                                                 "failed", f"pytest exit code {code}", log)]
                            for task_id in tasks}
                tests = progress["tests"]
            finished.update(progress["results"])
            current = progress["current"]
            if current and current not in finished:
                why = (f"timed out (killed after {2 * timeout + 1:g} s)" if code == "timeout"
                       else budget_reason(budget) if code == "budget"
                       else f"the test process ended during this test (exit code {code})")
                finished[current] = {"status": "failed", "reason": why, "output": ""}
            remaining = [t["nodeid"] for t in tests if t["nodeid"] not in finished]
            if remaining and time.time() > budget_ends:
                finished.update({nodeid: {"status": "failed", "reason": budget_reason(budget),
                                          "output": ""} for nodeid in remaining})
                remaining = []
            if not remaining or (not current and not progress["results"]):
                break
            targets = [str(test_files[0].parent / nodeid) for nodeid in remaining]
    results = {task_id: [] for task_id in tasks}
    uncollected = set(tasks) - {task_of(test["nodeid"]) for test in tests}
    for task_id in uncollected:                     # e.g. a test file with a syntax error
        results[task_id].append(TestResult(task_id, "(could not run the tests)", 0.0, 0.0,
                                           "failed", "its test file could not be collected", log))
    for test in tests:
        task_id = task_of(test["nodeid"])
        results[task_id].append(_result(task_id, test, finished.get(test["nodeid"]),
                                        forbidden.get(task_id)))
    return results


def _read(progress_path):
    empty = {"tests": [], "results": {}, "current": None, "forbidden": None}
    try:
        return {**empty, **json.loads(progress_path.read_text(encoding="utf-8"))}
    except (OSError, ValueError):
        return empty


def _result(task_id, test, outcome, forbidden):
    name, points = test["name"], test["points"]
    visibility = test.get("visibility", "visible")
    if forbidden:
        return TestResult(task_id, name, points, 0.0, "failed", FORBIDDEN_REASON, forbidden,
                          visibility)
    if outcome is None:
        return TestResult(task_id, name, points, 0.0, "failed", "not run", "", visibility)
    passed = outcome["status"] == "passed"
    return TestResult(task_id, name, points, points if passed else 0.0, outcome["status"],
                      outcome.get("reason", ""), outcome.get("output", ""), visibility)


def grade_exercises(exercise_dir, task_dir, task_ids=None, timeout=10.0, jobs=1,
                    on_task_done=None, isolation="auto", budget=DEFAULT_BUDGET_SECONDS,
                    absent=()):
    """Grade every task (or those in ``task_ids``) with the modules in ``task_dir``.

    ``jobs`` trusted children share the tasks; results keep the task order.
    ``on_task_done(task_id, results)`` is called as each task finishes. ``budget`` seconds of
    wall-clock time are the submission's, from now, worker start-ups included. ``absent``:
    tasks the submission has no file for (their tests fail as "not submitted").
    """
    budget_ends = time.time() + budget
    tasks = discover_tasks(exercise_dir)
    unknown = sorted(set(task_ids or ()) - set(tasks))
    if unknown:
        raise ValueError(f"grade: unknown task(s) {', '.join(unknown)}; "
                         f"known tasks: {', '.join(tasks)}")
    chosen = [t for t in tasks if not task_ids or t in task_ids]
    groups = [chosen[i::max(1, jobs)] for i in range(min(max(1, jobs), len(chosen)))]
    with ThreadPoolExecutor(max_workers=max(1, len(groups))) as pool:
        parts = list(pool.map(lambda group: grade_tasks({t: tasks[t] for t in group}, task_dir,
                                                        timeout, isolation, on_task_done,
                                                        budget, budget_ends, set(absent)),
                              groups))
    by_task = {task_id: results for part in parts for task_id, results in part.items()}
    return [r for task_id in chosen for r in by_task.get(task_id, [])]
