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
checkpoint writes included) is recorded. Time to quality: our wall time at the checkpoint
from which our test LL stays at or above the target (the stricter of ebmkit's final LL here
and its published AIS lower end) to the end of our run, divided by ebmkit's time for its
``STEPS`` steps: its wall and CPU time here and its time quoted with the performance targets; the
largest of the three ratios is judged (target <= 0.2). The final models are also compared
by the forward/reverse AIS bracket of the test LL (ebmkit's published measure), MMD^2
(bandwidth 0.3) and the Frechet distance between the test points and 4000 draws from each
model's grid density; both final NCSN models are also sampled by annealed Langevin dynamics
(timed, and scored by MMD^2 and Frechet).

ebmkit's CD and PCD take about 5 minutes each here: their curves are cached in
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

from _common import RESULTS, ROOT, check_flags, markdown_table, write_results  # noqa: E402
from bench_tempering import SCRATCH, ebmkit_env  # noqa: E402

import numpyro_ebm as ebm  # noqa: E402

N_TRAIN, N_TEST, STEPS, BATCH, LR, HIDDEN = 8192, 4000, 6000, 256, 1e-3, (128, 128)
LO, HI, GRID = (-2.5, -1.75), (2.5, 1.75), 256
CENTER = (0.5, 0.25)  # ebmkit's two moons are centred by this shift
SIGMAS = (1.0, 0.01, 10)  # NCSN ladder: geometric from 1.0 to 0.01, 10 levels
EBMKIT_EVERY = 250
TITLE = "Time to quality against ebmkit"
QUICK_MEANS = "ebmkit's CD and PCD from the cache; every other run as in the full benchmark"
SLOW = ("CD", "PCD")  # ebmkit runs cached between benchmark runs
# ebmkit's published quality on this protocol (lower ends of its forward/reverse AIS
# brackets of the test log-likelihood, as quoted with the performance targets); the target
# is the stricter of this and the final test LL ebmkit reaches here
PUBLISHED_BRACKET = {"CD": (-1.12, -1.11), "PCD": (-1.11, -1.10), "NCE": (-1.04, -0.90),
                     "sliced SM": (-1.21, -1.21), "NCSN": (-1.79, -1.77)}
PUBLISHED = {k: v[0] for k, v in PUBLISHED_BRACKET.items()}
# ebmkit's training times for 6000 steps, as quoted with the performance targets (1 torch
# thread, training only)
ISSUE_IDLE_S = {"CD": 177.0, "PCD": 178.0, "NCE": 19.0, "sliced SM": 22.0, "NCSN": 12.0}
AIS_PARTICLES, AIS_TEMPERATURES = 1024, 1000  # standard error ~0.004 nats on these models
# annealed Langevin sampling of the final NCSN models, the same algorithm and settings in both
# libraries (Song & Ermon 2019, Alg. 1: step eps * sigma_i^2 / sigma_L^2, ebmkit's defaults)
ANNEAL = {"step_size": 2e-5, "steps_per_sigma": 100, "num_draws": N_TEST}


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
                        dist.Normal(jnp.asarray(mean), jnp.asarray(1.2 * std)).to_event(1)),
                    optimizer=_adam(2e-2, 1.0, 1e-3, 600), checkpoints=(200, 400, 500, 600,
                                                                         700, 800),
                    about="NCE, noise N(data mean, (1.2 data std)^2), Adam 2e-2 cosine to 1e-3 "
                          "over 600 steps, clip 1 (benchmarks/studies/ttq_settings.py)"),
        "sliced SM": dict(objective=ebm.sliced_score_matching(variance_reduction=True),
                          optimizer=_adam(3e-2, 1.0, 3e-4, 400),
                          checkpoints=(200, 300, 400, 500, 600, 800),
                          about="sliced SM with variance reduction, Adam 3e-2 cosine to 3e-4 "
                                "over 400 steps, clip 1 (benchmarks/studies/ttq_settings.py)"),
        "NCSN": dict(objective=ebm.denoising_score_matching(
                         sigmas=tuple(ebm.geometric_sigmas(*SIGMAS)), noise_conditional=True),
                     optimizer=_adam(1e-2, 1.0, 1e-3, 400),
                     checkpoints=(100, 150, 200, 300, 400, 600), conditional=True,
                     about="multi-sigma DSM (same ladder), Adam 1e-2 cosine to 1e-3 over 400 "
                           "steps, clip 1 (benchmarks/studies/ttq_settings.py)"),
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
import json, math, sys, time, warnings
# ebmkit's environment has no NumPy (it needs none); torch warns once about it on import
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
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
    if name == "NCSN" and cfg.get("anneal"):  # its own annealed Langevin sampler, timed
        a = cfg["anneal"]
        torch.manual_seed(cfg["seed"] + 1)
        sampler = ebm.AnnealedLangevinDynamics(sigmas, step_size=a["step_size"],
                                               steps_per_sigma=a["steps_per_sigma"])
        x0 = sigmas[0] * torch.randn(a["num_draws"], 2)
        t0 = time.perf_counter()
        xs = sampler.sample(net, x0)
        out[name]["anneal"] = {"seconds": time.perf_counter() - t0, "draws": xs.tolist()}
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
    cfg = {**ebmkit_config(), "methods": methods, "out": str(out), "data": str(data),
           "anneal": ANNEAL}
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
        if "anneal" in res[name]:
            res[name]["anneal"]["draws"] = np.asarray(res[name]["anneal"]["draws"], np.float32)
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
    curve, cpu_curve, spent, cpu, res = [], [], 0.0, 0.0, None
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
            cpu_curve.append([steps, cpu, float(ll)])
            print(f"  ours {name}: step {steps} {spent:.2f}s (CPU {cpu:.2f}s) LL {float(ll):.3f}",
                  flush=True)
    out = {"curve": curve, "cpu_curve": cpu_curve, "seconds": spent, "cpu_seconds": cpu,
           "logp": np.asarray(logp), "settings": spec["about"],
           "ais": ais_bracket(energy_fn, res.params, conditional, test, np.asarray(logp))}
    if conditional:
        draws, secs = anneal_ours(energy_fn, res.params)
        out["anneal"] = {"seconds": secs, **draw_quality(draws, test)}
    return out


