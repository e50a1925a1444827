"""Time to quality against ebmkit 0.16.0 on its two-moons protocol, method by method.

ebmkit (PyTorch, installed by this benchmark in its own virtual environment under
``benchmarks/_scratch/``, 1 torch thread) trains each method with its own losses and sampler
for ``STEPS`` steps (batch 256, Adam 1e-3, ``MLPEnergy(2, (128, 128))`` with SiLU; the
noise-conditional MLP for NCSN), with the settings of its README (CD: 60 ULA steps of size
0.01 from noise; PCD: the same from an 8192-point replay buffer; NCE: its default standard
normal noise; sliced SM: its defaults; NCSN: ``MultiSigmaDenoisingScoreMatching`` on
``SIGMAS``). ``numpyro_ebm.fit`` trains the same network on the same data with whatever
settings of ours reach ebmkit's quality fastest (stated in ``OURS``).

Quality is the grid-normalised test log-likelihood on ``N_TEST`` held-out points: ``log Z``
by the midpoint rule on a ``GRID x GRID`` box (the same box and rule in both libraries;
NCSN models are evaluated at the smallest noise level). Both libraries are evaluated at
checkpoints; the wall time of training only (evaluation excluded; our compilation and
checkpoint writes included) is recorded. Time to quality: our wall time until our test LL
first reaches ebmkit's final one, divided by ebmkit's wall time for its ``STEPS`` steps
(target <= 0.2). The final models are also compared by MMD^2 (bandwidth 0.3) and the
Frechet distance between the test points and 4000 draws from each model's grid density.

ebmkit's CD and PCD take about 3 minutes each: their curves are cached in
``benchmarks/results/time_to_quality.json`` (with their date and settings) and reused while
the settings are unchanged; ``--rerun-ebmkit`` runs them again.

Usage: ``python benchmarks/run.py --only time_to_quality [--quick]`` (``--quick``: ebmkit's
CD/PCD only from the cache, skipped when there is none). ``python
benchmarks/bench_time_to_quality.py --rescore`` recomputes targets, ratios, figure and page
from the stored results without running anything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import optax

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, ROOT, markdown_table, write_results  # noqa: E402
from bench_tempering import SCRATCH, ebmkit_env  # noqa: E402

import numpyro_ebm as ebm  # noqa: E402

N_TRAIN, N_TEST, STEPS, BATCH, LR, HIDDEN = 8192, 4000, 6000, 256, 1e-3, (128, 128)
LO, HI, GRID = (-2.5, -1.75), (2.5, 1.75), 256
CENTER = (0.5, 0.25)  # ebmkit's two moons are centred by this shift
SIGMAS = (1.0, 0.01, 10)  # NCSN ladder: geometric from 1.0 to 0.01, 10 levels
EBMKIT_EVERY = 250
SLOW = ("CD", "PCD")  # ebmkit runs cached between benchmark runs
# ebmkit's published quality on this protocol (lower ends of its forward/reverse AIS
# brackets of the test log-likelihood, as quoted in issue 17); the target is the stricter of
# this and the final test LL ebmkit reaches here
PUBLISHED = {"CD": -1.12, "PCD": -1.11, "NCE": -1.04, "sliced SM": -1.21, "NCSN": -1.79}


def _adam(lr: float, clip: float | None = None, decay_to: float | None = None,
          steps: int = 1) -> optax.GradientTransformation:
    sched = lr if decay_to is None else optax.cosine_decay_schedule(lr, steps, decay_to / lr)
    parts = ([optax.clip_by_global_norm(clip)] if clip else []) + [optax.adam(sched)]
    return optax.chain(*parts)


# our settings per method: the objective, optimizer, checkpoints (steps), noise conditioning
def ours(data: np.ndarray) -> dict[str, dict]:
    mean, std = data.mean(0), data.std(0)
    return {
        "CD": dict(objective=ebm.contrastive_divergence(num_steps=5, step_size=0.01),
                   optimizer=_adam(3e-3, 1.0, 3e-4, 1500), checkpoints=(100, 200, 300, 400, 600,
                                                                         800, 1000, 1500),
                   about="CD-5 from the data, MALA (step 0.01), Adam 3e-3 cosine to 3e-4 over "
                         "1500 steps, clip 1"),
        "PCD": dict(objective=ebm.persistent_contrastive_divergence(
                        num_steps=10, step_size=0.01, buffer_size=8192),
                    optimizer=_adam(3e-3, 1.0, 1e-4, 3000), checkpoints=(250, 500, 1000, 1500,
                                                                          2000, 2500, 3000),
                    about="PCD-10 (buffer 8192), MALA (step 0.01), Adam 3e-3 cosine to 1e-4 "
                          "over 3000 steps, clip 1"),
        "NCE": dict(objective=ebm.noise_contrastive_estimation(
                        dist.Normal(jnp.asarray(mean), jnp.asarray(1.5 * std)).to_event(1)),
                    optimizer=_adam(1e-2, 1.0, 1e-3, 1000), checkpoints=(200, 400, 600, 800,
                                                                          1000, 1200),
                    about="NCE, noise N(data mean, (1.5 data std)^2), Adam 1e-2 cosine to 1e-3 "
                          "over 1000 steps, clip 1"),
        "sliced SM": dict(objective=ebm.sliced_score_matching(variance_reduction=True),
                          optimizer=_adam(5e-3, 1.0, 5e-4, 1500),
                          checkpoints=(100, 200, 300, 400, 600, 800, 1000, 1500),
                          about="sliced SM with variance reduction, Adam 5e-3 cosine to 5e-4 "
                                "over 1500 steps, clip 1"),
        "NCSN": dict(objective=ebm.denoising_score_matching(
                         sigmas=tuple(ebm.geometric_sigmas(*SIGMAS)), noise_conditional=True),
                     optimizer=_adam(5e-3, 1.0, 5e-4, 1500),
                     checkpoints=(100, 200, 300, 400, 600, 800, 1000, 1500), conditional=True,
                     about="multi-sigma DSM (same ladder), Adam 5e-3 cosine to 5e-4 over 1500 "
                           "steps, clip 1"),
    }


def make_data() -> tuple[np.ndarray, np.ndarray]:
    x = ebm.datasets.two_moons(0.1).sample(jax.random.key(0), N_TRAIN + N_TEST)
    x = np.asarray(x, np.float32) - np.asarray(CENTER, np.float32)
    return x[:N_TRAIN], x[N_TRAIN:]


def _grid() -> tuple[np.ndarray, float]:
    """Cell midpoints (GRID^2, 2) and the log cell area."""
    lo, hi = np.asarray(LO), np.asarray(HI)
    h = (hi - lo) / GRID
    axes = [lo[i] + (np.arange(GRID) + 0.5) * h[i] for i in range(2)]
    g = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 2)
    return g.astype(np.float32), float(np.log(h[0] * h[1]))


def grid_samples(logp: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` draws from the grid density: a cell by its mass, then uniform within it."""
    rng = np.random.default_rng(seed)
    p = np.exp(logp - logp.max())
    cells = rng.choice(p.size, n, p=p / p.sum())
    g, _ = _grid()
    h = (np.asarray(HI) - np.asarray(LO)) / GRID
    return g[cells] + (rng.random((n, 2)) - 0.5) * h


