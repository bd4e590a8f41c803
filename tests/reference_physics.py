"""Independent numpy/scipy reference implementations for ``yieldmc.physics``.

Nothing here imports ``yieldmc``: every function is derived from first principles
(numerical integrals, general-purpose root finders, optimisers and ODE solvers) so that
the tests in ``test_physics.py`` compare the JAX implementation against something that
does not share its formulas.  Everything works in float64 numpy.

Conventions (docs/physics.md, "Conventions"): lengths in µm, angles in rad, time dependence exp(-iωt),
forward propagation exp(+ikz), Gaussian radius ``w`` = 1/e field radius.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import integrate, optimize

__all__ = [
    "gaussian_coupling_numeric",
    "gaussian_coupling_1d_numeric",
    "gap_only_identical_axis",
    "gap_only_identical_circular",
    "gap0_axis",
    "tilt_only",
    "fresnel_transmission",
    "loss_db",
    "slab_te0_u",
    "slab_te0_neff",
    "slab_v_number",
    "slab_best_fit_radius",
    "slab_fit_radius",
    "pwg_neff_eim",
    "pwg_radii_eim",
    "cmt_transfer_ode",
    "rabi_transfer",
    "landau_zener",
]


# ---------------------------------------------------------------------------------------
# 2.1 Gaussian butt coupling
# ---------------------------------------------------------------------------------------
def _grid(n: int, half_width_um: float):
    h = 2.0 * half_width_um / n
    x = (np.arange(n) - n // 2) * h
    k = 2.0 * np.pi * np.fft.fftfreq(n, d=h)
    return x, k


def gaussian_coupling_numeric(
    *,
    w1_x_um,
    w1_y_um,
    w2_x_um,
    w2_y_um,
    dx_um=0.0,
    dy_um=0.0,
    gap_um=0.0,
    tilt_x_rad=0.0,
    tilt_y_rad=0.0,
    wavelength_um,
    n_gap=1.0,
    n_grid: int = 256,
    half_width_um: float = 40.0,
) -> float:
    """Power coupling of two Gaussian modes by brute-force 2-D numerics.

    Derivation / procedure (no closed form used anywhere):

    1. Source field at its waist, z = 0: ``E1(x, y) = exp(-x²/w1x² - y²/w1y²)`` sampled on a
       square ``n_grid × n_grid`` grid spanning ``[-half_width, half_width)``.
    2. Paraxial propagation over the gap in a medium of index ``n_gap`` by the angular
       spectrum method.  With exp(+ikz - iωt), the paraxial wave equation
       ``2ik ∂A/∂z + ∇⊥²A = 0`` gives, per transverse plane wave exp(i(kx x + ky y)),
       ``∂Â/∂z = -i (kx² + ky²)/(2k) Â``, i.e. the transfer function
       ``H = exp(-i (kx² + ky²) z / (2k))`` with ``k = 2π n_gap / λ``.  Applied with a 2-D
       FFT (exact for the periodic, band-limited samples of a Gaussian that has decayed to
       ~0 at the window edge).
    3. Receiver mode at its facet plane z = gap: waist (wx2, wy2) centred at (dx, dy) and
       tilted so that it accepts plane waves travelling with transverse wavenumber
       ``(k θx, k θy)``:  ``E2 = exp(-(x-dx)²/w2x² - (y-dy)²/w2y²) · exp(+ik(θx (x-dx) + θy (y-dy)))``.
    4. η = |Σ E1(gap)·conj(E2)|² / (Σ|E1(gap)|² · Σ|E2|²); the cell area cancels.

    With 256 × 256 samples over ±40 µm (0.31 µm spacing) the result is converged to
    ~1e-12 for radii ≳ 1.5 µm, gaps ≲ 30 µm and tilts ≲ 0.1 rad (checked in the tests
    against a 512 × 512, ±60 µm grid).
    """
    x, kx = _grid(n_grid, half_width_um)
    k = 2.0 * np.pi * n_gap / wavelength_um
    X = x[None, :]
    Y = x[:, None]
    KX = kx[None, :]
    KY = kx[:, None]
    e1 = np.exp(-(X**2) / w1_x_um**2 - Y**2 / w1_y_um**2).astype(np.complex128)
    transfer = np.exp(-1j * (KX**2 + KY**2) * gap_um / (2.0 * k))
    e1z = np.fft.ifft2(np.fft.fft2(e1) * transfer)
    xr = X - dx_um
    yr = Y - dy_um
    e2 = np.exp(-(xr**2) / w2_x_um**2 - yr**2 / w2_y_um**2) * np.exp(
        1j * k * (tilt_x_rad * xr + tilt_y_rad * yr)
    )
    num = abs(np.sum(e1z * np.conj(e2))) ** 2
    den = np.sum(abs(e1z) ** 2) * np.sum(abs(e2) ** 2)
    return float(num / den)


def gaussian_coupling_1d_numeric(
    *, w1_um, w2_um, d_um=0.0, gap_um=0.0, tilt_rad=0.0, wavelength_um, n_gap=1.0,
    n_grid: int = 4096, half_width_um: float = 60.0,
) -> float:
    """Same procedure as :func:`gaussian_coupling_numeric` but for one transverse axis.

    Used to check the separability claim η = η_x · η_y independently of the 2-D code.
    """
    x, kx = _grid(n_grid, half_width_um)
    k = 2.0 * np.pi * n_gap / wavelength_um
    e1 = np.exp(-(x**2) / w1_um**2).astype(np.complex128)
    e1z = np.fft.ifft(np.fft.fft(e1) * np.exp(-1j * kx**2 * gap_um / (2.0 * k)))
    xr = x - d_um
    e2 = np.exp(-(xr**2) / w2_um**2) * np.exp(1j * k * tilt_rad * xr)
    num = abs(np.sum(e1z * np.conj(e2))) ** 2
    return float(num / (np.sum(abs(e1z) ** 2) * np.sum(abs(e2) ** 2)))


def gap_only_identical_axis(*, w_um, gap_um, wavelength_um, n_gap=1.0):
    """Per-axis coupling of identical waists separated by a gap (no offset, no tilt).

    Derivation: the source propagated over ``g`` is ``exp(-a x²)/sqrt(1+iζ)`` with
    ``a = 1/(w²(1+iζ))``, ``ζ = g/z_R``, ``z_R = k w²/2`` (q-parameter of a Gaussian beam).
    The receiver is ``exp(-b x²)``, ``b = 1/w²``.  One-dimensional Gaussian integrals give
    ``|∫E1 E2*|² = π/|1+iζ| / |a+b|`` and ``∫|E1|²∫|E2|² = π/(2 sqrt(Re a · b)) / |1+iζ|``,
    so ``η = 2 sqrt(Re a · b)/|a+b|``.  With ``Re a = 1/(w²(1+ζ²))`` and
    ``a + b = (2+iζ)/(w²(1+iζ))``:  ``η = 2/sqrt(4+ζ²) = [1 + (g/(2 z_R))²]^(-1/2)``.
    """
    k = 2.0 * np.pi * n_gap / wavelength_um
    z_r = k * np.asarray(w_um) ** 2 / 2.0
    return 1.0 / np.sqrt(1.0 + (np.asarray(gap_um) / (2.0 * z_r)) ** 2)


def gap_only_identical_circular(*, w_um, gap_um, wavelength_um, n_gap=1.0):
    """Both axes of a circular mode: the square of the per-axis result,
    ``η = 1/(1 + (λ g/(2π n w²))²)`` (Joyce & DeLoach 1984, longitudinal offset)."""
    return 1.0 / (1.0 + (wavelength_um * gap_um / (2.0 * np.pi * n_gap * w_um**2)) ** 2)


def gap0_axis(*, w1_um, w2_um, d_um=0.0):
    """Per-axis coupling at zero gap and tilt: ``2w1w2/(w1²+w2²)·exp(-2d²/(w1²+w2²))``.

    Derivation: ∫exp(-x²/w1²-(x-d)²/w2²)dx = sqrt(π/(a+b))·exp(-ab d²/(a+b)) with a=1/w1²,
    b=1/w2²; divide its square by sqrt(π/2a)·sqrt(π/2b)."""
    s = w1_um**2 + w2_um**2
    return 2.0 * w1_um * w2_um / s * np.exp(-2.0 * d_um**2 / s)


def tilt_only(*, w1_um, w2_um, tilt_rad, wavelength_um, n_gap=1.0):
    """Per-axis coupling with a pure angular misalignment at zero gap and offset:
    the Fourier transform of the overlap integrand gives
    ``mismatch · exp(-k²θ² w1²w2² / (2(w1²+w2²)))``, k = 2πn/λ, i.e.
    ``exp(-2(π n θ)² w1²w2²/(λ²(w1²+w2²)))`` times the radius-mismatch factor."""
    s = w1_um**2 + w2_um**2
    mismatch = 2.0 * w1_um * w2_um / s
    return mismatch * np.exp(
        -2.0 * (np.pi * n_gap * tilt_rad) ** 2 * w1_um**2 * w2_um**2 / (wavelength_um**2 * s)
    )


def fresnel_transmission(n1, n2):
    """Normal-incidence power transmission of one interface, 1 - ((n1-n2)/(n1+n2))²."""
    n1 = np.asarray(n1, dtype=float)
    n2 = np.asarray(n2, dtype=float)
    return 1.0 - ((n1 - n2) / (n1 + n2)) ** 2


def loss_db(eta):
    """Loss in dB, positive for loss: -10 log10 η."""
    return -10.0 * np.log10(np.asarray(eta, dtype=float))


# ---------------------------------------------------------------------------------------
# 2.2 Slab / rectangular core modes
# ---------------------------------------------------------------------------------------
def slab_v_number(*, thickness_um, n_core, n_clad, wavelength_um):
    """V = k0 (d/2) sqrt(n_core² - n_clad²)."""
    return (2.0 * np.pi / wavelength_um) * (thickness_um / 2.0) * math.sqrt(
        n_core**2 - n_clad**2
    )


def slab_te0_u(v: float) -> float:
    """Transverse core parameter u of the TE0 mode of a symmetric slab.

    The TE0 field is cos(u x/h) in the core (|x| < h = d/2) and cos(u) exp(-W(|x|-h)/h)
    outside; continuity of E and dE/dx at x = h gives u tan u = W with u² + W² = V².
    We solve the equivalent, pole-free form ``g(u) = u sin u - sqrt(V²-u²) cos u = 0`` on
    ``[0, min(V, π/2)]`` with Brent's method: g(0) = -V < 0 and g(min(V, π/2)) > 0, and
    there is exactly one root (the fundamental mode).
    """
    v = float(v)
    hi = min(v, np.pi / 2.0)

    def g(u):
        return u * math.sin(u) - math.sqrt(max(v * v - u * u, 0.0)) * math.cos(u)

    return optimize.brentq(g, 0.0, hi, xtol=1e-300, rtol=8.9e-16, maxiter=500)


def slab_te0_neff(*, thickness_um, n_core, n_clad, wavelength_um) -> float:
    """Exact TE0 effective index: n_eff² = n_core² - (u/(k0 h))² (u from brentq)."""
    v = slab_v_number(
        thickness_um=thickness_um, n_core=n_core, n_clad=n_clad, wavelength_um=wavelength_um
    )
    u = slab_te0_u(v)
    k0h = (2.0 * np.pi / wavelength_um) * thickness_um / 2.0
    # Write n_eff² = n_clad² + (W/(k0 h))² for the better-conditioned form near cut-off;
    # both are algebraically identical since u² + W² = V².
    w = math.sqrt(v * v - u * u)
    return math.sqrt(n_clad**2 + (w / k0h) ** 2)


def _slab_overlap(s: float, u: float, w: float) -> float:
    """Normalised power overlap of the exact TE0 field with exp(-x²/s²) (x in units of h)."""
    # ∫E² over the whole line (analytic; simple trig/exponential integrals).
    e2 = 1.0 + math.sin(2.0 * u) / (2.0 * u) + math.cos(u) ** 2 / w
    g2 = s * math.sqrt(np.pi / 2.0)
    inside, _ = integrate.quad(
        lambda x: math.cos(u * x) * math.exp(-(x * x) / (s * s)), 0.0, 1.0,
        epsabs=0.0, epsrel=2e-14, limit=200,
    )
    outside, _ = integrate.quad(
        lambda x: math.exp(-w * (x - 1.0) - (x * x) / (s * s)), 1.0, np.inf,
        epsabs=0.0, epsrel=2e-14, limit=200,
    )
    eg = 2.0 * (inside + math.cos(u) * outside)
    return eg * eg / (e2 * g2)


def slab_best_fit_radius(v: float) -> tuple[float, float]:
    """Best-fit Gaussian radius of the exact TE0 slab mode, in units of the half-thickness.

    Builds the exact field (cos inside, exponential decay outside, u from
    :func:`slab_te0_u`), and maximises the normalised power overlap
    ``(∫E·G)² / (∫E² ∫G²)`` with ``G = exp(-x²/s²)`` over ``s`` (scipy ``minimize_scalar``,
    bounded Brent).  Integrals by adaptive quadrature.  Returns ``(s_best, overlap)``.
    """
    u = slab_te0_u(v)
    w = math.sqrt(v * v - u * u)
    res = optimize.minimize_scalar(
        lambda s: -_slab_overlap(s, u, w),
        bounds=(0.2, 40.0),
        method="bounded",
        options={"xatol": 1e-10, "maxiter": 500},
    )
    return float(res.x), float(-res.fun)


def slab_fit_radius(v):
    """The slab fit, w/(d/2) = 0.6450 + 1.0439/V + 0.5458/V³ (closed form)."""
    v = np.asarray(v, dtype=float)
    return 0.6450 + 1.0439 / v + 0.5458 / v**3


def pwg_neff_eim(*, core_width_um, core_thickness_um, n_core, n_clad, wavelength_um):
    """Effective-index method for a rectangular core.

    Thickness slab (n_core / n_clad) → n1; width slab with core index n1 and cladding
    n_clad → n_eff.  Returns ``(n1, n_eff)``.
    """
    n1 = slab_te0_neff(
        thickness_um=core_thickness_um, n_core=n_core, n_clad=n_clad, wavelength_um=wavelength_um
    )
    n_eff = slab_te0_neff(
        thickness_um=core_width_um, n_core=n1, n_clad=n_clad, wavelength_um=wavelength_um
    )
    return n1, n_eff


def pwg_radii_eim(*, core_width_um, core_thickness_um, n_core, n_clad, wavelength_um):
    """(w_x, w_y) of a rectangular core: the slab fit applied to the width slab (core index
    n1 from the thickness slab) and to the thickness slab, respectively."""
    n1, _ = pwg_neff_eim(
        core_width_um=core_width_um, core_thickness_um=core_thickness_um,
        n_core=n_core, n_clad=n_clad, wavelength_um=wavelength_um,
    )
    v_y = slab_v_number(
        thickness_um=core_thickness_um, n_core=n_core, n_clad=n_clad, wavelength_um=wavelength_um
    )
    v_x = slab_v_number(
        thickness_um=core_width_um, n_core=n1, n_clad=n_clad, wavelength_um=wavelength_um
    )
    w_y = float(slab_fit_radius(v_y)) * core_thickness_um / 2.0
    w_x = float(slab_fit_radius(v_x)) * core_width_um / 2.0
    return w_x, w_y


# ---------------------------------------------------------------------------------------
# 2.3 Adiabatic coupler
# ---------------------------------------------------------------------------------------
def cmt_transfer_ode(
    *, kappa_per_um, delta_beta_start_per_um, delta_beta_end_per_um, taper_length_um,
    rtol: float = 1e-11, atol: float = 1e-12,
) -> float:
    """|b(L)|² of the coupled-mode equations by a general-purpose ODE solver.

    da/dz = -i(Δβ(z)/2) a - iκ b,  db/dz = +i(Δβ(z)/2) b - iκ a,  a(0)=1, b(0)=0,
    Δβ(z) = Δβ_start + (Δβ_end - Δβ_start) z/L.  Integrated with scipy ``solve_ivp``
    (DOP853) in complex arithmetic.
    """
    kappa = float(kappa_per_um)
    d0 = float(delta_beta_start_per_um)
    d1 = float(delta_beta_end_per_um)
    length = float(taper_length_um)
    slope = (d1 - d0) / length

    def rhs(z, y):
        half = 0.5 * (d0 + slope * z)
        a, b = y
        return np.array([-1j * half * a - 1j * kappa * b, 1j * half * b - 1j * kappa * a])

    sol = integrate.solve_ivp(
        rhs, (0.0, length), np.array([1.0 + 0.0j, 0.0j]), method="DOP853",
        rtol=rtol, atol=atol,
    )
    if not sol.success:  # pragma: no cover - solver failure is a bug in the reference
        raise RuntimeError(sol.message)
    return float(abs(sol.y[1, -1]) ** 2)


def rabi_transfer(*, kappa_per_um, delta_beta_per_um, length_um):
    """Constant Δβ: H = [[Δβ/2, κ], [κ, -Δβ/2]] has eigenvalues ±Ω, Ω = sqrt(κ² + Δβ²/4),
    so |b(L)|² = (κ/Ω)² sin²(Ω L) (Rabi formula)."""
    kappa = np.asarray(kappa_per_um, dtype=float)
    omega = np.sqrt(kappa**2 + np.asarray(delta_beta_per_um, dtype=float) ** 2 / 4.0)
    safe = np.where(omega > 0, omega, 1.0)
    return np.where(omega > 0, (kappa / safe) ** 2 * np.sin(safe * length_um) ** 2, 0.0)


def landau_zener(*, kappa_per_um, delta_beta_start_per_um, delta_beta_end_per_um, taper_length_um):
    """Infinite-sweep limit 1 - exp(-2π κ² L / |Δβ_end - Δβ_start|) (closed form)."""
    rate = abs(delta_beta_end_per_um - delta_beta_start_per_um) / taper_length_um
    return 1.0 - np.exp(-2.0 * np.pi * kappa_per_um**2 / rate)
