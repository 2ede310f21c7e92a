"""The grader's view of a student's module: proxies whose every use is a request to the worker.

A graded test reads like ordinary code::

    cols = student.im2col(x, 3, 2)                 # a request: call im2col with these values
    layer = student.DenseLayer(3, 4)               # an object that stays in the worker
    out = layer(md.tensor(x, requires_grad=True))  # a Tensor here, its graph there
    out.sum().backward()                           # the worker runs backward, returns arrays

``student`` is a ``RemoteObject`` for the module. Values cross as plain data (wire.py): arrays,
numbers, strings, containers of them; anything else the student returns stays in the worker as a
``RemoteObject``. Arguments are copies: only arrays passed as ``in_out(array)`` receive the
changes the student's code makes in place. A Tensor the student's code returns comes back as a Tensor of this process whose
creator is a ``RemoteFunction``: a Function like any other to the engine here, whose backward asks
the worker for the gradients of the inputs. Every answer is checked (wire.py, and shapes here)
before a test sees it, so the verdict never depends on code that ran in the student's process.
"""
import re
import time
from pathlib import Path

import numpy

from ..autograd import ArrayFunction, Tensor, is_grad_enabled
from ..creation import tensor
from . import wire
from .sandbox import Worker

WORKER_ENDED = "the submission's process ended during this call"


class StudentCodeError(Exception):
    """The student's code raised; the message is its exception's type and message, then the
    lines of the student's file it went through."""


class WorkerEnded(Exception):
    """The worker process died (os._exit, a crash, a kill, running out of memory or CPU time)."""


class Session:
    """One task's worker, started on first use and again after it dies or times out."""

    def __init__(self, task_id, submission, forbidden, isolation, clock, limits=None):
        self.task_id, self.submission, self.forbidden = task_id, submission, forbidden
        self.isolation, self.clock, self.limits = isolation, clock, limits
        self.worker, self.load_failure = None, None
        self.forbidden_use = None          # the message, once the student's code reached it
        self.output_read = 0

    def request(self, message):
        __tracebackhide__ = True                 # pytest: show the test, not the proxy
        if self.load_failure is not None:
            raise StudentCodeError(self.load_failure)
        deadline = self.clock.deadline()
        try:
            if self.worker is None:
                self._start(deadline)
                deadline = self.clock.restart()          # starting the worker is not the test's time
            reply = self.worker.request(message, deadline)
        except (TimeoutError, EOFError, wire.WireError, OSError) as error:
            code = self.worker.exit_code(0.2) if self.worker else None
            self.stop()
            if isinstance(error, TimeoutError):
                self.clock.expire()
            if isinstance(error, EOFError):
                raise WorkerEnded(f"{WORKER_ENDED} (exit code {code})") from None
            raise StudentCodeError(f"the submission's process gave no usable answer: {error}") \
                from None
        except BaseException:
            self.stop()                                  # interrupted mid-request: start afresh
            raise
        return self._unpack(reply)                       # the student's exception, if any

    def _start(self, deadline):
        self.worker = Worker(self.task_id, self.submission, self.forbidden, self.isolation,
                             self.limits)
        self.output_read = 0
        try:
            ready = self.worker.start(deadline, time.monotonic() + self.clock.budget_left())
        except TimeoutError:
            if not self.clock.budget_spent():
                self.load_failure = "loading the module took longer than the time limit"
            raise
        except EOFError:
            code = self.worker.exit_code()
            printed = self.worker.output()[-1000:].strip()
            self.load_failure = (f"the module's process ended while loading it (exit code {code})"
                                 + (f"; it printed:\n{printed}" if printed else ""))
            raise StudentCodeError(self.load_failure) from None
        if "error" in ready:
            self.load_failure = self._describe(ready["error"])
            raise StudentCodeError(self.load_failure)

    def _unpack(self, reply):
        if "error" in reply:
            raise StudentCodeError(self._describe(reply["error"]))
        if "ok" not in reply or not isinstance(reply.get("changed"), list):
            raise wire.WireError("the worker's reply has neither a value nor an error")
        return reply["ok"], reply["changed"]

    def _describe(self, error):
        if not isinstance(error, dict) or not all(isinstance(error.get(k), str)
                                                  for k in ("type", "message", "where")):
            raise wire.WireError("the worker's error report is malformed")
        text = f"{error['type']}: {error['message']}" if error["message"] else error["type"]
        if error["type"] == "ForbiddenUse":
            self.forbidden_use = text
        where = notebook_places(error["where"], Path(self.submission) / f"{self.task_id}.py")
        return text + (f"\n{where}" if where else "")

    def take_output(self):
        """What the student's code printed since the last call (their own stdout/stderr)."""
        if self.worker is None:
            return ""
        text = self.worker.output(self.output_read)
        self.output_read = self.worker.output_size()
        return text

    def stop(self):
        if self.worker is not None:
            self.worker.stop()
            self.worker = None


