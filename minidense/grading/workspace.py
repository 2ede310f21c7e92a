"""Where a submission's files are graded: a scratch copy of the stubs with the student's files on top.

A submission is a folder (or a zip's contents) that holds files named ``<task id>.py`` anywhere
inside it, e.g. ``im2col.py`` or ``tasks/im2col.py``. Only regular files are taken: a symbolic link
or anything else is refused with a reason, and so is a file over ``MAX_FILE_BYTES``. Tasks without
a file keep their stub (and score 0). A notebook's code cells count for each task whose functions
they all define. Every other file is listed as skipped, with the likely fix for a misnamed one.
``--submissions DIR`` grades every subfolder of DIR this way. Names and cells are made safe to
print (``printable``) and to open in a spreadsheet (``spreadsheet_cell``).
"""
import ast
import csv
import difflib
import io
import json
import os
import re
import stat
import tempfile
import unicodedata
from contextlib import contextmanager
from pathlib import Path

from ..fileio import atomic_write
from .report import number, task_totals

MAX_FILE_BYTES = 1 << 20


def _near_miss(name, task_ids):
    """'im2col' for 'Col2im.py'-like names ('Im2Col.py', 'im2col (1).py', 'im2col.py.txt'),
    else None."""
    stem = re.sub(r"( ?\(\d+\)|-\d+|_copy| copy)$", "", name.split(".")[0].strip()).lower()
    if stem in task_ids:
        return stem
    close = difflib.get_close_matches(stem, list(task_ids), n=1, cutoff=0.85)
    return close[0] if close else None


def submitted_files(submission_dir, task_ids):
    """({task id: path}, [refusal reasons], [skipped files with the reason]): the student's task
    files, shallowest path first when a name repeats. Symbolic links (to files or folders) are
    never followed; a file that looks like a task file misnamed is named with the likely fix."""
    found, refused, skipped = {}, [], []
    root = Path(submission_dir)
    candidates = []
    for folder, folders, files in os.walk(root, followlinks=False):
        folders.sort()
        for name in sorted(files) + [f for f in folders if os.path.islink(os.path.join(folder, f))]:
            path = Path(folder) / name
            if path.suffix in (".py", ".ipynb") and path.stem in task_ids or \
                    path.suffix == ".ipynb":
                candidates.append(path)
            elif path.suffix == ".py" and _near_miss(name, task_ids):
                skipped.append(f"{path.relative_to(root)}: did you mean "
                               f"{_near_miss(name, task_ids)}.py?")
            else:
                skipped.append(f"{path.relative_to(root)}: not a task file (<task id>.py or "
                               f"a notebook)")
    for path in sorted(candidates, key=lambda p: (len(p.parts), p.suffix == ".ipynb", str(p))):
        if path.stem in found:
            skipped.append(f"{path.relative_to(root)}: {path.stem} already taken from "
                           f"{found[path.stem].relative_to(root)}")
            continue
        relative = path.relative_to(root)
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):
            refused.append(f"{relative} is a symbolic link; submit the file itself")
        elif not stat.S_ISREG(info.st_mode):
            refused.append(f"{relative} is not a regular file")
        elif info.st_size > MAX_FILE_BYTES:
            refused.append(f"{relative} is larger than {MAX_FILE_BYTES} bytes")
        else:
            found[path.stem] = path
    return found, refused, skipped


# ----------------------------------------------------------------------------------------------
# Notebooks
# ----------------------------------------------------------------------------------------------
class NotebookRefused(ValueError):
    """A notebook that cannot be graded; the message names the file and the cell."""


