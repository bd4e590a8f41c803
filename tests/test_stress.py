"""Stress conditions, per-condition limits, the spec's scope and the loss parts
(docs/physics.md, "Conditions"), against closed forms.

Closed forms: a butt-coupled single channel (no thermal run-out) whose only variation is a
module-level lateral offset x0 ~ N(0, σm²). Its loss is f(x) = L0 + b·x² (the Gaussian
overlap in dB is quadratic in the offset; L0 and b from the float64 model, the quadratic
form checked). A stress whose drift is a channel offset d ~ N(0, σd²), read out in the
package's own environment, changes the loss by Δ = f(x0 + d) − f(x0) = b·(2·x0·d + d²):
E[Δ] = b·σd², Var[Δ] = b²·(4σm²σd² + 2σd⁴), and for a fixed d every event on Δ and on the
loss after is an interval of x0, so each probability is a 1-D integral over d of a
difference of normal CDFs (scipy.integrate.quad). Monte-Carlo counts are compared with 4.5
binomial standard errors at their N.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import quad
from scipy.optimize import brentq
from scipy.stats import norm

import yieldmc
from yieldmc.configuration.parse import build_problem
from yieldmc.engine.model import channel_loss_parts, nominal_values
from yieldmc.io.config import to_container

SIGMA_M, SIGMA_D = 1.0, 0.35  # µm: the module offset, the drift a stress leaves
N = 2**16
BASE = ["package/coupler=butt", "process=none", f"process.dx_um.module.sigma={SIGMA_M}", f"samples={N}",
        "output.plots=false", "engine.block_size=8192", "package.channels=1", "package.cte_mismatch_ppm_per_k=0"]
DRIFT = f"process:{{dx_um:{{channel:{{sigma:{SIGMA_D}}}}}}}"
CHANGE_DB = 0.15
OWN_DB = 1.2  # an absolute limit of a condition's own


def _tol(p, n=N):
    return 4.5 * math.sqrt(max(p * (1 - p), 1.0 / n) / n)


def _model(overrides):
    """The float64 model's loss parts of the channel at a lateral offset x (µm)."""
    cfg = to_container(yieldmc.compose([*overrides, "conditions=none", "engine.dtype=float64"]))
    problem = build_problem(cfg)
    params = {k: jnp.asarray(v[0]) for k, v in problem.params.items()}
    base = nominal_values(params, problem.static)

    def parts(x):
        out = channel_loss_parts(dict(base, dx_um=jnp.asarray(x)), params, problem.static)
        return float(out["loss"][0, 0, 0]), {k: float(v[0, 0, 0]) for k, v in out["parts"].items()}
    return cfg, parts


def _quadratic(f):
    """(L0, b) of f(x) = L0 + b·x², checked at three offsets."""
    l0, b = f(0.0), f(1.0) - f(0.0)
    assert abs(f(2.0) - (l0 + 4 * b)) <= 1e-9 * abs(b) and abs(f(-1.5) - (l0 + 2.25 * b)) <= 1e-9 * abs(b)
    return l0, b


def _x0_interval(d, lo, hi):
    """The x0 with lo ≤ 2·x0·d + d² ≤ hi (lo, hi in units of b)."""
    if d == 0.0:
        return (-math.inf, math.inf) if lo <= 0.0 <= hi else (0.0, 0.0)
    a, c = (lo - d * d) / (2 * d), (hi - d * d) / (2 * d)
    return (a, c) if d > 0 else (c, a)


def _over_drift(p_given_d):
    """E over d ~ N(0, σd²) of p_given_d(d)."""
    value, err = quad(lambda d: p_given_d(d) * norm.pdf(d / SIGMA_D) / SIGMA_D, -8 * SIGMA_D, 8 * SIGMA_D,
                      points=[0.0], limit=400, epsabs=1e-11)
    assert err < 1e-8
    return value


def _p_x0(lo, hi):
    return max(0.0, norm.cdf(hi / SIGMA_M) - norm.cdf(lo / SIGMA_M))


@pytest.fixture(scope="module")
def stressed():
    cond = (f"conditions={{change:{{kind:stress,{DRIFT},spec:{{max_loss_db:null,max_loss_change_db:{CHANGE_DB}}}}},"
            f"both:{{kind:stress,{DRIFT},spec:{{max_loss_db:{OWN_DB},max_loss_change_db:{CHANGE_DB}}}}},"
            f"still:{{kind:stress,readout:{{temperature_c:70}},spec:{{max_loss_change_db:0.01}}}}}}")
    return yieldmc.run(yieldmc.compose([*BASE, cond]))


