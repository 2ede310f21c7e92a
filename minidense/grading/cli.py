"""``python -m minidense grade``: grade exercises and write Gradescope's results.json.

    python -m minidense grade                          # ./exercises, the task files in tasks/
    python -m minidense grade exercises --task im2col  # one task
    python -m minidense grade --solutions              # the reference solutions (must score 100%)
    python -m minidense grade --submission DIR         # one student's files
    python -m minidense grade --submissions DIR        # every subfolder of DIR, plus summary.csv
    python -m minidense grade --make-gradescope-zip autograder.zip
"""
import argparse
import sys
import time
from pathlib import Path

from .gradescope import make_gradescope_zip
from .report import summary_text, table, write_results
from .runner import discover_tasks, grade_exercises
from .workspace import student_folders, submission_task_dir, write_summary_csv


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m minidense grade",
        description="Grade the exercises: each task's tests run in their own process with a time "
                    "limit per test; a table is printed and results.json (Gradescope's format) "
                    "is always written.")
    parser.add_argument("exercise_dir", nargs="?", default="exercises",
                        help="folder holding tasks/, tests/ and solutions/ (default: exercises)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--solutions", action="store_true",
                       help="grade the reference solutions instead of tasks/")
    which.add_argument("--submission", metavar="DIR",
                       help="grade the <task id>.py files found in DIR (over the stubs)")
    which.add_argument("--submissions", metavar="DIR",
                       help="grade each subfolder of DIR; writes DIR/<student>/results.json and "
                            "DIR/summary.csv")
    which.add_argument("--make-gradescope-zip", metavar="ZIP",
                       help="build a Gradescope autograder zip instead of grading")
    parser.add_argument("--results", default="results.json", metavar="PATH",
                        help="where to write results.json (default: ./results.json)")
    parser.add_argument("--task", action="append", metavar="ID",
                        help="grade only this task (repeatable)")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                        help="time limit per test (default: 10)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="grade N tasks at the same time (default: 1)")
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
    if args.make_gradescope_zip:
        path = make_gradescope_zip(exercise_dir, args.make_gradescope_zip, args.timeout)
        print(f"wrote {path} ({len(tasks)} tasks); upload it as the assignment's autograder")
        return 0
    if args.submissions:
        return _grade_submissions(exercise_dir, Path(args.submissions), args)
    if args.submission:
        with submission_task_dir(exercise_dir, args.submission, tasks) as task_dir:
            _grade_and_report(exercise_dir, task_dir, args, Path(args.results))
        return 0
    task_dir = exercise_dir / ("solutions" if args.solutions else "tasks")
    _grade_and_report(exercise_dir, task_dir, args, Path(args.results))
    return 0


def _grade_and_report(exercise_dir, task_dir, args, results_path, label=""):
    started = time.time()

    def show_progress(task_id, task_results):
        if not args.quiet:
            score = sum(r.score for r in task_results)
            maximum = sum(r.max_score for r in task_results)
            print(f"  {label}{task_id:<32} {score:g}/{maximum:g}", flush=True)

    results = []
    try:
        results = grade_exercises(exercise_dir, task_dir, args.task, args.timeout, args.jobs,
                                  show_progress)
    finally:   # results.json is written whatever happens, even after an interruption
        write_results(results, time.time() - started, results_path)
    print(summary_text(results) if args.quiet else "\n" + table(results))
    print(f"\nresults written to {results_path}")
    return results


def _grade_submissions(exercise_dir, submissions_dir, args):
    tasks = discover_tasks(exercise_dir)
    rows = []
    for folder in student_folders(submissions_dir):
        print(f"\n== {folder.name}")
        with submission_task_dir(exercise_dir, folder, tasks) as task_dir:
            results = _grade_and_report(exercise_dir, task_dir, args, folder / "results.json")
        rows.append((folder.name, results))
    summary = write_summary_csv(rows, submissions_dir / "summary.csv")
    print(f"\n{len(rows)} submissions graded; summary in {summary}")
    return 0
