"""Samplers: randomised Sobol' (qmc) and importance sampling (is) vs closed forms and mc."""

from __future__ import annotations

import math
import warnings

import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import norm, qmc as scipy_qmc, t as student_t

import yieldmc
from yieldmc import validation
from yieldmc.samplers import qmc

ENGINE = ["engine.block_size=8192"]


def test_unscrambled_sobol_matches_scipy():
    d, m = 9, 10
    x = np.asarray(qmc.sobol_uint(jnp.arange(2**m), jnp.asarray(qmc.direction_numbers(d)),
                                  jnp.zeros(d, jnp.uint32), nbits=m)) / 2.0**32
    ref = scipy_qmc.Sobol(d, scramble=False, bits=32).random_base2(m)
    np.testing.assert_array_equal(np.sort(x, axis=0), np.sort(ref, axis=0))


def test_scrambled_points_stay_a_net_and_differ_per_randomisation():
    d, m = 6, 8
    tables, shifts = qmc.scrambled_tables(d, seed=3, randomizations=2)
    pts = [np.asarray(qmc.sobol_uint(jnp.arange(2**m), jnp.asarray(t), jnp.asarray(s), nbits=m)) / 2.0**32
           for t, s in zip(tables, shifts)]
    for x in pts:  # every 1-D projection: one point per interval of width 2^-m
        assert all(len(set((x[:, j] * 2**m).astype(int))) == 2**m for j in range(d))
        # and 2-D projections of the first two dimensions are (0, m, 2)-nets: 4x64 boxes
        boxes = set(zip((x[:, 0] * 4).astype(int), (x[:, 1] * 2 ** (m - 2)).astype(int)))
        assert len(boxes) == 2**m
    assert not np.array_equal(pts[0], pts[1])


def test_qmc_interval_is_a_third_of_mc_on_a_smooth_case():
    """Module-level dx, dy (a 2-D elliptical pass region): same N, Student-t interval
    over 16 randomisations vs the Wilson interval of plain Monte Carlo."""
    base = list(validation.module_offset().overrides) + ENGINE + [
        "package.channels=1", "process.dx_um.module.sigma=0.4", "process.dy_um.module.sigma=0.3",
        "samples=131072"]
    truth = validation.two_offset_yield(0.4, 0.3)
    mc = yieldmc.run(yieldmc.compose(base))
    q = yieldmc.run(yieldmc.compose(base + ["sampler=qmc"]))
    width = lambda ds: float(ds.yield_ci_high - ds.yield_ci_low)  # noqa: E731
    assert width(q) <= width(mc) / 3
    # the truth inside the interval at 99.9 % (a 95 % interval misses 1 run in 20 by design)
    t999 = student_t.ppf(0.9995, 15)
    assert abs(float(q["yield"]) - truth) <= t999 * float(q.yield_se)
    assert q.yield_randomization.sizes["randomization"] == 16
    assert q.attrs["sampler"] == "qmc" and "Student t" in q.attrs["interval_method"]


@pytest.mark.slow
def test_qmc_is_bit_identical_across_blocks_per_call():
    base = ["sampler=qmc", "samples=65536", "engine.block_size=2048", "qmc.randomizations=8"]
    a = yieldmc.run(yieldmc.compose(base + ["engine.blocks_per_call=1"]))
    b = yieldmc.run(yieldmc.compose(base + ["engine.blocks_per_call=5"]))
    for k in ("n_pass", "yield_randomization", "channel_fail_fraction", "loss_db_mean"):
        np.testing.assert_array_equal(a[k].values, b[k].values)


@pytest.fixture(scope="module")
def rare():
    """A shared offset with P_f = 2Φ(−r/σ) = 1e-6 exactly (σ chosen for it)."""
    w_x, _ = validation.pwg_mode_radii_um()
    r = w_x * math.sqrt(0.3 / validation.DB_PER_NEPER_POWER)
    sigma = r / norm.isf(0.5e-6)
    problem = validation.module_offset(sigma_um=sigma)
    return problem, 2 * norm.sf(r / sigma)


@pytest.mark.slow
def test_importance_sampling_of_a_one_in_a_million_failure(rare):
    problem, pf = rare
    n = 65536
    ds = yieldmc.run(yieldmc.compose(list(problem.overrides) + ENGINE + [f"samples={n}", "sampler=is"]))
    est, se = float(ds.failure_probability), float(ds.failure_probability_se)
    assert abs(est - pf) <= 0.1 * pf
    assert float(ds.yield_ci_low) <= 1 - pf <= float(ds.yield_ci_high)  # the SE covers the truth
    assert 0 < se < 0.05 * pf
    assert ds.attrs["is_design_points"] == 2 and float(ds.effective_sample_size) > 1000
    np.testing.assert_allclose(ds.attrs["is_beta"], norm.isf(0.5e-6), rtol=1e-3)
    # plain MC with the same N sees no failure at all: the reason IS exists
    mc = yieldmc.run(yieldmc.compose(list(problem.overrides) + ENGINE + [f"samples={n}"]))
    assert int(mc.n_pass) == n


