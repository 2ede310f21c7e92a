"""The homework autograder: ``python -m minidense grade`` (see cli.py and exercises/INSTRUCTORS.md).

    testing.py     what exercise tests use: ``points``, loading the task module, forbidden imports
    plugin.py      pytest plugin in the child process: per-test points, outcome and time limit
    runner.py      one child process per task, a watchdog, re-runs after a crash
    report.py      the table, Gradescope's results.json
    workspace.py   submissions: student files over the stubs, summary.csv
    gradescope.py  the autograder zip
    cli.py         the command line
"""
__all__ = ["points", "in_out", "load_task", "ForbiddenImportError"]


def __getattr__(name):
    """The names above, from testing.py on first use: the worker process, which imports only
    wire.py from this package, does not load the grader's side."""
    if name in __all__:
        from . import testing
        return getattr(testing, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
