"""Calibration: the process parameters that explain measured module losses.

``calibrate(cfg, data)`` fits the configuration keys named in ``calibrate.parameters``
(means and sigmas of any variation at any level, package nominals such as an excess
loss) to a table of measured channel losses, through the same differentiable model the
engine runs.

**What is matched.** Module-, layer- and channel-level spread are separable only through
the module structure, so the data are summarised per module — its mean loss, the spread
of its channels about their layer means, and (with several layers) the spread of its
layer means — and, pooled, every channel loss. For each of these statistics (and each
condition) the fit minimises the squared 2-Wasserstein distance between the measured and
the simulated distribution, ∫₀¹ (Q_sim(p) − Q_meas(p))² dp on 64 probability levels,
divided by the measured variance of that statistic (Villani, *Optimal Transport*, §6; in
one dimension W₂ is the L² distance of the quantile functions). The simulated losses come
from ``calibrate.samples`` modules on fixed draws (common random numbers), so the
objective is a smooth deterministic function of the parameters; it is minimised with
Adam (optax) over log σ for sigmas and over (θ − θ₀)/max(|θ₀|, 1) otherwise.

**Uncertainty.** A bootstrap over the measured modules (Efron & Tibshirani, *An
Introduction to the Bootstrap*, ch. 6): ``calibrate.bootstrap`` refits, each on modules
resampled with replacement and on fresh simulation draws (so the simulation's own noise
is included), warm-started at the estimate. ``value_se`` is their standard deviation.

**Identifiability.** The Jacobian J of the matched quantiles (each statistic scaled by
its measured spread) with respect to the normalised parameters, at the estimate: a
parameter whose column is ~0 does not change the losses; a smallest singular value below
1 % of the largest means a combination of parameters the data cannot resolve (the
parameters weighted most in its singular vector are named). A relative bootstrap error
over 50 % is flagged too. Warnings go into the ``warnings`` attribute (and are raised).

**Too few modules.** The spread of the module-level quantities is seen only across
modules, and the bootstrap's errors come from resampling them: fewer than
:data:`MIN_MODULES` measured modules cannot identify the parameters (one module gives a
"confident" error of zero), so such a fit is refused (:func:`check_enough_modules`). Below
:data:`GOF_MIN_MODULES` the fit runs with a warning: its errors are rough and the
goodness-of-fit test has little power.

**Goodness of fit.** At the estimate, on fresh draws: two-sample Kolmogorov–Smirnov tests
between measured and simulated per-module statistics (independent across modules, unlike
the channels of one module); p < 0.01 flags a model that cannot reproduce the data, e.g. a
wrong distribution family. (The parameters were fitted to the same data, so the p-values
are conservative: a flag is meaningful.)
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import functools
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import xarray as xr
import yaml

from yieldmc.engine.blocks import condition_parts, draw_block, split_draws
from yieldmc.engine.problem import Problem, Static
from yieldmc.measurements import MIN_MODULES, check_enough_modules  # noqa: F401
from yieldmc.samplers import mc
from yieldmc.job import CALIBRATION_MARKER, PROCESS_DIR, UNCERTAINTY_DIR, as_job, is_calibration_file
from yieldmc.outputs import write_replacing

#: Probability levels of the matched quantile functions.
N_QUANTILES = 64
#: The statistics matched: pooled channel losses, then the per-module ones (KS-tested).
STATISTICS = ("channel_loss", "module_mean", "within_layer_spread", "between_layer_spread")
PER_MODULE = STATISTICS[1:]
#: A goodness-of-fit flag below this KS p-value; identifiability thresholds.
GOF_P, RANK_RATIO, MAX_RELATIVE_SE = 0.01, 0.01, 0.5
#: Fewer measured modules (but at least MIN_MODULES) fit with a warning: a two-sample KS
#: test on under 20 modules detects only gross misfits (its 1 % critical distance exceeds
#: 0.36), and the bootstrap error itself is uncertain by over 15 %.
GOF_MIN_MODULES = 20


def statistics(loss) -> dict:
    """The matched statistics of losses (K, L, C, M) (module axis last): name → (K, n).

    ``channel_loss`` pools every channel (n = L·C·M); the per-module ones (n = M) are the
    module mean, the RMS deviation of the channels from their layer's mean, and (L > 1) the
    standard deviation of the layer means.
    """
    k, nl, nc, m = loss.shape
    xp = jnp if isinstance(loss, jax.Array) else np
    layer_mean = loss.mean(axis=2, keepdims=True)  # (K, L, 1, M)
    out = {
        "channel_loss": loss.reshape(k, -1),
        "module_mean": loss.mean(axis=(1, 2)),
        "within_layer_spread": xp.sqrt(((loss - layer_mean) ** 2).mean(axis=(1, 2))),
    }
    if nl > 1:
        out["between_layer_spread"] = layer_mean[:, :, 0, :].std(axis=1)
    return out


def _levels() -> np.ndarray:
    return (np.arange(N_QUANTILES) + 0.5) / N_QUANTILES


def targets(measured_klcm: np.ndarray) -> dict:
    """Measured quantiles and variances of each statistic: name → ((K, Q), (K,))."""
    p = _levels()
    out = {}
    for name, values in statistics(measured_klcm).items():
        q = np.quantile(values, p, axis=1).T  # (K, Q)
        var = np.maximum(values.var(axis=1), 1e-12 + 1e-6 * np.mean(values, axis=1) ** 2)
        out[name] = (q, var)
    return out


@dataclasses.dataclass(frozen=True)
class Transform:
    """Normalised parameters θ ↔ values: log for sigmas, else (x − x₀)/max(|x₀|, 1)."""

    names: tuple
    initial: tuple

    def is_log(self, i: int) -> bool:
        return self.names[i].endswith(".sigma")

    def scale(self, i: int) -> float:
        return max(abs(self.initial[i]), 1.0)

    def values(self, theta):
        out = []
        for i in range(len(self.names)):
            out.append(jnp.exp(theta[i]) if self.is_log(i) else self.initial[i] + self.scale(i) * theta[i])
        return out

    def theta0(self) -> np.ndarray:
        return np.array([math.log(v) if self.is_log(i) else 0.0 for i, v in enumerate(self.initial)])

    def numpy_values(self, theta) -> np.ndarray:
        return np.array([float(v) for v in self.values(np.asarray(theta, np.float64))])


def _sim_static(static: Static, samples: int) -> Static:
    return dataclasses.replace(static, block_size=samples, sampler=mc.PLAIN)


def _simulated(theta, u, base, static: Static, transform: Transform):
    params = dict(base)
    for name, value in zip(transform.names, transform.values(theta)):
        params[name] = jnp.asarray(value, base[name].dtype)
    return condition_parts(split_draws(u, static), params, static)["loss"]  # (K, L, C, S)


def _matched(theta, u, base, static, transform, target):
    """Concatenated (Q_sim − Q_meas)/sd_meas of every statistic and condition."""
    sim = statistics(_simulated(theta, u, base, static, transform))
    p = jnp.asarray(_levels(), u.dtype)
    parts = []
    for name, (q_meas, var) in target.items():
        q_sim = jnp.quantile(sim[name], p, axis=1).T  # (K, Q)
        parts.append(((q_sim - q_meas) / jnp.sqrt(var)[:, None]).reshape(-1))
    return jnp.concatenate(parts)


@functools.lru_cache(maxsize=None)
def _programs(static: Static, transform: Transform, steps: int, learning_rate: float):
    """(fit: Adam over ``steps`` from θ, objective history; Jacobian of the matched vector)."""
    opt = optax.adam(learning_rate)

    def objective(theta, u, base, target):
        r = _matched(theta, u, base, static, transform, target)
        return jnp.mean(r * r)

    grad = jax.value_and_grad(objective)

    def fit(theta, u, base, target):
        def step(carry, _):
            theta, state = carry
            value, g = grad(theta, u, base, target)
            updates, state = opt.update(g, state)
            return (optax.apply_updates(theta, updates), state), value

        (theta, _), history = jax.lax.scan(step, (theta, opt.init(theta)), None, length=steps)
        return theta, history, objective(theta, u, base, target)

    def jacobian(theta, u, base, target):
        return jax.jacfwd(lambda t: _matched(t, u, base, static, transform, target))(theta)

    return jax.jit(fit), jax.jit(jacobian)


@dataclasses.dataclass(frozen=True)
class CalibrationResult:
    """A fit (:func:`fit_parameters`): values, bootstrap errors and replicates, the
    objective before and after, the goodness of fit (condition × per-module statistic),
    the Jacobian's singular values, the warnings, and the measured and fitted losses."""

    names: tuple
    value: np.ndarray
    value_se: np.ndarray
    initial: np.ndarray
    bootstrap: np.ndarray  # (B, P)
    objective: float
    objective_initial: float
    gof_statistic: np.ndarray  # (K, S)
    gof_p_value: np.ndarray  # (K, S)
    gof_names: tuple
    singular_values: np.ndarray
    warnings: tuple
    measured: np.ndarray  # (K, L, C, M)
    simulated: np.ndarray  # (K, L, C, S) at the estimate, fresh draws


