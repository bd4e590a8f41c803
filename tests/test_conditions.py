"""Conditions — the qualification envelope (docs/physics.md, "Conditions"): closed forms
for the envelope, the per-condition and the leave-one-out yields, a drift condition,
common draws, gradients, composition with sweeps, samplers and shards, and the bad-input
messages.

Closed forms: a butt-coupled package whose only variation is a shared (module-level)
lateral offset dx ~ N(0, σ²). Channel c at temperature T sits at dx + r_c(T) with the
thermal run-out r_c(T) = x_c·Δα·(T − T_lock) (x_c = (c − (C−1)/2)·pitch), and passes while
|dx + r_c(T)| ≤ h(T), h(T) the offset at which the loss reaches the spec (a root of the
float64 model at that temperature without run-out). So under condition k the module passes
on the interval I_k = [−h_k − min_c r_c, h_k − max_c r_c], the envelope on ∩_k I_k, and each
probability is a difference of two normal CDFs (erf of each end). Monte-Carlo counts are
compared with 4.5 binomial standard errors at their N.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.stats import norm

import yieldmc
from yieldmc.engine.model import channel_loss_parts, nominal_values
from yieldmc.configuration.parse import build_problem
from yieldmc.io.config import to_container

SIGMA = 0.6  # µm, the shared offset
N = 2**16
COLD, HOT = -40.0, 125.0
BASE = ["package/coupler=butt", "process=none", f"process.dx_um.module.sigma={SIGMA}", f"samples={N}",
        "output.plots=false", "engine.block_size=8192"]
TWO = f"conditions={{cold:{{temperature_c:{COLD}}},hot:{{temperature_c:{HOT}}}}}"


def _tol(p, n=N):
    return 4.5 * math.sqrt(max(p * (1 - p), 1.0 / n) / n)


def _half_width_um(overrides, temperature_c):
    """h(T): the lateral offset at which the float64 model's channel loss reaches the spec,
    at ``temperature_c`` without run-out (CTE mismatch 0)."""
    cfg = to_container(yieldmc.compose([*overrides, "conditions=none", f"package.temperature_c={temperature_c}",
                                        "package.cte_mismatch_ppm_per_k=0", "engine.dtype=float64"]))
    problem = build_problem(cfg)
    params = {k: jnp.asarray(v[0]) for k, v in problem.params.items()}
    base = nominal_values(params, problem.static)

    def excess(d):
        values = dict(base, dx_um=jnp.asarray(d))
        return float(channel_loss_parts(values, params, problem.static)["loss"][0, 0, 0]) - cfg["spec"]["max_loss_db"]

    assert excess(0.0) < 0
    return brentq(excess, 0.0, 20.0, xtol=1e-10)


def _intervals(overrides, temps):
    cfg = to_container(yieldmc.compose([*overrides, "conditions=none"]))
    pkg = cfg["package"]
    c = np.arange(pkg["channels"])
    x = (c - 0.5 * (pkg["channels"] - 1)) * pkg["pitch_um"]
    out = []
    for t in temps:
        r = x * pkg["cte_mismatch_ppm_per_k"] * 1e-6 * (t - pkg["lock_temperature_c"])
        h = _half_width_um(overrides, t)
        out.append((-h - r.min(), h - r.max()))
    return out


def _p(lo, hi, sigma=SIGMA):
    return max(0.0, norm.cdf(hi / sigma) - norm.cdf(lo / sigma))


@pytest.fixture(scope="module")
def two_conditions():
    return yieldmc.run(yieldmc.compose([*BASE, TWO]))


@pytest.mark.slow
def test_envelope_is_the_intersection_of_the_conditions_intervals(two_conditions):
    ds = two_conditions
    (lo_c, hi_c), (lo_h, hi_h) = _intervals(BASE, (COLD, HOT))
    assert hi_c - lo_c < hi_h - lo_h  # the cold run-out narrows the window (a real test of ∩)
    lo, hi = max(lo_c, lo_h), min(hi_c, hi_h)
    exact = {
        "yield": _p(lo, hi),
        "cold": _p(lo_c, hi_c),
        "hot": _p(lo_h, hi_h),
        # fails under cold only: in I_hot but not in I_cold
        "cold_only": _p(lo_h, hi_h) - _p(lo, hi),
        "hot_only": _p(lo_c, hi_c) - _p(lo, hi),
    }
    assert list(ds.condition.values) == ["cold", "hot"]
    got = {
        "yield": float(ds["yield"]),
        "cold": float(ds.condition_yield.sel(condition="cold")),
        "hot": float(ds.condition_yield.sel(condition="hot")),
        "cold_only": float(ds.condition_fail_only.sel(condition="cold")),
        "hot_only": float(ds.condition_fail_only.sel(condition="hot")),
    }
    for k in exact:
        assert abs(got[k] - exact[k]) <= _tol(exact[k]), (k, got[k], exact[k])
    # the envelope without one condition is the other condition's yield (two conditions)
    assert float(ds.yield_without_condition.sel(condition="cold")) == got["hot"]
    assert float(ds.yield_without_condition.sel(condition="hot")) == got["cold"]


@pytest.mark.slow
def test_envelope_never_exceeds_a_condition_and_common_draws_are_exact(two_conditions):
    ds = two_conditions
    n = int(ds.n_samples)
    n_env = int(ds.n_pass)
    per = np.rint(ds.condition_yield.values * n).astype(int)
    assert n_env <= per.min()  # exactly, with common draws
    # inclusion–exclusion with two conditions: n_env = n_cold + n_hot − n(pass at least one)
    only = np.rint(ds.condition_fail_only.values * n).astype(int)
    assert per[0] - n_env == only[1] and per[1] - n_env == only[0]
    # each condition evaluates the very modules of a run without conditions at its settings
    for name, t in (("cold", COLD), ("hot", HOT)):
        alone = yieldmc.run(yieldmc.compose([*BASE, f"package.temperature_c={t}"]))
        assert int(alone.n_pass) == per[list(ds.condition.values).index(name)]
        np.testing.assert_array_equal(alone.channel_fail_fraction.values,
                                      ds.channel_fail_fraction.sel(condition=name).values)


@pytest.mark.slow
def test_an_empty_condition_is_the_package_own_environment():
    plain = yieldmc.run(yieldmc.compose(BASE))
    one = yieldmc.run(yieldmc.compose([*BASE, "conditions={own:{}}"]))
    assert int(one.n_pass) == int(plain.n_pass)
    np.testing.assert_array_equal(one.loss_db_mean.sel(condition="own").values, plain.loss_db_mean.values)


@pytest.mark.slow
def test_drift_condition_convolves_two_gaussians():
    """One channel; the module offset N(0, σ_m²) plus, after the stress only, a drift
    N(0, σ_d²) of the channel: it passes with probability 2Φ(h/sqrt(σ_m² + σ_d²)) − 1."""
    sigma_d = 0.8
    over = [*BASE, "package.channels=1", "package.cte_mismatch_ppm_per_k=0"]
    cond = f"conditions={{before:{{}},after:{{process:{{dx_um:{{channel:{{sigma:{sigma_d}}}}}}}}}}}"
    ds = yieldmc.run(yieldmc.compose([*over, cond]))
    h = _half_width_um(over, 25.0)
    before = 2 * norm.cdf(h / SIGMA) - 1
    after = 2 * norm.cdf(h / math.hypot(SIGMA, sigma_d)) - 1
    assert abs(float(ds.condition_yield.sel(condition="before")) - before) <= _tol(before)
    assert abs(float(ds.condition_yield.sel(condition="after")) - after) <= _tol(after)
    env = float(ds["yield"])
    assert env <= min(float(v) for v in ds.condition_yield.values)


@pytest.mark.slow
def test_a_sweep_of_a_condition_value_does_not_recompile():
    from yieldmc.engine.blocks import compile_count

    cfg = yieldmc.compose([*BASE, TWO, "samples=8192", "sweep={conditions.hot.temperature_c:[85.0,125.0]}"])
    problem = build_problem(to_container(cfg))
    yieldmc.run(yieldmc.compose([*BASE, TWO, "samples=8192", "sweep={conditions.hot.temperature_c:[60.0,70.0]}"]))
    compiled = compile_count(problem)
    ds = yieldmc.run(cfg)
    assert compile_count(problem) == compiled  # other swept values of a condition: no new executable
    assert ds.condition_yield.dims == ("conditions.hot.temperature_c", "condition")
    # the cold condition does not move with the swept hot temperature (common draws)
    cold = ds.condition_yield.sel(condition="cold").values
    assert cold[0] == cold[1]


@pytest.mark.slow
def test_score_gradient_of_the_envelope_matches_the_closed_form():
    """dY/dσ of the envelope yield Y = Φ(hi/σ) − Φ(lo/σ): −(hi·φ(hi/σ) − lo·φ(lo/σ))/σ²."""
    (lo_c, hi_c), (lo_h, hi_h) = _intervals(BASE, (COLD, HOT))
    lo, hi = max(lo_c, lo_h), min(hi_c, hi_h)
    exact = -(hi * norm.pdf(hi / SIGMA) - lo * norm.pdf(lo / SIGMA)) / SIGMA**2
    for estimator in ("score", "pathwise"):
        g = yieldmc.sensitivity(yieldmc.compose([*BASE, TWO, "gradient.tau_db=0.005"]), estimator=estimator)
        key = "process.dx_um.module.sigma"
        grad, se = float(g.yield_gradient.sel(parameter=key)), float(g.yield_gradient_se.sel(parameter=key))
        # pathwise: the smoothing biases by O(τ²) plus at most τ·ln 2 in the smooth maximum
        # over the two conditions (dY/dh·τ·ln 2, dY/dh ≤ 2φ(0)/σ), added to its error
        bias = 0.0 if estimator == "score" else 0.005 * math.log(2) * 2 * norm.pdf(0) / SIGMA**2
        assert abs(grad - exact) <= 4.5 * se + bias, (estimator, grad, exact, se)


@pytest.mark.slow
def test_qmc_and_is_see_the_same_envelope(two_conditions):
    (lo_c, hi_c), (lo_h, hi_h) = _intervals(BASE, (COLD, HOT))
    exact = _p(max(lo_c, lo_h), min(hi_c, hi_h))
    q = yieldmc.run(yieldmc.compose([*BASE, TWO, "sampler=qmc", "engine.block_size=4096"]))
    assert float(q.yield_ci_low) - 1e-3 <= exact <= float(q.yield_ci_high) + 1e-3
    assert q.condition_yield.dims == ("condition",)
    # importance sampling of the union over conditions: a rare failure (σ small)
    sigma = 0.2
    lo_s, hi_s = max(lo_c, lo_h), min(hi_c, hi_h)
    pf = 1 - _p(lo_s, hi_s, sigma)
    ds = yieldmc.run(yieldmc.compose([*BASE, TWO, "sampler=is", f"process.dx_um.module.sigma={sigma}"]))
    se = float(ds.failure_probability_se)
    assert abs(float(ds.failure_probability) - pf) <= 4.5 * se, (float(ds.failure_probability), pf, se)
    assert ds.condition_yield.dims == ("condition",)


@pytest.mark.parametrize("override, key", [
    ("conditions={cold:{temp:-40}}", "conditions.cold.temp"),
    ("conditions={cold:{dx_um:1.0}}", "conditions.cold.dx_um"),
    ("conditions={}", "conditions"),
    ("conditions={cold:{temperature_c:-300}}", "conditions.cold.temperature_c"),
    ("conditions={cold:{polarization:xy}}", "conditions.cold.polarization"),
    ("conditions={cold:{process:{dx_um:{die:{sigma:1}}}}}", "conditions.cold.process.dx_um.die"),
    ("conditions={cold:{process:{dx_um:{channel:{sigma:-1}}}}}", "conditions.cold.process.dx_um.channel.sigma"),
    ("conditions={cold:{wavelength_um:1.45}}", "conditions.cold.wavelength_um"),
])
def test_bad_conditions_name_the_key(override, key):
    with pytest.raises(ValueError) as err:
        build_problem(to_container(yieldmc.compose([override], check=False)))
    assert str(err.value).startswith(key + ":") or str(err.value).startswith(key + " "), str(err.value)


@pytest.mark.slow
def test_sensitivity_to_a_condition_setting_matches_the_closed_form():
    """∂(envelope yield)/∂(conditions.cold.temperature_c): the pathwise estimate against a
    central difference of the closed form Φ(hi/σ) − Φ(lo/σ) (ends from the float64 model),
    within 4.5 SE plus twice the smoothing bias the dataset reports (Richardson from τ and
    τ/2) and the central difference's own O(dt²) error (≤ 1e-3 relative here)."""
    tau = 0.005

    def closed(t_cold):
        (lo_c, hi_c), (lo_h, hi_h) = _intervals(BASE, (t_cold, HOT))
        return _p(max(lo_c, lo_h), min(hi_c, hi_h))

    dt = 1.0
    exact = (closed(COLD + dt) - closed(COLD - dt)) / (2 * dt)
    ds = yieldmc.sensitivity(yieldmc.compose([*BASE, TWO, f"gradient.tau_db={tau}"]), estimator="pathwise")
    key = "conditions.cold.temperature_c"
    g, se = float(ds.yield_gradient.sel(parameter=key)), float(ds.yield_gradient_se.sel(parameter=key))
    assert "conditions.hot.temperature_c" in list(ds.parameter.values)
    assert abs(exact) > 10 * se  # a real signal: the cold run-out narrows the window
    # the smoothing and the smooth maximum shift the effective ends by O(τ) dB, i.e. by
    # O(τ/|dL/dd|) µm; bound its effect on dY/dT by the Richardson estimate the dataset reports
    bias = abs(float(ds.yield_gradient_bias.sel(parameter=key)))
    assert abs(g - exact) <= 4.5 * se + 2 * bias + 1e-3 * abs(exact), (g, exact, se, bias)


@pytest.mark.slow
def test_conditions_with_their_own_polarisation_equal_runs_at_that_polarisation():
    """Conditions that evaluate different polarisations (the unrolled path): each equals a
    run without conditions at package.polarization of that condition, on the same draws."""
    base = ["samples=16384", "engine.block_size=8192", "output.plots=false"]
    ds = yieldmc.run(yieldmc.compose([*base, "conditions={te:{polarization:te},tm:{polarization:tm}}"]))
    for pol in ("te", "tm"):
        alone = yieldmc.run(yieldmc.compose([*base, f"package.polarization={pol}"]))
        np.testing.assert_array_equal(alone.channel_fail_fraction.values,
                                      ds.channel_fail_fraction.sel(condition=pol).values)
        np.testing.assert_array_equal(alone.loss_db_mean.values, ds.loss_db_mean.sel(condition=pol).values)