def draw_quality(x: np.ndarray, test: np.ndarray) -> dict:
    """MMD^2 (bandwidth 0.3) and Frechet distance between the test points and draws ``x``."""
    m = ebm.diagnostics.mmd(test, x, bandwidth=0.3, num_permutations=20)
    f = ebm.diagnostics.frechet_distance(test, x, num_bootstrap=20, num_permutations=20)
    return {"mmd2": float(m.mmd_squared), "frechet": float(f.distance)}


def sample_quality(logp: np.ndarray, test: np.ndarray) -> dict:
    return draw_quality(grid_samples(logp, N_TEST, seed=5), test)


def ais_bracket(energy_fn, params, conditional: bool, test: np.ndarray,
                logp: np.ndarray) -> list[float]:
    """The forward/reverse AIS bracket ``[low, high]`` of a final model's test LL (ebmkit's
    published quality measure): forward AIS bounds ``log Z`` below in expectation, reverse AIS
    from draws of the model's grid density (near-exact draws) bounds it above. With 256
    particles and 200 temperatures (the library's defaults) the two ends scattered by
    +-0.02-0.03 here (standard error 0.018 on a final NCE model): hence the larger run."""
    if conditional:
        sigma_min = jnp.float32(SIGMAS[1])
        e = lambda p, x: energy_fn(p, x, sigma_min)  # noqa: E731
    else:
        e = energy_fn
    res = ebm.ais_log_normalizer(e, params, jax.random.key(7), 2, num_particles=AIS_PARTICLES,
                                 num_temperatures=AIS_TEMPERATURES,
                                 target_draws=grid_samples(logp, AIS_PARTICLES, seed=6))
    neg_e = float(jnp.mean(-jax.vmap(lambda x: e(params, x))(jnp.asarray(test))))
    return [neg_e - res.upper, neg_e - res.log_z]


def anneal_ours(energy_fn, params) -> tuple[np.ndarray, float]:
    """``ANNEAL["num_draws"]`` draws of annealed Langevin sampling from a noise-conditional
    model, and their wall time (compilation included)."""
    sig = ebm.geometric_sigmas(*SIGMAS)

    def score(x, s):
        return -jax.grad(energy_fn, argnums=1)(params, x, s)

    x0 = sig[0] * jax.random.normal(jax.random.key(11), (ANNEAL["num_draws"], 2), jnp.float32)
    t0 = time.perf_counter()
    x = ebm.annealed_langevin(jax.random.key(12), score, x0, sig, ANNEAL["step_size"],
                              ANNEAL["steps_per_sigma"])
    x = np.asarray(jax.block_until_ready(x))
    return x, time.perf_counter() - t0


