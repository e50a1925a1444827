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


def test_one_core_row_reports_the_worst_paced_study_row(dirs):
    results, _ = dirs
    assert scorecard._one_core_row()[3] == "not measured"
    rows = [{"objective": "A", "setting": "one core", "fit_steps_per_chunk": None,
             "steady_ratio_wall": 1.012, "measured": "2026-11-30 10:00 UTC"},
            {"objective": "B", "setting": "one core", "fit_steps_per_chunk": None,
             "steady_ratio_wall": 1.048, "measured": "2026-11-30 12:00 UTC"},
            {"objective": "C", "setting": "one core", "fit_steps_per_chunk": 50,  # not paced
             "steady_ratio_wall": 1.30, "measured": "2026-11-30 09:00 UTC"},
            {"objective": "D", "setting": "default", "fit_steps_per_chunk": None,
             "steady_ratio_wall": 1.20, "measured": "2026-11-30 11:00 UTC"}]
    results.mkdir(parents=True)
    (results / "fit_scheduler.json").write_text(json.dumps({"rows": rows}))
    row = scorecard._one_core_row()
    assert row[2] == "1.048" and row[4].startswith("B; 2 objectives")
    assert row[6] == "2026-11-30 10:00 UTC to 2026-11-30 12:00 UTC"
