"""Yield sensitivities: ∂Y/∂θ with standard errors, as an xarray Dataset (edge).

``sensitivity(cfg)`` runs the configuration's estimator (``gradient.estimator``, one of
:data:`yieldmc.engine.estimators.ESTIMATORS`) over its blocks and reports, for every
package nominal, every parameter of every active variation and the loss spec, the
gradient, its Monte-Carlo standard error and the elasticity θ/Y·∂Y/∂θ. With ``uncertain``
inputs these are of the expected yield E_θ[Y] over their realisations (README, "Model
uncertainty").
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import xarray as xr

from yieldmc.engine.blocks import block_counts
from yieldmc.analysis.gradients import block_sums
from yieldmc.engine.estimators import GradientEstimator, make_estimator
from yieldmc.job import as_job
from yieldmc.engine.conditions import drift_path, setting_path
from yieldmc.engine.problem import REALIZATION, Problem
from yieldmc.samplers import require_gradients
from yieldmc.engine.variation import process_key

def reported_parameters(problem: Problem) -> list[str]:
    """Package nominals, the parameters of every active variation, the conditions'
    settings and drift parameters, and the loss spec."""
    names = [k for k in problem.params if k.startswith("package.")]
    for q, lv, dist in problem.static.active:
        names += [process_key(q, lv, p) for p in dist.params]
    for c in problem.static.conditions:
        names += [setting_path(c.name, q) for q in c.settings]
        for q, lv, dist in c.drift:
            names += [f"{drift_path(c.name, q, lv)}.{p}" for p in dist.params]
    return names + ["spec.max_loss_db"]


def estimate_gradient(problem: Problem, *, estimator, tau_db: float | None = None, names=None,
                      richardson: bool = False, progress=None):
    """Yield and gradient estimates over all blocks of a single-point problem.

    Args:
      estimator: a :class:`yieldmc.engine.estimators.GradientEstimator`, or a name of
        :data:`~yieldmc.engine.estimators.ESTIMATORS` built with ``tau_db``.
      richardson: for an estimator with a smoothing bias (pathwise), also evaluate the
        gradient at half the smoothing on the same draws and estimate the bias by
        Richardson extrapolation (twice the cost).
      progress: None or a callable given the modules of each finished group of blocks
        (:class:`yieldmc.io.progress.Progress`; a Richardson pass counts its modules again).

    Returns:
      dict with ``yield`` (hard), ``yield_smoothed`` (pathwise only), ``gradient`` and
      ``gradient_se`` (name → float), ``n_samples``, ``n_blocks``; with ``richardson``
      also ``gradient_bias`` and ``gradient_bias_se``.
    """
    if problem.sweep_keys:
        raise ValueError("sweep: sensitivities are computed at one point; remove the sweep")
    require_gradients(problem, what="a sensitivity", weighted=True)
    if not isinstance(estimator, GradientEstimator):
        estimator = make_estimator(estimator, tau_db=tau_db)
    names = names or reported_parameters(problem)
    sums = block_sums(problem, estimator, names, progress=progress)
    g = sums.gradient  # (K, n_params): per-block sums
    counts = block_counts(problem, np.arange(problem.n_blocks))
    n = float(counts.sum())
    k = len(counts)

    def mean_se(sums):
        m = sums.sum(axis=0) / n
        resid = sums - counts[:, None] * m[None, :]
        if k < 2:  # the error comes from the spread of the blocks: one block has none
            return m, np.full_like(m, np.nan)
        return m, np.sqrt(k / (k - 1) * np.sum(resid**2, axis=0)) / n

    mean, se = mean_se(g)
    out = {
        "yield": 1.0 - sums.failed / n,
        "gradient": dict(zip(names, mean)),
        "gradient_se": dict(zip(names, se)),
        "n_samples": int(n),
        "n_blocks": k,
    }
    if sums.value is not None:
        out["yield_smoothed"] = sums.value / n
    pair = estimator.richardson(problem.static) if richardson else None
    if pair is not None:  # g(τ) = g0 + c·τ^p + …: bias(τ) ≈ (g(τ) − g(τ/2))·2^p/(2^p − 1)
        half, factor = pair
        bias, bias_se = mean_se((g - block_sums(problem, half, names, progress=progress).gradient) * factor)
        out["gradient_bias"] = dict(zip(names, bias))
        out["gradient_bias_se"] = dict(zip(names, bias_se))
    return out


def realization_problems(problem: Problem) -> list[Problem]:
    """The single-point problems of a run: itself, or with ``uncertain`` inputs one per
    outer realisation (its values as the point's parameters; the same module draws)."""
    if not problem.uncertain:
        return [problem]
    if problem.sweep_keys != (REALIZATION,):
        raise ValueError("sweep: sensitivities are computed at one point; remove the sweep")
    return [dataclasses.replace(problem, params={k: v[i:i + 1] for k, v in problem.params.items()},
                                sweep_keys=(), sweep_values=(), uncertain=(), uncertain_values=None)
            for i in range(problem.n_points)]


def expected_over_realizations(ests: list[dict]) -> dict:
    """The estimates of :func:`estimate_gradient` at R realisations → those of the expected
    yield E_θ[Y] (θ the uncertain inputs): the mean of each over the realisations.

    The gradient of E_θ[Y] with respect to a parameter ψ is E_θ[∂Y/∂ψ] (for an uncertain
    input itself: the derivative for a shift of its whole distribution). Its standard error
    adds the outer error of a mean of R values (their spread over √R) to the inner
    Monte-Carlo error, bounded by the mean of the R inner errors: the realisations share
    the module draws, so their inner errors are correlated and the error of their mean is at
    most the mean error (a bound, not the spread's estimate, which the sharing would shrink).
    """
    if len(ests) == 1:
        return ests[0]
    r = len(ests)
    out = {"yield": float(np.mean([e["yield"] for e in ests])),
           "n_samples": int(sum(e["n_samples"] for e in ests)), "n_blocks": ests[0]["n_blocks"]}
    if "yield_smoothed" in ests[0]:
        out["yield_smoothed"] = float(np.mean([e["yield_smoothed"] for e in ests]))
    for what in ("gradient", "gradient_bias"):
        if what not in ests[0]:
            continue
        names = list(ests[0][what])
        g = np.array([[e[what][k] for k in names] for e in ests])
        inner = np.array([[e[what + "_se"][k] for k in names] for e in ests]).mean(axis=0)
        se = np.sqrt(g.var(axis=0, ddof=1) / r + inner**2)
        out[what] = dict(zip(names, g.mean(axis=0)))
        out[what + "_se"] = dict(zip(names, se))
    return out


def sensitivity(cfg, *, estimator: str | None = None, progress=None) -> xr.Dataset:
    """∂Yield/∂θ for every nominal and distribution parameter, with standard errors.

    Args:
      cfg: configuration (``yieldmc.compose([...])``, a mapping or a parsed
        :class:`yieldmc.job.Job`); ``gradient.estimator`` and
        ``gradient.tau_db`` choose the estimator and the pathwise smoothing.
      estimator: a name of :data:`yieldmc.engine.estimators.ESTIMATORS` (``"pathwise"``,
        ``"score"``), overriding the configuration.
      progress: None (silent) or a factory ``progress(total, unit) -> Progress``
        (:class:`yieldmc.io.progress.Progress`), called once with the modules to evaluate.

    Returns:
      Dataset over ``parameter`` (config keys) with ``yield_gradient``,
      ``yield_gradient_se``, ``elasticity`` (θ/Y·∂Y/∂θ), ``value`` (θ) and the scalar
      ``yield`` (hard indicator) with its ``n_samples``.
    """
    job = as_job(cfg)
    settings = job.gradient
    estimator = settings.estimator if estimator is None else make_estimator(estimator, tau_db=settings.tau_db)
    problem = job.problem
    points = realization_problems(problem)
    richardson = estimator.richardson(problem.static) is not None
    bar = None if progress is None else progress(
        problem.samples * len(points) * (2 if richardson else 1), "samples")
    try:
        ests = [estimate_gradient(p, estimator=estimator, tau_db=settings.tau_db, richardson=richardson,
                                  progress=bar) for p in points]
    finally:
        if bar is not None:
            bar.close()
    est = expected_over_realizations(ests)
    names = list(est["gradient"])
    grad = np.array([est["gradient"][k] for k in names])
    se = np.array([est["gradient_se"][k] for k in names])
    value = np.array([float(np.mean(problem.params[k])) for k in names])
    y = est["yield"]
    with np.errstate(divide="ignore", invalid="ignore"):
        elasticity = value * grad / y
    data = {
        "yield_gradient": ("parameter", grad, {"units": "1/unit of the parameter",
                                               "long_name": "derivative of the module yield"}),
        "yield_gradient_se": ("parameter", se, {"units": "1/unit of the parameter",
                                                "long_name": "Monte-Carlo standard error of yield_gradient"}),
        "elasticity": ("parameter", elasticity, {"units": "1",
                                                 "long_name": "relative sensitivity theta/Y * dY/dtheta"}),
        "value": ("parameter", value, {"units": "unit of the parameter", "long_name": "parameter value"}),
        "yield": ((), y, {"units": "1", "long_name": "module yield (hard pass indicator)"}),
        "n_samples": ((), np.int64(est["n_samples"]), {"units": "1", "long_name": "number of module samples"}),
    }
    if "gradient_bias" in est:
        data["yield_gradient_bias"] = ("parameter", np.array([est["gradient_bias"][k] for k in names]), {
            "units": "1/unit of the parameter",
            "long_name": "estimated smoothing (tau) bias of yield_gradient: Richardson from tau and tau/2 "
                         "on the same draws; yield_gradient - yield_gradient_bias is the debiased value"})
        data["yield_gradient_bias_se"] = ("parameter", np.array([est["gradient_bias_se"][k] for k in names]), {
            "units": "1/unit of the parameter", "long_name": "Monte-Carlo standard error of yield_gradient_bias"})
        # a bias that matters: of a gradient distinguishable from 0, over 10 % of it and over
        # twice its standard error
        g, se, bias = est["gradient"], est["gradient_se"], est["gradient_bias"]
        large = [k for k in names if abs(g[k]) > 2 * se[k] and abs(bias[k]) > max(0.1 * abs(g[k]), 2 * se[k])]
        if large:
            warnings.warn(f"sensitivity: the pathwise smoothing bias exceeds 10 % of the gradient and twice its "
                          f"standard error for {large[0]}"
                          f"{f' and {len(large) - 1} more' if len(large) > 1 else ''} (yield_gradient_bias); "
                          "lower gradient.tau_db or use gradient.estimator=score", RuntimeWarning, stacklevel=2)
    if "yield_smoothed" in est:
        data["yield_smoothed"] = ((), est["yield_smoothed"], {
            "units": "1", "long_name": f"sigmoid-smoothed yield (tau = {settings.tau_db} dB)"})
    from yieldmc.provenance import provenance

    attrs = provenance(problem, job.config_yaml)
    attrs.update({"estimator": estimator.name, "tau_db": float(settings.tau_db), "realizations": len(points)})
    return xr.Dataset(data, coords={"parameter": ("parameter", names)}, attrs=attrs)


def ranked_table(ds: xr.Dataset, *, top: int = 15) -> str:
    """Tolerances ranked by |elasticity| ("tighten this first"), then the rest.

    Elasticities print with their sign and three significant digits; one whose parameter
    is 0 (θ/Y·∂Y/∂θ is 0 whatever the gradient) prints as ``0 (θ=0)``."""
    names = [str(p) for p in ds.parameter.values]
    values = ds["value"].values if "value" in ds else np.full(len(names), np.nan)
    rows = []
    for i, name in enumerate(names):
        e = float(ds.elasticity.values[i])
        g = float(ds.yield_gradient.values[i])
        if not np.isfinite(g) or g == 0.0:
            continue
        rows.append((name, g, float(ds.yield_gradient_se.values[i]), e, float(values[i])))
    tol = [r for r in rows if r[0].endswith((".sigma", ".high", ".low"))]
    rest = [r for r in rows if r not in tol]
    key = lambda r: -abs(r[3]) if np.isfinite(r[3]) else 0.0  # noqa: E731

    def elasticity(e, theta):
        if theta == 0:
            return "0 (θ=0)"
        return f"{e:+.3g}" if np.isfinite(e) else "n/a"

    r = int(ds.attrs.get("realizations", 1))
    what = f"expected yield over {r} realisations of the uncertain inputs" if r > 1 else "yield"
    lines = [f"{what} {float(ds['yield']):.4f} ({int(ds.n_samples)} modules, {ds.attrs['estimator']} estimator)",
             "tolerances, tighten from the top:",
             f"  {'parameter':<40} {'dY/dθ':>12} {'± se':>10} {'elasticity':>11}"]
    for name, g, s, e, theta in sorted(tol, key=key)[:top]:
        lines.append(f"  {name:<40} {g:>+12.4g} {s:>10.2g} {elasticity(e, theta):>11}")
    lines.append("nominals and spec:")
    for name, g, s, e, theta in sorted(rest, key=key)[:top]:
        lines.append(f"  {name:<40} {g:>+12.4g} {s:>10.2g} {elasticity(e, theta):>11}")
    return "\n".join(lines)
