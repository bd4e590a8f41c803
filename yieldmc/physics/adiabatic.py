"""Adiabatic (evanescent) Si-taper → PWG coupler and its misalignment mapping
(docs/physics.md, "2.3 The linear-sweep adiabatic coupler")."""

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


def _segment(amplitudes, dh, kh):
    """One constant segment's exact SU(2) transfer: δ·h = ``dh``, κ·h = ``kh``, Ω·h =
    sqrt(dh² + kh²), c = cos Ωh, s = sin(Ωh)/(Ωh); a' = (c − i·s·dh)·a − i·s·kh·b,
    b' = −i·s·kh·a + (c + i·s·dh)·b, in real arithmetic."""
    ar, ai, br, bi = amplitudes
    phase = jnp.sqrt(dh * dh + kh * kh)  # Ω·h
    c, s = cos_and_sinc(phase)  # cos Ωh, sin(Ωh)/(Ωh)
    sd = s * dh
    sk = s * kh
    return (c * ar + sd * ai + sk * bi, c * ai - sd * ar - sk * br,
            c * br - sd * bi + sk * ai, c * bi + sd * br - sk * ar)


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
        dh = 0.5 * (db_start + (db_end - db_start) * f) * h  # δ·h
        return _segment(carry, dh, kh), None

    one = jnp.ones(shape, dtype)
    zero = jnp.zeros(shape, dtype)
    (_, _, br, bi), _ = jax.lax.scan(jax.checkpoint(step), (one, zero, zero, zero), frac)
    return br * br + bi * bi


def adiabatic_transfer_profile(*, kappa_per_um, delta_beta_per_um, taper_length_um, focus_um,
                               focus_width_um, segments=DEFAULT_SEGMENTS):
    """Power transfer η of the coupled-mode equations for any Δβ(z) profile.

    The taper [0, L] is cut into ``segments`` pieces dense around the phase-matching point
    z_f = ``focus_um``: the edges are z(s) = z_f + H·sinh(A + (B − A)·s), s = j/S,
    A = asinh(−z_f/H), B = asinh((L − z_f)/H), H = ``focus_width_um`` — about H·(B − A)/S
    long near z_f, growing exponentially away from it, where |Δβ| ≫ κ; the ends are 0 and L
    exactly. On each piece Δβ is its value at the midpoint and the 2×2 transfer matrix is
    the exact closed form (Yariv, IEEE JQE 9:919 (1973)); launched in the Si mode at z = 0,
    η = |b(L)|². The midpoint rule converges to the continuous solution as S grows
    (tests/test_couplers.py against an adaptive ODE solve). The edges are computed inside
    the scan: nothing of size segments × samples is stored.

    Args:
      kappa_per_um: coupling κ (constant along the taper), 1/µm.
      delta_beta_per_um: callable z_um → Δβ(z) = β_Si − β_PWG, 1/µm (traced; broadcasts
        with the other arguments).
      taper_length_um: L, µm.
      focus_um: where the pieces are densest (the phase-matching point clipped to [0, L]).
      focus_width_um: the dense region's scale H, µm (a few κ/|dΔβ/dz|).
      segments: number of pieces (static int).

    Returns:
      η ∈ [0, 1].
    """
    kappa = jnp.asarray(kappa_per_um)
    length = jnp.asarray(taper_length_um)
    zf = jnp.asarray(focus_um)
    hw = jnp.asarray(focus_width_um)
    a = jnp.arcsinh(-zf / hw)
    b = jnp.arcsinh((length - zf) / hw)
    shape = jnp.broadcast_shapes(kappa.shape, a.shape, b.shape, length.shape)
    dtype = jnp.result_type(kappa, a, b, length)
    s_next = jnp.arange(1, segments + 1, dtype=dtype) / segments

    def step(carry, s1):
        ar, ai, br, bi, z0 = carry
        z1 = jnp.where(s1 >= 1.0, length, zf + hw * jnp.sinh(a + (b - a) * s1))
        h = z1 - z0
        dh = 0.5 * delta_beta_per_um(0.5 * (z0 + z1)) * h  # δ·h
        return (*_segment((ar, ai, br, bi), dh, kappa * h), jnp.broadcast_to(z1, shape)), None

    one = jnp.ones(shape, dtype)
    zero = jnp.zeros(shape, dtype)
    (_, _, br, bi, _), _ = jax.lax.scan(jax.checkpoint(step), (one, zero, zero, zero, zero), s_next)
    return br * br + bi * bi


