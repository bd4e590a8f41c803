"""Effective-index table of the Si strip of the PWG adiabatic coupler (runtime data).

    python scripts/si_strip_modes.py [--jobs 2] [--widths 24] [--thickness-um 0.22]
        [--no-fd-check] [--quick] [--cache-dir DIR] [--out-json yieldmc/data/si_strip_modes.json]
        [--out-check tests/data/si_strip_check.csv]

Needs scikit-fem (``pip install scikit-fem``; FEM engine) and EMpy (FD cross-check).

Cross-section: Si strip (thickness t, width w) on a semi-infinite SiO₂ BOX, covered above
and at the sides by the PWG cladding polymer (the top oxide is removed over the taper).
Material indices come from ``yieldmc.physics.materials`` (Si: fit to Li 1980 +
Cocorullo dn/dT; BOX: Malitson; polymer: the PWG cladding 1.55 at 1.31 µm with Cauchy
dispersion), at 25 °C for the table.

Engine: full-vector finite elements (scikit-fem; 2nd-order Nédélec elements for E_t and
2nd-order Lagrange for E_z, the formulation used by femwell), half domain x ≥ 0 with
the symmetry plane as PEC (TE, Ex-major) or PMC (TM, Ey-major), PEC at the outer window.
Tensor triangle mesh with nodes on the interfaces, 6 nm at the strip's edges growing ×1.3
to 30 nm inside the strip and to 0.3–1.5 µm (a quarter decay length) outside. Windows: 8 decay lengths of the mode in
the polymer (4–40 µm) sideways and above, max(2 µm, 6 decay lengths) into the BOX.

Why FEM: EMpy's FD solver (Fallahkhair, Li & Murphy, J. Lightwave Technol. 26:1423
(2008)) converges only as ~h^0.8 here (the strip's corners; slabs alone converge as h²),
leaving ~5e-3 in n_eff at h = 5 nm; on graded meshes it is only first order in the
grading. FEM with corner refinement converges to ~1e-5 (the "convergence" rows of the
JSON: FEM at the table mesh, a 2× finer one, a 1.5× larger window; EMpy FD at h, h/2,
h/4 and its Richardson value for comparison).

Runtime: ~35 min on 2 shared CPU cores (--jobs 2; the committed table: 2067 s). With
--cache-dir, finished nodes and check/convergence tasks are kept and a rerun resumes.

Sensitivities ∂n_eff/∂n_si, ∂n_eff/∂n_box, ∂n_eff/∂n_top: exact derivatives of the
discrete eigenvalue (A is linear in ε per region; left and right eigenvectors), equal
to central differences of full solves with each index ±1e-3 ("sensitivity_check").

Never imported by ``yieldmc``; ``yieldmc/physics/silicon.py`` reads the JSON.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import argparse  # noqa: E402
import csv  # noqa: E402
import datetime  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import multiprocessing  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402
from scipy.sparse import identity, linalg  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WAVELENGTHS_UM = (1.26, 1.31, 1.36, 1.50, 1.55, 1.60)
POLARIZATIONS = ("te", "tm")
TABLE_TEMPERATURE_C = 25.0
CHECK_TEMPERATURES_C = (-40.0, 125.0)
W_MAX_UM = 0.5
CUTOFF_MARGIN = 1e-3  # table starts where n_eff = n_top + CUTOFF_MARGIN
FIRST_STEP_UM = 0.005  # width step at the near-cutoff end of the table
DELTA_N = 1e-3  # material-index step for ∂A/∂n_i
#: Richardson order of the FD cross-check (fitted to FEM in a pilot; refitted in the JSON).
DEFAULT_ORDER = 0.78
#: Rows of the convergence study (pol, λ µm, w µm).
CALIBRATION_ROWS = (
    ("te", 1.31, 0.17), ("te", 1.31, 0.30), ("te", 1.31, 0.45), ("tm", 1.31, 0.22),
    ("tm", 1.31, 0.30), ("te", 1.55, 0.20), ("tm", 1.55, 0.40),
)


# --- materials ---------------------------------------------------------------------------
def material_indices(wavelength_um: float, temperature_c: float) -> tuple[float, float, float]:
    """(n_si, n_box, n_top) from yieldmc.physics.materials, float64."""
    import jax

    jax.config.update("jax_enable_x64", True)
    from yieldmc.physics import materials as m

    lam = np.float64(wavelength_um)
    temp = np.float64(temperature_c)
    return (
        float(m.silicon_index(wavelength_um=lam, temperature_c=temp)),
        float(m.silica_index(wavelength_um=lam, temperature_c=temp)),
        float(m.pwg_cladding_index(wavelength_um=lam, temperature_c=temp)),
    )


# --- mesh --------------------------------------------------------------------------------
def _uniform(a: float, b: float, step: float) -> np.ndarray:
    n = max(1, math.ceil((b - a) / step - 1e-9))
    return np.linspace(a, b, n + 1)


def _graded(start: float, step: float, end: float, ratio: float, hmax: float) -> list[float]:
    """Nodes after ``start`` up to ``end`` (inclusive), steps growing by ``ratio`` ≤ hmax."""
    sign = 1.0 if end > start else -1.0
    pts, x, s = [], start, step * ratio
    while sign * (end - x) > 1e-12:
        x += sign * s
        pts.append(x)
        s = min(s * ratio, hmax)
    pts[-1] = end
    if len(pts) > 1 and abs(pts[-1] - pts[-2]) < 0.3 * min(s, hmax):
        pts.pop(-2)
    return pts


def make_mesh(*, width_um, thickness_um, h_um, cells_half_width, window_x_um, window_top_um,
              window_box_um, hmax_um, ratio=1.1):
    """Tensor mesh (x ≥ 0 half domain). Interfaces lie on nodes.

    x: a fixed number of cells over the half width (so n_eff(w) on a mesh is smooth in w),
    the same spacing for ceil(0.25/h) cells beyond the sidewall, then graded. y: spacing
    ≤ h through the strip and 0.3 µm above / 0.2 µm below, then graded.
    """
    hx = 0.5 * width_um / cells_half_width
    n_margin = math.ceil(0.25 / h_um)
    x = list(np.linspace(0.0, 0.5 * width_um, cells_half_width + 1))
    x += list(0.5 * width_um + hx * np.arange(1, n_margin + 1))
    x += _graded(x[-1], hx, 0.5 * width_um + window_x_um, ratio, hmax_um)
    core = _uniform(0.0, thickness_um, h_um)
    hy = core[1] - core[0]
    top = list(thickness_um + hy * np.arange(1, math.ceil(0.3 / hy) + 1))
    bot = list(-hy * np.arange(1, math.ceil(0.2 / hy) + 1))
    top += _graded(top[-1], hy, thickness_um + window_top_um, ratio, hmax_um)
    bot += _graded(bot[-1], hy, -window_box_um, ratio, hmax_um)
    y = sorted(bot) + list(core) + top
    return np.asarray(x), np.asarray(y)


def windows(wavelength_um, n_eff_guess, n_top, n_box):
    """Window sizes (x beyond the sidewall, above the strip, BOX depth) and the far-field
    mesh spacing, µm, from the mode's decay constants γ in the polymer and the BOX."""
    k0 = 2 * math.pi / wavelength_um
    gamma_top = k0 * math.sqrt(max(n_eff_guess**2 - n_top**2, 1e-6))
    gamma_box = k0 * math.sqrt(max(n_eff_guess**2 - n_box**2, 1e-6))
    win = min(max(8.0 / gamma_top, 4.0), 40.0)
    box = max(6.0 / gamma_box, 2.0)
    hfar = min(max(0.25 / gamma_top, 0.3), 1.5)
    return win, win, box, hfar


