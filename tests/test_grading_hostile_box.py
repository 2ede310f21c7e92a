"""The second hostile corpus (tests/hostile_submissions_2), graded in one ``--submissions`` run
over several tasks beside an honest and a partial student: keyrings (theft, planting, a relay
between workers), forwards and weights the student controls, self-comparison, escape codes and
spreadsheet formulas in names and messages, the box's configuration. Then the box itself: a uid
per live worker, memory bounded for the box as a whole, no keyring reachable, a private checkout.
"""
import csv
import ctypes
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from minidense.grading.sandbox import Worker, cgroup_parents, isolation_level
from minidense.grading import student as remote

ROOT = Path(__file__).resolve().parents[1]
EXERCISES = ROOT / "exercises"
CORPUS = Path(__file__).resolve().parent / "hostile_submissions_2"
TASKS = ["im2col", "conv2d_forward", "avgpool_backward", "batchnorm_backward",
         "softmax_cross_entropy_backward", "dense_layer_forward", "feature_reuse_matrix"]
# Folder names that are attacks themselves: a formula, escape codes, a newline, a leading '_'.
RENAMED = {"linear_given_forward": '=HYPERLINK("evil.example","x")',
           "self_consistent_matrix": "@SUM(1+1)", "keyring_thief": "+thief",
           "terminal_escapes": "\x1b[2J\x1b[Hescapes", "keyring_relay_client": "new\nline",
           "honest": "_honest", "partial": "-partial"}
# What an attack may keep: tests that check only shapes or names give their points honestly.
EARNED = {"softmax_cross_entropy_backward: test_shape",
          "dense_layer_forward: test_output_shape",
          "dense_layer_forward: test_input_channels_come_first",
          "dense_layer_forward: test_parameter_names_and_shapes",
          "feature_reuse_matrix: test_shape_and_mask"}

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the grader's sandbox is built on Linux")

libc = ctypes.CDLL(None, use_errno=True)
ADD_KEY, KEYCTL = {"x86_64": (248, 250), "aarch64": (217, 219)}.get(os.uname().machine, (0, 0))
SESSION = -3


def keyctl(*args):
    return libc.syscall(*[a if isinstance(a, (bytes, type(None), ctypes.Array)) else
                          ctypes.c_long(a) for a in (KEYCTL, *args)])


def session_keyring_with_a_secret(secret):
    """Join a fresh session keyring (inherited by the grader) holding one key; its id, or None
    where this kernel has no keyrings."""
    if not KEYCTL or keyctl(1, None) < 0:                 # KEYCTL_JOIN_SESSION_KEYRING
        return None
    key = libc.syscall(ctypes.c_long(ADD_KEY), b"user", b"minidense-secret", secret,
                       ctypes.c_long(len(secret)), ctypes.c_long(SESSION))
    return key if key > 0 else None


