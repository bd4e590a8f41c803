"""Gradient-based tolerance allocation and design centring with optax (edge: xarray).

Both work on a sample-average approximation: the draws of the configuration's blocks are
fixed (common random numbers), so the smoothed yield Y_τ(θ) of :mod:`yieldmc.engine.estimators`
is a deterministic, differentiable function of the parameters θ. The final point is
re-checked with the hard pass indicator on fresh random numbers.

* **tolerance allocation** (``optimize.kind=tolerance``): minimise Σ c_k/σ_k over the
  tolerances in ``optimize.costs`` (config key → cost c_k) subject to
  Y ≥ ``optimize.target_yield``, by an augmented Lagrangian (Nocedal & Wright,
  *Numerical Optimization*, §17.4) over log σ with Adam as the inner solver;
* **design centring** (``optimize.kind=centring``): maximise Y over the nominal
  parameters in ``optimize.parameters`` (config key → [low, high]), each mapped to its
  interval by a sigmoid.
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import numpy as np
import optax
import xarray as xr

from yieldmc.engine.blocks import accumulate, device_params
from yieldmc.analysis.gradients import block_sums
from yieldmc.engine.estimators import Pathwise
from yieldmc.job import OptimizeSettings, as_job
from yieldmc.engine.distributions import Distribution
from yieldmc.engine.problem import Problem
from yieldmc.engine.stats import wilson_interval
from yieldmc.engine.variation import process_key


class SmoothedYield:
    """Y_τ and ∂Y_τ/∂θ of named parameters on the fixed draws of a problem (the pathwise
    estimator's block sums, :func:`yieldmc.analysis.gradients.block_sums`)."""

    def __init__(self, problem: Problem, names, tau_db: float):
        self.problem, self.names = problem, list(names)
        self.base = {k: v[0] for k, v in device_params(problem).items()}
        self.estimator = Pathwise(tau_db=float(tau_db))

    def __call__(self, values):
        params = dict(self.base)
        dtype = self.base[self.names[0]].dtype
        for k, v in zip(self.names, values):
            params[k] = jnp.asarray(v, dtype)
        sums = block_sums(self.problem, self.estimator, self.names, params=params)
        return sums.value / self.problem.samples, sums.gradient.sum(axis=0) / self.problem.samples


def _recheck(problem: Problem, values: dict, settings: OptimizeSettings):
    params = {k: v.copy() for k, v in problem.params.items()}
    for k, v in values.items():
        params[k] = np.full_like(params[k], v)
    samples = int(settings.recheck_samples or problem.samples)
    fresh = dataclasses.replace(problem, params=params, samples=samples,
                                seed=problem.seed + int(settings.recheck_seed_offset))
    stats = accumulate(fresh, range(fresh.n_blocks))
    lo, hi = wilson_interval(stats.n_pass[0], stats.n_samples)
    return float(stats.n_pass[0] / stats.n_samples), float(lo), float(hi), stats.n_samples


#: Modules of each diagnosis pass (the reachable ceiling and what limits it): enough to
#: tell a yield from a target 0.01 away (binomial standard error <= 0.002).
DIAGNOSIS_SAMPLES = 65536


def _variants(problem: Problem, settings: OptimizeSettings, variants: list) -> tuple:
    """Hard yields of several variants of the parameters, all on the same fresh draws
    (common random numbers: the variants become the points of one sweep).

    Args:
      variants: a list of ``{config key: value}``, each applied over the problem's values.

    Returns:
      ``(yields, lows, highs, n)``: arrays over the variants (95 % Wilson) and the modules.
    """
    params = {}
    for k, v in problem.params.items():
        params[k] = np.repeat(np.asarray(v[:1]), len(variants))
    for i, changes in enumerate(variants):
        for k, v in changes.items():
            params[k][i] = v
    samples = min(int(settings.recheck_samples or problem.samples), DIAGNOSIS_SAMPLES)
    fresh = dataclasses.replace(problem, params=params, samples=samples, sweep_keys=("variant",),
                                sweep_values=(tuple(float(i) for i in range(len(variants))),),
                                seed=problem.seed + int(settings.recheck_seed_offset))
    stats = accumulate(fresh, range(fresh.n_blocks))
    lo, hi = wilson_interval(stats.n_pass, stats.n_samples)
    return stats.n_pass / stats.n_samples, np.asarray(lo), np.asarray(hi), int(stats.n_samples)


def switched_off(problem: Problem, q: str, lv: str, dist: Distribution) -> dict:
    """The parameter values that turn one variation into its mean (no spread): sigma 0,
    or a uniform's bounds at their midpoint; {} for an empirical table (it cannot be)
    (:meth:`yieldmc.engine.distributions.Distribution.spread_off`)."""
    bounds = {p: float(problem.params[process_key(q, lv, p)][0]) for p in ("low", "high")}
    return {process_key(q, lv, p): v for p, v in dist.spread_off(**bounds).items()}


def limiting_factor(problem: Problem, settings: OptimizeSettings, best: dict, free) -> dict:
    """What keeps the yield below the target with ``free`` parameters at ``best``.

    Every other variation is switched off in turn (:func:`switched_off`), and all of them
    together (the nominal design, each quantity at its mean), on the same fresh draws.

    Returns:
      ``{"limit": key or "nominal design" or "", "text": one clause, "nominal_yield": float,
      "without": {variation: yield}}``.
    """
    others = []
    for q, lv, dist in problem.static.active:
        off = switched_off(problem, q, lv, dist)
        if off and not set(off) & set(free):
            others.append((process_key(q, lv), off))
    everything = dict(best)
    for _, off in others:
        everything.update(off)
    variants = [dict(best, **off) for _, off in others] + [everything]
    ys, _, _, _ = _variants(problem, settings, variants)
    nominal = float(ys[-1])
    without = {name: float(y) for (name, _), y in zip(others, ys[:-1])}
    target = settings.target_yield
    if nominal < target:
        return {"limit": "nominal design", "nominal_yield": nominal, "without": without,
                "text": f"the nominal design's own margin: with every variation at its mean the yield is "
                        f"{nominal:.3f} (the nominal module misses the spec: change the design or the spec)"}
    if not without:
        return {"limit": "", "nominal_yield": nominal, "without": without, "text": "no other variation is active"}
    name = max(without, key=without.get)
    clause = (f"the other variations: switching off {name} (the largest single gain) gives "
              f"{without[name]:.3f}")
    if without[name] < target:
        clause += f", every other variation off gives {nominal:.3f}: several together limit it"
    return {"limit": name, "nominal_yield": nominal, "without": without, "text": clause}


def allocate_tolerances(problem: Problem, settings: OptimizeSettings, tau_db: float, progress=None):
    """Minimise Σ c/σ subject to Y_τ ≥ target; returns (values, history, cost)."""
    names = list(settings.costs)
    c = np.array([float(settings.costs[k]) for k in names])
    f = SmoothedYield(problem, names, tau_db)
    u = np.log([float(problem.params[k][0]) for k in names])
    cost0 = float(np.sum(c * np.exp(-u)))
    target, rho, lam = settings.target_yield, float(settings.penalty), 0.0
    history = []
    for outer in range(settings.outer):
        opt = optax.adam(settings.learning_rate)
        state = opt.init(jnp.asarray(u))
        for _ in range(settings.steps):
            sigma = np.exp(u)
            y, dy_dsigma = f(sigma)
            cost = float(np.sum(c / sigma))
            g = target - y
            # ψ(g) = (max(0, λ + ρg)² − λ²)/(2ρ): inequality augmented Lagrangian
            mult = max(0.0, lam + rho * g)
            grad_u = (-c / sigma) / cost0 + mult * (-dy_dsigma * sigma)
            history.append((y, cost, sigma.copy(), tau_db))
            upd, state = opt.update(jnp.asarray(grad_u), state)
            u = u + np.asarray(upd)
            if progress is not None:
                progress(1)
        y, _ = f(np.exp(u))
        lam = max(0.0, lam + rho * (target - y))
        if progress is not None:
            progress.note(f"outer step {outer + 1}/{settings.outer}: smoothed yield {y:.4f} (target {target:g}), "
                          f"cost {float(np.sum(c / np.exp(u))):.4g}, multiplier {lam:.3g}")
    return dict(zip(names, np.exp(u))), history, float(np.sum(c / np.exp(u)))


def start_inside(x0, lo, hi, *, fraction: float = 0.01):
    """A start on (or outside) a bound of [lo, hi], moved ``fraction`` of the width inside:
    the sigmoid map of :func:`centre_design` reaches the bounds only in the limit."""
    width = hi - lo
    return np.clip(x0, lo + fraction * width, hi - fraction * width)


def centre_design(problem: Problem, settings: OptimizeSettings, tau_db: float, progress=None):
    """Maximise Y_τ over bounded nominal parameters; returns (values, history, nan)."""
    names = list(settings.parameters)
    lo = np.array([float(settings.parameters[k][0]) for k in names])
    hi = np.array([float(settings.parameters[k][1]) for k in names])
    x0 = start_inside(np.array([float(problem.params[k][0]) for k in names]), lo, hi)
    v = np.log((x0 - lo) / (hi - x0))  # inverse sigmoid
    f = SmoothedYield(problem, names, tau_db)
    opt = optax.adam(settings.learning_rate)
    state = opt.init(jnp.asarray(v))
    history = []
    for i in range(settings.steps * settings.outer):
        s = 1.0 / (1.0 + np.exp(-v))
        x = lo + (hi - lo) * s
        y, dy_dx = f(x)
        history.append((y, math.nan, x.copy(), tau_db))
        upd, state = opt.update(jnp.asarray(-dy_dx * (hi - lo) * s * (1 - s)), state)
        v = v + np.asarray(upd)
        if progress is not None:
            progress(1)
            if (i + 1) % settings.steps == 0:
                progress.note(f"step {i + 1}/{settings.steps * settings.outer}: smoothed yield {y:.4f}, "
                              + ", ".join(f"{k} = {xv:.5g}" for k, xv in zip(names, x)))
    x = lo + (hi - lo) / (1.0 + np.exp(-v))
    return dict(zip(names, x)), history, math.nan


def _at_bounds(settings: OptimizeSettings, values: dict, *, fraction: float = 0.02) -> list:
    """The centring parameters that ended within ``fraction`` of the width of a bound."""
    out = []
    for k, (lo, hi) in settings.parameters.items():
        if values[k] <= lo + fraction * (hi - lo):
            out.append(f"{k} at its lower bound {lo:g}")
        elif values[k] >= hi - fraction * (hi - lo):
            out.append(f"{k} at its upper bound {hi:g}")
    return out


def optimize(cfg, *, progress=None) -> xr.Dataset:
    """Tolerance allocation or design centring (``optimize.kind``) of a configuration.

    The answer comes with a verdict against ``optimize.target_yield``. Tolerance
    allocation first computes the ceiling: the hard yield with every tolerance of
    ``optimize.costs`` at 0 (no tightening can do better); a target above it is unreachable
    and no optimisation runs. A target missed (the ceiling, or the centred design's
    re-checked yield, has a 95 % interval wholly below it) is diagnosed: the yield with
    each other variation switched off in turn, and with all of them off (the nominal
    design's own margin), names what limits it.

    Args:
      cfg: a configuration or a parsed job (``mode=optimize`` sections).
      progress: None (silent) or a factory ``progress(total, unit) -> Progress``
        (:class:`yieldmc.io.progress.Progress`), called once: a line per outer step.

    Returns:
      Dataset with the history over ``step`` (``history_yield``, ``history_cost``,
      ``history_value`` over ``parameter``, ``history_tau_db``), the ``optimum`` per
      parameter, and the re-check on fresh random numbers: ``yield`` (hard indicator),
      ``yield_ci_low``, ``yield_ci_high``, ``n_samples``, ``cost``. Attributes ``verdict``
      (``reached`` | ``unreachable`` | ``not_reached``: reachable, but the optimiser's
      point misses on the re-check), ``verdict_text`` (one line), ``best_yield`` (the
      re-checked yield, or the ceiling where unreachable), ``limit`` (the limiting
      variation's key, ``nominal design``, a bound, or "").
    """
    job = as_job(cfg, mode="optimize")
    problem, settings, tau = job.problem, job.optimize, job.gradient.tau_db
    tolerance = settings.kind == "tolerance"
    bar = None
    if progress is not None:
        bar = progress(settings.steps * settings.outer, "steps")
    try:
        return _optimize(job, problem, settings, tau, tolerance, bar)
    finally:
        if bar is not None:
            bar.close()


def _optimize(job, problem, settings, tau, tolerance, bar):
    target = settings.target_yield
    history_note = "smoothed yield on the fixed draws"
    verdict, text, limit = "reached", "", ""
    ceiling = None
    if tolerance:
        free = list(settings.costs)
        start = {k: float(problem.params[k][0]) for k in free}
        zero = {k: 0.0 for k in free}
        ys, los, his, n = _variants(problem, settings, [start, zero])
        ceiling = (float(ys[1]), float(los[1]), float(his[1]), n)
        if bar is not None:
            bar.note(f"ceiling: with {', '.join(free)} at 0 the yield is {ys[1]:.4f} "
                     f"(95 % CI {los[1]:.4f} - {his[1]:.4f}, {n} modules), target {target:g}")
    if ceiling is not None and ceiling[2] < target:
        # no tightening of the free tolerances reaches the target: say why, skip the optimiser
        found = limiting_factor(problem, settings, zero, free)
        values, cost = zero, math.inf
        y, lo, hi, n = ceiling
        history = [(float(ys[0]), float(sum(settings.costs[k] / start[k] for k in free)),
                    np.array([start[k] for k in free]), tau),
                   (y, math.inf, np.zeros(len(free)), tau)]
        history_note = ("hard yield on fresh draws at the configuration's values, then with the free "
                        "tolerances at 0 (the target is unreachable: no optimisation ran)")
        verdict, limit = "unreachable", found["limit"]
        text = (f"unreachable: with {', '.join(free)} at 0 the yield is at most {y:.4f} (95 % CI {lo:.4f} - "
                f"{hi:.4f}) < target {target:g}; the limit is {found['text']}")
    else:
        run = allocate_tolerances if tolerance else centre_design
        values, history, cost = run(problem, settings, tau, progress=bar)
        y, lo, hi, n = _recheck(problem, values, settings)
        if hi < target:
            bounds = [] if tolerance else _at_bounds(settings, values)
            if tolerance:
                verdict = "not_reached"
                text = (f"not reached: the allocation re-checks at {y:.4f} (95 % CI {lo:.4f} - {hi:.4f}) < target "
                        f"{target:g}, though the ceiling is {ceiling[0]:.4f}: more optimize.outer or steps")
            else:
                found = limiting_factor(problem, settings, values, list(values))
                verdict = "unreachable"
                limit = "; ".join(bounds) if bounds else found["limit"]
                text = (f"unreachable: the best yield found with {', '.join(values)} free is {y:.4f} (95 % CI "
                        f"{lo:.4f} - {hi:.4f}) < target {target:g}; the limit is "
                        + (f"the bounds ({'; '.join(bounds)}: widen them), then " if bounds else "")
                        + found["text"])
        else:
            text = (f"reached: re-checked yield {y:.4f} (95 % CI {lo:.4f} - {hi:.4f}) on fresh draws, target "
                    f"{target:g}")
    if bar is not None:
        bar.note(f"verdict: {text}")
    names = list(values)
    from yieldmc.provenance import provenance

    attrs = provenance(problem, job.config_yaml)
    attrs.update({"kind": settings.kind, "target_yield": float(target), "verdict": verdict,
                  "verdict_text": text, "best_yield": float(y), "limit": limit})
    if ceiling is not None:
        attrs["ceiling_yield"] = ceiling[0]
    return xr.Dataset(
        {
            "history_yield": ("step", np.array([h[0] for h in history]),
                              {"units": "1", "long_name": history_note}),
            "history_cost": ("step", np.array([h[1] for h in history]),
                             {"units": "cost units", "long_name": "sum of cost/sigma"}),
            "history_value": (("step", "parameter"), np.stack([h[2] for h in history]),
                              {"units": "unit of the parameter", "long_name": "parameter values"}),
            "history_tau_db": ("step", np.array([h[3] for h in history]),
                               {"units": "dB", "long_name": "smoothing temperature"}),
            "optimum": ("parameter", np.array([values[k] for k in names]),
                        {"units": "unit of the parameter", "long_name": "optimised value"}),
            "yield": ((), y, {"units": "1", "long_name": "re-checked yield, hard indicator, fresh draws"}),
            "yield_ci_low": ((), lo, {"units": "1", "long_name": "re-checked yield, 95 % Wilson low"}),
            "yield_ci_high": ((), hi, {"units": "1", "long_name": "re-checked yield, 95 % Wilson high"}),
            "n_samples": ((), np.int64(n), {"units": "1", "long_name": "re-check module samples"}),
            "cost": ((), cost, {"units": "cost units", "long_name": "sum of cost/sigma at the optimum"}),
        },
        coords={"step": np.arange(len(history)), "parameter": names},
        attrs=attrs,
    )
