"""Adiabatic (evanescent) Si-taper → PWG coupler and its misalignment mapping (DESIGN §2.3)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from yieldmc.physics import _checks
from yieldmc.physics._fastmath import cos_and_sinc

#: Default number of piecewise-constant segments of the ``cmt`` model. Measured against
#: an adaptive ODE solver (tests/test_physics.py): |Δη| <= 8.1e-5 over the documented range
#: |Δβ| ≤ 0.05 /µm, L ≤ 3000 µm, κ ≤ 0.01 /µm.
DEFAULT_SEGMENTS = 64

MODELS = ("cmt", "landau_zener")


def _cmt(kappa, db_start, db_end, length, segments):
    """Exact product of the closed-form SU(2) transfer matrices of constant segments.

    Segment j (length h = L/S) holds Δβ_j = Δβ(z_j), z_j its midpoint; with δ = Δβ_j/2
    and Ω = sqrt(δ² + κ²) its matrix is ``[[c − i·s·δ, −i·s·κ], [−i·s·κ, c + i·s·δ]]``,
    c = cos Ωh, s = sin(Ωh)/Ω. The amplitudes (a, b), started at (1, 0), are carried
    through the segments by ``lax.scan`` in real arithmetic.
    """
    shape = jnp.broadcast_shapes(kappa.shape, db_start.shape, db_end.shape, length.shape)
    dtype = jnp.result_type(kappa, db_start, db_end, length)
    h = length / segments
    kh = kappa * h
    frac = (jnp.arange(segments, dtype=dtype) + 0.5) / segments

    def step(carry, f):
        ar, ai, br, bi = carry
        dh = 0.5 * (db_start + (db_end - db_start) * f) * h  # δ·h
        phase = jnp.sqrt(dh * dh + kh * kh)  # Ω·h
        c, s = cos_and_sinc(phase)  # cos Ωh, sin(Ωh)/(Ωh)
        sd = s * dh
        sk = s * kh
        # a' = (c − i·sd)·a − i·sk·b ; b' = −i·sk·a + (c + i·sd)·b
        nar = c * ar + sd * ai + sk * bi
        nai = c * ai - sd * ar - sk * br
        nbr = c * br - sd * bi + sk * ai
        nbi = c * bi + sd * br - sk * ar
        return (nar, nai, nbr, nbi), None

    one = jnp.ones(shape, dtype)
    zero = jnp.zeros(shape, dtype)
    (_, _, br, bi), _ = jax.lax.scan(jax.checkpoint(step), (one, zero, zero, zero), frac)
    return br * br + bi * bi


def adiabatic_transfer(
    *,
    kappa_per_um,
    delta_beta_start_per_um,
    delta_beta_end_per_um,
    taper_length_um,
    model="cmt",
    segments=None,
):
    """Power transfer η from the Si taper mode to the PWG mode of an adiabatic coupler.

    Coupled-mode equations (a: Si mode, launched; b: PWG mode; Δβ = β_Si − β_PWG)::

        da/dz = −i(Δβ(z)/2)·a − i·κ·b,   db/dz = +i(Δβ(z)/2)·b − i·κ·a,   η = |b(L)|²

    with Δβ(z) linear from ``delta_beta_start_per_um`` to ``delta_beta_end_per_um`` over
    ``taper_length_um``.

    Models:
      ``cmt``: the taper cut into ``segments`` constant pieces whose 2×2 transfer matrices
      are exact closed forms (Yariv, IEEE JQE 9:919 (1973)); the default
      :data:`DEFAULT_SEGMENTS` keeps η within 1e-4 of the continuous sweep for
      |Δβ| ≤ 0.05 /µm, L ≤ 3000 µm, κ ≤ 0.01 /µm.
      ``landau_zener``: ``η = 1 − exp(−2π·κ²·L/|Δβ_end − Δβ_start|)``, the limit of an
      infinitely wide linear sweep through phase matching (Landau 1932; Zener 1932).

    Valid domain: κ >= 0, L > 0, Δβ_start ≠ Δβ_end for ``landau_zener``
    (:func:`validate_adiabatic`).

    Args:
      kappa_per_um: coupling coefficient κ, 1/µm.
      delta_beta_start_per_um, delta_beta_end_per_um: Δβ at z = 0 and z = L, 1/µm.
      taper_length_um: taper length L, µm.
      model: ``"cmt"`` or ``"landau_zener"`` (static).
      segments: number of ``cmt`` segments (static int); ``None`` for the default.

    Returns:
      η ∈ [0, 1], broadcast over the array arguments.
    """
    kappa = jnp.asarray(kappa_per_um)
    db0 = jnp.asarray(delta_beta_start_per_um)
    db1 = jnp.asarray(delta_beta_end_per_um)
    length = jnp.asarray(taper_length_um)
    if model == "cmt":
        return _cmt(kappa, db0, db1, length, DEFAULT_SEGMENTS if segments is None else int(segments))
    if model == "landau_zener":
        return -jnp.expm1(-2.0 * jnp.pi * kappa * kappa * length / jnp.abs(db1 - db0))
    raise ValueError(f"model: unknown adiabatic model {model!r}; expected one of {MODELS}")


def validate_adiabatic(
    *,
    kappa_per_um,
    delta_beta_start_per_um,
    delta_beta_end_per_um,
    taper_length_um,
    model="cmt",
    segments=None,
) -> None:
    """Raise ``ValueError`` naming the first argument outside :func:`adiabatic_transfer`'s domain."""
    if model not in MODELS:
        raise ValueError(f"model: unknown adiabatic model {model!r}; expected one of {MODELS}")
    _checks.non_negative("kappa_per_um", kappa_per_um)
    _checks.positive("taper_length_um", taper_length_um)
    _checks.finite("delta_beta_start_per_um", delta_beta_start_per_um)
    _checks.finite("delta_beta_end_per_um", delta_beta_end_per_um)
    if segments is not None and (int(segments) != segments or segments < 1):
        raise ValueError(f"segments: must be a positive integer, got {segments!r}")
    if model == "landau_zener":
        if np.any(np.asarray(delta_beta_start_per_um) == np.asarray(delta_beta_end_per_um)):
            raise ValueError(
                "delta_beta_end_per_um: must differ from delta_beta_start_per_um "
                "for the landau_zener model"
            )


