"""The code a task's stub marks "Given", run on the grader's side.

Tests of a backward task build the forward pass and its cache here, from the stub in
exercises/tasks, never with the copy in the student's file: a student's "given" forward that was
changed (say, to a linear function with an easy backward) then earns nothing.
"""
import importlib.util
from pathlib import Path

STUBS = Path(__file__).resolve().parents[1] / "tasks"


def given(task_id, name):
    """The function ``name`` of the stub ``exercises/tasks/<task_id>.py``."""
    spec = importlib.util.spec_from_file_location(f"given_{task_id}", STUBS / f"{task_id}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)
