"""Tolerance allocation vs a brute-force optimum; design centring; re-check."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize as so

import yieldmc
from yieldmc import validation
from yieldmc.analysis.optimize import optimize

TARGET, C1, C2, SPEC = 0.9, 1.0, 2.0, 0.3


def yield_two_offsets(sx, sy):
    """Closed-form (one quadrature) yield of the two shared offsets at the spec SPEC."""
    return validation.two_offset_yield(sx, sy, max_loss_db=SPEC)


def brute_force_optimum():
    """Minimum of c1/σx + c2/σy over a fine σx grid, σy solved so that Y = target."""
    best = None
    for sx in np.linspace(0.2, 0.9, 281):
        if yield_two_offsets(sx, 1e-3) <= TARGET:
            continue  # no σy reaches the target
        sy = so.brentq(lambda s: yield_two_offsets(sx, s) - TARGET, 1e-3, 5.0)
        cost = C1 / sx + C2 / sy
        best = (cost, sx, sy) if best is None or cost < best[0] else best
    return best


@pytest.fixture(scope="module")
def allocation():
    overrides = list(validation.module_offset().overrides) + [
        "package.channels=1", "process.dx_um.module.sigma=0.3", "process.dy_um.module.sigma=0.3",
        "samples=65536", "engine.block_size=8192", "mode=optimize",
        f"optimize.target_yield={TARGET}",
        f"optimize.costs={{process.dx_um.module.sigma:{C1},process.dy_um.module.sigma:{C2}}}",
    ]
    return optimize(yieldmc.compose(overrides))


def test_tolerance_allocation_reaches_the_brute_force_optimum(allocation):
    cost, sx, sy = brute_force_optimum()
    ds = allocation
    assert abs(float(ds.cost) - cost) <= 0.02 * cost, (float(ds.cost), cost)
    opt = dict(zip(ds.parameter.values, ds.optimum.values))
    assert opt["process.dx_um.module.sigma"] == pytest.approx(sx, rel=0.05)
    assert opt["process.dy_um.module.sigma"] == pytest.approx(sy, rel=0.05)
    # the exact yield at the optimum meets the target to within the SAA error
    se = math.sqrt(TARGET * (1 - TARGET) / 65536)
    exact = yield_two_offsets(opt["process.dx_um.module.sigma"], opt["process.dy_um.module.sigma"])
    assert exact > TARGET - 4.5 * se


def test_recheck_uses_fresh_draws_and_meets_target(allocation):
    ds = allocation
    n = int(ds.n_samples)
    se = math.sqrt(TARGET * (1 - TARGET) / n)
    assert float(ds["yield"]) > TARGET - 4.5 * se
    assert float(ds.yield_ci_low) <= float(ds["yield"]) <= float(ds.yield_ci_high)
    assert ds.history_value.dims == ("step", "parameter") and ds.sizes["step"] > 10
    assert np.all(np.isfinite(ds.history_cost)) and ds.history_tau_db.values[0] > 0


def test_design_centring_finds_the_best_offset():
    """A known nominal offset of the chip mode is undone: with dx = d0 + N(0, σ²) the yield
    is maximal at d0 = 0, and centring moves the nominal there from 0.6 µm."""
    overrides = list(validation.module_offset(sigma_um=0.5).overrides) + [
        "package.channels=1", "process.dx_um.module.mean=0.6", "samples=16384", "engine.block_size=8192",
        "mode=optimize", "optimize.kind=centring", "optimize.steps=40", "optimize.outer=2",
        "optimize.parameters={process.dx_um.module.mean:[-2.0,2.0]}", "optimize.learning_rate=0.1",
    ]
    ds = optimize(yieldmc.compose(overrides))
    assert abs(float(ds.optimum.values[0])) < 0.08
    assert ds.history_yield.values[-1] > ds.history_yield.values[0] + 0.05