EBMKIT_SCRIPT = r'''
import json, math, sys, time
import torch, ebm
torch.set_num_threads(1)
cfg = json.load(open(sys.argv[1]))
data = json.load(open(cfg["data"]))
train, test = torch.tensor(data["train"]), torch.tensor(data["test"])
(lo, hi, g) = cfg["grid"]
axes = [lo[i] + (torch.arange(g, dtype=torch.float64) + 0.5) * (hi[i] - lo[i]) / g
        for i in range(2)]
grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 2).float()
log_area = math.log((hi[0] - lo[0]) * (hi[1] - lo[1]) / g ** 2)
out = {}
sigmas = ebm.geometric_sigmas(*cfg["sigmas"])

def evaluate(efn):
    with torch.no_grad():
        e = torch.cat([efn(c) for c in grid.split(8192)])
        logz = torch.logsumexp(-e, 0) + log_area
        return float((-efn(test)).mean() - logz), (-e - logz).tolist()

for name in cfg["methods"]:
    torch.manual_seed(cfg["seed"])
    if name == "NCSN":
        net = ebm.nets.NoiseConditionalMLPEnergy(2, tuple(cfg["hidden"]))
        loss = ebm.MultiSigmaDenoisingScoreMatching(sigmas)
        efn = lambda x: net(x, sigmas[-1].expand(x.shape[0]))
    else:
        net = ebm.nets.MLPEnergy(2, tuple(cfg["hidden"]))
        efn = net
        sampler = ebm.LangevinDynamics(step_size=1e-2, steps=60)
        loss = {"CD": lambda: ebm.ContrastiveDivergence(sampler),
                "PCD": lambda: ebm.ContrastiveDivergence(
                    sampler, buffer=ebm.ReplayBuffer(8192, (2,))),
                "NCE": lambda: ebm.NoiseContrastiveEstimation(),
                "sliced SM": lambda: ebm.SlicedScoreMatching()}[name]()
    params = list(net.parameters()) + list(loss.parameters())
    opt = torch.optim.Adam(params, lr=cfg["lr"])
    n, spent, cpu, curve = train.shape[0], 0.0, 0.0, []
    t0, c0 = time.perf_counter(), time.process_time()
    for step in range(1, cfg["steps"] + 1):
        x = train[torch.randint(n, (cfg["batch"],))]
        o = loss(net, x)
        opt.zero_grad(set_to_none=True)
        o.loss.backward()
        opt.step()
        if step % cfg["every"] == 0 or step == cfg["steps"]:
            spent += time.perf_counter() - t0
            cpu += time.process_time() - c0
            ll, logp = evaluate(efn)
            curve.append([step, spent, ll])
            t0, c0 = time.perf_counter(), time.process_time()
    out[name] = {"curve": curve, "seconds": spent, "cpu_seconds": cpu, "logp": logp}
    print(name, spent, curve[-1][2], flush=True)
json.dump(out, open(cfg["out"], "w"))
'''


