"""Mode size and effective index of slab and rectangular PWG cores
(docs/physics.md, "2.2 Mode size and effective index")."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from yieldmc.physics import _checks
from yieldmc.physics._fastmath import atan2_nonneg

#: Newton iterations before the final (gradient-carrying) step, per dtype. From u0 the
#: relative error over 0.05 ≤ V ≤ 30 is ≤ 2.6, 7e-3, 1e-5, 6e-11 after 0, 1, 2, 3 steps
#: (measured in float64 against brentq; tests/test_physics.py checks the final results),
#: so 2 + 1 steps reach float32 and 4 + 1 float64 precision.
_NEWTON_STEPS = {"float32": 2, "float64": 4}


def _v_number(thickness_um, n_core, n_clad, wavelength_um):
    na2 = jnp.asarray(n_core) ** 2 - jnp.asarray(n_clad) ** 2
    return (jnp.pi / jnp.asarray(wavelength_um)) * jnp.asarray(thickness_um) * jnp.sqrt(na2)


def _residual(u, v):
    """h(u) = u − atan(w/u), w = sqrt(V² − u²); h = 0 ⇔ u·tan u = w on (0, π/2)."""
    w = jnp.sqrt(jnp.maximum(v * v - u * u, 0.0))
    return u - atan2_nonneg(w, u), 1.0 + 1.0 / jnp.maximum(w, jnp.finfo(w.dtype).tiny)


def slab_te0_u(*, v):
    """Transverse core parameter u of the TE0 mode of a symmetric slab.

    Solves ``u·tan u = sqrt(V² − u²)`` for u ∈ (0, min(V, π/2)) by Newton's method on
    ``h(u) = u − atan(sqrt(V² − u²)/u)`` (h' = 1 + 1/w), started from
    ``u0 = V/sqrt(1 + V²/(1 + V))``; Newton converges quadratically from there (relative
    error 7e-3, 1e-5, 6e-11 after 1, 2, 3 steps for 0.05 ≤ V ≤ 30), so 3 steps reach
    float32 and 5 float64 precision. The gradient is the implicit one,
    ``du/dV = −h_V/h_u``, taken from the final Newton step at the converged root.

    Args:
      v: normalised frequency V = k0·(d/2)·sqrt(n_core² − n_clad²) > 0.

    Returns:
      u, with the normalised propagation constant b = 1 − u²/V².
    """
    v = jnp.asarray(v)
    v0 = jax.lax.stop_gradient(v)
    u = v0 / jnp.sqrt(1.0 + v0 * v0 / (1.0 + v0))
    for _ in range(_NEWTON_STEPS.get(str(v.dtype), 4)):
        h, dh = _residual(u, v0)
        u = jnp.clip(u - h / dh, 0.0, jnp.minimum(v0, 0.5 * jnp.pi))
    u = jax.lax.stop_gradient(u)
    h, dh = _residual(u, v)
    return u - h / dh


def slab_effective_index(*, thickness_um, n_core, n_clad, wavelength_um):
    """Exact TE0 effective index of a symmetric slab waveguide.

    ``n_eff² = n_clad² + b·(n_core² − n_clad²)``, ``b = 1 − u²/V²`` with u from
    :func:`slab_te0_u` (Marcuse, *Theory of Dielectric Optical Waveguides*, ch. 1).

    Valid domain: thickness > 0, wavelength > 0, n_core > n_clad > 0.

    Args:
      thickness_um: slab thickness d, µm.
      n_core, n_clad: core and cladding indices.
      wavelength_um: vacuum wavelength, µm.

    Returns:
      n_eff, between n_clad and n_core.
    """
    v = _v_number(thickness_um, n_core, n_clad, wavelength_um)
    u = slab_te0_u(v=v)
    b = 1.0 - (u / v) ** 2
    n_clad = jnp.asarray(n_clad)
    na2 = jnp.asarray(n_core) ** 2 - n_clad**2
    return jnp.sqrt(n_clad**2 + b * na2)


def slab_mode_radius_um(*, thickness_um, n_core, n_clad, wavelength_um):
    """Best-fit Gaussian radius w (1/e field) of the TE0 mode of a symmetric slab.

    ``w/(d/2) ≈ 0.6450 + 1.0439/V + 0.5458/V³`` with ``V = k0·(d/2)·sqrt(n_core² −
    n_clad²)`` (the slab analogue of Marcuse's fibre fit, Bell Syst. Tech.
    J. 56:703 (1977)). Accurate over 1 ≤ V ≤ 3 (see ``docs/physics.md`` for the measured
    error against the exact mode).

    Valid domain: thickness > 0, wavelength > 0, n_core > n_clad > 0.

    Args:
      thickness_um: slab thickness d, µm.
      n_core, n_clad: core and cladding indices.
      wavelength_um: vacuum wavelength, µm.

    Returns:
      Mode radius w in µm.
    """
    v = _v_number(thickness_um, n_core, n_clad, wavelength_um)
    return 0.5 * jnp.asarray(thickness_um) * (0.6450 + 1.0439 / v + 0.5458 / v**3)


# ---------------------------------------------------------------------------------------
# Rectangular PWG core: fit to a full-vector mode solver
# ---------------------------------------------------------------------------------------
# Weak guidance makes the scalar mode a function of V_x = k0·(W/2)·NA and V_y = k0·(T/2)·NA
# only (NA² = n_core² − n_clad²; Snyder & Love, *Optical Waveguide Theory*, ch. 13–14); the
# full-vector (polarisation) corrections are first order in ε = NA²/n_core² (= 2Δ). Each
# quantity is a slab-mode base times exp(correction); the correction is a two-variable
# Chebyshev series P[C](a, b) = Σ C_ij T_i(a) T_j(b) in the log-V variable t =
# :func:`_pwg_t` (V), clipped to [−1, 1] (outside the fitted V range the correction is held
# at its boundary value and the base carries the trend), plus ε times a low-degree one.
#
# Coefficients fitted by ``scripts/fit_pwg_modes.py`` (which documents the model) to
# ``tests/data/pwg_modes.csv``: modes of EMpy's full-vector finite-difference solver
# (``EMpy.modesolvers.FD.VFDModeSolver``; Fallahkhair, Li & Murphy, J. Lightwave Technol.
# 26:1423 (2008)) made by ``scripts/pwg_mode_table.py``; provenance and the discretisation
# check in ``tests/data/pwg_modes.json``. Row i of a matrix multiplies T_i(first
# argument), column j T_j(second argument). Do not edit by hand: rerun the script.
# <fit_pwg_modes.py>
_PWG_V_RANGE = (0.6, 4.5)
_PWG_DELTA_RANGE = (0.25, 0.6666666666666666)
_PWG_B_DECAY = 1.25
_PWG_DEGREE = 6
_PWG_LN_B = (
    (-5.930500002269e-01, 7.103256009320e-01, -2.439150852765e-01, 5.680665586267e-02,
     -9.913760184832e-03, 1.029602769944e-03, -7.397052175416e-05,),
    (7.103256009320e-01, -8.397384064609e-01, 2.791490336985e-01, -5.850950218091e-02,
     8.788159113164e-03, -5.564836180535e-04,),
    (-2.439150852765e-01, 2.791490336985e-01, -8.662804373105e-02, 1.555174608337e-02,
     -1.922283167344e-03,),
    (5.680665586267e-02, -5.850950218091e-02, 1.555174608337e-02, -1.506704650610e-03,),
    (-9.913760184832e-03, 8.788159113164e-03, -1.922283167344e-03,),
    (1.029602769944e-03, -5.564836180535e-04,),
    (-7.397052175416e-05,),
)
_PWG_LN_B_EPS = (
    (-7.303566711299e-01, 2.787918431033e-01, -4.114924440322e-02,),
    (9.048171485925e-01, -4.524409961814e-01,),
    (-2.112898777325e-01,),
)
_PWG_LN_W = (
    (3.381810145204e-01, -4.654405922836e-01, 1.877847106549e-01, -3.963743387499e-02,
     7.141368844038e-03, -5.209136306500e-04, 4.188258792544e-05,),
    (-3.659619622563e-01, 5.179650903159e-01, -2.067447598401e-01, 3.655968291986e-02,
     -5.463415503977e-03, -1.320869451834e-03,),
    (1.202397071517e-01, -1.615018314029e-01, 6.000449342447e-02, -5.060332178708e-03,
     9.923990678872e-04,),
    (-1.279670483718e-02, 2.496849000160e-02, -7.447632939593e-03, -3.480249988523e-03,),
    (-7.086022530237e-04, -1.145490710985e-03, 6.029654128734e-04,),
    (-1.275185067944e-04, -1.511569169505e-03,),
    (4.359158308251e-04,),
)
_PWG_LN_W_EPS = (
    (3.117216084358e-01, 6.482574037613e-02,),
    (-5.987576889425e-01,),
)
_PWG_LN_W_POL = (
    (4.780843737346e-01, 6.290956157716e-02,),
    (-6.074957219587e-01,),
)
_PWG_LN_GAMMA_EPS = (
    (-2.470614727118e-01, 3.784878818697e-01,),
    (1.047409090362e-01,),
)
_PWG_LN_GAMMA = (
    (
        (-1.045056936559e-01, 1.754280634664e-01, -6.964442696531e-02, 1.833968519138e-02,
         1.626377309793e-03, -6.972939409364e-04, 2.179271879127e-04,),
        (9.516460282947e-03, -3.562155097674e-02, 8.503320335943e-04, 4.908900776082e-04,
         -1.855739571397e-03, 4.379429247683e-04,),
        (1.701303553163e-03, -8.486932004386e-04, 6.119332626117e-04, -3.050027381781e-03,
         3.764959215669e-04,),
        (-2.688198052848e-03, 9.028088467206e-03, -2.209837166174e-03, 1.841027988227e-03,),
        (8.434056617624e-04, -2.923993957751e-03, 8.932021681833e-04,),
        (-1.571849609467e-04, 3.580277916246e-04,),
        (-2.877863867065e-05,),
    ),
    (
        (-2.469972818319e-01, 2.773655479670e-01, -1.142612495297e-01,),
        (-4.517295011920e-02, 1.552669308471e-01,),
        (-2.911744212558e-02,),
    ),
    (
        (8.001557501124e-02, -7.848901918906e-02, 4.197600537681e-02,),
        (3.439166942366e-02, -1.519382164720e-01,),
        (1.844350576040e-02,),
    ),
)
# </fit_pwg_modes.py>


def _pwg_t(v):
    """Log-V variable, [−1, 1] over ``_PWG_V_RANGE`` and clipped there:
    (2 ln V − ln V_lo − ln V_hi)/(ln V_hi − ln V_lo)."""
    lo, hi = np.log(_PWG_V_RANGE[0]), np.log(_PWG_V_RANGE[1])
    return jnp.clip((2.0 * jnp.log(v) - float(lo + hi)) * float(1.0 / (hi - lo)), -1.0, 1.0)


def _cseries(coef, ta, tb):
    """P[coef](a, b) = Σ_ij coef[i][j]·T_i(a)·T_j(b) from the lists ``ta``, ``tb`` of T_k
    (Python-float coefficients: elementwise multiply–adds that XLA fuses into one loop, and
    float32 inputs stay float32)."""
    total = 0.0
    for i, row in enumerate(coef):
        inner = 0.0
        for j, c in enumerate(row):
            if c != 0.0:
                inner = inner + c * tb[j]
        if not isinstance(inner, float):
            total = total + ta[i] * inner
    return total


def _chebyshev(t):
    """[T_0(t), …, T_d(t)], d = ``_PWG_DEGREE``, by the three-term recurrence."""
    out = [jnp.ones_like(t), t]
    for _ in range(2, _PWG_DEGREE + 1):
        out.append(2.0 * t * out[-1] - out[-2])
    return out


def _pwg_variables(core_width_um, core_thickness_um, n_core, n_clad, wavelength_um):
    """V_x, V_y, NA² (as (n_core − n_clad)(n_core + n_clad): no cancellation in float32)
    and ε = NA²/n_core², all broadcast to the inputs' common shape."""
    n_core, n_clad = jnp.asarray(n_core), jnp.asarray(n_clad)
    na2 = (n_core - n_clad) * (n_core + n_clad)
    k_na = (jnp.pi / jnp.asarray(wavelength_um)) * jnp.sqrt(na2)
    eps = na2 / (n_core * n_core)
    return jnp.broadcast_arrays(k_na * jnp.asarray(core_width_um), k_na * jnp.asarray(core_thickness_um), na2, eps)


def _slab_w(v):
    """Rational approximation of the slab TE0 mode's decay parameter sqrt(V² − u²): with
    N = V + a·V² + b·V³ (a, b = 1.4276, 0.2413), V·N/(N + 1 + (π²/8)·b·V). Exact limits
    (V² for V → 0, V − π²/(8V) for V → ∞), within 0.13 % for V ≥ 0.5 (0.6 % at V = 0.3);
    ``scripts/fit_pwg_modes.py`` (``slab_w``). A base for the fits that needs no
    eigenvalue solve per sample."""
    n = v * (1.0 + v * (1.4276 + 0.2413 * v))
    return v * n / (n + 1.0 + float(np.pi**2 / 8.0 * 0.2413) * v)


def pwg_effective_index(*, core_width_um, core_thickness_um, n_core, n_clad, wavelength_um):
    """Effective index of the fundamental quasi-TE (Ex-major) mode of a rectangular PWG core.

    ``n_eff² = n_clad² + b·NA²`` with::

        ln b = ln b_s(V_x) + ln b_s(V_y) + D·(P[B](t_x, t_y) + ε·P[B_ε](t_x, t_y))

    b_s(V) = (w_s(V)/V)² approximating the slab TE0 mode's normalised index (w_s:
    ``_slab_w``, a rational approximation of its decay parameter), B symmetric and
    D = (min(V_x, V_hi)/V_x · min(V_y, V_hi)/V_y)^1.25 (1 in the fitted range; above it the
    correction fades like the solver's): a fit to full-vector finite-difference modes (see
    the comment above ``_PWG_V_RANGE``; ``scripts/fit_pwg_modes.py``). It is used instead of the
    effective-index method (``_eim_effective_index``), which is 1.2e-4 too high at the
    nominal 5.5 × 5.5 µm², Δn = 0.0086 core at 1.31 µm.

    Fitted domain: W, T in 3–8 µm, n_core − n_clad in 0.004–0.015 (n_clad = 1.55),
    wavelength 1.26–1.36 and 1.50–1.60 µm, i.e. 0.65 ≤ V_x, V_y ≤ 4.4 with ε ≤ 0.019;
    there |Δn_eff| ≤ 2e-6 against the solver (grid and held-out cores). Outside it the
    series are held at their boundary values: checked against the solver up to V = 8
    (12 × 12 µm², Δn 0.025), |Δn_eff| ≤ 2e-5. The quasi-TM index (that of the
    T × W core's quasi-TE mode) differs by up to 5.7e-5 (3 × 8 µm², Δn 0.015, 1.6 µm).

    Args:
      core_width_um, core_thickness_um: core cross-section W × T, µm.
      n_core, n_clad: core and cladding indices (n_core > n_clad).
      wavelength_um: vacuum wavelength, µm.

    Returns:
      n_eff, between n_clad and n_core.
    """
    b_na2 = pwg_index_excess(core_width_um=core_width_um, core_thickness_um=core_thickness_um, n_core=n_core,
                             n_clad=n_clad, wavelength_um=wavelength_um)
    return jnp.sqrt(jnp.asarray(n_clad) ** 2 + b_na2)


def pwg_index_excess(*, core_width_um, core_thickness_um, n_core, n_clad, wavelength_um):
    """``n_eff² − n_clad² = b·NA²`` of :func:`pwg_effective_index`, computed without the
    cancellation of the difference (float32 keeps its relative precision: the cladding decay
    ``k0·sqrt(b·NA²)`` of the mode far from the core needs it). Same arguments."""
    v_x, v_y, na2, eps = _pwg_variables(core_width_um, core_thickness_um, n_core, n_clad, wavelength_um)
    cx, cy = _chebyshev(_pwg_t(v_x)), _chebyshev(_pwg_t(v_y))
    v_hi = _PWG_V_RANGE[1]
    decay = (jnp.minimum(v_x, v_hi) / v_x * (jnp.minimum(v_y, v_hi) / v_y)) ** _PWG_B_DECAY
    ln_b = (2.0 * jnp.log(_slab_w(v_x) / v_x * (_slab_w(v_y) / v_y))
            + decay * (_cseries(_PWG_LN_B, cx, cy) + eps * _cseries(_PWG_LN_B_EPS, cx, cy)))
    return jnp.exp(ln_b) * na2


def pwg_mode_radii_um(*, core_width_um, core_thickness_um, n_core, n_clad, wavelength_um):
    """Best-fit Gaussian radii (w_x, w_y) of a rectangular PWG core's fundamental mode, µm.

    1/e field radii of the separable Gaussian ``exp(−x²/w_x² − y²/w_y²)`` with the largest
    power overlap with the quasi-TE mode's Ex (x along the width W, y along the thickness
    T). With s(V) = 0.6450 + 1.0439/V + 0.5458/V³ (:func:`slab_mode_radius_um`'s slab fit)
    and ``F(V, V') = ln s(V) + P[R](t, t') + ε·P[R_ε](t, t')``, a fit to full-vector modes
    (see the comment above ``_PWG_V_RANGE``; ``scripts/fit_pwg_modes.py``)::

        ln(w_x/(W/2)) = F(V_x, V_y)
        ln(w_y/(T/2)) = F(V_y, V_x) + ε·(t_y − t_x)·P[R_pol](t_y, t_x)

    — one function for both axes, so a square core gives exactly w_x == w_y (the solver's
    square cores are round to ≤ 0.51 %); R_pol is the polarisation asymmetry of
    non-square cores. Error against the solver over the domain of
    :func:`pwg_effective_index`: ≤ 0.26 % (grid and held-out cores); outside it the
    series are held at their boundary values (−2.3 %, −2.5 % at V = 8, from the slab fit's
    own error there). The effective-index method (``_eim_mode_radii_um``) is +4.4 % / −3.6 % off
    at the nominal core.

    Args:
      core_width_um, core_thickness_um: core cross-section W × T, µm.
      n_core, n_clad: core and cladding indices (n_core > n_clad).
      wavelength_um: vacuum wavelength, µm.

    Returns:
      Tuple ``(w_x_um, w_y_um)``, both of the broadcast shape of the inputs.
    """
    v_x, v_y, _, eps = _pwg_variables(core_width_um, core_thickness_um, n_core, n_clad, wavelength_um)
    t_x, t_y = _pwg_t(v_x), _pwg_t(v_y)
    cx, cy = _chebyshev(t_x), _chebyshev(t_y)

    def ln_ratio(v, c_own, c_other):  # F(V, V'): the same code for both axes
        return (jnp.log(0.6450 + 1.0439 / v + 0.5458 / v**3) + _cseries(_PWG_LN_W, c_own, c_other)
                + eps * _cseries(_PWG_LN_W_EPS, c_own, c_other))

    # For a square core t_y − t_x = 0: the polarisation term adds an exact zero, w_x == w_y.
    pol = eps * (t_y - t_x) * _cseries(_PWG_LN_W_POL, cy, cx)
    w_x = 0.5 * jnp.asarray(core_width_um) * jnp.exp(ln_ratio(v_x, cx, cy))
    w_y = 0.5 * jnp.asarray(core_thickness_um) * jnp.exp(ln_ratio(v_y, cy, cx) + pol)
    shape = jnp.broadcast_shapes(jnp.shape(w_x), jnp.shape(w_y))
    return jnp.broadcast_to(w_x, shape), jnp.broadcast_to(w_y, shape)


def pwg_vertical_decay_per_um(*, core_width_um, core_thickness_um, n_core, n_clad, wavelength_um):
    """Decay rate γ (1/µm) of the PWG mode's field in the cladding just below the core.

    γ = −d ln|E|/dy on the core's axis (x = 0), the least-squares slope over 0.3–2 µm below
    the core edge: the gap range of an evanescent (adiabatic) coupler, whose κ(gap) decays
    with it. The decay of a 2-D core's field is not one exponential: at the nominal core
    the local rate falls from 0.672 /µm at the core edge to 0.652 /µm 2 µm below, towards
    the far-field k0·sqrt(n_eff² − n_clad²) = 0.569 /µm. With the thickness slab's decay
    w_s(V_y) (``_slab_w``) as base and δ = (1 µm)/(T/2) (the window in units of the core,
    clipped to the fitted 1/4–1/1.5)::

        ln(γ·T/2) = ln w_s(V_y) + Σ_k δ^k·P[G_k](t_y, t_x) + ε·P[G_ε](t_y, t_x)

    a fit to full-vector modes (see the comment above ``_PWG_V_RANGE``;
    ``scripts/fit_pwg_modes.py``). Error against the solver over the domain of
    :func:`pwg_effective_index`: ≤ 0.05 % (grid and held-out cores); outside it the
    series are held at their boundary values (≤ 0.3 % at V = 8 against the solver).

    Args:
      core_width_um, core_thickness_um: core cross-section W × T, µm.
      n_core, n_clad: core and cladding indices (n_core > n_clad).
      wavelength_um: vacuum wavelength, µm.

    Returns:
      γ in 1/µm.
    """
    v_x, v_y, _, eps = _pwg_variables(core_width_um, core_thickness_um, n_core, n_clad, wavelength_um)
    cx, cy = _chebyshev(_pwg_t(v_x)), _chebyshev(_pwg_t(v_y))
    half_t = 0.5 * jnp.broadcast_to(jnp.asarray(core_thickness_um), v_y.shape)
    delta = jnp.clip(1.0 / half_t, *_PWG_DELTA_RANGE)
    ln_g = jnp.log(_slab_w(v_y)) + eps * _cseries(_PWG_LN_GAMMA_EPS, cy, cx)
    for k, coef in enumerate(_PWG_LN_GAMMA):
        term = _cseries(coef, cy, cx)
        ln_g = ln_g + (term if k == 0 else delta**k * term)
    return jnp.exp(ln_g) / half_t


def _eim_effective_index(*, core_width_um, core_thickness_um, n_core, n_clad, wavelength_um):
    """Effective-index method (kept for comparison, not used by the model).

    The thickness slab (``n_core``/``n_clad``) is solved first; its index ``n1`` becomes
    the core index of the width slab, whose TE0 index is returned.
    """
    n1 = slab_effective_index(
        thickness_um=core_thickness_um, n_core=n_core, n_clad=n_clad, wavelength_um=wavelength_um
    )
    return slab_effective_index(
        thickness_um=core_width_um, n_core=n1, n_clad=n_clad, wavelength_um=wavelength_um
    )


def _eim_mode_radii_um(*, core_width_um, core_thickness_um, n_core, n_clad, wavelength_um):
    """Effective-index-method Gaussian radii (kept for comparison).

    ``w_y`` is the slab fit of the thickness slab; ``w_x`` that of the width slab whose
    core index is the thickness slab's effective index.
    """
    w_y = slab_mode_radius_um(
        thickness_um=core_thickness_um, n_core=n_core, n_clad=n_clad, wavelength_um=wavelength_um
    )
    n1 = slab_effective_index(
        thickness_um=core_thickness_um, n_core=n_core, n_clad=n_clad, wavelength_um=wavelength_um
    )
    w_x = slab_mode_radius_um(
        thickness_um=core_width_um, n_core=n1, n_clad=n_clad, wavelength_um=wavelength_um
    )
    shape = jnp.broadcast_shapes(jnp.shape(w_x), jnp.shape(w_y))
    return jnp.broadcast_to(w_x, shape), jnp.broadcast_to(w_y, shape)


def validate_slab(*, thickness_um, n_core, n_clad, wavelength_um) -> None:
    """Raise ``ValueError`` naming the first argument outside the slab models' domain."""
    _checks.positive("thickness_um", thickness_um)
    _checks.positive("wavelength_um", wavelength_um)
    _checks.positive("n_clad", n_clad)
    _checks.positive("n_core", n_core)
    if not np.all(np.asarray(n_core, dtype=float) > np.asarray(n_clad, dtype=float)):
        raise ValueError(f"n_core: must exceed n_clad ({n_clad!r}), got {n_core!r}")
