"""yieldmc.physics.silicon: the Si-strip mode table and its interpolation.

References: the table's own nodes, explicit solves of the same FEM solver stored in
tests/data/si_strip_check.csv (off-grid widths and wavelengths at 25 °C; all materials at
−40 °C and 125 °C), scipy's CubicSpline for the width interpolation, finite differences.
"""

import csv
import functools
import json
from importlib import resources
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.interpolate import CubicSpline

from yieldmc.physics import materials as mat
from yieldmc.physics import silicon as si

TABLE = json.loads(resources.files("yieldmc").joinpath("data/si_strip_modes.json").read_text())
with (Path(__file__).parent / "data/si_strip_check.csv").open() as _f:
    CHECK = list(csv.DictReader(line for line in _f if not line.startswith("#")))
for _r in CHECK:
    for _k in ("wavelength_um", "width_um", "temperature_c", "n_si", "n_box", "n_top", "n_eff"):
        _r[_k] = float(_r[_k])

# Errors measured for this table (max |interpolated − explicit solve|; FEM itself is
# converged to ~2e-5, see the JSON's "convergence"):
#   width midpoints (60 rows, all nodes, incl. the first 5 nm intervals): 2.5e-5 (rms 9e-6)
#   wavelength midpoints 1.285/1.335/1.525/1.575 µm (24 rows): 9.4e-5 (rms 4.2e-5)
#   same wavelengths 3/10/30 nm above the interpolated cutoff (24 rows): 3.7e-5 (rms 1.6e-5)
#   first-order material terms at −40 / 125 °C (24 rows): 7.5e-4 (rms 3.7e-4), largest at
#   125 °C (Δn_top = −0.035) for TM.
OFF_GRID_WIDTH_TOL = 4e-5
OFF_GRID_WAVELENGTH_TOL = 1.5e-4
NEAR_CUTOFF_WAVELENGTH_TOL = 6e-5
TEMPERATURE_TOL = 1e-3


def _interp(pol):
    return jax.jit(lambda w, lam, a=0.0, b=0.0, c=0.0: si.si_strip_effective_index(
        width_um=w, wavelength_um=lam, polarization=pol, delta_n_si=a, delta_n_box=b,
        delta_n_top=c))


INTERP = {p: _interp(p) for p in si.POLARIZATIONS}


def _rows(pol):
    return [r for r in TABLE["rows"] if r["polarization"] == pol]


@pytest.mark.parametrize("pol", si.POLARIZATIONS)
def test_table_nodes_reproduced(pol):
    rows = _rows(pol)
    w = jnp.array([r["width_um"] for r in rows])
    lam = jnp.array([r["wavelength_um"] for r in rows])
    f = jax.jit(lambda a, b: si._interp_fields(a, b, pol))(w, lam)
    np.testing.assert_allclose(f[0], [r["n_eff"] for r in rows], rtol=0, atol=1e-12)
    sens = f[1:]
    for k, name in enumerate(("dneff_dnsi", "dneff_dnbox", "dneff_dntop")):
        np.testing.assert_allclose(sens[k], [r[name] for r in rows], rtol=0, atol=1e-12)


def test_width_spline_is_scipys_not_a_knot_spline():
    rng = np.random.default_rng(0)
    for pol, lams in (("te", (1.31, 1.55)),):  # the code path is the same for TM
        grad_w = jax.jit(jax.vmap(jax.grad(lambda q, lam, pol=pol: si.si_strip_effective_index(
            width_um=q, wavelength_um=lam, polarization=pol)), in_axes=(0, None)))
        for lam in lams:
            rows = [r for r in _rows(pol) if r["wavelength_um"] == lam]
            x = np.array([r["width_um"] for r in rows])
            y = np.array([r["n_eff"] for r in rows])
            cs = CubicSpline(x, y, bc_type="not-a-knot")
            w = rng.uniform(x[0], x[-1], 50)
            np.testing.assert_allclose(INTERP[pol](jnp.asarray(w), lam), cs(w), rtol=0, atol=1e-12)
            np.testing.assert_allclose(grad_w(jnp.asarray(w), lam), cs(w, 1), rtol=1e-9, atol=1e-9)


def _check_rows(kind):
    return [r for r in CHECK if r["kind"] == kind and np.isfinite(r["n_eff"])]


