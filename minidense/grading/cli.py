"""``python -m minidense grade``: grade exercises and write Gradescope's results.json.

    python -m minidense grade                          # ./exercises, the task files in tasks/
    python -m minidense grade exercises --task im2col  # one task
    python -m minidense grade --solutions              # the reference solutions (must score 100%)
    python -m minidense grade --submission DIR         # one student's files
    python -m minidense grade --submissions DIR        # every subfolder of DIR, plus summary.csv
    python -m minidense grade --submissions DIR --student alice   # grade (again) one student
    python -m minidense grade --make-gradescope-zip autograder.zip
    python -m minidense grade --make-handout DIR       # what students get: no solutions
"""
import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .gradescope import make_gradescope_zip, make_handout
from .report import summary_text, table, write_results
from .runner import DEFAULT_BUDGET_SECONDS, TestResult, discover_tasks, grade_exercises
from .sandbox import DESCRIPTIONS, box_limits_description, isolation_level
from .workspace import printable, student_folders, submission_task_dir, write_summary_csv

DEFAULT_RESULTS = Path("grades") / "results.json"


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m minidense grade",
        description="Grade the exercises: the tests run in a trusted process, each task's student "
                    "code in a sandboxed worker with a time limit per test; a table is printed "
                    "and results.json (Gradescope's format) is always written.")
    parser.add_argument("exercise_dir", nargs="?", default="exercises",
                        help="folder holding tasks/, tests/ and solutions/ (default: exercises)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--solutions", action="store_true",
                       help="grade the reference solutions instead of tasks/")
    which.add_argument("--submission", metavar="DIR",
                       help="grade the <task id>.py files found in DIR (over the stubs)")
    which.add_argument("--submissions", metavar="DIR",
                       help="grade each subfolder of DIR; writes OUT/<student>/results.json and "
                            "OUT/summary.csv")
    which.add_argument("--make-gradescope-zip", metavar="ZIP",
                       help="build a Gradescope autograder zip instead of grading")
    which.add_argument("--make-handout", metavar="DIR",
                       help="write what students get into DIR (a new folder): the task stubs, "
                            "the visible tests and the README; no solutions, no hidden tests")
    parser.add_argument("--results", default=str(DEFAULT_RESULTS), metavar="PATH",
                        help=f"where to write results.json (default: {DEFAULT_RESULTS})")
    parser.add_argument("--out", metavar="DIR",
                        help="with --submissions: where results go (default: grades/<name of DIR>)")
    parser.add_argument("--regrade", action="store_true",
                        help="with --submissions: grade again students who already have results")
    parser.add_argument("--student", action="append", metavar="NAME",
                        help="with --submissions: grade only this student's folder, again if "
                             "graded before (repeatable); summary.csv still lists everyone")
    parser.add_argument("--task", action="append", metavar="ID",
                        help="grade only this task (repeatable)")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                        help="time limit per test (default: 10)")
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGET_SECONDS, metavar="SECONDS",
                        help="wall-clock time per submission, worker start-ups included; tests "
                             f"not started by then fail (default: {DEFAULT_BUDGET_SECONDS:g})")
    parser.add_argument("--jobs", type=int, default=2, metavar="N",
                        help="grade N students (with --submissions) or N groups of tasks at the "
                             "same time (default: 2)")
    parser.add_argument("--isolation", choices=("auto", *DESCRIPTIONS), default="auto",
                        help="'auto' (default): the strongest sandbox this machine allows; the "
                             "others force a level ('none': no sandbox, only for code you trust)")
    parser.add_argument("--quiet", action="store_true", help="print only the summary")
    return parser


def grade_main(argv=None):
    args = build_parser().parse_args(argv)
    exercise_dir = Path(args.exercise_dir)
    try:
        tasks = discover_tasks(exercise_dir)
    except FileNotFoundError as error:
        print(error, file=sys.stderr)
        return 2
    unknown = sorted(set(args.task or ()) - set(tasks))
    if unknown:
        print(f"grade: unknown task(s) {', '.join(unknown)}; known: {', '.join(tasks)}",
              file=sys.stderr)
        return 2
    problem = _option_problem(args)
    if problem:
        print(f"grade: {problem}", file=sys.stderr)
        return 2
    if args.make_gradescope_zip:
        path = make_gradescope_zip(exercise_dir, args.make_gradescope_zip, args.timeout)
        print(f"wrote {path} ({len(tasks)} tasks); upload it as the assignment's autograder")
        return 0
    if args.make_handout:
        path = make_handout(exercise_dir, args.make_handout)
        print(f"wrote {path}: {len(tasks)} task stubs, their visible tests and the README "
              f"(no solutions, no hidden tests)")
        return 0
    isolation = isolation_level(args.isolation)
    print(f"grading {DESCRIPTIONS[isolation]}; {box_limits_description()}", flush=True)
    if args.submissions:
        return _grade_submissions(exercise_dir, Path(args.submissions), args, isolation)
    if args.submission:
        with submission_task_dir(exercise_dir, args.submission, tasks) as submitted:
            _grade_and_report(exercise_dir, args, Path(args.results), isolation, *submitted)
        return 0
    task_dir = exercise_dir / ("solutions" if args.solutions else "tasks")
    _grade_and_report(exercise_dir, args, Path(args.results), isolation, task_dir)
    return 0


