"""What the graded exercise tests use: points, loading a student's task module, forbidden imports.

A test file in ``exercises/tests`` names its task and the reference code students must not use::

    TASK = "im2col"
    FORBIDDEN = ["minidense.ops.conv.im2col", "minidense.ops.conv.im2col_naive"]

    @points(2)
    def test_shape(student):          # the ``student`` fixture (exercises/tests/conftest.py)
        cols = student.im2col(x, 3, 3)   # is the task module, loaded from its file

Forbidden imports are caught three ways, all in ``load_task``:

1. a static scan of the file: ``import``/``from`` statements, dotted names reached from an imported
   name (``F.conv2d`` after ``import minidense.nn.functional as F``) and string arguments of
   ``importlib.import_module``/``__import__``;
2. an import hook (a wrapper around ``builtins.__import__``) that refuses forbidden names asked for by
   the student's module while it loads or later, inside its functions;
3. after loading, a check that no function of the module *is* a forbidden object.

A name is forbidden when it equals an entry of the list or lies below it (``minidense.models``
forbids ``minidense.models.densenet.DenseLayer``). ``exercises.solutions`` and ``solutions`` are
forbidden for every task, and so are other frameworks (``torch``, ``tensorflow``, ``jax``).
"""
import ast
import builtins
import importlib
import importlib.util
import os
import sys
from pathlib import Path

ALWAYS_FORBIDDEN = ("exercises.solutions", "solutions", "torch", "tensorflow", "jax")
TASK_DIR_VARIABLE = "MINIDENSE_TASK_DIR"   # set by the grader: where the task modules live
FORBIDDEN_REASON = "imports the reference implementation"

# task id -> message, for the grading plugin (a forbidden import zeroes the whole task)
forbidden_findings = {}


def points(value):
    """Decorator giving a test its points: ``@points(2)``."""
    import pytest
    return pytest.mark.points(value)


class ForbiddenImportError(ImportError):
    """The task module uses the reference implementation it is meant to reimplement."""


class TimeLimitExceeded(BaseException):
    """Raised inside a test that ran past its time limit (BaseException: ``except Exception``
    in student code does not swallow it)."""


def is_forbidden(name, forbidden):
    return any(name == f or name.startswith(f + ".") for f in forbidden)


