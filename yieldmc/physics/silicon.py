"""Effective index of the Si strip of the PWG adiabatic coupler, from a mode table.

The table ``yieldmc/data/si_strip_modes.json`` (made by ``scripts/si_strip_modes.py``:
full-vector FEM, converged to ~1e-5; its provenance, mesh, convergence and material data
are inside the JSON) holds, per polarisation (TE: Ex-major, TM: Ey-major) and wavelength
(1.26, 1.31, 1.36 µm and 1.50, 1.55, 1.60 µm), n_eff and the first-order material
sensitivities ∂n_eff/∂n_si, ∂n_eff/∂n_box, ∂n_eff/∂n_top over strip widths from near
cutoff (n_eff = n_top + 0.001) to 0.5 µm, for a 220 nm strip (estimate) on SiO₂ with the
PWG cladding polymer above and at the sides, materials at 25 °C.

It is loaded once at import (numpy constants). :func:`si_strip_effective_index`
interpolates it at the same *normalised width* across wavelengths, so that the cutoffs
line up (near cutoff a fixed width is far from cutoff at 1.26 µm and below it at 1.36 µm):

* w0(λ): quadratic in λ through the band's near-cutoff widths (bands O: 1.26–1.36 µm and
  C: 1.50–1.60 µm, split at 1.43 µm); s = (w − w0(λ))/(0.5 µm − w0(λ)) ∈ [0, 1];
* per wavelength node, the not-a-knot cubic spline in s through the node's widths of
  n_eff − n_top (and of each sensitivity), evaluated as cubic Hermite segments with the
  spline's slopes (C² in width); outside s ∈ [0, 1] linear continuation with the end
  slope (C¹);
* the quadratic in λ through the band's three nodes at that s, plus n_top(λ)
  (:func:`~yieldmc.physics.materials.pwg_cladding_index` at 25 °C);
* materials: n_eff + Σᵢ (∂n_eff/∂nᵢ)·Δnᵢ, the sensitivities interpolated the same way,
  Δnᵢ the deviations from :func:`si_strip_reference_indices` (e.g. from temperature).

Accuracy against explicit solves of the same solver (``tests/data/si_strip_check.csv``,
``tests/test_silicon.py``): width midpoints ≤ 2.5e-5; off-node wavelengths ≤ 1e-4 (≤ 4e-5
within 30 nm of cutoff); first-order material terms at −40 °C and
125 °C ≤ 7.5e-4 (second-order terms of the −0.035 polymer shift at 125 °C), i.e.
Δβ = 2π/λ·Δn ≤ 3.6e-3 rad/µm at 1.31 µm. The FEM table itself is converged to ~2e-5.

Pure JAX, keyword-only, broadcasting, differentiable, float32 and float64.
"""

from __future__ import annotations

import json
from importlib import resources

import jax
import jax.numpy as jnp
import numpy as np

from yieldmc.physics import _checks
from yieldmc.physics import materials as _mat

_TABLE = json.loads(resources.files("yieldmc").joinpath("data/si_strip_modes.json").read_text())

#: Polarisations of the table, in array order.
POLARIZATIONS = ("te", "tm")
#: Wavelength nodes (µm) of the table, two bands of three.
WAVELENGTHS_UM = tuple(sorted({float(r["wavelength_um"]) for r in _TABLE["rows"]}))
#: Wavelength (µm) separating the O band (below) from the C band (above).
BAND_SPLIT_UM = 1.43
#: Temperature (°C) of the table's materials.
TABLE_TEMPERATURE_C = float(_TABLE["materials"]["temperature_c"])
#: Si thickness of the table, µm (estimate, see the JSON).
THICKNESS_UM = float(_TABLE["geometry"]["thickness_um"])
#: Upper end of the table's widths, µm.
WIDTH_MAX_UM = max(float(r["width_um"]) for r in _TABLE["rows"])
_FIELDS = ("n_eff", "dneff_dnsi", "dneff_dnbox", "dneff_dntop")