def ebmkit_config() -> dict:
    return {"steps": STEPS, "batch": BATCH, "lr": LR, "hidden": list(HIDDEN), "every": EBMKIT_EVERY,
            "sigmas": list(SIGMAS), "grid": [list(LO), list(HI), GRID], "seed": 0,
            "torch_threads": 1, "version": "ebmkit 0.16.0, torch 2.13.0"}


def run_ebmkit(methods: list[str], train: np.ndarray, test: np.ndarray) -> dict:
    """ebmkit's curves and final grid log-densities for ``methods``, or ``{"error": ...}``."""
    py, why = ebmkit_env()
    if py is None:
        return {"error": why}
    SCRATCH.mkdir(parents=True, exist_ok=True)
    data, out = SCRATCH / "ttq_data.json", SCRATCH / "ttq_ebmkit.json"
    data.write_text(json.dumps({"train": train.tolist(), "test": test.tolist()}))
    cfg = {**ebmkit_config(), "methods": methods, "out": str(out), "data": str(data)}
    cfg_file, script = SCRATCH / "ttq_cfg.json", SCRATCH / "ttq_ebmkit.py"
    cfg_file.write_text(json.dumps(cfg))
    script.write_text(EBMKIT_SCRIPT)
    try:
        subprocess.run([str(py), str(script), str(cfg_file)], check=True, timeout=3600)
    except (OSError, subprocess.SubprocessError) as err:
        return {"error": f"ebmkit run failed: {err}"}
    res = json.loads(out.read_text())
    for name in res:
        res[name]["logp"] = np.asarray(res[name]["logp"], np.float32)
    return res


