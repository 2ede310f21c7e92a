"""The autograder: reference solutions score 100%, stubs 0, and misbehaving student code (hangs,
exits, stderr noise, syntax errors, renamed functions, forbidden imports) costs only its own task.

Most tests grade through the real command line (``python -m minidense grade``) in a subprocess
and read the results.json it writes.
"""
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from minidense.grading.testing import forbidden_references

ROOT = Path(__file__).resolve().parents[1]
EXERCISES = ROOT / "exercises"
TASK_IDS = ["avgpool_backward", "batchnorm_backward", "batchnorm_forward", "col2im",
            "concat_backward", "conv2d_backward", "conv2d_forward", "dense_layer_forward",
            "feature_reuse_matrix", "im2col", "maxpool_backward", "sgd_nesterov_step",
            "softmax_cross_entropy_backward", "transition_layer"]


def grade(*args, results):
    """Run the grader's command line; return (exit code, printed text, parsed results.json)."""
    command = [sys.executable, "-m", "minidense", "grade", *map(str, args), "--results",
               str(results), "--jobs", "2"]
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    return finished.returncode, finished.stdout + finished.stderr, json.loads(results.read_text())


def by_task(report):
    """{task: {test name: gradescope test entry}} from a results.json dict."""
    tasks = {}
    for entry in report["tests"]:
        task, _, test = entry["name"].partition(": ")
        tasks.setdefault(task, {})[test] = entry
    return tasks


def task_score(report, task):
    return sum(entry["score"] for entry in by_task(report)[task].values())


def assert_valid_gradescope(report):
    assert set(report) >= {"score", "max_score", "tests", "execution_time", "output"}
    for entry in report["tests"]:
        assert set(entry) == {"name", "score", "max_score", "status", "output", "visibility"}
        assert entry["status"] in ("passed", "failed")
        assert entry["visibility"] == "visible"
        assert entry["score"] == (entry["max_score"] if entry["status"] == "passed" else 0)
    assert report["score"] == sum(entry["score"] for entry in report["tests"])


# ----------------------------------------------------------------------------------------------
# The real exercises
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def solutions_report(tmp_path_factory):
    return grade(EXERCISES, "--solutions", results=tmp_path_factory.mktemp("sol") / "r.json")


@pytest.fixture(scope="module")
def stubs_report(tmp_path_factory):
    return grade(EXERCISES, results=tmp_path_factory.mktemp("stubs") / "r.json")


def test_every_task_has_a_stub_tests_and_a_solution():
    for task in TASK_IDS:
        assert (EXERCISES / "tasks" / f"{task}.py").is_file()
        assert (EXERCISES / "solutions" / f"{task}.py").is_file()
        assert (EXERCISES / "tests" / f"test_{task}.py").is_file()
    assert sorted(p.stem[5:] for p in (EXERCISES / "tests").glob("test_*.py")) == TASK_IDS


def test_solutions_score_full_marks(solutions_report):
    code, printed, report = solutions_report
    assert code == 0, printed
    assert_valid_gradescope(report)
    failed = [e["name"] + ": " + e["output"][:200] for e in report["tests"] if e["status"] != "passed"]
    assert failed == []
    assert report["score"] == report["max_score"] == 140
    assert sorted(by_task(report)) == TASK_IDS
    assert all(task_score(report, task) == 10 for task in TASK_IDS)
    assert "TOTAL" in printed and "140 / 140" in printed


def test_stubs_score_zero_with_not_implemented(stubs_report):
    code, printed, report = stubs_report
    assert code == 0, printed
    assert_valid_gradescope(report)
    assert report["score"] == 0 and report["max_score"] == 140
    assert len(report["tests"]) > 3 * len(TASK_IDS)
    for entry in report["tests"]:
        task = entry["name"].split(":")[0]
        assert entry["status"] == "failed"
        assert entry["output"].startswith(f"NotImplementedError: {task}: implement"), entry


def test_broken_batchnorm_backward_loses_exactly_its_input_gradient_tests(tmp_path):
    exercises = tmp_path / "exercises"
    shutil.copytree(EXERCISES, exercises, ignore=shutil.ignore_patterns("__pycache__"))
    solution = exercises / "solutions" / "batchnorm_backward.py"
    correct_line = ("    dx = inv_std * (centered - x_hat * (dx_hat * x_hat).mean(axis=AXES, "
                    "keepdims=True))\n")
    text = solution.read_text()
    assert correct_line in text
    solution.write_text(text.replace(correct_line, "    dx = inv_std * dx_hat\n"))  # a classic bug

    _, printed, report = grade(exercises, "--solutions", "--task", "batchnorm_backward",
                               "--task", "batchnorm_forward", results=tmp_path / "r.json")
    tasks = by_task(report)
    assert task_score(report, "batchnorm_forward") == 10
    failed = {name for name, e in tasks["batchnorm_backward"].items() if e["status"] == "failed"}
    assert failed == {"test_gradcheck_input_with_random_upstream",
                      "test_input_gradient_sums_to_zero_per_channel",
                      "test_matches_library_backward"}
    assert task_score(report, "batchnorm_backward") == 10 - 3 - 1 - 2
    assert report["score"] == 14 and report["max_score"] == 20
    assert "GradcheckError" in tasks["batchnorm_backward"][
        "test_gradcheck_input_with_random_upstream"]["output"]