def _option_problem(args):
    """What is wrong with the options, in one line saying how to fix it (None if nothing)."""
    if args.jobs < 1:
        return f"--jobs must be at least 1 (got {args.jobs})"
    if args.timeout <= 0 or args.budget <= 0:
        return "--timeout and --budget take a positive number of seconds"
    if args.student and not args.submissions:
        return "--student NAME needs --submissions DIR (the folder holding NAME/)"
    if args.submissions and not Path(args.submissions).is_dir():
        return f"--submissions {args.submissions}: no such folder"
    if args.submission and not Path(args.submission).is_dir():
        return f"--submission {args.submission}: no such folder"
    if args.make_handout and Path(args.make_handout).exists():
        return f"--make-handout {args.make_handout}: already exists; name a new folder"
    return None


def _grade_and_report(exercise_dir, args, results_path, isolation, task_dir, refused=None,
                      skipped=(), label="", jobs=None):
    """Grade one submission (``refused`` is None when grading tasks/ or solutions/ rather than
    a student's files); write its results.json; print the table unless ``label`` names a
    student among many."""
    started = time.time()

    def show_progress(task_id, task_results):
        if not args.quiet and submitted != set():
            score = sum(r.score for r in task_results)
            maximum = sum(r.max_score for r in task_results)
            print(printable(f"  {label}{task_id:<32} {score:g}/{maximum:g}"), flush=True)

    submitted = _submitted_tasks(task_dir, exercise_dir) if refused is not None else None
    notes = [f"Grading: {DESCRIPTIONS[isolation]}; {box_limits_description()}."]
    notes += [f"Refused: {why}." for why in refused or ()]
    notes += [f"Skipped: {why}" for why in skipped]
    if submitted == set():
        notes.append(NO_TASK_FILES)
    for note in notes[1:]:
        print(printable(f"  {label}{note}"), flush=True)
    results = []
    try:
        absent = set(discover_tasks(exercise_dir)) - submitted if submitted is not None else ()
        results = grade_exercises(exercise_dir, task_dir, args.task, args.timeout,
                                  jobs or args.jobs, show_progress, isolation, args.budget,
                                  absent)
    finally:   # results.json is written whatever happens, even after an interruption
        write_results(results, time.time() - started, results_path, notes)
    if not label:
        if submitted != set():                   # else the one line above says it all
            print(summary_text(results) if args.quiet else "\n" + table(results))
        print(f"\nresults written to {printable(results_path)}")
    return results


NO_TASK_FILES = ("No task files found: the submission holds no <task id>.py file (e.g. "
                 "im2col.py) and no notebook defining a task; every task scores 0.")


def _submitted_tasks(task_dir, exercise_dir):
    """The tasks whose file in ``task_dir`` is not the untouched stub."""
    stubs = Path(exercise_dir) / "tasks"
    return {path.stem for path in Path(task_dir).glob("*.py")
            if not (stubs / path.name).is_file()
            or path.read_bytes() != (stubs / path.name).read_bytes()}


def _grade_submissions(exercise_dir, submissions_dir, args, isolation):
    """Grade every student, ``args.jobs`` at a time; each results.json is written as soon as that
    student is done, students graded before are skipped (unless --regrade), and summary.csv is
    always written at the end."""
    tasks = discover_tasks(exercise_dir)
    out = Path(args.out) if args.out else Path("grades") / submissions_dir.resolve().name
    students, skipped = student_folders(submissions_dir)
    for why in skipped:
        print(printable(f"  skipped {why}"))
    chosen = students
    if args.student:
        chosen = [folder for folder in students if folder.name in args.student]
        missing = sorted(set(args.student) - {folder.name for folder in chosen})
        if missing:
            print(f"grade: --student {printable(missing[0])}: no such folder in "
                  f"{printable(submissions_dir)}", file=sys.stderr)
            return 2

    def grade_student(folder):
        name = printable(folder.name)
        results_path = out / folder.name / "results.json"
        if results_path.is_file() and not (args.regrade or args.student):
            print(f"  {name}: already graded ({printable(results_path)}); --regrade to redo")
            return
        try:
            with submission_task_dir(exercise_dir, folder, tasks) as submitted:
                results = _grade_and_report(exercise_dir, args, results_path, isolation,
                                            *submitted, label=f"{folder.name}: ", jobs=1)
            total = sum(r.score for r in results)
            print(f"== {name}: {total:g} / {sum(r.max_score for r in results):g}", flush=True)
        except Exception as error:       # one student's failure never stops the others
            failed = [TestResult(task_id, "(grading failed)", 0.0, 0.0, "failed",
                                 f"{type(error).__name__}: {error}") for task_id in tasks]
            write_results(failed, 0.0, results_path)
            print(f"== {name}: grading failed: {printable(error)}", flush=True)

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        list(pool.map(grade_student, chosen))
    rows = [(folder.name, _read_results(out / folder.name / "results.json")) for folder in students]
    summary = write_summary_csv(rows, out / "summary.csv")
    print("\n" + printable(f"{len(rows)} submissions graded; results in {out}, summary in "
                           f"{summary}"))
    return 0


def _read_results(path):
    """TestResults back from a results.json this grader wrote (an empty list if unreadable)."""
    try:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
        return [TestResult(test["name"].partition(": ")[0], test["name"].partition(": ")[2],
                           float(test["max_score"]), float(test["score"]), test["status"])
                for test in report["tests"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []
