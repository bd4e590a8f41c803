"""Yield-gradient estimators vs closed-form derivatives and CRN finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest

import yieldmc
from yieldmc import validation
from yieldmc.analysis.gradients import soft_module_pass
from yieldmc.analysis.sensitivity import sensitivity

SIGMA = 0.5
KEY = "process.dx_um.channel.sigma"
N = 32768
ENGINE = [f"samples={N}", "engine.block_size=2048"]


def exact_channel_offset_derivative(sigma, channels=12, max_loss_db=0.3):
    """Y = p^C with p = erf(r/(σ√2)): dY/dσ = C·p^(C−1)·(−√(2/π)·r/σ²·exp(−r²/2σ²))."""
    w_x, _ = validation.pwg_mode_radii_um()
    r = w_x * math.sqrt(max_loss_db / validation.DB_PER_NEPER_POWER)
    p = math.erf(r / (sigma * math.sqrt(2)))
    dp = -math.sqrt(2 / math.pi) * r / sigma**2 * math.exp(-r * r / (2 * sigma**2))
    return channels * p ** (channels - 1) * dp


@pytest.fixture(scope="module")
def problem():
    return validation.channel_offset(sigma_um=SIGMA)


@pytest.fixture(scope="module")
def estimates(problem):
    cfg = yieldmc.compose(list(problem.overrides) + ENGINE + ["gradient.tau_db=0.01"])
    return {est: sensitivity(cfg, estimator=est) for est in ("pathwise", "score")}


@pytest.mark.slow
@pytest.mark.parametrize("estimator", ["pathwise", "score"])
def test_estimator_matches_exact_derivative(estimates, estimator):
    ds = estimates[estimator]
    g = float(ds.yield_gradient.sel(parameter=KEY))
    se = float(ds.yield_gradient_se.sel(parameter=KEY))
    exact = exact_channel_offset_derivative(SIGMA)
    assert 0 < se < 0.1 * abs(exact)
    assert abs(g - exact) < 4.5 * se, (g, se, exact)


@pytest.mark.slow
@pytest.mark.parametrize("estimator", ["pathwise", "score"])
def test_estimator_matches_crn_finite_difference(problem, estimates, estimator):
    """Central difference of the hard yield with the same draws (common random numbers):
    only samples whose pass status flips contribute, so its SE is sqrt(flips)/(2hN)."""
    h, n = 0.02, 4 * N
    runs = [yieldmc.run(yieldmc.compose(list(problem.overrides) + [f"samples={n}", "engine.block_size=8192",
                                                                    f"{KEY}={SIGMA + s * h}"]))
            for s in (1, -1)]
    up, down = (int(r.n_pass) for r in runs)
    fd = (up - down) / (2 * h * n)
    fd_se = math.sqrt(abs(down - up)) / (2 * h * n)  # passing set shrinks monotonically
    fd_bias = abs(exact_channel_offset_derivative(SIGMA + h) + exact_channel_offset_derivative(SIGMA - h)
                  - 2 * exact_channel_offset_derivative(SIGMA)) / 2  # O(h²) curvature bound
    ds = estimates[estimator]
    g, se = float(ds.yield_gradient.sel(parameter=KEY)), float(ds.yield_gradient_se.sel(parameter=KEY))
    assert abs(g - fd) < 4.5 * math.hypot(se, fd_se) + fd_bias, (g, se, fd, fd_se)


def test_score_covers_only_density_parameters(estimates):
    ds = estimates["score"]
    assert np.isnan(float(ds.yield_gradient.sel(parameter="package.pitch_um")))
    assert np.isfinite(float(ds.yield_gradient.sel(parameter=KEY)))


def test_pathwise_reports_every_nominal_and_elasticity(estimates):
    ds = estimates["pathwise"]
    params = [str(p) for p in ds.parameter.values]
    assert {"package.pitch_um", "package.coupler.mode_radius_x_um", KEY, "spec.max_loss_db"} <= set(params)
    e = float(ds.elasticity.sel(parameter=KEY))
    g = float(ds.yield_gradient.sel(parameter=KEY))
    assert e == pytest.approx(SIGMA * g / float(ds["yield"]))
    # Y depends on the ratio dx/w_x only: dY/dw·w = −dY/dσ·σ (scale invariance)
    gw = float(ds.yield_gradient.sel(parameter="package.coupler.mode_radius_x_um"))
    w = float(ds.value.sel(parameter="package.coupler.mode_radius_x_um"))
    # the chip mode is one of two radii in 2/(w1²+w2²): half the scale derivative
    assert gw * w == pytest.approx(-0.5 * g * SIGMA, rel=0.05)


@pytest.mark.slow
def test_smoothing_bias_shrinks_with_tau():
    """On one set of draws the smoothed yield tends to the hard yield as τ → 0, and the
    pathwise gradient tends to the exact one (the bias falls faster than the SE grows)."""
    problem = validation.module_offset(sigma_um=1.0)
    exact_y = problem.expected_yield
    w_x, _ = validation.pwg_mode_radii_um()
    r = w_x * math.sqrt(0.3 / validation.DB_PER_NEPER_POWER)
    exact_g = -math.sqrt(2 / math.pi) * r * math.exp(-r * r / 2)
    from yieldmc.analysis.sensitivity import estimate_gradient
    from yieldmc.io.config import problem_from_config

    key = "process.dx_um.module.sigma"
    p = problem_from_config(yieldmc.compose(list(problem.overrides) + ENGINE))
    bias_y, bias_g = [], []
    for tau in (0.2, 0.05, 0.0125):  # the estimator alone: no Richardson pass at tau/2
        est = estimate_gradient(p, estimator="pathwise", tau_db=tau, names=[key])
        bias_y.append(abs(est["yield_smoothed"] - est["yield"]))
        bias_g.append(abs(est["gradient"][key] - exact_g))
        se = est["gradient_se"][key]
    assert bias_y[0] > bias_y[1] > bias_y[2]
    assert bias_y[2] < 1e-3 and bias_g[0] > 5 * bias_g[2]
    assert bias_g[2] < 4.5 * se and abs(est["yield"] - exact_y) < 4.5 * math.sqrt(exact_y * (1 - exact_y) / N)


def test_soft_module_pass_tends_to_hard_and_respects_max_failed():
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    loss = jnp.asarray(rng.uniform(0, 2, size=(2, 5, 64)))  # (L, C, B)
    for m in (0, 1, 3):
        hard = (np.sum(np.asarray(loss) > 1.0, axis=(0, 1)) <= m).astype(float)
        soft = np.asarray(soft_module_pass(loss, max_loss_db=1.0, max_failed=m, tau_db=1e-4))
        np.testing.assert_allclose(soft, hard, atol=1e-6)
    assert np.all(np.asarray(soft_module_pass(loss, max_loss_db=1.0, max_failed=10, tau_db=0.1)) == 1)


@pytest.mark.slow
def test_richardson_estimate_of_the_smoothing_bias():
    """At a coarse τ the pathwise gradient is biased beyond its SE (−1.9 % at
    0.02 dB); the Richardson estimate from τ and τ/2 on the same draws finds that bias, and
    the debiased gradient holds the exact dY/dσ = −sqrt(2/π)·(r/σ²)·exp(−r²/(2σ²))·σ… of a
    shared offset (σ = 1: −sqrt(2/π)·r·exp(−r²/2)) within its errors."""
    problem = validation.module_offset(sigma_um=1.0)
    w_x, _ = validation.pwg_mode_radii_um()
    r = w_x * math.sqrt(0.3 / validation.DB_PER_NEPER_POWER)
    exact = -math.sqrt(2 / math.pi) * r * math.exp(-r * r / 2)
    ds = sensitivity(yieldmc.compose(list(problem.overrides) + ENGINE + ["gradient.tau_db=0.1"]),
                     estimator="pathwise")
    key = "process.dx_um.module.sigma"
    g, se = float(ds.yield_gradient.sel(parameter=key)), float(ds.yield_gradient_se.sel(parameter=key))
    bias, bias_se = (float(ds.yield_gradient_bias.sel(parameter=key)),
                     float(ds.yield_gradient_bias_se.sel(parameter=key)))
    assert abs(g - exact) > 4.5 * se  # the raw gradient's error bar does not cover the truth
    assert abs(bias) > 4.5 * bias_se and np.sign(bias) == np.sign(g - exact)
    assert abs((g - bias) - exact) <= 4.5 * (se + bias_se)


@pytest.mark.slow
def test_rare_yield_sensitivity_through_the_importance_weights():
    """sampler=is: dY/dσ of a shared offset at P_f = 2Φ(−r/σ) = 1e-6, exact
    −2φ(r/σ)·r/σ², from the score estimator weighted by the mixture's p/q (with the
    draws of plain MC, 32 768 modules would see no failure and give 0). dY/dμ is 0 by
    symmetry. Both within 4.5 reported SE; the SE under 5 % of the value. The pathwise
    estimator's smoothing bias is relatively large here, and its Richardson estimate says so."""
    from scipy.stats import norm

    w_x, _ = validation.pwg_mode_radii_um()
    r = w_x * math.sqrt(0.3 / validation.DB_PER_NEPER_POWER)
    sigma = r / norm.isf(0.5e-6)
    overrides = list(validation.module_offset(sigma_um=sigma).overrides) + [
        "samples=32768", "engine.block_size=4096", "sampler=is"]
    exact = -2 * norm.pdf(r / sigma) * r / sigma**2
    ds = sensitivity(yieldmc.compose(overrides), estimator="score").set_index(parameter="parameter")
    g = ds.yield_gradient.sel(parameter="process.dx_um.module.sigma").item()
    se = ds.yield_gradient_se.sel(parameter="process.dx_um.module.sigma").item()
    assert abs(g - exact) <= 4.5 * se and se < 0.05 * abs(exact), (g, exact, se)
    g_mean = ds.yield_gradient.sel(parameter="process.dx_um.module.mean").item()
    assert abs(g_mean) <= 4.5 * ds.yield_gradient_se.sel(parameter="process.dx_um.module.mean").item()
    assert abs(float(ds["yield"]) - (1 - 1e-6)) <= 1e-7
    with pytest.warns(RuntimeWarning, match="gradient.estimator=score"):
        pw = sensitivity(yieldmc.compose(overrides), estimator="pathwise")
    i = [str(p) for p in pw.parameter.values].index("process.dx_um.module.sigma")
    bias, bias_se = float(pw.yield_gradient_bias[i]), float(pw.yield_gradient_bias_se[i])
    assert abs(bias) > 0.1 * abs(float(pw.yield_gradient[i])) and abs(bias) > 10 * bias_se