def fit_parameters(problem: Problem, measured_mklc: np.ndarray, names, *, samples: int, steps: int,
                   bootstrap: int, learning_rate: float, seed: int | None = None,
                   progress=None) -> CalibrationResult:
    """Fit the named parameters of a single-point problem to measured losses (M, K, L, C).

    Args:
      problem: the problem at its starting values (one sweep point).
      measured_mklc: measured losses, (modules, conditions, layers, channels).
      names: the config keys to fit (keys of ``problem.params``).
      samples: simulated modules per objective evaluation.
      steps: Adam steps of the fit (each bootstrap refit takes a third of them).
      bootstrap: bootstrap refits (≥ 2).
      learning_rate: Adam's step size in normalised units.
      seed: random seed (default ``problem.seed``).
      progress: None or a callable given the Adam steps of each finished fit, with a
        ``note(text)`` method (:class:`yieldmc.io.progress.Progress`; the whole work is
        ``steps + bootstrap·max(steps // 3, 1)`` steps).

    Returns:
      :class:`CalibrationResult`.
    """
    from scipy.stats import ks_2samp

    seed = problem.seed if seed is None else seed
    static = _sim_static(problem.static, samples)
    dtype = jnp.dtype(static.dtype)
    base = {k: jnp.asarray(np.asarray(v)[0], dtype) for k, v in problem.params.items()}
    transform = Transform(tuple(names), tuple(float(problem.params[k][0]) for k in names))
    fit, jacobian = _programs(static, transform, int(steps), float(learning_rate))
    refit, _ = _programs(static, transform, max(int(steps) // 3, 1), float(learning_rate))
    measured = np.moveaxis(np.asarray(measured_mklc, np.float64), 0, -1)  # (K, L, C, M)

    def draws(i):  # the draws of block i, as the engine draws them
        return draw_block(seed, i, static)

    def device_target(t):
        return {n: (jnp.asarray(q, dtype), jnp.asarray(v, dtype)) for n, (q, v) in t.items()}

    target = device_target(targets(measured))
    u0 = draws(0)
    theta0 = jnp.asarray(transform.theta0(), dtype)
    theta, history, obj = fit(theta0, u0, base, target)
    objective_initial = float(history[0])
    if progress is not None:
        progress(int(steps))
        progress.note(f"fit: objective {objective_initial:.4g} -> {float(obj):.4g}; bootstrap of {int(bootstrap)} "
                      "refits follows")
    rng = np.random.default_rng([seed, 0xCA1])
    m = measured.shape[-1]
    boot = []
    for b in range(int(bootstrap)):
        pick = rng.integers(0, m, m)
        tb, _, _ = refit(theta, draws(b + 1), base, device_target(targets(measured[..., pick])))
        boot.append(transform.numpy_values(tb))
        if progress is not None:
            progress(max(int(steps) // 3, 1))
    boot = np.asarray(boot)
    value = transform.numpy_values(theta)
    se = boot.std(axis=0, ddof=1) if len(boot) > 1 else np.full(len(names), np.nan)
    notes = []
    if m < GOF_MIN_MODULES:
        notes.append(f"calibrate: only {m} measured modules: the errors are rough and the goodness-of-fit test "
                     f"detects only gross misfits (measure {GOF_MIN_MODULES} or more)")
    jac = np.asarray(jacobian(theta, u0, base, target), np.float64)  # (R, P)
    sv = np.linalg.svd(jac, compute_uv=False) if jac.size else np.zeros(0)
    column = np.linalg.norm(jac, axis=0)
    for i, name in enumerate(names):
        if column[i] <= 1e-6 * max(column.max(), 1e-30):
            notes.append(f"calibrate: the measured losses do not depend on {name}: it cannot be identified")
    if len(sv) > 1 and sv[-1] < RANK_RATIO * sv[0]:
        _, _, vt = np.linalg.svd(jac)
        weak = np.argsort(-np.abs(vt[-1]))[:2]
        notes.append("calibrate: the data cannot separate " + " and ".join(names[i] for i in sorted(weak))
                     + f" (Jacobian singular values {sv[-1]:.3g} vs {sv[0]:.3g})")
    for i, name in enumerate(names):
        if np.isfinite(se[i]) and se[i] > MAX_RELATIVE_SE * max(abs(value[i]), 1e-12):
            notes.append(f"calibrate: {name} is poorly identified (bootstrap error {se[i]:.3g} for value "
                         f"{value[i]:.3g})")
    sim = np.asarray(_simulated(theta, draws(10**6), base, static, transform), np.float64)
    s_meas, s_sim = statistics(measured), statistics(sim)
    gof_names = tuple(n for n in PER_MODULE if n in s_meas)
    k = measured.shape[0]
    stat = np.zeros((k, len(gof_names)))
    pval = np.zeros((k, len(gof_names)))
    for j, name in enumerate(gof_names):
        for c in range(k):
            r = ks_2samp(s_meas[name][c], s_sim[name][c])
            stat[c, j], pval[c, j] = r.statistic, r.pvalue
            if r.pvalue < GOF_P:
                notes.append(f"calibrate: goodness of fit: the {name.replace('_', ' ')} of the measured modules "
                             f"differs from the fitted model (KS p = {r.pvalue:.2g}); the model (e.g. a "
                             "distribution family) may be wrong")
    return CalibrationResult(tuple(names), value, se, np.asarray(transform.initial), boot, float(obj),
                             objective_initial, stat, pval, gof_names, sv, tuple(notes), measured, sim)


# ----------------------------------------------------------------------------- edge
def calibration_dataset(result: CalibrationResult, *, problem: Problem, config_yaml: str, source: str,
                        process_yaml: str) -> xr.Dataset:
    """``value``, ``value_se`` (and ``initial``, the bootstrap) over ``parameter``; the
    goodness-of-fit statistics over ``condition_index`` × ``statistic``."""
    from yieldmc.provenance import provenance

    attrs = provenance(problem, config_yaml)
    attrs.update({"title": "yieldmc calibration", "data": source, "objective": result.objective,
                  "objective_initial": result.objective_initial, "warnings": " | ".join(result.warnings),
                  "process_yaml": process_yaml, "n_modules": int(result.measured.shape[-1]),
                  "method": "squared 2-Wasserstein distance of quantile functions (channel losses and per-module "
                            "statistics), Adam on fixed draws; bootstrap over modules"})
    names = list(result.names)
    probs = _levels()
    s_meas, s_sim = statistics(result.measured), statistics(result.simulated)
    matched = list(s_meas)
    q_meas = np.stack([np.quantile(s_meas[n], probs, axis=1).T for n in matched], axis=1)  # (K, S, Q)
    q_sim = np.stack([np.quantile(s_sim[n], probs, axis=1).T for n in matched], axis=1)
    return xr.Dataset({
        "measured_quantile": (("condition_index", "matched", "probability"), q_meas, {
            "units": "dB", "long_name": "quantile of the measured statistic"}),
        "fitted_quantile": (("condition_index", "matched", "probability"), q_sim, {
            "units": "dB", "long_name": "quantile of the statistic under the fitted model (fresh draws)"}),
        "value": ("parameter", result.value, {"long_name": "fitted value (unit of the parameter)"}),
        "value_se": ("parameter", result.value_se, {"long_name": "bootstrap standard error of value"}),
        "initial": ("parameter", result.initial, {"long_name": "starting value (the configuration's)"}),
        "bootstrap_value": (("replicate", "parameter"), result.bootstrap, {
            "long_name": "refit on modules resampled with replacement and fresh simulation draws"}),
        "gof_ks_statistic": (("condition_index", "statistic"), result.gof_statistic, {
            "long_name": "two-sample Kolmogorov-Smirnov statistic, measured vs fitted model"}),
        "gof_p_value": (("condition_index", "statistic"), result.gof_p_value, {
            "long_name": "KS p-value (conservative: the parameters were fitted to these data)"}),
    }, coords={"parameter": ("parameter", names), "statistic": ("statistic", list(result.gof_names)),
               "matched": ("matched", matched), "probability": ("probability", probs)},
        attrs=attrs)


def _header(result: CalibrationResult, *, source: str, what: str, use: str) -> list[str]:
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"{CALIBRATION_MARKER} ({when}) from {source}: {what}", f"# select it with {use}.",
             "# Fitted (bootstrap standard error):"]
    lines += [f"#   {k} = {v:.6g} +- {s:.2g}" for k, v, s in zip(result.names, result.value, result.value_se)]
    return lines + [f"# {w}" for w in result.warnings]


def process_yaml(config: dict, result: CalibrationResult, *, name: str, source: str) -> str:
    """A process config (``process=<name>``) with the fitted values; package keys fitted
    as well make it a global-package file that also sets them. A fitted condition drift
    belongs to the conditions, not the process: it is named in a comment (and is an
    uncertain input of :func:`uncertainty_yaml`)."""
    process = copy.deepcopy(config["process"])
    package, drifts = {}, []
    for key, value in zip(result.names, result.value):
        parts = key.split(".")
        if parts[0] == "conditions":
            drifts.append(f"#   {key}: {float(value):.6g}")
            continue
        target, path = (process, parts[1:]) if parts[0] == "process" else (package, parts[1:])
        for p in path[:-1]:
            target = target.setdefault(p, {})
        target[path[-1]] = float(value)
    lines = _header(result, source=source, what="process parameters fitted to measured module losses",
                    use=f"process={name}")
    if drifts:
        lines += ["# Fitted condition drifts (set them in your conditions; not applied by this file):", *drifts]
    body = {"process": process, "package": package} if package else process
    if package:  # Hydra reads the directive only in the file's leading "# @" lines
        lines.insert(0, "# @package _global_")
    return "\n".join(lines) + "\n" + yaml.safe_dump(body, sort_keys=False)


def uncertainty_yaml(result: CalibrationResult, *, name: str, source: str) -> str:
    """An uncertainty config (``uncertainty=<name>``): each fitted value as an ``uncertain``
    entry, normal with the bootstrap standard error as its sigma (a sigma's truncated at 0),
    so that a band run carries what the measurements leave open. A value without a finite,
    positive error is left out (said in the file)."""
    entries, left = {}, []
    for key, value, se in zip(result.names, result.value, result.value_se):
        if not (np.isfinite(se) and se > 0):
            left.append(key)
            continue
        entry = {"distribution": "normal", "mean": float(value), "sigma": float(se)}
        if key.endswith(".sigma"):
            entry.update(distribution="truncnormal", low=0.0)
        entries[key] = entry
    lines = _header(result, source=source, use=f"uncertainty={name}",
                    what="the fitted values as uncertain inputs (their bootstrap errors as spread)")
    lines += [f"# left out (no finite, positive bootstrap error): {k}" for k in left]
    return "# @package _global_\n" + "\n".join(lines) + "\n" + yaml.safe_dump({"uncertain": entries}, sort_keys=False)


def warn_all(result: CalibrationResult) -> None:
    for note in result.warnings:
        warnings.warn(note, RuntimeWarning, stacklevel=3)


def calibrate(cfg, data=None, *, write_process: bool = False, base=None, progress=None) -> xr.Dataset:
    """Fit process parameters to measured module losses (module docstring).

    Args:
      cfg: a configuration (``yieldmc.compose([...])``, a mapping or a parsed job) whose
        ``calibrate.parameters`` name the keys to fit; its values are the starting point.
      data: the measured losses — a path (CSV with columns ``module, layer, channel,
        loss_db`` [+ ``condition``], netCDF, zarr), a pandas DataFrame or an xarray
        Dataset; default ``calibrate.data``.
      write_process: also write the fitted process to ``conf/process/<calibrate.name>.yaml``
        under ``base`` (default: the current directory), usable as ``process=<name>``, and
        the fitted values as uncertain inputs to ``conf/uncertainty/<calibrate.name>.yaml``
        (``uncertainty=<name>``)
        (default False: the Python API writes no file unless asked; ``mode=calibrate``
        writes it). Its text is always in the attribute ``process_yaml``.
      base: the directory relative paths are relative to.
      progress: None (silent) or a factory ``progress(total, unit) -> Progress``
        (:class:`yieldmc.io.progress.Progress`), called once with the Adam steps.

    Returns:
      Dataset with ``value``, ``value_se`` (and ``initial``, ``bootstrap_value``) over
      ``parameter`` (config keys), the goodness-of-fit statistics, and attributes
      ``warnings``, ``process_yaml`` and ``uncertainty_yaml``.

    Raises:
      ValueError: one line naming the key or the data's column; too few modules to identify
        the parameters (:func:`check_enough_modules`).
    """
    from pathlib import Path

    from yieldmc.measurements import read_measurements

    job = as_job(cfg, mode="calibrate")  # a parsed Job is taken as it is
    if job.calibrate is None:
        raise ValueError(f"mode: yieldmc.calibrate needs a calibration job, got a job of mode={job.mode}")
    settings = job.calibrate
    base = Path(base) if base is not None else Path.cwd()
    source = data if data is not None else settings.data
    if source is None:
        raise ValueError("calibrate.data: give the measured losses (a CSV with columns module, layer, channel, "
                         "loss_db)")
    s = job.problem.static
    measured = read_measurements(source, layers=s.layers, channels=s.channels,
                                 conditions=tuple(c.name for c in s.conditions), base=base)
    check_enough_modules(int(measured.loss_db.shape[0]), settings.parameters)
    bar = None
    if progress is not None:
        bar = progress(settings.steps + settings.bootstrap * max(settings.steps // 3, 1), "Adam steps")
    try:
        result = fit_parameters(job.problem, measured.loss_db, settings.parameters, samples=settings.samples,
                                steps=settings.steps, bootstrap=settings.bootstrap,
                                learning_rate=settings.learning_rate, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    config = yaml.safe_load(job.config_yaml)
    text = process_yaml(config, result, name=settings.name, source=measured.source)
    ds = calibration_dataset(result, problem=job.problem, config_yaml=job.config_yaml, source=measured.source,
                             process_yaml=text)
    ds.attrs["uncertainty_yaml"] = uncertainty_yaml(result, name=settings.name, source=measured.source)
    if write_process:
        for group, body, attr in ((PROCESS_DIR, text, "process_file"),
                                  (UNCERTAINTY_DIR, ds.attrs["uncertainty_yaml"], "uncertainty_file")):
            target = base / group / f"{settings.name}.yaml"
            target.parent.mkdir(parents=True, exist_ok=True)
            if not write_replacing(body.encode("utf-8"), target, ours=is_calibration_file):  # complete or absent
                raise ValueError(f"calibrate.name: {target} exists and was not written by yieldmc; "
                                 "choose another name")
            ds.attrs[attr] = str(target)
    warn_all(result)
    return ds
