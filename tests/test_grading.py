"""The autograder: reference solutions score 100%, stubs 0, and misbehaving student code (hangs,
exits, stderr noise, syntax errors, renamed functions, forbidden imports) costs only its own task.
Hostile submissions have their own file (test_grading_hostile.py).

Most tests grade through the real command line (``python -m minidense grade``) in a subprocess
and read the results.json it writes.
"""
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import numpy as np

from minidense.grading import wire
from minidense.grading.student import notebook_places
from minidense.grading.testing import VISIBILITIES, forbidden_references

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
        assert entry["visibility"] in VISIBILITIES
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
                      "test_input_gradient_ignores_shift_and_scale",
                      "test_matches_library_backward", "test_hidden_one_sample_many_pixels"}
    assert task_score(report, "batchnorm_backward") == 10 - 2 - 1 - 2 - 1
    feedback = tasks["batchnorm_backward"]["test_matches_library_backward"]["output"]
    assert feedback.startswith("AssertionError: dx is wrong at index (0, 0, 0, 0): expected ")
    assert "Hint: dx misses both the mean's and the variance's dependence on x" in feedback
    assert report["score"] == 14 and report["max_score"] == 20
    assert "GradcheckError" in tasks["batchnorm_backward"][
        "test_gradcheck_input_with_random_upstream"]["output"]


def notebook(*cells):
    return json.dumps({"cells": [{"cell_type": kind, "source": source} for kind, source in cells],
                       "nbformat": 4, "nbformat_minor": 5, "metadata": {}})


def test_submissions_folder_gives_one_results_file_per_student_and_a_summary(tmp_path):
    solution = (EXERCISES / "solutions" / "sgd_nesterov_step.py").read_text()
    students = {"ada": {"sgd_nesterov_step.py": solution},
                "bob": {},                                            # submitted nothing
                "cy": {"tasks/sgd_nesterov_step.py": "from minidense.optim import SGD\n" + solution},
                "dee": {"Sgd_Nesterov_Step (1).py": solution},         # misnamed
                "_eve": {"homework.ipynb": notebook(("markdown", "# SGD"), ("code", solution))},
                "fay": {"homework.ipynb": notebook(("code", solution), ("code", "!pip install x"))}}
    for student, files in students.items():
        for name, text in files.items():
            (tmp_path / student / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / student / name).write_text(text)
        (tmp_path / student).mkdir(exist_ok=True)

    out = tmp_path / "grades"
    code, printed, _ = grade(EXERCISES, "--submissions", tmp_path, "--task", "sgd_nesterov_step",
                             "--out", out, results=out / "ada" / "results.json")
    assert code == 0, printed
    scores = {s: json.loads((out / s / "results.json").read_text())["score"] for s in students}
    assert scores == {"ada": 10, "bob": 0, "cy": 0, "dee": 0, "_eve": 10, "fay": 0}
    assert not any((tmp_path / s / "results.json").exists() for s in students)
    cy = json.loads((out / "cy" / "results.json").read_text())["tests"]
    assert all(e["output"].startswith("imports the reference implementation") for e in cy)
    assert "minidense.optim.SGD (line 1)" in cy[0]["output"]
    assert "dee: Skipped: Sgd_Nesterov_Step (1).py: did you mean sgd_nesterov_step.py?" in printed
    assert ("fay: Refused: homework.ipynb, cell 2: IPython magics and shell escapes ('!pip "
            "install x') are not accepted") in printed
    bob_lines = [line for line in printed.splitlines() if "bob" in line]
    assert bob_lines == ["  bob: No task files found: the submission holds no <task id>.py file "
                         "(e.g. im2col.py) and no notebook defining a task; every task scores 0.",
                         "== bob: 0 / 10"]
    lines = (out / "summary.csv").read_text().splitlines()
    assert lines[0] == "student,score,max_score,sgd_nesterov_step"
    assert lines[1:] == ["_eve,10,10,10", "ada,10,10,10", "bob,0,10,0", "cy,0,10,0",
                         "dee,0,10,0", "fay,0,10,0"]

    # A second run skips everyone already graded (a planted results.json in a student's own
    # folder counts for nothing); --student grades one student again, --regrade everyone.
    (tmp_path / "bob" / "sgd_nesterov_step.py").write_text(solution)
    code, printed, _ = grade(EXERCISES, "--submissions", tmp_path, "--task", "sgd_nesterov_step",
                             "--out", out, results=out / "bob" / "results.json")
    assert printed.count("already graded") == 6
    assert json.loads((out / "bob" / "results.json").read_text())["score"] == 0
    code, printed, _ = grade(EXERCISES, "--submissions", tmp_path, "--task", "sgd_nesterov_step",
                             "--out", out, "--student", "bob", results=out / "bob" / "results.json")
    assert "== bob: 10 / 10" in printed and "ada" not in printed
    assert json.loads((out / "bob" / "results.json").read_text())["score"] == 10
    assert (out / "summary.csv").read_text().splitlines()[3] == "bob,10,10,10"


