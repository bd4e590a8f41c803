"""The Si-strip adiabatic coupler (docs/physics.md, "2.3a The Si-taper coupler from its
supermodes"): the resampled Si-strip index table, the transfer models against an adaptive
ODE solve and closed forms, phase matching, contact, polarisation and gradients. float64
(conftest enables x64)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import yieldmc
from yieldmc import physics
from yieldmc.analysis.nominal import nominal_losses
from yieldmc.physics import si_taper, silicon

NO_EXTRA = ["process=none", "package.pwg.loss_db_per_cm=0", "package.coupler.excess_loss_te_db=0",
            "package.coupler.excess_loss_tm_db=0"]


def _third_derivative_jump(pol, lam):
    """Largest jump of the third s-derivative of the spline at a wavelength node, per field
    (f against the normalised width s): twice the largest |f'''| of its cubic segments,
    from each segment's end values and slopes, f''' = 6·(2(y0 − y1)/h³ + (m0 + m1)/h²)."""
    ip, il = silicon.POLARIZATIONS.index(pol), silicon.WAVELENGTHS_UM.index(lam)
    x, y, m = silicon._KNOTS[ip, il], silicon._VALUES[:, ip, il], silicon._SLOPES[:, ip, il]
    h = np.diff(x)
    third = 6 * (2 * (y[:, :-1] - y[:, 1:]) / h**3 + (m[:, :-1] + m[:, 1:]) / h**2)
    return 2 * np.abs(third).max(axis=1)


@pytest.mark.slow
@pytest.mark.parametrize("pol", ["te", "tm"])
@pytest.mark.parametrize("lam", [1.26, 1.31, 1.335, 1.55, 1.58])
def test_resampled_table_matches_the_spline(pol, lam):
    """Value and slope in width against the spline, at and between wavelength nodes.

    Each node is a C2 cubic spline in s, linear outside [0, 1]; the table keeps its values
    and slopes on a uniform grid (step ds, s = 0 and 1 on grid points) and interpolates
    cubic Hermite, which reproduces a cubic exactly: only a cell holding a spline knot errs.
    There f = cubic + (J/6)(s − ξ)³₊ (J the jump of f'''), and the Hermite interpolant of
    the second term errs by at most 0.5·J·ds³ in value and 1.25·J·ds² in slope
    (|g| ≤ J·ds³/6, |g'| ≤ J·ds²/2; Hermite basis maxima 1, 4/27·ds, 1.5/ds, 1). The nodes
    are mixed with the band's quadratic Lagrange weights, so the bounds are
    Σ_j |weight_j|·(node j's bound); a slope in width is the slope in s over (0.5 µm − w0(λ)).
    """
    lo = min(silicon.NEAR_CUTOFF_WIDTH_UM.values())
    w = jnp.linspace(0.5 * lo, silicon.WIDTH_MAX_UM + 0.05, 1997)
    spline, spline_slope = jax.jvp(
        lambda x: silicon.si_strip_effective_index(width_um=x, wavelength_um=lam, polarization=pol),
        (w,), (jnp.ones_like(w),))
    fast, fast_slope = jax.jvp(lambda x: si_taper.si_strip_index(width_um=x, wavelength_um=lam, polarization=pol),
                               (w,), (jnp.ones_like(w),))
    ds = si_taper._build()[1]
    band = [x for x in silicon.WAVELENGTHS_UM if (x < silicon.BAND_SPLIT_UM) == (lam < silicon.BAND_SPLIT_UM)]
    weights = [np.prod([(lam - b) / (a - b) for b in band if b != a]) for a in band]
    jumps = [_third_derivative_jump(pol, a) for a in band]  # per node, per field
    span = silicon.WIDTH_MAX_UM - float(silicon.near_cutoff_width_um(wavelength_um=lam, polarization=pol))
    value_bound = sum(abs(wt) * 0.5 * j[0] * ds**3 for wt, j in zip(weights, jumps)) + 1e-12
    slope_bound = sum(abs(wt) * 1.25 * j[0] * ds**2 for wt, j in zip(weights, jumps)) / span + 1e-9
    assert float(jnp.max(jnp.abs(fast - spline))) <= value_bound
    assert float(jnp.max(jnp.abs(fast_slope - spline_slope))) <= slope_bound
    # a Δβ error k0·value_bound below 1e-3 of κ ≈ 0.02 /µm; the Landau–Zener rate |dΔβ/dz|
    # guaranteed to 1 % (the bound takes the largest third-derivative jump anywhere;
    # measured: 3e-5 relative)
    assert 2 * np.pi / lam * value_bound < 1e-3 * 0.02
    assert slope_bound < 1e-2 * float(jnp.min(jnp.abs(spline_slope)))
    d = dict(delta_n_si=0.01, delta_n_box=0.001, delta_n_top=-0.03)
    material = sum(abs(wt) * 0.5 * ds**3 * sum(abs(c) * j[k + 1] for k, c in enumerate(d.values()))
                   for wt, j in zip(weights, jumps))
    np.testing.assert_allclose(si_taper.si_strip_index(width_um=w, wavelength_um=lam, polarization=pol, **d),
                               silicon.si_strip_effective_index(width_um=w, wavelength_um=lam, polarization=pol, **d),
                               rtol=0, atol=value_bound + material + 1e-12)



@pytest.mark.slow
@pytest.mark.parametrize("pol", ["te", "tm"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_one_wavelength_path_equals_the_per_element_path(pol, dtype):
    """A scalar wavelength mixes the band's node tables (and scalar material weights) before
    the gathers; a per-element wavelength interpolates every node. The same function: equal
    to float rounding (float64: 1e-12; float32: a few ulp of the O(1) index), in value and
    slope, with scalar and with per-element material shifts."""
    w = jnp.linspace(0.08, 0.52, 401, dtype=dtype)
    rng = np.random.default_rng(0)
    per_elem = jnp.asarray(rng.normal(0, 0.01, w.shape), dtype)
    tol = 1e-12 if dtype == "float64" else 32 * np.finfo(np.float32).eps  # of the O(1) index
    cell_um = si_taper._build()[1] * 0.4  # a grid cell's width (ds times 0.5 µm − w0 >= 0.4 µm)
    for lam in (1.29, 1.55):
        for d in (dict(delta_n_si=0.01, delta_n_box=0.001, delta_n_top=-0.03),
                  dict(delta_n_si=per_elem, delta_n_box=0.001, delta_n_top=-per_elem)):
            lam_s, lam_a = jnp.asarray(lam, dtype), jnp.full(w.shape, lam, dtype)
            f = lambda x, lam_: si_taper.si_strip_index(width_um=x, wavelength_um=lam_, polarization=pol, **d)  # noqa: E731
            one, one_slope = jax.jvp(lambda x: f(x, lam_s), (w,), (jnp.ones_like(w),))
            each, each_slope = jax.jvp(lambda x: f(x, lam_a), (w,), (jnp.ones_like(w),))
            assert one.dtype == each.dtype == jnp.dtype(dtype)
            np.testing.assert_allclose(one, each, rtol=0, atol=tol)
            # the slope is a difference of O(1) cubic coefficients over one cell's width
            np.testing.assert_allclose(one_slope, each_slope, rtol=0, atol=tol / cell_um)
    # every field subset and order, without weights
    lam_s, lam_a = jnp.asarray(1.31, dtype), jnp.full(w.shape, 1.31, dtype)
    for fields in ((0,), (2, 0), (1, 3), (3,), (0, 1, 2, 3)):
        one = si_taper.si_index_fields(width_um=w, wavelength_um=lam_s, polarization=pol, fields=fields)
        each = si_taper.si_index_fields(width_um=w, wavelength_um=lam_a, polarization=pol, fields=fields)
        assert len(one) == len(each) == len(fields)
        for a, b in zip(one, each):
            np.testing.assert_allclose(a, b, rtol=0, atol=tol)
    with pytest.raises(ValueError, match="weights: one per field"):
        si_taper.si_index_fields(width_um=w, wavelength_um=lam_s, polarization=pol, fields=(0, 1), weights=(1.0,))

def _ode_transfer(kappa, delta_beta, length):
    def rhs(z, y):
        a, b = y[0] + 1j * y[1], y[2] + 1j * y[3]
        d = delta_beta(z)
        da = -1j * (d / 2) * a - 1j * kappa * b
        db = 1j * (d / 2) * b - 1j * kappa * a
        return [da.real, da.imag, db.real, db.imag]

    sol = solve_ivp(rhs, (0.0, length), [1.0, 0.0, 0.0, 0.0], method="DOP853", rtol=1e-10, atol=1e-12,
                    max_step=1.0)
    return sol.y[2, -1] ** 2 + sol.y[3, -1] ** 2


def _profile(k0=4.8, w0=0.3, w1=0.1, length=1500.0):
    n = lambda w: 1.50 + 1.3 * (1 - np.exp(-(w - 0.08) / 0.25)) ** 2  # noqa: E731  (Si-strip-like)
    return (lambda z: k0 * (n(w0 + (w1 - w0) * z / length) - 1.5546)), length


@pytest.mark.slow
def test_profile_cmt_converges_to_the_ode_solution():
    db_np, length = _profile()
    db_jax = lambda z: 4.8 * (1.50 + 1.3 * (1 - jnp.exp(-(0.3 - 0.2 * z / length - 0.08) / 0.25)) ** 2 - 1.5546)  # noqa: E731
    zs = np.linspace(0, length, 100001)
    zc = zs[np.argmin(np.abs(db_np(zs)))]
    rate = abs(np.gradient(db_np(zs), zs)[np.argmin(np.abs(db_np(zs)))])
    for kappa in (0.01, 0.03):
        ref = _ode_transfer(kappa, db_np, length)
        errors = [abs(float(physics.adiabatic_transfer_profile(
            kappa_per_um=kappa, delta_beta_per_um=db_jax, taper_length_um=length, focus_um=zc,
            focus_width_um=5 * kappa / rate, segments=s)) - ref) for s in (64, 1024, 4096)]
        assert errors[2] < 1e-5 and errors[2] < errors[1] < errors[0], errors
        assert errors[0] < 0.02, errors


def test_landau_zener_with_ends_closed_forms():
    k, rate = 0.02, 6e-4
    lz = -np.expm1(-2 * np.pi * k * k / rate)
    far = physics.landau_zener_with_ends(kappa_per_um=k, rate_per_um2=rate, delta_beta_start_per_um=1e3,
                                         delta_beta_end_per_um=-1e3, crossing_inside=True)
    assert float(far) == pytest.approx(lz, rel=1e-9)  # infinite sweep
    # the crossing at the tip: half the power either way, approached continuously from both sides
    for inside, end in ((True, -1e-9), (False, 1e-9)):
        eta = physics.landau_zener_with_ends(kappa_per_um=k, rate_per_um2=rate, delta_beta_start_per_um=1e3,
                                             delta_beta_end_per_um=end, crossing_inside=inside)
        assert float(eta) == pytest.approx(0.5, abs=1e-6)
    # no crossing, tip at Δβ_end > 0: the PWG takes sin²θ_end of the Si-like supermode
    d = 0.05
    eta = physics.landau_zener_with_ends(kappa_per_um=k, rate_per_um2=rate, delta_beta_start_per_um=1e3,
                                         delta_beta_end_per_um=d, crossing_inside=False)
    p0 = 0.5 * (1 + 500 / np.hypot(500, k))  # the bare Si mode in the Si-like supermode at the start
    s_end = 0.5 * (1 - (d / 2) / np.hypot(d / 2, k))
    assert float(eta) == pytest.approx(p0 * s_end + (1 - p0) * (1 - s_end), rel=1e-12)


@pytest.mark.slow
def test_both_models_collapse_when_the_tip_is_wider_than_phase_matching():
    """landau_zener against the cmt (1024 segments) over the tip-width error, TE: the cliff
    where the crossing (w* ≈ 143 nm) leaves the taper is in both; below it the closed form
    stays within 0.6 dB of the cmt, whose supermode interference at the tip it averages."""
    dev = np.array([0.0, 40.0, 70.0, 80.0, 90.0, 100.0])  # tips 60 … 160 nm
    lz = nominal_losses(yieldmc.compose(NO_EXTRA + ["package.coupler.model=landau_zener"]), polarization="te",
                        taper_tip_width_nm=dev)["loss"][0, 0]
    cmt = nominal_losses(yieldmc.compose(NO_EXTRA + ["package.coupler.segments=1024"]),
                         polarization="te", taper_tip_width_nm=dev)["loss"][0, 0]
    np.testing.assert_allclose(lz[:3], cmt[:3], atol=0.6)
    assert lz[-1] > 3.0 and cmt[-1] > 3.0  # tip 160 nm: no crossing on the taper
    assert np.all(lz[:3] < 1.0) and np.all(cmt[:3] < 1.0)


@pytest.mark.slow
def test_phase_matching_is_where_delta_vanishes_and_follows_the_temperature_nodes():
    from yieldmc.couplers.adiabatic import supermode_crossing
    from yieldmc.engine.model import CouplerInputs
    from yieldmc.physics import materials, supermodes

    cfg = yieldmc.compose(["process=none"])
    problem = yieldmc.job.as_job(cfg).problem
    params = {k: jnp.asarray(v[0]) for k, v in problem.params.items()}
    data = supermodes._data()
    for t in (-40.0, 25.0, 125.0):
        values = dict(yieldmc.engine.model.nominal_values(params, problem.static), temperature_c=jnp.asarray(t))
        clad = materials.pwg_cladding_index(wavelength_um=1.31, temperature_c=t)  # the table's own PWG
        core = dict(core_width_um=5.5, core_thickness_um=5.5, n_core=clad + supermodes.TABLE_CORE_CONTRAST,
                    n_clad=clad, wavelength_um=1.31)
        inputs = CouplerInputs(dx_um=jnp.asarray(0.0), dy_um=jnp.asarray(0.0), x_um=jnp.zeros((1, 1)),
                               yaw_rad=jnp.asarray(0.0), w_x_um=None, w_y_um=None, core=core, wavelength_um=1.31,
                               params=params, values=values)
        for pol in ("te", "tm"):
            x = supermode_crossing(inputs, static=problem.static.coupler.settings, polarization=pol)
            assert abs(float(x.delta(x.z_um))) < 1e-2 * float(x.kappa_per_um)  # δ(z_c) = 0 (the tabulated shape)
            assert 0.0 < float(x.z_um) < float(params["package.coupler.taper_length_um"])
            node = [c for c in data["crossings"] if c["polarization"] == pol and c["temperature_c"] == t
                    and c["wavelength_um"] == 1.31 and c["gap_um"] == 0.3 and c["offset_um"] == 0.0]
            if node:  # a solved crossing: the table passes through it
                assert float(x.width_um) == pytest.approx(node[0]["w_star_um"], abs=1e-9)
                assert float(x.kappa_per_um) == pytest.approx(node[0]["kappa_per_um"], rel=1e-9)


@pytest.mark.slow
def test_contact_clips_the_gap_and_worst_polarisation_is_the_max():
    cfg = yieldmc.compose(["process=none"])
    g0 = float(cfg.package.coupler.gap_um)
    loss = nominal_losses(cfg, polarization="te", dy_um=[-g0, -g0 - 0.5, -g0 + 0.5])["loss"][0, 0]
    assert loss[0] == loss[1]  # below contact nothing changes
    assert loss[2] != loss[0]
    te = nominal_losses(cfg, polarization="te", dx_um=[0.0, 2.0])["loss"]
    tm = nominal_losses(cfg, polarization="tm", dx_um=[0.0, 2.0])["loss"]
    both = nominal_losses(cfg, dx_um=[0.0, 2.0])
    np.testing.assert_allclose(both["loss"], np.maximum(te, tm), rtol=1e-12)
    np.testing.assert_allclose(both["pdl"], np.abs(te - tm), rtol=1e-9, atol=1e-12)


@pytest.mark.slow
def test_coupler_gradients_match_finite_differences():
    cfg = yieldmc.compose(["process=none"])
    problem = yieldmc.job.as_job(cfg).problem
    static = problem.static.__class__(**{**problem.static.__dict__, "dtype": "float64"})
    params0 = {k: jnp.asarray(v[0]) for k, v in problem.params.items()}
    from yieldmc.engine.model import channel_loss_parts, nominal_values

    def total(tip, t, dx):
        values = dict(nominal_values(params0, static), taper_tip_width_nm=tip, temperature_c=t, dx_um=dx)
        return jnp.sum(channel_loss_parts(values, params0, static)["loss"])

    args = [jnp.asarray(62.0), jnp.asarray(70.0), jnp.asarray(1.5)]
    grads = jax.grad(total, argnums=(0, 1, 2))(*args)
    for i, h in enumerate((1e-3, 1e-3, 1e-5)):
        up, dn = list(args), list(args)
        up[i] = args[i] + h
        dn[i] = args[i] - h
        fd = (total(*up) - total(*dn)) / (2 * h)
        assert float(grads[i]) == pytest.approx(float(fd), rel=2e-4, abs=1e-7)
