"""The Si-taper → PWG coupler's local quantities from the local supermodes of its own
cross-section (``yieldmc/data/si_pwg_supermodes.json``, written by
``scripts/si_pwg_supermodes.py``; docs/supermodes.md, docs/physics.md "2.3a").

Two-mode picture of the cross-section at Si width w: the bare Si-strip and PWG modes,
δ(w) = β_Si − β_PWG and their coupling κ; the local supermodes split by
β1 − β2 = sqrt(δ² + 4κ²). Per polarisation, the full-vector solves give at each
phase-matching crossing (wavelength λ, vertical gap g, lateral offset dx, temperature T):

* w*, the width of smallest splitting (δ(w*) = 0);
* κ = ½·min(β1 − β2);
* the slope s = dδ/dw at w*, here fitted as δ(u) = s·u + c·u² (u = w − w*) to the rows
  2 … 12 nm either side of w* (δ = ±sqrt((β1 − β2)² − 4κ²)), which uses the whole scan
  rather than the three widths of the script's parabola;
* the shape of δ(u) over the taper: from the nominal crossing's rows (its scan and the
  200 and 300 nm rows: δ from the splitting) and, on the narrow side where only the
  PWG-like supermode is guided, from its power projection on the isolated PWG mode at the
  80 nm tip (:func:`projection_points`), divided by that crossing's s; between the last
  splitting row (≈ 6 nm below w*) and the tip the shape is the monotone cubic through
  them. The PWG-like supermode's index in between (the ``narrow`` rows) does not fix δ
  there: the two-mode inversion (:func:`single_mode_points`) needs the bare PWG index,
  which the strip lowers by ≈ 0.002/µm near w* (from the rows with both supermodes) by an
  amount that must vanish towards the tip; with and without that shift δ at 10 nm below
  w* is −0.015 and −0.044 /µm (TE). The main uncertainty of the shape; the ratio c/s agrees within ±15 % between all crossings, so a crossing
  elsewhere uses δ(u) = s·ĝ(u) with its own s. Outside the sampled range ĝ is held at its
  end values (no extrapolation below the Si-like supermode's cutoff).

At run time each quantity q ∈ {ln κ, w*, ln s} is the nominal crossing's value plus one
term per axis (λ, g, dx, T), each interpolated over the crossings that vary that axis alone
(the data vary one axis at a time; cross terms are not modelled):

* λ and T: quadratic Lagrange through the three nodes (1.26, 1.31, 1.36 µm; −40, 25,
  125 °C), held outside them;
* gap: piecewise linear over the gap nodes; ln κ continues linearly beyond the widest gap
  (the evanescent decay), every quantity is held below the narrowest;
* offset: piecewise linear in dx² (even in dx, smooth at 0); beyond the largest offset
  ln κ continues linearly in dx² (a Gaussian overlap tail), w* and s are held.

Polymer index changes other than temperature (humidity, the core-index error, another
PWG's reference indices) shift δ to first order: Δδ = k0·(D_common·Δn_clad +
D_core·Δ(n_core − n_clad)), D = ∂(n_Si − n_PWG)/∂n from the nominal crossing's rows
(``(∂n1/∂n − ∂n2/∂n)·(β1 − β2)/δ``, the two-mode relation), and the crossing moves by
Δw* = −Δδ/s.
"""

from __future__ import annotations

import functools
import json
import math
from importlib import resources
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

POLARIZATIONS = ("te", "tm")
#: The nominal crossing: λ µm, gap µm, offset µm, temperature °C.
REFERENCE = (1.31, 0.3, 0.0, 25.0)
#: Rows used for the slope fit, |u| in this range (µm).
FIT_RANGE_UM = (2e-3, 12.5e-3)
#: Step of the tabulated shape ĝ(u), µm.
SHAPE_STEP_UM = 0.5e-3
#: Temperature nodes, °C: where the data has no crossing, w* comes from the first-order shift.
TEMPERATURE_NODES_C = (-40.0, 25.0, 125.0)
#: Index contrast of the table's PWG core over its cladding (docs/supermodes.md).
TABLE_CORE_CONTRAST = 0.0086


def _data():
    text = resources.files("yieldmc").joinpath("data/si_pwg_supermodes.json").read_text()
    return json.loads(text)


def _crossing_rows(data, c, *, tags=None):
    keys = ("polarization", "wavelength_um", "gap_um", "offset_um", "temperature_c")
    return [r for r in data["rows"] if "n2" in r and r["tag"] != "convergence"
            and all(r[k] == c[k] for k in keys) and (tags is None or r["tag"] in tags)]


def delta_points(data, c, *, tags=None):
    """(u, δ) of a crossing's rows: u = w − w*, δ = sign(u)·sqrt((β1 − β2)² − 4κ²), µm and 1/µm."""
    k0 = 2 * math.pi / c["wavelength_um"]
    out = []
    for r in _crossing_rows(data, c, tags=tags):
        u = r["width_um"] - c["w_star_um"]
        split = k0 * (r["n1"] - r["n2"])
        out.append((u, math.copysign(math.sqrt(max(split * split - 4 * c["kappa_per_um"] ** 2, 0.0)), u)))
    return sorted(out)


def projection_points(data, c):
    """(u, δ) from the full-vector power projection Π of the first supermode on the isolated
    PWG mode at the crossing's conditions, through the two-mode relation
    Π = sin²θ = ½·(1 − δ/sqrt(δ² + 4κ²)): δ = 2κ·(1 − 2Π)/sqrt(1 − (1 − 2Π)²). Where the
    Si-like supermode is no longer guided (the narrow side) this is the only measure of δ."""
    keys = ("polarization", "wavelength_um", "gap_um", "offset_um", "temperature_c")
    out = []
    for r in data["rows"]:
        if "full_pwg_projection1" in r and all(r[k] == c[k] for k in keys):
            x = 1.0 - 2.0 * r["full_pwg_projection1"]
            if abs(x) < 1.0:
                out.append((r["width_um"] - c["w_star_um"], 2.0 * c["kappa_per_um"] * x / math.sqrt(1.0 - x * x)))
    return sorted(out)


def single_mode_points(data, c):
    """(u, δ) on the narrow side where only the PWG-like supermode is guided: its index
    above the isolated PWG mode's (``node_n_iso_pwg`` of the crossing), Δ = k0·(n1 − n_PWG),
    is in the two-mode picture sqrt(δ²/4 + κ²) − |δ|/2, so δ = −(κ² − Δ²)/Δ."""
    if "node_n_iso_pwg" not in c:
        return []
    k0 = 2 * math.pi / c["wavelength_um"]
    keys = ("polarization", "wavelength_um", "gap_um", "offset_um", "temperature_c")
    out = []
    for r in data["rows"]:
        if "n2" in r or not all(r[k] == c[k] for k in keys) or r["width_um"] >= c["w_star_um"]:
            continue
        gap = k0 * (r["n1"] - c["node_n_iso_pwg"])
        if 0 < gap < c["kappa_per_um"]:
            out.append((r["width_um"] - c["w_star_um"], -(c["kappa_per_um"] ** 2 - gap * gap) / gap))
    return sorted(out)


def slope_fit(data, c):
    """(s, c2): least-squares δ(u) = s·u + c2·u² over the rows with |u| in FIT_RANGE_UM
    (fewer than two such rows: the parabola's slope ``ddelta_dw_per_um2`` of the crossing, c2 = 0)."""
    pts = [(u, d) for u, d in delta_points(data, c) if FIT_RANGE_UM[0] < abs(u) < FIT_RANGE_UM[1]]
    if len(pts) < 2:  # a narrow scan (the temperature crossings): the script's parabola slope
        return float(c["ddelta_dw_per_um2"]), 0.0
    u = np.array([p[0] for p in pts])
    d = np.array([p[1] for p in pts])
    s, c2 = np.linalg.lstsq(np.stack([u, u * u], 1), d, rcond=None)[0]
    return float(s), float(c2)


class CrossingValues(NamedTuple):
    """κ (1/µm), w* (µm) and s = dδ/dw at w* (1/µm²) of one sampled cross-section."""

    kappa_per_um: object
    w_star_um: object
    slope_per_um2: object


def _key(c):
    return (c["wavelength_um"], c["gap_um"], c["offset_um"], c["temperature_c"])


def first_order_shift_um(data, c, temperature_c):
    """w*(T) − w*(25 °C) to first order: Δδ = k0·Σ_r D_r·Δn_r(T), D_r = (∂n1/∂n_r −
    ∂n2/∂n_r)·(β1 − β2)/δ averaged over the crossing's rows 3 … 8.5 nm either side of w*
    (the two-mode relation), Δn_r of Si, BOX and the polymer from
    :mod:`yieldmc.physics.materials`; Δw* = −Δδ/s."""
    from yieldmc.physics import materials

    lam = c["wavelength_um"]
    k0 = 2 * math.pi / lam

    def indices(t):
        clad = float(materials.pwg_cladding_index(wavelength_um=lam, temperature_c=t))
        return {"si": float(materials.silicon_index(wavelength_um=lam, temperature_c=t)),
                "box": float(materials.silica_index(wavelength_um=lam, temperature_c=t)),
                "core": clad + TABLE_CORE_CONTRAST, "clad": clad}

    n0, n1 = indices(c["temperature_c"]), indices(temperature_c)
    shifts = []
    for r in _crossing_rows(data, c):
        u = r["width_um"] - c["w_star_um"]
        if 3e-3 <= abs(u) <= 8.5e-3:
            split = k0 * (r["n1"] - r["n2"])
            dl = math.copysign(math.sqrt(split * split - 4 * c["kappa_per_um"] ** 2), u)
            shifts.append(k0 * sum((r[f"dn1_dn{k}"] - r[f"dn2_dn{k}"]) * split / dl * (n1[k] - n0[k]) for k in n0))
    s, _ = slope_fit(data, c)
    return -float(np.mean(shifts)) / s


@functools.lru_cache(maxsize=None)
def shape_table(polarization):
    """(u grid µm, ĝ(u) µm): the shape δ(u)/s of the nominal crossing's δ, a monotone cubic
    through its rows (and the projection points further on the narrow side) on a uniform
    grid of :data:`SHAPE_STEP_UM`."""
    from scipy.interpolate import PchipInterpolator

    data = _data()
    ref = next(c for c in data["crossings"] if c["polarization"] == polarization and _key(c) == REFERENCE)
    s_ref, _ = slope_fit(data, ref)
    pts = [(u, d / s_ref) for u, d in delta_points(data, ref) if abs(u) > 1.5e-3] + [(0.0, 0.0)]
    pts += [(u, d / s_ref) for u, d in projection_points(data, ref)
            if u < min(pts)[0] - 1.5e-3 and all(abs(u - q[0]) > 3e-3 for q in pts)]
    pts.sort()
    u = np.array([p[0] for p in pts])
    g = np.array([p[1] for p in pts])
    if np.any(np.diff(g) <= 0):
        raise ValueError(f"{polarization}: δ(u) of the nominal crossing is not monotone in width")
    grid = u[0] + SHAPE_STEP_UM * np.arange(int(np.ceil((u[-1] - u[0]) / SHAPE_STEP_UM)) + 1)
    return grid, PchipInterpolator(u, g)(np.minimum(grid, u[-1]))


@functools.lru_cache(maxsize=None)
def tables():
    """Host tables per polarisation (float64 NumPy): the axes' nodes and values, the shape
    ĝ(u) and the first-order coefficients. Built once from the package data (on the host,
    even when the first call comes from inside a trace)."""
    import jax

    with jax.ensure_compile_time_eval():
        return _tables()


