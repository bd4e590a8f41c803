"""Evanescent crosstalk between neighbouring parallel PWG cores (coupled-mode theory).

Two identical rectangular cores, centres ``pitch_um`` apart along the core-width axis,
are reduced to two identical symmetric slabs by the effective-index method; their
coupling coefficient κ is Marcuse's closed form for two slabs and the power picked up by
one neighbour after a length L is the synchronous coupled-mode result X = sin²(κL).
Everything is evaluated in log space, so crosstalk far below float32's range stays finite
and differentiable.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from yieldmc.physics import _checks
from yieldmc.physics._fastmath import sincos
from yieldmc.physics.slab import slab_te0_u

#: Below this κL the log of sinc²(κL) is taken from its Taylor series (truncation error
#: < 3e-13 at the switch), above it from sin² directly.
_SERIES_BELOW = 0.1

#: sin²(κL) is floored here before its log, so that X stays finite (≥ ~−300 dB plus
#: 20·log10 κL) at the exact zeros κL = mπ of the periodic transfer.
_SIN2_FLOOR = 1e-30

_DB_PER_NEPER_POWER = 10.0 / math.log(10.0)


def _log_coupling_per_um(pitch_um, core_width_um, core_thickness_um, n_core, n_clad, wavelength_um):
    """ln κ (κ in 1/µm) by the effective-index method and Marcuse's two-slab formula."""
    pitch = jnp.asarray(pitch_um)
    width = jnp.asarray(core_width_um)
    thickness = jnp.asarray(core_thickness_um)
    n_core = jnp.asarray(n_core)
    n_clad = jnp.asarray(n_clad)
    k0 = 2.0 * jnp.pi / jnp.asarray(wavelength_um)
    # (n_core − n_clad)(n_core + n_clad): no cancellation for small Δn in float32.
    na2 = (n_core - n_clad) * (n_core + n_clad)
    # Thickness slab → its TE0 index n1; n1² − n_clad² = b1·(n_core² − n_clad²) with
    # b1 = W1²/V1² taken directly, again without forming n1² − n_clad² by subtraction.
    v1 = k0 * (0.5 * thickness) * jnp.sqrt(na2)
    u1 = slab_te0_u(v=v1)
    b1 = (v1 - u1) * (v1 + u1) / (v1 * v1)
    # Width slab: core index n1, cladding n_clad, half-width a.
    a = 0.5 * width
    v = k0 * a * jnp.sqrt(b1 * na2)
    u = slab_te0_u(v=v)
    w2 = (v - u) * (v + u)
    w = jnp.sqrt(jnp.maximum(w2, jnp.finfo(w2.dtype).tiny))
    gamma = w / a  # evanescent decay constant in the cladding, 1/µm
    kc = k0 * n_clad
    beta = jnp.sqrt(kc * kc + gamma * gamma)  # β² = k0²n_clad² + γ², exact for the slab
    return (
        2.0 * jnp.log(u * w / v)
        - jnp.log1p(w)
        - jnp.log(beta)
        - 2.0 * jnp.log(a)
        - gamma * (pitch - width)
    )