# --- FD solve ----------------------------------------------------------------------------
def _eps_func(width_um, thickness_um, n_si, n_box, n_top):
    def eps(xc, yc):
        xx, yy = np.meshgrid(xc, yc, indexing="ij")
        e = np.where(yy < 0, n_box**2, n_top**2)
        return np.where((np.abs(xx) < 0.5 * width_um) & (yy > 0) & (yy < thickness_um), n_si**2, e)

    return eps


def _matrix(wavelength_um, x, y, width_um, thickness_um, n, pol):
    from EMpy.modesolvers.FD import VFDModeSolver

    bc = "000" + ("A" if pol == "te" else "S")
    solver = VFDModeSolver(wavelength_um, x, y, _eps_func(width_um, thickness_um, *n), bc)
    return solver.build_matrix().tocsc()


def fd_solve(*, pol, wavelength_um, width_um, thickness_um, n_mat, h_um, cells_half_width,
             n_guess, window_n=None, sensitivities=True):
    """One FD solve. Returns dict(n_eff, sens (3,), te_fraction, unknowns, seconds).

    ``n_guess`` sets the shift (just above it); ``window_n`` (default ``n_guess``) the
    window size through the mode's decay length.
    """
    t0 = time.perf_counter()
    n_si, n_box, n_top = n_mat
    window_n = n_guess if window_n is None else window_n
    wx, wt, wb, hfar = windows(wavelength_um, max(window_n, n_top + 2e-4), n_top, n_box)
    hmax = min(hfar, 0.5)
    x, y = make_mesh(width_um=width_um, thickness_um=thickness_um, h_um=h_um,
                     cells_half_width=cells_half_width, window_x_um=wx, window_top_um=wt,
                     window_box_um=wb, hmax_um=hmax)
    a = _matrix(wavelength_um, x, y, width_um, thickness_um, n_mat, pol)
    k0 = 2 * math.pi / wavelength_um
    # Shift above the fundamental: the nearest eigenvalue is then the family's highest.
    sigma = (k0 * (n_guess + max(2e-3, 0.02 * (n_guess - n_top)))) ** 2
    lu = linalg.splu(a - sigma * identity(a.shape[0], format="csc"))
    op = linalg.LinearOperator(a.shape, matvec=lu.solve, dtype=float)
    vals, vecs = linalg.eigs(op, k=2, which="LM", tol=1e-12)
    lam = sigma + 1.0 / vals
    n_all = np.sqrt(lam.real) / k0
    nxy = len(x) * len(y)
    frac = np.array([np.sum(np.abs(vecs[nxy:, i]) ** 2) / np.sum(np.abs(vecs[:, i]) ** 2)
                     for i in range(vecs.shape[1])])  # |Hy|² share: TE (Ex-major) → ~1
    ok = (frac > 0.5) if pol == "te" else (frac < 0.5)
    ok &= n_all > n_top
    if not ok.any():
        raise RuntimeError(f"no guided {pol} mode at w={width_um}, λ={wavelength_um}: {n_all}, {frac}")
    i = int(np.argmax(np.where(ok, n_all, -np.inf)))
    v = np.real_if_close(vecs[:, i])
    v = v.real if np.iscomplexobj(v) else v
    out = {"n_eff": float(n_all[i]), "te_fraction": float(frac[i]), "unknowns": int(a.shape[0])}
    if sensitivities:
        opt = linalg.LinearOperator(a.shape, matvec=lambda b: lu.solve(b, trans="T"), dtype=float)
        lv, uv = linalg.eigs(opt, k=1, which="LM", tol=1e-12, v0=v)
        lam_left = sigma + 1.0 / lv[0].real
        if abs(lam_left - lam[i].real) > 1e-8 * abs(lam_left):
            raise RuntimeError(f"left/right eigenvalues differ: {lam_left} vs {lam[i]}")
        u = uv[:, 0].real
        uv_dot = u @ v
        sens = []
        for j in range(3):
            up, dn = list(n_mat), list(n_mat)
            up[j] += DELTA_N
            dn[j] -= DELTA_N
            da = (_matrix(wavelength_um, x, y, width_um, thickness_um, up, pol)
                  - _matrix(wavelength_um, x, y, width_um, thickness_um, dn, pol)) / (2 * DELTA_N)
            dlam = (u @ (da @ v)) / uv_dot
            sens.append(float(dlam / (2 * k0**2 * n_all[i])))
        out["sens"] = sens
    out["seconds"] = time.perf_counter() - t0
    return out


