"""Mode size and effective index of slab and rectangular PWG cores (DESIGN §2.2)."""

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
    n_clad²)`` (DESIGN §2.2; the slab analogue of Marcuse's fibre fit, Bell Syst. Tech.
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


def pwg_effective_index(*, core_width_um, core_thickness_um, n_core, n_clad, wavelength_um):
    """Effective index of a rectangular PWG core by the effective-index method.

    The thickness slab (``n_core``/``n_clad``) is solved first; its index ``n1`` becomes
    the core index of the width slab, whose TE0 index is returned (DESIGN §2.2).

    Args:
      core_width_um, core_thickness_um: core cross-section, µm.
      n_core, n_clad: core and cladding indices (n_core > n_clad).
      wavelength_um: vacuum wavelength, µm.

    Returns:
      n_eff of the PWG's fundamental mode.
    """
    n1 = slab_effective_index(
        thickness_um=core_thickness_um, n_core=n_core, n_clad=n_clad, wavelength_um=wavelength_um
    )
    return slab_effective_index(
        thickness_um=core_width_um, n_core=n1, n_clad=n_clad, wavelength_um=wavelength_um
    )


def pwg_mode_radii_um(*, core_width_um, core_thickness_um, n_core, n_clad, wavelength_um):
    """Gaussian mode radii (w_x, w_y) of a rectangular PWG core, µm.

    ``w_y`` is the slab fit of the thickness slab; ``w_x`` that of the width slab whose
    core index is the thickness slab's effective index (effective-index method).

    Returns:
      Tuple ``(w_x_um, w_y_um)``.
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