def evanescent_decay_per_um(*, n_eff, n_gap, wavelength_um):
    """Decay constant γ = k0·sqrt(n_eff² − n_gap²) of the PWG mode's tail in the gap, 1/µm.

    Args:
      n_eff: PWG effective index (> n_gap).
      n_gap: index of the medium between Si and PWG core.
      wavelength_um: vacuum wavelength, µm.
    """
    n_eff = jnp.asarray(n_eff)
    n_gap = jnp.asarray(n_gap)
    return (2.0 * jnp.pi / jnp.asarray(wavelength_um)) * jnp.sqrt(n_eff * n_eff - n_gap * n_gap)


def vertical_kappa_per_um(*, kappa0_per_um, gap_um, gap0_um, decay_per_um):
    """Coupling at vertical gap g: ``κ = κ0·exp(−γ·(g − g0))`` (DESIGN §2.3).

    Args:
      kappa0_per_um: κ at the nominal gap g0, 1/µm.
      gap_um: actual Si-to-PWG-core gap g, µm.
      gap0_um: nominal gap g0, µm.
      decay_per_um: evanescent decay constant γ, 1/µm (:func:`evanescent_decay_per_um`).
    """
    return jnp.asarray(kappa0_per_um) * jnp.exp(
        -jnp.asarray(decay_per_um) * (jnp.asarray(gap_um) - jnp.asarray(gap0_um))
    )


def lateral_kappa_per_um(*, kappa_per_um, dx_um, mode_radius_x_um):
    """Coupling reduced by a lateral offset: ``κ·exp(−dx²/w_x²)`` (DESIGN §2.3).

    Args:
      kappa_per_um: coupling at zero lateral offset, 1/µm.
      dx_um: effective lateral offset at the phase-matching point, µm.
      mode_radius_x_um: lateral PWG mode radius w_x, µm.
    """
    r = jnp.asarray(dx_um) / jnp.asarray(mode_radius_x_um)
    return jnp.asarray(kappa_per_um) * jnp.exp(-r * r)


def phase_matching_point_um(*, delta_beta_start_per_um, delta_beta_end_per_um, taper_length_um):
    """Position z_c where the linear sweep Δβ(z) crosses zero, µm from the taper start.

    ``z_c = L·Δβ_start/(Δβ_start − Δβ_end)``; outside [0, L] when the sweep misses phase
    matching (the transfer then collapses). Requires Δβ_start ≠ Δβ_end.
    """
    db0 = jnp.asarray(delta_beta_start_per_um)
    db1 = jnp.asarray(delta_beta_end_per_um)
    return jnp.asarray(taper_length_um) * db0 / (db0 - db1)


def yaw_offset_um(*, dx_um, yaw_rad, z_um, pivot_um):
    """Lateral offset with yaw walk-off: ``dx + φ·(z − z_pivot)`` (DESIGN §2.3).

    Args:
      dx_um: lateral offset at the pivot, µm.
      yaw_rad: in-plane angle φ of the PWG relative to the taper, rad.
      z_um: position along the taper (the phase-matching point z_c), µm.
      pivot_um: position of the yaw pivot along the taper, µm.
    """
    return jnp.asarray(dx_um) + jnp.asarray(yaw_rad) * (jnp.asarray(z_um) - jnp.asarray(pivot_um))


def delta_beta_shift_per_um(*, delta_n_eff, wavelength_um):
    """Shift of Δβ = β_Si − β_PWG caused by a change Δn_eff of the PWG index, 1/µm.

    ``−(2π/λ)·Δn_eff``: a higher PWG index lowers Δβ and moves the phase-matching point
    (DESIGN §2.3). Add it to both ends of the sweep.
    """
    return -(2.0 * jnp.pi / jnp.asarray(wavelength_um)) * jnp.asarray(delta_n_eff)