def read_key(key):
    buffer = ctypes.create_string_buffer(4096)
    size = keyctl(11, key, buffer, 4096)                  # KEYCTL_READ
    return buffer.raw[:size] if size >= 0 else None


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile2")
    submissions = root / "submissions"
    for folder in sorted(p for p in CORPUS.iterdir() if p.is_dir()):
        shutil.copytree(folder, submissions / RENAMED.get(folder.name, folder.name))
    (submissions / RENAMED["honest"]).mkdir()
    for task in TASKS:
        shutil.copy(EXERCISES / "solutions" / f"{task}.py", submissions / RENAMED["honest"])
    (submissions / RENAMED["partial"]).mkdir()
    for task in ("im2col", "feature_reuse_matrix"):
        shutil.copy(EXERCISES / "solutions" / f"{task}.py", submissions / RENAMED["partial"])
    secret = b"instructor-token-" + os.urandom(6).hex().encode()
    key = session_keyring_with_a_secret(secret)
    out = root / "grades"
    finished = subprocess.run(
        [sys.executable, "-m", "minidense", "grade", str(EXERCISES), "--submissions",
         str(submissions), "--out", str(out), *[a for t in TASKS for a in ("--task", t)],
         "--jobs", "2", "--timeout", "5"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    results = {folder.name: json.loads((folder / "results.json").read_text())
               for folder in out.iterdir() if (folder / "results.json").is_file()}
    ring = ctypes.create_string_buffer(4096)
    ring_size = keyctl(11, SESSION, ring, 4096) if key else -1
    return {"finished": finished, "results": results, "out": out, "secret": secret, "key": key,
            "key_after": read_key(key) if key else None,
            "ring_after": ring.raw[:max(ring_size, 0)]}


def passed(report):
    return {t["name"] for t in report["tests"] if t["status"] == "passed"}


def outputs(report):
    return "\n".join(t["output"] for t in report["tests"])


def test_everyone_is_graded_and_the_honest_and_partial_students_get_their_due(graded):
    assert graded["finished"].returncode == 0, graded["finished"].stderr[-3000:]
    assert len(graded["results"]) == len(list(CORPUS.glob("*/"))) + 2
    assert graded["results"][RENAMED["honest"]]["score"] == 70
    assert graded["results"][RENAMED["partial"]]["score"] == 20


@pytest.mark.parametrize("attack", sorted(p.name for p in CORPUS.iterdir() if p.is_dir()))
def test_attack_scores_only_what_shape_tests_give(graded, attack):
    report = graded["results"][RENAMED.get(attack, attack)]
    assert passed(report) <= EARNED, sorted(passed(report) - EARNED)


def test_the_trusted_side_builds_forwards_and_pushes_weights(graded):
    linear = graded["results"][RENAMED["linear_given_forward"]]
    assert passed(linear) == {"softmax_cross_entropy_backward: test_shape"}
    nan_layer = {t["name"]: t for t in graded["results"]["nan_weights_layer"]["tests"]}
    assert nan_layer["dense_layer_forward: test_matches_library_layer"]["output"].startswith(
        "AssertionError: the output in training mode is wrong at index")


def test_keyrings_are_closed_and_the_grader_keys_unchanged(graded):
    if graded["key"] is None:
        pytest.skip("this kernel has no keyrings")
    assert graded["key_after"] == graded["secret"]
    assert graded["ring_after"] == ctypes.c_int32(graded["key"]).value.to_bytes(4, sys.byteorder,
                                                                                 signed=True)
    thief = outputs(graded["results"][RENAMED["keyring_thief"]])
    assert "STOLEN" not in thief
    assert "keyrings: [('search', -1, 1), ('plant', (-1, 1)), ('plant', (-1, 1)), " \
           "('persistent', -1, 1)]" in thief
    client = graded["results"][RENAMED["keyring_relay_client"]]
    assert "relay client: add_key errno 1" in outputs(client)
    assert "relay server: keyctl errno 1" in outputs(graded["results"]["keyring_relay_server"])


def test_the_box_configuration_is_not_on_any_command_line(graded):
    seen = next(t["output"] for t in graded["results"]["read_own_command_line"]["tests"]
                if t["name"].startswith("im2col:"))
    assert seen.startswith("RuntimeError: SEEN ") and "python -I -c" in seen
    for leak in ("minidense-worker-", "minidense-submission-", '"plan"', '"uid"', "submission"):
        assert leak not in seen, leak


def test_no_secret_and_no_escape_code_reaches_any_output(graded):
    printed = graded["finished"].stdout + graded["finished"].stderr
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", printed)
    student_lines = [line for line in printed.splitlines() if line.startswith("== ")]
    assert len(student_lines) == len(graded["results"])
    assert all(re.fullmatch(r"== .+: \d+ / 70", line) for line in student_lines)
    for path in graded["out"].rglob("*"):
        if path.is_file():
            assert graded["secret"] not in path.read_bytes(), path


def test_summary_csv_cells_are_never_formulas(graded):
    with open(graded["out"] / "summary.csv", newline="") as file:
        rows = list(csv.reader(file))
    names = [row[0] for row in rows[1:]]
    assert "'" + RENAMED["linear_given_forward"] in names
    assert "'@SUM(1+1)" in names and "'+thief" in names and "'-partial" in names
    assert "\\x1b[2J\\x1b[Hescapes" in names and "new\\nline" in names and "_honest" in names
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows
                   for cell in row)


def test_a_single_submission_table_escapes_and_locates_the_error(tmp_path):
    finished = subprocess.run(
        [sys.executable, "-m", "minidense", "grade", str(EXERCISES), "--submission",
         str(CORPUS / "terminal_escapes"), "--task", "im2col", "--results",
         str(tmp_path / "r.json")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", finished.stdout)
    assert "failed  \\x1b[2J\\x1b[HPassed:\n" in finished.stdout     # the first line, escaped
    assert "at im2col.py, line 13, in im2col: raise Passed(" in finished.stdout


# ----------------------------------------------------------------------------------------------
# The box, directly
# ----------------------------------------------------------------------------------------------
PROBE = '''
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)

def uid():
    return os.getuid()

def keyring_calls():
    numbers = {"x86_64": (248, 249, 250), "aarch64": (217, 218, 219)}[os.uname().machine]
    errors = []
    for number, args in zip(numbers, [(b"user", b"k", b"v", 1, -3), (b"user", b"k", None, -3),
                                      (0, -3, 0)]):
        result = libc.syscall(ctypes.c_long(number), *[a if isinstance(a, (bytes, type(None)))
                                                      else ctypes.c_long(a) for a in args])
        errors.append((result, ctypes.get_errno()))
    return errors

def read_other_boxes():
    """The task files of other boxes this worker could read (at the uid level /tmp is shared)."""
    import glob
    own = os.path.dirname(os.getcwd())
    found = []
    for path in glob.glob("/tmp/minidense-worker-*/submission/*.py"):
        if not path.startswith(own + "/"):
            try:
                open(path).close()
                found.append(path)
            except OSError:
                pass
    return found

def hold_memory_in_children(children, megabytes):
    """Fork children that each fill ``megabytes`` and keep it; how many hold it at the end."""
    import struct, time
    read, write = os.pipe()
    for _ in range(children):
        if os.fork() == 0:
            block = bytearray(megabytes << 20)
            for i in range(0, len(block), 4096):
                block[i] = 1
            os.write(write, struct.pack("i", os.getpid()))
            time.sleep(30)
    os.close(write)
    time.sleep(4)
    os.set_blocking(read, False)
    try:
        data = os.read(read, 4 * children)
    except BlockingIOError:
        data = b""
    filled = [struct.unpack_from("i", data, 4 * i)[0] for i in range(len(data) // 4)]
    return sum(os.waitpid(pid, os.WNOHANG) == (0, 0) for pid in filled)   # still alive
'''


@pytest.fixture
def probe_dir(tmp_path):
    (tmp_path / "probe.py").write_text(PROBE)
    return tmp_path


def start(probe_dir, limits=None, isolation=None):
    session = remote.Session("probe", probe_dir, [], isolation or isolation_level(),
                             remote.TestClock(), limits)
    return session, remote.RemoteObject(session, None, "module")


@pytest.mark.skipif(os.geteuid() != 0, reason="worker uids are given as root")
def test_live_workers_of_one_grader_have_uids_of_their_own(probe_dir):
    first, second = start(probe_dir), start(probe_dir)
    try:
        assert first[1].uid() != second[1].uid()
        assert {first[1].uid(), second[1].uid()} <= set(range(64000, 65000))
    finally:
        first[0].stop(), second[0].stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="the uid level needs root")
def test_at_the_uid_level_a_worker_cannot_read_another_box(probe_dir):
    first, second = start(probe_dir, isolation="uid"), start(probe_dir, isolation="uid")
    try:
        second[1].uid()                                  # started, with its task file copied
        assert first[1].read_other_boxes() == []
    finally:
        first[0].stop(), second[0].stop()


@pytest.mark.parametrize("isolation", ["namespaces", "user-namespaces", "uid", "none"])
def test_no_keyring_call_reaches_the_kernel(probe_dir, isolation):
    if os.uname().machine not in ("x86_64", "aarch64"):
        pytest.skip("the keyring filter knows x86_64 and aarch64")
    if "namespaces" in isolation and isolation_level() not in ("namespaces", "user-namespaces"):
        pytest.skip("this machine refuses namespaces")
    if isolation in ("namespaces", "uid") and os.geteuid() != 0:
        pytest.skip("this level runs as root")
    session, probe = start(probe_dir, isolation=isolation)
    try:
        assert probe.keyring_calls() == [(-1, 1), (-1, 1), (-1, 1)]      # EPERM, all three
    finally:
        session.stop()


def test_memory_is_bounded_for_the_box_as_a_whole(probe_dir):
    if isolation_level() not in ("namespaces", "uid") or not cgroup_parents():
        pytest.skip("no cgroup can be made here: memory is limited per process only")
    session, probe = start(probe_dir, limits={"memory": 768 << 20})
    try:
        assert probe.hold_memory_in_children(1, 300) == 1     # one child alone may hold 300 MB
    finally:
        session.stop()
    session, probe = start(probe_dir, limits={"memory": 768 << 20})
    try:
        holding = probe.hold_memory_in_children(4, 300)  # 1.2 GB in all: not in one box
    except Exception:                                    # the worker itself was killed: bounded
        holding = 0
    finally:
        session.stop()
    assert holding <= 2


def test_grading_from_a_private_checkout(tmp_path):
    """The library and the exercises in a folder only root may enter (mode 0700, like root's
    home in a container): at every level the worker still reads what it grades."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    for folder in ("minidense", "exercises"):
        shutil.copytree(ROOT / folder, private / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    environment = {**os.environ, "PYTHONPATH": str(private)}
    for level in ("uid", "none"):
        finished = subprocess.run(
            [sys.executable, "-m", "minidense", "grade", "exercises", "--solutions", "--task",
             "im2col", "--isolation", level, "--quiet", "--results", str(tmp_path / "r.json")],
            cwd=private, env=environment, capture_output=True, text=True, timeout=300)
        report = json.loads((tmp_path / "r.json").read_text())
        assert report["score"] == 10, (level, finished.stdout[-2000:])
