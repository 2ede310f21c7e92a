"""Fixtures for the graded tests.

``student`` is the task module under test: ``exercises/tasks/<TASK>.py`` by default, or the file in
the folder the grader names (``--solutions`` points it at ``exercises/solutions``). It runs in a
sandboxed worker process; the fixture is a proxy whose calls cross to it as plain data
(minidense/grading/student.py), so tests read as if the module were imported. Each test file sets
``TASK`` and ``FORBIDDEN`` (reference code the task must not use).
"""
from pathlib import Path

import numpy as np
import pytest

import minidense as md
from minidense.grading.testing import load_task, task_directory

STUBS = Path(__file__).resolve().parents[1] / "tasks"


@pytest.fixture
def student(request):
    test_module = request.module
    return load_task(test_module.TASK, getattr(test_module, "FORBIDDEN", ()),
                     task_directory(STUBS))


@pytest.fixture
def rng():
    """A seeded NumPy generator, so every run sees the same numbers."""
    md.manual_seed(0)
    return np.random.default_rng(0)