class FDSolver:
    """Two-mesh (h, h/2) Richardson FD solve of one row (the independent cross-check)."""

    def __init__(self, *, thickness_um, h_um, order):
        self.t = thickness_um
        self.h = h_um
        self.p = order
        self.cells = math.ceil(0.5 * W_MAX_UM / h_um)

    def solve(self, *, pol, wavelength_um, width_um, n_mat, n_guess, window_n, levels=(1, 2)):
        out = {}
        for level in levels:
            r = fd_solve(pol=pol, wavelength_um=wavelength_um, width_um=width_um,
                         thickness_um=self.t, n_mat=n_mat, h_um=self.h / level,
                         cells_half_width=self.cells * level, n_guess=n_guess,
                         window_n=window_n, sensitivities=False)
            out[f"h/{level}"] = r["n_eff"]
            n_guess = r["n_eff"]
        c = 1.0 / (2.0**self.p - 1.0)
        out["richardson"] = out["h/2"] + c * (out["h/2"] - out["h/1"])
        return out


# --- FEM solve (the table's engine) ------------------------------------------------------
#: FEM mesh of the table: spacing at the strip's edges, inside the strip, growth ratio.
FEM_MESH = (0.006, 0.03, 1.3)
#: Finer FEM mesh for the convergence rows (spacings halved).
FEM_MESH_FINE = (0.003, 0.015, 1.3)


def graded_segment(a, b, ha, hb, hin, ratio):
    """Nodes strictly inside (a, b), spacing ha at a and hb at b (None: free end) growing by
    ``ratio`` up to ``hin``; the leftover gap is spread over the segment. Also used by
    scripts/si_pwg_supermodes.py."""
    left, right, tl, tr, sl, sr = [], [], 0.0, 0.0, ha, hb
    length = b - a
    while True:
        cl = sl if sl is not None else math.inf
        cr = sr if sr is not None else math.inf
        if tl + tr + min(cl, cr) >= length * (1 - 1e-9):
            break
        if cl <= cr:
            left.append(cl)
            tl += cl
            sl = min(cl * ratio, hin)
        else:
            right.append(cr)
            tr += cr
            sr = min(cr * ratio, hin)
    steps = np.array(left + right[::-1])
    steps *= length / steps.sum() if steps.size else 1.0
    return list(a + np.cumsum(steps)[:-1])


def fem_axis(breaks, *, free_lo, hedge, hin, ratio, hout):
    """Graded 1-D node set through ``breaks`` (interfaces on nodes); outermost segments grow
    to ``hout``; a non-free low end (the symmetry plane) gets spacing ``hin``."""
    pts = [breaks[0]]
    last = len(breaks) - 2
    for i in range(len(breaks) - 1):
        a, b = breaks[i], breaks[i + 1]
        outer_lo = i == 0 and free_lo
        ha = None if outer_lo else (hin if i == 0 else hedge)
        hb = None if i == last else hedge
        pts += graded_segment(a, b, ha, hb, hout if (outer_lo or i == last) else hin, ratio)
        pts.append(b)
    return np.asarray(pts)


def fem_operator_forms():
    """(a_free, a_eps, b_form): the scikit-fem forms of the full-vector mode problem.

    E_t (Nédélec) / E_z (Lagrange) formulation with E_z scaled by β, as in femwell
    (doi:10.1080/02726340290084012): A x = β² B x, A = A_free + Σ_i n_i² A_χi, A_χi the
    ``a_eps`` form over region i (``w.chi`` its indicator). Also used by
    scripts/si_pwg_supermodes.py."""
    from skfem import BilinearForm
    from skfem.helpers import curl, dot, grad, inner

    @BilinearForm
    def a_free(et, ez, vt, vz, w):
        return curl(et) * curl(vt) / w.k0**2 + dot(grad(ez), vt)

    @BilinearForm
    def a_eps(et, ez, vt, vz, w):
        return w.chi * (-dot(et, vt) + inner(et, grad(vz)) - ez * vz * w.k0**2)

    @BilinearForm
    def b_form(et, ez, vt, vz, w):
        return -dot(et, vt) / w.k0**2

    return a_free, a_eps, b_form


def _fem_forms():
    from skfem import Functional

    a_free, a_eps, b_form = fem_operator_forms()

    @Functional
    def ex2(w):
        return w.e.value[0] ** 2

    @Functional
    def ey2(w):
        return w.e.value[1] ** 2

    return a_free, a_eps, b_form, ex2, ey2


