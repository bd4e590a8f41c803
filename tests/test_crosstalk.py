"""Tests of ``yieldmc.physics.crosstalk`` against independent references.

* κ is compared with half the exact even/odd supermode splitting, (β_even − β_odd)/2,
  of the five-layer structure "cladding | slab | gap | slab | cladding" built from the
  effective-index-reduced slabs. Both the thickness-slab index n1 and the two supermodes
  are found here from their transcendental equations with mpmath at 100 digits (the
  splitting is ~e^{−γs}·β, far below float64's resolution of β at large pitch), so the
  reference shares no code with the implementation.
* X = sin²(κL) is compared with an adaptive DOP853 integration of the coupled-mode
  equations (scipy ``solve_ivp``).
* Generic checks: ``jax.grad`` against central differences, float32 against float64,
  broadcasting, finiteness at large pitch and at the zeros of sin²(κL), argument checks.

The closed form is the weak-coupling asymptote: expanding the exact dispersion
relations in q = e^{−γs} (s the edge gap, γ the cladding decay constant) reproduces it as
the leading term, so the relative error is O(q) (in fact it falls faster: the odd-in-q
terms of the even and odd supermodes cancel in the difference). Measured over the cases
below, |κ/κ_exact − 1| ≤ 0.094·q, the largest ratio for the weakest-guiding width slab
(4 µm wide, 1.55 µm; 2.8 % at a 3 µm gap); for the nominal 5.5 µm core it is ≤ 0.019·q
(0.64 % at a 1.5 µm gap, 3.5e-7 at 18 µm pitch, 1.31 µm). The tolerance 0.2·q + 1e-12 is
that bound with a ×2 margin plus float64 round-off of the exponent γ·s.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
from scipy.integrate import solve_ivp

jax.config.update("jax_enable_x64", True)

from yieldmc.physics import crosstalk  # noqa: E402
from yieldmc.physics.crosstalk import (  # noqa: E402
    coupling_coefficient_per_um,
    crosstalk_db,
    validate_crosstalk,
)

NOMINAL = dict(core_width_um=5.5, core_thickness_um=5.5, n_core=1.5586, n_clad=1.55)
ARGS = (
    "pitch_um", "length_cm", "core_width_um", "core_thickness_um", "n_core", "n_clad",
    "wavelength_um",
)

# One jitted function each, fed arrays of one dtype, so that the tests compile a few
# shape/dtype signatures instead of dispatching every primitive eagerly.
@jax.jit
def _kappa_and_xt(kw):
    geometry = {k: v for k, v in kw.items() if k != "length_cm"}
    return coupling_coefficient_per_um(**geometry), crosstalk_db(**kw)


def kappa(dtype=np.float64, **kw):
    kw.setdefault("length_cm", 1.0)
    return np.asarray(_kappa_and_xt({k: np.asarray(v, dtype) for k, v in kw.items()})[0])


def xt(dtype=np.float64, **kw):
    return np.asarray(_kappa_and_xt({k: np.asarray(v, dtype) for k, v in kw.items()})[1])


# ======================================================================================
# Independent reference: exact slab and two-slab TE modes (mpmath)
# ======================================================================================
_DPS = 100


def _bracketed_root(f, hi):
    """Root of a function decreasing from > 0 at 0⁺ to < 0 at hi⁻ (Illinois method)."""
    lo = mpmath.mpf(10) ** (-_DPS // 2)
    return mpmath.findroot(f, (lo, hi * (1 - mpmath.mpf(10) ** (-_DPS // 2))), solver="illinois")


def _slab_gamma(k0, half_width, n_core, n_clad):
    """Cladding decay constant γ of the TE0 slab mode: h·a = atan(γ/h), h² + γ² = K²."""
    big_k = k0 * mpmath.sqrt(n_core**2 - n_clad**2)

    def f(g):
        h = mpmath.sqrt(big_k**2 - g**2)
        return h * half_width - mpmath.atan(g / h)

    return _bracketed_root(f, big_k)


def exact_splitting_kappa(
    *, pitch_um, core_width_um, core_thickness_um, n_core, n_clad, wavelength_um
):
    """(β_even − β_odd)/2 of two identical EIM-reduced slabs, and the isolated slab's γ.

    Origin at the centre of the gap (half-width s/2). The TE field is cosh(γx) (even) or
    sinh(γx) (odd) in the gap, A·cos(h(x − s/2)) + B·sin(h(x − s/2)) in the slab of width
    d, and decays as exp(−γx) outside. Continuity of E and E' at both slab faces gives
    h·d = atan(p/h) + atan(γ/h) for the fundamental pair, with p = E'/E at the inner face:
    γ·tanh(γs/2) (even), γ·coth(γs/2) (odd).
    """
    with mpmath.workdps(_DPS):
        k0 = 2 * mpmath.pi / mpmath.mpf(wavelength_um)
        nco, ncl = mpmath.mpf(n_core), mpmath.mpf(n_clad)
        g1 = _slab_gamma(k0, mpmath.mpf(core_thickness_um) / 2, nco, ncl)
        n1 = mpmath.sqrt(ncl**2 + (g1 / k0) ** 2)  # thickness-slab TE0 index
        d = mpmath.mpf(core_width_um)
        s = mpmath.mpf(pitch_um) - d
        big_k = k0 * mpmath.sqrt(n1**2 - ncl**2)

        def dispersion(parity):
            def f(g):
                h = mpmath.sqrt(big_k**2 - g**2)
                t = mpmath.tanh(g * s / 2)
                p = g * t if parity == "even" else g / t
                return h * d - mpmath.atan(p / h) - mpmath.atan(g / h)

            return f

        beta = [
            mpmath.sqrt((k0 * ncl) ** 2 + _bracketed_root(dispersion(par), big_k) ** 2)
            for par in ("even", "odd")
        ]
        gamma = _slab_gamma(k0, d / 2, n1, ncl)
        return float((beta[0] - beta[1]) / 2), float(gamma)


# ======================================================================================
# κ against the exact supermode splitting
# ======================================================================================
PITCHES_UM = (7.0, 8.25, 11.0, 18.0, 30.0, 50.0, 100.0, 200.0)
CORES = {
    "nominal": NOMINAL,
    "6um_dn0.012": dict(core_width_um=6.0, core_thickness_um=6.0, n_core=1.562, n_clad=1.55),
    # A flat core in both orientations checks which axis the EIM reduces first.
    "flat_in_plane": dict(core_width_um=6.0, core_thickness_um=4.0, n_core=1.5586, n_clad=1.55),
    "flat_vertical": dict(core_width_um=4.0, core_thickness_um=6.0, n_core=1.5586, n_clad=1.55),
}




@pytest.mark.parametrize("wavelength_um", [1.31, 1.55])
@pytest.mark.parametrize("core", sorted(CORES))
def test_kappa_matches_supermode_splitting(core, wavelength_um):
    geom = CORES[core]
    pitches = np.array(PITCHES_UM)  # one shape for every core: one compilation
    got = kappa(pitch_um=pitches, wavelength_um=wavelength_um, **geom)
    ref, gamma = np.array(
        [exact_splitting_kappa(pitch_um=p, wavelength_um=wavelength_um, **geom) for p in pitches]
    ).T
    q = np.exp(-gamma * (pitches - geom["core_width_um"]))
    rel = got / ref - 1.0
    np.testing.assert_array_less(np.abs(rel), 0.2 * q + 1e-12, err_msg=f"pitches {pitches}")


def test_kappa_relative_error_is_weak_coupling_asymptote():
    """The error vanishes with the gap (O(q)); at the tightest pitch it is visible."""
    kw = dict(NOMINAL, wavelength_um=1.31)
    ref7, _ = exact_splitting_kappa(pitch_um=7.0, **kw)
    ref18, _ = exact_splitting_kappa(pitch_um=18.0, **kw)
    got = kappa(pitch_um=np.array(PITCHES_UM), **kw)  # the splitting test's signature
    got7, got18 = got[PITCHES_UM.index(7.0)], got[PITCHES_UM.index(18.0)]
    assert 1e-3 < abs(got7 / ref7 - 1) < 2e-2
    assert abs(got18 / ref18 - 1) < 1e-5


# ======================================================================================
# X = sin²(κL) against the coupled-mode ODE
# ======================================================================================
def _cmt_ode_transfer(kappa_per_um, length_um):
    """|b(L)|² of da/dz = −iκb, db/dz = −iκa, (a, b)(0) = (1, 0); adaptive DOP853."""

    def rhs(_, y):
        return np.array([-1j * kappa_per_um * y[1], -1j * kappa_per_um * y[0]])

    sol = solve_ivp(rhs, (0.0, length_um), np.array([1.0 + 0j, 0j]), method="DOP853",
                    rtol=1e-12, atol=1e-15)
    return abs(sol.y[1, -1]) ** 2


@pytest.mark.parametrize("pitch_um", [11.0, 18.0])
def test_crosstalk_matches_coupled_mode_ode(pitch_um):
    kw = dict(NOMINAL, pitch_um=pitch_um, wavelength_um=1.31)
    k = float(kappa(**kw))
    kl = np.array([1e-3, 0.05, 0.3, 1.0, 1.5, 2.5, 4.0])
    length_cm = kl / k * 1e-4
    got = xt(length_cm=length_cm, **kw)
    ref = np.array([10 * math.log10(_cmt_ode_transfer(k, 1e4 * L)) for L in length_cm])
    np.testing.assert_allclose(got, ref, atol=1e-7, rtol=0)


def test_log_sinc_squared_against_numpy():
    x = np.concatenate([np.geomspace(1e-12, 30.0, 400), [0.0999999, 0.1, 0.1000001]])
    ref = np.log(np.sinc(x / np.pi) ** 2)
    log_sinc2 = jax.jit(crosstalk._log_sinc_squared)
    got = np.asarray(log_sinc2(x))
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    x32 = x.astype(np.float32)
    got32 = np.asarray(log_sinc2(x32))
    ref32 = np.log(np.sinc(x32.astype(np.float64) / np.pi) ** 2)  # at the rounded inputs
    away_from_zeros = np.abs(np.sin(x)) > 1e-2
    np.testing.assert_allclose(got32[away_from_zeros], ref32[away_from_zeros], atol=1e-5)


def test_small_kl_limit_and_periodicity():
    kw = dict(NOMINAL, pitch_um=50.0, wavelength_um=1.31)
    k = float(kappa(**kw))
    assert float(xt(length_cm=1.0, **kw)) == pytest.approx(20 * math.log10(k * 1e4), abs=1e-9)
    # Periodic: full transfer at κL = π/2, (near-)zero at κL = π, back at 3π/2.
    kw = dict(NOMINAL, pitch_um=11.0, wavelength_um=1.31)
    k = float(kappa(**kw))
    got = xt(length_cm=np.array([0.5, 1.0, 1.5]) * np.pi / k * 1e-4, **kw)
    assert got[0] == pytest.approx(0.0, abs=1e-9)
    assert got[2] == pytest.approx(0.0, abs=1e-9)
    assert np.isfinite(got[1]) and got[1] < -200.0


# ======================================================================================
# Generic: gradients, dtypes, broadcasting, finiteness, validation
# ======================================================================================
GRAD_POINTS = [  # (pitch, length_cm, λ): κL ≪ 1, κL ≈ 0.2, κL ≈ 2 (sin branch), tiny κ
    (18.0, 1.0, 1.31),
    (18.0, 1.0, 1.55),
    (11.0, 1.0, 1.31),
    (200.0, 1.0, 1.31),
]


def _point(pitch, length_cm, wavelength_um, dtype=np.float64):
    kw = dict(NOMINAL, pitch_um=pitch, length_cm=length_cm, wavelength_um=wavelength_um)
    return [dtype(kw[a]) for a in ARGS]


@functools.lru_cache(maxsize=None)
def _grad_fn():
    """(grad, value) of crosstalk_db in all seven arguments, from ONE compiled function."""
    f = lambda *a: crosstalk_db(**dict(zip(ARGS, a)))  # noqa: E731
    vg = jax.jit(jax.value_and_grad(f, argnums=tuple(range(len(ARGS)))))
    return (lambda *a: vg(*a)[1]), (lambda *a: vg(*a)[0])


@pytest.mark.parametrize("point", GRAD_POINTS)
def test_grad_matches_finite_differences(point):
    grad, f = _grad_fn()
    args = _point(*point)
    g = np.array(grad(*args))
    fd = []
    for i, x in enumerate(args):
        h = 1e-6 * abs(x)
        up, dn = list(args), list(args)
        up[i], dn[i] = x + h, x - h
        fd.append((float(f(*up)) - float(f(*dn))) / (2 * h))
    np.testing.assert_allclose(g, np.array(fd), rtol=2e-5, atol=1e-6)


def test_kappa_grad_matches_finite_differences():
    def f(p):
        return coupling_coefficient_per_um(pitch_um=p, wavelength_um=1.31, **NOMINAL)

    g = float(jax.jit(jax.grad(f))(18.0))
    k_up, k_dn = kappa(pitch_um=[18.0 + 1e-5, 18.0 - 1e-5], wavelength_um=1.31, **NOMINAL)
    assert g == pytest.approx((k_up - k_dn) / 2e-5, rel=1e-6)


def test_float32_matches_float64():
    pitch = np.array([6.5, 8.0, 11.0, 18.0, 25.0, 50.0, 100.0, 200.0, 1000.0, 2000.0])[:, None]
    kw = dict(NOMINAL, pitch_um=pitch, wavelength_um=np.array([1.31, 1.55]))
    x64 = xt(length_cm=1.0, **kw)
    x32 = xt(np.float32, length_cm=1.0, **kw)
    assert x32.dtype == np.float32 and x64.dtype == np.float64
    assert np.all(np.isfinite(x32)) and np.all(np.isfinite(x64))
    # Float32 round-off of γ enters the exponent γ·s, so the dB error grows ∝ |X_dB|:
    # measured ≤ 6e-7 relative below −20 dB (1.6e-3 dB at −3791 dB), ≤ 6e-5 dB near 0 dB.
    np.testing.assert_allclose(x32, x64, rtol=2e-6, atol=2e-4)
    k64 = kappa(**kw)
    k32 = kappa(np.float32, **kw)
    assert np.all(np.isfinite(k32)) and np.all(np.isfinite(k64))
    # κ itself underflows float32 (< 1e-38 /µm) beyond ~150 µm pitch; measured ≤ 1.6e-5.
    ok = np.broadcast_to(pitch <= 100.0, k64.shape)
    np.testing.assert_allclose(k32[ok], k64[ok], rtol=1e-4)


def test_float32_tiny_coupling_finite_with_gradient():
    grad, f = _grad_fn()
    for pitch in (200.0, 1000.0):
        args32 = _point(pitch, 1.0, 1.31, np.float32)
        x = f(*args32)
        g = np.array(grad(*args32))
        assert np.isfinite(float(x)) and float(x) < -300.0
        assert np.all(np.isfinite(g))
        g64 = np.array(grad(*_point(pitch, 1.0, 1.31)))
        np.testing.assert_allclose(g, g64, rtol=1e-3)
        # d(dB)/d(pitch) = −(20/ln 10)·γ for κL ≪ 1.
        assert float(g[0]) < 0


def test_broadcasting_matches_loop():
    pitch = np.array([[12.0], [18.0], [50.0]])
    lam = np.array([1.31, 1.55])
    length = np.array([0.5, 1.0])
    got = xt(pitch_um=pitch, length_cm=length, wavelength_um=lam, **NOMINAL)
    assert got.shape == (3, 2)
    for i in range(3):
        for j in range(2):
            one = float(xt(pitch_um=pitch[i, 0], length_cm=length[j], wavelength_um=lam[j],
                           **NOMINAL))
            assert got[i, j] == pytest.approx(one, abs=1e-10)
    vm = jax.jit(jax.vmap(
        lambda p: crosstalk_db(pitch_um=p, length_cm=1.0, wavelength_um=1.31, **NOMINAL)
    ))
    np.testing.assert_allclose(
        np.asarray(vm(jnp.asarray(pitch[:, 0]))),
        xt(pitch_um=pitch[:, 0], length_cm=1.0, wavelength_um=1.31, **NOMINAL),
        rtol=1e-12,
    )


def test_no_nan_at_the_zeros_of_the_transfer():
    # (Large pitches, up to 2000 µm, are covered by test_float32_matches_float64.)
    k = float(kappa(pitch_um=11.0, wavelength_um=1.31, **NOMINAL))
    at_zero = np.pi / k * 1e-4  # κL = π exactly (in float64)
    grad, f = _grad_fn()
    args = _point(11.0, at_zero, 1.31)
    assert np.isfinite(float(f(*args))) and np.all(np.isfinite(np.array(grad(*args))))


VALID = dict(NOMINAL, pitch_um=18.0, wavelength_um=1.31, length_cm=1.0)


@pytest.mark.parametrize(
    "name, value",
    [
        ("pitch_um", 5.5),  # cores touching
        ("pitch_um", 3.0),
        ("pitch_um", float("nan")),
        ("length_cm", 0.0),
        ("length_cm", -1.0),
        ("core_width_um", -5.5),
        ("core_thickness_um", 0.0),
        ("wavelength_um", 0.0),
        ("n_core", 1.55),
        ("n_clad", 0.0),
    ],
)
def test_validate_names_the_argument(name, value):
    with pytest.raises(ValueError, match=f"^{name}:"):
        validate_crosstalk(**{**VALID, name: value})


def test_validate_accepts_valid_and_arrays():
    validate_crosstalk(**VALID)
    validate_crosstalk(**{**VALID, "pitch_um": np.array([18.0, 50.0])})
    validate_crosstalk(**{k: v for k, v in VALID.items() if k != "length_cm"})
    with pytest.raises(ValueError, match="^pitch_um:"):
        validate_crosstalk(**{**VALID, "pitch_um": np.array([18.0, 5.0])})
