"""The homework autograder: ``python -m minidense grade`` (see cli.py and exercises/INSTRUCTORS.md).

    testing.py     what exercise tests use: ``points``, loading the task module, forbidden imports
    plugin.py      pytest plugin in the child process: per-test points, outcome and time limit
    runner.py      one child process per task, a watchdog, re-runs after a crash
    report.py      the table, Gradescope's results.json
    workspace.py   submissions: student files over the stubs, summary.csv
    gradescope.py  the autograder zip
    cli.py         the command line
"""
from .testing import ForbiddenImportError, in_out, load_task, points

__all__ = ["points", "in_out", "load_task", "ForbiddenImportError"]
