"""Build a Gradescope autograder zip: setup.sh, run_autograder, the exercises and minidense itself.

Gradescope unpacks the zip into /autograder/source, runs setup.sh once when building its image,
then for each submission copies the student's files to /autograder/submission and runs
run_autograder, which must leave /autograder/results/results.json behind.
"""
import zipfile
from pathlib import Path

from .. import __version__

SOURCE = "/autograder/source"

SETUP_SH = """#!/usr/bin/env bash
# Runs once, when Gradescope builds the autograder image.
set -euo pipefail
if ! command -v pip3 >/dev/null; then
    apt-get update && apt-get install -y python3 python3-pip
fi
pip3 install {install_target} "pytest>=7"
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Runs once per submission. The grader copies the student's <task id>.py files over the stubs,
# runs every task in its own process and always writes results.json.
cd {source}
python3 -m minidense grade {source}/exercises --submission /autograder/submission \\
    --results /autograder/results/results.json --timeout {timeout}
"""


def _project_root():
    """The folder with minidense's pyproject.toml, when running from a source checkout."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() else None


def _add_tree(archive, folder, prefix, skip=("__pycache__", ".pytest_cache")):
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file() and not any(part in skip for part in path.parts) \
                and path.suffix not in (".pyc", ".zip"):
            archive.write(path, f"{prefix}/{path.relative_to(folder).as_posix()}")


def _add_script(archive, name, text):
    info = zipfile.ZipInfo(name)
    info.external_attr = 0o100755 << 16          # executable regular file
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, text)


def make_gradescope_zip(exercise_dir, zip_path, timeout=10.0):
    """Write the autograder zip to ``zip_path``; returns the path."""
    root = _project_root()
    install_target = f"{SOURCE}/minidense_src" if root else f'"minidense=={__version__}"'
    zip_path = Path(zip_path)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        _add_script(archive, "setup.sh", SETUP_SH.format(install_target=install_target))
        _add_script(archive, "run_autograder",
                    RUN_AUTOGRADER.format(source=SOURCE, timeout=f"{timeout:g}"))
        _add_tree(archive, exercise_dir, "exercises")
        if root:
            for name in ("pyproject.toml", "README.md", "LICENSE"):
                if (root / name).is_file():
                    archive.write(root / name, f"minidense_src/{name}")
            _add_tree(archive, root / "minidense", "minidense_src/minidense")
    return zip_path
