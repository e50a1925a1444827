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
    """The worst of each objective's newest paced one-core row, with its clock."""
    results, _ = dirs
    assert scorecard._one_core_row()[3] == "not measured"
    # B is an old row with CPU time only; A has both clocks and is judged by its wall time
    rows = [{"objective": "A", "setting": "one core", "fit_steps_per_chunk": None,
             "steady_ratio_wall": 1.012, "steady_ratio_cpu": 1.2,
             "measured": "2026-11-30 10:00 UTC"},
            {"objective": "B", "setting": "one core", "fit_steps_per_chunk": None,
             "steady_ratio_cpu": 1.048, "measured": "2026-11-30 12:00 UTC"},
            {"objective": "C", "setting": "one core", "fit_steps_per_chunk": 50,  # not paced
             "steady_ratio_wall": 1.30, "measured": "2026-11-30 09:00 UTC"},
            {"objective": "D", "setting": "default", "fit_steps_per_chunk": None,
             "steady_ratio_wall": 1.20, "measured": "2026-11-30 11:00 UTC"},
            # A re-measured earlier at another pacing: only each objective's newest row counts
            {"objective": "A", "setting": "one core", "fit_steps_per_chunk": None,
             "fit_pacing_s": 0.25, "steady_ratio_wall": 1.09,
             "measured": "2026-11-30 08:00 UTC"}]
    results.mkdir(parents=True)
    (results / "fit_scheduler.json").write_text(json.dumps({"rows": rows}))
    row = scorecard._one_core_row()
    assert row[2] == "1.048" and row[4].startswith("B (process CPU time); 2 objectives")
    assert row[6] == "2026-11-30 10:00 UTC to 2026-11-30 12:00 UTC"


def test_fit_overhead_rows_label_each_clock_by_its_reading():
    # ``_time`` reads (wall, cpu): a row must file the wall readings under ``_wall`` (until
    # 2026-11-30 15:25 the two clocks were filed under each other's names)
    import bench_fit_overhead as b

    assert b._time(lambda: None)[0] >= 0 and b.CLOCKS == ("wall", "cpu")
    # wall: plain 1 ms/step, fit 1.02 ms/step; cpu: twice that for plain, 3x for fit
    cold = {"plain": (10.0, 20.0), "fit": (11.0, 33.0)}
    best = {("plain", 100): (0.1, 0.2), ("plain", 600): (0.6, 1.2), ("plain", 1000): (1.0, 2.0),
            ("fit", 100): (0.1, 0.3), ("fit", 600): (0.61, 1.83), ("fit", 1000): (1.02, 3.06)}
    row = b.row_from_times(cold, best, 100, 600, 1000)
    assert row["plain_us_per_step_wall"] == pytest.approx(1000.0)
    assert row["steady_ratio_wall"] == pytest.approx(1.02)
    assert row["plain_us_per_step_cpu"] == pytest.approx(2000.0)
    assert row["steady_ratio_cpu"] == pytest.approx(1.53)
    assert row["run_ratio_wall"] == pytest.approx(1.1)
    assert row["run_ratio_cpu"] == pytest.approx(1.65)
    assert row["fit_compile_s_wall"] == pytest.approx(11.0 - 1.02)


def test_a_value_near_its_limit_is_shown_with_the_digit_that_decides():
    assert scorecard._shown(1.054, 1.05) == "1.054"
    assert scorecard._shown(1.05, 1.05) == "1.05"
    assert scorecard._shown(1.11, 1.15) == "1.11"
    assert scorecard._shown(0.146, None) == "0.146"


