"""Butt coupling of two Gaussian modes, Fresnel transmission, dB conversion
(docs/physics.md, "2.1 Gaussian butt coupling")."""

from __future__ import annotations

import jax.numpy as jnp

from yieldmc.physics import _checks


def _axis_efficiency(w1, w2, d, gap, theta, k):
    """Per-axis power coupling of two 1-D Gaussian modes (real-arithmetic form).

    With ``a = 1/(w1²(1 + i·gap/z_R)) = A_r + i·A_i`` and ``b = 1/w2²``:
    ``η = 2·sqrt(A_r·b)/|a + b| · exp(2·Re[(2bd − ikθ)²/(4(a + b))] − 2bd²)``.
    """
    z_r = 0.5 * k * w1 * w1
    t = gap / z_r
    inv = 1.0 / (w1 * w1 * (1.0 + t * t))
    a_r = inv
    a_i = -t * inv
    b = 1.0 / (w2 * w2)
    s_r = a_r + b  # Re(a + b)
    s_i = a_i  # Im(a + b)
    s2 = s_r * s_r + s_i * s_i
    # (2bd − ikθ)² = (4b²d² − k²θ²) − i·4bdkθ
    n_r = 4.0 * b * b * d * d - k * k * theta * theta
    n_i = -4.0 * b * d * k * theta
    exponent = (n_r * s_r + n_i * s_i) / (2.0 * s2) - 2.0 * b * d * d
    return 2.0 * jnp.sqrt(a_r * b / s2) * jnp.exp(exponent)


def gaussian_coupling(
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
):
    """Power coupling efficiency η of two misaligned Gaussian modes (butt coupling).

    The source waist (radii ``w1``) sits at z = 0; the receiver waist (radii ``w2``) at
    z = ``gap_um``, offset by (``dx_um``, ``dy_um``) and tilted by (``tilt_x_rad``,
    ``tilt_y_rad``) about its facet, angles measured in the gap medium of index
    ``n_gap``. Separable: η = η_x·η_y with, per axis, k = 2π·n_gap/λ, z_R = k·w1²/2,
    ``a = 1/(w1²(1 + i·gap/z_R))``, ``b = 1/w2²`` and

        η_axis = 2·sqrt(Re(a)·b)/|a + b| · exp(2·Re[(2b·d − i·k·θ)²/(4(a + b))] − 2b·d²).

    Sign convention: θ > 0 turns the receiver toward +x, the side of d > 0; its mode at
    the facet is ``exp(−(x−d)²/w2²)·exp(+i·k·θ·(x−d))`` (time factor exp(−iωt)), so with
    a gap the receiver accepts the diverging source best when θ·d > 0. With no gap the
    sign of θ does not matter.

    Valid domain: radii > 0, ``wavelength_um`` > 0, ``n_gap`` > 0, ``gap_um`` >= 0
    (checked by :func:`validate_gaussian_coupling`). Paraxial: tilts well below the
    mode's divergence angle ~ λ/(π·n·w).

    References:
      Joyce & DeLoach, Appl. Opt. 23:4187 (1984); Nemoto & Makimoto, Opt. Quantum
      Electron. 11:447 (1979); Marcuse, Bell Syst. Tech. J. 56:703 (1977).

    Args:
      w1_x_um, w1_y_um: source mode radii (1/e field), µm.
      w2_x_um, w2_y_um: receiver mode radii (1/e field), µm.
      dx_um, dy_um: receiver offset, µm.
      gap_um: longitudinal gap, µm.
      tilt_x_rad, tilt_y_rad: receiver tilt in the gap medium, rad.
      wavelength_um: vacuum wavelength, µm.
      n_gap: refractive index of the gap medium.

    Returns:
      Efficiency η ∈ (0, 1], broadcast over the arguments.
    """
    k = 2.0 * jnp.pi * jnp.asarray(n_gap) / jnp.asarray(wavelength_um)
    eta_x = _axis_efficiency(
        jnp.asarray(w1_x_um), jnp.asarray(w2_x_um), jnp.asarray(dx_um),
        jnp.asarray(gap_um), jnp.asarray(tilt_x_rad), k,
    )
    eta_y = _axis_efficiency(
        jnp.asarray(w1_y_um), jnp.asarray(w2_y_um), jnp.asarray(dy_um),
        jnp.asarray(gap_um), jnp.asarray(tilt_y_rad), k,
    )
    return eta_x * eta_y


def validate_gaussian_coupling(
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
) -> None:
    """Raise ``ValueError`` naming the first argument outside :func:`gaussian_coupling`'s domain."""
    for name, value in (
        ("w1_x_um", w1_x_um), ("w1_y_um", w1_y_um),
        ("w2_x_um", w2_x_um), ("w2_y_um", w2_y_um),
        ("wavelength_um", wavelength_um), ("n_gap", n_gap),
    ):
        _checks.positive(name, value)
    _checks.non_negative("gap_um", gap_um)
    for name, value in (
        ("dx_um", dx_um), ("dy_um", dy_um),
        ("tilt_x_rad", tilt_x_rad), ("tilt_y_rad", tilt_y_rad),
    ):
        _checks.finite(name, value)


def fresnel_transmission(n1, n2):
    """Normal-incidence Fresnel power transmission of one interface, ``1 − ((n1−n2)/(n1+n2))²``.

    Args:
      n1, n2: refractive indices (> 0) on either side.

    Returns:
      Transmission in (0, 1]; n = 1.5 to air gives 0.96 (0.177 dB).
    """
    n1 = jnp.asarray(n1)
    n2 = jnp.asarray(n2)
    r = (n1 - n2) / (n1 + n2)
    return 1.0 - r * r


def loss_db(efficiency):
    """Loss in dB (positive = loss) of a power efficiency: ``−10·log10 η``."""
    return -10.0 * jnp.log10(jnp.asarray(efficiency))