CELL_MARKER = re.compile(r"^# --- (.+\.ipynb), cell (\d+) ---$")
PLACE = re.compile(r"^(\S+\.py), line (\d+)(, in .*)$")


def notebook_places(where, task_file):
    """The worker's 'im2col.py, line 57, in ...' lines, as 'homework.ipynb, cell 3, line 5, in
    ...' when the task file was made from a notebook (workspace.py marks where each cell starts);
    unchanged otherwise."""
    try:
        lines = task_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return where
    starts = [(number, found.group(1), found.group(2)) for number, line in
              enumerate(lines, start=1) if (found := CELL_MARKER.match(line))]
    if not starts:
        return where

    def place(line):
        found = PLACE.match(line)
        if not found or found.group(1) != task_file.name:
            return line
        number = int(found.group(2))
        cells = [start for start in starts if start[0] < number]
        if not cells:
            return line
        marker, notebook, cell = cells[-1]
        return f"{notebook}, cell {cell}, line {number - marker}{found.group(3)}"

    return "\n".join(place(line) for line in where.splitlines())


class TestClock:
    """The current test's deadline, set by the grading plugin (a generous default otherwise),
    never later than the end of the submission's time budget (``budget_ends``, epoch seconds,
    from the grader; none under plain pytest)."""

    def __init__(self, default_seconds=60.0, budget_ends=None):
        self.default_seconds, self.seconds, self.until = default_seconds, None, None
        self.budget_ends = budget_ends

    def budget_left(self):
        """Seconds left of the submission's budget (infinite without one)."""
        return float("inf") if self.budget_ends is None else self.budget_ends - time.time()

    def budget_spent(self):
        return self.budget_left() <= 0

    def budget_message(self):
        return "not run: the submission's time budget (--budget) was used up"

    def start(self, seconds):
        self.seconds = seconds if seconds and seconds > 0 else None
        self.until = time.monotonic() + self.seconds if self.seconds else None

    def restart(self):
        """A fresh deadline, from now (after a worker has started)."""
        if self.seconds:
            self.until = max(self.until, time.monotonic() + self.seconds)
        return self.deadline()

    def deadline(self):
        own = self.until if self.until is not None else time.monotonic() + self.default_seconds
        return min(own, time.monotonic() + self.budget_left())

    def expire(self):
        from .testing import BudgetSpent, TimeLimitExceeded
        if self.budget_spent():
            raise BudgetSpent(self.budget_message())
        raise TimeLimitExceeded(f"timed out after {self.seconds or self.default_seconds:g} s")


# ----------------------------------------------------------------------------------------------
# Proxies
# ----------------------------------------------------------------------------------------------
class RemoteObject:
    """Something in the worker: the student's module, a function, a layer, a cache."""

    def __init__(self, session, number, type_name):
        object.__setattr__(self, "_session", session)
        object.__setattr__(self, "_number", number)
        object.__setattr__(self, "_type_name", type_name)

    def __repr__(self):
        return f"<student's {self._type_name}>"

    def __getattr__(self, name):
        __tracebackhide__ = True                 # pytest: show the test, not the proxy
        if name.startswith("__"):
            raise AttributeError(name)
        value, _ = self._session.request({"op": "getattr", "object": self._number, "name": name})
        return to_local(value, self._session, [])

    def __setattr__(self, name, value):
        __tracebackhide__ = True                 # pytest: show the test, not the proxy
        tensors = []
        self._session.request({"op": "setattr", "object": self._number, "name": name,
                               "value": to_wire(value, tensors)})

    def __call__(self, *args, **kwargs):
        __tracebackhide__ = True                 # pytest: show the test, not the proxy
        tensors = []
        message = {"op": "call", "object": self._number, "name": None,
                   "args": to_wire(list(args), tensors), "kwargs": to_wire(kwargs, tensors)}
        message["record"] = is_grad_enabled() and any(t.requires_grad for t in tensors)
        value, changed = self._session.request(message)
        _copy_back(changed, (args, kwargs))
        return to_local(value, self._session, tensors if message["record"] else None)


