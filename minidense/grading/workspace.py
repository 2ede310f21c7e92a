"""Where a submission's files are graded: a scratch copy of the stubs with the student's files on top.

A submission is a folder (or a zip's contents) that holds files named ``<task id>.py`` anywhere
inside it, e.g. ``im2col.py`` or ``tasks/im2col.py``. Tasks without a file keep their stub (and score
0). ``--submissions DIR`` grades every subfolder of DIR this way.
"""
import csv
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .report import number, task_totals


def submitted_files(submission_dir, task_ids):
    """{task id: path} of the student's files, shallowest path first when a name repeats."""
    found = {}
    paths = sorted(Path(submission_dir).rglob("*.py"), key=lambda p: (len(p.parts), str(p)))
    for path in paths:
        if path.stem in task_ids and path.stem not in found:
            found[path.stem] = path
    return found


@contextmanager
def submission_task_dir(exercise_dir, submission_dir, task_ids):
    """A temporary task folder: the stubs of ``exercise_dir/tasks`` overlaid with the submission."""
    with tempfile.TemporaryDirectory(prefix="minidense-submission-") as scratch:
        task_dir = Path(scratch) / "tasks"
        shutil.copytree(Path(exercise_dir) / "tasks", task_dir)
        for task_id, path in submitted_files(submission_dir, task_ids).items():
            shutil.copyfile(path, task_dir / f"{task_id}.py")
        yield task_dir


def student_folders(submissions_dir):
    return sorted(p for p in Path(submissions_dir).iterdir()
                  if p.is_dir() and not p.name.startswith((".", "_")))


def write_summary_csv(rows, path):
    """rows: [(student, results)]; one line per student: total, max, then one column per task."""
    tasks = list(dict.fromkeys(task for _, results in rows for task in task_totals(results)))
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["student", "score", "max_score", *tasks])
        for student, results in rows:
            totals = task_totals(results)
            writer.writerow([student, number(sum(s for s, _ in totals.values())),
                             number(sum(m for _, m in totals.values())),
                             *(number(totals.get(t, (0.0, 0.0))[0]) for t in tasks)])
    return path
