"""Turning test results into what people read: a table, Gradescope's results.json, a CSV row."""
import json
import re
from collections import OrderedDict
from pathlib import Path

from ..fileio import atomic_write


def number(value):
    """10.0 -> 10, 2.5 -> 2.5 (points read better without a trailing .0)."""
    return int(value) if float(value).is_integer() else round(value, 3)


def task_totals(results):
    """OrderedDict task -> (score, max score)."""
    totals = OrderedDict()
    for r in results:
        score, maximum = totals.get(r.task, (0.0, 0.0))
        totals[r.task] = (score + r.score, maximum + r.max_score)
    return totals


def summary_text(results):
    totals = task_totals(results)
    score = sum(s for s, _ in totals.values())
    maximum = sum(m for _, m in totals.values())
    lines = [f"{task:<32} {number(s):>5} / {number(m)}" for task, (s, m) in totals.items()]
    lines.append(f"{'TOTAL':<32} {number(score):>5} / {number(maximum)}")
    return "\n".join(lines)


STUDENT_LINE = re.compile(r"^\S[^\n]*\.(py|ipynb)(, cell \d+)?, line \d+, in ", re.MULTILINE)


def student_location(reason):
    """The last line of the student's own file a failure went through ('im2col.py, line 12, in
    im2col: ...', or 'homework.ipynb, cell 3, line 5, in ...'), or ''."""
    found = [m.start() for m in STUDENT_LINE.finditer(reason)]
    return reason[found[-1]:].split("\n", 1)[0] if found else ""


def table(results):
    """The per-test table followed by the per-task summary: each failure's first line in full,
    then the student's file and line it went through. Control characters are escaped."""
    from .workspace import printable
    header = f"{'task':<30} {'test':<44} {'points':>7}  {'status':<6}  reason"
    lines = [header, "-" * len(header)]
    for r in results:
        first_line = r.reason.split("\n", 1)[0]
        lines.append(printable(f"{r.task:<30} {r.test:<44} "
                               f"{number(r.score):>3}/{number(r.max_score):<3}  "
                               f"{r.status:<6}  {first_line}"))
        where = student_location(r.reason)
        if where:
            lines.append(printable(f"{'':<30} at {where}"))
    return "\n".join(lines + ["", summary_text(results)])


def gradescope_results(results, execution_time, notes=()):
    """The dict Gradescope expects in /autograder/results/results.json; ``notes`` (how isolated
    the grading was, refused files) open the top-level output."""
    tests = []
    for r in results:
        output = r.reason if not r.output else f"{r.reason}\n\n{r.output}"
        tests.append({"name": f"{r.task}: {r.test}", "score": number(r.score),
                      "max_score": number(r.max_score), "status": r.status,
                      "output": output, "visibility": r.visibility})
    return {"score": number(sum(r.score for r in results)),
            "max_score": number(sum(r.max_score for r in results)),
            "execution_time": round(execution_time, 2),
            "output": "\n".join([*notes, summary_text(results)]),
            "visibility": "visible",
            "tests": tests}


def write_results(results, execution_time, path, notes=()):
    """Write results.json atomically, as strict JSON."""
    text = json.dumps(gradescope_results(results, execution_time, notes), indent=2,
                      allow_nan=False)
    return atomic_write(path, lambda file: file.write(text.encode("utf-8")))