def test_submissions_folder_gives_one_results_file_per_student_and_a_summary(tmp_path):
    solution = (EXERCISES / "solutions" / "sgd_nesterov_step.py").read_text()
    students = {"ada": {"sgd_nesterov_step.py": solution},
                "bob": {},                                            # submitted nothing
                "cy": {"tasks/sgd_nesterov_step.py": "from minidense.optim import SGD\n" + solution}}
    for student, files in students.items():
        for name, text in files.items():
            (tmp_path / student / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / student / name).write_text(text)
        (tmp_path / student).mkdir(exist_ok=True)

    code, printed, _ = grade(EXERCISES, "--submissions", tmp_path, "--task", "sgd_nesterov_step",
                             results=tmp_path / "ada" / "results.json")
    assert code == 0, printed
    scores = {s: json.loads((tmp_path / s / "results.json").read_text())["score"] for s in students}
    assert scores == {"ada": 10, "bob": 0, "cy": 0}
    cy = json.loads((tmp_path / "cy" / "results.json").read_text())["tests"]
    assert all(e["output"].startswith("imports the reference implementation") for e in cy)
    assert "minidense.optim.SGD (line 1)" in cy[0]["output"]
    lines = (tmp_path / "summary.csv").read_text().splitlines()
    assert lines[0] == "student,score,max_score,sgd_nesterov_step"
    assert lines[1:] == ["ada,10,10,10", "bob,0,10,0", "cy,0,10,0"]