def fem_solve(*, pol, wavelength_um, width_um, thickness_um, n_mat, n_guess, window_n=None,
              mesh=FEM_MESH, sensitivities=True):
    """One FEM solve (scikit-fem, 2nd-order Nédélec × Lagrange elements, half domain).

    TE (Ex even about x = 0): tangential E is odd there → PEC at x = 0; TM: PMC (natural).
    PEC at the outer window. Shift-invert ARPACK just above ``n_guess``; the guided mode of
    the right polarisation with the largest n_eff among the two nearest is taken (a shift
    above the mode makes it the nearest: all other eigenvalues of the family lie below).
    Sensitivities: exact derivatives of the discrete eigenvalue, ∂β²/∂n_i =
    2 n_i·u·A_χi·v/(u·B·v) with the left eigenvector u.
    """
    from skfem import Basis, ElementTriN2, ElementTriP0, ElementTriP2, MeshTri

    t0 = time.perf_counter()
    n_si, n_box, n_top = n_mat
    window_n = n_top + 0.7 * (n_guess - n_top) if window_n is None else window_n
    wx, wt, wb, hout = windows(wavelength_um, max(window_n, n_top + 2e-4), n_top, n_box)
    hedge, hin, ratio = mesh
    x = fem_axis([0.0, 0.5 * width_um, 0.5 * width_um + wx], free_lo=False, hedge=hedge,
                 hin=hin, ratio=ratio, hout=hout)
    y = fem_axis([-wb, 0.0, thickness_um, thickness_um + wt], free_lo=True, hedge=hedge,
                 hin=hin, ratio=ratio, hout=hout)
    m = MeshTri.init_tensor(x, y).with_boundaries({
        "left": lambda p: np.isclose(p[0], x[0]), "right": lambda p: np.isclose(p[0], x[-1]),
        "bottom": lambda p: np.isclose(p[1], y[0]), "top": lambda p: np.isclose(p[1], y[-1]),
    })
    basis = Basis(m, ElementTriN2() * ElementTriP2())
    basis0 = basis.with_element(ElementTriP0())
    xc, yc = m.p[:, m.t].mean(axis=1)
    in_si = (xc < 0.5 * width_um) & (yc > 0) & (yc < thickness_um)
    in_box = yc < 0
    regions = (in_si, in_box, ~in_si & ~in_box)
    a_free, a_eps, b_form, ex2, ey2 = _fem_forms()
    k0 = 2 * math.pi / wavelength_um
    a_chi = [a_eps.assemble(basis, k0=k0, chi=basis0.interpolate(r.astype(float))) for r in regions]
    a = a_free.assemble(basis, k0=k0) + sum(n**2 * ac for n, ac in zip(n_mat, a_chi, strict=True))
    b = b_form.assemble(basis, k0=k0)
    walls = ["left", "right", "top", "bottom"] if pol == "te" else ["right", "top", "bottom"]
    fixed = basis.get_dofs(walls).all()
    free = np.setdiff1d(np.arange(a.shape[0]), fixed)
    ai = a[free][:, free].tocsc()
    bi = b[free][:, free].tocsc()
    # Shift above the mode: then it is the nearest eigenvalue (window modes lie below n_top).
    sigma = (k0 * (n_guess + min(max(0.5 * (n_guess - n_top), 5e-4), 0.02))) ** 2
    lu = linalg.splu((ai - sigma * bi).tocsc())
    op = linalg.LinearOperator(ai.shape, matvec=lambda v: lu.solve(bi @ v), dtype=float)
    vals, vecs = linalg.eigs(op, k=2, which="LM", tol=1e-12)
    lams = sigma + 1.0 / vals.real
    n_all = np.sqrt(np.maximum(lams, 0.0)) / k0
    fracs = []
    for i in range(vecs.shape[1]):
        v = vecs[:, i]
        v = (v / v[np.argmax(np.abs(v))]).real
        full = np.zeros(a.shape[0])
        full[free] = v
        (et, bt), _ = basis.split(full)
        ex = ex2.assemble(bt, e=bt.interpolate(et))
        ey = ey2.assemble(bt, e=bt.interpolate(et))
        fracs.append(ex / (ex + ey))
    fracs = np.asarray(fracs)  # |Ex|² share: TE → ~1, TM → ~0
    ok = ((fracs > 0.5) if pol == "te" else (fracs < 0.5)) & (n_all > n_top)
    if not ok.any():
        raise RuntimeError(f"no guided {pol} mode at w={width_um}, λ={wavelength_um}: "
                           f"{n_all}, {fracs}")
    i = int(np.argmax(np.where(ok, n_all, -np.inf)))
    v = vecs[:, i]
    v = (v / v[np.argmax(np.abs(v))]).real
    out = {"n_eff": float(n_all[i]), "te_fraction": float(fracs[i]), "dofs": int(ai.shape[0])}
    if sensitivities:
        opt = linalg.LinearOperator(ai.shape, matvec=lambda q: lu.solve(bi.T @ q, trans="T"),
                                    dtype=float)
        lv, uv = linalg.eigs(opt, k=1, which="LM", tol=1e-12, v0=v)
        lam_left = sigma + 1.0 / lv[0].real
        if abs(lam_left - lams[i]) > 1e-9 * lams[i]:
            raise RuntimeError(f"left/right eigenvalues differ: {lam_left} vs {lams[i]}")
        u = uv[:, 0]
        u = (u / u[np.argmax(np.abs(u))]).real
        ubv = u @ (bi @ v)
        out["sens"] = [float(2 * n * (u @ (ac[free][:, free] @ v)) / ubv / (2 * k0**2 * n_all[i]))
                       for n, ac in zip(n_mat, a_chi, strict=True)]
    out["seconds"] = time.perf_counter() - t0
    return out