def coupling_coefficient_per_um(
    *, pitch_um, core_width_um, core_thickness_um, n_core, n_clad, wavelength_um
):
    """Coupled-mode coupling coefficient κ of two identical parallel rectangular cores.

    Effective-index method: the thickness slab (``n_core``/``n_clad``, thickness t) is
    solved first (exact TE0, :func:`yieldmc.physics.slab.slab_te0_u`); its index n1 is
    the core index of two identical width slabs (width d = ``core_width_um``, half-width
    a = d/2, cladding ``n_clad``) whose centres are ``pitch_um`` apart, i.e. with the
    edge-to-edge gap s = pitch − d. With the width slab's TE0 parameters
    ``V = k0·a·sqrt(n1² − n_clad²)``, ``u·tan u = w``, ``u² + w² = V²`` (h = u/a the
    transverse wavenumber in the core, γ = w/a the decay constant in the cladding,
    β² = k0²·n_clad² + γ²), the coupling coefficient of the two slabs' TE0 modes is

        κ = 2·h²·γ·exp(−γ·s) / [β·d·(h² + γ²)·(1 + 2/(γ·d))]
          = u²·w² · exp(−2w·s/d) / [β·a²·V²·(1 + w)].

    This is the coupled-mode overlap ``κ = k0²/(2β)·∫_core2 (n1² − n_clad²)·E1·E2 dx``
    of the power-normalised slab modes evaluated in closed form (D. Marcuse, Bell Syst.
    Tech. J. 50:1791 (1971), TE slab coupling coefficient; D. Marcuse, *Theory of
    Dielectric Optical Waveguides*, 2nd ed. (1991), coupled-mode theory of two parallel
    slabs; with β ≈ k0·n1 it is ``κ = sqrt(2Δ)/a · U²W²/((1 + W)V³)·exp(−2W(D − a)/a)``,
    2D = pitch, of K. Okamoto, *Fundamentals of Optical Waveguides*, coupled-mode
    chapter). Derivation: ∫E² dx = a + 1/γ and ∫_core2 E1·E2 dx =
    2γh²·e^{−γs}/(h² + γ²)² for the unit-amplitude cos/exp slab field.
    It is also the exact leading term of half the even/odd supermode splitting,
    (β_even − β_odd)/2, of the five-layer structure for q = e^{−γs} → 0, with a
    relative error O(q). Measured against the exact splitting (tests/test_crosstalk.py):
    ≤ 0.094·q over the tested cores; for the 5.5 µm, Δn 0.0086 core 0.64 % (1.31 µm)
    and 0.39 % (1.55 µm) at gaps of 1.5–2.75 µm, ≤ 2e-5 at 18 µm pitch, and exact to
    float64 round-off beyond 30 µm.

    Approximations: the effective-index method, and TE slab modes for both reductions
    (for a quasi-TE PWG mode the width slab is strictly TM; at Δn ≈ 0.01 the 2-D
    quasi-TE and quasi-TM κ differ by only 0.1–0.2 %). The EIM is the larger error: the
    2-D mode's tail decays like K0(γr) ∝ e^{−γr}/sqrt(γr), the slab's like e^{−γx}, so
    this κ is high, increasingly with pitch. Against full-vector 2-D finite-difference
    supermodes (``scripts/crosstalk_check.py``, EMpy) of the 5.5 µm, Δn 0.0086 core it
    is high by 25 % (1.31 µm) / 20 % (1.55 µm) at 11 µm pitch and by 49 % / 39 % at
    18 µm (0.125–0.25 µm grids, converged to ~1 %; the 6 µm, Δn 0.012 core alike), i.e.
    the crosstalk is pessimistic by 1.6–3.5 dB there and by more at larger pitch.

    The result is computed as ``exp(ln κ)`` with every factor, including the
    exponential, taken in log space, so it is differentiable and exact down to the
    smallest normal number: κ = 1e-9 /µm is no problem in float32, but κ < 1e-38 /µm
    (pitch beyond ≈ 150 µm for the 5.5 µm core at 1.31 µm) underflows there.
    :func:`crosstalk_db` never forms κ itself and stays finite beyond that.

    For vertical (layer-to-layer) neighbours swap ``core_width_um`` and
    ``core_thickness_um`` and pass the layer pitch as ``pitch_um``.

    Valid domain (:func:`validate_crosstalk`): pitch > core width, positive core
    dimensions and wavelength, n_core > n_clad > 0.

    Args:
      pitch_um: centre-to-centre distance of the two cores along the width axis, µm.
      core_width_um: core dimension along the pitch, µm.
      core_thickness_um: core dimension across the pitch, µm.
      n_core, n_clad: core and cladding indices.
      wavelength_um: vacuum wavelength, µm.

    Returns:
      κ in 1/µm, broadcast over the arguments.
    """
    return jnp.exp(
        _log_coupling_per_um(
            pitch_um, core_width_um, core_thickness_um, n_core, n_clad, wavelength_um
        )
    )


def _log_sinc_squared(x):
    """ln(sin²x/x²) for x ≥ 0; Taylor series below :data:`_SERIES_BELOW`, floored at zeros."""
    small = x < _SERIES_BELOW
    x2 = x * x
    # ln(sin x / x) = −x²/6 − x⁴/180 − x⁶/2835 − x⁸/37800 − …
    series = -x2 * (1.0 / 3.0 + x2 * (1.0 / 90.0 + x2 * (2.0 / 2835.0)))
    safe = jnp.where(small, 1.0, x)
    s, _ = sincos(safe)
    direct = jnp.log(jnp.maximum(s * s, _SIN2_FLOOR)) - 2.0 * jnp.log(safe)
    return jnp.where(small, series, direct)


