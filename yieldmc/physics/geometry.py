"""Array-geometry helpers (docs/physics.md, "2.4 Array geometry")."""

from __future__ import annotations

import jax.numpy as jnp


def thermal_runout_um(*, x_um, cte_mismatch_ppm_per_k, temperature_c, lock_temperature_c):
    """Lateral thermal run-out of a waveguide at array position ``x_um``.

    The PWG and the chip were locked together (cured/bonded) at ``lock_temperature_c``;
    at ``temperature_c`` the CTE mismatch stretches the array about its centre:
    ``dx = x · Δα · 1e-6 · (T − T_lock)``.

    Args:
      x_um: channel position from the array centre, µm.
      cte_mismatch_ppm_per_k: CTE difference PWG − chip, ppm/K.
      temperature_c: operating temperature, °C.
      lock_temperature_c: cure/bond temperature where the run-out is zero, °C.

    Returns:
      Lateral offset in µm, broadcast over the arguments.
    """
    return (
        jnp.asarray(x_um)
        * (jnp.asarray(cte_mismatch_ppm_per_k) * 1e-6)
        * (jnp.asarray(temperature_c) - jnp.asarray(lock_temperature_c))
    )