class Solver:
    """The table's solver: FEM on :data:`FEM_MESH`."""

    def __init__(self, *, thickness_um, mesh=FEM_MESH):
        self.t = thickness_um
        self.mesh = mesh

    def solve(self, *, pol, wavelength_um, width_um, n_mat, n_guess, window_n=None,
              sensitivities=True):
        return fem_solve(pol=pol, wavelength_um=wavelength_um, width_um=width_um,
                         thickness_um=self.t, n_mat=n_mat, n_guess=n_guess, window_n=window_n,
                         mesh=self.mesh, sensitivities=sensitivities)


# --- table -------------------------------------------------------------------------------
def _near_cutoff_width(solver, pol, lam, n_mat, w_hi, n_hi):
    """Width where n_eff = n_top + CUTOFF_MARGIN (march down, then secant/bisection)."""
    n_top = n_mat[2]
    target = n_top + CUTOFF_MARGIN
    lo, hi, n_at_hi = None, w_hi, n_hi
    w = w_hi
    guess = n_hi
    # march down to bracket
    step = 0.04
    while True:
        w_try = w - step
        try:
            r = solver.solve(pol=pol, wavelength_um=lam, width_um=w_try, n_mat=n_mat,
                             n_guess=guess, sensitivities=False)
            n_try = r["n_eff"]
        except RuntimeError:
            n_try = n_top  # no guided mode: below cutoff
        if n_try <= target:
            lo, n_lo = w_try, n_try
            break
        hi, n_at_hi, w, guess = w_try, n_try, w_try, n_try
        if n_try - target < 0.01:
            step = 0.01
    # refine: secant in sqrt(n - n_top) (≈ linear in w near cutoff), guarded by bisection
    for _ in range(8):
        f_hi = math.sqrt(max(n_at_hi - n_top, 0.0)) - math.sqrt(CUTOFF_MARGIN)
        f_lo = math.sqrt(max(n_lo - n_top, 0.0)) - math.sqrt(CUTOFF_MARGIN)
        w_new = hi - f_hi * (hi - lo) / (f_hi - f_lo) if f_hi != f_lo else 0.5 * (lo + hi)
        if not (lo < w_new < hi):
            w_new = 0.5 * (lo + hi)
        try:
            r = solver.solve(pol=pol, wavelength_um=lam, width_um=w_new, n_mat=n_mat,
                             n_guess=n_at_hi, window_n=target, sensitivities=False)
            n_new = r["n_eff"]
        except RuntimeError:
            n_new = n_top
        if abs(n_new - target) < 2e-5:
            return w_new
        if n_new > target:
            hi, n_at_hi = w_new, n_new
        else:
            lo, n_lo = w_new, n_new
    return hi


def width_grid(w0, n_widths):
    """n_widths widths from w0 to W_MAX_UM, first step ≈ FIRST_STEP_UM, growing linearly."""
    span = W_MAX_UM - w0
    c = min(1.0, FIRST_STEP_UM * (n_widths - 1) / span)
    s = np.linspace(0.0, 1.0, n_widths)
    return w0 + span * (c * s + (1 - c) * s * s)


def node_task(args):
    pol, lam, thickness, n_widths, cache_dir = args
    cache = None
    if cache_dir is not None:
        cache = Path(cache_dir) / f"node_{pol}_{lam}_{thickness}_{n_widths}_{FEM_MESH}.json"
        if cache.exists():
            return json.loads(cache.read_text())
    out = _node(pol, lam, thickness, n_widths)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(out))
    return out


def _node(pol, lam, thickness, n_widths):
    solver = Solver(thickness_um=thickness)
    n_mat = material_indices(lam, TABLE_TEMPERATURE_C)
    t0 = time.perf_counter()
    top = solver.solve(pol=pol, wavelength_um=lam, width_um=W_MAX_UM, n_mat=n_mat,
                       n_guess=n_mat[0] - 0.3, window_n=n_mat[2] + 0.05, sensitivities=False)
    w0 = _near_cutoff_width(solver, pol, lam, n_mat, W_MAX_UM, top["n_eff"])
    widths = width_grid(round(w0, 5), n_widths)
    rows = []
    guess = top["n_eff"]
    prev = []
    for w in widths[::-1]:  # from wide to narrow: the previous rows predict n_eff
        if len(prev) >= 2:  # sqrt(n_eff − n_top) is ~linear in w near cutoff
            (w1, n1), (w2, n2) = prev[-1], prev[-2]
            s1, s2 = math.sqrt(n1 - n_mat[2]), math.sqrt(n2 - n_mat[2])
            guess = n_mat[2] + max(s1 + (s1 - s2) / (w1 - w2) * (w - w1), 0.02) ** 2
        r = solver.solve(pol=pol, wavelength_um=lam, width_um=float(w), n_mat=n_mat,
                         n_guess=max(guess, n_mat[2] + 8e-4))
        prev.append((w, r["n_eff"]))
        rows.append({
            "polarization": pol, "wavelength_um": lam, "width_um": round(float(w), 6),
            "n_eff": r["n_eff"], "dneff_dnsi": r["sens"][0], "dneff_dnbox": r["sens"][1],
            "dneff_dntop": r["sens"][2], "te_fraction": r["te_fraction"],
        })
    rows.reverse()
    print(f"node {pol} {lam}: w0={w0:.4f} µm, {len(rows)} rows, {time.perf_counter() - t0:.0f} s",
          flush=True)
    return {"polarization": pol, "wavelength_um": lam, "near_cutoff_width_um": w0,
            "n_si": n_mat[0], "n_box": n_mat[1], "n_top": n_mat[2], "rows": rows,
            "seconds": time.perf_counter() - t0}


