"""Hostile submissions: each folder of tests/hostile_submissions tries one way to forge a grade or
harm the grader (its docstring says which). All are graded in one ``--submissions`` run beside
an honest student; none may score on the task it did not implement, and the grader must come out
unchanged: exercises/ and the library byte-identical, no planted file, no surviving process, no
secret of the grader's environment in any output, no network connection, everyone graded.
"""
import csv
import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXERCISES = ROOT / "exercises"
CORPUS = Path(__file__).resolve().parent / "hostile_submissions"
MARK = "MINIDENSE_HOSTILE_MARK"
ATTACKS = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the grader's sandbox is built on Linux namespaces")


def tree_digest(folder):
    """SHA-256 over every file's path and bytes (caches left out)."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and ".pytest_cache" not in path.parts:
            digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def planted_files():
    found = []
    for top in (ROOT, Path("/tmp"), Path.home()):
        for folder, folders, files in os.walk(top):
            folders[:] = [f for f in folders if f not in (".git", "proc")]
            found += [os.path.join(folder, f) for f in files if f.startswith(MARK)]
    return found


def marked_processes():
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if MARK.encode() in cmdline.read_bytes():
                found.append(cmdline.parent.name)
        except OSError:
            pass
    return found


class Listener:
    """A TCP port on this machine that records whoever connects."""

    def __init__(self):
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen()
        self.server.settimeout(0.2)
        self.port, self.connections, self.running = self.server.getsockname()[1], [], True
        self.thread = threading.Thread(target=self.accept, daemon=True)
        self.thread.start()

    def accept(self):
        while self.running:
            try:
                self.connections.append(self.server.accept()[1])
            except OSError:
                pass

    def close(self):
        self.running = False
        self.thread.join()
        self.server.close()


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade the corpus (task im2col) beside an honest student; return what came out."""
    root = tmp_path_factory.mktemp("hostile")
    submissions = root / "submissions"
    shutil.copytree(CORPUS, submissions)
    (submissions / "zz_honest").mkdir(exist_ok=True)
    shutil.copy(EXERCISES / "solutions" / "im2col.py", submissions / "zz_honest" / "im2col.py")
    (submissions / "symlink_to_solution" / "im2col.py").symlink_to(
        EXERCISES / "solutions" / "im2col.py")
    listener = Listener()
    network = submissions / "network_call" / "im2col.py"
    network.write_text(network.read_text().replace("PORT = 0", f"PORT = {listener.port}"))
    secret = f"secret-{secrets.token_hex(8)}"
    before = {"exercises": tree_digest(EXERCISES), "library": tree_digest(ROOT / "minidense")}
    out = root / "grades"
    environment = {**os.environ, "MINIDENSE_GRADER_SECRET": secret}
    finished = subprocess.run(
        [sys.executable, "-m", "minidense", "grade", str(EXERCISES), "--submissions",
         str(submissions), "--out", str(out), "--task", "im2col", "--jobs", "2", "--timeout", "5"],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=900)
    listener.close()
    results = {student: json.loads((out / student / "results.json").read_text())
               for student in ATTACKS + ["zz_honest"] if (out / student / "results.json").exists()}
    return {"finished": finished, "results": results, "secret": secret, "out": out,
            "before": before, "connections": listener.connections, "submissions": submissions}


def test_the_run_ends_well_and_grades_everyone(graded):
    finished = graded["finished"]
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    assert sorted(graded["results"]) == sorted(ATTACKS + ["zz_honest"])
    with open(graded["out"] / "summary.csv", newline="") as file:
        rows = {row["student"]: row for row in csv.DictReader(file)}
    assert sorted(rows) == sorted(ATTACKS + ["zz_honest"])
    assert rows["zz_honest"]["score"] == "10"


# What an attack may keep: an array of the right shape earns the shape test's points, honestly.
EARNED = {"tamper_with_the_inputs": {"im2col: test_output_shape"},
          "object_posing_as_an_array": {"im2col: test_output_shape"}}


@pytest.mark.parametrize("attack", ATTACKS)
def test_attack_scores_nothing(graded, attack):
    report = graded["results"][attack]
    passed = {t["name"] for t in report["tests"] if t["status"] == "passed"}
    assert passed == EARNED.get(attack, set()), [
        (t["name"], t["output"][:300]) for t in report["tests"] if t["status"] == "passed"]
    assert report["max_score"] == 10


def test_the_honest_student_gets_full_marks(graded):
    report = graded["results"]["zz_honest"]
    assert report["score"] == 10, [t["output"][:300] for t in report["tests"]]


def test_exercises_and_library_are_unchanged(graded):
    assert tree_digest(EXERCISES) == graded["before"]["exercises"]
    assert tree_digest(ROOT / "minidense") == graded["before"]["library"]


def test_no_planted_file_and_no_surviving_process(graded):
    assert planted_files() == []
    assert marked_processes() == []


def test_no_secret_in_any_output(graded):
    finished, secret = graded["finished"], graded["secret"]
    assert secret not in finished.stdout + finished.stderr
    for path in graded["out"].rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(errors="replace"), path


def test_no_network_connection(graded):
    assert graded["connections"] == []


def test_library_shortcuts_are_switched_off_and_zero_the_task(graded):
    for attack in ("reach_library_through_sys_modules", "reach_library_through_gc"):
        outputs = [t["output"] for t in graded["results"][attack]["tests"]]
        assert all(o.startswith("imports the reference implementation") for o in outputs)
        assert "asks you to write im2col yourself" in outputs[0]


def test_a_symlink_is_refused_with_a_reason(graded):
    report = graded["results"]["symlink_to_solution"]
    assert "im2col.py is a symbolic link; submit the file itself" in report["output"]


def test_the_reports_say_how_the_code_was_isolated(graded):
    assert all(r["output"].startswith("Grading: ") for r in graded["results"].values())
    if os.geteuid() == 0:
        assert graded["results"]["zz_honest"]["output"].startswith("Grading: isolated")
