"""The gradient-estimator interface: each registered estimator through the shared block
loop against the closed-form derivatives of a shared butt-coupler offset; a toy estimator
registered here runs through the same loop and the sensitivity front end; the registry
builds the configured estimator."""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import numpy as np
import pytest

import yieldmc
from yieldmc import validation
from yieldmc.analysis.gradients import block_sums
from yieldmc.engine import estimators
from yieldmc.engine.estimators import BlockSums, GradientEstimator, Pathwise, Score, make_estimator
from yieldmc.analysis.sensitivity import estimate_gradient, sensitivity
from yieldmc.engine.blocks import block_counts, module_losses, split_draws
from yieldmc.io.config import problem_from_config
from yieldmc.job import parse_job

SIGMA, SPEC, N = 1.0, 0.3, 16384
ENGINE = [f"samples={N}", "engine.block_size=2048"]
SIGMA_KEY, MEAN_KEY, SPEC_KEY = "process.dx_um.module.sigma", "process.dx_um.module.mean", "spec.max_loss_db"


def shared_offset_derivatives(sigma=SIGMA, max_loss_db=SPEC):
    """Y = erf(r/(σ√2)) with r = w_x·sqrt(S/(10/ln 10)) (validation.module_offset):
    dY/dσ = −sqrt(2/π)·r/σ²·exp(−r²/2σ²), dY/dS = sqrt(2/π)/σ·exp(−r²/2σ²)·r/(2S), dY/dμ = 0."""
    w_x, _ = validation.pwg_mode_radii_um()
    r = w_x * math.sqrt(max_loss_db / validation.DB_PER_NEPER_POWER)
    density = math.sqrt(2 / math.pi) * math.exp(-r * r / (2 * sigma**2))
    return {SIGMA_KEY: -density * r / sigma**2, SPEC_KEY: density / sigma * r / (2 * max_loss_db), MEAN_KEY: 0.0}


@pytest.fixture(scope="module")
def problem():
    return problem_from_config(yieldmc.compose(list(validation.module_offset(sigma_um=SIGMA).overrides) + ENGINE))


@pytest.mark.parametrize("estimator", [Pathwise(tau_db=0.01), Score()], ids=lambda e: e.name)
def test_each_estimator_matches_the_closed_form(problem, estimator):
    """Every derivative the estimator covers within 4.5 of its standard errors of the
    closed form (the pathwise τ = 0.01 dB smoothing bias is a fifth of its standard error here); the
    score estimator covers the sampling density's parameters only (NaN for the spec)."""
    exact = shared_offset_derivatives()
    est = estimate_gradient(problem, estimator=estimator, names=list(exact))
    assert est["yield"] == pytest.approx(validation.module_offset(sigma_um=SIGMA).expected_yield,
                                         abs=4.5 * math.sqrt(0.25 / N))
    covered = list(exact) if isinstance(estimator, Pathwise) else [SIGMA_KEY, MEAN_KEY]
    for key in covered:
        g, se = est["gradient"][key], est["gradient_se"][key]
        scale = abs(exact[key]) or abs(exact[SIGMA_KEY])  # dY/dμ = 0: the scale of dY/dσ (same unit)
        assert 0 < se < 0.1 * scale and abs(g - exact[key]) < 4.5 * se, (key, g, se, exact[key])
    assert set(covered) == {k for k in exact if np.isfinite(est["gradient"][k])}


def test_the_registry_builds_frozen_hashable_estimators():
    assert set(estimators.ESTIMATORS) == {"pathwise", "score"}
    pathwise = make_estimator("pathwise", tau_db=0.02)
    assert pathwise == Pathwise(tau_db=0.02) and hash(pathwise) == hash(Pathwise(tau_db=0.02))
    assert make_estimator("score", tau_db=0.02) == Score()  # settings it does not declare are ignored
    with pytest.raises(dataclasses.FrozenInstanceError):
        pathwise.tau_db = 0.1
    with pytest.raises(ValueError, match="no gradient estimator is registered as 'magic'"):
        make_estimator("magic", tau_db=0.02)
    with pytest.raises(ValueError, match=r"^gradient\.estimator: expected one of \['pathwise', 'score'\]"):
        parse_job(yieldmc.compose(["gradient.estimator=magic"], check=False), check_output=False)
    job = parse_job(yieldmc.compose(["gradient.estimator=score", "gradient.tau_db=0.05"]), check_output=False)
    assert job.gradient.estimator == Score()
    job = parse_job(yieldmc.compose(["gradient.tau_db=0.05"]), check_output=False)
    assert job.gradient.estimator == Pathwise(tau_db=0.05)