def check_task(args):
    kind, pol, lam, w, temp, thickness, guess = args
    solver = Solver(thickness_um=thickness)
    n_mat = material_indices(lam, temp)
    try:
        n = solver.solve(pol=pol, wavelength_um=lam, width_um=w, n_mat=n_mat, n_guess=guess,
                         sensitivities=False)["n_eff"]
    except RuntimeError as exc:  # e.g. cut off at this temperature
        print(f"check row {kind} {pol} {lam} {w} {temp}: {exc}", flush=True)
        n = float("nan")
    return {"kind": kind, "polarization": pol, "wavelength_um": lam, "width_um": round(w, 6),
            "temperature_c": temp, "n_si": n_mat[0], "n_box": n_mat[1], "n_top": n_mat[2],
            "n_eff": n}


def sens_check_task(args):
    """Adjoint sensitivities vs central differences of full solves (n_i ± 1e-3), one row."""
    pol, lam, w, thickness, guess = args
    solver = Solver(thickness_um=thickness)
    n_mat = material_indices(lam, TABLE_TEMPERATURE_C)
    base = solver.solve(pol=pol, wavelength_um=lam, width_um=w, n_mat=n_mat, n_guess=guess,
                        window_n=guess)
    fd = []
    for j in range(3):
        vals = []
        for sgn in (1, -1):
            m = list(n_mat)
            m[j] += sgn * DELTA_N
            vals.append(solver.solve(pol=pol, wavelength_um=lam, width_um=w, n_mat=m,
                                     n_guess=base["n_eff"], window_n=guess,
                                     sensitivities=False)["n_eff"])
        fd.append((vals[0] - vals[1]) / (2 * DELTA_N))
    return {"polarization": pol, "wavelength_um": lam, "width_um": w, "n_eff": base["n_eff"],
            "adjoint": base["sens"], "central_difference": fd}


def convergence_task(args):
    """FEM on the table mesh and a 2× finer one; FD (EMpy) on h, h/2, h/4 (+ Richardson)."""
    pol, lam, w, thickness, h, order, fd = args
    n_mat = material_indices(lam, TABLE_TEMPERATURE_C)
    first = fem_solve(pol=pol, wavelength_um=lam, width_um=w, thickness_um=thickness,
                      n_mat=n_mat, n_guess=n_mat[0] - 0.3, window_n=n_mat[2] + 0.01,
                      sensitivities=False)
    n1 = first["n_eff"]
    out = {"polarization": pol, "wavelength_um": lam, "width_um": w}
    for name, mesh in (("fem", FEM_MESH), ("fem_fine", FEM_MESH_FINE)):
        r = fem_solve(pol=pol, wavelength_um=lam, width_um=w, thickness_um=thickness,
                      n_mat=n_mat, n_guess=n1, window_n=n1, mesh=mesh, sensitivities=False)
        out[name] = r["n_eff"]
        out[name + "_dofs"] = r["dofs"]
        out[name + "_seconds"] = round(r["seconds"], 2)
    # a 1.5× larger window (truncation check)
    out["fem_window_x1.5"] = fem_solve(
        pol=pol, wavelength_um=lam, width_um=w, thickness_um=thickness, n_mat=n_mat,
        n_guess=n1, window_n=n_mat[2] + (n1 - n_mat[2]) / 1.5**2, sensitivities=False)["n_eff"]
    if fd:
        t0 = time.perf_counter()
        levels = (1, 2, 4)
        r = FDSolver(thickness_um=thickness, h_um=h, order=order).solve(
            pol=pol, wavelength_um=lam, width_um=w, n_mat=n_mat, n_guess=n1, window_n=n1,
            levels=levels)
        out["fd_empy"] = {k: v for k, v in r.items()}
        out["fd_seconds"] = round(time.perf_counter() - t0, 1)
    return out


def fit_order(conv):
    """FD Richardson order p that best matches FEM (documentation of the FD cross-check)."""
    ps = np.linspace(0.4, 1.6, 1201)
    err = []
    for p in ps:
        c = 1 / (2**p - 1)
        e = [r["fd_empy"]["h/2"] + c * (r["fd_empy"]["h/2"] - r["fd_empy"]["h/1"]) - r["fem_fine"]
             for r in conv]
        err.append(np.sqrt(np.mean(np.square(e))))
    return float(ps[int(np.argmin(err))])