def notebook_code(path):
    """The code cells of a notebook as one Python source. IPython magics (``%``, ``%%``) and
    shell escapes (``!``) are refused, naming the cell: they do not run outside Jupyter."""
    name = Path(path).name
    try:
        notebook = json.loads(_read_regular_file(path).decode("utf-8"))
        cells = notebook["cells"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise NotebookRefused(f"{name} is not a readable notebook (.ipynb JSON)") from None
    sources = []
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        for line in source.splitlines():
            if line.lstrip().startswith(("%", "!")):
                raise NotebookRefused(f"{name}, cell {number}: IPython magics and shell escapes "
                                      f"({line.strip()[:40]!r}) are not accepted; remove them "
                                      f"and submit again")
        sources.append(f"# --- {name}, cell {number} ---\n{source}\n")
    return "\n".join(sources)


def names_to_write(stub_source):
    """Top-level functions and classes of a stub that raise NotImplementedError (what the
    student writes)."""
    names = []
    for node in ast.parse(stub_source).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and any(
                isinstance(inner, ast.Raise) and "NotImplementedError" in ast.dump(inner)
                for inner in ast.walk(node)):
            names.append(node.name)
    return names


def _defined_names(source):
    try:
        return {node.name for node in ast.parse(source).body
                if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    except (SyntaxError, ValueError, RecursionError):
        return set()


def tasks_from_notebook(code, stubs):
    """[task id]: the tasks whose every function to write the notebook's code defines."""
    defined = _defined_names(code)
    return [task_id for task_id, stub in stubs.items()
            if names_to_write(stub) and set(names_to_write(stub)) <= defined]


def _read_regular_file(source):
    """The bytes of ``source`` without following a link swapped in after the check."""
    fd = os.open(source, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as src:
        return src.read(MAX_FILE_BYTES + 1)[:MAX_FILE_BYTES]


@contextmanager
def submission_task_dir(exercise_dir, submission_dir, task_ids):
    """(task folder, refusals, skipped files): a temporary folder with the stubs of
    ``exercise_dir/tasks`` overlaid with the submission's files (a notebook's code cells after
    the stub of each task it completes), readable by the grader's unprivileged worker."""
    with tempfile.TemporaryDirectory(prefix="minidense-submission-") as scratch:
        os.chmod(scratch, 0o711)
        task_dir = Path(scratch) / "tasks"
        task_dir.mkdir()
        stubs = {}
        for task_id in task_ids:
            stub = Path(exercise_dir) / "tasks" / f"{task_id}.py"
            if stub.is_file():
                stubs[task_id] = stub.read_text(encoding="utf-8")
                (task_dir / stub.name).write_text(stubs[task_id], encoding="utf-8")
        found, refused, skipped = submitted_files(submission_dir, task_ids) \
            if submission_dir else ({}, [], [])
        for name, path in found.items():
            if path.suffix == ".py":
                (task_dir / f"{name}.py").write_bytes(_read_regular_file(path))
        for name, path in found.items():
            if path.suffix == ".ipynb":
                _add_notebook(path, stubs, task_dir, found, refused, skipped)
        os.chmod(task_dir, 0o755)
        for path in task_dir.iterdir():
            os.chmod(path, 0o644)
        yield task_dir, refused, skipped


def _add_notebook(path, stubs, task_dir, found, refused, skipped):
    """Each task the notebook completes (and no .py file gives) becomes stub + notebook code."""
    try:
        code = notebook_code(path)
    except NotebookRefused as reason:
        refused.append(str(reason))
        return
    taken = [t for t in tasks_from_notebook(code, stubs)
             if t not in found or found[t] == path]
    if not taken:
        skipped.append(f"{path.name}: its code cells define no task's functions completely")
    for task_id in taken:
        (task_dir / f"{task_id}.py").write_text(
            f"{stubs[task_id]}\n\n# --- from {path.name} ---\n{code}", encoding="utf-8")


def student_folders(submissions_dir):
    """([student folders], [skipped entries with the reason]): every subfolder is a student,
    except hidden ones ('.git') and links; nothing is left out without a word."""
    students, skipped = [], []
    for path in sorted(Path(submissions_dir).iterdir()):
        if path.is_symlink():
            skipped.append(f"{path.name}: a symbolic link, not a student's folder")
        elif not path.is_dir():
            skipped.append(f"{path.name}: a file, not a student's folder")
        elif path.name.startswith("."):
            skipped.append(f"{path.name}: a hidden folder")
        else:
            students.append(path)
    return students, skipped


DANGEROUS_CELL_START = ("=", "+", "-", "@", "\t", "\r")


def printable(text):
    """``text`` with control and format characters (escape sequences, newlines, bidi marks)
    shown as escapes, so a name or message cannot rewrite the terminal or forge lines."""
    return "".join(c if unicodedata.category(c) not in ("Cc", "Cf")
                   else c.encode("unicode_escape").decode("ascii") for c in str(text))


def spreadsheet_cell(value):
    """A CSV cell no spreadsheet reads as a formula: text starting with = + - @ tab or CR gets
    a leading apostrophe; control characters are escaped."""
    if not isinstance(value, str):
        return value
    return ("'" if value.startswith(DANGEROUS_CELL_START) else "") + printable(value)


def write_summary_csv(rows, path):
    """rows: [(student, results)]; one line per student: total, max, then one column per task."""
    tasks = list(dict.fromkeys(task for _, results in rows for task in task_totals(results)))
    lines = [["student", "score", "max_score", *tasks]]
    for student, results in rows:
        totals = task_totals(results)
        lines.append([student, number(sum(s for s, _ in totals.values())),
                      number(sum(m for _, m in totals.values())),
                      *(number(totals.get(t, (0.0, 0.0))[0]) for t in tasks)])
    lines = [[spreadsheet_cell(cell) for cell in line] for line in lines]
    text = io.StringIO(newline="")
    csv.writer(text).writerows(lines)
    return atomic_write(path, lambda file: file.write(text.getvalue().encode("utf-8")))