def _spline_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Knot slopes of the not-a-knot cubic spline through (x, y) (n ≥ 4), along the last axis."""
    n = x.size
    h = np.diff(x)
    d = np.diff(y, axis=-1) / h
    a = np.zeros((n, n))
    rhs = np.zeros(y.shape)
    for i in range(1, n - 1):
        a[i, i - 1 : i + 2] = (h[i], 2.0 * (h[i - 1] + h[i]), h[i - 1])
        rhs[..., i] = 3.0 * (h[i] * d[..., i - 1] + h[i - 1] * d[..., i])
    # not-a-knot: the third derivative is continuous at x[1] and x[n-2]
    a[0, :2] = (h[1], h[0] + h[1])
    rhs[..., 0] = ((h[0] + 2.0 * (h[0] + h[1])) * h[1] * d[..., 0] + h[0] ** 2 * d[..., 1]) / (
        h[0] + h[1]
    )
    a[-1, -2:] = (h[-1] + h[-2], h[-2])
    rhs[..., -1] = (h[-1] ** 2 * d[..., -2] + (2.0 * (h[-2] + h[-1]) + h[-1]) * h[-2] * d[..., -1]) / (
        h[-2] + h[-1]
    )
    return np.linalg.solve(a, rhs.reshape(-1, n).T).T.reshape(y.shape)


def _build():
    """Per (polarisation, wavelength node): the knots in the normalised width s, the fields
    (n_eff − n_top, then the three sensitivities) and their spline slopes in s."""
    rows = _TABLE["rows"]
    n_top = {e["wavelength_um"]: e["n_top"] for e in _TABLE["materials"]["per_wavelength"]}
    n_w = {len([r for r in rows if r["polarization"] == p and r["wavelength_um"] == lam])
           for p in POLARIZATIONS for lam in WAVELENGTHS_UM}
    if len(n_w) != 1:
        raise ValueError(f"si_strip_modes.json: unequal width counts per node {n_w}")
    n_w = n_w.pop()
    knots = np.zeros((2, len(WAVELENGTHS_UM), n_w))
    w_lo = np.zeros((2, len(WAVELENGTHS_UM)))
    values = np.zeros((len(_FIELDS), 2, len(WAVELENGTHS_UM), n_w))
    slopes = np.zeros_like(values)
    for ip, p in enumerate(POLARIZATIONS):
        for il, lam in enumerate(WAVELENGTHS_UM):
            node = sorted((r for r in rows if r["polarization"] == p and r["wavelength_um"] == lam),
                          key=lambda r: r["width_um"])
            w = np.array([r["width_um"] for r in node])
            w_lo[ip, il] = w[0]
            knots[ip, il] = (w - w[0]) / (w[-1] - w[0])
            for k, f in enumerate(_FIELDS):
                values[k, ip, il] = [r[f] - (n_top[lam] if k == 0 else 0.0) for r in node]
                slopes[k, ip, il] = _spline_slopes(knots[ip, il], values[k, ip, il])
    return knots, w_lo, values, slopes


_KNOTS, _W_LO, _VALUES, _SLOPES = _build()
#: Lower end (µm) of the table's widths per (polarisation, wavelength node): n_eff ≈ n_top + 0.001.
NEAR_CUTOFF_WIDTH_UM = {(p, lam): float(_W_LO[ip, il])
                        for ip, p in enumerate(POLARIZATIONS)
                        for il, lam in enumerate(WAVELENGTHS_UM)}


def _band_lagrange(lam, nodes):
    """Quadratic Lagrange weights at ``lam`` for the three wavelength ``nodes``."""
    a, b, c = nodes
    return (
        (lam - b) * (lam - c) / ((a - b) * (a - c)),
        (lam - a) * (lam - c) / ((b - a) * (b - c)),
        (lam - a) * (lam - b) / ((c - a) * (c - b)),
    )


def near_cutoff_width_um(*, wavelength_um, polarization):
    """Lower end of the table at ``wavelength_um``: the quadratic (in λ, within the band)
    through the nodes' near-cutoff widths (n_eff ≈ n_top + 0.001), µm.

    A JAX array (traced or not) gives a JAX array; a Python or NumPy number gives a NumPy
    value, computed on the host (the input checks call it per element: no device work)."""
    xp = jnp if isinstance(wavelength_um, jax.Array) else np
    ip = POLARIZATIONS.index(polarization)
    lam = xp.asarray(wavelength_um)
    out = []
    for lo in (0, 3):
        wts = _band_lagrange(lam, WAVELENGTHS_UM[lo : lo + 3])
        out.append(sum(wt * float(_W_LO[ip, lo + j]) for j, wt in enumerate(wts)))
    return xp.where(lam < BAND_SPLIT_UM, out[0], out[1])


def _width_range(polarization, wavelength_um) -> tuple[float, float]:
    """[near-cutoff width at λ, WIDTH_MAX_UM]; the larger of the two polarisations' when
    ``polarization`` is None."""
    pols = POLARIZATIONS if polarization is None else (polarization,)
    lo = max(float(near_cutoff_width_um(wavelength_um=float(wavelength_um), polarization=p)) for p in pols)
    return lo, WIDTH_MAX_UM


def _hermite(s, xs, ys, ms):
    """Cubic Hermite interpolation of every wavelength node at its own abscissa.

    s: (*S, L) abscissae per node; xs: (L, n) knots; ys, ms: (F, L, n) values and slopes
    of F fields. Returns (F, *S, L). Linear continuation with the end slope outside.
    """
    n_nodes, n = xs.shape
    idx = jnp.clip(jnp.sum(s[..., None] >= xs, axis=-1) - 1, 0, n - 2)  # (*S, L)
    node = jnp.arange(n_nodes)
    x0, x1 = xs[node, idx], xs[node, idx + 1]
    y0, y1 = ys[:, node, idx], ys[:, node, idx + 1]
    m0, m1 = ms[:, node, idx], ms[:, node, idx + 1]
    h = x1 - x0
    t = (s - x0) / h  # outside the knots this branch is finite and discarded below
    t2, t3 = t * t, t * t * t
    inside = ((2 * t3 - 3 * t2 + 1) * y0 + (t3 - 2 * t2 + t) * h * m0
              + (-2 * t3 + 3 * t2) * y1 + (t3 - t2) * h * m1)
    lead = (ys.shape[0],) + (1,) * (s.ndim - 1) + (n_nodes,)  # (F, 1.., L) to broadcast
    below = ys[:, :, 0].reshape(lead) + ms[:, :, 0].reshape(lead) * (s - xs[:, 0])
    above = ys[:, :, -1].reshape(lead) + ms[:, :, -1].reshape(lead) * (s - xs[:, -1])
    return jnp.where(s < xs[:, 0], below, jnp.where(s > xs[:, -1], above, inside))


def _interp_fields(width_um, wavelength_um, polarization, *extra):
    """The four table fields interpolated at (width, wavelength), stacked on axis 0, in the
    floating dtype of the arguments (``extra`` only joins the dtype promotion)."""
    if polarization not in POLARIZATIONS:
        raise ValueError(f"polarization: expected 'te' or 'tm', got {polarization!r}")
    ip = POLARIZATIONS.index(polarization)
    w = jnp.asarray(width_um)
    lam = jnp.asarray(wavelength_um)
    dtype = jnp.result_type(w, lam, *extra)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.result_type(float)
    w, lam = jnp.broadcast_arrays(w.astype(dtype), lam.astype(dtype))
    knots = jnp.asarray(_KNOTS[ip], dtype=dtype)
    vals = jnp.asarray(_VALUES[:, ip], dtype=dtype)
    slopes = jnp.asarray(_SLOPES[:, ip], dtype=dtype)
    w_lo = jnp.asarray(_W_LO[ip], dtype=dtype)
    s_nodes, weights = [], []
    for lo in (0, 3):  # per band: near-cutoff width at λ, normalised width, λ weights
        wts = _band_lagrange(lam, WAVELENGTHS_UM[lo : lo + 3])
        w0 = sum(wt * w_lo[lo + j] for j, wt in enumerate(wts))
        s_band = (w - w0) / (WIDTH_MAX_UM - w0)
        s_nodes += [s_band] * 3
        weights.append(wts)
    h = _hermite(jnp.stack(s_nodes, axis=-1), knots, vals, slopes)  # (F, *S, 6)
    bands = [sum(wt * h[..., lo + j] for j, wt in enumerate(weights[b])) for b, lo in enumerate((0, 3))]
    f = jnp.where(lam < BAND_SPLIT_UM, bands[0], bands[1])
    n_top = _mat.pwg_cladding_index(wavelength_um=lam, temperature_c=TABLE_TEMPERATURE_C)
    return f.at[0].add(n_top)


def si_strip_reference_indices(*, wavelength_um):
    """Material indices (n_si, n_box, n_top) of the Si-strip table at ``wavelength_um``.

    The same functions the table was computed with (``scripts/si_strip_modes.py``), at the
    table's 25 °C: :func:`~yieldmc.physics.materials.silicon_index`,
    :func:`~yieldmc.physics.materials.silica_index`,
    :func:`~yieldmc.physics.materials.pwg_cladding_index` (50 %RH). A caller forms
    ``delta_n_* = n_*(T, RH) − reference`` for :func:`si_strip_effective_index`.

    Args:
      wavelength_um: vacuum wavelength, µm.

    Returns:
      Tuple ``(n_si, n_box, n_top)``.
    """
    t = TABLE_TEMPERATURE_C
    return (
        _mat.silicon_index(wavelength_um=wavelength_um, temperature_c=t),
        _mat.silica_index(wavelength_um=wavelength_um, temperature_c=t),
        _mat.pwg_cladding_index(wavelength_um=wavelength_um, temperature_c=t),
    )


def si_strip_effective_index(*, width_um, wavelength_um, polarization, delta_n_si=0.0,
                             delta_n_box=0.0, delta_n_top=0.0):
    """Effective index of the Si strip's fundamental TE or TM mode.

    ``n_eff(w, λ) + ∂n_eff/∂n_si·Δn_si + ∂n_eff/∂n_box·Δn_box + ∂n_eff/∂n_top·Δn_top``,
    all four interpolated from the FEM table (module docstring: cubic spline in the
    normalised width, quadratic in wavelength within each band, linear continuation in
    width outside the table). The material terms are first order: against explicit solves
    at −40 °C and 125 °C the error is ≤ 7.5e-4.

    Valid domain (:func:`validate_si_strip`): λ in 1.26–1.36 or 1.50–1.60 µm, width from
    :func:`near_cutoff_width_um` (n_eff ≈ n_top + 0.001) to 0.5 µm; outside, values are
    extrapolated linearly in width (not NaN; below cutoff they are not a mode index).

    Args:
      width_um: strip width, µm.
      wavelength_um: vacuum wavelength, µm.
      polarization: ``"te"`` (Ex-major) or ``"tm"`` (Ey-major); static.
      delta_n_si, delta_n_box, delta_n_top: material index deviations from
        :func:`si_strip_reference_indices`.

    Returns:
      n_eff, broadcast over the array arguments.
    """
    deltas = [jnp.asarray(d) for d in (delta_n_si, delta_n_box, delta_n_top)]
    f = _interp_fields(width_um, wavelength_um, polarization, *deltas)
    return f[0] + f[1] * deltas[0] + f[2] * deltas[1] + f[3] * deltas[2]


def validate_si_strip(*, width_um, wavelength_um, polarization=None) -> None:
    """Raise ``ValueError`` naming the argument outside the Si-strip table's range.

    Wavelength: 1.26–1.36 µm or 1.50–1.60 µm. Width: from :func:`near_cutoff_width_um` at
    that wavelength (the larger of TE and TM unless ``polarization`` is given: the TM mode
    reaches narrower strips) to 0.5 µm.
    """
    _checks.positive("wavelength_um", wavelength_um)
    _checks.positive("width_um", width_um)
    if polarization is not None and polarization not in POLARIZATIONS:
        raise ValueError(f"polarization: expected 'te' or 'tm', got {polarization!r}")
    lam = np.asarray(wavelength_um, dtype=float)
    w = np.asarray(width_um, dtype=float)
    lo_o, hi_o = WAVELENGTHS_UM[0], WAVELENGTHS_UM[2]
    lo_c, hi_c = WAVELENGTHS_UM[3], WAVELENGTHS_UM[5]
    in_band = ((lam >= lo_o - 1e-9) & (lam <= hi_o + 1e-9)) | ((lam >= lo_c - 1e-9) & (lam <= hi_c + 1e-9))
    if not np.all(in_band):
        raise ValueError(f"wavelength_um: must lie in [{lo_o}, {hi_o}] or [{lo_c}, {hi_c}] µm, "
                         f"got {wavelength_um!r}")
    lam_b, w_b = np.broadcast_arrays(lam, w)
    for lam_i, w_i in zip(lam_b.ravel(), w_b.ravel(), strict=True):
        lo, hi = _width_range(polarization, float(lam_i))
        if not lo - 1e-9 <= w_i <= hi + 1e-9:
            raise ValueError(f"width_um: must lie in [{lo:.4f}, {hi}] µm at λ = {lam_i} µm"
                             f"{'' if polarization is None else f' ({polarization})'}, got {w_i!r}")