def test_steady_pairs_interval_for_the_median_is_the_binomial_one():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks" / "studies"))
    from fit_steady_pairs import row

    median_interval = _common.median_interval
    # n = 30: P(Bin(30, 1/2) <= 9) = 0.021 <= 0.025 < P(<= 10), so [x_(10), x_(21)]
    assert median_interval([float(v) for v in range(30, 0, -1)]) == (15.5, 10.0, 21.0)
    # pooled over processes; each process's own median is kept
    runs = [{"steps": 300, "plain_us_per_step": 4000.0, "plain_spread": 1.2, "fixed_ms": {},
             "ratios": {"fit": [1.0] * 10 + [1.2] * 5, "chunk": [1.1] * 15}},
            {"steps": 310, "plain_us_per_step": 3900.0, "plain_spread": 1.4, "fixed_ms": {},
             "ratios": {"fit": [1.2] * 15, "chunk": [1.0] * 15}}]
    r = row("ED", runs)
    assert r["rounds"] == 30 and r["steps"] == [300, 310]
    assert r["fit_over_plain"]["per_process"] == [1.0, 1.2]
    assert r["fit_over_plain"]["median"] == 1.2  # 10 of 30 at 1.0, 20 at 1.2
    chunk = r["chunk_over_plain"]
    assert chunk["median"] == 1.05 and chunk["ci95_rounds"] == [1.0, 1.1]
    assert chunk["rounds"] == [[1.1] * 15, [1.0] * 15]


def test_round_ratios_take_each_ratio_within_its_round():
    # a machine that slows down 2x half-way: both programs slow together, so each round's
    # ratio is 1.1 although the ratio of minimums would read 1.1 only by luck
    base = [1.0] * 5 + [2.0] * 6
    times = {"base": base, "ours": [1.1 * b for b in base]}
    r = _common.round_ratios(times, "base")
    assert r["base"] == {"median": 1.0, "ci95": [1.0, 1.0], "rounds": 11}
    assert r["ours"]["median"] == pytest.approx(1.1) and r["ours"]["rounds"] == 11
    # one round disturbed in ours only moves the median by nothing and widens no interval
    # bound past the undisturbed rounds
    times["ours"][3] *= 3
    r = _common.round_ratios(times, "base")
    assert r["ours"]["median"] == pytest.approx(1.1)
    assert r["ours"]["ci95"] == pytest.approx([1.1, 1.1])
    with pytest.raises(ValueError):  # rounds must pair up
        _common.round_ratios({"base": [1.0, 1.0], "ours": [1.0]}, "base")
    # below 6 rounds no interval covers the median with 95%: none is given
    few = _common.round_ratios({"base": [1.0] * 5, "ours": [1.1] * 5}, "base")
    assert few["ours"]["ci95"] is None and few["ours"]["median"] == pytest.approx(1.1)


def test_a_smoke_run_never_replaces_the_published_results(dirs, monkeypatch, tmp_path):
    results, docs = dirs
    monkeypatch.setattr(_common, "QUICK", tmp_path / "quick")
    _common.write_results("demo", "Demo", {"x": 1}, "published")
    _common.write_results("demo", "Demo", {"x": 2, "quick": True}, "smoke")
    assert json.loads((results / "demo.json").read_text())["data"] == {"x": 1}
    assert "published" in (docs / "demo.md").read_text()
    smoke = tmp_path / "quick"
    assert json.loads((smoke / "results" / "demo.json").read_text())["data"]["x"] == 2
    assert "smoke" in (smoke / "docs" / "demo.md").read_text()
    # a benchmark whose data does not say quick: the command line's --quick decides
    monkeypatch.setattr(sys, "argv", ["bench_demo.py", "--quick"])
    _common.write_results("demo", "Demo", {"x": 3}, "smoke too")
    assert json.loads((results / "demo.json").read_text())["data"] == {"x": 1}
    assert json.loads((smoke / "results" / "demo.json").read_text())["data"] == {"x": 3}