def crosstalk_db(
    *, pitch_um, length_cm, core_width_um, core_thickness_um, n_core, n_clad, wavelength_um
):
    """Power coupled into ONE neighbouring core after a length L, in dB (negative).

    Synchronous coupled-mode theory of two identical guides (da/dz = −iκb,
    db/dz = −iκa, a(0) = 1, b(0) = 0; Yariv, IEEE J. Quantum Electron. 9:919 (1973))
    gives the transferred power

        X = sin²(κL),   returned as 10·log10 X = 20·log10(κL) + 10·log10(sin²(κL)/(κL)²),

    with κ from :func:`coupling_coefficient_per_um`. The first term is taken from ln κ
    (never from κ), the second from its Taylor series ``−(κL)²/3 − (κL)⁴/90 − …`` for
    κL < 0.1, so for κL ≪ 1 the result is the exact X ≈ (κL)² in log space: finite and
    differentiable in float32 even when X is far below 1e-38.

    X is periodic in L (full transfer at κL = π/2, back to zero at κL = π, beat length
    π/κ). At the exact zeros κL = mπ, sin²(κL) is floored at 1e-30 so that the value
    and its gradient stay finite. For crosstalk analysis the physically relevant regime
    is κL ≪ 1, where X grows as L².

    This is the two-guide result: a core with neighbours on both sides receives ≈ 2X
    (+3 dB) for κL ≪ 1. For vertical (layer-to-layer) neighbours swap
    ``core_width_um`` and ``core_thickness_um`` and pass the layer pitch as
    ``pitch_um``.

    Valid domain (:func:`validate_crosstalk`): pitch > core width, length > 0,
    positive core dimensions and wavelength, n_core > n_clad > 0.

    Args:
      pitch_um: centre-to-centre distance of the two cores along the width axis, µm.
      length_cm: length L of the parallel section, cm.
      core_width_um: core dimension along the pitch, µm.
      core_thickness_um: core dimension across the pitch, µm.
      n_core, n_clad: core and cladding indices.
      wavelength_um: vacuum wavelength, µm.

    Returns:
      10·log10 X in dB (≤ 0), broadcast over the arguments.
    """
    log_kappa = _log_coupling_per_um(
        pitch_um, core_width_um, core_thickness_um, n_core, n_clad, wavelength_um
    )
    log_kl = log_kappa + jnp.log(1.0e4 * jnp.asarray(length_cm))
    kl = jnp.exp(log_kl)
    return _DB_PER_NEPER_POWER * (2.0 * log_kl + _log_sinc_squared(kl))


def validate_crosstalk(
    *,
    pitch_um,
    core_width_um,
    core_thickness_um,
    n_core,
    n_clad,
    wavelength_um,
    length_cm=None,
) -> None:
    """Raise ``ValueError`` naming the first argument outside the crosstalk models' domain.

    Checks the arguments of :func:`coupling_coefficient_per_um` and, when ``length_cm``
    is given, of :func:`crosstalk_db`.
    """
    _checks.positive("core_width_um", core_width_um)
    _checks.positive("core_thickness_um", core_thickness_um)
    _checks.positive("wavelength_um", wavelength_um)
    _checks.positive("n_clad", n_clad)
    _checks.positive("n_core", n_core)
    if not np.all(np.asarray(n_core, dtype=float) > np.asarray(n_clad, dtype=float)):
        raise ValueError(f"n_core: must exceed n_clad ({n_clad!r}), got {n_core!r}")
    _checks.positive("pitch_um", pitch_um)
    if not np.all(np.asarray(pitch_um, dtype=float) > np.asarray(core_width_um, dtype=float)):
        raise ValueError(
            f"pitch_um: must exceed core_width_um ({core_width_um!r}; the cores would "
            f"touch or overlap), got {pitch_um!r}"
        )
    if length_cm is not None:
        _checks.positive("length_cm", length_cm)