def _tables():
    data = _data()
    lam0, g0, dx0, t0 = REFERENCE
    out = {}
    for pol in POLARIZATIONS:
        cs = {_key(c): c for c in data["crossings"] if c["polarization"] == pol}
        ref = cs[REFERENCE]

        def values(c):
            s, _ = slope_fit(data, c)
            return np.array([math.log(c["kappa_per_um"]), c["w_star_um"], math.log(s)])

        q0 = values(ref)
        axes = {}
        for name, index in (("wavelength", 0), ("gap", 1), ("offset", 2), ("temperature", 3)):
            nodes = sorted({k[index] for k in cs if all(k[j] == REFERENCE[j] for j in range(4) if j != index)})
            axes[name] = (np.array(nodes), np.stack([values(cs[tuple(x if j == index else REFERENCE[j]
                                                                      for j in range(4))]) - q0 for x in nodes]))
        first_order = ()
        nodes, vals = axes["temperature"]
        if len(nodes) < 3:  # no solves there (yet): w* from the first-order shift, κ and s held
            first_order = tuple(t for t in TEMPERATURE_NODES_C if t not in nodes)
            extra = {t: np.array([0.0, first_order_shift_um(data, ref, t), 0.0]) for t in first_order}
            extra.update({float(t): v for t, v in zip(nodes, vals)})
            ts = sorted(extra)
            axes["temperature"] = (np.array(ts), np.stack([extra[t] for t in ts]))
        shape = shape_table(pol)
        s_ref, _ = slope_fit(data, ref)
        # first-order polymer coefficients D (rows 3 … 8 nm either side of w*)
        k0 = 2 * math.pi / lam0
        dcore, dclad = [], []
        for r in _crossing_rows(data, ref):
            uu = r["width_um"] - ref["w_star_um"]
            if 3e-3 <= abs(uu) <= 8.5e-3:
                split = k0 * (r["n1"] - r["n2"])
                dl = math.copysign(math.sqrt(split * split - 4 * ref["kappa_per_um"] ** 2), uu)
                dcore.append((r["dn1_dncore"] - r["dn2_dncore"]) * split / dl)
                dclad.append((r["dn1_dnclad"] - r["dn2_dnclad"]) * split / dl)
        d_core = float(np.mean(dcore))
        d_common = float(np.mean(np.add(dcore, dclad)))
        out[pol] = {"reference": q0, "axes": axes, "shape": shape, "d_core": d_core, "d_common": d_common,
                    "first_order_temperatures": first_order,
                    "d_spread": (float(np.std(dcore)), float(np.std(np.add(dcore, dclad)))),
                    "slope_reference": s_ref}
    return out


def _lagrange3(x, nodes, vals):
    """Quadratic through three nodes, x held inside [nodes[0], nodes[-1]]."""
    x = jnp.clip(x, float(nodes[0]), float(nodes[-1]))
    a, b, c = (float(v) for v in nodes)
    la = (x - b) * (x - c) / ((a - b) * (a - c))
    lb = (x - a) * (x - c) / ((b - a) * (b - c))
    lc = (x - a) * (x - b) / ((c - a) * (c - b))
    return la * float(vals[0]) + lb * float(vals[1]) + lc * float(vals[2])


def _axis(x, nodes, vals, *, lagrange, extend_last=False):
    """One axis' term: Lagrange (3 nodes) or piecewise linear; ``extend_last``: the last
    segment continues linearly beyond the last node (else held)."""
    nodes = np.asarray(nodes, dtype=float)
    vals = np.asarray(vals, dtype=float)
    if len(nodes) == 1:
        return jnp.zeros_like(x)
    if lagrange and len(nodes) == 3:
        return _lagrange3(x, nodes, vals)
    y = jnp.interp(x, jnp.asarray(nodes, x.dtype), jnp.asarray(vals, x.dtype))
    if extend_last:
        slope = (vals[-1] - vals[-2]) / (nodes[-1] - nodes[-2])
        y = y + float(slope) * jnp.maximum(x - float(nodes[-1]), 0.0)
    return y