def _evaluator(energy_fn, conditional: bool, test: np.ndarray):
    g, log_area = _grid()
    sigma_min = jnp.float32(SIGMAS[1])

    @jax.jit
    def evaluate(params):
        def e(x):
            return energy_fn(params, x, sigma_min) if conditional else energy_fn(params, x)
        eg = jax.lax.map(jax.vmap(e), jnp.asarray(g).reshape(-1, 4096, 2)).reshape(-1)
        logz = jax.nn.logsumexp(-eg) + log_area
        return jnp.mean(-jax.vmap(e)(jnp.asarray(test))) - logz, -eg - logz

    return evaluate


def run_ours(name: str, spec: dict, train: np.ndarray, test: np.ndarray) -> dict:
    """Our curve: ``fit`` in segments that resume from a checkpoint (bit for bit the same run
    as one call), timed without the evaluations between them."""
    conditional = spec.get("conditional", False)
    energy_fn, params = ebm.mlp_energy(jax.random.key(3), 2, HIDDEN,
                                       context_dim=1 if conditional else 0, dtype=jnp.float32)
    evaluate = _evaluator(energy_fn, conditional, test)
    curve, spent, cpu, res = [], 0.0, 0.0, None
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "run.npz"
        for steps in spec["checkpoints"]:
            kw = (dict(key=jax.random.key(1)) if res is None else dict(resume_from=ckpt))
            t0, c0 = time.perf_counter(), time.process_time()
            res = ebm.fit(energy_fn, params, train, spec["objective"], optimizer=spec["optimizer"],
                          num_steps=steps, batch_size=BATCH, progress_bar=False,
                          checkpoint_path=ckpt, **kw)
            jax.block_until_ready(res.params)
            spent += time.perf_counter() - t0
            cpu += time.process_time() - c0
            ll, logp = evaluate(res.params)
            curve.append([steps, spent, float(ll)])
            print(f"  ours {name}: step {steps} {spent:.2f}s LL {float(ll):.3f}", flush=True)
    return {"curve": curve, "seconds": spent, "cpu_seconds": cpu, "logp": np.asarray(logp),
            "settings": spec["about"]}


def sample_quality(logp: np.ndarray, test: np.ndarray) -> dict:
    x = grid_samples(logp, N_TEST, seed=5)
    m = ebm.diagnostics.mmd(test, x, bandwidth=0.3, num_permutations=20)
    f = ebm.diagnostics.frechet_distance(test, x, num_bootstrap=20, num_permutations=20)
    return {"mmd2": float(m.mmd_squared), "frechet": float(f.distance)}


def time_to(curve: list, target: float) -> float | None:
    """Wall time at the first checkpoint whose test LL reaches ``target`` (None if never)."""
    return next((t for _, t, ll in curve if ll >= target), None)


def _cached_slow(cfg: dict) -> dict:
    path = RESULTS / "time_to_quality.json"
    if not path.exists():
        return {}
    old = json.loads(path.read_text())["data"]
    if old.get("ebmkit_config") != cfg:
        return {}
    return {k: v for k, v in old["ebmkit"].items() if k in SLOW and "curve" in v}


