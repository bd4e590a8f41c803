"""Bending loss of the PWG flex bent out of its plane (curvature along the core thickness).

Pure JAX (keyword-only, broadcasting, ``jit``/``vmap``/``grad``, float32 and float64):

* :func:`bend_loss_db_per_cm` — the pure radiation (curvature) loss per unit length of the
  fundamental mode of the rectangular core inside a bend of constant radius (the
  tunnelling of each lateral plane-wave component of the field to its caustic, with the
  core's own propagation constant: validated against a 2-D leaky-mode solve of the bent
  core); the runtime model;
* :func:`slab_bend_loss_db_per_cm` — Marcuse's symmetric-slab formula on the thickness
  slab of the effective-index method (1-D; 1.6–2.6× above the 2-D loss: kept as the
  textbook reference it is validated as);
* :func:`bend_transition_loss_db` — the loss at ONE straight/bend junction from the
  outward shift (:func:`bend_mode_shift_um`) of the bent mode (Gaussian model).

A bend of radius R over an angle θ therefore costs
``bend_loss_db_per_cm·(R·θ in cm) + 2·bend_transition_loss_db`` (two junctions; an
S-bend with a reversal of curvature has a third junction, between opposite shifts 2d,
i.e. four times the single-junction loss).

Radius convention: the physics functions need ``radius_mm > 0``; for ``radius_mm <= 0``
and ``radius_mm = +inf`` (a straight guide) they return 0 with a zero, finite gradient
(so a caller that selects straight samples with ``jnp.where`` gets no NaN gradients).
:func:`validate_bend` accepts such radii (and ``None``): a straight flex is not an error.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from yieldmc.physics import _checks
from yieldmc.physics.slab import pwg_index_excess, pwg_mode_radii_um, slab_te0_u

#: dB per neper of power, 10/ln 10.
_DB_PER_NEPER = 10.0 / math.log(10.0)
#: µm per cm.
_UM_PER_CM = 1e4
#: Cap on d/w in the junction loss (keeps 4.343·(d/w)² finite in float32 for R → 0).
_MAX_SHIFT_RATIO = 1e15


def _straight_mask(radius_mm):
    """(radius in µm, made safe where straight; mask of bent entries)."""
    r = jnp.asarray(radius_mm)
    bent = (r > 0) & jnp.isfinite(r)
    return jnp.where(bent, r, 1.0) * 1e3, bent


def _as_float(x):
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.result_type(float))


def _slab_prefactor(*, core_width_um, core_thickness_um, n_core, n_clad, wavelength_um):
    """Effective-index reduction and Marcuse's edge-to-mode power factor of the thickness slab.

    Returns ``(log P, γ, β², a)``: ``P = (γ²/β)·(u/V)²/(1 + w)`` per µm, and the thickness
    slab's decay γ (1/µm), β² (1/µm²) and half-thickness a (µm); see
    :func:`slab_bend_loss_db_per_cm`.
    """
    n_core = _as_float(n_core)
    n_clad = _as_float(n_clad)
    k0 = (2.0 * jnp.pi) / jnp.asarray(wavelength_um)
    # n_core² − n_clad² without cancellation.
    na2_core = (n_core - n_clad) * (n_core + n_clad)
    # Width slab → n1² − n_clad² = b1·(n_core² − n_clad²).
    v1 = k0 * (0.5 * jnp.asarray(core_width_um)) * jnp.sqrt(na2_core)
    u1 = slab_te0_u(v=v1)
    b1 = (v1 - u1) * (v1 + u1) / (v1 * v1)
    na2 = b1 * na2_core
    # Thickness slab with core index n1.
    a = 0.5 * jnp.asarray(core_thickness_um)
    v = k0 * a * jnp.sqrt(na2)
    u = slab_te0_u(v=v)
    w = jnp.sqrt((v - u) * (v + u))
    gamma = w / a
    beta2 = k0 * k0 * n_clad * n_clad + gamma * gamma
    log_p = 2.0 * jnp.log(gamma) + 2.0 * jnp.log(u / v) - 0.5 * jnp.log(beta2) - jnp.log1p(w)
    return log_p, gamma, beta2, a


def bend_loss_db_per_cm(*, radius_mm, core_width_um, core_thickness_um, n_core, n_clad, wavelength_um):
    """Pure bend (radiation) loss of the fundamental PWG mode bent along its thickness, dB/cm.

    **Model.** In the conformal picture (Heiblum & Harris, IEEE J. Quantum Electron.
    11:75 (1975)) the bend of radius R turns the cladding index into
    ``n_clad·(1 + x/R)``, x across the core thickness (outward). Above the core (x > a,
    a = T/2) the index depends on x only, so the field there is a sum of lateral plane
    waves ``exp(i·k·y)``, each obeying ``∂x²F = (γ² + k² − s·x)·F`` with ``s = 2β²/R``
    and ``γ² = β² − k0²n_clad²``, β the propagation constant of the (2-D) core. Each one
    tunnels from the core edge to its caustic with the WKB power factor
    ``exp(−(4/3)·(γ_k² − s·a)^{3/2}/s)``, ``γ_k² = γ² + k²``. Three steps from Marcuse's
    slab formula (:func:`slab_bend_loss_db_per_cm`), each a derivation, none fitted:

    1. γ and β from the rectangular core's own effective index
       (:func:`~yieldmc.physics.slab.pwg_effective_index`, solver grade; ``n_eff² − n_clad²``
       from :func:`~yieldmc.physics.slab.pwg_index_excess`) instead of the
       effective-index slab's (which is 1.1e-4 too high at the nominal core and 1.31 µm:
       γ 1.4 % and the exponent 4 % too large);
    2. the tunnelling integral ``2∫_a^{x_c} sqrt(γ² − s·x) dx = (4/3)(γ² − s·a)^{3/2}/s``
       taken exactly instead of its expansion ``(2/3)γ³R/β² − 2γa`` (the next term,
       ``s·a²/(2γ)``, is 0.15 at R = 5 mm: a factor 0.86);
    3. the lateral spreading: with the edge field's lateral profile taken as the mode's
       Gaussian ``exp(−y²/w_x²)`` (:func:`~yieldmc.physics.slab.pwg_mode_radii_um`),
       whose power spectrum is ``∝ exp(−k²w_x²/2)``, and ``γ_k³ ≈ γ³ + (3/2)γk²``,
       ``γ_k ≈ γ + k²/(2γ)``, the spectral average of the tunnelling factor relative to
       the k = 0 one is::

           L = [1 + 2·c/w_x²]^{−1/2},   c = γR/β² − a/γ   (c clamped at ≥ 0).

       The effective-index slab has no such factor: its tail tunnels as if infinitely
       wide, which is most of its over-estimate.

    With the thickness slab's edge-to-mode power factor
    ``P = (γ_s²/β_s)·(u/V)²/(1 + w)`` of Marcuse's formula (effective-index quantities,
    subscript s)::

        α = P · exp(−(2/3)·(γ² − s·a)^{3/2}·R/β²) · L,   loss = 10·log10(e)·α per unit length

    (``(γ² − s·a)`` clamped at ≥ 0: for R below ``2β²a/γ²`` ≈ 1 mm the caustic falls inside
    the core and the loss is the finite prefactor — meaningless there, but finite).

    Accuracy (``python scripts/bend_validation.py``, docs/physics.md "Bending"; tested in
    tests/test_bend.py): against a 2-D scalar finite-difference leaky-mode solve of the
    bent rectangular core (``tests/reference_bend.py``, PMLs, Richardson-extrapolated in
    the step) this function is 1.06–1.13× the reference at 3–8 mm (1.31 µm) and
    4–10 mm (1.55 µm), i.e. slightly conservative; the slab formula is 1.6–2.6× above it.
    The residual is the asymptotic (U ≫ 1) error of Marcuse's prefactor and the Gaussian
    lateral profile. Polarisation: scalar (at Δn ≈ 0.01 TE and TM differ negligibly).

    Valid domain: core dimensions > 0, wavelength > 0, n_core > n_clad > 0 inside the
    domain of :func:`~yieldmc.physics.slab.pwg_effective_index`. ``radius_mm`` must be > 0
    for a bend; ``radius_mm <= 0`` or ``+inf`` returns 0 (straight), with a zero gradient.
    Large radii underflow to exactly 0 (log space: no NaN, no inf).

    Args:
      radius_mm: bend radius of the guide's centre line, mm.
      core_width_um: core width (in the plane of the ribbon), µm.
      core_thickness_um: core thickness (the bend direction), µm.
      n_core, n_clad: core and cladding indices.
      wavelength_um: vacuum wavelength, µm.

    Returns:
      Radiation loss in dB/cm (≥ 0), broadcast over all arguments.
    """
    r_um, bent = _straight_mask(radius_mm)
    core = dict(core_width_um=core_width_um, core_thickness_um=core_thickness_um, n_core=n_core,
                n_clad=n_clad, wavelength_um=wavelength_um)
    log_p, _, _, a = _slab_prefactor(**core)
    n_clad = _as_float(n_clad)
    k0 = (2.0 * jnp.pi) / jnp.asarray(wavelength_um)
    excess = pwg_index_excess(**core)  # n_eff² − n_clad², without cancellation
    w_x, _ = pwg_mode_radii_um(**core)
    gamma2 = k0 * k0 * excess
    beta2 = k0 * k0 * n_clad * n_clad + gamma2
    gamma = jnp.sqrt(gamma2)
    s = 2.0 * beta2 / r_um
    inner = jnp.maximum(gamma2 - s * a, 0.0)
    # (γ² − s·a)^{3/2}; the +tiny keeps the gradient of sqrt finite where inner = 0.
    tunnel = inner * jnp.sqrt(inner + jnp.finfo(inner.dtype).tiny)
    u_exp = (2.0 / 3.0) * tunnel * r_um / beta2
    c = jnp.maximum(gamma * r_um / beta2 - a / gamma, 0.0)
    log_lateral = -0.5 * jnp.log1p(2.0 * c / (w_x * w_x))
    loss = jnp.exp(log_p - u_exp + log_lateral + math.log(_DB_PER_NEPER * _UM_PER_CM))
    return jnp.where(bent, loss, 0.0)


def slab_bend_loss_db_per_cm(*, radius_mm, core_width_um, core_thickness_um, n_core, n_clad, wavelength_um):
    """Marcuse's slab bend loss of the PWG bent along its thickness (effective-index method), dB/cm.

    The 1-D textbook formula that :func:`bend_loss_db_per_cm` corrects; kept as the
    reference it is validated as (tests/test_bend.py against a 1-D leaky-mode solver).

    **Effective-index reduction.** The bend is in the plane of the core THICKNESS, so the
    width is reduced first: the TE0 index ``n1`` of the width slab (width ``W``,
    ``n_core``/``n_clad``) becomes the core index of the thickness slab (thickness ``T``,
    cladding ``n_clad``), whose TE0 mode is the one that is bent. With ``k0 = 2π/λ``,
    ``a = T/2``, ``V = k0·a·sqrt(n1² − n_clad²)`` and the exact eigenvalue ``u = κ·a``
    of :func:`~yieldmc.physics.slab.slab_te0_u` (``w = γ·a = sqrt(V² − u²)``)::

        κ = u/a,  γ = w/a,  β² = k0²·n_clad² + γ²            (κ² + γ² = k0²(n1² − n_clad²))

    **Marcuse's formula.** The power attenuation coefficient of the TE0 mode of a
    symmetric slab of half-thickness a bent with radius R (Marcuse, "Bending losses of the
    asymmetric slab waveguide", Bell Syst. Tech. J. 50:2551 (1971), loss formula for TE
    modes with equal substrate and cover indices; also D. Marcuse, *Light Transmission
    Optics*, 2nd ed. (1982), ch. 9)::

        α = γ²·κ²·exp(2γa)·exp(−U) / [β·(1 + γa)·k0²·(n1² − n_clad²)],
        U = (2/3)·(γ³/β²)·R,

    i.e. ``α = (γ²/β)·(u/V)²·exp(2w − U)/(1 + w)``, and the loss is
    ``10·log10(e)·α`` per unit length (of the guide's centre line). Its origin: in the
    conformal picture (Heiblum & Harris, IEEE J. Quantum Electron. 11:75 (1975)) the
    cladding index ``n_clad·(1 + x/R)`` reaches β/k0 at the caustic
    ``x_c ≈ R·γ²/(2β²)``; the evanescent tail ``∝ exp(−γ(x − a))`` tunnels to it with the
    power factor ``exp(−U + 2γa)`` (the WKB integral ``2∫_a^{x_c} sqrt(γ² − 2β²x/R) dx``),
    and the prefactor is the edge power ``cos²(κa) = (u/V)²`` relative to the mode power
    ``∝ β(1 + γa)/γ``. It is the leading term of an asymptotic expansion for ``U ≫ 1``:
    ``ln α`` falls linearly with R, by ``(2/3)γ³/β²`` per unit radius (for the nominal
    5.5 × 5.5 µm², Δn = 0.0086 core at 1.31 µm: ×10.0 per mm; at 1.55 µm: ×4.3 per mm).

    Accuracy (tests/test_bend.py, against a finite-difference leaky-mode solver of the
    conformally mapped bent slab with a PML): the formula over-estimates the loss by a
    factor 1.17–1.35 where the loss is ≤ 1 dB/cm (U ≳ 9), and by up to 1.6 (1.31 µm) /
    1.8 (1.55 µm) at 10–80 dB/cm (U ≈ 3–6), where the asymptotics and the neglect of the
    bend-induced field deformation break down. The slope ``d ln α/dR`` is within 3 %.
    The effective-index reduction is the larger error: against a 2-D finite-difference
    solve of the bent rectangular core (``tests/reference_bend.py``,
    ``scripts/bend_validation.py``) this function is 2.3–2.6× (1.31 µm, 3–8 mm) and
    1.6–2.3× (1.55 µm, 4–10 mm) above the 2-D loss — equivalent to over-stating the
    critical radius by ≈ 0.4 mm (1.31 µm) / 0.3–0.6 mm (1.55 µm). The slab's tail tunnels as if infinitely wide; the 2-D tail spreads
    laterally (:func:`bend_loss_db_per_cm`). Polarisation is TE of the thickness slab;
    at Δn ≈ 0.01 TE and TM differ negligibly.

    Valid domain: core dimensions > 0, wavelength > 0, n_core > n_clad > 0. ``radius_mm``
    must be > 0 for a bend; ``radius_mm <= 0`` or ``+inf`` returns 0 (straight). For huge
    radii the result underflows to exactly 0 (computed in log space: no NaN, no inf); for
    radii → 0 it tends to the finite prefactor (meaningless there, but finite).

    Args:
      radius_mm: bend radius of the guide's centre line, mm.
      core_width_um: core width (in the plane of the ribbon), µm.
      core_thickness_um: core thickness (the bend direction), µm.
      n_core, n_clad: core and cladding indices.
      wavelength_um: vacuum wavelength, µm.

    Returns:
      Radiation loss in dB/cm (≥ 0), broadcast over all arguments.
    """
    r_um, bent = _straight_mask(radius_mm)
    log_p, gamma, beta2, a = _slab_prefactor(core_width_um=core_width_um, core_thickness_um=core_thickness_um,
                                             n_core=n_core, n_clad=n_clad, wavelength_um=wavelength_um)
    u_exp = (2.0 / 3.0) * gamma**3 * r_um / beta2
    loss = jnp.exp(log_p + 2.0 * gamma * a - u_exp + math.log(_DB_PER_NEPER * _UM_PER_CM))
    return jnp.where(bent, loss, 0.0)


def bend_mode_shift_um(*, radius_mm, mode_radius_um, n_eff, wavelength_um):
    """Outward shift d of the fundamental mode in a bend (Gaussian model), µm.

    Derivation (equivalent parabolic profile). The Gaussian ``ψ = exp(−x²/w²)`` (w: 1/e
    field radius) has ``ψ''/ψ = 4x²/w⁴ − 2/w²``, so it is the exact fundamental mode of
    ``ψ'' + (k0²n²(x) − β²)ψ = 0`` for the parabolic profile
    ``k0²n²(x) = k0²n0² − 4x²/w⁴`` with ``β² = k0²n0² − 2/w²``. Bending with radius R
    (x outward) is, by the conformal transformation ``n → n·(1 + x/R)`` (Heiblum & Harris,
    IEEE J. Quantum Electron. 11:75 (1975)), the extra term ``k0²n²·2x/R ≈ β²·2x/R``
    (``k0n ≈ β`` over the mode; ``x²/R²`` dropped). Completing the square::

        k0²n0² − (4/w⁴)·x² + (2β²/R)·x = const − (4/w⁴)·(x − d)²,   d = β²·w⁴/(4R),

    so the bent mode is the same Gaussian centred at ``d = (k0·n_eff)²·w⁴/(4R)``. Compare
    Marcuse, "Field deformation and loss caused by curvature of optical fibers", J. Opt.
    Soc. Am. 66:311 (1976), who finds the same outward displacement ``∝ (k0·n·w)²·w²/R``
    of the bent fibre's (Gaussian-approximated) field; the factor 1/4 here belongs to the
    1/e FIELD radius w and is the one derived above (and checked numerically, see below)
    — mind the factor if w is taken from a source using another width convention.

    Accuracy (tests/test_bend.py, finite-difference bent-mode centroid): exact to < 1 %
    for the parabolic profile; for the step-index slab with w its best-fit Gaussian
    radius, d is 4 % (1.31 µm) / 10 % (1.55 µm) smaller than the exact centroid shift for
    weak bends (the exponential tails shift more than a Gaussian's), and 10–25 % smaller
    near R ≈ 3–5 mm where the mode is strongly leaky.

    Valid domain: mode_radius > 0, n_eff > 0, wavelength > 0; ``radius_mm <= 0`` or
    ``+inf`` returns 0 (straight).

    Args:
      radius_mm: bend radius, mm.
      mode_radius_um: Gaussian 1/e field radius w of the mode in the bend direction, µm.
      n_eff: effective index of the mode.
      wavelength_um: vacuum wavelength, µm.

    Returns:
      d in µm (towards the outside of the bend), broadcast over all arguments.
    """
    r_um, bent = _straight_mask(radius_mm)
    beta = (2.0 * jnp.pi) * jnp.asarray(n_eff) / jnp.asarray(wavelength_um)
    w = jnp.asarray(mode_radius_um)
    d = (beta * w * w) ** 2 / (4.0 * r_um)
    return jnp.where(bent, d, 0.0)


def bend_transition_loss_db(*, radius_mm, mode_radius_um, n_eff, wavelength_um):
    """Loss at ONE straight/bend junction from the bent mode's outward shift, dB.

    The straight mode ``exp(−x²/w²)`` meets the bent mode, the same Gaussian shifted by
    ``d`` of :func:`bend_mode_shift_um` (``d = (k0·n_eff)²·w⁴/(4R)``); their power
    overlap is ``exp(−d²/w²)`` (1-D Gaussian offset overlap; the other axis matches
    exactly), so the junction loss is::

        L = 10·log10(e)·(d/w)² = 4.343·(d/w)² dB = 4.343·[(k0·n_eff)²·w³/(4R)]² dB.

    It scales as 1/R²; a bend entered and left through straight sections has two such
    junctions. Radiation inside the bend is :func:`bend_loss_db_per_cm`.

    Accuracy (tests/test_bend.py, numerical overlap of the finite-difference straight and
    bent modes): < 1 % for the parabolic profile; for the step-index slab with w its
    best-fit Gaussian radius the formula is 8 % (1.31 µm) / 18 % (1.55 µm) low for weak
    bends and up to ~40 % low where the bent mode is strongly leaky (R ≲ 5 mm).

    Valid domain: as :func:`bend_mode_shift_um`; ``radius_mm <= 0`` or ``+inf`` gives 0.
    ``d/w`` is capped at 1e15 so that R → 0 stays finite in float32.

    Args:
      radius_mm: bend radius, mm.
      mode_radius_um: Gaussian 1/e field radius w of the mode in the bend direction, µm.
      n_eff: effective index of the mode.
      wavelength_um: vacuum wavelength, µm.

    Returns:
      Junction loss in dB (≥ 0), broadcast over all arguments.
    """
    r_um, bent = _straight_mask(radius_mm)
    beta = (2.0 * jnp.pi) * jnp.asarray(n_eff) / jnp.asarray(wavelength_um)
    w = jnp.asarray(mode_radius_um)
    ratio = jnp.minimum(beta * beta * w**3 / (4.0 * r_um), _MAX_SHIFT_RATIO)  # d/w
    return jnp.where(bent, _DB_PER_NEPER * ratio * ratio, 0.0)


def validate_bend(
    *,
    radius_mm=None,
    core_width_um=None,
    core_thickness_um=None,
    n_core=None,
    n_clad=None,
    wavelength_um=None,
    mode_radius_um=None,
    n_eff=None,
) -> None:
    """Raise ``ValueError`` naming the first argument outside the bend models' domain.

    Only the arguments given (not ``None``) are checked, so the same helper serves
    :func:`bend_loss_db_per_cm` and the transition functions. ``radius_mm`` may be
    ``None``, ≤ 0 or ``+inf`` (a straight flex: the physics functions return 0 there) but
    not NaN or ``-inf``; lengths, indices and the wavelength must be finite and > 0, and
    ``n_core`` > ``n_clad``.
    """
    if radius_mm is not None:
        try:
            r = np.asarray(radius_mm, dtype=float)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"radius_mm: expected a number, got {radius_mm!r}") from exc
        if np.any(np.isnan(r)) or np.any(r == -np.inf):
            raise ValueError(f"radius_mm: must be a number or +inf (≤ 0, +inf: straight), got {radius_mm!r}")
    for name, value in (
        ("core_width_um", core_width_um),
        ("core_thickness_um", core_thickness_um),
        ("wavelength_um", wavelength_um),
        ("n_clad", n_clad),
        ("n_core", n_core),
        ("mode_radius_um", mode_radius_um),
        ("n_eff", n_eff),
    ):
        if value is not None:
            _checks.positive(name, value)
    if n_core is not None and n_clad is not None:
        if not np.all(np.asarray(n_core, dtype=float) > np.asarray(n_clad, dtype=float)):
            raise ValueError(f"n_core: must exceed n_clad ({n_clad!r}), got {n_core!r}")