def crossing(*, polarization, wavelength_um, gap_um, offset_um, temperature_c) -> CrossingValues:
    """κ, w* and s = dδ/dw at phase matching for the sampled cross-section.

    Args:
      polarization: ``"te"`` | ``"tm"`` (static).
      wavelength_um: µm.
      gap_um: Si-top to PWG-core-bottom gap, µm (≥ 0).
      offset_um: lateral offset of the PWG core centre from the strip, µm.
      temperature_c: °C.

    Returns:
      :class:`CrossingValues`, broadcast over the arguments; dtype of the arguments.
    """
    t = tables()[polarization]
    lam, gap, dx, temp = jnp.broadcast_arrays(*(jnp.asarray(v) for v in (wavelength_um, gap_um, offset_um,
                                                                           temperature_c)))
    dtype = jnp.result_type(lam, gap, dx, temp, float)
    lam, gap, dx, temp = (v.astype(dtype) for v in (lam, gap, dx, temp))
    res = []
    for i in range(3):
        q = float(t["reference"][i]) + jnp.zeros_like(lam)
        nodes, vals = t["axes"]["wavelength"]
        q = q + _axis(lam, nodes, vals[:, i], lagrange=True)
        nodes, vals = t["axes"]["temperature"]
        q = q + _axis(temp, nodes, vals[:, i], lagrange=True)
        nodes, vals = t["axes"]["gap"]
        q = q + _axis(gap, nodes, vals[:, i], lagrange=False, extend_last=(i == 0))
        nodes, vals = t["axes"]["offset"]
        q = q + _axis(dx * dx, nodes**2, vals[:, i], lagrange=False, extend_last=(i == 0))
        res.append(q)
    return CrossingValues(jnp.exp(res[0]), res[1], jnp.exp(res[2]))


def delta_per_um(*, polarization, u_um, slope_per_um2):
    """δ(u) = s·ĝ(u) of a crossing with slope s, u = w − w* (µm); ĝ held at the ends of the
    sampled range (the Si-like supermode's cutoff on the narrow side)."""
    grid, g = shape_table(polarization)
    u = jnp.asarray(u_um)
    t = jnp.clip((u - float(grid[0])) / SHAPE_STEP_UM, 0.0, len(grid) - 1.0)  # uniform grid: no search
    i = jnp.minimum(jnp.floor(t), len(grid) - 2).astype(jnp.int32)
    table = jnp.asarray(g, u.dtype)
    lo = table[i]
    return jnp.asarray(slope_per_um2) * (lo + (t - i) * (table[i + 1] - lo))


def polymer_shift_per_um(*, polarization, wavelength_um, temperature_c, n_core, n_clad):
    """First-order Δδ of polymer index changes other than temperature: the sampled cladding
    against the table's at (λ, T) (:func:`yieldmc.physics.materials.pwg_cladding_index`) and
    the core contrast against the table's 0.0086."""
    from yieldmc.physics import materials

    t = tables()[polarization]
    k0 = 2.0 * jnp.pi / jnp.asarray(wavelength_um)
    d_clad = jnp.asarray(n_clad) - materials.pwg_cladding_index(wavelength_um=wavelength_um,
                                                                temperature_c=temperature_c)
    d_contrast = jnp.asarray(n_core) - jnp.asarray(n_clad) - TABLE_CORE_CONTRAST
    return k0 * (t["d_common"] * d_clad + t["d_core"] * d_contrast)


def node_ranges():
    """The sampled nodes per polarisation and axis (documentation and checks)."""
    return {pol: {name: tuple(float(x) for x in nodes) for name, (nodes, _) in t["axes"].items()}
            for pol, t in tables().items()}


def log_kappa_offset(*, polarization, offset_um):
    """The lateral-offset term of ln κ (:func:`crossing`), 0 at no offset."""
    nodes, vals = tables()[polarization]["axes"]["offset"]
    dx = jnp.asarray(offset_um)
    return _axis(dx * dx, nodes**2, vals[:, 0], lagrange=False, extend_last=True)