@functools.cache
def _check_errors():
    """Interpolated − explicit n_eff for every check row (one evaluation per polarisation);
    temperature rows with the first-order material terms (deltas from materials.py)."""
    lam = jnp.array([r["wavelength_um"] for r in CHECK])
    temp = jnp.array([r["temperature_c"] for r in CHECK])

    @jax.jit
    def deltas_at(lam, temp):
        n_t = jnp.stack([mat.silicon_index(wavelength_um=lam, temperature_c=temp),
                         mat.silica_index(wavelength_um=lam, temperature_c=temp),
                         mat.pwg_cladding_index(wavelength_um=lam, temperature_c=temp)])
        return n_t, n_t - jnp.stack(si.si_strip_reference_indices(wavelength_um=lam))

    n_t, deltas = deltas_at(lam, temp)
    # the check rows' materials are materials.py at their temperature
    np.testing.assert_allclose(n_t.T, [[r["n_si"], r["n_box"], r["n_top"]] for r in CHECK],
                               rtol=0, atol=1e-9)
    width = jnp.array([r["width_um"] for r in CHECK])
    n_check = np.array([r["n_eff"] for r in CHECK])
    out = {}
    for pol in si.POLARIZATIONS:
        n = np.asarray(INTERP[pol](width, lam, *deltas))
        n0 = np.asarray(INTERP[pol](width, lam, *(0.0 * deltas)))
        for i, r in enumerate(CHECK):
            if r["polarization"] == pol and np.isfinite(n_check[i]):
                out.setdefault(r["kind"], []).append((n[i] - n_check[i], n0[i] - n_check[i]))
    return {k: np.array(v) for k, v in out.items()}


def test_off_grid_widths_vs_explicit_solves():
    err = _check_errors()["off_grid_width"][:, 0]
    assert len(err) >= 40
    assert np.max(np.abs(err)) < OFF_GRID_WIDTH_TOL, err


def test_off_grid_wavelengths_vs_explicit_solves():
    err = _check_errors()["off_grid_wavelength"][:, 0]
    assert len(err) >= 20
    assert np.max(np.abs(err)) < OFF_GRID_WAVELENGTH_TOL, err


def test_near_cutoff_off_grid_wavelengths_vs_explicit_solves():
    # widths 3, 10, 30 nm above the interpolated near-cutoff width at 1.285 … 1.575 µm,
    # i.e. below the band's longest-wavelength node's cutoff (the phase-matching region)
    rows = _check_rows("near_cutoff_wavelength")
    assert len(rows) >= 20
    for r in rows:
        si.validate_si_strip(width_um=r["width_um"], wavelength_um=r["wavelength_um"],
                             polarization=r["polarization"])
    err = _check_errors()["near_cutoff_wavelength"][:, 0]
    assert len(err) == len(rows)
    assert np.max(np.abs(err)) < NEAR_CUTOFF_WAVELENGTH_TOL, err


def test_temperature_first_order_vs_explicit_solves():
    err = _check_errors()["temperature"]
    assert len(err) >= 20
    assert np.max(np.abs(err[:, 0])) < TEMPERATURE_TOL, err[:, 0]
    # without the material terms the error would be the full thermal shift (≫ the tolerance)
    assert np.max(np.abs(err[:, 1])) > 10 * TEMPERATURE_TOL


def test_reference_indices_are_the_tables():
    for entry in TABLE["materials"]["per_wavelength"]:
        n = si.si_strip_reference_indices(wavelength_um=entry["wavelength_um"])
        np.testing.assert_allclose([float(v) for v in n],
                                   [entry["n_si"], entry["n_box"], entry["n_top"]], rtol=0, atol=1e-12)


@pytest.mark.parametrize("pol", ["te"])  # the code path is the same for TM
def test_gradients_vs_finite_differences(pol):
    def f(x):
        return si.si_strip_effective_index(width_um=x[0], wavelength_um=x[1], polarization=pol,
                                           delta_n_si=x[2], delta_n_box=x[3], delta_n_top=x[4])

    f = jax.jit(f)
    df = jax.jit(jax.grad(f))
    lo, _ = si._width_range(pol, 1.31)
    for x0 in ([lo + 0.0123, 1.2873, 0.01, -0.002, 0.003], [0.4321, 1.5789, -0.005, 0.001, -0.01]):
        x0 = jnp.array(x0)
        g = np.asarray(df(x0))
        h = 1e-6
        fd = [(float(f(x0.at[i].add(h))) - float(f(x0.at[i].add(-h)))) / (2 * h) for i in range(5)]
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)
        assert g[0] > 0 and g[2] > 0 and g[4] > 0  # wider strip, higher n_si / n_top: higher n_eff


