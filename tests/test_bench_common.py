"""Benchmark result files: a run on an accelerator adds ``<name>_gpu`` files beside the CPU
ones (it never overwrites them), and the scorecard lists them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import _common  # noqa: E402
import scorecard  # noqa: E402


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    results, docs = tmp_path / "results", tmp_path / "docs"
    monkeypatch.setattr(_common, "RESULTS", results)
    monkeypatch.setattr(_common, "DOCS", docs)
    monkeypatch.setattr(scorecard, "RESULTS", results)
    return results, docs


def test_cpu_and_gpu_runs_write_separate_files(dirs, monkeypatch):
    results, docs = dirs
    _common.write_results("demo", "Demo", {"x": 1}, "body")
    assert json.loads((results / "demo.json").read_text())["data"] == {"x": 1}
    assert scorecard._gpu_row()[3] == "not measured"

    monkeypatch.setattr(_common.jax, "default_backend", lambda: "gpu")
    _common.write_results("demo", "Demo", {"x": 2}, "body")
    assert json.loads((results / "demo.json").read_text())["data"] == {"x": 1}  # kept
    assert json.loads((results / "demo_gpu.json").read_text())["data"] == {"x": 2}
    page = (docs / "demo_gpu.md").read_text()
    assert page.startswith("# Demo (GPU)") and "JAX backend is gpu" in page
    row = scorecard._gpu_row()
    assert row[2] == "1 page" and "[demo_gpu](demo_gpu.md)" in row[5]
