"""What the graded exercise tests use: points, the student's module, forbidden names.

A test file in ``exercises/tests`` names its task and the reference code students must not use::

    TASK = "im2col"
    FORBIDDEN = ["minidense.ops.conv"]

    @points(2)
    def test_shape(student):          # the ``student`` fixture (exercises/tests/conftest.py)
        cols = student.im2col(x, 3, 3)   # runs in the student's sandboxed worker

The tests, the expected values, the reference code they compare with and the scoring all run in
the grader's process; ``student`` is a proxy (student.py) whose every call is a request to a worker
process that alone imports the student's file (worker.py, in a box made by sandbox.py).

Forbidden names are caught twice:

1. here, a static scan of the file: ``import``/``from`` statements, dotted names reached from an
   imported name (``F.conv2d`` after ``import minidense.nn.functional as F``) and string arguments
   of ``importlib.import_module``/``__import__`` — an early, clear message;
2. in the worker, before the student's module is imported, the code of every forbidden function
   is replaced by a stub that fails ("this task asks you to write im2col yourself"), however the
   student's code reaches it.

A name is forbidden when it equals an entry of the list or lies below it (``minidense.models``
forbids ``minidense.models.densenet.DenseLayer``). ``exercises.solutions`` and ``solutions`` are
forbidden for every task, and so are other frameworks (``torch``, ``tensorflow``, ``jax``). Using a
forbidden name zeroes the task.
"""
import ast
import json
import os
from pathlib import Path

import numpy

from ..autograd import ArrayFunction
from .sandbox import isolation_level
from .student import RemoteObject, Session, StudentCodeError, TestClock, in_out  # noqa: F401

ALWAYS_FORBIDDEN = ("exercises.solutions", "solutions", "torch", "tensorflow", "jax")
TASK_DIR_VARIABLE = "MINIDENSE_TASK_DIR"   # set by the grader: where the task modules live
ISOLATION_VARIABLE = "MINIDENSE_GRADER_ISOLATION"   # 'auto' (default) or a level by name
SCANNED_VARIABLE = "MINIDENSE_SCANNED"     # {task id: message} of the grader's static scan
ABSENT_VARIABLE = "MINIDENSE_NOT_SUBMITTED"   # [task id]: tasks the submission has no file for
BUDGET_VARIABLE = "MINIDENSE_BUDGET_ENDS"  # when the submission's time budget ends (epoch seconds)
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")   # Gradescope's
FORBIDDEN_REASON = "imports the reference implementation"

# task id -> message, for the grading plugin (a forbidden import zeroes the whole task)
forbidden_findings = {}


def points(value, visibility="visible"):
    """Decorator giving a test its points: ``@points(2)``; ``visibility`` is Gradescope's
    ('hidden' tests show students neither their name nor their output)."""
    import pytest
    if visibility not in VISIBILITIES:
        raise ValueError(f"points: visibility must be one of {', '.join(VISIBILITIES)}, "
                         f"not {visibility!r}")
    return pytest.mark.points(value, visibility=visibility)


class ForbiddenImportError(ImportError):
    """The task module uses the reference implementation it is meant to reimplement."""


class NotSubmitted(StudentCodeError):
    """The submission has no file for this task."""


class BudgetSpent(Exception):
    """The submission's time budget (``--budget``) ran out before this test."""


class TimeLimitExceeded(BaseException):
    """Raised inside a test that ran past its time limit (BaseException: ``except Exception``
    in student code does not swallow it)."""


def is_forbidden(name, forbidden):
    return any(name == f or name.startswith(f + ".") for f in forbidden)