@pytest.mark.parametrize("pol", ["tm"])
def test_float32_matches_float64(pol):
    lo, hi = si._width_range(pol, 1.55)
    w = np.linspace(lo, hi, 37)
    lam = np.linspace(1.50, 1.60, 37)
    n64 = INTERP[pol](jnp.asarray(w), jnp.asarray(lam), 1e-3, 1e-4, -1e-3)
    n32 = INTERP[pol](jnp.asarray(w, jnp.float32), jnp.asarray(lam, jnp.float32),
                      jnp.float32(1e-3), jnp.float32(1e-4), jnp.float32(-1e-3))
    assert n32.dtype == jnp.float32 and n64.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(n32), np.asarray(n64), rtol=2e-6)


def test_smooth_across_nodes_and_linear_outside():
    pol = "te"  # the interpolation code is the same for both polarisations
    rows = [r for r in _rows(pol) if r["wavelength_um"] == 1.31]
    x = np.array([r["width_um"] for r in rows])
    d1 = jax.jit(jax.grad(lambda w: si.si_strip_effective_index(width_um=w, wavelength_um=1.31,
                                                                polarization=pol)))
    eps, h = 1e-9, 1e-4
    for xi in x[1:-1:2]:
        assert float(d1(xi - eps)) == pytest.approx(float(d1(xi + eps)), rel=1e-6)  # C¹
        # C²: one-sided second differences of the slope agree across the node
        left = (float(d1(xi - eps)) - float(d1(xi - h))) / h
        right = (float(d1(xi + h)) - float(d1(xi + eps))) / h
        assert left == pytest.approx(right, rel=0.05, abs=0.05)
    # beyond the table: linear continuation, C¹ at the ends
    for end, out, out2 in ((x[0], x[0] - 0.01, x[0] - 0.03), (x[-1], x[-1] + 0.05, x[-1] + 0.2)):
        assert float(d1(out)) == pytest.approx(float(d1(end)), rel=1e-9)
        assert float(d1(out2)) == pytest.approx(float(d1(end)), rel=1e-9)
    assert np.isfinite(float(si.si_strip_effective_index(width_um=0.05, wavelength_um=1.31,
                                                         polarization=pol)))


def test_validate_and_argument_errors():
    si.validate_si_strip(width_um=0.3, wavelength_um=1.31)
    si.validate_si_strip(width_um=np.array([0.25, 0.5]), wavelength_um=np.array([1.26, 1.6]))
    lo_te, _ = si._width_range("te", 1.55)
    lo_tm, _ = si._width_range("tm", 1.55)
    assert lo_tm < lo_te  # the TM mode reaches narrower strips
    si.validate_si_strip(width_um=0.5 * (lo_tm + lo_te), wavelength_um=1.55, polarization="tm")
    with pytest.raises(ValueError, match="width_um"):
        si.validate_si_strip(width_um=0.5 * (lo_tm + lo_te), wavelength_um=1.55)
    with pytest.raises(ValueError, match="width_um"):
        si.validate_si_strip(width_um=0.55, wavelength_um=1.31)
    # the range follows the cutoff in λ: 0.175 µm is valid for TM at 1.55 µm, not at 1.60
    si.validate_si_strip(width_um=0.175, wavelength_um=1.55, polarization="tm")
    with pytest.raises(ValueError, match="width_um"):
        si.validate_si_strip(width_um=0.175, wavelength_um=1.60, polarization="tm")
    with pytest.raises(ValueError, match="wavelength_um"):
        si.validate_si_strip(width_um=0.3, wavelength_um=1.45)
    with pytest.raises(ValueError, match="wavelength_um"):
        si.validate_si_strip(width_um=0.3, wavelength_um=float("nan"))
    with pytest.raises(ValueError, match="polarization"):
        si.validate_si_strip(width_um=0.3, wavelength_um=1.31, polarization="x")
    with pytest.raises(ValueError, match="polarization"):
        si.si_strip_effective_index(width_um=0.3, wavelength_um=1.31, polarization="TE")


def test_vmap_and_broadcasting():
    w = jnp.linspace(0.3, 0.5, 5)
    lam = jnp.array([[1.31], [1.55]])
    n = INTERP["te"](w, lam)
    assert n.shape == (2, 5)
    nv = jax.jit(jax.vmap(lambda q: si.si_strip_effective_index(width_um=q, wavelength_um=1.55,
                                                                polarization="te")))(w)
    np.testing.assert_allclose(nv, n[1], rtol=1e-14)
    assert np.all(np.diff(np.asarray(n), axis=1) > 0)
