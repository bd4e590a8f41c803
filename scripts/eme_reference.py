"""Eigenmode-expansion (EME) propagation of the Si-taper → PWG adiabatic coupler: an
independent check of the runtime coupler and of the coupled-mode reference.

    # 1. mode solves and interface overlaps (needs scikit-fem; femwell's formulation),
    #    one case per call, resumable (finished widths are kept in the cache):
    nice -n 10 python scripts/eme_reference.py solve --case te_nominal [--grid coarse] [--cache DIR]
    nice -n 10 python scripts/eme_reference.py meshcheck --case te_nominal
    # 2. cascade, compare, print the table and (--write) tests/data/eme_reference.json
    #    (needs jax and yieldmc for the coupled-mode reference and the runtime coupler):
    python scripts/eme_reference.py report [--write] [--cache DIR]
    # 3. the comparison table of the committed points (docs/physics.md; no solver, no cache):
    python scripts/eme_reference.py table

What it computes: the full 3-D taper of conf/package/coupler/adiabatic.yaml (220 nm Si
strip narrowing under the 5.5 × 5.5 µm² PWG core, the cross-section of
scripts/si_pwg_supermodes.py: same materials, dimensions and BOX, its mesh construction with
coarser spacings ``MESH`` and a fixed window ``WINDOW_UM`` beyond the core) is cut into
cells of constant strip width (a staircase). In each cell the
``modes`` highest full-vector modes of the cross-section are solved (2nd-order Nédélec ×
Lagrange finite elements on scikit-fem, femwell's formulation, doi:10.1080/02726340290084012;
the half domain with the PEC/PMC symmetry plane of the polarisation class when there is no
offset, else the full domain with TE- and TM-like modes together). At every interface the
overlap matrices ½∫(E_i × H_j)·ẑ of the power-normalised modes of the two cells give the
interface S-matrix (mode matching with the transverse-field continuity tested by the modes
of the incident side: T = 2(O_LR + O_RLᵀ)⁻¹, R = ½(O_RLᵀ − O_LR)T; P. Bienstman and R. Baets,
Opt. Quantum Electron. 33:327 (2001); D. F. G. Gallagher and T. P. Felici, Proc. SPIE 4987
(2003)); each cell propagates its modes by exp(−iβL); the cells are cascaded with the
Redheffer star product. Output: the Si strip ends at the tip and the PWG continues alone;
η = |⟨ψ_tip, PWG⟩|², the power of the propagated tip field in the isolated PWG mode of the
launched polarisation (strip replaced by the cladding polymer; symmetric power overlap,
reflections < 1e-7 here): the quantity |b(L)|² of the coupled-mode reference
(scripts/coupler_reference.py). The power left in the tip cell's first (PWG-like) local
mode is listed as well (it differs by < 0.1 %).

Launch: the first (Si-like) local mode at the knot where the fast section (300 → 170 nm in
the first 10 % of the length) ends. In the fast section the strip mode stays ≥ 0.045 in
index above every other mode, so it follows adiabatically; but a staircase of 10 nm
cells there mismatches the strip mode by ~1e-3–1e-2 per step into cladding and box modes
that beat against it over a cell, an incoherent loss that a continuous taper does not
have (it falls with the step; 1 nm cells through the 150 µm would cost 130 more solves).
The full taper from 300 nm is also cascaded: with the interfaces tested by the incident
side's modes that artefact appears as a gain, with the transmitted side's as a loss, of
nearly equal size, and their mean reproduces the launch at the knot (the convergence table).

Cells: the width axis is sampled (``GRID``): 10 nm steps in the fast section (300 → 170 nm,
the Si mode far above the PWG), then 1 nm within 25 nm of the case's phase-matching width
w* (the local-mode coupling ∝ 1/(δ² + 4κ²) sits there), 2 nm up to 50 nm from it and 5 nm
beyond, down to 8 nm below the tip (room for the CD bias below). A
cell is the stretch of the taper whose width rounds to one sampled width (cell
boundaries where the profile crosses the midpoints), so one set of mode solves serves any
taper shape of the same widths: the tip-width (CD) bias of the whole profile is a change
of the cell lengths. Each width's mesh has node lines at its own strip walls and at those
of its two neighbours, so the overlaps with either neighbour are integrated on a mesh that
resolves both fields' discontinuities exactly (the neighbour's field is evaluated at the
quadrature points by point location in its own mesh).

The EME is written here on the project's own finite-element mode solver rather than on
meow-sim or emepy: their finite-difference mode solvers sample the index on a fixed
rectangular grid, which would staircase the 1 nm width steps that resolve the
phase-matching region (2κ/(dδ/dw) ≈ 7 nm wide); the conforming mesh puts nodes on every
cell's walls.

The tip phase: past the crossing the two supermodes beat at the tip over hundreds of
radians, and a width bias of a few nm moves the beat by radians (coupler_reference.py's
header); η is therefore reported at the nominal profile and as the mean over the
channel CD scatter (5-point Gauss–Hermite in a width bias of the whole profile, σ of
conf/process/nominal.yaml), the same average as the reference's ``reference_eta_cd_mean``.

Convergence: ``solve --grid coarse`` doubles every width step (``--mesh fine``: every mesh
spacing × 0.6; ``--window``: the window beyond the core); ``report`` compares every such run
with the base run of its case, truncates the modal basis to fewer modes, and repeats the
cascade with the interfaces tested by the transmitted side's modes (the truncation
measure); ``meshcheck --case C`` compares the splitting and the local coupling of one
interface at phase matching on the EME mesh and on every spacing × 0.6 with a 1.5× window.
Checks: the cascade run on the coupled-mode reference's own two-mode model (synthetic cells
of the same widths) must reproduce that reference's integration, and the splitting and
local coupling of the two highest EME modes are listed against the two-mode model's near
phase matching. All of it is in the JSON and the printed tables.

The two-mode equations in the local-mode basis: a rotation of the two highest modes into
each other at every interface (the antisymmetric part of their overlap block), their
splitting in every cell, launched at the knot and read out a little above the narrow side's
next anticrossing (where the Si-like mode hands over to the PWG's higher-order mode, and the
residual in it no longer returns) as the first mode's power times its projection on the
isolated PWG mode at the tip. On the EME's own local modes they reproduce the full cascade;
so a few-mode solve of a crossing (``solve --case te_gap0.5 --modes 4``, the supermode
table's other nodes; about 6 minutes each, ``--modes 8`` and 12–15 minutes for an offset,
whose full domain holds both polarisations) gives that crossing's coupler loss, and
``report --nodes DIR`` compares the runtime with it at every node solved.

Run under ``nice``; BLAS threads are pinned to 1 (a shared 2-core machine).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

OUT = ROOT / "tests/data/eme_reference.json"
DEFAULT_CACHE = Path("/tmp/eme_reference_cache")
CRITERION_DB, CRITERION_REL = 0.3, 0.2  # the coupler validation criterion (docs/physics.md)

#: Mesh of the EME cells: the construction of scripts/si_pwg_supermodes.py with coarser
#: spacings (each cell is one solve; the convergence run uses every spacing × 0.6).
MESH = {"h_si_edge": 0.008, "h_si_in": 0.03, "ratio": 1.35, "h_core": 0.25, "h_far": 0.8}
FINE_MESH = {k: (v if k == "ratio" else 0.6 * v) for k, v in MESH.items()}
#: Window beyond the core sideways and above, µm (the PWG mode decays by e^-4.4 in 8 µm).
WINDOW_UM = 8.0
#: Modes per cell (the report also truncates to fewer for the convergence table).
MODES = 24
#: Width sampling, nm: fine step within ``near`` of w*, 10 nm steps above ``fast_above``.
GRID = {"fine": 1.0, "near": 25.0, "coarse": 5.0, "fast": 10.0, "fast_above": 170.0,
        "tip_margin": 8.0}
#: The grid check: every step doubled (and 20 nm steps in the fast section).
COARSE_GRID = dict(GRID, fine=2.0, coarse=10.0, fast=20.0)
CD_NODES = 5
#: Read-out of the two-mode check in the local-mode basis: this far (nm) above the narrow
#: side's next anticrossing (the table also lists 1 and 6 nm as its spread).
STOP_ABOVE_NM = 2.0

#: The cases: polarisation class and cross-section (λ µm, gap µm, lateral offset µm), named
#: as in scripts/coupler_reference.py.
CASES = {
    "te_nominal": {"polarization": "te", "name": "nominal", "wavelength_um": 1.31, "gap_um": 0.3, "offset_um": 0.0},
    "tm_nominal": {"polarization": "tm", "name": "nominal", "wavelength_um": 1.31, "gap_um": 0.3, "offset_um": 0.0},
    "te_gap": {"polarization": "te", "name": "gap +0.5 µm", "wavelength_um": 1.31, "gap_um": 0.8, "offset_um": 0.0},
    "tm_gap": {"polarization": "tm", "name": "gap +0.5 µm", "wavelength_um": 1.31, "gap_um": 0.8, "offset_um": 0.0},
    "te_offset": {"polarization": "te", "name": "offset 2 µm", "wavelength_um": 1.31, "gap_um": 0.3, "offset_um": 2.0},
    "tm_offset": {"polarization": "tm", "name": "offset 2 µm", "wavelength_um": 1.31, "gap_um": 0.3, "offset_um": 2.0},
}
#: The other nodes of the supermode table's crossing axes (yieldmc/data/si_pwg_supermodes.json)
#: and 125 °C, whose local modes the runtime crossing needs (the +0.5 µm gap case above does
#: not stretch from the nominal one): solved with a few modes (``solve --modes 4``; the offset
#: cases above, ``--modes 8``).
for _pol in ("te", "tm"):
    for _gap in (0.2, 0.5, 1.3):
        CASES[f"{_pol}_gap{_gap:g}"] = {"polarization": _pol, "name": f"gap {_gap:g} µm", "wavelength_um": 1.31,
                                        "gap_um": _gap, "offset_um": 0.0}
    for _lam in (1.26, 1.36):
        CASES[f"{_pol}_wl{_lam:g}"] = {"polarization": _pol, "name": f"λ {_lam:g} µm", "wavelength_um": _lam,
                                       "gap_um": 0.3, "offset_um": 0.0}
    for _d in (1.0, 3.0):  # full domain, both polarisations: solve with --modes 8
        CASES[f"{_pol}_offset{_d:g}"] = {"polarization": _pol, "name": f"offset {_d:g} µm", "wavelength_um": 1.31,
                                         "gap_um": 0.3, "offset_um": _d}
    for _t in (-40.0, 125.0):  # the materials' indices at T (thermal expansion of the geometry left out)
        CASES[f"{_pol}_t{_t:g}"] = {"polarization": _pol, "name": f"{_t:g} °C", "wavelength_um": 1.31,
                                    "gap_um": 0.3, "offset_um": 0.0, "temperature_c": _t}


# --- geometry of the taper -----------------------------------------------------------------
def width_grid(geo, w_star_nm, grid=GRID):
    """Sampled widths (nm), widest first: see the module docstring."""
    lo = geo["tip_nm"] - grid["tip_margin"]
    hi = geo["start_nm"]
    ws = [hi]
    w = hi
    while w > lo + 1e-9:
        d = abs(w - w_star_nm)
        if w > grid["fast_above"] + 1e-9:
            step = grid["fast"]
        elif d < grid["near"]:
            step = grid["fine"]
        elif d < 2 * grid["near"]:
            step = 2 * grid["fine"]
        else:
            step = grid["coarse"]
        nxt = round(max(w - step, lo), 6)
        if w > grid["fast_above"] + 1e-9 and nxt < grid["fast_above"]:
            nxt = grid["fast_above"]  # a cell at the knot of the fast and slow sections
        w = nxt
        ws.append(w)
    return ws


def profile_nm(geo):
    """Width (nm) along the taper: the runtime's profile (yieldmc.physics.taper), as in
    scripts/coupler_reference.py."""
    import jax.numpy as jnp

    from yieldmc.physics import taper

    prof = taper.width_profile(geo["profile"], start_width_um=1e-3 * geo["start_nm"],
                               tip_width_um=1e-3 * geo["tip_nm"], length_um=geo["length_um"],
                               knots=tuple((f, 1e-3 * w) for f, w in geo["knots"]), exponent=geo["exponent"])
    return lambda z: 1e3 * np.asarray(prof.width(jnp.asarray(z, jnp.float64)))


def cell_lengths(geo, widths_nm, bias_nm=0.0, samples=400001):
    """Length (µm) of the taper whose width (profile + bias) rounds to each sampled width
    (nearest sample; widths beyond the sampled range go to the end samples)."""
    z = np.linspace(0.0, geo["length_um"], samples)
    w = profile_nm(geo)(z) + bias_nm
    ws = np.asarray(widths_nm)
    mids = 0.5 * (ws[1:] + ws[:-1])  # descending
    idx = np.searchsorted(-mids, -w)  # index of the sampled width each z rounds to
    dz = np.full_like(z, z[1] - z[0])
    dz[0] = dz[-1] = 0.5 * (z[1] - z[0])
    return np.bincount(idx, weights=dz, minlength=len(ws))


def launched_cells(geo, widths_nm, bias_nm=0.0, start_nm=None):
    """(:func:`cell_lengths`, indices of the cells with a length): cells wider than
    ``start_nm`` (the launch width) are left out."""
    lengths = cell_lengths(geo, widths_nm, bias_nm)
    if start_nm is not None:
        lengths[np.asarray(widths_nm) > start_nm + 1e-9] = 0.0
    return lengths, [int(i) for i in np.nonzero(lengths > 0)[0]]


# --- mode solves -------------------------------------------------------------------------------
def build_mesh(*, width_um, extra_um, gap_um, offset_um, window_um, mesh):
    """si_pwg_supermodes.build_mesh with node lines also at the strip walls ±extra/2 (the
    neighbouring cells' walls)."""
    from skfem import MeshTri

    import si_pwg_supermodes as spm

    he, hi, r, hc, hf = (mesh[k] for k in ("h_si_edge", "h_si_in", "ratio", "h_core", "h_far"))
    a = 0.5 * spm.CORE_UM
    half = offset_um == 0.0
    xs = [offset_um - a, offset_um + a]
    w_max = max([width_um] + list(extra_um))
    x_lo = 0.0 if half else min(-0.5 * w_max, xs[0]) - window_um
    x_hi = max(0.5 * w_max, xs[1]) + window_um
    walls = [0.5 * width_um] + [0.5 * e for e in extra_um]
    pts = {xs[1]: hc, x_hi: None}
    for wl in walls:
        pts[round(wl, 9)] = he
        if not half:
            pts[round(-wl, 9)] = he
    if half:
        pts[0.0] = hi
    else:
        pts.update({xs[0]: hc, x_lo: None})
    bx = sorted(p for p in pts if p >= x_lo - 1e-12)
    hx = [pts[p] for p in bx]
    seg_x = []
    for p, q in zip(bx[:-1], bx[1:]):
        mid = 0.5 * (p + q)
        if abs(mid) < 0.5 * w_max:
            seg_x.append(hi)
        elif xs[0] - 1e-12 <= mid <= xs[1] + 1e-12 or min(p, q) > x_lo and max(p, q) < x_hi:
            seg_x.append(hc)
        else:
            seg_x.append(hf)
    x = spm.axis(bx, hx, seg_x, r)
    t, y_core = spm.THICKNESS_UM, spm.THICKNESS_UM + gap_um
    by = [-spm.WINDOW["box_um"], 0.0, t, y_core, y_core + spm.CORE_UM, y_core + spm.CORE_UM + window_um]
    hy = [None, he, he, hc, hc, None]
    seg_y = [hf, hi, hc, hc, hf]
    y = spm.axis(by, hy, seg_y, r)
    m = MeshTri.init_tensor(x, y).with_boundaries({
        "left": lambda p: np.isclose(p[0], x[0]), "right": lambda p: np.isclose(p[0], x[-1]),
        "bottom": lambda p: np.isclose(p[1], y[0]), "top": lambda p: np.isclose(p[1], y[-1]),
    })
    xc, yc = m.p[:, m.t].mean(axis=1)
    in_si = (np.abs(xc) < 0.5 * width_um) & (yc > 0) & (yc < t)
    in_box = yc < 0
    in_core = (np.abs(xc - offset_um) < a) & (yc > y_core) & (yc < y_core + spm.CORE_UM)
    regions = {"si": in_si, "box": in_box, "core": in_core, "clad": ~(in_si | in_box | in_core)}
    return m, regions, half


class Section:
    """One cross-section (strip width, mesh with the neighbours' walls): its modes, power-
    normalised, and their transverse fields at points."""

    def __init__(self, *, case, n, width_um, extra_um, mesh, window_um):
        from skfem import Basis, ElementTriN2, ElementTriP0, ElementTriP2

        from si_strip_modes import fem_operator_forms

        self.k0 = 2 * math.pi / case["wavelength_um"]
        m, regions, half = build_mesh(width_um=width_um, extra_um=extra_um, gap_um=case["gap_um"],
                                      offset_um=case["offset_um"], window_um=window_um, mesh=mesh)
        self.mesh, self.half = m, half
        self.basis = Basis(m, ElementTriN2() * ElementTriP2())
        basis0 = self.basis.with_element(ElementTriP0())
        if half:  # symmetry plane x = 0: PEC for the TE class (Ex even), PMC for TM
            walls = ["right", "top", "bottom"] + (["left"] if case["polarization"] == "te" else [])
        else:
            walls = ["left", "right", "top", "bottom"]
        self.free = np.setdiff1d(np.arange(self.basis.N), self.basis.get_dofs(walls).all())
        f = self.free
        a_free, self._a_eps, b_form = fem_operator_forms()
        self.a_free = a_free.assemble(self.basis, k0=self.k0)[f][:, f].tocsc()
        self.b = b_form.assemble(self.basis, k0=self.k0)[f][:, f].tocsc()
        self._basis0, self._regions = basis0, regions
        self.n = n
        self._a = {}
        self.dofs = len(f)
        self._own = None

    def operator(self, n_mat):
        """A = A_free + A_ε(n²) (one assembly of the ε form per set of indices)."""
        key = tuple(sorted(n_mat.items()))
        if key not in self._a:
            eps = sum(n_mat[r] ** 2 * self._regions[r].astype(float) for r in self._regions)
            a_eps = self._a_eps.assemble(self.basis, k0=self.k0, chi=self._basis0.interpolate(eps))
            self._a[key] = (self.a_free + a_eps[self.free][:, self.free]).tocsc()
        return self._a[key]

    def solve(self, n_mat, k, n_top, n_pwg=None):
        """The ``k`` highest modes (all polarisations of the symmetry class), power-normalised:
        list of (n_eff, full dof vector)."""
        from scipy.sparse import linalg

        a = self.operator(n_mat)

        def eig(n_shift, kk):
            sigma = (self.k0 * (n_shift + 0.01)) ** 2
            lu = linalg.splu((a - sigma * self.b).tocsc())
            op = linalg.LinearOperator(a.shape, matvec=lambda q: lu.solve(self.b @ q), dtype=float)
            vals, vecs = linalg.eigs(op, k=kk, which="LM", tol=1e-11)
            return sigma + 1.0 / vals.real, vecs

        if n_pwg is not None and n_top > n_pwg + 0.05:
            # Si-like modes far above the PWG and cladding modes: two shifts (one shift far
            # above a cluster of close eigenvalues converges slowly)
            l1, v1 = eig(n_top, 3)
            keep = l1 > (self.k0 * (n_pwg + 0.02)) ** 2
            l2, v2 = eig(n_pwg, k - int(keep.sum()))
            lams, vecs = np.concatenate([l1[keep], l2]), np.concatenate([v1[:, keep], v2], axis=1)
        else:
            lams, vecs = eig(n_top, k)
        out = []
        for i in np.argsort(-lams):
            v = np.zeros(self.basis.N)
            vi = vecs[:, i]
            v[self.free] = (vi / vi[np.argmax(np.abs(vi))]).real
            neff = math.sqrt(max(lams[i], 0.0)) / self.k0
            e = self._fields_own(neff, v)
            p = 0.5 * np.sum(self.dx * (e[0] * e[2] + e[1] * e[3]))  # > 0 for a forward mode
            out.append((neff, v / math.sqrt(p), e / math.sqrt(p)))
        return out

    def _fields_own(self, neff, v):
        """(Ex, Ey, Fx, Fy) of a dof vector at this mesh's quadrature points."""
        pts = self.quadrature_points()
        if self._own is None:
            self._own = self.probe_matrices(pts.reshape(2, -1))
        return self._combine(self._own, neff, v).reshape((4,) + pts.shape[1:])

    def _combine(self, mats, neff, v):
        ex, ey, gx, gy = mats
        beta = neff * self.k0
        a, b = ex @ v, ey @ v
        return np.array([a, b, beta * a + self.k0**2 / beta * (gx @ v), beta * b + self.k0**2 / beta * (gy @ v)])

    # fields: (Ex, Ey, Fx, Fy) with F = β E_t + (k0²/β) ∇e_z, so ωμ0 (E_a × H_b)·ẑ = E_a·F_b
    # (scripts/si_pwg_supermodes.py, _power_form; femwell's calculate_hfield gives the same H)
    @property
    def dx(self):
        return self.basis.dx

    def quadrature_points(self):
        return self.basis.mapping.F(self.basis.X)  # (2, cells, points)

    def fields_at_quadrature(self, modes):
        return [m[2] for m in modes]

    def probe_matrices(self, pts):
        """Sparse (Ex, Ey, ∂x e_z, ∂y e_z) evaluation matrices at physical points (2, M)."""
        from scipy.sparse import coo_matrix

        cells, ref = self.locate(pts)
        rows = np.arange(pts.shape[1])
        comps = [[], [], [], []]
        for k in range(self.basis.Nbfun):
            et, ez = self.basis.elem.gbasis(self.basis.mapping, ref, k, tind=cells)
            vals = [et.value[0][:, 0], et.value[1][:, 0], ez.grad[0][:, 0], ez.grad[1][:, 0]]
            for c in range(4):
                comps[c].append(vals[c])
        cols = self.basis.element_dofs[:, cells]  # (Nbfun, M)
        r = np.tile(rows, self.basis.Nbfun)
        return [coo_matrix((np.concatenate(comps[c]), (r, cols.ravel())), shape=(pts.shape[1], self.basis.N)).tocsr()
                for c in range(4)]

    def locate(self, pts):
        """(triangle, reference coordinates) of physical points (2, M) in this tensor mesh:
        the rectangle by bisection on the node lines, then whichever of its two triangles
        holds the point (skfem's generic element finder is quadratic in the points)."""
        m = self.mesh
        xs, ys = np.unique(m.p[0]), np.unique(m.p[1])
        cx, cy = m.p[:, m.t].mean(axis=1)
        rect = np.searchsorted(xs, cx) - 1 + (len(xs) - 1) * (np.searchsorted(ys, cy) - 1)
        order = np.argsort(rect, kind="stable")  # two triangles per rectangle
        pair = order.reshape(-1, 2)
        ix = np.clip(np.searchsorted(xs, pts[0]) - 1, 0, len(xs) - 2)
        iy = np.clip(np.searchsorted(ys, pts[1]) - 1, 0, len(ys) - 2)
        r = ix + (len(xs) - 1) * iy
        cells = pair[r, 0]
        ref = self.basis.mapping.invF(pts[:, :, np.newaxis], tind=cells)
        tol = 1e-9
        outside = (ref[0, :, 0] < -tol) | (ref[1, :, 0] < -tol) | (ref[0, :, 0] + ref[1, :, 0] > 1 + tol)
        cells = np.where(outside, pair[r, 1], cells)
        ref = self.basis.mapping.invF(pts[:, :, np.newaxis], tind=cells)
        return cells, ref

    def fields_at(self, pts, modes):
        mats = self.probe_matrices(pts)
        return [self._combine(mats, m[0], m[1]) for m in modes]


def overlaps(sec_l, modes_l, sec_r, modes_r):
    """O_LR[i, j] = ½∫E_Li·F_Rj and O_RL[j, i] = ½∫E_Rj·F_Li (ωμ0 × the cross powers) on the
    quadrature of ``sec_l``'s mesh (which has node lines at both cells' walls)."""
    pts = sec_l.quadrature_points()
    shape = pts.shape[1:]
    fl = sec_l.fields_at_quadrature(modes_l)
    fr = [f.reshape((4,) + shape) for f in sec_r.fields_at(pts.reshape(2, -1), modes_r)]
    dx = sec_l.dx
    o_lr = np.array([[0.5 * np.sum(dx * (a[0] * b[2] + a[1] * b[3])) for b in fr] for a in fl])
    o_rl = np.array([[0.5 * np.sum(dx * (b[0] * a[2] + b[1] * a[3])) for a in fl] for b in fr])
    return o_lr, o_rl


def te_fraction(sec, mode):
    f = sec.fields_at_quadrature([mode])[0]
    ex, ey = np.sum(sec.dx * f[0] ** 2), np.sum(sec.dx * f[1] ** 2)
    return float(ex / (ex + ey))


def case_temperature_c(case):
    return case.get("temperature_c", 25.0)


def case_indices(case):
    import si_pwg_supermodes as spm

    return spm.material_indices(case["wavelength_um"], case_temperature_c(case))


def w_star_nm(case):
    """Phase-matching width of the case from the supermode table (its own crossing where it
    exists, else the nearest gap/offset/temperature crossing of the same polarisation and λ,
    a kelvin counting as 0.01 µm): it only places the fine cells."""
    d = json.loads((ROOT / "yieldmc/data/si_pwg_supermodes.json").read_text())
    best = min((c for c in d["crossings"] if c["polarization"] == case["polarization"]
                and abs(c["wavelength_um"] - case["wavelength_um"]) < 1e-9),
               key=lambda c: abs(c["gap_um"] - case["gap_um"]) + abs(c["offset_um"] - case["offset_um"])
               + 0.01 * abs(c["temperature_c"] - case_temperature_c(case)))
    return 1e3 * best["w_star_um"]


def solve_case(key, *, grid_name, mesh_name, window_um, modes, cache_dir, log=print):
    """All cells of one case: per width its n_eff, and the overlaps with the next width;
    the isolated PWG (output) and strip (launch check) modes. Resumable (one JSON file per
    finished width)."""
    case = CASES[key]
    grid = {"base": GRID, "coarse": COARSE_GRID}[grid_name]
    mesh = {"base": MESH, "fine": FINE_MESH}[mesh_name]
    import coupler_reference as cr

    geo = cr.configured()
    ws = width_grid(dict(geo, gap_um=case["gap_um"]), w_star_nm(case), grid)
    tag = f"{key}-g{grid_name}-m{mesh_name}-w{window_um:g}-n{modes}"
    out_dir = Path(cache_dir) / tag
    out_dir.mkdir(parents=True, exist_ok=True)
    n = case_indices(case)
    n_pwg_guess = n["clad"] + 0.0042
    import si_pwg_supermodes as spm

    strip = spm.Strip()

    def n_top(w_nm):
        return max(strip.n(case["polarization"], case["wavelength_um"], 1e-3 * w_nm, n["clad"]), n_pwg_guess)

    def section(i):
        nb = [1e-3 * ws[j] for j in (i - 1, i + 1) if 0 <= j < len(ws)]
        return Section(case=case, n=n, width_um=1e-3 * ws[i], extra_um=nb, mesh=mesh, window_um=window_um)

    t_all = time.perf_counter()
    # isolated PWG mode (strip → cladding): the output; the same symmetry class
    pwg_sec = section(len(ws) - 1)
    n_pwg = dict(n, si=n["clad"])
    pwg_modes = pwg_sec.solve(n_pwg, 4, n_pwg_guess)
    pol_te = case["polarization"] == "te"
    pwg = next(md for md in pwg_modes if (te_fraction(pwg_sec, md) > 0.5) == pol_te)
    prev = None
    for i, w in enumerate(ws):
        f = out_dir / f"{i:04d}.json"
        if f.exists() and (i == len(ws) - 1 or (out_dir / f"{i + 1:04d}.json").exists()):
            prev = None  # the next width is done too: nothing to carry over
            continue
        t0 = time.perf_counter()
        sec = section(i)
        md = sec.solve(n, modes, n_top(w), n_pwg_guess)
        rec = {"width_nm": w, "n_eff": [m[0] for m in md], "dofs": sec.dofs,
               "te_fraction": [te_fraction(sec, m) for m in md]}
        if prev is not None or i > 0:
            if prev is None:  # resumed: rebuild the previous width's cell
                ps = section(i - 1)
                prev = (ps, ps.solve(n, modes, n_top(ws[i - 1]), n_pwg_guess))
            o_lr, o_rl = overlaps(prev[0], prev[1], sec, md)
            rec["o_prev_this"] = o_lr.tolist()
            rec["o_this_prev"] = o_rl.tolist()
        # overlaps with the isolated PWG mode (on this cell's mesh; the PWG field has no wall)
        o_mp, o_pm = overlaps(sec, md, pwg_sec, [pwg])
        rec["o_this_pwg"] = o_mp[:, 0].tolist()
        rec["o_pwg_this"] = o_pm[0].tolist()
        if i == 0:  # launch check: the isolated strip mode (core → cladding) in the first cell
            si = sec.solve(dict(n, core=n["clad"]), 2, n_top(w))[0]
            a, b = overlaps(sec, md, sec, [si])
            rec["launch_strip_power_in_modes"] = (0.5 * (a[:, 0] + b[0])).tolist()
        rec["seconds"] = round(time.perf_counter() - t0, 2)
        f.write_text(json.dumps(rec))
        log(f"{tag} {i + 1}/{len(ws)} w={w:g} nm n={rec['n_eff'][0]:.6f},{rec['n_eff'][1]:.6f} "
            f"dofs={sec.dofs} {rec['seconds']:.1f} s", flush=True)
        prev = (sec, md)
    meta = {"case": key, **case, "grid": grid, "grid_name": grid_name, "mesh": mesh, "mesh_name": mesh_name,
            "window_um": window_um, "modes": modes, "widths_nm": ws, "materials": n,
            "pwg_n_eff": pwg[0], "w_star_nm_table": w_star_nm(case),
            "seconds_last_run": round(time.perf_counter() - t_all, 1), "versions": versions(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared)"}
    (out_dir / "meta.json").write_text(json.dumps(meta))
    return out_dir


def mesh_check(key, cache_dir, log=print):
    """The interface of two cells 1 nm apart at the case's phase matching on the EME mesh
    (window ``WINDOW_UM``) and on every spacing × 0.6 with a 1.5× window: the two highest
    indices, the splitting and the local coupling (O_LR[0, 1], the rotation per step)."""
    case = CASES[key]
    n = case_indices(case)
    w0 = round(w_star_nm(case))
    out = {"case": key, "widths_nm": [w0, w0 - 1], "rows": []}
    for name, mesh, win in (("base", MESH, WINDOW_UM), ("fine mesh, window × 1.5", FINE_MESH, 1.5 * WINDOW_UM)):
        t0 = time.perf_counter()
        secs = [Section(case=case, n=n, width_um=1e-3 * w, extra_um=[1e-3 * o], mesh=mesh, window_um=win)
                for w, o in ((w0, w0 - 1), (w0 - 1, w0))]
        mds = [s.solve(n, 8, n["clad"] + 0.0042) for s in secs]
        o_lr, o_rl = overlaps(secs[0], mds[0], secs[1], mds[1])
        row = {"check": name, "window_um": win, "dofs": secs[0].dofs, "n1": mds[0][0][0], "n2": mds[0][1][0],
               "splitting_per_um": 2 * math.pi / case["wavelength_um"] * (mds[0][0][0] - mds[0][1][0]),
               "coupling_per_step": float(0.5 * (abs(o_lr[0, 1]) + abs(o_lr[1, 0]))),
               "seconds": round(time.perf_counter() - t0, 1)}
        out["rows"].append(row)
        log(row, flush=True)
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    (Path(cache_dir) / f"meshcheck-{key}.json").write_text(json.dumps(out))


# --- cascade ------------------------------------------------------------------------------
def interface_s(o_lr, o_rl, tested="incident"):
    """S-matrix blocks of the interface L → R between power-normalised mode sets; blocks
    b_L = r11 a_L + t21 a_R, b_R = t12 a_L + r22 a_R (forward amplitudes a, backward b).

    Continuity of E_t and H_t across the interface, tested by the modes of the incident
    side (``incident``: T = 2(O_LR + O_RLᵀ)⁻¹, R = ½(O_RLᵀ − O_LR)T, the usual EME form) or
    of the transmitted side (``transmitted``: T = 2A(A + B)⁻¹B, A = O_LRᵀ, B = O_RL, ≈ the
    projection Oᵀ). With a truncated basis the first slightly over-, the second slightly
    under-estimates the power kept in the basis; they agree as the basis grows or the
    steps shrink (their spread is listed as a truncation measure)."""
    def one_way(o_ab, o_ba):
        if tested == "incident":
            t = 2.0 * np.linalg.inv(o_ab + o_ba.T)
            return t, 0.5 * (o_ba.T - o_ab) @ t
        a, b = o_ab.T, o_ba
        inv = np.linalg.inv(a + b)
        return 2.0 * a @ inv @ b, inv @ (b - a)

    t_lr, r_lr = one_way(o_lr, o_rl)
    t_rl, r_rl = one_way(o_rl, o_lr)
    return {"t12": t_lr, "r11": r_lr, "t21": t_rl, "r22": r_rl}


def star(s, u):
    """Redheffer star product of two S-matrices (s then u)."""
    n = s["r22"].shape[0]
    eye = np.eye(n)
    fwd = np.linalg.inv(eye - s["r22"] @ u["r11"])  # multiple reflections between s and u
    bwd = np.linalg.inv(eye - u["r11"] @ s["r22"])
    return {"t12": u["t12"] @ fwd @ s["t12"],
            "r11": s["r11"] + s["t21"] @ u["r11"] @ fwd @ s["t12"],
            "t21": s["t21"] @ bwd @ u["t21"],
            "r22": u["r22"] + u["t12"] @ s["r22"] @ bwd @ u["t21"]}


def propagation(beta, length):
    p = np.diag(np.exp(-1j * beta * length))
    z = np.zeros_like(p)
    return {"t12": p, "r11": z, "t21": p, "r22": z}


def load_case(out_dir):
    meta = json.loads((Path(out_dir) / "meta.json").read_text())
    recs = [json.loads((Path(out_dir) / f"{i:04d}.json").read_text()) for i in range(len(meta["widths_nm"]))]
    return meta, recs


def eme_eta(meta, recs, geo, bias_nm=0.0, modes=None, tested="incident", start_nm=None):
    """(η into the isolated PWG mode, power in the tip cell's first mode, power reflected)
    of the cascade for a width bias of the whole profile, with the first ``modes`` modes,
    launched in the first mode of the widest cell (``start_nm``: of the widest cell not
    wider than that)."""
    k = modes or meta["modes"]
    k0 = 2 * math.pi / meta["wavelength_um"]
    ws = meta["widths_nm"]
    lengths, used = launched_cells(geo, ws, bias_nm, start_nm)
    first, last = used[0], used[-1]
    s = None
    for i in range(first, last + 1):
        beta = k0 * np.asarray(recs[i]["n_eff"][:k])
        if i > first:
            r = recs[i]
            o_lr = np.asarray(r["o_prev_this"])[:k, :k]
            o_rl = np.asarray(r["o_this_prev"])[:k, :k]
            s = star(s, interface_s(o_lr, o_rl, tested))
        p = propagation(beta, lengths[i])
        s = p if s is None else star(s, p)
    a_in = np.zeros(k)
    a_in[0] = 1.0  # the Si-like first mode of the first (widest) cell
    c = s["t12"] @ a_in
    refl = float(np.sum(np.abs(s["r11"] @ a_in) ** 2))
    # last interface: tip cell → isolated PWG (one output mode: its projection)
    r = recs[last]
    o_mp = np.asarray(r["o_this_pwg"])[:k]
    o_pm = np.asarray(r["o_pwg_this"])[:k]
    t_to_pwg = 0.5 * (o_mp + o_pm)  # amplitude of each tip mode in the PWG mode
    eta = float(abs(t_to_pwg @ c) ** 2)
    return eta, float(abs(c[0]) ** 2), refl


def db(eta):
    return -10.0 * math.log10(max(eta, 1e-30))


def within(value_db, reference_db):
    diff = abs(value_db - reference_db)
    return diff <= CRITERION_DB or diff <= CRITERION_REL * reference_db


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    ps = sub.add_parser("solve", help="mode solves and overlaps of one case")
    ps.add_argument("--case", required=True, choices=sorted(CASES))
    ps.add_argument("--grid", default="base", choices=("base", "coarse"))
    ps.add_argument("--mesh", default="base", choices=("base", "fine"))
    ps.add_argument("--window", type=float, default=WINDOW_UM)
    ps.add_argument("--modes", type=int, default=MODES)
    ps.add_argument("--cache", default=str(DEFAULT_CACHE))
    pm = sub.add_parser("meshcheck", help="mesh and window at one interface at phase matching")
    pm.add_argument("--case", required=True, choices=sorted(CASES))
    pm.add_argument("--cache", default=str(DEFAULT_CACHE))
    pr = sub.add_parser("report", help="cascade, compare, print (and --write the JSON)")
    pr.add_argument("--cache", default=str(DEFAULT_CACHE))
    pr.add_argument("--write", action="store_true")
    pr.add_argument("--nodes", default="/tmp/eme_local_cache", help="cache of the few-mode node solves")
    sub.add_parser("table", help="the comparison table of the committed points (tests/data/eme_reference.json)")
    args = ap.parse_args(argv)
    if args.cmd == "table":
        return table(json.loads(OUT.read_text()))
    if args.cmd == "solve":
        solve_case(args.case, grid_name=args.grid, mesh_name=args.mesh, window_um=args.window,
                   modes=args.modes, cache_dir=args.cache)
        return 0
    if args.cmd == "meshcheck":
        mesh_check(args.case, args.cache)
        return 0
    return report(args)


def comparison_rows(points):
    """The Markdown rows of the EME / coupled-mode reference / runtime comparison."""
    rows = ["| case | pol | EME η (loss dB) | EME, CD mean | coupled-mode ref. | ref., CD mean | runtime (cmt, f32) | "
            "Δ EME − ref. (CD means) dB | Δ runtime − EME (CD mean) dB | runtime within 0.3 dB / 20 % of EME |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for p in points:
        e = p["eme"]
        d1 = db(e["eta_cd_mean"]) - db(p["reference_eta_cd_mean"])
        d2 = db(p["runtime_eta"]) - db(e["eta_cd_mean"])
        ok = within(db(p["runtime_eta"]), db(e["eta_cd_mean"])) or within(db(p["runtime_eta"]), db(e["eta"]))
        rows.append(f"| {p['name']} | {p['polarization'].upper()} | {e['eta']:.4f} ({db(e['eta']):.3f}) | "
                    f"{e['eta_cd_mean']:.4f} ({db(e['eta_cd_mean']):.3f}) | {p['reference_eta']:.4f} "
                    f"({db(p['reference_eta']):.3f}) | {p['reference_eta_cd_mean']:.4f} "
                    f"({db(p['reference_eta_cd_mean']):.3f}) | {p['runtime_eta']:.4f} ({db(p['runtime_eta']):.3f}) | "
                    f"{d1:+.3f} | {d2:+.3f} | {'yes' if ok else 'NO'} |")
    return rows


def table(doc):
    """Print the comparison of the committed points and their convergence figures."""
    for row in comparison_rows(doc["points"]):
        print(row)
    print("\nconvergence of the EME (CD-mean loss change, dB):")
    for p in doc["points"]:
        e = p["eme"]
        full = db(e["eta_cd_mean_modes"][str(p["modes"])])
        fewer = ", ".join(f"{m} modes {db(v) - full:+.3f}" for m, v in e["eta_cd_mean_modes"].items()
                          if int(m) < p["modes"])
        other = db(e["eta_cd_mean_transmitted_test"]) - full
        grid = [db(c["eta_cd_mean"]) - db(c["eta_cd_mean_base"]) for c in doc["convergence"]
                if c["case"] == p["case"] and c["grid"] == "coarse"]
        print(f"  {p['case']}: {p['widths']} cells, {p['modes']} modes; {fewer}; interfaces tested by the "
              f"transmitted side {other:+.3f}" + (f"; every width step doubled {grid[0]:+.3f}" if grid else ""))
    print("\nthe cascade on the reference's two-mode model, and EME / two-mode model within ±3 nm of phase matching:")
    for p in doc["points"]:
        near = [r for r in p["crossing_shape"] if abs(r["w_nm"] - 1e3 * p["w_star_um"]) <= 3.0]
        coupling = [r["coupling_eme_per_nm"] / r["coupling_ref_per_nm"] for r in near]
        splitting = [r["splitting_eme_per_um"] / r["splitting_ref_per_um"] for r in near]
        print(f"  {p['case']}: cascade {p['two_mode_model_through_the_cascade_eta']:.4f}, reference "
              f"{p['reference_eta']:.4f}; local supermode coupling {min(coupling):.2f}–{max(coupling):.2f}, "
              f"splitting {min(splitting):.3f}–{max(splitting):.3f}")
    print("\nthe two highest local modes along the narrow side of the crossing: splitting k0·(n1 − n2) /µm and "
          "rotation per nm, EME / two-mode model (u = w − w*):")
    for p in doc["points"]:
        lm, ws = p["local_modes"], 1e3 * p["w_star_um"]
        w = np.asarray(lm["width_nm"])
        cells = []
        for u in (3, 0, -3, -6, -9, -12, -15):
            k = int(np.argmin(np.abs(w - ws - u)))
            step = w[k - 1] - w[k] if k > 0 else 1.0
            cells.append(f"{w[k] - ws:+.0f}: {lm['splitting_per_um'][k]:.4f}/{lm['model_splitting_per_um'][k]:.4f}, "
                         f"{abs(lm['rotation_rad'][k]) / step:.4f}/{abs(lm['model_rotation_rad'][k]) / step:.4f}")
        print(f"  {p['case']}: " + "; ".join(cells))
    print("\nthe two-mode equations in the local-mode basis on the EME cases' cells (nominal tip), read out "
          f"{STOP_ABOVE_NM:g} nm above the narrow side's next anticrossing (1 and 6 nm: the spread); "
          "residual in the second mode (as a loss, dB):")
    print("| case | w* nm | read out at nm | EME's splitting and coupling | spread | two-mode model's | "
          "EME loss 1 − η (24 modes) | tip: first mode's power in the PWG mode |")
    print("|---|---|---|---|---|---|---|---|")
    for p in doc["points"]:
        ws = 1e3 * p["w_star_um"]
        res, stop = two_mode_residual(p["local_modes"], ws)
        spread = [two_mode_residual(p["local_modes"], ws, stop_above_nm=x)[0] for x in (1.0, 6.0)] + [res]
        model, _ = two_mode_residual(p["local_modes"], ws, model=True)
        loss = 1 - p["eme"]["eta"]
        print(f"| {p['case']} | {ws:.1f} | {'tip' if stop is None else f'{stop:g}'} | {res:.4f} ({db(1 - res):.3f}) | "
              f"{min(spread):.4f}–{max(spread):.4f} | {model:.4f} ({db(1 - model):.3f}) | {loss:.4f} ({db(1 - loss):.3f}) | "
              f"{p['local_modes']['p0'][-1] ** 2:.4f} |")
    print("\nthe runtime against the two-mode equations on each crossing's own local modes (η at the nominal "
          "tip, loss dB; the EME cases first, with the EME; then the table's other nodes, few-mode solves, "
          "25 °C unless named; the offsets on the full domain, their TE- or TM-like modes; the tip "
          f"± {TIP_STEP_NM:g} nm on the nominal cells, a CD bias of the whole profile, with their 24-mode EME, 0 s of "
          "solves; k class modes to the tip: transmission-only local-mode equations on 2 … k modes):")
    print("| case | w* nm | κ /µm | read out at nm | local modes | 2…k class modes to the tip | EME | runtime (cmt, f32) "
          "| runtime − local modes | within 0.3 dB / 20 % of the EME (where run), else of the local modes | solves s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for p in doc["points"] + doc.get("nodes", []):
        lm, run = db(p["local_mode_eta"]), db(p["runtime_eta"])
        eme = f"{db(p['eme']['eta']):.3f}" if "eme" in p else "–"
        judge = db(p["eme"]["eta"]) if "eme" in p else lm
        ok = abs(run - judge) <= CRITERION_DB or abs(run - judge) <= CRITERION_REL * judge
        stop = "tip" if p["read_out_nm"] is None else f"{p['read_out_nm']:g}"
        ks = p.get("class_modes_eta_at_tip")
        kk = f"{min(db(v) for v in ks.values()):.3f}–{max(db(v) for v in ks.values()):.3f} (k ≤ {max(map(int, ks))})" \
            if ks else "–"
        print(f"| {p['case']} | {1e3 * p['w_star_um']:.1f} | {p['kappa_per_um']:.4f} | {stop} | {lm:.3f} | {kk} | {eme} | "
              f"{run:.3f} | {run - lm:+.3f} | {'yes' if ok else 'NO'} | {p['solve_seconds']:.0f} |")
    print("\nthe nominal crossing's local modes stretched to each case's crossing (ρ = (s/κ)/(s/κ)_nominal), "
          "loss dB, CD mean:")
    print("| case | ρ | stretched nominal local modes | EME | difference |")
    print("|---|---|---|---|---|")
    for p in doc["points"]:
        q = p.get("nominal_local_modes_stretched")
        if q:
            a, b = db(q["eta_cd_mean"]), db(p["eme"]["eta_cd_mean"])
            print(f"| {p['case']} | {q['rho']:.2f} | {a:.3f} | {b:.3f} | {a - b:+.3f} |")
    return 0


def versions():
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("numpy", "scipy", "scikit-fem", "femwell", "jax"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def launch_nm(geo):
    """Width of the launch cell: the knot where the fast section ends (see the docstring)."""
    return geo["knots"][0][1] if geo["profile"] == "piecewise" and geo["knots"] else None


def case_results(meta, recs, geo, sigma):
    """EME η of one run: per CD node and their mean, launched at the knot (incident-side
    test, all modes); the transmitted-side test; fewer modes; the full taper from 300 nm
    (both tests); the tip-mode power and the largest reflection."""
    xk, wk = np.polynomial.hermite_e.hermegauss(CD_NODES)
    wk = wk / wk.sum()
    start = launch_nm(geo)
    biases = [float(sigma * x) for x in xk]

    def run(**kw):
        return [eme_eta(meta, recs, geo, b, **kw) for b in biases]

    res = run(start_nm=start)
    out = {"launch_nm": start, "cd_bias_nm": biases, "eta_at_bias": [r[0] for r in res],
           "eta": res[CD_NODES // 2][0], "eta_cd_mean": float(wk @ [r[0] for r in res]),
           "tip_mode_power": res[CD_NODES // 2][1], "reflected_max": max(r[2] for r in res)}
    alt = [r[0] for r in run(start_nm=start, tested="transmitted")]
    out.update(eta_transmitted_test=alt[CD_NODES // 2], eta_cd_mean_transmitted_test=float(wk @ alt))
    for tested in ("incident", "transmitted"):
        full = [r[0] for r in run(tested=tested)]
        out[f"full_taper_eta_cd_mean_{tested}_test"] = float(wk @ full)
    out["eta_cd_mean_modes"] = {str(m): float(wk @ [r[0] for r in run(start_nm=start, modes=m)])
                                for m in sorted({2, 8, 16, meta["modes"]}) if m <= meta["modes"]}
    return out


def crossing_shape(meta, recs, data, case, ref, span_nm=6.0):
    """Near phase matching, per interface: the splitting of the two highest EME modes and
    their local coupling ⟨1|∂_w 0⟩ (antisymmetric part of O_LR[0:2, 0:2] per nm), against
    the two-mode model of the coupled-mode reference (its δ(w), κ: splitting
    sqrt(δ² + 4κ²), coupling κ·δ'/(δ² + 4κ²))."""
    import coupler_reference as cr

    c = cr.data_crossing(data, case)
    delta_u = cr.case_delta(data, case["polarization"], c, ref["slope_per_um2"])[0]
    k0 = 2 * math.pi / meta["wavelength_um"]
    kap, w_star = ref["kappa_per_um"], ref["w_star_um"]
    ws = meta["widths_nm"]
    rows = []
    for i in range(1, len(ws)):
        wm = 0.5 * (ws[i - 1] + ws[i])
        if abs(wm - 1e3 * w_star) > span_nm:
            continue
        o = np.asarray(recs[i]["o_prev_this"])
        h = 1e-4
        u = 1e-3 * wm - w_star
        d = float(delta_u(u))
        dd = (float(delta_u(u + h)) - float(delta_u(u - h))) / (2 * h)
        split = 0.5 * k0 * (recs[i - 1]["n_eff"][0] - recs[i - 1]["n_eff"][1] + recs[i]["n_eff"][0] - recs[i]["n_eff"][1])
        rows.append({"w_nm": wm, "splitting_eme_per_um": split, "splitting_ref_per_um": math.sqrt(d * d + 4 * kap * kap),
                     "coupling_eme_per_nm": float(0.5 * abs(o[0, 1] - o[1, 0]) / (ws[i - 1] - ws[i])),
                     "coupling_ref_per_nm": 1e-3 * kap * abs(dd) / (d * d + 4 * kap * kap)})
    return rows


def class_modes(meta, rec):
    """Indices of a cell's modes in the launched polarisation's class, highest index first:
    all of them on the half domain (its symmetry plane selects the class); on the full domain
    (a lateral offset) the TE-like or TM-like ones, by the share of |E_x|² in the transverse
    field (:func:`te_fraction`). A mode the eigensolver returned twice (the same index to
    1e-7, seen in 3 of ~1800 cells) counts once."""
    te = meta["polarization"] == "te"
    out = []
    for j, n in enumerate(rec["n_eff"]):
        if (meta["offset_um"] == 0.0 or (rec["te_fraction"][j] > 0.5) == te) and \
                all(abs(n - rec["n_eff"][i]) >= 1e-7 for i in out):
            out.append(j)
    return out


def local_modes(meta, recs, geo, data, case, ref, bias_nm=0.0):
    """The two highest local modes of every cell along the nominal profile (launched at the
    knot), as the two-mode equations in the local-mode basis need them: cell width and length,
    the splitting k0·(n1 − n2) and the gap to the third mode k0·(n2 − n3) (1/µm); across the
    interface before each cell the rotation φ of modes 1 and 2 into each other — the rotation
    factor of their overlap block O (prev × this; O = R(−φ)·S with S symmetric, so
    tan φ = (O10 − O01)/(O00 + O11)), with the signs of the modes made continuous along the
    taper (the solver fixes each mode's sign by its largest component, so a mode may flip
    between cells), the transmitted amplitudes being ≈ Oᵀa ∝ R(φ)a — and each
    mode's projection on the isolated PWG mode in the same signs; the raw 2 × 2 overlap
    blocks; and the coupled-mode reference's two-mode model on the same cells (splitting
    sqrt(δ² + 4κ²), rotation Δθ, tan 2θ = 2κ/δ). ``bias_nm`` widens the whole profile (a CD
    bias, the tip included; launched at the same knot width, as :func:`eme_eta`); a taper
    narrower than the narrowest solved width ends in that cell."""
    import coupler_reference as cr

    c = cr.data_crossing(data, case)
    delta_u = cr.case_delta(data, case["polarization"], c, ref["slope_per_um2"])[0]
    k0 = 2 * math.pi / meta["wavelength_um"]
    kap, w_star = ref["kappa_per_um"], ref["w_star_um"]
    ws = meta["widths_nm"]
    lengths, used = launched_cells(geo, ws, bias_nm, launch_nm(geo))

    def model(w):
        d = float(delta_u(1e-3 * w - w_star))
        return 0.5 * math.atan2(2 * kap, d), math.sqrt(d * d + 4 * kap * kap)

    out = {k: [] for k in ("width_nm", "length_um", "splitting_per_um", "third_gap_per_um", "rotation_rad",
                           "p0", "p1", "overlap_block", "projection_raw", "model_splitting_per_um",
                           "model_rotation_rad")}
    sign = np.ones(2)  # the signs that make the previous cell's two modes continuous
    for i in used:
        mine = class_modes(meta, recs[i])
        if i > used[0]:
            raw = np.asarray(recs[i]["o_prev_this"])[np.ix_(class_modes(meta, recs[i - 1])[:2], mine[:2])]
        else:
            raw = np.eye(2)
        o = raw * sign[:, None]
        sign = np.where(np.diag(o) < 0, -1.0, 1.0)
        o = o * sign[None, :]
        n = [recs[i]["n_eff"][j] for j in mine]
        proj = 0.5 * (np.asarray(recs[i]["o_this_pwg"])[mine[:2]] + np.asarray(recs[i]["o_pwg_this"])[mine[:2]])
        out["width_nm"].append(ws[i])
        out["length_um"].append(float(lengths[i]))
        out["splitting_per_um"].append(k0 * (n[0] - n[1]))
        out["third_gap_per_um"].append(k0 * (n[1] - n[2]))
        out["rotation_rad"].append(float(math.atan2(o[1, 0] - o[0, 1], o[0, 0] + o[1, 1])))
        out["p0"].append(float(sign[0] * proj[0]))
        out["p1"].append(float(sign[1] * proj[1]))
        out["overlap_block"].append(raw.tolist())
        out["projection_raw"].append(proj.tolist())
        out["model_splitting_per_um"].append(model(ws[i])[1])
        out["model_rotation_rad"].append(model(ws[i])[0] - model(ws[i - 1])[0] if i > used[0] else 0.0)
    return out


def class_mode_eta(meta, recs, geo, k, bias_nm=0.0):
    """η at the tip of the local-mode equations on the ``k`` highest modes of the launched
    class (:func:`class_modes`): at each interface the polar factor of the k × k overlap
    block (transmission only, no reflection), in each cell the modes' phases; launched in the
    first mode at the knot, projected on the isolated PWG mode at the tip. With k = 2 it is
    the two-mode equations read out at the tip; k = 3, 4 test what the two-mode picture
    leaves out (the third mode's coupling)."""
    ws = meta["widths_nm"]
    k0 = 2 * math.pi / meta["wavelength_um"]
    lengths, used = launched_cells(geo, ws, bias_nm, launch_nm(geo))
    a = np.zeros(k, complex)
    a[0] = 1.0
    for i in used:
        mine = class_modes(meta, recs[i])[:k]
        if i > used[0]:
            o = np.asarray(recs[i]["o_prev_this"])[np.ix_(class_modes(meta, recs[i - 1])[:k], mine)]
            left, _, right = np.linalg.svd(o.T)
            a = (left @ right) @ a
        a = a * np.exp(-1j * k0 * np.asarray([recs[i]["n_eff"][j] for j in mine]) * lengths[i])
    last = recs[used[-1]]
    mine = class_modes(meta, last)[:k]
    proj = 0.5 * (np.asarray(last["o_this_pwg"])[mine] + np.asarray(last["o_pwg_this"])[mine])
    return float(abs(proj @ a) ** 2)


def class_mode_etas(meta, recs, geo, bias_nm=0.0, k_most=4):
    """:func:`class_mode_eta` for k = 2 … ``k_most`` (or the fewest class modes of any cell),
    as {k: η}."""
    ws = meta["widths_nm"]
    k_max = min([k_most] + [len(class_modes(meta, r)) for r in recs if r["width_nm"] <= (launch_nm(geo) or ws[0]) + 1e-9])
    return {str(k): class_mode_eta(meta, recs, geo, k, bias_nm) for k in range(2, k_max + 1)}


#: The tip widths checked on the nominal cases' cells: the configured tip ± this (nm).
TIP_STEP_NM = 20.0


def read_out_width(local, w_star_nm, stop_above_nm=STOP_ABOVE_NM):
    """Where the two-mode equations are read out: ``stop_above_nm`` above the narrow side's
    next anticrossing (the smallest gap k0·(n2 − n3) below w*, where the Si-like mode hands
    over to the PWG's higher-order mode), or None (the tip) when that gap still falls at the
    tip or nothing of the taper is narrower than w*."""
    ws = np.asarray(local["width_nm"])
    narrow = np.nonzero(ws < w_star_nm)[0]
    if not len(narrow):
        return None
    k = narrow[np.argmin(np.asarray(local["third_gap_per_um"])[narrow])]
    return None if k == len(ws) - 1 else float(ws[k] + stop_above_nm)


def two_mode_amplitudes(local, stop_nm, *, model=False):
    """The amplitudes (a1, a2) of the two-mode equations in the local-mode basis — a ← R(φ)·a,
    R = [[cos φ, sin φ], [−sin φ, cos φ]], at each interface, then a ← diag(e^{∓iΔ·L/2})·a
    in the cell — launched in the first mode, up to the width ``stop_nm`` (None: the tip),
    with the EME's splitting and rotation (``model``: the coupled-mode reference's)."""
    split = local["model_splitting_per_um" if model else "splitting_per_um"]
    rot = local["model_rotation_rad" if model else "rotation_rad"]
    a = np.array([1.0, 0.0], complex)
    for w, length, d, phi in zip(local["width_nm"], local["length_um"], split, rot):
        if stop_nm is not None and w < stop_nm - 1e-9:
            break
        a = np.array([[math.cos(phi), math.sin(phi)], [-math.sin(phi), math.cos(phi)]]) @ a
        a = a * np.exp(np.array([-0.5j, 0.5j]) * d * length)
    return a


def two_mode_residual(local, w_star_nm, *, model=False, stop_above_nm=STOP_ABOVE_NM):
    """(power left in the second local mode at the read-out width, that width nm; None: the
    tip) of :func:`two_mode_amplitudes`: past the next anticrossing that power no longer
    returns to the PWG fundamental."""
    stop = read_out_width(local, w_star_nm, stop_above_nm)
    return float(abs(two_mode_amplitudes(local, stop, model=model)[1]) ** 2), stop


def local_mode_eta(local, w_star_nm, *, stop_above_nm=STOP_ABOVE_NM):
    """η of the two-mode equations in the local-mode basis on a case's own local modes: the
    first mode's power at the read-out width times its power in the isolated PWG mode at the
    tip (P1²; 0.997–0.9999 here), or, where the tip comes first, |P1·a1 + P2·a2|² at the
    tip. Returns (η, read-out width nm or None for the tip)."""
    stop = read_out_width(local, w_star_nm, stop_above_nm)
    a = two_mode_amplitudes(local, stop)
    if stop is None:
        return float(abs(local["p0"][-1] * a[0] + local["p1"][-1] * a[1]) ** 2), None
    return float(abs(a[0]) ** 2 * local["p0"][-1] ** 2), stop


def local_mode_tables(local, w_star_nm, kappa, slope):
    """A crossing's local modes (:func:`local_modes`) as functions of u = w − w* (nm,
    ascending): the splitting (1/µm), the rotation density of modes 1 and 2 (rad/nm, at the
    interface midpoints), the projections of both modes on the isolated PWG mode, the
    read-out u (None: the tip), and the crossing's κ and s."""
    ws = np.asarray(local["width_nm"])
    u = ws - w_star_nm
    rot = np.asarray(local["rotation_rad"])[1:]
    stop = read_out_width(local, w_star_nm)
    return {"u": u[::-1], "splitting": np.asarray(local["splitting_per_um"])[::-1],
            "u_mid": (0.5 * (u[1:] + u[:-1]))[::-1], "density": (rot / (ws[:-1] - ws[1:]))[::-1],
            "p0": np.asarray(local["p0"])[::-1], "p1": np.asarray(local["p1"])[::-1],
            "u_stop": None if stop is None else stop - w_star_nm, "kappa": kappa, "slope": slope}


def scaled_local_mode_eta(tab, geo, *, kappa, w_star_nm, slope, bias_nm=0.0, start_nm=None, steps=60001):
    """η of the two-mode equations in the local-mode basis along the taper profile, from a
    nominal crossing's tables ``tab`` stretched to another crossing (κ, w*, s): the two-mode
    picture depends on δ/2κ alone, so the crossing at u behaves as the nominal one at ρ·u,
    ρ = (s/κ)/(s_nom/κ_nom), with the splitting scaled by κ/κ_nom. Read out at the stretched
    read-out width (power in the first mode × its projection at the tip), or at the tip when
    it comes first (|P1·a1 + P2·a2|²)."""
    rho = (slope / kappa) / (tab["slope"] / tab["kappa"])
    z = np.linspace(0.0, geo["length_um"], steps)
    w = profile_nm(geo)(z) + bias_nm
    if start_nm is not None:
        keep = w <= start_nm + 1e-9
        z, w = z[keep], w[keep]
    ur = rho * (w - w_star_nm)
    a = np.array([1.0, 0.0], complex)
    for j in range(1, len(z)):
        if tab["u_stop"] is not None and ur[j] < tab["u_stop"]:
            return float(abs(a[0]) ** 2 * np.interp(ur[-1], tab["u"], tab["p0"]) ** 2), "read-out width"
        um = 0.5 * (ur[j - 1] + ur[j])
        phi = np.interp(um, tab["u_mid"], tab["density"], left=0.0, right=0.0) * (ur[j - 1] - ur[j])
        c, sn = math.cos(phi), math.sin(phi)
        a = np.array([c * a[0] + sn * a[1], -sn * a[0] + c * a[1]])
        d = kappa / tab["kappa"] * np.interp(um, tab["u"], tab["splitting"])
        a = a * np.exp(np.array([-0.5j, 0.5j]) * d * (z[j] - z[j - 1]))
    p0, p1 = (np.interp(ur[-1], tab["u"], tab[k]) for k in ("p0", "p1"))
    return float(abs(p0 * a[0] + p1 * a[1]) ** 2), "tip"


def two_mode_cascade_check(meta, geo, data, case, ref):
    """The cascade itself on the coupled-mode reference's two-mode model: cells of the same
    widths whose modes are the model's local supermodes (mixing angle θ, tan 2θ = 2κ/δ,
    splitting sqrt(δ² + 4κ²)), so the overlaps are rotations by Δθ; launched at the knot in
    the upper supermode, η its PWG component at the tip. Against the reference's own
    integration of the same model at the nominal tip, this isolates the cascade (staircase,
    cell lengths, phases) from the cross-section data."""
    import coupler_reference as cr

    c = cr.data_crossing(data, case)
    delta_u = cr.case_delta(data, case["polarization"], c, ref["slope_per_um2"])[0]
    k0 = 2 * math.pi / meta["wavelength_um"]
    kap, w_star = ref["kappa_per_um"], ref["w_star_um"]
    recs, prev = [], None
    for w in meta["widths_nm"]:
        d = float(delta_u(1e-3 * w - w_star))
        th = 0.5 * math.atan2(2 * kap, d)
        vec = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])  # columns: upper, lower
        half = 0.5 * math.sqrt(d * d + 4 * kap * kap) / k0
        r = {"n_eff": [1.55 + half, 1.55 - half], "o_this_pwg": vec[1].tolist(), "o_pwg_this": vec[1].tolist()}
        if prev is not None:
            o = prev.T @ vec
            r["o_prev_this"], r["o_this_prev"] = o.tolist(), o.T.tolist()
        recs.append(r)
        prev = vec
    return eme_eta(dict(meta, modes=2), recs, geo, 0.0, start_nm=launch_nm(geo))[0]


def node_row(name, meta, recs, geo, data, case, solve_seconds, bias_nm=0.0, eme=None):
    """One row of the nodes' table: the case's own local modes (:func:`local_modes`, a CD bias
    ``bias_nm``), their η, the k-mode check, the runtime and the coupled-mode reference."""
    import coupler_reference as cr

    ref = cr.reference_eta(data, case, geo)
    local = local_modes(meta, recs, geo, data, case, ref, bias_nm=bias_nm)
    eta, stop = local_mode_eta(local, 1e3 * ref["w_star_um"])
    return {"case": name, **case, "geometry": geo, "modes": meta["modes"], "widths": len(meta["widths_nm"]),
            "solve_seconds": solve_seconds, "kappa_per_um": ref["kappa_per_um"], "w_star_um": ref["w_star_um"],
            "slope_per_um2": ref["slope_per_um2"], "reference_source": ref["source"], "reference_eta": ref["eta"],
            "runtime_eta": cr.runtime_eta(case, geo), "local_mode_eta": eta, "read_out_nm": stop,
            **({"eme": eme} if eme is not None else {}),
            "class_modes_eta_at_tip": class_mode_etas(meta, recs, geo, bias_nm=bias_nm), "local_modes": local}


def report(args):
    import jax

    jax.config.update("jax_enable_x64", True)
    import coupler_reference as cr
    from yieldmc.physics import supermodes

    t0 = time.perf_counter()
    data = supermodes._data()
    geo = cr.configured()
    sigma = cr.CD_SIGMA_NM
    runs = {}
    for f in sorted(Path(args.cache).glob("*/meta.json")):
        meta, recs = load_case(f.parent)
        runs[f.parent.name] = (meta, recs)
    base = {m["case"]: (m, r) for m, r in runs.values() if m["grid_name"] == "base" and m["mesh_name"] == "base"
            and m["window_um"] == WINDOW_UM}
    points, conv = [], []
    for key in [k for k in CASES if k in base]:
        meta, recs = base[key]
        case = dict(CASES[key], temperature_c=case_temperature_c(CASES[key]), tip_nm=geo["tip_nm"])
        eme = case_results(meta, recs, geo, sigma)
        ref = cr.reference_eta(data, case, geo)
        ref_at = [cr.reference_eta(data, dict(case, tip_nm=geo["tip_nm"] + b), geo)["eta"] for b in eme["cd_bias_nm"]]
        run = cr.runtime_eta(case, geo)
        shape = crossing_shape(meta, recs, data, case, ref)
        check = two_mode_cascade_check(meta, geo, data, case, ref)
        local = local_modes(meta, recs, geo, data, case, ref)
        points.append({"case": key, **case, "geometry": geo, "eme": eme, "modes": meta["modes"],
                       "grid": meta["grid"], "widths": len(meta["widths_nm"]), "dofs_max": max(r["dofs"] for r in recs),
                       "solve_seconds": round(sum(r["seconds"] for r in recs), 1),
                       "launch_strip_power_in_mode1": recs[0]["launch_strip_power_in_modes"][0] ** 2,
                       "reference_eta": ref["eta"], "reference_eta_cd_mean": ref["eta_cd_mean"],
                       "reference_eta_at_bias": ref_at, "reference_source": ref["source"],
                       "kappa_per_um": ref["kappa_per_um"], "w_star_um": ref["w_star_um"],
                       "slope_per_um2": ref["slope_per_um2"], "runtime_eta": run,
                       "runtime_within_criterion": bool(within(db(run), db(eme["eta_cd_mean"])) or within(db(run), db(eme["eta"]))),
                       "crossing_shape": shape, "two_mode_model_through_the_cascade_eta": check,
                       "local_modes": local})
    # the nodes' own local modes (few-mode solves, ``--nodes`` cache) against the runtime
    nodes = []
    if not Path(args.nodes).is_dir():
        print(f"report: no node solves in {args.nodes} (--nodes): the nodes' rows are left out", file=sys.stderr)
    for f in sorted(Path(args.nodes).glob("*/meta.json")):
        meta, recs = load_case(f.parent)
        if meta["grid_name"] != "base" or meta["mesh_name"] != "base" or meta["window_um"] != WINDOW_UM:
            continue
        case = dict(CASES[meta["case"]], temperature_c=case_temperature_c(CASES[meta["case"]]), tip_nm=geo["tip_nm"])
        nodes.append(node_row(meta["case"], meta, recs, geo, data, case, round(sum(r["seconds"] for r in recs), 1)))
    # the tip ±TIP_STEP_NM (a CD bias of the whole profile) on the nominal cases' own cells
    for key in ("te_nominal", "tm_nominal"):
        if key not in base:
            continue
        meta, recs = base[key]
        for d in (-TIP_STEP_NM, TIP_STEP_NM):
            case = dict(CASES[key], name=f"tip {geo['tip_nm'] + d:g} nm", temperature_c=25.0,
                        tip_nm=geo["tip_nm"] + d)
            nodes.append(node_row(f"{key[:2]}_tip{geo['tip_nm'] + d:g}", meta, recs, geo, data, case, 0.0,
                                  bias_nm=d, eme={"eta": eme_eta(meta, recs, geo, d, start_nm=launch_nm(geo))[0]}))
    for p in points:
        p["local_mode_eta"], p["read_out_nm"] = local_mode_eta(p["local_modes"], 1e3 * p["w_star_um"])
    # the nominal crossing's local modes stretched to every case (the nominal's own: ρ = 1)
    xk, wk = np.polynomial.hermite_e.hermegauss(CD_NODES)
    wk = wk / wk.sum()
    tabs = {p["polarization"]: local_mode_tables(p["local_modes"], 1e3 * p["w_star_um"], p["kappa_per_um"],
                                                 p["slope_per_um2"])
            for p in points if p["name"] == "nominal"}
    for p in points:
        if p["polarization"] not in tabs:
            continue
        tab = tabs[p["polarization"]]
        kw = {"kappa": p["kappa_per_um"], "w_star_nm": 1e3 * p["w_star_um"], "slope": p["slope_per_um2"],
              "start_nm": launch_nm(geo)}
        eta, read = scaled_local_mode_eta(tab, geo, **kw)
        at = [scaled_local_mode_eta(tab, geo, bias_nm=float(sigma * x), **kw)[0] for x in xk]
        p["nominal_local_modes_stretched"] = {
            "rho": (kw["slope"] / kw["kappa"]) / (tab["slope"] / tab["kappa"]), "eta": eta, "read_out": read,
            "eta_cd_mean": float(wk @ at)}
    for name, (meta, recs) in sorted(runs.items()):
        if meta["case"] not in base or base[meta["case"]][0] is meta:
            continue
        bm, br = base[meta["case"]]
        m = min(meta["modes"], bm["modes"])
        this = case_results(meta, recs, geo, sigma)
        ref_run = case_results(bm, br, geo, sigma)
        conv.append({"case": meta["case"], "run": name, "grid": meta["grid_name"], "mesh": meta["mesh_name"],
                     "window_um": meta["window_um"], "modes": m, "widths": len(meta["widths_nm"]),
                     "eta_cd_mean": this["eta_cd_mean_modes"][str(m)], "eta_cd_mean_base": ref_run["eta_cd_mean_modes"][str(m)],
                     "eta_cd_mean_transmitted_test": this["eta_cd_mean_transmitted_test"],
                     "eta_cd_mean_transmitted_test_base": ref_run["eta_cd_mean_transmitted_test"]})
    print(f"geometry: {geo['profile']} taper, L = {geo['length_um']:g} µm, {geo['start_nm']:g} → {geo['tip_nm']:g} nm, "
          f"knots {geo['knots']}; CD scatter σ = {sigma:g} nm ({CD_NODES}-point Gauss–Hermite)\n")
    for row in comparison_rows(points):
        print(row)
    print("\nη at the CD nodes (width bias of the whole profile, nm): EME / coupled-mode reference")
    for p in points:
        e = p["eme"]
        print(f"  {p['polarization'].upper()} {p['name']}: " + ", ".join(
            f"{b:+.2f}: {a:.4f}/{r:.4f}" for b, a, r in zip(e["cd_bias_nm"], e["eta_at_bias"], p["reference_eta_at_bias"])))
    print("\nconvergence (CD-mean η; base: launched at the knot, incident-side test, all modes, base grid):")
    print("| case | check | modes | cells | η | η base | Δ dB |")
    print("|---|---|---|---|---|---|---|")
    for p in points:
        e = p["eme"]
        full = e["eta_cd_mean_modes"][str(p["modes"])]
        for m, v in e["eta_cd_mean_modes"].items():
            if int(m) < p["modes"]:
                print(f"| {p['case']} | modes {m} of {p['modes']} | {m} | {p['widths']} | {v:.4f} | {full:.4f} | "
                      f"{db(v) - db(full):+.3f} |")
        v = e["eta_cd_mean_transmitted_test"]
        print(f"| {p['case']} | interfaces tested by the transmitted side's modes | {p['modes']} | {p['widths']} | "
              f"{v:.4f} | {full:.4f} | {db(v) - db(full):+.3f} |")
        for tested in ("incident", "transmitted"):
            v = e[f"full_taper_eta_cd_mean_{tested}_test"]
            print(f"| {p['case']} | full taper from {geo['start_nm']:g} nm, {tested}-side test | {p['modes']} | "
                  f"{p['widths']} | {v:.4f} | {full:.4f} | {db(v) - db(full):+.3f} |")
        v = 0.5 * (e["full_taper_eta_cd_mean_incident_test"] + e["full_taper_eta_cd_mean_transmitted_test"])
        print(f"| {p['case']} | full taper, mean of the two tests | {p['modes']} | {p['widths']} | {v:.4f} | "
              f"{full:.4f} | {db(v) - db(full):+.3f} |")
    for c in conv:
        label = (f"grid {c['grid']}" if c["grid"] != "base" else "") + (f" mesh {c['mesh']}" if c["mesh"] != "base" else "") \
            + (f" window {c['window_um']:g} µm" if c["window_um"] != WINDOW_UM else "")
        print(f"| {c['case']} | {label.strip()} | {c['modes']} | {c['widths']} | {c['eta_cd_mean']:.4f} | "
              f"{c['eta_cd_mean_base']:.4f} | {db(c['eta_cd_mean']) - db(c['eta_cd_mean_base']):+.3f} |")
        a, b = c["eta_cd_mean_transmitted_test"], c["eta_cd_mean_transmitted_test_base"]
        print(f"| {c['case']} | {label.strip()}, transmitted-side test | {c['modes']} | {c['widths']} | {a:.4f} | "
              f"{b:.4f} | {db(a) - db(b):+.3f} |")
        if c["grid"] == "coarse":
            # the staircase error falls with the step: Richardson to zero step from the two
            # grids (every step doubled), for either interface test
            for test, key in (("incident", "eta_cd_mean"), ("transmitted", "eta_cd_mean_transmitted_test")):
                x = 2 * c[f"{key}_base"] - c[key]
                c[f"{key}_zero_step"] = x
                print(f"| {c['case']} | zero-step extrapolation (2·base − coarse), {test}-side test | {c['modes']} | "
                      f"– | {x:.4f} | {c['eta_cd_mean_base']:.4f} | {db(x) - db(c['eta_cd_mean_base']):+.3f} |")
    print("\nthe cascade on the reference's two-mode model (synthetic cells, same widths) against the "
          "reference's integration, nominal tip:")
    for p in points:
        print(f"  {p['case']}: cascade {p['two_mode_model_through_the_cascade_eta']:.4f}, reference "
              f"{p['reference_eta']:.4f}")
    print("\ncrossing shape: splitting of the two highest modes /µm and their local coupling per nm, "
          "EME against the coupled-mode reference's two-mode model:")
    for p in points:
        print(f"  {p['case']} (w* = {1e3 * p['w_star_um']:.1f} nm, κ = {p['kappa_per_um']:.4f} /µm):")
        for r in p["crossing_shape"]:
            print(f"    w {r['w_nm']:6.1f} nm: splitting {r['splitting_eme_per_um']:.4f} / {r['splitting_ref_per_um']:.4f}, "
                  f"coupling {r['coupling_eme_per_nm']:.4f} / {r['coupling_ref_per_nm']:.4f}")
    mesh_checks = [json.loads(f.read_text()) for f in sorted(Path(args.cache).glob("meshcheck-*.json"))]
    if mesh_checks:
        print("\nmesh and window at phase matching (cells w and w − 1 nm):")
        print("| case | w nm | mesh | window µm | unknowns | n1 | n2 | splitting /µm | coupling per 1 nm step |")
        print("|---|---|---|---|---|---|---|---|---|")
        for mc in mesh_checks:
            for r in mc["rows"]:
                print(f"| {mc['case']} | {mc['widths_nm'][0]} | {r['check']} | {r['window_um']:g} | {r['dofs']} | "
                      f"{r['n1']:.7f} | {r['n2']:.7f} | {r['splitting_per_um']:.5f} | {r['coupling_per_step']:.5f} |")
    for p in points:
        print(f"{p['case']}: {p['widths']} cells, {p['modes']} modes, ≤ {p['dofs_max']} unknowns per cell, "
              f"launch = strip mode to {p['launch_strip_power_in_mode1']:.6f}, largest reflection "
              f"{p['eme']['reflected_max']:.1e}, power left in the tip cell's first (PWG-like) mode "
              f"{p['eme']['tip_mode_power']:.4f}, solves {p['solve_seconds']:.0f} s")
    if args.write:
        doc = {"description": __doc__.splitlines()[0],
               "criterion_db": CRITERION_DB, "criterion_rel": CRITERION_REL,
               "eta_definition": "power transmitted into the isolated PWG fundamental mode of the launched "
                                 "polarisation at the Si tip (the strip ends, the PWG continues): |b(L)|² of the "
                                 "coupled-mode reference; eta_cd_mean: mean over the channel CD scatter "
                                 "(uniform width bias of the profile, 5-point Gauss–Hermite)",
               "method": {"modes": "full-vector FEM modes per cell (scikit-fem, ElementTriN2 × ElementTriP2, "
                                   "femwell's formulation; scripts/si_pwg_supermodes.py cross-section)",
                          "interfaces": "mode matching, E_t/H_t continuity tested by the incident side's modes",
                          "cascade": "Redheffer star products of interface and propagation S-matrices",
                          "mesh": MESH, "window_um": WINDOW_UM, "grid": GRID, "coarse_grid": COARSE_GRID},
               "provenance": {"commands": [
                                  "nice -n 10 python scripts/eme_reference.py solve --case " + m["case"]
                                  + ("" if m["grid_name"] == "base" else f" --grid {m['grid_name']}")
                                  + ("" if m["mesh_name"] == "base" else f" --mesh {m['mesh_name']}")
                                  + ("" if m["window_um"] == WINDOW_UM else f" --window {m['window_um']:g}")
                                  + ("" if m["modes"] == MODES else f" --modes {m['modes']}")
                                  for m, _ in runs.values()]
                              + [f"nice -n 10 python scripts/eme_reference.py meshcheck --case {mc['case']}"
                                 for mc in mesh_checks]
                              + [f"nice -n 15 python scripts/eme_reference.py solve --case {q['case']} --modes "
                                 f"{q['modes']} --cache {args.nodes}" for q in nodes if q["case"] in CASES]
                              + ["python scripts/eme_reference.py report --write"],
                              "solve_seconds": {name: round(sum(r["seconds"] for r in recs), 1)
                                                for name, (_, recs) in runs.items()},
                              "python_environments": "solve: scikit-fem (+ jax for the material indices); "
                                                     "report: the project's environment (jax, yieldmc)",
                              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared)",
                              "versions": {"report": versions(),
                                           "solve": [json.loads(v) for v in sorted(
                                               {json.dumps(m.get("versions"), sort_keys=True) for m, _ in runs.values()})]},
                              "report_seconds": round(time.perf_counter() - t0, 1)},
               "points": points, "nodes": nodes, "convergence": conv, "mesh_check": mesh_checks}
        text = json.dumps(doc, indent=1, ensure_ascii=False)
        # lists of numbers on one line each (the per-cell data)
        text = re.sub(r"\[\s*(-?[0-9][-0-9.eE+]*(?:,\s*-?[0-9][-0-9.eE+]*)*)\s*\]",
                      lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text)
        OUT.write_text(text + "\n")
        print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