def test_gradescope_zip_has_scripts_tests_and_the_library(tmp_path):
    finished = subprocess.run([sys.executable, "-m", "minidense", "grade", str(EXERCISES),
                               "--make-gradescope-zip", str(tmp_path / "autograder.zip")],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    with zipfile.ZipFile(tmp_path / "autograder.zip") as archive:
        names = set(archive.namelist())
        run_script = archive.read("run_autograder").decode()
        mode = archive.getinfo("run_autograder").external_attr >> 16
    assert {"setup.sh", "run_autograder", "exercises/tests/test_im2col.py",
            "exercises/tests/conftest.py", "exercises/tasks/im2col.py",
            "minidense_src/pyproject.toml", "minidense_src/minidense/grading/cli.py"} <= names
    assert not any("__pycache__" in name for name in names)
    assert mode & 0o111
    assert "--submission /autograder/submission" in run_script
    assert "/autograder/results/results.json" in run_script


# ----------------------------------------------------------------------------------------------
# Misbehaving student code, on a small made-up exercise (fast: no NumPy work)
# ----------------------------------------------------------------------------------------------
TOY_TEST = '''
from minidense.grading import points

TASK = "{task}"
FORBIDDEN = ["minidense.ops.conv"]


@points(2)
def test_add(student):
    assert student.add(1, 2) == 3


@points(1)
def test_add_negative(student):
    assert student.add(-1, -2) == -3
'''

TOY_TASKS = {
    "correct": "def add(a, b):\n    return a + b\n",
    "noisy": ("import sys\nprint('loading', file=sys.stderr)\n\n"
              "def add(a, b):\n    print('adding', a, b, file=sys.stderr)\n    print('stdout')\n"
              "    return a + b\n"),
    "sleeper": "import time\n\ndef add(a, b):\n    time.sleep(60)\n    return a + b\n",
    "stubborn": ("import time\n\ndef add(a, b):\n    while True:\n        try:\n"
                 "            time.sleep(60)\n        except BaseException:\n            pass\n"),
    "exits": "import sys\n\ndef add(a, b):\n    sys.exit(1)\n",
    "kills_process": "import os\n\ndef add(a, b):\n    os._exit(3)\n",
    "syntax_error": "def add(a, b)\n    return a + b\n",
    "renamed": "def plus(a, b):\n    return a + b\n",
    "forbidden_static": "from minidense.ops.conv import im2col\n\ndef add(a, b):\n    return a + b\n",
    "forbidden_alias": ("import minidense.ops as ops\n\ndef add(a, b):\n    ops.conv.pad2d\n"
                        "    return a + b\n"),
    "forbidden_runtime": ("def add(a, b):\n    __import__('minidense.ops.' + 'conv')\n"
                          "    return a + b\n"),
    "forbidden_import_module": ("import importlib\n\ndef add(a, b):\n"
                                "    importlib.import_module('minidense.ops.' + 'conv')\n"
                                "    return a + b\n"),
}


@pytest.fixture(scope="module")
def toy_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    exercises = root / "exercises"
    (exercises / "tests").mkdir(parents=True)
    (exercises / "tasks").mkdir()
    shutil.copy(EXERCISES / "tests" / "conftest.py", exercises / "tests")
    shutil.copy(EXERCISES / "pytest.ini", exercises)
    for task, source in TOY_TASKS.items():
        (exercises / "tests" / f"test_{task}.py").write_text(TOY_TEST.format(task=task))
        (exercises / "tasks" / f"{task}.py").write_text(source)
    (exercises / "tests" / "test_broken_test_file.py").write_text("def test_x(:\n")
    (exercises / "tasks" / "broken_test_file.py").write_text(TOY_TASKS["correct"])
    code, printed, report = grade(exercises, "--timeout", "1", results=root / "r.json")
    return code, printed, by_task(report), report


def outputs(toy_report, task):
    return [entry["output"] for entry in toy_report[2][task].values()]


def test_toy_report_is_valid_and_correct_tasks_pass(toy_report):
    code, printed, tasks, report = toy_report
    assert code == 0, printed
    assert_valid_gradescope(report)
    assert report["max_score"] == 3 * len(TOY_TASKS)
    assert report["score"] == 6       # 'correct' and 'noisy' only
    assert all(e["status"] == "passed" for e in tasks["correct"].values())


def test_stderr_and_stdout_noise_is_fine(toy_report):
    assert all(e["status"] == "passed" for e in toy_report[2]["noisy"].values())


def test_a_hang_times_out_that_task_only(toy_report):
    assert all(o.startswith("TimeLimitExceeded: timed out after 1 s") for o in
               outputs(toy_report, "sleeper"))


def test_code_that_swallows_the_time_limit_is_killed(toy_report):
    assert all(o.startswith("timed out (killed after 3 s)") for o in outputs(toy_report, "stubborn"))


def test_sys_exit_is_a_failure(toy_report):
    assert all(o.startswith("SystemExit: 1") for o in outputs(toy_report, "exits"))


def test_os_exit_fails_each_test_and_the_rest_still_run(toy_report):
    found = outputs(toy_report, "kills_process")
    assert len(found) == 2
    assert all(o.startswith("the test process ended during this test (exit code 3)") for o in found)


def test_syntax_error_and_renamed_function(toy_report):
    assert all(o.startswith("SyntaxError: expected ':' (syntax_error.py, line 1)")
               for o in outputs(toy_report, "syntax_error"))
    assert all(o.startswith("AttributeError") and "'add'" in o.splitlines()[0]
               for o in outputs(toy_report, "renamed"))


@pytest.mark.parametrize("task, name", [("forbidden_static", "minidense.ops.conv.im2col (line 1)"),
                                        ("forbidden_alias", "minidense.ops.conv.pad2d (line 4)"),
                                        ("forbidden_runtime", "minidense.ops.conv"),
                                        ("forbidden_import_module", "minidense.ops.conv")])
def test_forbidden_imports_score_zero(toy_report, task, name):
    for output in outputs(toy_report, task):
        assert output.startswith("imports the reference implementation")
        assert name in output


def test_a_broken_test_file_is_reported_not_crashed(toy_report):
    (entry,) = toy_report[2]["broken_test_file"].values()
    assert entry["status"] == "failed" and entry["max_score"] == 0


# ----------------------------------------------------------------------------------------------
# The static scan on its own
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("source, expected", [
    ("import numpy as np\nimport minidense as md\nx = md.tensor(1)\n", []),
    ("from minidense.ops import conv\nconv.im2col\n",
     [("minidense.ops.conv", 1), ("minidense.ops.conv.im2col", 2)]),
    ("import minidense as md\nmd.ops.conv.col2im\n",
     [("minidense.ops.conv", 2), ("minidense.ops.conv.col2im", 2)]),
    ("import importlib\nm = importlib.import_module('minidense.ops.conv')\n",
     [("minidense.ops.conv", 2)]),
    ("from exercises.solutions.im2col import im2col\n",
     [("exercises.solutions.im2col", 1), ("exercises.solutions.im2col.im2col", 1)]),
    ("from minidense.ops.conv import im2col as helper\n",
     [("minidense.ops.conv", 1), ("minidense.ops.conv.im2col", 1)]),
])
def test_forbidden_references(source, expected):
    forbidden = ["minidense.ops.conv", "exercises.solutions"]
    assert forbidden_references(source, forbidden) == expected