@pytest.mark.slow
def test_importance_sampling_is_bit_identical_across_blocks_per_call(rare):
    problem, _ = rare
    base = list(problem.overrides) + ["samples=32768", "engine.block_size=4096", "sampler=is"]
    a = yieldmc.run(yieldmc.compose(base + ["engine.blocks_per_call=1"]))
    b = yieldmc.run(yieldmc.compose(base + ["engine.blocks_per_call=3"]))
    assert float(a.failure_probability) == float(b.failure_probability)
    np.testing.assert_array_equal(a.channel_fail_fraction.values, b.channel_fail_fraction.values)


@pytest.mark.slow
@pytest.mark.parametrize("coupler, design_points", [
    ([], False),  # the supermode coupler: HLRF finds no design point, subset simulation answers
    (["package/coupler=adiabatic_linear"], True),
], ids=["default", "adiabatic_linear"])
def test_all_samplers_agree_on_the_adiabatic_packages(coupler, design_points):
    """mc, qmc and is give overlapping intervals. The default coupler's loss oscillates with
    the supermodes' phase at the tip (docs/physics.md 2.3a): the HLRF search of ``is`` does
    not converge on it and the sampler falls back to subset simulation, with its warning;
    on the linear sweep it finds design points."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs = {s: yieldmc.run(yieldmc.compose(coupler + ["samples=32768", f"sampler={s}", "engine.block_size=4096",
                                                          "qmc.randomizations=8"]))
                for s in ("mc", "qmc", "is")}
    for a in runs:
        for b in runs:
            lo = max(float(runs[a].yield_ci_low), float(runs[b].yield_ci_low))
            hi = min(float(runs[a].yield_ci_high), float(runs[b].yield_ci_high))
            assert lo <= hi, (a, b)  # the intervals overlap
    if design_points:
        assert runs["is"].attrs["sampler"] == "is" and runs["is"].attrs["is_design_points"] >= 2
    else:
        assert runs["is"].attrs["sampler"] == "subset (fallback from is)"
        assert any("no design point found; falling back to subset simulation" in str(w.message) for w in caught)


@pytest.mark.slow
def test_importance_sampling_falls_back_with_a_warning():
    """No failure region (spec far above any loss): no design point, subset simulation
    instead; it reaches no failure in any level and reports P_f = 0 with the conservative
    bound Π p_i · (Clopper–Pearson 0 of N) as the interval's end."""
    overrides = list(validation.module_offset().overrides) + ENGINE + [
        "samples=8192", "sampler=is", "spec.max_loss_db=50"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = yieldmc.run(yieldmc.compose(overrides))
    assert any("falling back to subset simulation" in str(w.message) for w in caught)
    assert ds.attrs["sampler"] == "subset (fallback from is)" and "subset-simulation" in ds.attrs["interval_method"]
    assert float(ds["yield"]) == 1.0 and float(ds.failure_probability) == 0.0
    # the bound Π p_i·(1 − 0.025^(1/N)) after the levels reached (all 17 here: 1e-16 and
    # below, 1.0 in float64 — where the margin saturates the thresholds stall earlier)
    bound = float(ds.attrs["warnings"].rsplit("below ", 1)[1])
    assert 0 < bound < 1e-15 and float(ds.yield_ci_low) == 1.0 - bound and float(ds.yield_ci_high) == 1.0
    n = ds.attrs["subset_samples_per_level"]
    assert int(ds.n_samples) == sum(ds.attrs["subset_levels"]) * n and "reached no failure" in ds.attrs["warnings"]


def test_importance_sampling_falls_back_through_the_store(tmp_path):
    """The command's path (blocks stored first, then the estimate): without a design point
    the blocks are computed under the proposal p itself and the result is subset simulation's."""
    from yieldmc.io.cli import execute
    from yieldmc.io.store import open_result

    overrides = list(validation.module_offset().overrides) + [
        "engine.block_size=4096", "samples=8192", "sampler=is", "spec.max_loss_db=50",
        "output.dir=out", "output.name=fallback.zarr", "output.plots=false", "progress=false"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert execute(yieldmc.compose(overrides), tmp_path) == 0
    ds = open_result(tmp_path / "out" / "fallback.zarr")
    assert ds.attrs["sampler"] == "subset (fallback from is)" and "subset-simulation" in ds.attrs["interval_method"]
    assert float(ds["yield"]) == 1.0 and float(ds.failure_probability) == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("case", ["shared_1e-6", "union12_1e-4", "union128_1e-4", "two_of_12_1e-6"])
def test_subset_simulation_of_rare_failures(case):
    """``is.method=subset`` (no design points) on a module offset shared by 12 channels
    (P_f 1e-6), the 12- and 128-channel unions (1e-4), and a module that fails only when
    two of its 12 independent channels fail (``spec.max_failed_channels=1``, 1e-6, exact
    binomial): the estimate within 4.5 of its reported SE of the exact P_f, the SE under
    20 %, the interval Student-t over the 8 replicas. In the last case the mixture's
    random-start search finds no design point (the (m+1)-th largest loss has no gradient
    along most directions) and falls back to the same estimate."""
    from scipy.optimize import brentq
    from scipy.stats import t as student_t

    w_x, _ = validation.pwg_mode_radii_um()
    r = w_x * math.sqrt(0.3 / validation.DB_PER_NEPER_POWER)
    if case == "shared_1e-6":
        overrides, exact = validation.module_offset(sigma_um=r / norm.isf(0.5e-6)).overrides, 1e-6
    elif case == "two_of_12_1e-6":
        def log_pf(s):
            return math.log(max(1.0 - validation.channel_offset(sigma_um=s, max_failed=1).expected_yield, 1e-300))
        p = validation.channel_offset(sigma_um=brentq(lambda s: log_pf(s) - math.log(1e-6), 0.1, 1.0), max_failed=1)
        overrides, exact = p.overrides, 1.0 - p.expected_yield
    else:
        channels, pf = int(case[5:].split("_")[0]), float(case.split("_")[1])
        p = validation.union_offset(channels=channels, failure_probability=pf)
        overrides, exact = p.overrides, 1.0 - p.expected_yield
    method = "mixture" if case == "two_of_12_1e-6" else "subset"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = yieldmc.run(yieldmc.compose(list(overrides) + ENGINE + [
            "samples=65536", "sampler=is", f"is.method={method}"]))
    est, se = float(ds.failure_probability), float(ds.failure_probability_se)
    assert ds.attrs["is_method"] == "subset"
    if method == "mixture":
        assert ds.attrs["sampler"] == "subset (fallback from is)"
        assert any("no design point found" in str(w.message) for w in caught)
    else:
        assert ds.attrs["sampler"] == "is"
    assert abs(est - exact) <= 4.5 * se and 0 < se < 0.2 * exact, (est, exact, se)
    runs = np.asarray(ds.attrs["subset_estimates"])
    assert est == pytest.approx(runs.mean(), rel=1e-12) and se == pytest.approx(runs.std(ddof=1) / math.sqrt(8))
    t95 = student_t.ppf(0.975, 7)
    assert float(ds.yield_ci_low) == pytest.approx(1 - est - t95 * se, abs=1e-15)


def test_subset_simulation_levels():
    """One run's levels: every factor but the last is p0 = 0.1 (more only by ties at the
    threshold: a rejected chain step repeats its state), the thresholds fall to 0, and
    P̂_f is their product."""
    from yieldmc.io.config import problem_from_config
    from yieldmc.samplers.subset import subset_simulation

    p = validation.union_offset(channels=12, failure_probability=1e-4)
    r = subset_simulation(problem_from_config(yieldmc.compose(list(p.overrides) + ENGINE + ["samples=8192"])))
    assert all(0.1 <= q < 0.102 for q in r.level_probabilities[:-1])
    assert r.thresholds[-1] == 0.0 and all(a > b for a, b in zip(r.thresholds, r.thresholds[1:]))
    assert r.failure_probability == pytest.approx(np.prod(r.level_probabilities), rel=1e-12)
    assert r.evaluations == len(r.thresholds) * r.samples_per_level


def test_subset_chain_correlation_factor_against_a_markov_chain():
    """γ (Au & Beck Eq. 29) of indicators from a two-state Markov chain with stay
    probability a: ρ(k) = (2a − 1)^k exactly, so γ = 2 Σ_k (1 − k/M)(2a − 1)^k."""
    from yieldmc.samplers.subset import chain_correlation_factor

    rng = np.random.default_rng(3)
    m, chains, a = 10, 200000, 0.8
    x = np.empty((m, chains), bool)
    x[0] = rng.random(chains) < 0.5
    for k in range(1, m):
        x[k] = np.where(rng.random(chains) < a, x[k - 1], ~x[k - 1])
    exact = 2 * sum((1 - k / m) * (2 * a - 1) ** k for k in range(1, m))
    got = chain_correlation_factor(x, float(x.mean()))
    assert got == pytest.approx(exact, abs=0.05)


@pytest.mark.parametrize("overrides, key", [
    (["sampler=sobol"], "sampler"),
    (["sampler=qmc", "samples=1000"], "samples"),
    (["sampler=qmc", "qmc.randomizations=1"], "qmc.randomizations"),
    (["sampler=is", "sweep={process.dx_um.module.sigma:[0.5,1.0]}"], "sweep"),
])
def test_bad_sampler_input(overrides, key):
    from yieldmc.io.config import problem_from_config

    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        problem_from_config(yieldmc.compose(overrides))


def test_qmc_with_no_failure_reports_a_conservative_interval():
    """Every module passes (σ tiny): the t interval over the randomisations would be [1, 1];
    the reported one covers the pooled Clopper–Pearson interval, low = 0.025^(1/N)."""
    n = 16 * 4096
    ds = yieldmc.run(yieldmc.compose(["sampler=qmc", f"samples={n}", "engine.block_size=4096", "process=none",
                                      "package/coupler=butt", "process.dx_um.module.sigma=0.01",
                                      "output.plots=false"]))
    assert float(ds["yield"]) == 1.0
    assert float(ds.yield_ci_high) == 1.0
    assert float(ds.yield_ci_low) == pytest.approx(0.025 ** (1 / n), rel=1e-9)


@pytest.mark.slow
def test_union_reference_matches_a_general_quadrature_and_plain_monte_carlo():
    """validation.union_failure_probability (Gauss–Hermite over the module offsets) against
    scipy's adaptive dblquad, and against plain Monte Carlo where failures are common."""
    from scipy import integrate
    from scipy.special import ndtr

    c, sm, sc, spec = 12, 0.2, 0.5, 1.2
    w_x, w_y = validation.pwg_mode_radii_um()
    r = spec / validation.DB_PER_NEPER_POWER

    def integrand(dy, dx):
        h = w_x * math.sqrt(max(r - dy * dy / w_y**2, 0.0))
        q = ndtr((h - dx) / sc) - ndtr((-h - dx) / sc)
        return (1 - q**c) * norm.pdf(dx, scale=sm) * norm.pdf(dy, scale=sm)

    ref = integrate.dblquad(integrand, -8 * sm, 8 * sm, -8 * sm, 8 * sm, epsabs=1e-12)[0]
    pf = validation.union_failure_probability(channels=c, sigma_module_um=sm, sigma_channel_um=sc, max_loss_db=spec)
    assert pf == pytest.approx(ref, rel=1e-6)
    p = validation.union_offset(channels=c, failure_probability=pf)
    n = 65536
    ds = yieldmc.run(yieldmc.compose(list(p.overrides) + ENGINE + [f"samples={n}"]))
    assert abs(float(ds["yield"]) - p.expected_yield) <= 4.5 * validation.binomial_standard_error(pf, n)


@pytest.mark.slow
@pytest.mark.parametrize("channels", [12, 128])
def test_importance_sampling_of_a_union_of_channel_events(channels):
    """A union of 2C channel events at P_f = 1e-4: every event gets its own design-point
    search (both sides of each channel), the Φ(−β)-weighted mixture estimate holds the
    exact P_f within 4.5 SE, and the union bounds hold it."""
    p = validation.union_offset(channels=channels, failure_probability=1e-4)
    pf = 1.0 - p.expected_yield
    ds = yieldmc.run(yieldmc.compose(list(p.overrides) + ENGINE + ["samples=65536", "sampler=is"]))
    est, se = float(ds.failure_probability), float(ds.failure_probability_se)
    assert abs(est - pf) <= 4.5 * se, (est, pf, se)
    assert se < 0.1 * pf
    assert ds.attrs["is_events"] == channels and ds.attrs["is_events_found"] == channels
    assert ds.attrs["is_design_points"] == 2 * channels
    assert float(ds.failure_probability_bound_low) <= est <= float(ds.failure_probability_bound_high)
    assert ds.attrs["warnings"] == ""


@pytest.mark.slow
def test_importance_sampling_error_bars_cover_the_truth_over_seeds():
    """A small version of scripts/is_coverage.py: the 12-channel union at
    P_f 1e-4 over 10 seeds — each seed its own design points and draws. With honest error
    bars each 95 % interval holds the exact P_f with probability 0.95 (at least 8 of 10
    with probability 0.99), and the mean error is within 4.5 of its own standard errors
    (a random-start design-point search alone, without the enumerated channel events, gives
    −33 % with coverage 2/43 here: docs/benchmarks.md)."""
    p = validation.union_offset(channels=12, failure_probability=1e-4)
    pf = 1.0 - p.expected_yield
    est, se = [], []
    for seed in range(10):
        ds = yieldmc.run(yieldmc.compose(list(p.overrides) + ENGINE + ["samples=16384", "sampler=is", f"seed={seed}"]))
        est.append(float(ds.failure_probability))
        se.append(float(ds.failure_probability_se))
    est, se = np.asarray(est), np.asarray(se)
    assert np.sum(np.abs(est - pf) <= 1.96 * se) >= 8
    assert abs(est.mean() - pf) <= 4.5 * est.std(ddof=1) / math.sqrt(len(est))