@pytest.mark.slow
def test_a_stress_yield_is_the_closed_form_of_its_change_and_absolute_limits(stressed):
    _, parts = _model(BASE)
    l0, b = _quadratic(lambda x: parts(x)[0])
    h = math.sqrt((OWN_DB - l0) / b)  # |x| ≤ h: the loss meets the condition's absolute limit
    lim = CHANGE_DB / b

    def change_only(d):
        return _p_x0(*_x0_interval(d, -lim, lim))

    def both(d):
        lo, hi = _x0_interval(d, -lim, lim)
        return _p_x0(max(lo, -h - d), min(hi, h - d))  # and |x0 + d| ≤ h after the stress

    exact = {"change": _over_drift(change_only), "both": _over_drift(both)}
    assert 0.2 < exact["change"] < 0.9 and exact["both"] < exact["change"] - 4 * _tol(exact["change"])
    for name, p in exact.items():
        got = float(stressed.condition_yield.sel(condition=name))
        assert abs(got - p) <= _tol(p), (name, got, p)
    # the envelope: "both" implies "change"; "still" (no drift) fails where the loss at 70 °C exceeds the spec
    assert float(stressed["yield"]) <= float(stressed.condition_yield.sel(condition="both"))


@pytest.mark.slow
def test_the_loss_change_distribution_is_the_closed_form(stressed):
    _, parts = _model(BASE)
    _, b = _quadratic(lambda x: parts(x)[0])
    mean = float(stressed.loss_change_db_mean.sel(condition="change").squeeze())
    sd = b * math.sqrt(4 * SIGMA_M**2 * SIGMA_D**2 + 2 * SIGMA_D**4)
    # 4.5 standard errors, plus the fixed-point rounding (half a unit of 1e-4 dB per module)
    assert abs(mean - b * SIGMA_D**2) <= 4.5 * sd / math.sqrt(N) + 5e-5, (mean, b * SIGMA_D**2)

    def cdf(t):  # P(Δ < t) = P(2·x0·d + d² < t/b)
        return _over_drift(lambda d: _p_x0(*_x0_interval(d, -math.inf, t / b)))

    width = 20.0 / 2000  # engine.hist_max_db / engine.hist_bins
    quantiles = stressed.loss_change_db_quantile.sel(condition="change").squeeze()
    for q, edge in zip(quantiles["quantile"].values, quantiles.values):
        # the upper edge e of the bin holding q: P(Δ < e) ≥ q > P(Δ < e − width)
        assert cdf(edge) >= q - _tol(q) and cdf(edge - width) <= q + _tol(q), (q, edge)
    # operating conditions carry no change; a stress without drift changes nothing
    still = stressed.loss_change_db_mean.sel(condition="still").values
    assert np.all(still == 0.0)
    assert list(stressed.condition.values) == ["change", "both", "still"]


@pytest.mark.slow
def test_a_stress_without_drift_is_judged_at_its_readout():
    """No drift: the change is 0, so the stress passes exactly where the loss at its
    readout environment meets the spec — the modules of a run at that temperature."""
    cond = "conditions={still:{kind:stress,readout:{temperature_c:70},spec:{max_loss_change_db:0.01}},own:{}}"
    ds = yieldmc.run(yieldmc.compose([*BASE, "package.channels=4", cond]))
    alone = yieldmc.run(yieldmc.compose([*BASE, "package.channels=4", "package.temperature_c=70"]))
    np.testing.assert_array_equal(ds.channel_fail_fraction.sel(condition="still").values,
                                  alone.channel_fail_fraction.values)
    np.testing.assert_array_equal(ds.loss_db_mean.sel(condition="still").values, alone.loss_db_mean.values)
    assert np.all(ds.loss_change_db_mean.sel(condition="still").values == 0.0)
    assert np.all(np.isnan(ds.loss_change_db_mean.sel(condition="own").values))


