"""yieldmc.physics.materials against published index data (independent of the fits)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from yieldmc.physics import materials as m

# H. H. Li, J. Phys. Chem. Ref. Data 9:561 (1980), recommended n of Si at 293 K (table
# values, 4 decimals; as transcribed in the refractiveindex.info database, Si/Li-293K).
LI_293K = {1.20: 3.5167, 1.26: 3.5072, 1.30: 3.5016, 1.32: 3.4990, 1.36: 3.4941,
           1.50: 3.4799, 1.55: 3.4757, 1.60: 3.4719, 2.00: 3.4510}
# Li's 350 K table at the same wavelengths (for the size of dn/dT).
LI_350K = {1.30: 3.5130, 1.55: 3.4865}

# Fused silica, Malitson, JOSA 55:1205 (1965): measured indices (Table, 20 °C) and the
# Sellmeier values quoted elsewhere (refractiveindex.info: 1.45846 at 0.5876 µm; 1.4440
# at 1.55 µm, the usual telecom value; at 1.31 µm the formula gives 1.44680).
MALITSON = [(1.01398, 1.45024, 3e-5), (1.52952, 1.44427, 3e-5), (0.5876, 1.45846, 1e-5),
            (1.55, 1.4440, 6e-5)]


@pytest.mark.parametrize("lam", sorted(LI_293K))
def test_silicon_matches_li_table(lam):
    n = float(m.silicon_index(wavelength_um=lam, temperature_c=20.0))
    # the fit's largest deviation is 6.3e-5; the table is rounded to 1e-4
    assert n == pytest.approx(LI_293K[lam], abs=1e-4)


def test_silicon_dn_dt_consistent_with_li_350k():
    # Cocorullo's 1.86e-4 /K vs the slope of Li's 293 K → 350 K tables (1.9–2.0e-4 /K)
    for lam, n350 in LI_350K.items():
        slope = (n350 - LI_293K[lam]) / 57.0
        assert m.SI_DN_DT_PER_K == pytest.approx(slope, rel=0.08)


@pytest.mark.parametrize(("lam", "n_ref", "tol"), MALITSON)
def test_silica_matches_malitson(lam, n_ref, tol):
    n = float(m.silica_index(wavelength_um=lam, temperature_c=20.0))
    assert n == pytest.approx(n_ref, abs=tol)


@pytest.mark.parametrize(
    ("fn", "coef"),
    [(m.silicon_index, m.SI_DN_DT_PER_K), (m.silica_index, m.SIO2_DN_DT_PER_K),
     (m.pwg_cladding_index, m.POLYMER_DN_DT_PER_K)],
)
@pytest.mark.parametrize("lam", [1.31, 1.55])
def test_dn_dt_is_the_constant(fn, coef, lam):
    g = jax.grad(lambda t: fn(wavelength_um=jnp.float64(lam), temperature_c=t))(jnp.float64(-17.0))
    assert float(g) == pytest.approx(coef, rel=1e-12)


@pytest.mark.parametrize("fn", [m.silicon_index, m.silica_index, m.pwg_cladding_index])
@pytest.mark.parametrize("lam", [1.26, 1.55])
def test_wavelength_gradient_vs_finite_difference(fn, lam):
    f = lambda x: fn(wavelength_um=x, temperature_c=jnp.float64(60.0))  # noqa: E731
    g = float(jax.grad(f)(jnp.float64(lam)))
    h = 1e-5
    fd = (float(f(jnp.float64(lam + h))) - float(f(jnp.float64(lam - h)))) / (2 * h)
    assert g == pytest.approx(fd, rel=1e-6, abs=1e-10)
    assert g < 0  # normal dispersion in the transparent range


def test_silicon_dispersion_slope_vs_li_table():
    # dn/dλ at 1.31 and 1.55 µm vs central differences of Li's table
    g = jax.grad(lambda x: m.silicon_index(wavelength_um=x, temperature_c=20.0))
    assert float(g(1.31)) == pytest.approx((LI_293K[1.32] - LI_293K[1.30]) / 0.02, rel=0.05)
    assert float(g(1.55)) == pytest.approx((LI_293K[1.60] - LI_293K[1.50]) / 0.10, rel=0.05)


def test_polymer_index_terms():
    kw = dict(n_ref=1.55, wavelength_ref_um=1.31, temperature_ref_c=25.0, humidity_ref_rh=50.0)
    assert float(m.polymer_index(wavelength_um=1.31, temperature_c=25.0, humidity_rh=50.0,
                                 **kw)) == pytest.approx(1.55, abs=1e-15)
    # Cauchy: n(λ) − n(λ_ref) = B (1/λ² − 1/λ_ref²), independent of T and RH
    d = (m.polymer_index(wavelength_um=1.55, temperature_c=70.0, humidity_rh=85.0, **kw)
         - m.polymer_index(wavelength_um=1.31, temperature_c=70.0, humidity_rh=85.0, **kw))
    assert float(d) == pytest.approx(m.POLYMER_CAUCHY_B_UM2 * (1 / 1.55**2 - 1 / 1.31**2), rel=1e-12)
    # linear in T and RH with the module's coefficients
    n = m.polymer_index(wavelength_um=1.31, temperature_c=125.0, humidity_rh=85.0, **kw)
    expect = 1.55 + 100.0 * m.POLYMER_DN_DT_PER_K + 35.0 * m.POLYMER_DN_DRH_PER_RH
    assert float(n) == pytest.approx(expect, abs=1e-14)
    g = jax.grad(lambda rh: m.polymer_index(wavelength_um=1.31, temperature_c=25.0,
                                            humidity_rh=rh, **kw))(jnp.float64(20.0))
    assert float(g) == pytest.approx(m.POLYMER_DN_DRH_PER_RH, rel=1e-12)
    # explicit coefficients override the defaults
    n2 = m.polymer_index(wavelength_um=1.55, temperature_c=35.0, humidity_rh=50.0, dn_dt_per_k=-1e-4,
                         dn_drh_per_rh=0.0, cauchy_b_um2=0.0, **kw)
    assert float(n2) == pytest.approx(1.55 - 1e-3, abs=1e-14)


def test_pwg_cladding_reference():
    assert float(m.pwg_cladding_index(wavelength_um=1.31, temperature_c=25.0)) == pytest.approx(1.55)
    assert m.POLYMER_DN_DT_PER_K < 0 < m.POLYMER_CAUCHY_B_UM2


@pytest.mark.parametrize("fn", [m.silicon_index, m.silica_index, m.pwg_cladding_index])
def test_float32_and_broadcasting(fn):
    lam64 = np.array([1.26, 1.31, 1.55, 1.6])
    t64 = np.array([[-40.0], [25.0], [125.0]])
    n64 = fn(wavelength_um=jnp.asarray(lam64), temperature_c=jnp.asarray(t64))
    n32 = fn(wavelength_um=jnp.asarray(lam64, jnp.float32), temperature_c=jnp.asarray(t64, jnp.float32))
    assert n64.shape == n32.shape == (3, 4)
    assert n64.dtype == jnp.float64 and n32.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(n32), np.asarray(n64), rtol=2e-7)
    # jit and vmap
    jf = jax.jit(lambda x, t: fn(wavelength_um=x, temperature_c=t))
    np.testing.assert_allclose(jf(jnp.asarray(lam64), 25.0), fn(wavelength_um=lam64, temperature_c=25.0),
                               rtol=1e-14)
