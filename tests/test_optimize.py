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


@pytest.mark.slow
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


@pytest.mark.slow
@pytest.mark.parametrize("high", [2.0, 0.6], ids=["inside", "start-on-the-bound"])
def test_design_centring_finds_the_best_offset(high):
    """A known nominal offset of the chip mode is undone: with dx = d0 + N(0, σ²) the yield
    is maximal at d0 = 0, and centring moves the nominal there from 0.6 µm, also when 0.6
    is the upper bound of the box; its closed-form yield there exceeds the target 0.9."""
    overrides = list(validation.module_offset(sigma_um=0.5).overrides) + [
        "package.channels=1", "process.dx_um.module.mean=0.6", "samples=16384", "engine.block_size=8192",
        "mode=optimize", "optimize.kind=centring", "optimize.steps=40", "optimize.outer=2",
        f"optimize.parameters={{process.dx_um.module.mean:[-2.0,{high}]}}", "optimize.learning_rate=0.1",
    ]
    ds = optimize(yieldmc.compose(overrides))
    assert abs(float(ds.optimum.values[0])) < 0.08
    assert ds.history_yield.values[-1] > ds.history_yield.values[0] + 0.05
    best = validation.module_offset(sigma_um=0.5).expected_yield  # the yield at d0 = 0
    assert best > 0.9 + 0.015  # the default target 0.9 is within reach (15 standard errors)
    assert ds.attrs["verdict"] == "reached" and ds.attrs["verdict_text"].startswith("reached: ")


def test_allocation_verdict_reached_with_its_ceiling(allocation):
    """Both offsets free: at 0 every module passes (the nominal design meets the spec)."""
    ds = allocation
    assert ds.attrs["verdict"] == "reached" and ds.attrs["verdict_text"].startswith("reached: ")
    # the closed form tends to 1 as both sigmas shrink (at 0.05 µm already to double precision)
    assert ds.attrs["ceiling_yield"] == 1.0 and yield_two_offsets(0.05, 0.05) == pytest.approx(1.0, abs=1e-12)
    assert ds.attrs["best_yield"] == float(ds["yield"])


def unreachable_overrides(tmp_path=None):
    """dx free, dy fixed at σ = 0.8 µm: no dx tolerance reaches 0.9."""
    return list(validation.module_offset(sigma_um=0.3).overrides) + [
        "package.channels=1", "process.dy_um.module.sigma=0.8", "samples=16384", "engine.block_size=8192",
        "mode=optimize", "optimize.target_yield=0.9", "optimize.costs={process.dx_um.module.sigma:1.0}",
    ] + ([f"output.dir={tmp_path}", "output.plots=false"] if tmp_path else [])


def test_an_unreachable_target_ends_with_a_verdict_naming_the_limit(tmp_path, capsys):
    """The ceiling (dx at 0) is the closed-form yield of dy alone, erf(r_y/(σ_y√2)); the
    limit named is the dy variation; the command exits with 3 after writing the store."""
    from yieldmc.io.cli import EXIT_TARGET_MISSED, execute_gradient_mode
    from yieldmc.job import parse_job

    w_x, w_y = validation.pwg_mode_radii_um()
    r = w_y * math.sqrt(SPEC / validation.DB_PER_NEPER_POWER)
    exact = math.erf(r / (0.8 * math.sqrt(2.0)))
    assert exact < 0.8
    ds = optimize(yieldmc.compose(unreachable_overrides()))
    n = int(ds.n_samples)
    assert ds.attrs["verdict"] == "unreachable" and ds.attrs["limit"] == "process.dy_um.module"
    assert abs(ds.attrs["best_yield"] - exact) < 4.5 * math.sqrt(exact * (1 - exact) / n), (ds.attrs, exact)
    text = ds.attrs["verdict_text"]
    assert "\n" not in text and "process.dy_um.module" in text and "target 0.9" in text
    assert float(ds.optimum.values[0]) == 0.0 and ds.sizes["step"] == 2

    job = parse_job(yieldmc.compose(unreachable_overrides(tmp_path / "out")), base=tmp_path)
    with pytest.raises(SystemExit) as info:
        execute_gradient_mode(job, tmp_path)
    assert info.value.code == EXIT_TARGET_MISSED == 3
    out, err = capsys.readouterr()
    assert "verdict: unreachable" in out and "store:" in out
    assert err.splitlines()[0].startswith("yieldmc: optimize of ") and "ceiling:" in err
    assert len(list((tmp_path / "out").glob("optimize_*.zarr"))) == 1
