"""The tutorials (docs/tutorials/*.py, Jupytext percent format) run as notebooks: converted with jupytext and
executed cell by cell in a real Jupyter kernel with nbclient. Each asserts the numbers it states, so a tutorial whose
number no longer comes out fails here. The same from a shell: `python -m pytest -q tests/docs/test_tutorials.py`,
or one tutorial with `jupytext --to ipynb --execute docs/tutorials/01_assignment.py`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TUTORIALS = sorted((ROOT / "docs" / "tutorials").glob("[0-9][0-9]_*.py"))

jupytext = pytest.importorskip("jupytext", reason="the docs extra is not installed (pip install -e '.[docs]')")
nbclient = pytest.importorskip("nbclient", reason="the docs extra is not installed (pip install -e '.[docs]')")
pytest.importorskip("ipykernel", reason="no Jupyter kernel (pip install -e '.[docs]')")

NEEDS = {"03_what_goes_wrong.py": "mlplab.diagnostics"}  # a tutorial that needs a module another branch brings


def execute(path: Path, workdir: Path) -> object:
    """Run the notebook made from `path` in a fresh python3 kernel, in `workdir`; returns the executed notebook."""
    notebook = jupytext.read(path)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    env_path = os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH")) if p)
    os.environ["PYTHONPATH"] = env_path  # the kernel imports this checkout's mlplab
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    )
    return client.execute()


def test_tutorials_are_there_without_outputs() -> None:
    assert len(TUTORIALS) == 5
    for path in TUTORIALS:
        text = path.read_text(encoding="utf-8")
        assert text.startswith("# ---\n# jupyter:") and "# %% [markdown]\n# # " in text, path.name
        assert "assert " in text, f"{path.name} states numbers without checking them"


@pytest.mark.slow  # each runs a kernel and trains for real: seconds to a minute
@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs_and_its_numbers_come_out(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = NEEDS.get(path.name)
    if module:
        pytest.importorskip(module, reason=f"{path.name} needs {module}, which lands with another branch")
    monkeypatch.setenv("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", os.environ.get("OPENBLAS_NUM_THREADS", "1"))
    before = sorted(p.name for p in path.parent.iterdir())
    executed = execute(path, path.parent)  # where a reader opens it (tutorials write their runs to a temp directory)
    errors = [o for cell in executed.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    assert sorted(p.name for p in path.parent.iterdir()) == before  # nothing written beside the sources