def test_steady_pairs_interval_widens_when_processes_disagree():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks" / "studies"))
    from fit_steady_pairs import clustered_interval

    median_interval = _common.median_interval

    # three processes, tight within, apart between: the pooled binomial interval is narrow,
    # the bootstrap over processes spans the processes' own medians
    groups = [[1.00 + 0.001 * i for i in range(30)], [1.04 + 0.001 * i for i in range(30)],
              [1.08 + 0.001 * i for i in range(30)]]
    _, lo_r, hi_r = median_interval([x for g in groups for x in g])
    lo, hi = clustered_interval(groups)
    assert hi_r - lo_r < 0.03 and lo <= 1.02 and hi >= 1.09
    # processes that agree: the bootstrap interval is about as narrow as the rounds' one
    same = [[1.0 + 0.001 * ((i * 7 + j) % 30) for i in range(30)] for j in range(3)]
    lo, hi = clustered_interval(same)
    assert hi - lo < 0.012


def test_pairs_row_reports_the_worst_objective_with_its_interval(dirs):
    results, _ = dirs
    assert scorecard._pairs_row()[3] == "not measured"
    rows = [{"objective": o, "rounds": 90, "measured": "2026-11-30 18:54 UTC",
             "fit_over_plain": {"median": m, "ci95": [m - 0.01, m + 0.01]},
             "chunk_over_plain": {"median": 1.02, "ci95": [1.01, 1.03]}}
            for o, m in (("A", 1.029), ("B", 1.041))]
    results.mkdir(parents=True)
    (results / "fit_steady_pairs.json").write_text(json.dumps({"rows": rows}))
    row = scorecard._pairs_row()
    assert row[2] == "1.041" and row[4].startswith("B: 95% CI [1.031, 1.051], 90 rounds")
    assert row[6] == "2026-11-30 18:54 UTC"


def test_steady_target_is_judged_on_the_pairs_study_only_when_it_covers_every_objective(dirs):
    results, _ = dirs
    results.mkdir(parents=True)
    table = {"date": "2026-11-30 15:42 UTC", "data": {"rows": [
        {"objective": o, "steady_ratio_wall": v, "run_ratio_wall": 1.1}
        for o, v in (("A", 1.054), ("B", 1.02))]}}

    def pair(o, m, hi, measured):
        return {"objective": o, "rounds": 90, "measured": measured,
                "fit_over_plain": {"median": m, "ci95": [m - 0.01, hi]},
                "chunk_over_plain": {"median": 1.0, "ci95": [0.99, 1.01]}}

    # pairs for A only: the table judges, and the pairs study keeps its own study row
    (results / "fit_steady_pairs.json").write_text(json.dumps(
        {"rows": [pair("A", 1.03, 1.04, "2026-12-01 03:00 UTC")]}))
    steady = scorecard._fit_rows(table)[0]
    assert steady[2] == 1.054 and steady[3] == "A"
    # both covered: the worst median judges; the newest row of an objective counts
    (results / "fit_steady_pairs.json").write_text(json.dumps({"rows": [
        pair("A", 1.09, 1.10, "2026-11-30 18:54 UTC"),
        pair("A", 1.03, 1.04, "2026-12-01 03:00 UTC"),
        pair("B", 1.045, 1.055, "2026-12-01 03:10 UTC")]}))
    what, limit, value, note, page, date = scorecard._fit_rows(table)[0]
    assert value == 1.045 and limit == 1.05 and "back-to-back pairs" in what
    assert note.startswith("B: median 1.045, 95% CI [1.035, 1.055]")
    assert "interval reaches past 1.05: B" in note and "worst 1.054 (A)" in note
    assert date == "2026-12-01 03:00 UTC to 2026-12-01 03:10 UTC"


def test_run_pairs_row_pairs_each_rounds_two_processes():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks" / "studies"))
    from fit_run_pairs import row

    plain = [{"wall": w, "cpu": 2 * w} for w in (10.0, 12.0, 8.0, 11.0, 9.0, 10.0)]
    # fit is 5% slower than the plain run of its own round, whatever the round's speed
    fit = [{"wall": 1.05 * p["wall"], "cpu": 1.10 * p["cpu"]} for p in plain]
    r = row("ED", {"plain": plain, "fit": fit}, 6000)
    assert r["rounds"] == 6 and r["steps"] == 6000
    assert r["run_ratio_wall"]["median"] == pytest.approx(1.05)
    assert r["run_ratio_wall"]["ci95"] == pytest.approx([1.05, 1.05])
    assert r["run_ratio_cpu"]["median"] == pytest.approx(1.10)
    assert r["plain_s_wall"] == 10.0 and r["fit_s_wall"] == pytest.approx(10.5)
    # one pair swapped would be a ratio of runs from two rounds: it must not happen
    with pytest.raises(ValueError):
        row("ED", {"plain": plain, "fit": fit[:-1]}, 6000)


