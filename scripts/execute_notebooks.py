"""Execute the notebooks (jupytext percent-format sources in ``notebooks/``) into ``.ipynb``.

    python scripts/execute_notebooks.py                 # full setting -> docs/notebooks/
    python scripts/execute_notebooks.py --small --out /tmp/nb digits_prior

The sources ``notebooks/*.py`` are what is reviewed; the executed notebooks (outputs and
figures) are generated from them. ``make notebooks`` runs the full setting and writes
``docs/notebooks/*.ipynb``, which are committed and which the docs site renders as they are
(mkdocs-jupyter with ``execute: false``): CI never runs a notebook twice. ``make test`` runs
every notebook once in the small setting (``NUMPYRO_EBM_SMALL=1``, tests/test_notebooks.py)
and checks that each committed render has the same code as its source.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "notebooks"
RENDERED = ROOT / "docs" / "notebooks"
SMALL_ENV = "NUMPYRO_EBM_SMALL"


def sources() -> list[Path]:
    """The notebook sources, in reading order (file names start with their number)."""
    return sorted(p for p in SOURCES.glob("*.py") if not p.name.startswith("_"))


def cell_sources(nb: nbformat.NotebookNode) -> list[tuple[str, str]]:
    """Type and source of every cell (what a committed render must share with its source)."""
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def _drop_noise(nb: nbformat.NotebookNode) -> None:
    """Remove tqdm's notice that ipywidgets is missing (stderr noise, not an output)."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not (
                o.get("name") == "stderr" and "TqdmWarning" in o.get("text", ""))]


def execute(source: Path, *, small: bool, timeout: int = 1800) -> nbformat.NotebookNode:
    """Run one notebook source top to bottom in a fresh kernel; raise on any cell error.

    The kernel runs in the repository root with the repository on ``PYTHONPATH`` and
    ``NUMPYRO_EBM_SMALL`` set to ``1`` (small) or ``0`` (full).
    """
    nb = jupytext.read(source)
    nb.metadata.pop("jupytext", None)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    saved = {k: os.environ.get(k) for k in (SMALL_ENV, "PYTHONPATH", "MPLBACKEND")}
    os.environ[SMALL_ENV] = "1" if small else "0"
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT)] + ([saved["PYTHONPATH"]] if saved["PYTHONPATH"] else []))
    os.environ.pop("MPLBACKEND", None)  # the kernel's inline backend shows the figures
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(ROOT)}},
                                record_timing=False)
        client.execute()
        _drop_noise(nb)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


def refresh_text(source: Path, render: Path) -> None:
    """Copy the text cells of ``source`` into an executed ``render`` whose code is the same.

    Outputs depend only on the code, so an edit to the prose needs no re-execution; a code
    change does (``ValueError`` here).
    """
    nb, new = nbformat.read(render, as_version=4), jupytext.read(source)
    code = lambda n: [c.source.strip() for c in n.cells if c.cell_type == "code"]  # noqa: E731
    if code(nb) != code(new):
        raise ValueError(f"{render.name}: the code changed since it was executed; re-run it")
    outputs = iter([c for c in nb.cells if c.cell_type == "code"])
    cells = []
    for cell in new.cells:
        cells.append(next(outputs) if cell.cell_type == "code" else cell)
    nb.cells = cells
    nbformat.write(nb, render)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="notebook names (default: all)")
    ap.add_argument("--small", action="store_true", help="the small setting (as in CI)")
    ap.add_argument("--out", type=Path, default=RENDERED, help="where the .ipynb go")
    ap.add_argument("--text-only", action="store_true",
                    help="only copy edited text cells into the existing renders (no run)")
    args = ap.parse_args(argv)
    todo = [s for s in sources() if not args.names or s.stem in args.names
            or any(s.stem.startswith(n) for n in args.names)]
    if not todo:
        sys.exit(f"no notebook matches {args.names}; have {[s.stem for s in sources()]}")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.text_only:
        for src in todo:
            refresh_text(src, args.out / f"{src.stem}.ipynb")
            print(f"{src.name}: text refreshed in {args.out / src.stem}.ipynb")
        return
    for src in todo:
        t0 = time.perf_counter()
        nb = execute(src, small=args.small)
        dest = args.out / f"{src.stem}.ipynb"
        nbformat.write(nb, dest)
        print(f"{src.name}: executed in {time.perf_counter() - t0:.0f} s -> {dest}")


if __name__ == "__main__":
    main()
