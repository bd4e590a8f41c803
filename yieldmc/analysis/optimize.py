"""Gradient-based tolerance allocation and design centring with optax (edge: xarray).

Both work on a sample-average approximation: the draws of the configuration's blocks are
fixed (common random numbers), so the smoothed yield Y_τ(θ) of :mod:`yieldmc.analysis.gradients`
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

import jax
import jax.numpy as jnp
import numpy as np
import optax
import xarray as xr

from yieldmc.engine.blocks import accumulate, block_counts, device_params
from yieldmc.analysis.gradients import compiled_pathwise
from yieldmc.job import OptimizeSettings, as_job
from yieldmc.engine.problem import Problem
from yieldmc.engine.stats import wilson_interval


class SmoothedYield:
    """Y_τ and ∂Y_τ/∂θ of named parameters on the fixed draws of a problem."""

    def __init__(self, problem: Problem, names, tau_db: float):
        self.problem, self.names = problem, list(names)
        self.base = {k: v[0] for k, v in device_params(problem).items()}
        self.fn = compiled_pathwise(problem.static, float(tau_db),
                                    int(problem.params["spec.max_failed_channels"][0]))
        self.blocks = np.arange(problem.n_blocks)
        self.counts = block_counts(problem, self.blocks)
        self.n = float(self.counts.sum())

    def __call__(self, values):
        params = dict(self.base)
        dtype = self.base[self.names[0]].dtype
        for k, v in zip(self.names, values):
            params[k] = jnp.asarray(v, dtype)
        soft, grad = 0.0, np.zeros(len(self.names))
        outs = jax.device_get([self.fn(np.uint32(self.problem.seed), np.uint32(b), np.int32(c), params)
                               for b, c in zip(self.blocks, self.counts)])  # one transfer
        for _, s, g in outs:
            soft += float(s)
            grad += np.array([g[k] for k in self.names], dtype=np.float64)
        return soft / self.n, grad / self.n


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


def allocate_tolerances(problem: Problem, settings: OptimizeSettings, tau_db: float):
    """Minimise Σ c/σ subject to Y_τ ≥ target; returns (values, history)."""
    names = list(settings.costs)
    c = np.array([float(settings.costs[k]) for k in names])
    f = SmoothedYield(problem, names, tau_db)
    u = np.log([float(problem.params[k][0]) for k in names])
    cost0 = float(np.sum(c * np.exp(-u)))
    target, rho, lam = settings.target_yield, float(settings.penalty), 0.0
    history = []
    for _ in range(settings.outer):
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
        y, _ = f(np.exp(u))
        lam = max(0.0, lam + rho * (target - y))
    return dict(zip(names, np.exp(u))), history, float(np.sum(c / np.exp(u)))


def centre_design(problem: Problem, settings: OptimizeSettings, tau_db: float):
    """Maximise Y_τ over bounded nominal parameters; returns (values, history)."""
    names = list(settings.parameters)
    lo = np.array([float(settings.parameters[k][0]) for k in names])
    hi = np.array([float(settings.parameters[k][1]) for k in names])
    x0 = np.array([float(problem.params[k][0]) for k in names])
    v = np.log((x0 - lo) / (hi - x0))  # inverse sigmoid
    f = SmoothedYield(problem, names, tau_db)
    opt = optax.adam(settings.learning_rate)
    state = opt.init(jnp.asarray(v))
    history = []
    for _ in range(settings.steps * settings.outer):
        s = 1.0 / (1.0 + np.exp(-v))
        x = lo + (hi - lo) * s
        y, dy_dx = f(x)
        history.append((y, math.nan, x.copy(), tau_db))
        upd, state = opt.update(jnp.asarray(-dy_dx * (hi - lo) * s * (1 - s)), state)
        v = v + np.asarray(upd)
    x = lo + (hi - lo) / (1.0 + np.exp(-v))
    return dict(zip(names, x)), history, math.nan


def optimize(cfg) -> xr.Dataset:
    """Tolerance allocation or design centring (``optimize.kind``) of a configuration.

    Returns:
      Dataset with the history over ``step`` (``history_yield`` smoothed, ``history_cost``,
      ``history_value`` over ``parameter``, ``history_tau_db``), the ``optimum`` per
      parameter, and the re-check on fresh random numbers: ``yield`` (hard indicator),
      ``yield_ci_low``, ``yield_ci_high``, ``n_samples``, ``cost``.
    """
    job = as_job(cfg, mode="optimize")
    problem, settings, tau = job.problem, job.optimize, job.gradient.tau_db
    run = allocate_tolerances if settings.kind == "tolerance" else centre_design
    values, history, cost = run(problem, settings, tau)
    y, lo, hi, n = _recheck(problem, values, settings)
    names = list(values)
    from yieldmc.io.results import provenance

    attrs = provenance(problem, job.config_yaml)
    attrs.update({"kind": settings.kind, "target_yield": float(settings.target_yield)})
    return xr.Dataset(
        {
            "history_yield": ("step", np.array([h[0] for h in history]),
                              {"units": "1", "long_name": "smoothed yield on the fixed draws"}),
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