def main(quick: bool = False, rerun_ebmkit: bool = False) -> None:
    load0 = os.getloadavg()[0]
    train, test = make_data()
    cfg = ebmkit_config()
    specs = ours(train)
    cached = {} if rerun_ebmkit else _cached_slow(cfg)
    methods = [m for m in specs if not (quick and m in SLOW) or m in cached]
    kit = run_ebmkit([m for m in methods if m not in cached], train, test)
    for v in kit.values():
        if isinstance(v, dict) and "logp" in v:
            v["quality"] = sample_quality(v.pop("logp"), test)
    for k, v in cached.items():
        kit[k] = {**v, "cached": True}
    rows, curves = [], {}
    for name in methods:
        k = kit.get(name)
        if not isinstance(k, dict) or "curve" not in k:
            continue
        mine = run_ours(name, specs[name], train, test)
        target = max(k["curve"][-1][2], PUBLISHED[name])
        row = {"method": name, "ebmkit_ll": k["curve"][-1][2], "published_ll": PUBLISHED[name],
               "target_ll": target, "ebmkit_s": k["seconds"],
               "ebmkit_cpu_s": k.get("cpu_seconds"),
               "ebmkit_cached": k.get("cached", False)}
        row.update({f"ebmkit_{a}": b for a, b in k.get("quality", {}).items()})
        t = time_to(mine["curve"], target)
        row.update({"ours_final_ll": mine["curve"][-1][2], "ours_s": mine["seconds"],
                    "ours_cpu_s": mine["cpu_seconds"],
                    "ours_time_to_quality_s": t,
                    "ratio": None if t is None else t / k["seconds"],
                    "settings": mine["settings"]})
        row.update({f"ours_{a}": b for a, b in sample_quality(mine["logp"], test).items()})
        curves[f"numpyro_ebm {name}"] = mine["curve"]
        curves[f"ebmkit {name}"] = k["curve"]
        rows.append(row)
        print("  " + json.dumps({a: b for a, b in row.items() if a != "settings"}), flush=True)
    kit_store = {k: {a: b for a, b in v.items() if a != "cached"} if isinstance(v, dict) else v
                 for k, v in kit.items()}
    for k in cached:  # keep the cached runs' own date
        kit_store[k]["date"] = cached[k].get("date")
    for k in kit_store:
        if isinstance(kit_store[k], dict) and not kit_store[k].get("date"):
            kit_store[k]["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    fig = figure(curves, {r["method"]: r["target_ll"] for r in rows})
    load = f"{load0:.1f}/{os.getloadavg()[0]:.1f} (this run)"
    write_results("time_to_quality", "Time to quality against ebmkit",
                  {"quick": quick, "ebmkit_config": cfg, "ebmkit": kit_store, "rows": rows,
                   "curves": curves, "load": load}, page(rows, kit_store, fig, load))


def rescore() -> None:
    """Recompute targets, ratios, the figure and the page from the stored results (no run)."""
    path = RESULTS / "time_to_quality.json"
    stored = json.loads(path.read_text())
    data = stored["data"]
    for r in data["rows"]:
        name = r["method"]
        target = max(r["ebmkit_ll"], PUBLISHED[name])
        t = time_to(data["curves"][f"numpyro_ebm {name}"], target)
        r.update({"published_ll": PUBLISHED[name], "target_ll": target,
                  "ours_time_to_quality_s": t, "ratio": None if t is None else t / r["ebmkit_s"]})
    fig = figure(data["curves"], {r["method"]: r["target_ll"] for r in data["rows"]})
    body = page(data["rows"], data["ebmkit"], fig, data.get("load", "not recorded"))
    path.write_text(json.dumps(stored, indent=2))
    doc = ROOT / "docs" / "benchmarks" / "time_to_quality.md"
    title, stamp = doc.read_text().split("\n\n", 2)[:2]
    if data.get("quick"):  # the run the stored results come from
        stamp = (stamp.split(" by ")[0] + " by `python benchmarks/run.py --only "
                 "time_to_quality --quick` (ebmkit's CD and PCD from the cache)._")
    doc.write_text(title + "\n\n" + stamp + "\n\n" + body + "\n")


def figure(curves: dict, targets: dict[str, float]) -> str | None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        return None
    methods = sorted({k.split(" ", 1)[1] for k in curves})
    if not methods:
        return None
    fig, axes = plt.subplots(1, len(methods), figsize=(3.2 * len(methods), 3), squeeze=False)
    for ax, m in zip(axes[0], methods, strict=True):
        for lib, style in (("ebmkit", "--"), ("numpyro_ebm", "-")):
            c = curves.get(f"{lib} {m}")
            if c:
                c = np.asarray(c)
                ax.plot(c[:, 1], c[:, 2], style, marker=".", label=lib)
        if m in targets:
            ax.axhline(targets[m], color="gray", lw=0.8, ls=":", label="target")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_title(m)
        ax.set_xlabel("training wall time (s)")
        lls = [v[2] for k, c in curves.items() if k.endswith(" " + m) for v in c]
        ax.set_ylim(max(min(lls), -4.0), max(lls) + 0.1)
    axes[0][0].set_ylabel("test log-likelihood (grid)")
    axes[0][0].legend()
    fig.tight_layout()
    out = ROOT / "docs" / "benchmarks" / "img"
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "time_to_quality.png", dpi=110)
    plt.close(fig)
    return "img/time_to_quality.png"


