"""The environment terms of the loss model (docs/physics.md, "Environment"): humidity,
bending, wavelength and WDM lanes, crosstalk, polarisation — each against a closed form or an independent
evaluation, in float64, through :func:`yieldmc.analysis.nominal.nominal_losses` (the
model of the engine at the nominal module) and one short engine run.

The butt package of :mod:`yieldmc.validation` (chip mode = PWG mode, no gap, no Fresnel
step) has loss = (10/ln 10)·(dx²/w_x² + dy²/w_y²) + propagation, so every geometric term
can be checked against its closed form.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import yieldmc
from yieldmc import physics
from yieldmc.analysis.nominal import nominal_losses
from yieldmc.engine.model import pwg_indices
from yieldmc.validation import DB_PER_NEPER_POWER, _base, pwg_mode_radii_um

C = 12
PITCH = 50.0
X = (np.arange(C) - (C - 1) / 2) * PITCH  # channel positions, µm


def butt(*extra):
    """The closed-form butt package (validation._base) plus ``extra`` overrides."""
    return yieldmc.compose(overrides=_base(C, 0.3, 0) + list(extra))


@pytest.mark.slow
def test_hygroscopic_runout_and_gap_swelling_are_the_closed_form():
    w_x, w_y = pwg_mode_radii_um()
    chm, swell, d_rh = 25.0, 2e-3, 35.0  # ppm/%RH, µm/%RH, %RH above the bonding humidity
    cfg = butt(f"package.chm_mismatch_ppm_per_rh={chm}", f"package.gap_swelling_um_per_rh={swell}",
               "package.lock_humidity_rh=50", "package.humidity_rh=50",
               "package.pwg.dn_drh_per_rh=0", "package.pwg.water_loss_db_per_cm_per_rh=0")  # only the geometry
    loss = nominal_losses(cfg, humidity_rh=[0.0, d_rh])["loss"][0]  # (C, 2)
    dx = X * chm * 1e-6 * d_rh
    dy = swell * d_rh
    expected = DB_PER_NEPER_POWER * (dx**2 / w_x**2 + dy**2 / w_y**2)
    np.testing.assert_allclose(loss[:, 0], 0.0, atol=1e-9)
    np.testing.assert_allclose(loss[:, 1], expected, rtol=1e-6, atol=1e-12)


@pytest.mark.slow
def test_thermal_gap_change_is_the_closed_form():
    """Only the thermal bond-line term active (no dn/dT, no CTE run-out): at temperature T
    the vertical offset is g_T·(T − T_lock) and the butt loss its Gaussian-offset loss."""
    _, w_y = pwg_mode_radii_um()
    g_t, t_lock = 2e-3, 120.0  # µm/K, °C
    cfg = butt(f"package.gap_thermal_um_per_k={g_t}", f"package.lock_temperature_c={t_lock}",
               f"package.temperature_c={t_lock}", "package.pwg.dn_dt_per_k=0")
    dev = np.array([0.0, -160.0, 5.0])  # T = 120, −40, 125 °C
    loss = nominal_losses(cfg, temperature_c=dev)["loss"][0]  # (C, 3)
    dy = g_t * dev
    np.testing.assert_allclose(loss, np.broadcast_to(DB_PER_NEPER_POWER * dy**2 / w_y**2, loss.shape),
                               rtol=1e-6, atol=1e-12)


@pytest.mark.slow
def test_thermal_gap_change_moves_the_adiabatic_coupler_as_a_vertical_offset():
    """The default (adiabatic) package: the loss at T with the thermal term equals the loss
    at T without it and the vertical offset g_T·(T − T_lock) put in by hand."""
    g_t = 1e-3
    on = yieldmc.compose(["process=none", f"package.gap_thermal_um_per_k={g_t}"])
    off = yieldmc.compose(["process=none", "package.gap_thermal_um_per_k=0"])
    t0, t_lock = float(on.package.temperature_c), float(on.package.lock_temperature_c)
    dev = np.array([-65.0, 0.0, 100.0])  # −40, 25, 125 °C
    with_term = nominal_losses(on, temperature_c=dev)["loss"][0]
    by_hand = nominal_losses(off, temperature_c=dev, dy_um=g_t * (t0 + dev - t_lock))["loss"][0]
    np.testing.assert_allclose(with_term, by_hand, rtol=1e-9, atol=1e-12)
    no_term = nominal_losses(off, temperature_c=dev)["loss"][0]
    assert np.all(np.abs(with_term - no_term)[:, 0] > 1e-4)  # the term does act (≈ −0.1 µm at −40 °C)


def test_water_absorption_adds_per_cm_and_per_rh_and_never_goes_below_zero():
    a, length = 3.5e-4, 2.0  # dB/cm/%RH (Hida & Imamura's acrylate), cm
    cfg = butt("package.pwg.loss_db_per_cm=0.28", f"package.pwg.length_cm={length}",
               f"package.pwg.water_loss_db_per_cm_per_rh={a}", "package.pwg.index_humidity_rh=13",
               "package.humidity_rh=13", "package.chm_mismatch_ppm_per_rh=0", "package.gap_swelling_um_per_rh=0",
               "package.pwg.dn_drh_per_rh=0")
    loss = nominal_losses(cfg, humidity_rh=[0.0, 85.0])["loss"][0]
    np.testing.assert_allclose(loss[:, 0], 0.28 * length, rtol=1e-9)
    np.testing.assert_allclose(loss[:, 1], (0.28 + a * 85.0) * length, rtol=1e-9)  # 13 → 98 %RH: +0.03 dB/cm
    dry = butt("package.pwg.loss_db_per_cm=0.01", f"package.pwg.water_loss_db_per_cm_per_rh={a}",
               "package.pwg.index_humidity_rh=90", "package.humidity_rh=0", "package.gap_swelling_um_per_rh=0",
               "package.chm_mismatch_ppm_per_rh=0", "package.pwg.dn_drh_per_rh=0")
    assert np.all(nominal_losses(dry)["loss"] == 0.0)


def test_pwg_indices_follow_cauchy_thermo_optic_and_humidity_terms():
    params = {"package.pwg.n_core": 1.5586, "package.pwg.n_clad": 1.55, "package.pwg.index_wavelength_um": 1.31,
              "package.pwg.cauchy_b_um2": 0.004, "package.pwg.dn_dt_per_k": -3.4e-4,
              "package.pwg.index_temperature_c": 25.0, "package.pwg.dn_drh_per_rh": 2e-6,
              "package.pwg.index_humidity_rh": 50.0}
    values = {"temperature_c": 125.0, "humidity_rh": 85.0, "dn_core": 1e-4}
    n_core, n_clad = pwg_indices(values, params, wavelength_um=1.55)
    common = 0.004 * (1 / 1.55**2 - 1 / 1.31**2) - 3.4e-4 * 100.0 + 2e-6 * 35.0
    assert float(n_clad) == pytest.approx(1.55 + common, abs=1e-14)
    assert float(n_core) == pytest.approx(1.5586 + 1e-4 + common, abs=1e-14)


@pytest.mark.slow
def test_wdm_lanes_take_the_worst_lane():
    lanes = [1.27, 1.31, 1.35]
    base = ("package/coupler=butt", "process=none", "package.coupler.gap_um=20.0")
    each = [nominal_losses(yieldmc.compose(overrides=[*base, f"package.wavelength_um={wl}"]))["loss"]
            for wl in lanes]
    cfg = yieldmc.compose(overrides=[*base, "package.wavelength_um=1.31", f"package.lanes_um={lanes}"])
    both = nominal_losses(cfg)["loss"]
    np.testing.assert_allclose(both, np.max(each, axis=0), rtol=1e-12)
    assert np.ptp([e[0, 0, 0] for e in each]) > 1e-3  # the lanes differ (a 20 µm gap diffracts with λ)
    # a wavelength deviation shifts every lane alike
    shifted = nominal_losses(cfg, wavelength_um=0.02)["loss"]
    each = [nominal_losses(yieldmc.compose(overrides=[*base, f"package.wavelength_um={wl + 0.02}"]))["loss"]
            for wl in lanes]
    np.testing.assert_allclose(shifted, np.max(each, axis=0), rtol=1e-12)


def test_bent_flex_adds_pure_bend_loss_over_the_arc_and_two_transitions():
    cfg = butt("package.pwg.bend_radius_mm=4.0", "package.pwg.bent_angle_deg=60")
    loss = nominal_losses(cfg, bend_radius_mm=[0.0, 1.0, -4.0])["loss"][0, 0]  # R = 4, 5, 0 (straight)
    core = dict(core_width_um=5.5, core_thickness_um=5.5, n_core=1.5586, n_clad=1.55, wavelength_um=1.31)
    w_y = float(physics.pwg_mode_radii_um(**core)[1])
    n_eff = float(physics.pwg_effective_index(**core))
    for r, got in ((4.0, loss[0]), (5.0, loss[1])):
        arc_cm = 0.1 * r * math.radians(60)
        expected = (float(physics.bend_loss_db_per_cm(radius_mm=r, **core)) * arc_cm
                    + 2 * float(physics.bend_transition_loss_db(radius_mm=r, mode_radius_um=w_y, n_eff=n_eff,
                                                               wavelength_um=1.31)))
        assert got == pytest.approx(expected, rel=1e-9)
        assert got > 1e-3
    assert loss[2] == 0.0  # radius <= 0: straight


def test_crosstalk_spec_adds_the_neighbours_and_fails_only_above_the_limit():
    cfg = butt("package.pitch_um=18", "spec.max_crosstalk_db=-40")
    parts = nominal_losses(cfg)
    core = dict(core_width_um=5.5, core_thickness_um=5.5, n_core=1.5586, n_clad=1.55, wavelength_um=1.31)
    one = float(physics.crosstalk_db(pitch_um=18.0, length_cm=1.0, **core))
    xt = parts["crosstalk"][0, :, 0]
    assert xt[0] == pytest.approx(one, abs=1e-9) and xt[-1] == pytest.approx(one, abs=1e-9)
    np.testing.assert_allclose(xt[1:-1], one + 10 * math.log10(2.0), atol=1e-9)
    limit_between = (one + one + 10 * math.log10(2.0)) / 2  # edge channels pass, inner ones fail
    problem = yieldmc.job.as_job(butt("package.pitch_um=18", f"spec.max_crosstalk_db={limit_between}")).problem
    from yieldmc.engine.model import channel_loss_db, nominal_values
    params = {k: v[0] for k, v in problem.params.items()}
    static = problem.static.__class__(**{**problem.static.__dict__, "dtype": "float64"})
    figure = np.asarray(channel_loss_db(nominal_values(params, static), params, static))[0, :, 0]
    fails = figure > params["spec.max_loss_db"]
    assert not fails[0] and not fails[-1] and np.all(fails[1:-1])
    assert np.all(parts["loss"] == 0.0)  # the loss itself is untouched


@pytest.mark.slow
def test_model_gradients_of_the_environment_terms_match_finite_differences():
    cfg = butt("package.pwg.bend_radius_mm=4.0", "package.pwg.water_loss_db_per_cm_per_rh=2e-4",
               "package.chm_mismatch_ppm_per_rh=20", "package.pitch_um=18", "spec.max_crosstalk_db=-20")
    problem = yieldmc.job.as_job(cfg).problem
    from yieldmc.engine.model import channel_loss_parts, nominal_values
    static = problem.static.__class__(**{**problem.static.__dict__, "dtype": "float64"})
    params0 = {k: jnp.asarray(v[0]) for k, v in problem.params.items()}

    def total(p, rh, t, r):
        values = dict(nominal_values(p, static), humidity_rh=rh, temperature_c=t, bend_radius_mm=r)
        parts = channel_loss_parts(values, p, static)
        return jnp.sum(parts["loss"]) + jnp.sum(parts["crosstalk"])

    args = (params0, jnp.asarray(80.0), jnp.asarray(60.0), jnp.asarray(4.0))
    grads = jax.grad(total, argnums=(1, 2, 3))(*args)
    for i, h in ((1, 1e-3), (2, 1e-3), (3, 1e-5)):
        up = list(args); dn = list(args)
        up[i] = args[i] + h
        dn[i] = args[i] - h
        fd = (total(*up) - total(*dn)) / (2 * h)
        assert float(grads[i - 1]) == pytest.approx(float(fd), rel=1e-5, abs=1e-9)


def test_pdl_is_reported_by_a_run_and_is_zero_for_a_polarisation_independent_coupler():
    ds = yieldmc.run(butt("samples=2000", "engine.block_size=1024"))
    assert "pdl_db_mean" in ds and ds.pdl_db_mean.attrs["units"] == "dB"
    assert float(np.abs(ds.pdl_db_mean).max()) == 0.0
