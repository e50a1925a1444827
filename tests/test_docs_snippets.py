"""Every ```python block in README.md and docs/ runs (issue 15.5): docs cannot drift from code.

Blocks of one page run in order in one namespace (later blocks may use earlier names), in a
temporary working directory. A block that is deliberately partial carries a visible marker
on the line before its fence in the Markdown source::

    <!-- skip-snippet: why it cannot run on its own -->

and a block that runs but takes more than a few seconds::

    <!-- slow-snippet -->

(run only with the slow tests). Jupyter notebooks' Markdown cells are scanned the same way.

The snippets show realistic settings (thousands of steps); the test checks that they run
against today's API, not their statistical results, so it shrinks the loops: ``fit`` runs
at most ``MAX_FIT_STEPS`` steps and ``numpyro.infer.MCMC`` at most ``MAX_MCMC_DRAWS`` warmup
and sampling iterations (the examples in ``examples/`` check results at full size).
"""

from __future__ import annotations

import json
import re
import sys
import time
import types
import warnings
from pathlib import Path

import numpyro.infer
import pytest

import numpyro_ebm

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```\s*$", re.S | re.M)
MARKER = re.compile(r"<!--\s*(skip-snippet|slow-snippet)\b[^>]*-->\s*$")


def _markdown_sources() -> dict[str, str]:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    out = {str(p.relative_to(ROOT)): p.read_text() for p in pages}
    for nb in sorted([*(ROOT / "docs").rglob("*.ipynb"), *(ROOT / "examples").rglob("*.ipynb")]):
        cells = json.loads(nb.read_text()).get("cells", [])
        text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        out[str(nb.relative_to(ROOT))] = text
    return out


def _blocks(text: str) -> list[tuple[int, str, str | None]]:
    """``(line, code, marker)`` for each python block; marker from the line before the fence."""
    out = []
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = MARKER.search(before)
        out.append((line, m.group(1), mark.group(1) if mark else None))
    return out


MAX_FIT_STEPS = 30
MAX_MCMC_DRAWS = 60
_SHRUNK_KSD_WARNING = r"kernel_stein_discrepancy: the bootstrap block length"

# Pages with a block that does not run on its own today (a name used but never defined):
# the test runs them and expects exactly that failure; an entry that starts passing fails the
# test, so it gets removed. Owners fix these in this wave.
KNOWN_BROKEN: dict[str, str] = {}
# Pages whose blocks take over ~20 s on 2 cores even with the loops shrunk (compiling several
# fits): they run with the slow tests.
SLOW_PAGES = {"docs/nce.md", "docs/score-matching.md", "docs/contrastive-divergence.md",
              "docs/getting-started.md"}


def _shrink_loops(monkeypatch) -> None:
    """Cap ``fit``'s steps and MCMC's draws (see the module docstring)."""
    fit = numpyro_ebm.fit

    def small_fit(*args, **kwargs):
        if kwargs.get("num_steps") is not None:
            kwargs["num_steps"] = min(int(kwargs["num_steps"]), MAX_FIT_STEPS)
        if kwargs.get("num_epochs") is not None:
            kwargs["num_epochs"] = 1
        return fit(*args, **kwargs)

    monkeypatch.setattr(numpyro_ebm, "fit", small_fit)
    init = numpyro.infer.MCMC.__init__

    def small_mcmc(self, sampler, *, num_warmup, num_samples, **kwargs):
        init(self, sampler, num_warmup=min(num_warmup, MAX_MCMC_DRAWS),
             num_samples=min(num_samples, MAX_MCMC_DRAWS), **kwargs)

    monkeypatch.setattr(numpyro.infer.MCMC, "__init__", small_mcmc)


SOURCES = _markdown_sources()
PAGES = [p for p, t in SOURCES.items() if _blocks(t)]


def _run_page(page: str, include_slow: bool, monkeypatch) -> tuple[int, int]:
    # a real module, so that classes defined in a block (dataclasses) find their module
    module = types.ModuleType(f"snippets_{Path(page).stem.replace('-', '_')}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    namespace = module.__dict__
    ran = skipped = 0
    for line, code, mark in _blocks(SOURCES[page]):
        if mark == "skip-snippet" or (mark == "slow-snippet" and not include_slow):
            skipped += 1
            continue
        start = time.perf_counter()
        try:
            with warnings.catch_warnings():
                # _shrink_loops caps MCMC at MAX_MCMC_DRAWS draws, too few for the KSD's
                # dependent bootstrap, which then (rightly) warns that it has little power;
                # the pages' own sizes do not trigger it. Any other warning still fails.
                warnings.filterwarnings("ignore", message=_SHRUNK_KSD_WARNING,
                                        category=numpyro_ebm.NumpyroEBMWarning)
                exec(compile(code, f"{page}:{line}", "exec"), namespace)
        except Exception as err:
            raise AssertionError(f"the python block at {page}:{line} fails: "
                                 f"{type(err).__name__}: {err}") from err
        print(f"{page}:{line} ran in {time.perf_counter() - start:.1f} s")
        ran += 1
    return ran, skipped


@pytest.mark.parametrize("page", [pytest.param(p, marks=pytest.mark.slow) if p in SLOW_PAGES
                                  else p for p in PAGES])
def test_docs_snippets_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _shrink_loops(monkeypatch)
    try:
        ran, skipped = _run_page(page, include_slow=False, monkeypatch=monkeypatch)
    except AssertionError as err:
        if page in KNOWN_BROKEN and KNOWN_BROKEN[page] in str(err):
            pytest.xfail(f"known broken, owner fixes it: {err}")
        raise
    assert page not in KNOWN_BROKEN, f"{page} runs now: remove it from KNOWN_BROKEN"
    print(f"{page}: {ran} block(s) ran, {skipped} skipped by marker")


@pytest.mark.slow
@pytest.mark.parametrize("page", [p for p in PAGES if "slow-snippet" in SOURCES[p]])
def test_slow_docs_snippets_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _shrink_loops(monkeypatch)
    _run_page(page, include_slow=True, monkeypatch=monkeypatch)


def test_snippet_inventory(capsys):
    """Count the blocks: every marker sits right above a python block, few are skipped."""
    total = {"run": 0, "skip-snippet": 0, "slow-snippet": 0}
    for text in SOURCES.values():
        for _, _, mark in _blocks(text):
            total[mark or "run"] += 1
        n_markers = len(re.findall(r"<!--\s*(?:skip|slow)-snippet", text))
        assert n_markers == sum(m is not None for _, _, m in _blocks(text)), (
            "a snippet marker must be on the line right before a ```python fence")
    with capsys.disabled():
        print(f"\ndocs snippets: {total['run']} run always, {total['slow-snippet']} run with "
              f"the slow tests, {total['skip-snippet']} skipped by marker")
    assert total["run"] + total["slow-snippet"] > 0
    assert total["skip-snippet"] <= total["run"] + total["slow-snippet"]