def page(rows: list[dict], kit: dict, fig: str | None, load: str = "not recorded") -> str:
    def f(v, fmt="{:.3g}"):
        return "—" if v is None else fmt.format(v)

    def cpu_ratio(r):
        # against ebmkit's CPU seconds (1 torch thread): its time had it not waited for the
        # cores, which the load of the moment took from it (wall 2-3x its CPU time)
        t, c = r.get("ours_time_to_quality_s"), r.get("ebmkit_cpu_s")
        return None if t is None or not c else t / c

    table = markdown_table(
        ["method", "ebmkit LL here", "ebmkit LL published", "target LL",
         "ebmkit s (6000 steps)", "ebmkit CPU s", "ours: time to target (s)",
         "ratio (target <= 0.2)", "ratio vs ebmkit CPU s", "ours final LL",
         "MMD^2 ebmkit / ours", "Frechet ebmkit / ours"],
        [[r["method"], f(r["ebmkit_ll"]), f(r["published_ll"]), f(r["target_ll"]),
          f(r["ebmkit_s"]) + (" (cached)" if r["ebmkit_cached"] else ""),
          f(r.get("ebmkit_cpu_s")), f(r.get("ours_time_to_quality_s")), f(r.get("ratio")),
          f(cpu_ratio(r)), f(r.get("ours_final_ll")),
          f"{f(r.get('ebmkit_mmd2'))} / {f(r.get('ours_mmd2'))}",
          f"{f(r.get('ebmkit_frechet'))} / {f(r.get('ours_frechet'))}"] for r in rows])
    settings = "\n".join(f"* **{r['method']}**: {r['settings']}" for r in rows if "settings" in r)
    dates = ", ".join(f"{k} {v.get('date')}" for k, v in kit.items() if isinstance(v, dict))
    errors = "\n".join(f"* ebmkit {k}: {v}" for k, v in kit.items() if isinstance(v, str))
    img = f"![test LL vs training wall time]({fig})\n" if fig else ""
    diverged = "\n".join(
        f"* ebmkit's **{m}** diverged: its best test LL was {max(c, key=lambda v: v[2])[2]:.2f} "
        f"(step {max(c, key=lambda v: v[0] if v[2] > -100 else -1)[0]} and before), then the "
        f"grid's log Z grew without bound (the energy fell somewhere in the box; final LL "
        f"{c[-1][2]:.3g}); its published LL is the target there."
        for m in kit if isinstance(kit[m], dict) and (c := kit[m].get("curve"))
        and c[-1][2] < -100)
    def strict(r):  # the larger of the two ratios: wall, and against ebmkit's CPU time
        return max(v for v in (r.get("ratio"), cpu_ratio(r)) if v is not None)

    lose = [r for r in rows if "ours_s" in r and (r.get("ratio") is None or strict(r) > 0.2)]
    where = "\n".join(
        f"* **{r['method']}**: " + (
            f"our test LL ({r['ours_final_ll']:.3f} at the end) never reached the target "
            f"{r['target_ll']:.3f} within our {r['ours_s']:.1f} s" if r.get("ratio") is None
            else f"{strict(r):.2f}x ebmkit's time ({r['ours_time_to_quality_s']:.1f} s "
                 f"against its {r['ebmkit_s']:.1f} s wall and "
                 f"{f(r.get('ebmkit_cpu_s'))} s CPU), above the 0.2 target")
        for r in lose) or "* nowhere: every method reached ebmkit's quality in <= 0.2x its time"
    return f"""Two moons (noise 0.1, centred as ebmkit's), {N_TRAIN} training and {N_TEST} test
points, MLP 2 -> 128 -> 128 -> 1 with SiLU. ebmkit 0.16.0 (torch 2.13.0 CPU, 1 thread, its own
virtual environment) runs {STEPS} steps of each method with batch {BATCH} and Adam {LR:g},
with the settings of its README (CD: 60 ULA steps of size 0.01 from N(0, I); PCD: the same
from an 8192-point replay buffer; NCE: standard normal noise; sliced SM: its defaults; NCSN:
multi-sigma DSM on a geometric ladder {SIGMAS[0]} -> {SIGMAS[1]}, {SIGMAS[2]} levels, evaluated
at the smallest level). Quality: test log-likelihood with `log Z` by the midpoint rule on a
{GRID}x{GRID} grid over [{LO[0]}, {HI[0]}] x [{LO[1]}, {HI[1]}], the same in both libraries.
Times are training wall time only (evaluations excluded); ours include compilation and the
checkpoint writes of the segmented run. Ratio = our time to the target LL / ebmkit's time
for its {STEPS} steps; the target LL is the stricter of ebmkit's final LL here and its
published one (the lower end of its AIS bracket, as quoted in issue 17). MMD^2 (bandwidth
0.3) and Frechet distance: 4000 test points against
4000 draws from each final model's grid density.

ebmkit runs: {dates}.

{table}

{img}
{diverged}

### Where we lose

{where}

Margins and caveats, stated plainly:

* A method is judged by the larger of its two ratios: against ebmkit's wall time and
  against its CPU time. ebmkit's runs here waited for the cores (wall 2-3x CPU for NCE,
  sliced SM and NCSN at this load); its CPU time with 1 torch thread is what it takes on an
  idle core (it matches issue 17's idle times, 19/22/12 s). Our time to target is wall time.
* Our first checkpoint costs 5-10 s: `fit`'s compilation and start-up, which ebmkit (eager
  PyTorch) does not pay. Against ebmkit's fast methods (NCE, sliced SM and NCSN: 12-22 s of
  CPU for 6000 steps) that fixed cost alone is most of the 0.2x budget: this is where we
  lose, and why (CD and PCD, at about 180 s for ebmkit, leave room for it).
* A curve counts at its *first* checkpoint at or above the target; NCE touched it (1000
  steps) and ended slightly below it (1200 steps), so its time to quality is within
  checkpoint noise of missing.
* NCSN's quality is the grid LL of the model at the smallest noise level (and grid draws
  for MMD/Frechet) in both libraries; annealed Langevin sampling was not timed or scored.
* ebmkit's NCE, sliced SM and NCSN are deterministic (seeded) and ran in the same process
  run as ours; its CD and PCD are cached from an earlier run (dates above, same settings).
  Load average (1 min, 2 cores) at the start/end of the runs: {load}. The other jobs on
  the machine were not deprioritised (the kernel's autogroup scheduling ignores `nice`
  across sessions), so the two libraries' wall times, measured one after the other, carry
  the load of their moment. CPU seconds (process time, all threads) are in the JSON where
  measured (`ebmkit_cpu_s`, `ours_cpu_s`).

### Our settings

{settings}

{errors}
"""


if __name__ == "__main__":
    if "--rescore" in sys.argv:
        rescore()
    else:
        main(quick="--quick" in sys.argv, rerun_ebmkit="--rerun-ebmkit" in sys.argv)