def test_option_mistakes_are_one_line_and_exit_2(tmp_path):
    for options, message in [(["--student", "bob"], "--student NAME needs --submissions DIR"),
                             (["--submissions", tmp_path / "none"], "no such folder"),
                             (["--budget", "0"], "--timeout and --budget take a positive"),
                             (["--make-handout", tmp_path], "already exists; name a new folder")]:
        finished = subprocess.run([sys.executable, "-m", "minidense", "grade", str(EXERCISES),
                                   *map(str, options)], cwd=ROOT, capture_output=True, text=True,
                                  timeout=120)
        assert finished.returncode == 2 and finished.stderr.count("\n") == 1, finished.stderr
        assert message in finished.stderr


def test_the_handout_has_tasks_visible_tests_and_readme_but_no_answers(tmp_path):
    finished = subprocess.run([sys.executable, "-m", "minidense", "grade", str(EXERCISES),
                               "--make-handout", str(tmp_path / "handout")], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    files = {p.relative_to(tmp_path / "handout").as_posix()
             for p in (tmp_path / "handout").rglob("*") if p.is_file()}
    assert {"README.md", "pytest.ini", "tasks/im2col.py", "tests/test_im2col.py",
            "tests/conftest.py", "tests/given.py", "tests/forbidden_names.py"} <= files
    assert not any("solution" in f or "hidden" in f or "INSTRUCTORS" in f for f in files)
    hidden_names = {line.split("(")[0][4:] for path in (EXERCISES / "tests" / "hidden").glob("*.py")
                    for line in path.read_text().splitlines() if line.startswith("def test_")}
    handout_text = "".join((tmp_path / "handout" / f).read_text() for f in files)
    assert hidden_names and not any(name in handout_text for name in hidden_names)
    for task in TASK_IDS:
        assert (tmp_path / "handout" / "tasks" / f"{task}.py").read_bytes() == \
            (EXERCISES / "tasks" / f"{task}.py").read_bytes()


def test_every_task_has_a_hidden_test_published_after_grading():
    for task in TASK_IDS:
        hidden = (EXERCISES / "tests" / "hidden" / f"test_{task}_hidden.py").read_text()
        assert '@points(1, visibility="after_published")' in hidden, task


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
    assert not any("__pycache__" in name or "solutions" in name for name in names)
    assert mode & 0o111
    assert '--submission "$ROOT/submission"' in run_script
    assert 'RESULTS="$ROOT/results/results.json"' in run_script


def run_autograder_script(tmp_path, python, submission_files):
    """Lay out Gradescope's folders under tmp_path (as /autograder) and run run_autograder."""
    with zipfile.ZipFile(tmp_path / "autograder.zip") as archive:
        archive.extractall(tmp_path / "source")
    os.chmod(tmp_path / "source" / "run_autograder", 0o755)
    (tmp_path / "submission").mkdir()
    for name, text in submission_files.items():
        (tmp_path / "submission" / name).write_text(text)
    environment = {**os.environ, "AUTOGRADER_ROOT": str(tmp_path), "AUTOGRADER_PYTHON": python}
    finished = subprocess.run([str(tmp_path / "source" / "run_autograder")], env=environment,
                              capture_output=True, text=True, timeout=600)
    return finished, json.loads((tmp_path / "results" / "results.json").read_text())


def test_run_autograder_grades_the_submission_and_always_writes_results(tmp_path):
    subprocess.run([sys.executable, "-m", "minidense", "grade", str(EXERCISES),
                    "--make-gradescope-zip", str(tmp_path / "autograder.zip")], cwd=ROOT,
                   check=True, capture_output=True, timeout=120)
    solution = (EXERCISES / "solutions" / "im2col.py").read_text()
    for folder in ("ok", "broken"):
        (tmp_path / folder).mkdir()
        shutil.copy(tmp_path / "autograder.zip", tmp_path / folder)
    finished, report = run_autograder_script(tmp_path / "ok", sys.executable,
                                             {"im2col.py": solution})
    assert finished.returncode == 0, finished.stderr
    assert_valid_gradescope(report)
    assert task_score(report, "im2col") == 10 and report["max_score"] == 140

    finished, report = run_autograder_script(tmp_path / "broken", "/nonexistent/python", {})
    assert finished.returncode == 0
    assert report["score"] == 0 and "could not run" in report["output"]


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
    "hidden": "def add(a, b):\n    return a - b\n",
    "kills_process": "import os\n\ndef add(a, b):\n    os._exit(3)\n",
    "syntax_error": "def add(a, b)\n    return a + b\n",
    "renamed": "def plus(a, b):\n    return a + b\n",
    "forbidden_static": "from minidense.ops.conv import im2col\n\ndef add(a, b):\n    return a + b\n",
    "forbidden_alias": ("import minidense.ops as ops\n\ndef add(a, b):\n    ops.conv.pad2d\n"
                        "    return a + b\n"),
    "forbidden_runtime": ("def add(a, b):\n"
                          "    conv = __import__('minidense.ops.' + 'conv', fromlist=['x'])\n"
                          "    getattr(conv, 'im' + '2col')(None, (1, 1))\n"
                          "    return a + b\n"),
    "forbidden_import_module": ("import importlib\n\ndef add(a, b):\n"
                                "    conv = importlib.import_module('minidense.ops.' + 'conv')\n"
                                "    conv.col2im(None, None, (1, 1))\n"
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
        test = TOY_TEST.format(task=task)
        if task == "hidden":
            test = test.replace("@points(1)", "@points(1, visibility='hidden')")
        (exercises / "tests" / f"test_{task}.py").write_text(test)
        (exercises / "tasks" / f"{task}.py").write_text(source)
    (exercises / "tests" / "test_broken_test_file.py").write_text("def test_x(:\n")
    (exercises / "tasks" / "broken_test_file.py").write_text(TOY_TASKS["correct"])
    code, printed, report = grade(exercises, "--timeout", "3", results=root / "r.json")
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
    assert all(o.startswith("TimeLimitExceeded: timed out after 3 s") for o in
               outputs(toy_report, "sleeper"))


def test_code_that_swallows_the_time_limit_is_killed(toy_report):
    assert all(o.startswith("TimeLimitExceeded: timed out after 3 s")
               for o in outputs(toy_report, "stubborn"))


def test_sys_exit_is_a_failure(toy_report):
    assert all(o.startswith("SystemExit: 1") for o in outputs(toy_report, "exits"))


def test_os_exit_fails_each_test_and_the_rest_still_run(toy_report):
    found = outputs(toy_report, "kills_process")
    assert len(found) == 2
    assert all(o.startswith("the submission's process ended during this call (exit code 3)")
               for o in found)


def test_hidden_tests_carry_gradescope_visibility(toy_report):
    tests = toy_report[2]["hidden"]
    assert tests["test_add"]["visibility"] == "visible"
    assert tests["test_add_negative"]["visibility"] == "hidden"


def test_syntax_error_and_renamed_function(toy_report):
    assert all(o.startswith("SyntaxError: expected ':' (syntax_error.py, line 1)")
               for o in outputs(toy_report, "syntax_error"))
    assert all(o.startswith("AttributeError") and "'add'" in o.splitlines()[0]
               for o in outputs(toy_report, "renamed"))


@pytest.mark.parametrize("task, name", [("forbidden_static", "minidense.ops.conv.im2col (line 1)"),
                                        ("forbidden_alias", "minidense.ops.conv.pad2d (line 4)"),
                                        ("forbidden_runtime", "minidense.ops.conv.im2col is "
                                                              "switched off"),
                                        ("forbidden_import_module", "minidense.ops.conv.col2im is "
                                                                    "switched off")])
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


# ----------------------------------------------------------------------------------------------
# Grading without a sandbox says so; the wire format refuses what it must
# ----------------------------------------------------------------------------------------------
def test_grading_without_a_sandbox_says_so(tmp_path):
    code, printed, report = grade(EXERCISES, "--solutions", "--task", "im2col", "--isolation",
                                  "none", results=tmp_path / "r.json")
    assert "not isolated: grade only trusted code this way" in printed
    assert report["output"].startswith("Grading: not isolated: grade only trusted code this way")
    assert report["score"] == 10


def message_bytes(document, payload=b"", declared=None):
    text = json.dumps(document).encode()
    size = len(payload) if declared is None else declared
    return wire.HEADER.pack(wire.MAGIC, len(text), size) + text + payload


def read_bytes(data):
    read, write = os.pipe()
    os.write(write, data)
    os.close(write)
    try:
        return wire.read_message(read, deadline=None)
    finally:
        os.close(read)


def test_wire_round_trip_gives_plain_arrays():
    value = {"a": np.arange(6.0).reshape(2, 3)[:, ::2], "s": np.float32(1.5), "t": (1, "x", None),
             "d": np.float64}
    read, write = os.pipe()
    wire.write_message(write, value)
    back = wire.read_message(read, deadline=None)
    assert type(back["a"]) is np.ndarray and back["a"].flags.writeable
    np.testing.assert_array_equal(back["a"], value["a"])
    assert back["s"] == np.float32(1.5) and back["t"] == (1, "x", None) and back["d"] is np.float64


@pytest.mark.parametrize("data, message", [
    (message_bytes({"__array__": 0, "dtype": "float64", "shape": [1 << 40]}, declared=8 << 40),
     "over the limits"),
    (message_bytes({"__array__": 0, "dtype": "object", "shape": [1]}, b"\0" * 8), "malformed array"),
    (message_bytes({"__array__": 0, "dtype": "float64", "shape": [3]}, b"\0" * 8),
     "do not add up"),
    (message_bytes({"__pickle__": "gASV"}), "unknown entry"),
    (wire.HEADER.pack(wire.MAGIC, 20000, 0) + b"[" * 10000 + b"]" * 10000, "not valid JSON"),
    (message_bytes([[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]),
     "nested more than"),
    (b"PKL1" + b"\0" * 16, "message marker"),
])
def test_wire_refuses_malformed_or_oversized_messages(data, message):
    with pytest.raises(wire.WireError, match=message):
        read_bytes(data)


def test_wire_reports_a_vanished_worker():
    with pytest.raises(EOFError):
        read_bytes(message_bytes([1])[:10])


def test_a_grader_installed_in_a_virtual_environment_under_tmp_sees_its_packages(tmp_path):
    """The box has a private /tmp; a Python living under /tmp (a venv there, as on many CI
    machines) must stay visible in it, so a module the student imports late still loads."""
    if not str(tmp_path).startswith("/tmp/"):
        pytest.skip("the temporary folder is not under /tmp here")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
                    str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site_packages = subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"],
                                   capture_output=True, text=True, check=True).stdout.strip()
    Path(site_packages, "late_import_probe.py").write_text("def add(a, b):\n    return a + b\n")
    exercises = tmp_path / "exercises"
    (exercises / "tests").mkdir(parents=True)
    (exercises / "tasks").mkdir()
    shutil.copy(EXERCISES / "tests" / "conftest.py", exercises / "tests")
    shutil.copy(EXERCISES / "pytest.ini", exercises)
    (exercises / "tests" / "test_late.py").write_text(TOY_TEST.format(task="late"))
    (exercises / "tasks" / "late.py").write_text(
        "def add(a, b):\n    import late_import_probe\n    return late_import_probe.add(a, b)\n")
    results = tmp_path / "r.json"
    finished = subprocess.run([str(python), "-m", "minidense", "grade", str(exercises),
                               "--results", str(results)], cwd=ROOT, capture_output=True,
                              text=True, timeout=300)
    report = json.loads(results.read_text())
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert report["score"] == 3, [entry["output"] for entry in report["tests"]]


def test_the_time_budget_ends_a_slow_submission(tmp_path):
    exercises = tmp_path / "exercises"
    (exercises / "tests").mkdir(parents=True)
    (exercises / "tasks").mkdir()
    shutil.copy(EXERCISES / "tests" / "conftest.py", exercises / "tests")
    tests = "".join(f"\n\n@points(1)\ndef test_call_{i}(student):\n    student.add(1, 2)\n"
                    for i in range(6))
    (exercises / "tests" / "test_slow.py").write_text(
        f"from minidense.grading import points\n\nTASK = 'slow'\n{tests}")
    (exercises / "tasks" / "slow.py").write_text(
        "import time\ntime.sleep(1)\n\ndef add(a, b):\n    time.sleep(600)\n")
    code, printed, report = grade(exercises, "--timeout", "1", "--budget", "4",
                                  results=tmp_path / "r.json")
    reasons = [entry["output"] for entry in report["tests"]]
    assert report["score"] == 0 and len(reasons) == 6
    budget = "not run: the submission's time budget (--budget) was used up"
    assert all(r == budget or r.startswith("TimeLimitExceeded: timed out after 1 s")
               for r in reasons), reasons
    assert reasons[-1] == budget


def test_a_notebook_error_names_its_cell_and_line(tmp_path):
    task_file = tmp_path / "im2col.py"
    task_file.write_text("def im2col():\n    raise NotImplementedError\n\n"
                         "# --- homework.ipynb, cell 2 ---\nimport numpy\n\n"
                         "# --- homework.ipynb, cell 4 ---\ndef im2col():\n    return oops\n")
    where = "im2col.py, line 9, in im2col: return oops\nother.py, line 9, in f: x"
    assert notebook_places(where, task_file) == ("homework.ipynb, cell 4, line 2, in im2col: "
                                                 "return oops\nother.py, line 9, in f: x")
    assert notebook_places("im2col.py, line 2, in im2col: raise", task_file) == \
        "im2col.py, line 2, in im2col: raise"                  # the stub's own lines stay