def time_to(curve: list, target: float) -> float | None:
    """Wall time at the checkpoint from which the test LL stays at or above ``target`` to the
    end of the curve (None if the last checkpoint is below it): a curve that touches the
    target and falls back does not count there."""
    t = None
    for _, wall, ll in curve:
        if ll < target:
            t = None
        elif t is None:
            t = wall
    return t


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
    skipped = [m for m in specs if m not in methods]
    if skipped:
        print(f"--quick: skipping {', '.join(skipped)}: ebmkit's runs of them are not cached "
              "for these settings (run once without --quick to cache them)", flush=True)
    kit = {k: {**v, "cached": True} for k, v in cached.items()}
    rows, curves, cpu_curves = [], {}, {}
    for name in methods:
        if name not in kit:
            # ebmkit's run of a method right before ours: the two share the load of one
            # moment on a shared machine (a run of all of ebmkit's first did not)
            for m, v in run_ebmkit([name], train, test).items():
                if isinstance(v, dict) and "logp" in v:
                    v["quality"] = sample_quality(v.pop("logp"), test)
                if isinstance(v, dict) and "anneal" in v:
                    v["anneal"].update(draw_quality(v["anneal"].pop("draws"), test))
                kit[m if isinstance(v, dict) else f"{name} ({m})"] = v
        k = kit.get(name)
        if not isinstance(k, dict) or "curve" not in k:
            continue
        mine = run_ours(name, specs[name], train, test)
        row = {"method": name, "ebmkit_ll": k["curve"][-1][2], "ebmkit_s": k["seconds"],
               "ebmkit_cpu_s": k.get("cpu_seconds"),
               "ebmkit_cached": k.get("cached", False)}
        row.update({f"ebmkit_{a}": b for a, b in k.get("quality", {}).items()})
        row.update({"ours_final_ll": mine["curve"][-1][2], "ours_s": mine["seconds"],
                    "ours_cpu_s": mine["cpu_seconds"],
                    "settings": mine["settings"], "published_bracket": PUBLISHED_BRACKET[name],
                    "issue_idle_s": ISSUE_IDLE_S[name], "ours_ais_bracket": mine["ais"]})
        _score(row, mine["curve"], mine["cpu_curve"])
        cpu_curves[f"numpyro_ebm {name}"] = mine["cpu_curve"]
        for who, d in (("ours", mine), ("ebmkit", k)):
            if "anneal" in d:
                row[f"{who}_anneal"] = d["anneal"]
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
    fig = figure(curves, {r["method"]: r["target_ll"] for r in rows}, _deadlines(rows))
    load = f"{load0:.1f}/{os.getloadavg()[0]:.1f} (this run)"
    write_results("time_to_quality", TITLE,
                  {"quick": quick, "rerun_ebmkit": rerun_ebmkit, "ebmkit_config": cfg,
                   "ebmkit": kit_store, "rows": rows, "curves": curves,
                   "cpu_curves": cpu_curves, "load": load},
                  page(rows, kit_store, fig, load),
                  quick_means=QUICK_MEANS, command=_command(rerun_ebmkit))


def _command(rerun_ebmkit: bool) -> str | None:
    """The command that measured, where ``write_results``'s default would misname it."""
    if rerun_ebmkit:
        return "python benchmarks/bench_time_to_quality.py --rerun-ebmkit"
    return None