# ----------------------------------------------------------------------------------------------
# 1. Static scan
# ----------------------------------------------------------------------------------------------
def _chain(node):
    """['a', 'b', 'c'] for an ast Name/Attribute chain ``a.b.c``, else None (one pass down)."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return [node.id] + parts[::-1] if isinstance(node, ast.Name) else None


def forbidden_references(source, forbidden, filename="<task>"):
    """[(qualified name, line)] for every forbidden name the source imports or reaches.

    Linear in the size of the source: each attribute chain (``F.conv2d``, ``a.b.c.d``) is read
    once, from its outermost node, and compared with the forbidden names as lists of parts."""
    tree = ast.parse(source, filename)
    aliases = {}      # local name -> qualified name, as parts
    used = []         # (qualified name, line)
    inner = set()     # ids of Attribute nodes that are part of a longer chain
    outermost = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                used.append((alias.name, node.lineno))
                local = alias.asname or alias.name.split(".")[0]
                aliases[local] = (alias.name if alias.asname else local).split(".")
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            used.append((node.module, node.lineno))
            for alias in node.names:
                qualified = f"{node.module}.{alias.name}"
                used.append((qualified, node.lineno))
                aliases[alias.asname or alias.name] = qualified.split(".")
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str) \
                and getattr(node.func, "attr", getattr(node.func, "id", None)) \
                in ("import_module", "__import__"):
            used.append((node.args[0].value, node.lineno))
        elif isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Attribute):
                inner.add(id(node.value))
            if id(node) not in inner:
                outermost.append(node)
    rules = [f.split(".") for f in forbidden]
    for node in outermost:
        parts = _chain(node)
        if parts and parts[0] in aliases:
            qualified = aliases[parts[0]] + parts[1:]
            shortest = len(aliases[parts[0]]) + 1      # the chain's own names: 'alias.x' on
            for rule in rules:          # the forbidden name, and what the chain takes from it
                if qualified[:len(rule)] == rule:
                    used += [(".".join(qualified[:end]), node.lineno)
                             for end in (len(rule), len(rule) + 1)
                             if shortest <= end <= len(qualified)]
    found = {(name, line) for name, line in used if is_forbidden(name, forbidden)}
    return sorted(found, key=lambda item: (item[1], item[0]))


def declared_forbidden(test_file):
    """The FORBIDDEN list a test file declares, read without importing the test: its value may be
    a list of strings or use the lists of tests/forbidden_names.py (``CONV2D + [...]``)."""
    test_file = Path(test_file)
    namespace = {}
    names_file = test_file.parent / "forbidden_names.py"
    if names_file.is_file():
        exec(compile(names_file.read_text(encoding="utf-8"), str(names_file), "exec"), namespace)
    for node in ast.parse(test_file.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] \
                == ["FORBIDDEN"]:
            return list(eval(compile(ast.Expression(node.value), str(test_file), "eval"),
                             namespace))
    return []


def scan_task_file(task_id, path, forbidden):
    """The static scan of one task file: the message that zeroes the task, or None (files that
    do not parse are left to the worker, which reports the error when it loads them)."""
    path = Path(path)
    forbidden = tuple(forbidden) + ALWAYS_FORBIDDEN
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_SOURCE_BYTES:
            return None
        found = forbidden_references(path.read_text(encoding="utf-8"), forbidden, path.name)
    except (SyntaxError, ValueError, RecursionError, MemoryError, UnicodeDecodeError):
        return None
    if not found:
        return None
    return f"{FORBIDDEN_REASON}: " + ", ".join(f"{name} (line {line})" for name, line in found)


# ----------------------------------------------------------------------------------------------
# 2. Loading: the student's module runs in a sandboxed worker; tests get a proxy for it
# ----------------------------------------------------------------------------------------------
def task_directory(default):
    return Path(os.environ.get(TASK_DIR_VARIABLE) or default)


clock = TestClock(budget_ends=float(os.environ[BUDGET_VARIABLE])
                  if os.environ.get(BUDGET_VARIABLE) else None)
_sessions = {}   # task id -> Session (one worker per task, started on first use)
MAX_SOURCE_BYTES = 1 << 20


def load_task(task_id, forbidden=(), directory=None):
    """The task module ``<directory>/<task_id>.py`` as a proxy (student.py): its functions run in a
    sandboxed worker process, never in this one.

    Raises ForbiddenImportError (and records it for the grader) when the file names a forbidden
    module or function; a module that cannot be loaded makes every use fail with the reason.
    """
    forbidden = tuple(forbidden) + ALWAYS_FORBIDDEN
    if task_id in json.loads(os.environ.get(ABSENT_VARIABLE) or "[]"):
        raise NotSubmitted(f"not submitted: the submission has no {task_id}.py")
    for other in _sessions.values():          # one live worker at a time: the previous task's
        if other.task_id != task_id:          # is gone before this one starts
            other.stop()
    if task_id not in _sessions:
        directory = Path(directory).resolve()
        _check_source(task_id, directory / f"{task_id}.py", forbidden)
        isolation = isolation_level(os.environ.get(ISOLATION_VARIABLE, "auto"))
        _sessions[task_id] = Session(task_id, directory, forbidden, isolation, clock)
    session = _sessions[task_id]
    return RemoteObject(session, None, "module")


def _check_source(task_id, path, forbidden):
    """The static scan's verdict: made by the grader before pytest started (passed in
    SCANNED_VARIABLE), or here when the tests run under plain pytest."""
    scanned = json.loads(os.environ.get(SCANNED_VARIABLE) or "{}")
    message = scanned[task_id] if task_id in scanned else scan_task_file(task_id, path, forbidden)
    if message:
        forbidden_findings[task_id] = message
        raise ForbiddenImportError(message)


def findings():
    """{task id: message} for every task whose code used what it must not."""
    for task_id, session in _sessions.items():
        if session.forbidden_use and task_id not in forbidden_findings:
            forbidden_findings[task_id] = f"{FORBIDDEN_REASON}: {session.forbidden_use}"
    return dict(forbidden_findings)


def student_output():
    """What the students' code printed since the last call, per task (for the test's report)."""
    return "".join(session.take_output() for session in _sessions.values())


def stop_workers():
    for session in _sessions.values():
        session.stop()


# ----------------------------------------------------------------------------------------------
# Array-level student code inside the autograd engine (for md.gradcheck)
# ----------------------------------------------------------------------------------------------
def tensor_op(forward, backward):
    """Wrap ``forward(*arrays) -> (out, cache)`` and ``backward(dout, cache) -> grads`` (the
    student's functions) as a function of Tensors, so ``md.gradcheck`` can check the pair against
    finite differences. What the student's functions return is checked before the engine uses it."""

    class StudentOp(ArrayFunction):
        def forward(self, *arrays):
            result = forward(*arrays)
            if not (isinstance(result, tuple) and len(result) == 2 and
                    isinstance(result[0], (numpy.ndarray, numpy.generic, float, int))):
                raise StudentCodeError("the forward function must return (out, cache) with out "
                                       f"an array; it returned {type(result).__name__}")
            out, self.cache = result
            return numpy.asarray(out)

        def backward(self, grad):
            grads = backward(grad, self.cache)
            grads = tuple(grads) if isinstance(grads, (tuple, list)) else (grads,)
            grads = (grads + (None,) * len(self.input_shapes))[:len(self.input_shapes)]
            for g, shape in zip(grads, self.input_shapes):
                if g is not None and (not isinstance(g, numpy.ndarray) or g.shape != shape):
                    got = g.shape if isinstance(g, numpy.ndarray) else type(g).__name__
                    raise StudentCodeError(f"the backward function returned a gradient of shape "
                                           f"{got} for an input of shape {shape}")
            return grads

    return lambda *tensors: StudentOp()(*tensors)


# ----------------------------------------------------------------------------------------------
# Comparing a student's array with the expected one, with feedback
# ----------------------------------------------------------------------------------------------
def assert_close(got, expected, name, rtol=1e-7, atol=0.0, equal_nan=False,
                 known_mistakes=None):
    """Assert that the student's ``got`` (their output ``name``: 'dx', 'dgamma', 'cols', ...)
    matches the trusted ``expected``. A failure says which output, its first wrong index with
    the expected and the given value, and, when ``got`` matches a known wrong answer
    (``known_mistakes``: {hint: wrong array}), the hint for that mistake. NaN equals NaN only
    with ``equal_nan``, for expected values that are NaN by definition."""
    __tracebackhide__ = True
    expected = numpy.asarray(expected)
    if not isinstance(got, (numpy.ndarray, numpy.generic, float, int)):
        raise AssertionError(f"{name}: expected an array of shape {expected.shape}, "
                             f"got {type(got).__name__}")
    got = numpy.asarray(got)
    if got.shape != expected.shape:
        raise AssertionError(f"{name} has shape {got.shape}, expected {expected.shape}")
    if got.dtype.kind not in "biuf":
        raise AssertionError(f"{name} has dtype {got.dtype}, expected real numbers")
    wrong = ~numpy.isclose(got, expected, rtol=rtol, atol=atol, equal_nan=equal_nan)
    if not wrong.any():
        return
    first = tuple(int(i) for i in numpy.argwhere(wrong)[0])
    message = (f"{name} is wrong at index {first}: expected {expected[first].item()!r}, got "
               f"{got[first].item()!r} ({int(wrong.sum())} of {wrong.size} values differ)")
    for hint, wrong_answer in (known_mistakes or {}).items():
        wrong_answer = numpy.asarray(wrong_answer)
        if wrong_answer.shape == got.shape and \
                numpy.allclose(got, wrong_answer, rtol=max(rtol, 1e-6), atol=max(atol, 1e-9)):
            message += f"\nHint: {hint}"
    raise AssertionError(message)
