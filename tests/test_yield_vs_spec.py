"""yield_vs_spec: the yield at every loss spec of a grid from one run.

Closed forms from yieldmc.validation: a shared module offset passes at spec S iff
|dx| ≤ r(S) = w_x·sqrt(S/(10/ln 10)) (every channel sees the same offset), and
independent channel offsets with m failed channels allowed give a binomial.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import yieldmc
from yieldmc import validation
from yieldmc.engine.statistics import SPEC_STEPS

N = 65536
ENGINE = [f"samples={N}", "engine.block_size=8192"]


def _radius(spec_db: float) -> float:
    w_x, _ = validation.pwg_mode_radii_um()
    return w_x * math.sqrt(max(spec_db, 0.0) / validation.DB_PER_NEPER_POWER)


@pytest.fixture(scope="module")
def shared():
    return yieldmc.run(yieldmc.compose(list(validation.module_offset(sigma_um=0.5).overrides) + ENGINE))


def test_at_the_configured_spec_it_is_the_yield_exactly(shared):
    ds = shared
    assert ds.spec_db.size == 2 * SPEC_STEPS + 1
    assert float(ds.spec_db[SPEC_STEPS]) == 0.3
    assert float(ds.yield_vs_spec[SPEC_STEPS]) == float(ds["yield"])
    assert float(ds.yield_vs_spec_ci_low[SPEC_STEPS]) == pytest.approx(float(ds.yield_ci_low), abs=1e-15)
    assert np.all(np.diff(ds.yield_vs_spec.values) >= 0)  # a looser spec never passes fewer modules


def test_matches_the_closed_form_over_the_grid(shared):
    """erf(r(S)/(σ√2)) at every grid spec, within 4.5 binomial standard errors (each
    spec's own; the curve's points share their modules). Specs from 0.05 dB: at 0 dB
    the float32 loss of an offset below ~1e-3 µm rounds to exactly 0 and passes."""
    ds = shared.where(shared.spec_db >= 0.05, drop=True)
    specs = ds.spec_db.values
    exact = np.array([math.erf(_radius(s) / (0.5 * math.sqrt(2))) for s in specs])
    got = ds.yield_vs_spec.values
    se = np.sqrt(np.maximum(exact * (1 - exact), 1.0 / N) / N)
    assert np.all(np.abs(got - exact) <= 4.5 * se)


def test_other_specs_equal_separate_runs():
    """A run at another spec of the grid (same draws) gives that spec's yield_vs_spec value
    exactly; its own yield_vs_spec is centred on its spec."""
    base = list(validation.channel_offset(sigma_um=0.3, channels=12).overrides) + ENGINE
    ds = yieldmc.run(yieldmc.compose(base))
    for j in (SPEC_STEPS - 17, SPEC_STEPS + 40):
        spec = float(ds.spec_db[j])
        other = yieldmc.run(yieldmc.compose(base + [f"spec.max_loss_db={spec!r}"]))
        assert float(other["yield"]) == float(ds.yield_vs_spec[j])
        assert float(other.spec_db[SPEC_STEPS]) == spec


def test_failed_channel_allowance_is_the_binomial():
    """m = 1 failed channel allowed of 12 independent ones: the (m+1)-th worst channel's
    loss decides; the yield at each spec is the binomial P(at most 1 fails)."""
    sigma, channels = 0.4, 12
    ds = yieldmc.run(yieldmc.compose(
        list(validation.channel_offset(sigma_um=sigma, channels=channels, max_failed=1).overrides) + ENGINE))
    for j in (SPEC_STEPS - 20, SPEC_STEPS, SPEC_STEPS + 50):
        spec = float(ds.spec_db[j])
        p = math.erf(_radius(spec) / (sigma * math.sqrt(2)))
        exact = p**channels + channels * (1 - p) * p ** (channels - 1)
        assert abs(float(ds.yield_vs_spec[j]) - exact) <= 4.5 * validation.binomial_standard_error(exact, N)
    assert float(ds.yield_vs_spec[SPEC_STEPS]) == float(ds["yield"])


def test_conditions_each_get_their_curve():
    """Under two conditions: the envelope's curve at the spec is the envelope yield, each
    condition's the condition's yield, and the envelope never exceeds a condition."""
    ds = yieldmc.run(yieldmc.compose(["samples=16384", "engine.block_size=8192", "package/coupler=butt",
                                      "conditions={cold:{temperature_c:-40},hot:{temperature_c:125}}"]))
    assert float(ds.yield_vs_spec[SPEC_STEPS]) == float(ds["yield"])
    np.testing.assert_array_equal(ds.condition_yield_vs_spec.isel(spec_db=SPEC_STEPS).values,
                                  ds.condition_yield.values)
    assert np.all(ds.yield_vs_spec.values <= ds.condition_yield_vs_spec.values.min(axis=0))


@pytest.mark.slow
def test_qmc_and_a_sweep_keep_it_and_a_spec_sweep_drops_it():
    q = yieldmc.run(yieldmc.compose(["sampler=qmc", "samples=16384", "engine.block_size=2048",
                                     "qmc.randomizations=8", "package/coupler=butt"]))
    assert float(q.yield_vs_spec[SPEC_STEPS]) == float(q["yield"])
    sweep = yieldmc.run(yieldmc.compose(["samples=8192", "engine.block_size=8192", "package/coupler=butt",
                                         "sweep={process.dx_um.module.sigma:[0.5,1.0]}"]))
    assert sweep.yield_vs_spec.dims == ("process.dx_um.module.sigma", "spec_db")
    np.testing.assert_array_equal(sweep.yield_vs_spec.isel(spec_db=SPEC_STEPS).values, sweep["yield"].values)
    spec_sweep = yieldmc.run(yieldmc.compose(["samples=8192", "engine.block_size=8192", "package/coupler=butt",
                                              "sweep={spec.max_loss_db:[1.0,1.5]}"]))
    assert "yield_vs_spec" not in spec_sweep and "spec_db" not in spec_sweep.coords
