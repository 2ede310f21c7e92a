"""The one error family the command line reports without a traceback.

``UserError`` marks a problem the user can fix (a bad option, a damaged or foreign file, a run that
diverged). Its message is one line: what is wrong and how to fix it. The commands catch only this
type, print the message and exit with status 2; any other exception is a bug in minidense and keeps
its traceback.

Concrete errors also derive from the built-in type a Python reader expects (``ValueError``,
``FileNotFoundError``, ...), so ``except ValueError`` keeps working.
"""


class UserError(Exception):
    """Something the user can fix; the command line prints it as one line and exits with 2."""


class UsageError(UserError):
    """A problem with the command line or the run folder."""


def report_user_error(program, error):
    """Print ``error`` as the one line ``PROGRAM: error: MESSAGE``; return exit status 2."""
    import sys
    print(f"{program}: error: {error}", file=sys.stderr)
    return 2