def test_whole_run_target_is_judged_on_the_run_pairs_when_they_cover_every_objective(dirs):
    results, _ = dirs
    results.mkdir(parents=True)
    table = {"date": "2026-11-30 15:42 UTC", "data": {"rows": [
        {"objective": o, "steady_ratio_wall": 1.0, "run_ratio_wall": v}
        for o, v in (("A", 1.111), ("B", 1.02))]}}

    def pair(o, m, hi):
        return {"objective": o, "rounds": 6, "steps": 6000, "measured": "2026-12-01 06:00 UTC",
                "run_ratio_wall": {"median": m, "ci95": [m - 0.02, hi]}}

    (results / "fit_run_pairs.json").write_text(json.dumps({"rows": [pair("A", 1.04, 1.06)]}))
    run = scorecard._fit_rows(table)[1]
    assert run[2] == 1.111 and run[3] == "A"  # pairs for A only: the table judges
    (results / "fit_run_pairs.json").write_text(json.dumps({"rows": [
        pair("A", 1.04, 1.06), pair("B", 1.07, 1.16)]}))
    what, limit, value, note, page, date = scorecard._fit_rows(table)[1]
    assert value == 1.07 and limit == 1.15 and "fresh-process pairs" in what
    assert note.startswith("B: median 1.070, 95% CI [1.050, 1.160]")
    assert "interval reaches past 1.15: B" in note and "worst 1.11 (A)" in note

    # the fit_overhead page reads the same study the same way
    import bench_fit_overhead as b

    verdict = b._run_pairs_verdict(table["data"]["rows"])
    assert "worst median 1.070 (B, 95% CI [1.050, 1.160]): met" in verdict
    assert "the intervals of B reach past 1.15." in verdict


def test_fit_overhead_page_shows_each_rows_spread_and_the_worst_rows_drift():
    import bench_fit_overhead as b

    keys = ("plain_us_per_step", "fit_us_per_step", "steady_ratio", "plain_run_s",
            "fit_run_s", "run_ratio", "plain_compile_s", "fit_compile_s")
    base = {f"{k}_{c}": 1.0 for k in keys for c in b.CLOCKS}
    rows = [dict(base, objective="old", steady_ratio_wall=1.02, pacing_s=0.25),
            dict(base, objective="new", steady_ratio_wall=1.06, pacing_s=1.0,
                 plain_spread_wall=1.04, fit_spread_wall=1.125)]
    text = b.page(500, 2500, 6000, 3, rows)
    assert "| old | " in text and "not recorded |" in text
    assert "1.040, 1.125 |" in text  # the new row's spreads
    assert "worst 1.060 (new; its identical 2500-step runs drifted up to 12% apart)" in text
    assert "about 1 s of steps each in the rows of new; about 0.25 s" in text


def test_benchmark_flags_are_checked_before_anything_runs():
    _common.check_flags(["--quick", "--objectives=FCE,CNCE"], ("--quick",), ("--objectives",))
    # a space instead of "=" leaves "FCE" as an argument of its own: named, not ignored
    with pytest.raises(SystemExit, match=r"unknown argument\(s\) \['--objectives', 'FCE'\]"):
        _common.check_flags(["--objectives", "FCE"], ("--quick",), ("--objectives",))
    with pytest.raises(SystemExit, match="--rerun-ebmkt"):
        _common.check_flags(["--rerun-ebmkt"], ("--rescore", "--quick", "--rerun-ebmkit"))
