"""Every notebook runs top to bottom in the small setting, and its docs render is current.

Sources are jupytext percent-format files in ``notebooks/``; ``make notebooks`` executes them
in the full setting into ``docs/notebooks/*.ipynb`` (committed, rendered by the docs site).
Here each source is executed once with ``NUMPYRO_EBM_SMALL=1`` (any cell error fails), and
the committed render must have exactly the cells (code and text) of its source, so that the
site never shows outputs of code that has since changed.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNNER = runpy.run_path(str(ROOT / "scripts" / "execute_notebooks.py"), run_name="runner")
SOURCES = RUNNER["sources"]()


def test_there_are_notebooks_and_each_has_a_render():
    assert SOURCES, "no notebook sources in notebooks/"
    rendered = sorted(p.stem for p in RUNNER["RENDERED"].glob("*.ipynb"))
    assert rendered == sorted(s.stem for s in SOURCES), (
        "docs/notebooks/ must hold one executed render per source: run `make notebooks`")


@pytest.mark.parametrize("source", SOURCES, ids=[s.stem for s in SOURCES])
def test_render_is_current(source):
    render = nbformat.read(RUNNER["RENDERED"] / f"{source.stem}.ipynb", as_version=4)
    assert RUNNER["cell_sources"](render) == RUNNER["cell_sources"](jupytext.read(source)), (
        f"docs/notebooks/{source.stem}.ipynb is stale: run `make notebooks` "
        f"(or python scripts/execute_notebooks.py {source.stem})")
    outputs = [o for c in render.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"], "render has errors"
    assert any("image/png" in o.get("data", {}) for o in outputs), "render has no figure"


@pytest.mark.slow
@pytest.mark.parametrize("source", SOURCES, ids=[s.stem for s in SOURCES])
def test_notebook_runs_small(source, tmp_path, monkeypatch):
    monkeypatch.setenv("NUMPYRO_EBM_OUT", str(tmp_path))  # figures a notebook writes
    nb = RUNNER["execute"](source, small=True, timeout=900)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs), "no figure produced"
