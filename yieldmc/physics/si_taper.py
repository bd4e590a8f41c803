"""Per-sample evaluation of the Si strip's index along an adiabatic taper (issue 13).

The coupler evaluates n_eff,Si(w) at every cmt segment of every channel of every module
(64 × 2 polarisations per channel), so :func:`yieldmc.physics.silicon.si_strip_effective_index`
(a cubic Hermite spline over the solver's non-uniform widths, found by comparing against
every node) is resampled once, at import, on a uniform 1 nm grid per polarisation and
wavelength node. A value is then one index computation, two gathers and a linear
interpolation per node (error ≤ h²·max|n''|/8 ≈ 1e-5 for h = 1 nm; tests/test_couplers.py
measures it against the spline), mixed across the band's wavelength nodes with the same
quadratic Lagrange weights as the spline. Outside the grid it extrapolates linearly from
the end slopes (as the spline does).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from yieldmc.physics import silicon

#: Grid step of the resampled table, µm.
STEP_UM = 1e-3
_FIELDS = 4  # n_eff, ∂n/∂n_si, ∂n/∂n_box, ∂n/∂n_top


@functools.lru_cache(maxsize=None)
def _build():
    with jax.ensure_compile_time_eval():  # the first call may come from inside a trace
        return _resample()


def _resample():
    lo = min(silicon.NEAR_CUTOFF_WIDTH_UM.values())
    hi = silicon.WIDTH_MAX_UM
    n = int(np.ceil((hi - lo) / STEP_UM)) + 1
    grid = lo + STEP_UM * np.arange(n)
    tables = {}
    for pol in silicon.POLARIZATIONS:
        per_node = []
        for lam in silicon.WAVELENGTHS_UM:
            w = jnp.asarray(grid, dtype=jnp.float64 if jnp.zeros(()).dtype == jnp.float64 else jnp.float32)
            n_eff = np.asarray(silicon.si_strip_effective_index(width_um=w, wavelength_um=lam, polarization=pol),
                               dtype=np.float64)
            sens = [np.asarray(f, dtype=np.float64) for f in
                    silicon.si_strip_sensitivities(width_um=w, wavelength_um=lam, polarization=pol)]
            per_node.append(np.stack([n_eff, *sens]))
        tables[pol] = np.stack(per_node)  # (nodes, fields, n)
    return lo, n, tables


_BANDS = tuple(tuple(i for i, lam in enumerate(silicon.WAVELENGTHS_UM) if (lam < silicon.BAND_SPLIT_UM) == low)
               for low in (True, False))


def _lagrange(lam, nodes):
    a, b, c = nodes
    return ((lam - b) * (lam - c) / ((a - b) * (a - c)),
            (lam - a) * (lam - c) / ((b - a) * (b - c)),
            (lam - a) * (lam - b) / ((c - a) * (c - b)))


def _node_values(table, w, fields):
    """Linear interpolation on the uniform grid (linear extrapolation outside)."""
    lo, n, _ = _build()
    t = (w - lo) / STEP_UM
    i = jnp.clip(jnp.floor(t), 0, n - 2).astype(jnp.int32)
    f = t - i
    return [table[k][i] + f * (table[k][i + 1] - table[k][i]) for k in fields]


def si_index_fields(*, width_um, wavelength_um, polarization, fields=(0,)):
    """Resampled :func:`yieldmc.physics.silicon.si_strip_effective_index` fields.

    Args:
      width_um: strip width, µm (traced, any shape).
      wavelength_um: µm (traced; broadcasts).
      polarization: ``"te"`` | ``"tm"`` (static).
      fields: which of (n_eff, ∂n/∂n_si, ∂n/∂n_box, ∂n/∂n_top) to return (static).

    Returns:
      List of arrays, one per field.
    """
    w = jnp.asarray(width_um)
    lam = jnp.asarray(wavelength_um)
    dtype = jnp.result_type(w, lam)
    table = jnp.asarray(_build()[2][polarization], dtype)
    out = []
    for band in _BANDS:
        weights = _lagrange(lam, [silicon.WAVELENGTHS_UM[i] for i in band])
        vals = [_node_values(table[i], w, fields) for i in band]
        out.append([sum(wt * v[k] for wt, v in zip(weights, vals)) for k in range(len(fields))])
    low = lam < silicon.BAND_SPLIT_UM
    return [jnp.where(low, a, b) for a, b in zip(*out)]


def si_strip_index(*, width_um, wavelength_um, polarization, delta_n_si=0.0, delta_n_box=0.0, delta_n_top=0.0):
    """n_eff of the Si strip with first-order material terms, as
    :func:`yieldmc.physics.silicon.si_strip_effective_index`, from the resampled table."""
    if all(isinstance(d, float) and d == 0.0 for d in (delta_n_si, delta_n_box, delta_n_top)):
        return si_index_fields(width_um=width_um, wavelength_um=wavelength_um, polarization=polarization)[0]
    n, a, b, c = si_index_fields(width_um=width_um, wavelength_um=wavelength_um, polarization=polarization,
                                 fields=(0, 1, 2, 3))
    return n + a * delta_n_si + b * delta_n_box + c * delta_n_top