def test_richardson_halves_the_smoothing():
    static = problem_from_config(yieldmc.compose(list(validation.module_offset().overrides))).static
    half, factor = Pathwise(tau_db=0.02).richardson(static)
    assert half == Pathwise(tau_db=0.01) and factor == pytest.approx(4 / 3)  # p = 2: one condition
    assert Score().richardson(static) is None


@dataclasses.dataclass(frozen=True)
class ModulesBefore(GradientEstimator):
    """A toy: the hard pass count as its value, and a "gradient" that is the block's
    modules times the baseline — here the modules of the blocks before it — so the loop's
    order, counts and baseline plumbing have a closed form."""

    name = "modules_before"

    def baseline(self, *, failed, seen, weighted):
        return float(seen)

    def block(self, u, weights, n_valid, params, baseline, *, static, max_failed):
        w = jnp.where(jnp.arange(static.block_size) < n_valid, weights, 0.0)
        loss = module_losses(split_draws(u, static), params, static)  # (K, L, C, B), K = 1 condition
        passed = jnp.sum(loss[0] > params["spec.max_loss_db"], axis=(0, 1)) <= params["spec.max_failed_channels"]
        modules = jnp.sum(w)
        return BlockSums(modules - jnp.sum(jnp.where(passed, w, 0.0)), jnp.sum(jnp.where(passed, w, 0.0)),
                         {k: modules * baseline for k in params})


def test_a_registered_toy_estimator_runs_through_the_shared_loop(problem, monkeypatch):
    """One class and one registry entry: ``sensitivity(cfg, estimator=name)`` runs it. Its
    yield equals the engine's own run on the same seed (the loop draws block b as the
    engine does), and its gradient the closed form Σ_b n_b·(n_0 + … + n_(b−1))/N."""
    monkeypatch.setitem(estimators.ESTIMATORS, ModulesBefore.name, ModulesBefore)
    overrides = list(validation.module_offset(sigma_um=SIGMA).overrides) + ["samples=9000", "engine.block_size=2048"]
    seen_by_progress = []

    class Bar:
        def __call__(self, n):
            seen_by_progress.append(n)

        def close(self):
            pass

    job = parse_job(yieldmc.compose([*overrides, f"gradient.estimator={ModulesBefore.name}"]), check_output=False)
    assert job.gradient.estimator == ModulesBefore()  # the schema's choices are the live registry
    ds = sensitivity(yieldmc.compose(overrides), estimator=ModulesBefore.name, progress=lambda total, unit: Bar())
    p = problem_from_config(yieldmc.compose(overrides))
    counts = block_counts(p, np.arange(p.n_blocks))
    assert list(counts) == [2048] * 4 + [808] and seen_by_progress == list(counts)  # one block at a time
    expected = np.sum(counts * (np.cumsum(counts) - counts)) / 9000
    assert float(ds.yield_gradient.sel(parameter=SIGMA_KEY)) == pytest.approx(expected, rel=1e-6)
    assert ds.attrs["estimator"] == ModulesBefore.name and "yield_gradient_bias" not in ds
    n_pass = int(yieldmc.run(yieldmc.compose(overrides)).n_pass)
    assert float(ds["yield"]) == pytest.approx(n_pass / 9000, abs=1e-12)  # one module is 1.1e-4
    assert float(ds["yield_smoothed"]) == pytest.approx(n_pass / 9000, abs=1e-12)
    direct = block_sums(p, ModulesBefore(), [SPEC_KEY])
    assert direct.failed + direct.value == 9000 and direct.gradient.shape == (5, 1)