@pytest.mark.slow
def test_an_operating_condition_is_unchanged_by_the_kinds():
    """``kind: operating`` written out is today's condition; a condition's own absolute
    limit judges it as the global spec at that value would (same draws)."""
    implicit = yieldmc.run(yieldmc.compose([*BASE, "conditions={hot:{temperature_c:85},cold:{temperature_c:-20}}"]))
    explicit = yieldmc.run(yieldmc.compose(
        [*BASE, "conditions={hot:{kind:operating,temperature_c:85},cold:{temperature_c:-20}}"]))
    for v in ("n_pass", "condition_yield", "channel_fail_fraction", "loss_db_mean", "loss_db_quantile"):
        np.testing.assert_array_equal(implicit[v].values, explicit[v].values)
    assert "loss_change_db_mean" not in implicit
    own = yieldmc.run(yieldmc.compose([*BASE, "conditions={hot:{temperature_c:85,spec:{max_loss_db:2.0}},"
                                               "cold:{temperature_c:-20}}"]))
    at2 = yieldmc.run(yieldmc.compose([*BASE, "spec.max_loss_db=2.0", "package.temperature_c=85"]))
    n = int(own.n_samples)
    # the own limit enters as S + (L − S_k): equal to L > S_k up to a rounding at the boundary
    assert abs(float(own.condition_yield.sel(condition="hot")) - float(at2["yield"])) * n <= 2
    np.testing.assert_array_equal(own.condition_yield.sel(condition="cold").values,
                                  implicit.condition_yield.sel(condition="cold").values)


@pytest.mark.slow
def test_spec_scope_coupler_limits_the_interface_and_the_parts_add_up():
    """``spec.scope: coupler``: the module passes while the interface loss (coupler +
    Fresnel) meets the spec: |x0| ≤ h_c, 2Φ(h_c/σm) − 1. The parts: Fresnel and
    propagation from their formulas, the coupler part's mean L0c + b·σm², their sum the
    mean loss."""
    cfg, parts = _model(BASE)
    interface = lambda x: parts(x)[1]["coupler"] + parts(x)[1]["fresnel"]  # noqa: E731
    spec = cfg["spec"]["max_loss_db"]
    h = brentq(lambda x: interface(x) - spec, 0.0, 20.0, xtol=1e-10)
    ds = yieldmc.run(yieldmc.compose([*BASE, "spec.scope=coupler"]))
    exact = 2 * norm.cdf(h / SIGMA_M) - 1
    assert abs(float(ds["yield"]) - exact) <= _tol(exact), (float(ds["yield"]), exact)
    channel = yieldmc.run(yieldmc.compose(BASE))
    assert float(ds["yield"]) > float(channel["yield"]) + 2 * _tol(exact)  # the propagation no longer counts

    pkg, cpl = cfg["package"], cfg["package"]["coupler"]
    t = lambda n1, n2: 1 - ((n1 - n2) / (n1 + n2)) ** 2  # noqa: E731
    fresnel = -10 * math.log10(t(pkg["pwg"]["n_core"], cpl["n_gap"]) * t(cpl["n_gap"], cpl["n_chip"]))
    per_cm = pkg["pwg"]["loss_db_per_cm"] + pkg["pwg"]["water_loss_db_per_cm_per_rh"] * (
        pkg["humidity_rh"] - pkg["pwg"]["index_humidity_rh"])
    got = ds.loss_part_db_mean.squeeze()
    assert list(got.part.values) == ["coupler", "propagation", "bend", "fresnel"]
    unit = 1e-4  # the fixed-point unit of the sums
    assert abs(float(got.sel(part="fresnel")) - fresnel) <= unit
    assert abs(float(got.sel(part="propagation")) - per_cm * pkg["pwg"]["length_cm"]) <= unit
    assert float(got.sel(part="bend")) == 0.0
    l0, b = _quadratic(lambda x: parts(x)[1]["coupler"])
    sd = b * SIGMA_M**2 * math.sqrt(2)
    assert abs(float(got.sel(part="coupler")) - (l0 + b * SIGMA_M**2)) <= 4.5 * sd / math.sqrt(N) + unit
    assert abs(float(got.sum("part")) - float(ds.loss_db_mean.squeeze())) <= 4 * unit