class InOut:
    """An array argument the student's code is meant to change in place (running statistics):
    ``student.f(x, in_out(running_mean))``. Only such arrays get the student's changes back; every
    other argument is a copy, so student code cannot alter what a test computes its expected
    values from."""

    def __init__(self, array):
        if not isinstance(array, numpy.ndarray):
            raise TypeError(f"in_out: expected a NumPy array, got {type(array).__name__}")
        self.array = array


def in_out(array):
    return InOut(array)


def to_wire(value, tensors):
    """What a test passes to student code, as wire values; Tensors are listed in ``tensors`` in
    the order the worker will see them."""
    if isinstance(value, Tensor):
        tensors.append(value)
        return wire.TensorValue(numpy.array(value.numpy()), value.requires_grad)
    if isinstance(value, RemoteObject):
        return wire.Handle(value._number, value._type_name)
    if isinstance(value, InOut):
        return value.array
    if isinstance(value, list):
        return [to_wire(v, tensors) for v in value]
    if isinstance(value, tuple):
        return tuple(to_wire(v, tensors) for v in value)
    if isinstance(value, dict):
        return {k: to_wire(v, tensors) for k, v in value.items()}
    return value


def to_local(value, session, tensors):
    """An answer of the worker as test values (``tensors``: the call's Tensor arguments, or None
    when no graph was recorded)."""
    if isinstance(value, wire.TensorValue):
        if value.node is not None and tensors:
            return RemoteFunction(session, value.node, value.array)(*tensors)
        return tensor(value.array)
    if isinstance(value, wire.Handle):
        return RemoteObject(session, value.number, value.type_name)
    if isinstance(value, list):
        return [to_local(v, session, tensors) for v in value]
    if isinstance(value, tuple):
        return tuple(to_local(v, session, tensors) for v in value)
    if isinstance(value, dict):
        return {k: to_local(v, session, tensors) for k, v in value.items()}
    return value


def _copy_back(changed, arguments):
    """Arrays the student's code changed in place: the same change, made to the test's arrays
    passed as ``in_out(array)`` (a test may check that running statistics were updated, or that
    nothing was modified); changes to any other argument stay in the worker."""
    for entry in changed:
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], numpy.ndarray)
                and isinstance(entry[0], list)):
            continue
        path, array = entry
        target = arguments
        try:
            for step in path:
                target = target[step]
        except (IndexError, KeyError, TypeError):
            continue
        if isinstance(target, InOut) and target.array.shape == array.shape \
                and target.array.flags.writeable:
            target.array[...] = array.astype(target.array.dtype, copy=False)


class RemoteFunction(ArrayFunction):
    """The student's computation as one node of the local graph: forward is the worker's answer,
    backward asks the worker (which holds the student's own graph) for the inputs' gradients and
    checks their shapes."""

    def __init__(self, session, node, output):
        self.session, self.node, self.output = session, node, output

    @property
    def name(self):
        return "student's function"

    def forward(self, *arrays):
        return self.output

    def backward(self, grad):
        __tracebackhide__ = True                 # pytest: show the test, not the proxy
        grads, _ = self.session.request({"op": "backward", "node": self.node,
                                         "grad": numpy.asarray(grad)})
        if not isinstance(grads, list) or len(grads) != len(self.input_shapes):
            raise StudentCodeError("backward through the student's code gave a wrong number of "
                                   "gradients")
        for g, shape in zip(grads, self.input_shapes):
            if g is not None and (not isinstance(g, numpy.ndarray) or g.shape != shape):
                got = g.shape if isinstance(g, numpy.ndarray) else type(g).__name__
                raise StudentCodeError(f"backward through the student's code gave a gradient of "
                                       f"shape {got} for an input of shape {shape}")
        return tuple(grads)