def figure(curves: dict, targets: dict[str, float],
           deadlines: dict[str, float] | None = None) -> str | None:
    """The test-LL curves against wall time, one panel per method, with the target LL and
    (``deadlines``: method -> seconds) the time limit the verdict allows: 0.2 of the
    smallest of ebmkit's three reference times."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        return None
    methods = list(dict.fromkeys(k.split(" ", 1)[1] for k in curves))  # the run's order
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
        if deadlines and deadlines.get(m):
            ax.axvline(deadlines[m], color="tab:red", lw=0.8, ls=":",
                       label="0.2 x ebmkit's shortest time")
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


def _ratios(r: dict) -> dict[str, float | None]:
    """Our wall time to target over ebmkit's time: its wall time here, its CPU time here
    (1 torch thread: its time had it not waited for the cores) and its time quoted with the
    performance targets."""
    t = r.get("ours_time_to_quality_s")
    refs = {"wall": r.get("ebmkit_s"), "CPU": r.get("ebmkit_cpu_s"),
            "quoted": r.get("issue_idle_s", ISSUE_IDLE_S.get(r["method"]))}
    return {k: None if t is None or not v else t / v for k, v in refs.items()}


def _deadlines(rows: list[dict]) -> dict[str, float]:
    """Method -> the latest time to target the verdict allows (seconds): 0.2 of the
    smallest of ebmkit's wall time here, CPU time here and time quoted with the targets."""
    out = {}
    for r in rows:
        refs = [v for v in (r.get("ebmkit_s"), r.get("ebmkit_cpu_s"),
                            r.get("issue_idle_s", ISSUE_IDLE_S.get(r["method"]))) if v]
        if refs:
            out[r["method"]] = 0.2 * min(refs)
    return out


def _strict(r: dict) -> float | None:
    """The verdict's ratio: the largest of the three (None if the target was not held)."""
    vals = [v for v in _ratios(r).values() if v is not None]
    return max(vals) if vals and r.get("ours_time_to_quality_s") is not None else None


def _span(v: list[float]) -> str:
    """``a-b`` (two decimals), or ``a`` when the range is one value."""
    a, b = f"{min(v):.2f}", f"{max(v):.2f}"
    return a if a == b else f"{a}-{b}"


def _caveats(rows: list[dict], load: str) -> str:
    """The page's margins and caveats, computed from the rows."""
    fresh = [r for r in rows if not r["ebmkit_cached"] and r.get("ebmkit_cpu_s")]
    lines = []
    if fresh:
        w = [r["ebmkit_s"] / r["ebmkit_cpu_s"] for r in fresh]
        lines.append(
            f"* ebmkit's wall time was {_span(w)}x its CPU time in this run "
            f"({', '.join(r['method'] for r in fresh)}): above 1 means it waited for the "
            "cores.")
    ours_w = [(r["ours_time_to_quality_s"], r["ours_cpu_time_to_quality_s"]) for r in rows
              if r.get("ours_time_to_quality_s") and r.get("ours_cpu_time_to_quality_s")]
    if ours_w:
        w = [a / b for a, b in ours_w]
        lines.append(
            f"* Our CPU time to target was {_span([1 / v for v in w])}x our wall time: "
            "XLA compiles and runs on both cores where it can, ebmkit on its one torch "
            "thread. So other jobs' load takes more from our wall time than from ebmkit's "
            "(under a load of 2-3 our wall times to target rose by a third to a half in "
            "two runs of the settings before 2026-12-01, on 2026-11-30, to ratios of "
            "0.22-0.25), and a verdict needs a quiet machine: the load of this run is "
            "stated below. The "
            "verdict is the largest of our wall time over ebmkit's wall time here, its CPU "
            "time here and its time quoted with the performance targets.")
    mine = [r for r in rows if r.get("ours_first_s") is not None]
    if mine:
        shares = [(r["method"], r["ours_first_s"], r["ours_time_to_quality_s"]) for r in mine
                  if r.get("ours_time_to_quality_s")]
        lines.append(
            "* Our first checkpoint includes `fit`'s compilation and start-up, which ebmkit "
            "(eager PyTorch) does not pay: " + ", ".join(
                f"{m} {a:.1f} s ({100 * a / b:.0f}% of its time to target)" for m, a, b in shares)
            + f". {rows[0]['method']} ran first in the process and also pays JAX's one-time "
            "start-up.")
    held = [(r["method"], r["ours_ll_at_target"] - r["target_ll"]) for r in rows
            if r.get("ours_ll_at_target") is not None]
    if held:
        m, d = min(held, key=lambda v: v[1])
        lines.append(
            "* Time to target is the wall time at the checkpoint from which our test LL stays "
            "at or above the target to the end of our run (a curve that touches it and falls "
            f"back does not count there). Smallest margin at that checkpoint: {m}, "
            f"{d:+.3f} nats.")
    lines.append(
        "* ebmkit's runs are deterministic (seeded); each ran right before ours of the same "
        "method (so that the two share the machine's load of one moment); its CD and PCD "
        "are cached from an earlier run when marked "
        f"(dates above, same settings). Load average (1 min, 2 cores) at the start/end: {load}."
        " Other jobs on the machine were not deprioritised (the kernel's autogroup scheduling "
        "ignores `nice` across sessions), so each library's wall time carries the load of its "
        "moment. CPU seconds (process time, all threads) are in the JSON (`ebmkit_cpu_s`, "
        "`ours_cpu_s`).")
    return "\n".join(lines)


