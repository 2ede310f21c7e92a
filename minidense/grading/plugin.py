"""A pytest plugin, loaded in the grader's trusted child process (``-p minidense.grading.plugin``).

It records every test's points, visibility and outcome in a JSON progress file, rewritten after
each event, so the grader knows what happened even if the process dies: the test named in
``"current"`` was running at that moment. It starts each test's clock (the student's worker must
answer before the test's deadline) and, as a backstop, limits each test's setup and call with
``signal.setitimer`` (Unix only; the grader's watchdog covers the rest). A test's output is what
the student's code printed during it, never this process's own.
"""
import json
import os
import signal
import time

import pytest

from . import testing
from .report import student_location
from .sandbox import STARTUP_SECONDS
from .student import StudentCodeError, WorkerEnded

MAX_OUTPUT_CHARS = 3000


def pytest_addoption(parser):
    group = parser.getgroup("minidense grading")
    group.addoption("--grading-progress", default=None, help="JSON file to record results in")
    group.addoption("--grading-timeout", type=float, default=0.0,
                    help="time limit per test phase in seconds (0: none)")


def pytest_configure(config):
    config.addinivalue_line("markers", "points(n): points the test is worth")
    path = config.getoption("--grading-progress", default=None)
    if path:
        config.pluginmanager.register(ProgressRecorder(path, config.getoption("--grading-timeout")),
                                      "minidense-progress")


def points_of(item):
    marker = item.get_closest_marker("points")
    return float(marker.args[0]) if marker and marker.args else 1.0


def visibility_of(item):
    marker = item.get_closest_marker("points")
    return marker.kwargs.get("visibility", "visible") if marker else "visible"


def short_reason(report):
    """The exception and its message's first line ('NotImplementedError: im2col: implement
    ...'), then the line of the student's own file the error went through, if any."""
    text = getattr(report, "exception_summary", None)
    if text is None:
        crash = getattr(report.longrepr, "reprcrash", None)
        text = crash.message if crash is not None else str(report.longrepr)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    where = student_location(text)
    return (lines[0][:300] if lines else report.outcome) + (f"\n{where}" if where else "")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Remember 'ExceptionType: message' of a failure (clearer than pytest's crash line for,
    e.g., a SyntaxError in the student's file)."""
    outcome = yield
    if call.excinfo is not None:
        message = str(call.excinfo.value).strip()
        if isinstance(call.excinfo.value, (testing.NotSubmitted, testing.BudgetSpent)):
            outcome.get_result().exception_summary = message     # the whole story: no traceback
            outcome.get_result().without_traceback = True
        elif isinstance(call.excinfo.value, (StudentCodeError, WorkerEnded)):
            outcome.get_result().exception_summary = message     # the student's own exception
        else:
            outcome.get_result().exception_summary = (f"{call.excinfo.typename}: {message}"
                                                      if message else call.excinfo.typename)


class ProgressRecorder:
    def __init__(self, path, timeout):
        self.path, self.timeout = path, timeout
        self.progress = {"tests": [], "results": {}, "current": None, "forbidden": None}

    def save(self):
        self.progress["forbidden"] = testing.findings() or None
        temporary = f"{self.path}.tmp"
        with open(temporary, "w", encoding="utf-8") as file:
            json.dump(self.progress, file)
        os.replace(temporary, self.path)

    def pytest_collection_finish(self, session):
        self.progress["tests"] = [{"nodeid": item.nodeid, "name": item.name,
                                   "points": points_of(item), "visibility": visibility_of(item)}
                                  for item in session.items]
        self.save()

    def pytest_runtest_logstart(self, nodeid, location):
        self.progress["current"] = nodeid
        self.progress["started"] = time.time()
        self.save()

    def pytest_sessionfinish(self, session):
        testing.stop_workers()

    def pytest_runtest_logreport(self, report):
        report.student_output = testing.student_output()
        results = self.progress["results"]
        if report.failed or (report.when == "call" and report.nodeid not in results):
            failed_before = results.get(report.nodeid, {}).get("status") == "failed"
            if not failed_before:
                results[report.nodeid] = {
                    "status": "failed" if report.failed else "passed",
                    "reason": short_reason(report) if report.failed else "",
                    "output": _output(report),
                    "seconds": round(report.duration, 3)}
        elif report.when == "setup" and report.skipped:
            results[report.nodeid] = {"status": "failed", "reason": "skipped: "
                                      + short_reason(report), "output": "", "seconds": 0.0}
        if report.when == "teardown":
            self.progress["current"] = None
        self.save()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_setup(self, item):
        """A test that starts after the submission's time budget fails at once, with that
        reason, before any fixture runs."""
        if testing.clock.budget_spent():
            raise testing.BudgetSpent(testing.clock.budget_message())
        testing.clock.start(self.timeout)
        with _time_limit(self._limit()):
            yield

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item):
        testing.clock.start(self.timeout)
        with _time_limit(self._limit()):
            yield

    def _limit(self):
        """The backstop for one phase: the test's time plus a worker's start-up, never past the
        budget's end (and a second to spare, so the clock's own timeout speaks first)."""
        if self.timeout <= 0:
            return 0
        return max(0.5, min(self.timeout + STARTUP_SECONDS, testing.clock.budget_left() + 1))


def _output(report):
    parts = []
    if report.failed and not getattr(report, "without_traceback", False):
        parts.append(report.longreprtext)
    if getattr(report, "student_output", ""):
        parts.append(f"--- what your code printed ---\n{report.student_output}")
    text = "\n".join(p for p in parts if p)
    return text if len(text) <= MAX_OUTPUT_CHARS else text[:MAX_OUTPUT_CHARS] + "\n... (cut)"


class _time_limit:
    """Raise TimeLimitExceeded in the main thread after ``seconds`` (no-op without SIGALRM)."""

    def __init__(self, seconds):
        self.seconds = seconds if hasattr(signal, "setitimer") else 0

    def _expire(self, signum, frame):
        if testing.clock.budget_spent():
            raise testing.BudgetSpent(testing.clock.budget_message())
        raise testing.TimeLimitExceeded(f"timed out after {self.seconds:g} s")

    def __enter__(self):
        if self.seconds > 0:
            self.previous = signal.signal(signal.SIGALRM, self._expire)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(self, *exc):
        if self.seconds > 0:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)
