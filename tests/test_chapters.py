"""Execute every chapter notebook in smoke mode (MINIDENSE_SMOKE=1), one test per notebook.

The notebooks carry their own checks as ``assert`` statements (hand-derived gradients, the
worked dense-layer example, parameter counts against the paper, ...), so a notebook that runs
to the end without an error has passed them. Each notebook runs in a temporary directory, so
anything it writes (``runs/...``) never lands in the repository.
"""
import os
import shutil
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="chapter tests need nbformat (pip install -e '.[test]')")
nbclient = pytest.importorskip("nbclient", reason="chapter tests need nbclient (pip install -e '.[test]')")
pytest.importorskip("ipykernel", reason="chapter tests need ipykernel (pip install -e '.[test]')")

CHAPTERS = Path(__file__).resolve().parent.parent / "chapters"
REPO = CHAPTERS.parent
NOTEBOOKS = sorted(CHAPTERS.glob("[0-9][0-9]_*.ipynb"))
CELL_TIMEOUT = 300   # seconds per cell; smoke mode needs far less
INLINE = "module://matplotlib_inline.backend_inline"      # what Jupyter shows figures with
FIGURE_MARK = "@@minidense-test figures-created"

# Run first, in the kernel, before the notebook's own cells: after every cell (when the inline
# backend has already shown and closed that cell's figures) print how many pyplot figures the cell
# created and which backend is active. Every figure enters pyplot through one place,
# Gcf._set_new_active_manager, so counting there sees figures closed or lost inside the cell too.
FIGURE_PROBE = f"""
import matplotlib
import matplotlib._pylab_helpers as _md_helpers
from IPython import get_ipython
_md_created = []
_md_adopt = _md_helpers.Gcf._set_new_active_manager.__func__
def _md_counting_adopt(cls, manager):
    _md_created.append(manager.num)
    return _md_adopt(cls, manager)
_md_helpers.Gcf._set_new_active_manager = classmethod(_md_counting_adopt)
def _md_report(result):
    print("\\n{FIGURE_MARK}", len(_md_created), matplotlib.get_backend())
    _md_created.clear()
get_ipython().events.register("post_run_cell", _md_report)
"""


def test_all_twelve_chapters_exist():
    numbers = [int(p.name[:2]) for p in NOTEBOOKS]
    assert numbers == list(range(1, 13)), f"expected chapters 01..12, found {[p.name for p in NOTEBOOKS]}"


def test_notebooks_are_stored_without_outputs():
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        dirty = [i for i, cell in enumerate(nb.cells)
                 if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count"))]
        assert not dirty, f"{path.name}: code cells {dirty} have outputs; clear them before committing"


def _kernel_available():
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    try:
        KernelSpecManager().get_kernel_spec("python3")
        return True
    except NoSuchKernel:
        return False


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_chapter_runs_in_smoke_mode(path, tmp_path, monkeypatch):
    if not _kernel_available():
        pytest.skip("no 'python3' Jupyter kernel is installed (pip install ipykernel)")
    monkeypatch.setenv("MINIDENSE_SMOKE", "1")
    monkeypatch.setenv("MPLBACKEND", INLINE)     # as in Jupyter, so a figure that is not shown counts
    # the kernel must import this checkout of minidense, whatever the current directory is
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    # a multi-threaded BLAS fighting other processes for the cores slows NumPy down many times
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MKL_NUM_THREADS", "1")
    work = tmp_path / "chapters"
    work.mkdir()
    shutil.copy(path, work / path.name)
    nb = nbformat.read(work / path.name, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(FIGURE_PROBE))
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(work)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as error:
        pytest.fail(f"{path.name} failed in smoke mode:\n{error}", pytrace=False)
    errors = [out for cell in nb.cells if cell.cell_type == "code"
              for out in cell.get("outputs", []) if out.get("output_type") == "error"]
    assert not errors, f"{path.name}: {errors[0].get('ename')}: {errors[0].get('evalue')}"
    lost = [problem for number, cell in enumerate(nb.cells[1:], start=1)
            if cell.cell_type == "code" for problem in _figures_not_shown(cell, number)]
    assert not lost, f"{path.name}: " + "; ".join(lost)


def _figures_not_shown(cell, number):
    """Problems with cell ``number``'s figures: fewer PNG images shown than pyplot figures created,
    or a backend other than the inline one (which would show nothing from then on)."""
    text = "".join(out.get("text", "") for out in cell.get("outputs", [])
                   if out.get("output_type") == "stream" and out.get("name") == "stdout")
    marks = [line.split()[-2:] for line in text.splitlines() if line.startswith(FIGURE_MARK)]
    if not marks:
        return [f"cell {number} printed no figure count (did the probe run?)"]
    created, backend = int(marks[-1][0]), marks[-1][1]
    shown = sum("image/png" in out.get("data", {}) for out in cell.get("outputs", [])
                if out.get("output_type") in ("display_data", "execute_result"))
    problems = []
    if backend != INLINE:
        problems.append(f"after cell {number} matplotlib's backend is {backend!r}, not the "
                        "inline one, so later figures are never shown")
    if shown < created:
        problems.append(f"cell {number} created {created} figure(s) but shows {shown} "
                        "(a figure closed or lost before Jupyter displayed it)")
    return problems