def _anneal_section(rows: list[dict]) -> str:
    r = next((r for r in rows if "ours_anneal" in r), None)
    if r is None:
        return ""
    a = ANNEAL
    body = [[who, f"{d['seconds']:.2f}", f"{d['mmd2']:.3g}", f"{d['frechet']:.3g}"]
            for who, d in (("ebmkit", r.get("ebmkit_anneal")), ("numpyro_ebm", r["ours_anneal"]))
            if d]
    return (f"""### NCSN: annealed Langevin sampling

Both final NCSN models sampled by annealed Langevin dynamics (Song & Ermon 2019, Alg. 1;
ebmkit's `AnnealedLangevinDynamics`, our `annealed_langevin`: the same update, step
{a['step_size']:g} sigma_i^2 / sigma_L^2 at level i), {a['steps_per_sigma']} steps per level
on the {SIGMAS[2]}-level ladder, {a['num_draws']} chains from N(0, sigma_1^2 I), no final
denoising step; quality against the {N_TEST} test points. Our time includes compilation.

""" + markdown_table(["library", "sampling s", "MMD^2", "Frechet"], body) + "\n")


def page(rows: list[dict], kit: dict, fig: str | None, load: str = "not recorded") -> str:
    def f(v, fmt="{:.3g}"):
        return "—" if v is None else fmt.format(v)

    def bracket(b, digits=2):
        if not b:
            return "—"
        crossed = " (crossed: MC error above the gap)" if b[0] > b[1] else ""
        return f"[{b[0]:.{digits}f}, {b[1]:.{digits}f}]{crossed}"

    times = markdown_table(
        ["method", "target LL", "ebmkit: 6000 steps, wall / CPU (s)",
         "ebmkit: quoted time (s)", "ours: time to target, wall / CPU (s)",
         "ratios: ours wall / ebmkit wall, CPU, quoted", "verdict (<= 0.2)"],
        [[r["method"], f(r["target_ll"]),
          f"{f(r['ebmkit_s'])} / {f(r.get('ebmkit_cpu_s'))}"
          + (" (cached)" if r["ebmkit_cached"] else ""),
          f(r.get("issue_idle_s", ISSUE_IDLE_S.get(r["method"]))),
          f"{f(r.get('ours_time_to_quality_s'))} / {f(r.get('ours_cpu_time_to_quality_s'))}",
          ", ".join(f(v, "{:.3f}") for v in _ratios(r).values()),
          "missed (not held)" if _strict(r) is None
          else f"{'missed' if _strict(r) > 0.2 else 'met'} ({_strict(r):.3f})"]
         for r in rows])
    quality = markdown_table(
        ["method", "ebmkit grid LL here", "ebmkit AIS bracket (published)", "ours grid LL",
         "ours AIS bracket", "MMD^2 ebmkit / ours", "Frechet ebmkit / ours"],
        [[r["method"], f(r["ebmkit_ll"]),
          bracket(r.get("published_bracket", PUBLISHED_BRACKET.get(r["method"]))),
          f(r.get("ours_final_ll")), bracket(r.get("ours_ais_bracket"), 3),
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
        f"{c[-1][2]:.3g}); its published LL is the target there, and its curve leaves the "
        "figure where its LL falls below -4."
        for m in kit if isinstance(kit[m], dict) and (c := kit[m].get("curve"))
        and c[-1][2] < -100)
    lose = [r for r in rows if "ours_s" in r and (_strict(r) is None or _strict(r) > 0.2)]
    where = "\n".join(
        f"* **{r['method']}**: " + (
            f"our test LL ({r['ours_final_ll']:.3f} at the end) did not reach and hold the "
            f"target {r['target_ll']:.3f} within our {r['ours_s']:.1f} s"
            if r.get("ours_time_to_quality_s") is None
            else f"{_strict(r):.3f}x ebmkit's time (our {r['ours_time_to_quality_s']:.2f} s "
                 "wall), above the 0.2 target")
        for r in lose) or ("* nowhere in time to quality: every method reached and held "
                           "ebmkit's test log-likelihood target in <= 0.2x its time by all "
                           "three measures (time to quality is judged on the log-likelihood "
                           "only; the other quality measures of the final models follow)")
    below = [r for r in rows if r.get("ours_ais_bracket")
             and max(r["ours_ais_bracket"]) < r.get("published_bracket",
                                                    PUBLISHED_BRACKET[r["method"]])[0]]
    where += "".join(
        f"\n* **{r['method']}**, final quality by AIS: our bracket "
        f"{bracket(r['ours_ais_bracket'])} lies below ebmkit's published "
        f"{bracket(r.get('published_bracket', PUBLISHED_BRACKET[r['method']]))}" for r in below)
    for r in rows:  # annealed sampling of NCSN: each measure where ebmkit's draws are closer
        a, b = r.get("ours_anneal"), r.get("ebmkit_anneal")
        where += "".join(
            f"\n* **{r['method']}**, annealed Langevin draws: {name} {a[key]:.3g} against "
            f"ebmkit's {b[key]:.3g} (lower is closer to the test points)"
            for key, name in (("mmd2", "MMD^2"), ("frechet", "Frechet distance"))
            if a and b and a[key] > b[key])
    absent = [m for m in PUBLISHED if m not in {r["method"] for r in rows}]
    missing = (f" **Not in this run: {', '.join(absent)}** (`--quick` runs CD and PCD only "
               "when ebmkit's runs of them are cached for these settings)." if absent else "")
    return f"""Two moons (noise 0.1, centred as ebmkit's), {N_TRAIN} training and {N_TEST} test
points, MLP 2 -> 128 -> 128 -> 1 with SiLU. ebmkit 0.16.0 (torch 2.13.0 CPU, 1 thread, its own
virtual environment) runs {STEPS} steps of each method with batch {BATCH} and Adam {LR:g},
with the settings of its README (CD: 60 ULA steps of size 0.01 from N(0, I); PCD: the same
from an 8192-point replay buffer; NCE: standard normal noise; sliced SM: its defaults; NCSN:
multi-sigma DSM on a geometric ladder {SIGMAS[0]} -> {SIGMAS[1]}, {SIGMAS[2]} levels, evaluated
at the smallest level). Quality along the curves: test log-likelihood with `log Z` by the
midpoint rule on a {GRID}x{GRID} grid over [{LO[0]}, {HI[0]}] x [{LO[1]}, {HI[1]}], the same
in both libraries. Times are training wall time only (evaluations excluded); ours include
compilation and the checkpoint writes of the segmented run. Ratio = our time to the target
LL / ebmkit's time for its {STEPS} steps; the target LL is the stricter of ebmkit's final LL
here and its published one (the lower end of its AIS bracket, as quoted with the
performance targets).
Final models: the forward/reverse AIS bracket of the test LL (`ais_log_normalizer`:
{AIS_PARTICLES} particles, {AIS_TEMPERATURES} temperatures, reverse runs from as many draws
of the model's grid density),
MMD^2 (bandwidth 0.3) and Frechet distance between the {N_TEST} test points and {N_TEST}
draws from each final model's grid density.

ebmkit's runs (the time each run's results were stored: the end of the benchmark run for
those run in it; ebmkit's CD and PCD are reused from the cache whenever their settings are
unchanged, under `make bench` too, and run again only by `python
benchmarks/bench_time_to_quality.py --rerun-ebmkit`): {dates}.{missing}

{times}

{quality}

{img}
{diverged}

### Where we lose

{where}

Margins and caveats, computed from this run:

{_caveats(rows, load)}

{_anneal_section(rows)}
### Our settings

{settings}

{_settings_study()}

{errors}
"""


def _settings_study() -> str:
    """How NCE's, sliced SM's and NCSN's settings were chosen: steps to the target per
    setting and key (``benchmarks/studies/ttq_settings.py``'s stored results), if measured."""
    path = RESULTS / "ttq_settings.json"
    if not path.exists():
        return ""
    res = json.loads(path.read_text())
    by = {}
    for r in res["rows"]:
        by.setdefault((r["method"], r["setting"]), {})[r.get("seed", 1)] = r
    keys = sorted({k for v in by.values() for k in v})
    t = [r["seconds_with_evaluation"] for r in res["rows"] if r.get("seconds_with_evaluation")]
    secs = f"{min(t):.0f}-{max(t):.0f} s" if t else "a few seconds"

    def cell(r):
        return "—" if r is None else (f"{r['steps_to_target'] or 'not held'} "
                                      f"({r['final_ll']:.3f})")

    table = markdown_table(["method", "setting"] + [f"key {k}: steps (final LL)" for k in keys],
                           [[m, s] + [cell(v.get(k)) for k in keys]
                            for (m, s), v in by.items()])
    return f"""### How NCE's, sliced SM's and NCSN's settings were chosen

By steps, which load does not move: `python benchmarks/studies/ttq_settings.py --method NCE
--seeds 1,2,3` (likewise `--method "sliced SM"`) and `... --method NCSN --every 50 --seeds
1,2,3` ({secs} per setting and key, evaluation included; `--only TEXT` keeps the settings
whose label contains TEXT) train each candidate with checkpoints every 100 steps (NCSN: 50)
and report the first checkpoint from which the test LL stays at or above the target, and
the final LL. The target is the one the stored benchmark run judges by (sliced SM's: the
final LL of ebmkit's run there). Key 1 is this benchmark's, so the settings were chosen on
the run that is judged; keys 2 and 3 check that the choice does not rest on that run's
luck. They were run only for the old settings, the chosen ones and the closest rivals (a
dash: not run on that key). NCE's target (-1.04) lies about 0.01 below what this network
reaches, so NCE's margins are thin whatever the setting; so are sliced SM's. The first row
of each method is the setting used until 2026-12-01 (on key 1 it reached the target at
step 1000 for NCE, 700 for sliced SM, 500 for NCSN); the settings since are NCE's noise
1.2 std over 600 steps, sliced SM's 3e-2 over 400 steps and NCSN's 1e-2 over 400 steps.
Last measured {res['date']}.

{table}
"""


def rescore() -> None:
    """Recompute targets, ratios, the figure and the page from the stored results (no run)."""
    path = RESULTS / "time_to_quality.json"
    stored = json.loads(path.read_text())
    data = stored["data"]
    for r in data["rows"]:
        key = f"numpyro_ebm {r['method']}"
        _score(r, data["curves"][key], data.get("cpu_curves", {}).get(key))
    fig = figure(data["curves"], {r["method"]: r["target_ll"] for r in data["rows"]},
                 _deadlines(data["rows"]))
    write_results("time_to_quality", TITLE, data,
                  page(data["rows"], data["ebmkit"], fig, data.get("load", "not recorded")),
                  measured=stored["date"],
                  rebuilt_by="python benchmarks/bench_time_to_quality.py --rescore",
                  quick_means=QUICK_MEANS,
                  command=_command(data.get("rerun_ebmkit", False)))


def _score(row: dict, curve: list, cpu_curve: list | None = None) -> None:
    """Target, time to target (wall, and CPU when recorded), ratio and the checkpoint numbers
    of one row (in place)."""
    name = row["method"]
    target = max(row["ebmkit_ll"], PUBLISHED[name])
    if cpu_curve:
        row["ours_cpu_time_to_quality_s"] = time_to(cpu_curve, target)
    t = time_to(curve, target)
    at = next((ll for _, wall, ll in curve if wall == t), None)
    row.update({"published_ll": PUBLISHED[name], "target_ll": target,
                "ours_time_to_quality_s": t, "ours_ll_at_target": at,
                "ours_first_s": curve[0][1] if curve else None,
                "ratio": None if t is None else t / row["ebmkit_s"]})  # wall over wall
    row["judged_ratio"] = _strict(row)  # the verdict's: the largest of the three


if __name__ == "__main__":
    check_flags(sys.argv[1:], ("--rescore", "--quick", "--rerun-ebmkit"))
    if "--rescore" in sys.argv:
        rescore()
    else:
        main(quick="--quick" in sys.argv, rerun_ebmkit="--rerun-ebmkit" in sys.argv)