def _cached_task(item):
    """Run ``fn(args)`` (a task function of this module), keeping the result in
    ``cache_dir`` when given, so that an interrupted run resumes where it stopped."""
    name, args, cache_dir = item
    fn = globals()[name]
    if cache_dir is None:
        return fn(args)
    key = hashlib.sha1(repr((name, args, FEM_MESH)).encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"{name}_{key}.json"
    if path.exists():
        return json.loads(path.read_text())
    out = fn(args)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--thickness-um", type=float, default=0.22,
                    help="Si thickness (estimate: the common 220 nm SOI)")
    ap.add_argument("--widths", type=int, default=22, help="widths per (polarization, λ)")
    ap.add_argument("--fd-h-um", type=float, default=0.01, help="FD cross-check: coarse step")
    ap.add_argument("--no-fd-check", action="store_true", help="skip the EMpy FD cross-check")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="tiny table for testing the script")
    ap.add_argument("--cache-dir", default=None, help="keep finished (polarization, λ) nodes here")
    ap.add_argument("--out-json", type=Path, default=ROOT / "yieldmc/data/si_strip_modes.json")
    ap.add_argument("--out-check", type=Path, default=ROOT / "tests/data/si_strip_check.csv")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    import EMpy
    import skfem

    lams = (1.31,) if args.quick else WAVELENGTHS_UM
    n_widths = 6 if args.quick else args.widths
    if args.jobs > 1:
        pool = multiprocessing.get_context("spawn").Pool(args.jobs)
    else:  # in-process (no worker processes)
        class _Serial:
            @staticmethod
            def map(fn, items, chunksize=1):
                return [fn(item) for item in items]

            def close(self):
                pass

            def join(self):
                pass

        pool = _Serial()

    def run(fn, items):
        return pool.map(_cached_task, [(fn.__name__, it, args.cache_dir) for it in items],
                        chunksize=1)

    # 1. the table
    nodes = pool.map(node_task, [(p, lam, args.thickness_um, n_widths, args.cache_dir)
                                 for p in POLARIZATIONS for lam in lams], chunksize=1)
    by_node = {(n["polarization"], n["wavelength_um"]): n for n in nodes}

    # 2. check rows: off-grid widths and wavelengths at 25 °C; -40/125 °C at table widths
    checks = []
    for (pol, lam), node in by_node.items():
        rows = node["rows"]
        ws = [r["width_um"] for r in rows]
        picks = [0, 1, 3, len(ws) // 2, len(ws) - 2] if len(ws) > 5 else [0, len(ws) - 2]
        for i in sorted(set(picks)):
            checks.append(("off_grid_width", pol, lam, 0.5 * (ws[i] + ws[i + 1]),
                           TABLE_TEMPERATURE_C, 0.5 * (rows[i]["n_eff"] + rows[i + 1]["n_eff"])))
        if lam in (1.31, 1.55):
            # table widths still guided at -40 °C (polymer +0.022): n_eff − n_top ≥ 0.04
            i_ok = next(i for i, r in enumerate(rows) if r["n_eff"] - node["n_top"] >= 0.04)
            for i in sorted({i_ok, (i_ok + len(rows) - 1) // 2, len(rows) - 1}):
                r = rows[i]
                for temp in CHECK_TEMPERATURES_C:
                    dn = np.subtract(material_indices(lam, temp),
                                     (node["n_si"], node["n_box"], node["n_top"]))
                    guess = r["n_eff"] + r["dneff_dnsi"] * dn[0] + r["dneff_dnbox"] * dn[1] \
                        + r["dneff_dntop"] * dn[2]
                    checks.append(("temperature", pol, lam, r["width_um"], temp, float(guess)))
    if not args.quick:
        for pol in POLARIZATIONS:
            for lam in (1.285, 1.335, 1.525, 1.575):
                near = [by_node[(pol, l)] for l in WAVELENGTHS_UM if abs(l - lam) < 0.06]
                lo = max(n["rows"][0]["width_um"] for n in near)
                for w in (lo + 0.012, 0.5 * (lo + W_MAX_UM), 0.47):
                    guess = float(np.mean([np.interp(w, [r["width_um"] for r in n["rows"]],
                                                     [r["n_eff"] for r in n["rows"]])
                                           for n in near]))
                    checks.append(("off_grid_wavelength", pol, lam, round(float(w), 6),
                                   TABLE_TEMPERATURE_C, guess))
                # near cutoff, below the band's largest node cutoff (silicon.py interpolates
                # at the same normalised width (w − w0(λ))/(0.5 − w0(λ)) across λ)
                lj = [n["wavelength_um"] for n in near]
                w0 = sum(n["rows"][0]["width_um"] * math.prod((lam - lk) / (n["wavelength_um"] - lk)
                                                              for lk in lj if lk != n["wavelength_um"])
                         for n in near)  # quadratic (Lagrange) through the band's cutoffs
                n_top = material_indices(lam, TABLE_TEMPERATURE_C)[2]
                for dw in (0.003, 0.01, 0.03):
                    excess = np.mean([np.interp(n["rows"][0]["width_um"] + dw,
                                                [r["width_um"] for r in n["rows"]],
                                                [r["n_eff"] for r in n["rows"]]) - n["n_top"]
                                      for n in near])
                    checks.append(("near_cutoff_wavelength", pol, lam, round(w0 + dw, 6),
                                   TABLE_TEMPERATURE_C, n_top + 1.3 * max(excess, 1e-3)))
    check_rows = run(check_task, [(k, p, lam, w, temp, args.thickness_um, g)
                                  for k, p, lam, w, temp, g in checks])

    # 3. adjoint sensitivities vs central differences of full solves
    sens_args = []
    for pol, lam in ([("te", 1.31)] if args.quick else [("te", 1.31), ("tm", 1.55), ("te", 1.6)]):
        node = by_node[(pol, lam)]
        for i in (2, len(node["rows"]) // 2):
            r = node["rows"][i]
            sens_args.append((pol, lam, r["width_um"], args.thickness_um, r["n_eff"]))
    sens_check = run(sens_check_task, sens_args)

    # 4. convergence: FEM mesh refinement and window, EMpy FD cross-check
    conv_rows = CALIBRATION_ROWS[:2] if args.quick else CALIBRATION_ROWS
    conv = run(convergence_task, [(p, lam, w, args.thickness_um, args.fd_h_um,
                                   DEFAULT_ORDER, not args.no_fd_check)
                                  for p, lam, w in conv_rows])
    pool.close()
    pool.join()
    fd_order = fit_order(conv) if not args.no_fd_check else None

    runtime = time.perf_counter() - t_start
    columns = {
        "polarization": "te (Ex-major) | tm (Ey-major) fundamental mode",
        "wavelength_um": "vacuum wavelength, µm",
        "width_um": "Si strip width, µm",
        "n_eff": "effective index",
        "dneff_dnsi": "∂n_eff/∂n_si (exact derivative of the discrete eigenvalue, adjoint)",
        "dneff_dnbox": "∂n_eff/∂n_box",
        "dneff_dntop": "∂n_eff/∂n_top (polymer cladding)",
        "te_fraction": "∫|Ex|²/∫(|Ex|²+|Ey|²) (TE → ~1, TM → ~0)",
    }
    table = {
        "description": "Fundamental TE/TM modes of the Si strip of the PWG adiabatic coupler: "
                       "Si strip on SiO2 BOX, polymer (PWG cladding) above and at the sides.",
        "columns": columns,
        "units": {"wavelength": "µm", "width": "µm", "thickness": "µm", "temperature": "°C"},
        "geometry": {
            "thickness_um": args.thickness_um,
            "thickness_note": "estimate (220 nm SOI); script argument --thickness-um",
            "box": "semi-infinite for the mode (window max(2 µm, 6 decay lengths)); "
                   "substrate leakage not modelled",
            "upper_cladding": "polymer, also at the strip's sides (top oxide removed)",
            "sidewalls": "vertical",
        },
        "materials": {
            "temperature_c": TABLE_TEMPERATURE_C,
            "source": "yieldmc.physics.materials: silicon_index, silica_index, "
                      "pwg_cladding_index (humidity at its 50 %RH reference)",
            "per_wavelength": [{"wavelength_um": n["wavelength_um"], "n_si": n["n_si"],
                                "n_box": n["n_box"], "n_top": n["n_top"]}
                               for n in nodes if n["polarization"] == "te"],
        },
        "solver": {
            "name": "finite elements (scikit-fem): 2nd-order Nédélec (E_t) × 2nd-order "
                    "Lagrange (E_z), the formulation of femwell (doi:10.1080/02726340290084012)",
            "scikit_fem_version": skfem.__version__ if hasattr(skfem, "__version__") else "?",
            "scipy_version": scipy.__version__, "numpy_version": np.__version__,
            "python": platform.python_version(),
            "eigensolver": "scipy ARPACK shift-invert (SuperLU), tol 1e-12; left eigenvector "
                           "for the sensitivities",
            "symmetry": "half domain x ≥ 0; TE: PEC at x = 0, TM: PMC; PEC outer window",
            "cross_check": f"EMpy {EMpy.__version__} FD (VFDModeSolver), see convergence",
        },
        "grid": {
            "fem_mesh": {"edge_um": FEM_MESH[0], "inside_um": FEM_MESH[1], "ratio": FEM_MESH[2],
                         "far_um": "clip(0.25/γ_top, 0.3, 1.5)"},
            "rule": "tensor triangle mesh, nodes on the interfaces, spacing edge_um at the "
                    "strip's edges growing by ratio to inside_um within the strip and to "
                    "far_um outside",
            "windows": "beyond the strip: 8/γ_top (4–40 µm) sideways and above, "
                       "max(2, 6/γ_box) µm into the BOX",
        },
        "width_grid": {
            "rule": "per (polarization, λ): from w0 (n_eff = n_top + 0.001) to 0.5 µm, "
                    f"{n_widths} widths, steps growing linearly from ≈ 5 nm",
            "near_cutoff_width_um": {f"{n['polarization']}@{n['wavelength_um']}":
                                     n["near_cutoff_width_um"] for n in nodes},
        },
        "convergence": {
            "note": "fem: table mesh; fem_fine: edge/inside spacing halved; fem_window_x1.5: "
                    "window 1.5× larger. fd_empy: EMpy VFDModeSolver at h, h/2, h/4 "
                    f"(h = {args.fd_h_um} µm) and its Richardson value with p = {DEFAULT_ORDER} "
                    "from h, h/2 (FD converges only as ~h^0.8: the corner singularities).",
            "fd_best_fit_order": fd_order,
            "rows": conv,
        },
        "sensitivity_check": sens_check,
        "provenance": {
            "date": datetime.date.today().isoformat(),
            "command": "python scripts/si_strip_modes.py " + " ".join(
                sys.argv[1:] if argv is None else argv),
            "runtime_s": round(runtime, 1),
            "node_seconds": round(sum(n["seconds"] for n in nodes), 1),
            "note": "runtime_s: this invocation; node_seconds: CPU-seconds of the 12 "
                    "(polarization, λ) table nodes (with --cache-dir, from the run that made them)",
            "jobs": args.jobs,
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared)",
            "script": "scripts/si_strip_modes.py",
        },
        "rows": [r for n in nodes for r in n["rows"]],
    }
    args.out_json.parent.mkdir(parents=True, exist_ok=True)
    args.out_json.write_text(json.dumps(table, indent=1, ensure_ascii=False) + "\n")
    args.out_check.parent.mkdir(parents=True, exist_ok=True)
    with args.out_check.open("w", newline="") as f:
        cols = ["kind", "polarization", "wavelength_um", "width_um", "temperature_c", "n_si",
                "n_box", "n_top", "n_eff"]
        f.write(f"# Explicit solves by scripts/si_strip_modes.py (same solver and mesh as "
                f"yieldmc/data/si_strip_modes.json), {table['provenance']['date']}\n")
        wr = csv.DictWriter(f, fieldnames=cols)
        wr.writeheader()
        for r in check_rows:
            wr.writerow({k: (f"{v:.10g}" if isinstance(v, float) else v) for k, v in r.items()})
    print(f"wrote {args.out_json} ({len(table['rows'])} rows) and {args.out_check} "
          f"({len(check_rows)} rows) in {runtime:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
