"""Build a Gradescope autograder zip: setup.sh, run_autograder, the exercises and minidense itself.

Gradescope unpacks the zip into /autograder/source, runs setup.sh once when building its image,
then for each submission copies the student's files to /autograder/submission and runs
run_autograder, which must leave /autograder/results/results.json behind.
"""
import shutil
import zipfile
from importlib import metadata
from pathlib import Path

from .. import __version__

SETUP_SH = """#!/usr/bin/env bash
# Runs once, as root, when Gradescope builds the autograder image. Ubuntu's Python refuses a
# system-wide pip install, so minidense goes into a virtual environment.
set -euo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c "import ensurepip" 2>/dev/null; then
    apt-get update && apt-get install -y python3 python3-venv python3-pip
fi
python3 -m venv "$ROOT/venv"
# The versions the tests were run with when this zip was built (pinned: a new release cannot
# change grades between two students).
"$ROOT/venv/bin/python" -m pip install {install_target} {pins}
# The tests (and anything else of the instructor's) readable by root only: student code runs as
# an unprivileged user in a sandbox, and must not find them even where no sandbox can be made.
chmod -R go-rwx "$ROOT/source/exercises/tests" "$ROOT/source/minidense_src" 2>/dev/null || true
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Runs once per submission. The trusted grader runs the tests; the student's <task id>.py files
# run only in sandboxed workers. results.json is written whatever happens.
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
PYTHON="${{AUTOGRADER_PYTHON:-$ROOT/venv/bin/python}}"
RESULTS="$ROOT/results/results.json"
mkdir -p "$ROOT/results"
rm -f "$RESULTS"
cd "$ROOT/source" || true
"$PYTHON" -m minidense grade "$ROOT/source/exercises" --submission "$ROOT/submission" \\
    --results "$RESULTS" --timeout {timeout} --jobs 2
status=$?
if [ ! -s "$RESULTS" ]; then
    printf '{{"score": 0, "output": "The autograder could not run (exit status %s); please tell your instructor.", "tests": []}}\\n' "$status" > "$RESULTS"
fi
exit 0
"""


def _project_root():
    """The folder with minidense's pyproject.toml, when running from a source checkout."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() else None


SKIPPED = ("__pycache__", ".pytest_cache")


def _add_tree(archive, folder, prefix, skip=SKIPPED):
    for path in sorted(Path(folder).rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and not any(part in skip for part in relative.parts) \
                and path.suffix not in (".pyc", ".zip"):
            archive.write(path, f"{prefix}/{relative.as_posix()}")


def _add_script(archive, name, text):
    info = zipfile.ZipInfo(name)
    info.external_attr = 0o100755 << 16          # executable regular file
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, text)


PINNED = ("numpy", "matplotlib", "tqdm", "threadpoolctl", "pytest", "pluggy", "iniconfig",
          "packaging")


def pinned_requirements():
    """'"numpy==2.1.3" "pytest==8.3.4" ...': the installed versions of what grading uses."""
    pins = []
    for name in PINNED:
        try:
            pins.append(f'"{name}=={metadata.version(name)}"')
        except metadata.PackageNotFoundError:
            pass
    return " ".join(pins)


def make_handout(exercise_dir, handout_dir):
    """Write what students get to ``handout_dir``: the README, pytest.ini, the task stubs and
    the visible tests. Never the solutions, the hidden tests or the instructors' guide."""
    exercise_dir, handout_dir = Path(exercise_dir), Path(handout_dir)
    handout_dir.mkdir(parents=True)
    for name in ("README.md", "pytest.ini"):
        if (exercise_dir / name).is_file():
            shutil.copyfile(exercise_dir / name, handout_dir / name)
    for folder in ("tasks", "tests"):
        (handout_dir / folder).mkdir()
        for path in sorted((exercise_dir / folder).glob("*.py")):
            shutil.copyfile(path, handout_dir / folder / path.name)
    return handout_dir


def make_gradescope_zip(exercise_dir, zip_path, timeout=10.0):
    """Write the autograder zip to ``zip_path``; returns the path. The reference solutions are
    not in it: grading never needs them."""
    root = _project_root()
    install_target = '"$ROOT/source/minidense_src"' if root else f'"minidense=={__version__}"'
    zip_path = Path(zip_path)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        _add_script(archive, "setup.sh", SETUP_SH.format(install_target=install_target,
                                                         pins=pinned_requirements()))
        _add_script(archive, "run_autograder", RUN_AUTOGRADER.format(timeout=f"{timeout:g}"))
        _add_tree(archive, exercise_dir, "exercises", skip=SKIPPED + ("solutions",))
        if root:
            for name in ("pyproject.toml", "README.md", "LICENSE"):
                if (root / name).is_file():
                    archive.write(root / name, f"minidense_src/{name}")
            _add_tree(archive, root / "minidense", "minidense_src/minidense")
    return zip_path