def supermode_fractions(*, delta_beta_per_um, kappa_per_um):
    """(cos²θ, sin²θ) of the Si-like local supermode (cos θ, sin θ) of the coupled-mode
    equations, tan 2θ = 2κ/Δβ: the power it holds in the bare Si and in the bare PWG mode.

    ``cos²θ = ½(1 + Δβ/(2Ω))``, ``Ω = sqrt(Δβ²/4 + κ²)``; → (1, 0) for Δβ ≫ κ, (½, ½) at
    phase matching, (0, 1) for Δβ ≪ −κ. The other supermode holds the complements.
    """
    db = jnp.asarray(delta_beta_per_um)
    kappa = jnp.asarray(kappa_per_um)
    half = 0.5 * db
    ratio = half / jnp.sqrt(half * half + kappa * kappa)
    ratio = jnp.where(jnp.isfinite(ratio), ratio, jnp.sign(db))  # κ = Δβ = 0
    return 0.5 * (1.0 + ratio), 0.5 * (1.0 - ratio)


def landau_zener_with_ends(*, kappa_per_um, rate_per_um2, delta_beta_start_per_um, delta_beta_end_per_um,
                           crossing_inside):
    """Transfer of a taper whose Δβ(z) crosses zero once at rate |dΔβ/dz| = ``rate_per_um2``:
    the Landau–Zener transition at the crossing and adiabatic following elsewhere, with
    the projections at both ends of a finite taper.

    The light, launched in the bare Si mode, enters the Si-like supermode with probability
    p₀ = cos²θ(Δβ_start); at the crossing (if it lies inside the taper) it stays in its
    supermode with P = 1 − exp(−2πκ²/rate) (Landau 1932; Zener 1932) and jumps to the other
    with 1 − P; at the tip the bare PWG mode takes sin²θ(Δβ_end) of the Si-like supermode and
    cos²θ(Δβ_end) of the other:

        P₊ = p₀·P + (1 − p₀)·(1 − P)   (crossing inside; else P₊ = p₀)
        η = P₊·sin²θ_end + (1 − P₊)·cos²θ_end

    The interference between the two supermodes at the tip (a term oscillating with their
    accumulated phase) is dropped. η is continuous when the crossing leaves the taper
    (η = ½ with the crossing at the tip), so a tip too wide degrades the transfer smoothly.
    For a crossing well inside it is the infinite-sweep limit
    η = 1 − exp(−2πκ²/rate) up to the end factors (κ/Δβ_end)².

    Args:
      kappa_per_um: κ, 1/µm.
      rate_per_um2: |dΔβ/dz| at the crossing, 1/µm² (> 0).
      delta_beta_start_per_um, delta_beta_end_per_um: Δβ at z = 0 and z = L.
      crossing_inside: bool array, whether Δβ crosses zero inside the taper.
    """
    kappa = jnp.asarray(kappa_per_um)
    adiabatic = -jnp.expm1(-2.0 * jnp.pi * kappa * kappa / jnp.asarray(rate_per_um2))
    p0, _ = supermode_fractions(delta_beta_per_um=delta_beta_start_per_um, kappa_per_um=kappa)
    plus = jnp.where(crossing_inside, p0 * adiabatic + (1.0 - p0) * (1.0 - adiabatic), p0)
    c_end, s_end = supermode_fractions(delta_beta_per_um=delta_beta_end_per_um, kappa_per_um=kappa)
    return plus * s_end + (1.0 - plus) * c_end


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
    """Coupling at vertical gap g: ``κ = κ0·exp(−γ·(g − g0))``.

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
    """Coupling reduced by a lateral offset: ``κ·exp(−dx²/w_x²)``.

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
    """Lateral offset with yaw walk-off: ``dx + φ·(z − z_pivot)``.

    Args:
      dx_um: lateral offset at the pivot, µm.
      yaw_rad: in-plane angle φ of the PWG relative to the taper, rad.
      z_um: position along the taper (the phase-matching point z_c), µm.
      pivot_um: position of the yaw pivot along the taper, µm.
    """
    return jnp.asarray(dx_um) + jnp.asarray(yaw_rad) * (jnp.asarray(z_um) - jnp.asarray(pivot_um))


def delta_beta_shift_per_um(*, delta_n_eff, wavelength_um):
    """Shift of Δβ = β_Si − β_PWG caused by a change Δn_eff of the PWG index, 1/µm.

    ``−(2π/λ)·Δn_eff``: a higher PWG index lowers Δβ and moves the phase-matching point.
    Add it to both ends of the sweep.
    """
    return -(2.0 * jnp.pi / jnp.asarray(wavelength_um)) * jnp.asarray(delta_n_eff)
