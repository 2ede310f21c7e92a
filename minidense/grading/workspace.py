"""Where a submission's files are graded: a scratch copy of the stubs with the student's files on top.

A submission is a folder (or a zip's contents) that holds files named ``<task id>.py`` anywhere
inside it, e.g. ``im2col.py`` or ``tasks/im2col.py``. Only regular files are taken: a symbolic link
or anything else is refused with a reason, and so is a file over ``MAX_FILE_BYTES``. Tasks without
a file keep their stub (and score 0). ``--submissions DIR`` grades every subfolder of DIR this way.
"""
import csv
import io
import os
import shutil
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path

from ..fileio import atomic_write
from .report import number, task_totals

MAX_FILE_BYTES = 1 << 20


def submitted_files(submission_dir, task_ids):
    """({task id: path}, [refusal reasons]): the student's task files, shallowest path first when
    a name repeats. Symbolic links (to files or folders) are never followed."""
    found, refused = {}, []
    root = Path(submission_dir)
    candidates = []
    for folder, folders, files in os.walk(root, followlinks=False):
        for name in files + [f for f in folders if os.path.islink(os.path.join(folder, f))]:
            path = Path(folder) / name
            if path.suffix == ".py" and path.stem in task_ids:
                candidates.append(path)
    for path in sorted(candidates, key=lambda p: (len(p.parts), str(p))):
        if path.stem in found:
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
    return found, refused


def _copy_regular_file(source, target):
    """Copy ``source`` without following a link swapped in after the check."""
    fd = os.open(source, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as src, open(target, "wb") as dst:
        dst.write(src.read(MAX_FILE_BYTES + 1)[:MAX_FILE_BYTES])


@contextmanager
def submission_task_dir(exercise_dir, submission_dir, task_ids):
    """(task folder, refusals): a temporary folder with the stubs of ``exercise_dir/tasks``
    overlaid with the submission's files, readable by the grader's unprivileged worker."""
    with tempfile.TemporaryDirectory(prefix="minidense-submission-") as scratch:
        os.chmod(scratch, 0o711)
        task_dir = Path(scratch) / "tasks"
        task_dir.mkdir()
        for task_id in task_ids:
            stub = Path(exercise_dir) / "tasks" / f"{task_id}.py"
            if stub.is_file():
                shutil.copyfile(stub, task_dir / stub.name)
        files, refused = submitted_files(submission_dir, task_ids) if submission_dir else ({}, [])
        for task_id, path in files.items():
            _copy_regular_file(path, task_dir / f"{task_id}.py")
        os.chmod(task_dir, 0o755)
        for path in task_dir.iterdir():
            os.chmod(path, 0o644)
        yield task_dir, refused


def student_folders(submissions_dir):
    return sorted(p for p in Path(submissions_dir).iterdir()
                  if p.is_dir() and not p.is_symlink() and not p.name.startswith((".", "_")))


def write_summary_csv(rows, path):
    """rows: [(student, results)]; one line per student: total, max, then one column per task."""
    tasks = list(dict.fromkeys(task for _, results in rows for task in task_totals(results)))
    lines = [["student", "score", "max_score", *tasks]]
    for student, results in rows:
        totals = task_totals(results)
        lines.append([student, number(sum(s for s, _ in totals.values())),
                      number(sum(m for _, m in totals.values())),
                      *(number(totals.get(t, (0.0, 0.0))[0]) for t in tasks)])
    text = io.StringIO(newline="")
    csv.writer(text).writerows(lines)
    return atomic_write(path, lambda file: file.write(text.getvalue().encode("utf-8")))