# ----------------------------------------------------------------------------------------------
# 1. Static scan
# ----------------------------------------------------------------------------------------------
def _dotted(node):
    """'a.b.c' for an ast Name/Attribute chain, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id] + parts[::-1])
    return None


def forbidden_references(source, forbidden, filename="<task>"):
    """[(qualified name, line)] for every forbidden name the source imports or reaches."""
    tree = ast.parse(source, filename)
    aliases = {}      # local name -> qualified name
    used = []         # (qualified name, line)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                used.append((alias.name, node.lineno))
                local = alias.asname or alias.name.split(".")[0]
                aliases[local] = alias.name if alias.asname else local
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            used.append((node.module, node.lineno))
            for alias in node.names:
                qualified = f"{node.module}.{alias.name}"
                used.append((qualified, node.lineno))
                aliases[alias.asname or alias.name] = qualified
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str) \
                and (_dotted(node.func) or "").split(".")[-1] in ("import_module", "__import__"):
            used.append((node.args[0].value, node.lineno))
    for node in ast.walk(tree):
        name = _dotted(node) if isinstance(node, ast.Attribute) else None
        if name and name.split(".")[0] in aliases:
            root, _, rest = name.partition(".")
            used.append((f"{aliases[root]}.{rest}", node.lineno))
    found = {(name, line) for name, line in used if is_forbidden(name, forbidden)}
    return sorted(found, key=lambda item: (item[1], item[0]))


# ----------------------------------------------------------------------------------------------
# 2. Import hook
# ----------------------------------------------------------------------------------------------
_guarded_modules = {}          # module name of a loaded task -> its forbidden list
_original_import = builtins.__import__
_original_import_module = importlib.import_module


def _refuse_forbidden(importer_globals, names):
    """Raise ForbiddenImportError when a task module asks for a forbidden name."""
    importer = (importer_globals or {}).get("__name__")
    forbidden = _guarded_modules.get(importer)
    for name in names if forbidden is not None else ():
        if is_forbidden(name, forbidden):
            message = f"{FORBIDDEN_REASON}: {name}"
            forbidden_findings[importer.removeprefix("student_")] = message
            raise ForbiddenImportError(message)


def _guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
    if level == 0:
        importer_globals = globals if globals is not None else sys._getframe(1).f_globals
        _refuse_forbidden(importer_globals, [name] + [f"{name}.{item}" for item in fromlist or ()
                                                      if item != "*"])
    return _original_import(name, globals, locals, fromlist, level)


def _guarded_import_module(name, package=None):
    _refuse_forbidden(sys._getframe(1).f_globals, [name])
    return _original_import_module(name, package)


def _install_import_hook():
    builtins.__import__ = _guarded_import
    importlib.import_module = _guarded_import_module


# ----------------------------------------------------------------------------------------------
# 3. Identity check, and loading
# ----------------------------------------------------------------------------------------------
def _resolve(qualified):
    """The object a qualified name points to, looked up among modules already imported (importing
    big frameworks just to compare would be slow), or None."""
    parts = qualified.split(".")
    for cut in range(len(parts), 0, -1):
        obj = sys.modules.get(".".join(parts[:cut]))
        if obj is not None:
            for attribute in parts[cut:]:
                obj = getattr(obj, attribute, None)
            return obj
    return None


def _reference_objects_used(module, forbidden):
    references = {id(obj): name for name in forbidden if callable(obj := _resolve(name))}
    return [references[id(value)] for value in vars(module).values() if id(value) in references]


def task_directory(default):
    return Path(os.environ.get(TASK_DIR_VARIABLE) or default)


_loaded = {}   # task id -> module, or the exception loading it raised


def load_task(task_id, forbidden=(), directory=None):
    """Import ``<directory>/<task_id>.py`` as the module ``student_<task_id>`` and return it.

    Raises ForbiddenImportError (and records it for the grader) when the file uses a forbidden
    name. A failure to load is remembered, so later tests fail at once instead of, say, sleeping
    through module-level code again.
    """
    if task_id in _loaded:
        if isinstance(_loaded[task_id], BaseException):
            raise _loaded[task_id]
        return _loaded[task_id]
    forbidden = tuple(forbidden) + ALWAYS_FORBIDDEN
    path = Path(directory) / f"{task_id}.py"
    try:
        module = _load(task_id, path, forbidden)
    except BaseException as error:
        if isinstance(error, ForbiddenImportError):
            forbidden_findings[task_id] = str(error)
        _loaded[task_id] = error
        raise
    _loaded[task_id] = module
    return module


def _load(task_id, path, forbidden):
    if not path.is_file():
        raise FileNotFoundError(f"{task_id}: the task file {path} is missing")
    found = forbidden_references(path.read_text(encoding="utf-8"), forbidden, str(path))
    if found:
        where = ", ".join(f"{name} (line {line})" for name, line in found)
        raise ForbiddenImportError(f"{FORBIDDEN_REASON}: {where}")
    module_name = f"student_{task_id}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    _install_import_hook()
    _guarded_modules[module_name] = forbidden
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    used = _reference_objects_used(module, forbidden)
    if used:
        raise ForbiddenImportError(f"{FORBIDDEN_REASON}: {', '.join(sorted(set(used)))}")
    return module


# ----------------------------------------------------------------------------------------------
# Array-level student code inside the autograd engine (for md.gradcheck)
# ----------------------------------------------------------------------------------------------
def tensor_op(forward, backward):
    """Wrap ``forward(*arrays) -> (out, cache)`` and ``backward(dout, cache) -> grads`` as a
    function of Tensors, so ``md.gradcheck`` can check the pair against finite differences."""
    from ..autograd import Function, Tensor

    class StudentOp(Function):
        differentiable_backward = False

        def forward(self, *arrays):
            out, self.cache = forward(*arrays)
            return out

        def backward(self, grad):
            grads = backward(grad.data, self.cache)
            grads = grads if isinstance(grads, (tuple, list)) else (grads,)
            return tuple(None if g is None else Tensor(g) for g in grads[:len(self.inputs)])

    return lambda *tensors: StudentOp()(*tensors)
