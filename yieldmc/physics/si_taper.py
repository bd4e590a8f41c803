"""Per-sample evaluation of the Si strip's index along an adiabatic taper (the
``taper: si_strip`` coupler of :mod:`yieldmc.couplers.adiabatic`).

The coupler evaluates n_eff,Si(w) at every cmt segment of every channel of every module
(64 × 2 polarisations per channel), so :func:`yieldmc.physics.silicon.si_strip_effective_index`
(a cubic Hermite spline over the solver's non-uniform widths, found by comparing against
every node) is resampled once, on first use, on a uniform grid per polarisation and
wavelength node — in the spline's own abscissa, the normalised width
s = (w − w0(λ))/(0.5 µm − w0(λ)) (:mod:`yieldmc.physics.silicon`), so that between
wavelength nodes the nodes are mixed at the same s as the spline mixes them. The grid step
in s corresponds to at most :data:`STEP_UM` of width at every node. Each grid point keeps
the spline's value and slope, and a value is one index computation, four gathers and a
cubic Hermite interpolation per node of the element's band, mixed with the spline's
quadratic Lagrange weights. The cubic reproduces the spline exactly in every grid cell
without a spline knot, and its derivative is continuous: a linear interpolation's
piecewise-constant slope (an error of up to h·|n''|/2) entered the Landau–Zener rate
|dΔβ/dz| and moved the default package's yield by 1 % (tests/test_si_taper.py bounds
value and slope against the spline, at and between the wavelength nodes). Outside the
table both continue linearly in width.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from yieldmc.physics import materials as _mat
from yieldmc.physics import silicon

#: Largest width step of the resampled table at any wavelength node, µm.
STEP_UM = 1e-3
#: Normalised-width range of the resampled table; the spline is linear outside [0, 1] (a
#: jump of its second derivative at 0 and 1, which fall on grid points), so the table's
#: linear continuation beyond this range agrees with it.
S_RANGE = (-0.5, 1.1)


@functools.lru_cache(maxsize=None)
def _build():
    with jax.ensure_compile_time_eval():  # the first call may come from inside a trace
        return _resample()


def _resample():
    """Returns (s0, ds, n, {pol: (values, slopes)}): n_eff − n_top and the three
    sensitivities, and their derivatives in s, on the uniform s grid, each node at its own
    abscissa (as the spline); each array (fields, nodes, n) float64."""
    span = silicon.WIDTH_MAX_UM - float(np.min(silicon._W_LO))
    ds = 1.0 / np.ceil(span / STEP_UM)  # s = 0 and s = 1, where the spline turns linear, are grid points
    s0 = -np.floor(-S_RANGE[0] / ds) * ds
    n = int(np.ceil((S_RANGE[1] - s0) / ds)) + 1
    grid = s0 + ds * np.arange(n)
    # one compiled program (not one per operation: eager operations compile one by one and
    # fall below the persistent compilation cache's threshold, seconds in every process)
    values_and_slopes = jax.jit(lambda x, *args: jax.jvp(lambda y: silicon._hermite(y, *args), (x,),
                                                          (jnp.ones_like(x),)))
    s = np.broadcast_to(grid[:, None], (n, len(silicon.WAVELENGTHS_UM)))
    tables = {}
    for ip, pol in enumerate(silicon.POLARIZATIONS):
        args = (silicon._KNOTS[ip], silicon._VALUES[:, ip], silicon._SLOPES[:, ip])
        h, dh = values_and_slopes(s, *args)  # (F, n, nodes)
        tables[pol] = tuple(np.moveaxis(np.asarray(a, dtype=np.float64), 1, 2) for a in (h, dh))
    return s0, ds, n, tables


def _band(lam, polarization):
    """Per-element quadratic Lagrange weights of the band's three wavelength nodes, the
    nodes' table rows, and the mixed near-cutoff width w0(λ) (the spline's abscissa)."""
    w_lo = silicon._W_LO[silicon.POLARIZATIONS.index(polarization)]
    nodes = silicon.WAVELENGTHS_UM
    low = lam < silicon.BAND_SPLIT_UM
    wts = silicon._band_lagrange(lam, [jnp.where(low, nodes[j], nodes[3 + j]) for j in range(3)])
    rows = [jnp.where(low, j, 3 + j) for j in range(3)]
    w0 = sum(wt * jnp.where(low, float(w_lo[j]), float(w_lo[3 + j])) for j, wt in enumerate(wts))
    return wts, rows, w0


def _cell(w, w0, n, s0, ds):
    """Grid cell index i and the cubic's Hermite basis at the element's normalised width."""
    t = ((w - w0) / (silicon.WIDTH_MAX_UM - w0) - s0) / ds
    i = jnp.clip(jnp.floor(t), 0, n - 2).astype(jnp.int32)
    u = t - i  # in [0, 1) inside the grid; outside, the end cell's cubic continues
    u2 = u * u
    return i, (2 * u2 * u - 3 * u2 + 1, (u2 - 2 * u + 1) * u * ds, 3 * u2 - 2 * u2 * u, (u2 - u) * u * ds)


def _tables(polarization, fields, dtype):
    s0, ds, n, tables = _build()
    s0, ds = float(s0), float(ds)  # weakly typed: a float32 computation stays float32
    values, slopes = (jnp.asarray(t[list(fields)], dtype) for t in tables[polarization])  # (F, nodes, n)
    return s0, ds, n, values, slopes


def si_index_fields(*, width_um, wavelength_um, polarization, fields=(0,), weights=None):
    """Resampled :func:`yieldmc.physics.silicon.si_strip_effective_index` fields.

    With a scalar wavelength (every element at the same λ, as without a wavelength
    variation), the band's three node tables are first mixed with their Lagrange weights —
    and, given ``weights``, the fields too — into one table of 665 points: the cubic
    Hermite interpolation is linear in the table's values and slopes, so this is the same
    function (to float rounding) at 4 gathers per element instead of 12 per field.

    Args:
      width_um: strip width, µm (traced, any shape).
      wavelength_um: µm (traced; broadcasts).
      polarization: ``"te"`` | ``"tm"`` (static).
      fields: which of (n_eff, ∂n/∂n_si, ∂n/∂n_box, ∂n/∂n_top) to return (static).
      weights: optional coefficients, one per field (broadcasting with ``width_um``): then
        the single array Σ_k weights[k]·field_k is returned, in a list.

    Returns:
      List of arrays, one per field (one with ``weights``).
    """
    if polarization not in silicon.POLARIZATIONS:
        raise ValueError(f"polarization: expected 'te' or 'tm', got {polarization!r}")
    if weights is not None:
        weights = tuple(weights)
        if len(weights) != len(fields):
            raise ValueError(f"weights: one per field of {tuple(fields)}, got {len(weights)}")
    w = jnp.asarray(width_um)
    lam = jnp.asarray(wavelength_um)
    dtype = jnp.result_type(w, lam, *(weights or ()))
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.result_type(float)
    s0, ds, n, values, slopes = _tables(polarization, fields, dtype)
    wts, rows, w0 = _band(lam, polarization)
    i, (h00, h10, h01, h11) = _cell(w, w0, n, s0, ds)

    def hermite(vals, slps, flat):  # vals, slps: (n·k,) flat tables
        return h00 * vals[flat] + h10 * slps[flat] + h01 * vals[flat + 1] + h11 * slps[flat + 1]

    if lam.ndim == 0:  # one wavelength: mix the nodes' tables first, (F, n)
        values, slopes = (sum(wt * jnp.take(t, r, axis=1) for wt, r in zip(wts, rows)) for t in (values, slopes))
        flat = i
    else:  # per element: the nodes' rows of the flattened tables, mixed after the lookups
        values, slopes = (t.reshape(len(fields), -1) for t in (values, slopes))
        flat = [r * n + i for r in rows]
    mixed_weights = weights is not None and all(jnp.ndim(c) == 0 for c in weights)
    if mixed_weights:  # scalar field weights: one combined table
        coef = jnp.stack([jnp.asarray(c, dtype) for c in weights])[:, None]
        values, slopes = (jnp.sum(coef * t, 0, keepdims=True) for t in (values, slopes))
    if lam.ndim == 0:
        res = [hermite(v, m, flat) for v, m in zip(values, slopes)]
    else:
        res = [sum(wt * hermite(v, m, f) for wt, f in zip(wts, flat)) for v, m in zip(values, slopes)]
    if weights is not None and not mixed_weights:
        res = [sum(c * r for c, r in zip(weights, res))]
    if 0 in fields:
        k = 0 if weights is not None else list(fields).index(0)
        c = 1.0 if weights is None else weights[list(fields).index(0)]
        res[k] = res[k] + c * _mat.pwg_cladding_index(wavelength_um=lam, temperature_c=silicon.TABLE_TEMPERATURE_C)
    return res


def si_strip_index(*, width_um, wavelength_um, polarization, delta_n_si=0.0, delta_n_box=0.0, delta_n_top=0.0):
    """n_eff of the Si strip with first-order material terms, as
    :func:`yieldmc.physics.silicon.si_strip_effective_index`, from the resampled table."""
    if all(isinstance(d, float) and d == 0.0 for d in (delta_n_si, delta_n_box, delta_n_top)):
        return si_index_fields(width_um=width_um, wavelength_um=wavelength_um, polarization=polarization)[0]
    return si_index_fields(width_um=width_um, wavelength_um=wavelength_um, polarization=polarization,
                           fields=(0, 1, 2, 3), weights=(1.0, delta_n_si, delta_n_box, delta_n_top))[0]