@pytest.mark.slow
def test_a_sweep_of_a_stress_limit_or_readout_does_not_recompile():
    from yieldmc.engine.blocks import compile_count

    cond = f"conditions={{s:{{kind:stress,readout:{{temperature_c:25}},{DRIFT},spec:{{max_loss_change_db:0.1}}}}}}"
    base = [*BASE, cond, "samples=8192"]
    yieldmc.run(yieldmc.compose([*base, "sweep={conditions.s.spec.max_loss_change_db:[0.05,0.2]}"]))
    cfg = yieldmc.compose([*base, "sweep={conditions.s.spec.max_loss_change_db:[0.1,0.3]}"])
    problem = build_problem(to_container(cfg))
    compiled = compile_count(problem)
    ds = yieldmc.run(cfg)
    assert compile_count(problem) == compiled
    y = ds.condition_yield.sel(condition="s").values
    assert y[0] < y[1]  # a looser change limit passes more of the same modules
    assert ds.loss_change_db_mean.dims == ("conditions.s.spec.max_loss_change_db", "condition", "layer", "channel")


@pytest.mark.parametrize("override, key", [
    ("conditions={s:{kind:strain}}", "conditions.s.kind"),
    ("conditions={s:{kind:stress,temperature_c:25,spec:{max_loss_change_db:0.5}}}", "conditions.s.temperature_c"),
    ("conditions={s:{readout:{temperature_c:25}}}", "conditions.s.readout"),
    ("conditions={s:{kind:stress,readout:{dx_um:1},spec:{max_loss_change_db:0.5}}}", "conditions.s.readout.dx_um"),
    ("conditions={s:{kind:stress,readout:{temperature_c:-300},spec:{max_loss_change_db:0.5}}}",
     "conditions.s.readout.temperature_c"),
    ("conditions={s:{kind:stress,spec:{max_loss_db:null}}}", "conditions.s.spec"),
    ("conditions={s:{spec:{max_loss_change_db:0.5}}}", "conditions.s.spec.max_loss_change_db"),
    ("conditions={s:{spec:{max_loss_db:null}}}", "conditions.s.spec.max_loss_db"),
    ("conditions={s:{kind:stress,spec:{max_loss_change_db:-1}}}", "conditions.s.spec.max_loss_change_db"),
    ("conditions={s:{spec:{max_failed_channels:12}}}", "conditions.s.spec.max_failed_channels"),
    ("conditions={s:{spec:{max_failed_channels:1.5}}}", "conditions.s.spec.max_failed_channels"),
    ("conditions={s:{spec:{max_gain:1}}}", "conditions.s.spec.max_gain"),
    ("conditions={s:{spec:[1]}}", "conditions.s.spec"),
    ("spec.scope=module", "spec.scope"),
    ("spec.max_loss_change_db=-0.1", "spec.max_loss_change_db"),
])
def test_bad_stress_conditions_name_the_key(override, key):
    with pytest.raises(ValueError) as err:
        build_problem(to_container(yieldmc.compose([override], check=False)))
    assert str(err.value).startswith(key + ":") or str(err.value).startswith(key + " "), str(err.value)


def test_a_condition_own_allowance_is_refused_where_it_is_not_counted():
    with pytest.raises(ValueError, match=r"^conditions\.s\.spec\.max_failed_channels: .*sampler=is"):
        build_problem(to_container(yieldmc.compose(
            ["sampler=is", "conditions={s:{spec:{max_failed_channels:1}}}"], check=False)))


@pytest.mark.slow
def test_a_condition_own_allowance_counts_its_failed_channels():
    """Per-condition allowance m_k: a condition allowing one failed channel passes every
    module of a run whose global allowance is one (same draws)."""
    base = ["samples=8192", "engine.block_size=4096", "output.plots=false", "process=none",
            "process.dx_um.channel.sigma=0.8", "package/coupler=butt"]
    ds = yieldmc.run(yieldmc.compose([*base, "conditions={one:{spec:{max_failed_channels:1}},none:{}}"]))
    m1 = yieldmc.run(yieldmc.compose([*base, "spec.max_failed_channels=1"]))
    m0 = yieldmc.run(yieldmc.compose(base))
    assert int(np.rint(float(ds.condition_yield.sel(condition="one")) * 8192)) == int(m1.n_pass)
    assert int(np.rint(float(ds.condition_yield.sel(condition="none")) * 8192)) == int(m0.n_pass)
    assert int(m0.n_pass) < int(m1.n_pass)
    # yield_vs_spec at the configured spec is the envelope yield
    assert float(ds.yield_vs_spec.sel(spec_db=1.5, method="nearest")) == float(ds["yield"])
