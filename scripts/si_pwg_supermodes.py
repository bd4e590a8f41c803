"""Local supermodes of the Si-taper → PWG adiabatic coupler cross-section (the data of the runtime coupler).

    python scripts/si_pwg_supermodes.py [--plan nominal,convergence,gap,offset,temperature,
        wavelength] [--cache PATH] [--out-json yieldmc/data/si_pwg_supermodes.json]
    python scripts/si_pwg_supermodes.py --report   # headline tables of the JSON, no solves

Needs the ``modes`` extra (``pip install -e .[modes]``: scikit-fem) besides jax and pyyaml;
femwell (GPL-3.0, not a dependency) is used, where installed, only to cross-check the
power projections. Plans: ``nominal`` (λ 1.31 µm, nominal gap, no offset: phase-matching
scan and the taper widths), ``convergence`` (mesh and window at the nominal phase
matching), ``gap`` (1.3, 0.5 µm; ``gap2``: 0.2 µm), ``offset`` (2 µm; ``offset1``: 1 µm),
``temperature`` (first-order shifts against solves at −40 and 125 °C; ``temperature_scan``:
phase matching at those temperatures), ``wavelength`` (1.26 µm; ``wavelength2``: 1.36 µm).

Cross-section (one polarisation class at a time): a 220 nm Si strip (width w) on a
semi-infinite SiO₂ BOX, the PWG cladding polymer above and at its sides, and the
5.5 × 5.5 µm² PWG core (n_clad + 0.0086) whose bottom lies ``gap`` above the strip's top,
its centre shifted sideways by ``offset``. Indices from ``yieldmc.physics.materials``
(Si: Li 1980 fit + Cocorullo dn/dT; BOX: Malitson; polymer core and cladding:
``polymer_index`` with the module's polysiloxane dispersion, dn/dT and dn/dRH, n_ref from
``conf/package/pwg/polysiloxane.yaml``), at 25 °C and 50 %RH.

Engine: full-vector finite elements (scikit-fem 2nd-order Nédélec × Lagrange, the
formulation of femwell, doi:10.1080/02726340290084012), on a tensor triangle mesh with
nodes on every interface (6 nm at the Si edges, growing ×1.3; 0.15 µm through the core;
up to 0.6 µm far out), PEC at the window. With no lateral offset the half domain x ≥ 0 is
solved, the symmetry plane PEC (TE class, Ex even) or PMC (TM class); with an offset the
full domain, and the polarisation is told by the TE fraction ∫|Ex|²/∫|E_t|².

Per solve it stores, for the two highest guided supermodes of the polarisation:

* ``n1``, ``n2``: effective indices (β = k0·n);
* ``dn_d{si,box,core,clad}``: ∂n_eff/∂n of each material region, the exact derivative of
  the discrete eigenvalue (left and right eigenvectors; A is linear in n² per region);
  first-order shifts for temperature, humidity and core index are Σ ∂n_eff/∂n_i · Δn_i;
* ``gamma_{si,box,core,clad}``: electric-energy confinement factors ∫_i ε|E|²/∫ε|E|²
  (E_z included), computed from the fields, independently of the derivatives; for a
  non-dispersive cross-section ∂n_eff/∂n_i = n_g·Γ_i/n_i (J. T. Robinson et al., Opt.
  Express 16:16659 (2008)), so n_i·∂n_eff/∂n_i/Γ_i is the same n_g for every region;
* ``te_fraction``.

Two routes give the local-mode coupling:

* full route: the splitting Δβ(w) = β1 − β2 of the full supermode solves; in the two-mode
  picture Δβ² = δ(w)² + (2κ)², so a quadratic fit of Δβ² over the widths around phase
  matching gives κ = ½·min Δβ and the phase-matching width w* (where Δβ is smallest);
* overlap route (coupled local modes): the isolated Si-strip mode (core replaced by
  cladding) and the isolated PWG mode (strip replaced by cladding) on the same mesh, their
  left and right eigenvectors, and the 2 × 2 Petrov–Galerkin reduction of the full
  operator onto them (non-orthogonal coupled-mode theory with all overlap integrals of the
  full-vector fields: cross-coupling, self-coupling and butt terms). K = N⁻¹M gives
  δ = (K11 − K22)/(2β̄) and κ = sqrt(K12·K21)/(2β̄); the supermodes of the 2 × 2 model are
  compared with the full solves at the same nodes (``agreement``), and the PWG content
  |c_pwg|² of the first supermode (the projection of the local supermode on the PWG mode).

The coupling between the local supermodes per µm of width (two-mode model, mixing angle
θ = ½·atan(2κ/δ)) is C12 = dθ/dw = −κ·(dδ/dw)/(δ² + 4κ²); along a taper multiply by
dw/dz. The JSON lists, per (polarisation, λ, gap, offset), κ and w* of both routes and the
full-route rows.

Run under ``nice -n 19`` on a shared machine; ``--cache`` keeps finished solves (JSON
lines) and a rerun resumes.

Never imported by ``yieldmc``.
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
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import scipy.constants  # noqa: E402
from scipy.sparse import linalg  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

THICKNESS_UM = 0.22
CORE_UM = 5.5  # core width = thickness (conf/package/pwg/polysiloxane.yaml)
GAP_UM = 0.3  # nominal gap (conf/package/coupler/adiabatic.yaml)
TEMPERATURE_C = 25.0
HUMIDITY_RH = 50.0
REGIONS = ("si", "box", "core", "clad")

#: Mesh: (spacing at the Si edges, inside the Si, growth ratio, spacing through the core
#: and at its edges, far-field cap), µm.
MESH = {"h_si_edge": 0.006, "h_si_in": 0.03, "ratio": 1.3, "h_core": 0.15, "h_far": 0.6}
#: Windows: beyond the core sideways and above, n_decay/γ with γ of the lower supermode,
#: clipped to [w_min, w_max] µm; BOX depth below the strip.
WINDOW = {"n_decay": 7.0, "w_min_um": 8.0, "w_max_um": 16.0, "box_um": 2.5}


# --- materials ---------------------------------------------------------------------------
def pwg_reference():
    """n_core, n_clad and their reference conditions from conf/package/pwg/polysiloxane.yaml."""
    import yaml

    c = yaml.safe_load((ROOT / "conf/package/pwg/polysiloxane.yaml").read_text())
    return {k: c[k] for k in ("n_core", "n_clad", "index_wavelength_um", "index_temperature_c",
                              "index_humidity_rh", "core_width_um", "core_thickness_um")}


def _materials_module():
    """yieldmc/physics/materials.py loaded on its own (it needs only jax.numpy), so this
    script does not need the package's other dependencies."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "yieldmc_materials", ROOT / "yieldmc" / "physics" / "materials.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def material_indices(wavelength_um, temperature_c=TEMPERATURE_C, humidity_rh=HUMIDITY_RH):
    """{si, box, core, clad} indices from yieldmc.physics.materials, float64."""
    import jax

    jax.config.update("jax_enable_x64", True)
    m = _materials_module()

    ref = pwg_reference()
    lam, temp, rh = np.float64(wavelength_um), np.float64(temperature_c), np.float64(humidity_rh)

    def polymer(n_ref):
        return float(m.polymer_index(
            n_ref=n_ref, wavelength_um=lam, temperature_c=temp, humidity_rh=rh,
            wavelength_ref_um=ref["index_wavelength_um"],
            temperature_ref_c=ref["index_temperature_c"],
            humidity_ref_rh=ref["index_humidity_rh"]))

    return {"si": float(m.silicon_index(wavelength_um=lam, temperature_c=temp)),
            "box": float(m.silica_index(wavelength_um=lam, temperature_c=temp)),
            "core": polymer(ref["n_core"]), "clad": polymer(ref["n_clad"])}


# --- mesh --------------------------------------------------------------------------------
def axis(breaks, h_break, h_seg, ratio):
    """1-D nodes through ``breaks`` (each a node), spacing h_break[i] at break i (None: free
    end), at most h_seg[i] inside segment i (si_strip_modes.graded_segment)."""
    from si_strip_modes import graded_segment  # this directory: sys.path[0] of a script

    order = np.argsort(breaks)
    b = [breaks[i] for i in order]
    hb = [h_break[i] for i in order]
    pts = [b[0]]
    for i in range(len(b) - 1):
        if b[i + 1] - b[i] < 1e-9:
            continue
        pts += graded_segment(b[i], b[i + 1], hb[i], hb[i + 1], h_seg[i], ratio)
        pts.append(b[i + 1])
    return np.asarray(pts)


def build_mesh(*, width_um, gap_um, offset_um, window_um, mesh=MESH, box_um=WINDOW["box_um"]):
    """Tensor triangle mesh of the cross-section; half domain x ≥ 0 when offset_um == 0."""
    from skfem import MeshTri

    he, hi, r, hc, hf = (mesh[k] for k in ("h_si_edge", "h_si_in", "ratio", "h_core", "h_far"))
    a = 0.5 * CORE_UM
    half = offset_um == 0.0
    xs = [offset_um - a, offset_um + a]
    x_lo = 0.0 if half else min(-0.5 * width_um, xs[0]) - window_um
    x_hi = max(0.5 * width_um, xs[1]) + window_um
    pts = {0.5 * width_um: he, xs[1]: hc, x_hi: None}
    if half:
        pts[0.0] = hi
    else:
        pts.update({-0.5 * width_um: he, xs[0]: hc, x_lo: None})
    bx = sorted(p for p in pts if p >= x_lo - 1e-12)
    hx = [pts[p] for p in bx]
    # segment caps: inside the strip hi, between strip and core edges / inside the core hc
    seg_x = []
    for p, q in zip(bx[:-1], bx[1:], strict=True):
        mid = 0.5 * (p + q)
        if abs(mid) < 0.5 * width_um:
            seg_x.append(hi)
        elif xs[0] - 1e-12 <= mid <= xs[1] + 1e-12 or min(p, q) > x_lo and max(p, q) < x_hi:
            seg_x.append(hc)
        else:
            seg_x.append(hf)
    x = axis(bx, hx, seg_x, r)
    t, y_core = THICKNESS_UM, THICKNESS_UM + gap_um
    by = [-box_um, 0.0, t, y_core, y_core + CORE_UM, y_core + CORE_UM + window_um]
    hy = [None, he, he, hc, hc, None]
    seg_y = [hf, hi, hc, hc, hf]
    y = axis(by, hy, seg_y, r)
    m = MeshTri.init_tensor(x, y).with_boundaries({
        "left": lambda p: np.isclose(p[0], x[0]), "right": lambda p: np.isclose(p[0], x[-1]),
        "bottom": lambda p: np.isclose(p[1], y[0]), "top": lambda p: np.isclose(p[1], y[-1]),
    })
    xc, yc = m.p[:, m.t].mean(axis=1)
    in_si = (np.abs(xc) < 0.5 * width_um) & (yc > 0) & (yc < t)
    in_box = yc < 0
    in_core = (np.abs(xc - offset_um) < a) & (yc > y_core) & (yc < y_core + CORE_UM)
    regions = {"si": in_si, "box": in_box, "core": in_core, "clad": ~(in_si | in_box | in_core)}
    return m, regions, half


# --- FEM ---------------------------------------------------------------------------------
def _forms():
    """The mode problem's forms (scripts/si_strip_modes.py, one formulation for both
    scripts) and the region-weighted |E|² functionals of the confinement factors."""
    from skfem import Functional

    from si_strip_modes import fem_operator_forms  # this directory: sys.path[0] of a script

    a_free, a_eps, b_form = fem_operator_forms()

    @Functional
    def ex2(w):
        return w.chi * w.e[0][0] ** 2

    @Functional
    def ey2(w):
        return w.chi * w.e[0][1] ** 2

    @Functional
    def ez2(w):
        return w.chi * w.e[1] ** 2

    return a_free, a_eps, b_form, ex2, ey2, ez2


class Problem:
    """Assembled operators of one cross-section (mesh, regions) at one wavelength."""

    def __init__(self, *, wavelength_um, pol, width_um, gap_um, offset_um, window_um,
                 mesh=MESH):
        from skfem import Basis, ElementTriN2, ElementTriP0, ElementTriP2

        self.k0 = 2 * math.pi / wavelength_um
        self.pol = pol
        m, regions, half = build_mesh(width_um=width_um, gap_um=gap_um, offset_um=offset_um,
                                      window_um=window_um, mesh=mesh)
        self.half = half
        basis = Basis(m, ElementTriN2() * ElementTriP2())
        basis0 = basis.with_element(ElementTriP0())
        self.basis = basis
        a_free, a_eps, b_form, ex2, ey2, ez2 = _forms()
        self.chi = {k: basis0.interpolate(v.astype(float)) for k, v in regions.items()}
        self.one = basis0.interpolate(np.ones(m.t.shape[1]))
        if half:
            walls = ["right", "top", "bottom"] + (["left"] if pol == "te" else [])
        else:
            walls = ["left", "right", "top", "bottom"]
        fixed = basis.get_dofs(walls).all()
        self.free = np.setdiff1d(np.arange(basis.N), fixed)
        f = self.free
        self.a_free = a_free.assemble(basis, k0=self.k0)[f][:, f].tocsc()
        self.a_chi = {k: a_eps.assemble(basis, k0=self.k0, chi=c)[f][:, f].tocsc()
                      for k, c in self.chi.items()}
        self.b = b_form.assemble(basis, k0=self.k0)[f][:, f].tocsc()
        self._fun = (ex2, ey2, ez2)
        self.dofs = int(len(f))
        self.cells = int(m.t.shape[1])

    def operator(self, n):
        return self.a_free + sum(n[k] ** 2 * self.a_chi[k] for k in REGIONS)

    def field_integrals(self, v, chi):
        """(∫χ Ex², ∫χ Ey², ∫χ ez_raw²) of a real mode vector on the free dofs."""
        full = np.zeros(self.basis.N)
        full[self.free] = v
        ex2, ey2, ez2 = self._fun
        e = self.basis.interpolate(full)
        return tuple(float(fn.assemble(self.basis, e=e, chi=chi)) for fn in (ex2, ey2, ez2))

    def solve(self, n, *, n_top_guess, k, n_floor, adjoint=True):
        """Guided modes of ``self.pol`` above n_floor, highest first (≤ k nearest the shift).

        Returns a list of dicts (n_eff, te_fraction, v, u): right eigenvector v and, with
        ``adjoint``, the left one u (for the exact eigenvalue derivatives).
        """
        a = self.operator(n)
        sigma = (self.k0 * (n_top_guess + 0.01)) ** 2
        lu = linalg.splu((a - sigma * self.b).tocsc())
        op = linalg.LinearOperator(a.shape, matvec=lambda q: lu.solve(self.b @ q), dtype=float)
        vals, vecs = linalg.eigs(op, k=k, which="LM", tol=1e-11)
        lams = sigma + 1.0 / vals.real
        modes = []
        for i in np.argsort(-lams):
            neff = math.sqrt(max(lams[i], 0.0)) / self.k0
            if neff <= n_floor:
                continue
            v = vecs[:, i]
            v = (v / v[np.argmax(np.abs(v))]).real
            ex, ey, _ = self.field_integrals(v, self.one)
            te = ex / (ex + ey)
            if (te > 0.5) != (self.pol == "te"):
                continue
            modes.append({"n_eff": neff, "lam": float(lams[i]), "te_fraction": te, "v": v})
        if adjoint and modes:
            opt = linalg.LinearOperator(a.shape, matvec=lambda q: lu.solve(self.b.T @ q, trans="T"),
                                        dtype=float)
            lv, uv = linalg.eigs(opt, k=k, which="LM", tol=1e-11)
            llams = sigma + 1.0 / lv.real
            for md in modes:
                j = int(np.argmin(np.abs(llams - md["lam"])))
                if abs(llams[j] - md["lam"]) > 1e-8 * md["lam"]:
                    raise RuntimeError(f"left/right eigenvalues differ: {llams[j]} vs {md['lam']}")
                u = uv[:, j]
                md["u"] = (u / u[np.argmax(np.abs(u))]).real
        return modes

    def derivatives(self, md, n):
        """∂n_eff/∂n_i (exact discrete-eigenvalue derivative) per region."""
        u, v = md["u"], md["v"]
        ubv = u @ (self.b @ v)
        scale = 2 * self.k0**2 * md["n_eff"]
        return {k: float(2 * n[k] * (u @ (self.a_chi[k] @ v)) / ubv / scale) for k in REGIONS}

    def confinement(self, md, n):
        """Electric-energy fractions ∫_i ε|E|²/∫ε|E|² (E_z = ez·k0²/β, as femwell)."""
        beta = md["n_eff"] * self.k0
        scale = (self.k0**2 / beta) ** 2
        parts = {}
        for k in REGIONS:
            ex, ey, ez = self.field_integrals(md["v"], self.chi[k])
            parts[k] = n[k] ** 2 * (ex + ey + scale * ez)
        tot = sum(parts.values())
        return {k: parts[k] / tot for k in REGIONS}


def window_for(k0, n_low, n_clad):
    g = k0 * math.sqrt(max(n_low**2 - n_clad**2, 1e-8))
    return float(np.clip(WINDOW["n_decay"] / g, WINDOW["w_min_um"], WINDOW["w_max_um"]))


def supermode_solve(*, pol, wavelength_um, width_um, gap_um, offset_um, n, guesses,
                    mesh=MESH, window_scale=1.0, cmt=False, window_um=None, projection=False):
    """Full supermode solve (two highest guided modes of ``pol``), optionally with the
    overlap (coupled-mode) route on the same mesh."""
    t0 = time.perf_counter()
    k0 = 2 * math.pi / wavelength_um
    n_top = max(guesses)
    n_low = max(min(guesses), n["clad"] + 1.5e-3)
    win = window_scale * (window_for(k0, n_low, n["clad"]) if window_um is None else window_um)
    prob = Problem(wavelength_um=wavelength_um, pol=pol, width_um=width_um, gap_um=gap_um,
                   offset_um=offset_um, window_um=win, mesh=mesh)
    k = 4 if offset_um == 0.0 else 8
    floor = n["clad"] + 2e-4
    modes = prob.solve(n, n_top_guess=n_top, k=k, n_floor=floor)
    out = {"polarization": pol, "wavelength_um": wavelength_um, "width_um": width_um,
           "gap_um": gap_um, "offset_um": offset_um, "window_um": round(win, 4),
           "dofs": prob.dofs, "n_clad": n["clad"]}
    for idx, md in enumerate(modes[:2], start=1):
        out[f"n{idx}"] = md["n_eff"]
        out[f"te_fraction{idx}"] = md["te_fraction"]
        d = prob.derivatives(md, n)
        g = prob.confinement(md, n)
        for r in REGIONS:
            out[f"dn{idx}_dn{r}"] = d[r]
            out[f"gamma{idx}_{r}"] = g[r]
    if cmt:
        out.update(_cmt(prob, n, modes, guesses, floor, projection))
    out["seconds"] = round(time.perf_counter() - t0, 2)
    return out


def _cmt(prob, n, modes, guesses, floor, projection):
    """Overlap route on the same mesh: isolated Si and PWG modes, 2 × 2 reduction."""
    n_si = dict(n, core=n["clad"])
    n_pwg = dict(n, si=n["clad"])
    res = {}
    iso = {}
    for name, nn, guess in (("pwg", n_pwg, guesses[1]), ("si", n_si, guesses[0])):
        ms = prob.solve(nn, n_top_guess=guess, k=3, n_floor=floor)
        if not ms:
            res["cmt_note"] = f"isolated {name} mode not guided"
            if projection and modes and "pwg" in iso:
                res.update(_full_projection(prob, (iso["pwg"]["v"], iso["pwg"]["n_eff"]),
                                            modes[0]))
            return res
        iso[name] = ms[0]
        res[f"n_iso_{name}"] = ms[0]["n_eff"]
    a = prob.operator(n)
    vs = [iso["si"]["v"], iso["pwg"]["v"]]
    us = [iso["si"]["u"], iso["pwg"]["u"]]
    mm = np.array([[u @ (a @ v) for v in vs] for u in us])
    nn_ = np.array([[u @ (prob.b @ v) for v in vs] for u in us])
    kk = np.linalg.solve(nn_, mm)
    lam, vec = np.linalg.eig(kk)
    order = np.argsort(-lam.real)
    lam, vec = lam.real[order], vec.real[:, order]
    beta_bar = math.sqrt(0.5 * (kk[0, 0] + kk[1, 1]))
    k0 = prob.k0
    res["cmt_n1"] = math.sqrt(lam[0]) / k0
    res["cmt_n2"] = math.sqrt(lam[1]) / k0
    res["cmt_delta_per_um"] = float((kk[0, 0] - kk[1, 1]) / (2 * beta_bar))
    res["cmt_kappa_per_um"] = float(math.sqrt(max(kk[0, 1] * kk[1, 0], 0.0)) / (2 * beta_bar))
    # power projections |∫E_p×H_s·z|²/(∫E_p×H_p·z ∫E_s×H_s·z) on the isolated PWG mode
    pwg = (iso["pwg"]["v"], iso["pwg"]["n_eff"])
    s_cmt = (vec[0, 0] * vs[0] + vec[1, 0] * vs[1], res["cmt_n1"])
    if projection:
        res["cmt_pwg_projection1"] = power_projection(prob, pwg, s_cmt)
    if projection and modes:
        res.update(_full_projection(prob, pwg, modes[0]))
    return res


def _full_projection(prob, pwg, mode):
    """Supermode 1 on the isolated PWG mode; femwell's value too where it is installed."""
    res = {"full_pwg_projection1": power_projection(prob, pwg, (mode["v"], mode["n_eff"]))}
    try:
        res["full_pwg_projection1_femwell"] = power_projection_femwell(
            prob, pwg, (mode["v"], mode["n_eff"]))
    except ImportError:
        pass
    return res


def _power_form():
    from skfem import Functional

    # ωμ0·H_t = ẑ × F with F = β E_t + (k0²/β)∇e_z (e_z: the solver's scaled E_z), so
    # ωμ0·(E_a × H_b)·ẑ = E_a,t·F_b; femwell's calculate_hfield gives the same H.
    @Functional
    def cross_power(w):
        ea, eza = w.ea
        eb, ezb = w.eb
        fb0 = w.beta_b * eb[0] + w.k0**2 / w.beta_b * ezb.grad[0]
        fb1 = w.beta_b * eb[1] + w.k0**2 / w.beta_b * ezb.grad[1]
        return ea[0] * fb0 + ea[1] * fb1

    return cross_power


def power_projection(prob, mode_a, mode_b):
    """|P_ab|²/(P_aa·P_bb), P_ab = ½∫(E_a × H_b + E_b × H_a)·ẑ dA, of two modes (v, n_eff)
    on the same mesh (real fields of lossless modes)."""
    basis = prob.basis
    form = _power_form()
    fields = []
    for v, neff in (mode_a, mode_b):
        e = np.zeros(basis.N)
        e[prob.free] = v
        fields.append((basis.interpolate(e), neff * prob.k0))

    def p(i, j):
        return float(form.assemble(basis, ea=fields[i][0], eb=fields[j][0], beta_b=fields[j][1],
                                   k0=prob.k0))

    pab = 0.5 * (p(0, 1) + p(1, 0))
    return pab**2 / (p(0, 0) * p(1, 1))


def power_projection_femwell(prob, mode_a, mode_b):
    """The same projection with femwell's calculate_hfield / calculate_overlap (optional
    cross-check; femwell is GPL-3.0 and not a dependency of this script)."""
    from femwell.maxwell.waveguide import calculate_hfield, calculate_overlap

    basis = prob.basis
    iz = basis.split_indices()[1]
    omega = prob.k0 * scipy.constants.speed_of_light
    fields = []
    for v, neff in (mode_a, mode_b):
        beta = neff * prob.k0
        e = np.zeros(basis.N, dtype=complex)
        e[prob.free] = v
        e[iz] /= 1j * beta / prob.k0**2
        fields.append((e, calculate_hfield(basis, e, beta, omega=omega)))
    (ea, ha), (eb, hb) = fields
    ab = calculate_overlap(basis, ea, ha, basis, eb, hb)
    aa = calculate_overlap(basis, ea, ha, basis, ea, ha)
    bb = calculate_overlap(basis, eb, hb, basis, eb, hb)
    return float(abs(ab) ** 2 / abs(aa * bb))


# --- plan --------------------------------------------------------------------------------
#: Guess of n_PWG − n_clad (sets the shift and window only).
PWG_EXCESS_GUESS = 0.0042
#: Full-solve widths around the estimated phase matching, nm (the quadratic fit of Δβ²).
SCAN_OFFSETS_NM = (-6.0, 0.0, 6.0)
#: Extra widths of the nominal rows (taper from 300 nm to the 80 nm tip), µm.
NOMINAL_WIDTHS_UM = (0.08, 0.20, 0.30)
#: Refined mesh of the convergence rows: every spacing × 0.6 (≈ 2.8× the unknowns).
FINE_MESH = {"h_si_edge": 0.0036, "h_si_in": 0.018, "ratio": 1.3, "h_core": 0.09, "h_far": 0.36}
PLANS = {
    "nominal": [("te", 1.31, GAP_UM, 0.0), ("tm", 1.31, GAP_UM, 0.0)],
    "gap": [(p, 1.31, g, 0.0) for g in (1.3, 0.5) for p in ("te", "tm")],
    "gap2": [(p, 1.31, g, 0.0) for g in (0.2,) for p in ("te", "tm")],
    "offset": [(p, 1.31, GAP_UM, d) for d in (2.0,) for p in ("te", "tm")],
    "offset1": [(p, 1.31, GAP_UM, d) for d in (1.0,) for p in ("te", "tm")],
    "wavelength": [(p, lam, GAP_UM, 0.0) for lam in (1.26,) for p in ("te", "tm")],
    "wavelength2": [(p, lam, GAP_UM, 0.0) for lam in (1.36,) for p in ("te", "tm")],
    "temperature_scan": [(p, 1.31, GAP_UM, 0.0, t) for t in (-40.0, 125.0) for p in ("te", "tm")],
    "gap3": [(p, 1.31, g, 0.0) for g in (0.8,) for p in ("te", "tm")],
    "offset3": [(p, 1.31, GAP_UM, d) for d in (3.0,) for p in ("te", "tm")],
}
#: ``narrow`` plan: full solves on the narrow side of the nominal phase matching (w* + these),
#: where the Si-like supermode nears its cutoff (the shape of δ(w) there).
NARROW_OFFSETS_NM = (-10.0, -20.0, -30.0)
#: ``tips`` plan: tip widths (λ 1.31 µm, nominal gap) whose first supermode is projected on
#: the isolated PWG mode (the power the PWG takes at the tip).
TIP_WIDTHS_UM = {"te": (0.06, 0.1, 0.12, 0.13), "tm": (0.06, 0.07, 0.085, 0.09)}
CHECK_TEMPERATURES_C = (-40.0, 125.0)


class Strip:
    """Isolated Si-strip index n(w) from yieldmc/data/si_strip_modes.json (same engine)."""

    def __init__(self):
        self.rows = json.loads((ROOT / "yieldmc/data/si_strip_modes.json").read_text())["rows"]

    def table(self, pol, lam):
        r = [x for x in self.rows
             if x["polarization"] == pol and abs(x["wavelength_um"] - lam) < 1e-9]
        return np.array([x["width_um"] for x in r]), np.array([x["n_eff"] for x in r])

    def n(self, pol, lam, w, n_clad):
        ws, ns = self.table(pol, lam)
        return float(np.interp(w, ws, ns)) if w >= ws[0] else n_clad

    def width_at(self, pol, lam, n_target):
        ws, ns = self.table(pol, lam)
        return float(np.interp(n_target, ns, ws))

    def slope(self, pol, lam, w):
        ws, ns = self.table(pol, lam)
        return float(np.interp(w, ws, np.gradient(ns, ws)))


class Missing(Exception):
    """A solve that ``--cached-only`` does not run."""


class Cache:
    """Finished solves as JSON lines keyed by their task string (``cached_only``: a missing
    solve raises :class:`Missing` instead of running)."""

    def __init__(self, path, cached_only=False):
        self.path = Path(path)
        self.cached_only = cached_only
        self.data = {}
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                if line.strip():
                    d = json.loads(line)
                    self.data[d["key"]] = d

    def get(self, key, fn):
        if key not in self.data:
            if self.cached_only:
                raise Missing(key)
            d = fn()
            d["key"] = key
            self.data[key] = d
            with self.path.open("a") as f:
                f.write(json.dumps(d) + "\n")
            print(f"{key}: {d.get('seconds', 0):.0f} s", flush=True)
        return self.data[key]


def solve_cached(cache, *, pol, lam, w, gap, offset, tag, temperature_c=TEMPERATURE_C,
                 mesh=MESH, window_scale=1.0, cmt=False, projection=False, strip):
    w = round(float(w), 5)
    key = (f"{tag}|{pol}|{lam}|w={w}|g={gap}|d={offset}|T={temperature_c}|"
           f"mesh={sorted(mesh.items())}|win={window_scale}|cmt={cmt}|proj={projection}")

    def run():
        n = material_indices(lam, temperature_c)
        guesses = (strip.n(pol, lam, w, n["clad"]), n["clad"] + PWG_EXCESS_GUESS)
        r = supermode_solve(pol=pol, wavelength_um=lam, width_um=w, gap_um=gap, offset_um=offset,
                            n=n, guesses=guesses, mesh=mesh, window_scale=window_scale,
                            cmt=cmt, projection=projection)
        r.update(tag=tag, temperature_c=temperature_c, mesh=mesh, window_scale=window_scale,
                 n_mat=n)
        return r

    return cache.get(key, run)


def fit_crossing(rows, lam):
    """Phase matching from the full solves: the parabola of Δβ² = (k0(n1 − n2))² through the
    width with the smallest splitting and its two neighbours (δ(w) is far from linear over a
    wider span: the strip mode is near its cutoff), w* at its vertex, κ = ½·sqrt(min Δβ²),
    dδ/dw = sqrt(curvature). ``scan`` adds solves at the vertex until one lies within 0.5 nm,
    and 1 nm either side of it where the three widths span more than 3.2 nm."""
    k0 = 2 * math.pi / lam
    rows = sorted(rows, key=lambda r: r["width_um"])
    i = int(np.argmin([r["n1"] - r["n2"] for r in rows]))
    j = min(max(i - 1, 0), len(rows) - 3)
    use = rows[j:j + 3]  # the smallest splitting and its neighbours in width
    rows = [rows[i]] + rows[:i] + rows[i + 1:]
    w = np.array([r["width_um"] for r in use])
    d2 = np.array([(k0 * (r["n1"] - r["n2"])) ** 2 for r in use])
    a, b, c = np.polyfit(w, d2, 2)
    w_star = -b / (2 * a)
    min_d2 = c - b * b / (4 * a)
    return {"w_star_um": float(w_star), "kappa_per_um": float(math.sqrt(max(min_d2, 0.0)) / 2),
            "ddelta_dw_per_um2": float(math.sqrt(max(a, 0.0))),
            "bracketed": bool(min(q["width_um"] for q in rows) < rows[0]["width_um"]
                              < max(q["width_um"] for q in rows)),
            "min_sampled_splitting_per_um": float(math.sqrt(d2.min())),
            "fit_widths_um": [float(x) for x in w],
            "widths_um": sorted(float(r["width_um"]) for r in rows)}


def first_order_width(cache, pol, lam, temperature_c):
    """Phase matching at another temperature from the nominal crossing's rows: the bare-mode
    index difference's first-order shift Δδ = k0·Σ_r D_r·Δn_r, D_r = (∂n1/∂n_r − ∂n2/∂n_r)·
    (β1 − β2)/δ averaged over the rows 3 … 8.5 nm either side of w* (the two-mode relation),
    and w* − Δδ/(dδ/dw). A starting guess for the ``temperature_scan`` solves."""
    rows = [r for r in cache.data.values() if r.get("tag") == "nominal" and "n2" in r
            and r["polarization"] == pol and r["wavelength_um"] == lam and r["gap_um"] == GAP_UM
            and r["offset_um"] == 0.0 and r["temperature_c"] == TEMPERATURE_C
            and r["mesh"] == MESH and r["window_scale"] == 1.0]
    fit = fit_crossing(rows, lam)
    k0 = 2 * math.pi / lam
    n0, n1 = material_indices(lam, TEMPERATURE_C), material_indices(lam, temperature_c)
    d_delta = []
    for r in rows:
        u = r["width_um"] - fit["w_star_um"]
        if 3e-3 <= abs(u) <= 8.5e-3:
            split = k0 * (r["n1"] - r["n2"])
            dl = math.copysign(math.sqrt(split**2 - 4 * fit["kappa_per_um"] ** 2), u)
            d_delta.append(k0 * sum((r[f"dn1_dn{k}"] - r[f"dn2_dn{k}"]) * split / dl * (n1[k] - n0[k])
                                    for k in REGIONS))
    return fit["w_star_um"] - float(np.mean(d_delta)) / fit["ddelta_dw_per_um2"]


def scan(cache, strip, pol, lam, gap, offset, tag, temperature_c=TEMPERATURE_C):
    """CMT node at the table's phase-matching guess, then full solves around the estimate
    (at another temperature than the table's: full solves only, around the first-order
    estimate :func:`first_order_width`)."""
    n = material_indices(lam, temperature_c)
    kw = {"tag": tag, "strip": strip, "temperature_c": temperature_c}
    k0 = 2 * math.pi / lam
    if temperature_c != TEMPERATURE_C:
        w_g = w_c = round(first_order_width(cache, pol, lam, temperature_c), 4)
        node = {}
        offsets = (-3.0, 0.0, 3.0)
    else:
        w_g = round(strip.width_at(pol, lam, n["clad"] + PWG_EXCESS_GUESS), 4)
        node = solve_cached(cache, pol=pol, lam=lam, w=w_g, gap=gap, offset=offset, cmt=True, **kw)
        w_c = w_g
        offsets = SCAN_OFFSETS_NM
    incomplete = []  # --cached-only: a solve the crossing needed is not in the cache
    if "cmt_delta_per_um" in node:
        w_c = w_g - node["cmt_delta_per_um"] / (k0 * strip.slope(pol, lam, w_g))
    rows = [r for r in cache.data.values() if "n2" in r and r["tag"] == tag
            and r["polarization"] == pol and r["wavelength_um"] == lam and r["gap_um"] == gap
            and r["offset_um"] == offset and r["temperature_c"] == temperature_c
            and r["mesh"] == MESH and r["window_scale"] == 1.0
            and abs(r["width_um"] - w_c) < 0.015]
    if "n2" in node and node not in rows:
        rows.append(node)
    for d in offsets:
        if any(abs(r["width_um"] - (w_c + 1e-3 * d)) < 2e-3 for r in rows):
            continue  # a solve within 2 nm is already there
        r = _cached_or_flag(incomplete, solve_cached, cache,
                            pol=pol, lam=lam, w=round(w_c + 1e-3 * d, 4), gap=gap,
                            offset=offset, **kw)
        if r is not None and "n2" in r:
            rows.append(r)
    if incomplete and len(rows) < 3:
        raise Missing(incomplete[0])
    fit = fit_crossing(rows, lam)
    for _ in range(3):  # extend the scan until the smallest splitting is bracketed
        if fit["bracketed"] or len(rows) < 3:
            break
        ws = sorted(r["width_um"] for r in rows)
        w_min = min(rows, key=lambda q: (q["n1"] - q["n2"]))["width_um"]
        w_new = ws[0] - 5e-3 if w_min <= ws[0] else ws[-1] + 5e-3
        r = _cached_or_flag(incomplete, solve_cached, cache,
                            pol=pol, lam=lam, w=round(w_new, 4), gap=gap, offset=offset, **kw)
        if r is None or "n2" not in r:
            break
        rows.append(r)
        fit = fit_crossing(rows, lam)
    for _ in range(3):  # solves at the vertex until one lies within 0.5 nm of it
        if not fit["bracketed"] or any(abs(q["width_um"] - fit["w_star_um"]) < 5e-4
                                       for q in rows):
            break
        r = _cached_or_flag(incomplete, solve_cached, cache,
                            pol=pol, lam=lam, w=round(fit["w_star_um"], 4), gap=gap,
                            offset=offset, **kw)
        if r is None or "n2" not in r or any(abs(r["width_um"] - q["width_um"]) < 1e-5 for q in rows):
            break
        rows.append(r)
        fit = fit_crossing(rows, lam)
    if fit["bracketed"] and fit["fit_widths_um"][2] - fit["fit_widths_um"][0] > 3.2e-3:
        # a wide triple: δ(w) is not linear over it; add solves 1 nm either side of w*
        for dw in (-1e-3, 1e-3):
            w_new = round(fit["w_star_um"] + dw, 4)
            if all(abs(q["width_um"] - w_new) > 4e-4 for q in rows):
                r = _cached_or_flag(incomplete, solve_cached, cache,
                                    pol=pol, lam=lam, w=w_new, gap=gap, offset=offset, **kw)
                if r is not None and "n2" in r:
                    rows.append(r)
        fit = fit_crossing(rows, lam)
    if incomplete and (not fit["bracketed"] or len(rows) < 3):
        raise Missing(incomplete[0])
    out = {"polarization": pol, "wavelength_um": lam, "gap_um": gap, "offset_um": offset,
           "temperature_c": temperature_c, "cmt_node_width_um": w_g, "w_estimate_um": float(w_c)}
    out.update(fit_crossing(rows, lam))
    for k in ("cmt_kappa_per_um", "cmt_delta_per_um", "n_iso_si", "n_iso_pwg", "cmt_n1",
              "cmt_n2", "n1", "n2"):
        if k in node:
            out[f"node_{k}"] = node[k]
    if "n_iso_pwg" in node:
        # isolated-mode phase matching: the strip table's n(w) = the isolated PWG index
        out["w_iso_um"] = strip.width_at(pol, lam, node["n_iso_pwg"])
        out["w_star_minus_w_iso_nm"] = 1e3 * (out["w_star_um"] - out["w_iso_um"])
    if "cmt_kappa_per_um" in node:
        out["kappa_cmt_over_full"] = node["cmt_kappa_per_um"] / out["kappa_per_um"]
    return out


def _cached_or_flag(incomplete, fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except Missing as exc:
        incomplete.append(str(exc))
        return None


def cached(fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, or None where ``--cached-only`` skips a missing solve."""
    try:
        return fn(*args, **kwargs)
    except Missing as exc:
        print(f"skipped (not cached): {exc}", flush=True)
        return None


def run_plan(args, write=None):
    strip = Strip()
    cache = Cache(args.cache, cached_only=args.cached_only)
    crossings, convergence, temperature = [], [], []
    plans = args.plan.split(",")
    for plan in plans:
        if plan in PLANS:
            for pol, lam, gap, offset, *temp in PLANS[plan]:
                try:
                    c = scan(cache, strip, pol, lam, gap, offset, tag=plan,
                             temperature_c=temp[0] if temp else TEMPERATURE_C)
                except Missing as exc:
                    print(f"skipped (not cached): {plan} {pol} {lam} g={gap} d={offset} {temp}: {exc}", flush=True)
                    continue
                crossings.append(c)
                print(f"crossing {pol} {lam} g={gap} d={offset}: w*={c['w_star_um']:.4f} "
                      f"κ={c['kappa_per_um']:.5f} κ_cmt/κ={c.get('kappa_cmt_over_full', 0):.3f}",
                      flush=True)
        if plan == "nominal":
            for pol in ("te", "tm"):
                for w in NOMINAL_WIDTHS_UM:
                    tip = w == min(NOMINAL_WIDTHS_UM)
                    solve_cached(cache, pol=pol, lam=1.31, w=w, gap=GAP_UM, offset=0.0,
                                 tag="nominal", cmt=tip, projection=tip, strip=strip)
        if plan == "narrow":
            for c in [c for c in crossings if c["gap_um"] == GAP_UM and c["offset_um"] == 0.0
                      and c["wavelength_um"] == 1.31 and c["temperature_c"] == TEMPERATURE_C]:
                for d in NARROW_OFFSETS_NM:
                    cached(solve_cached, cache, pol=c["polarization"], lam=1.31,
                                 w=round(c["w_star_um"] + 1e-3 * d, 4), gap=GAP_UM, offset=0.0,
                                 tag="narrow", strip=strip)
        if plan == "tips":
            for pol, widths in TIP_WIDTHS_UM.items():
                for w in widths:
                    cached(solve_cached, cache, pol=pol, lam=1.31, w=w, gap=GAP_UM, offset=0.0,
                           tag="tips", cmt=True, projection=True, strip=strip)
        if plan == "convergence":
            for c in [c for c in crossings if c["gap_um"] == GAP_UM and c["offset_um"] == 0.0
                      and c["wavelength_um"] == 1.31 and c["temperature_c"] == TEMPERATURE_C]:
                w = round(c["w_star_um"], 3)
                row = {"polarization": c["polarization"], "width_um": w}
                for name, kw in (("base", {}), ("fine_mesh", {"mesh": FINE_MESH}),
                                 ("window_x1.5", {"window_scale": 1.5})):
                    r = solve_cached(cache, pol=c["polarization"], lam=1.31, w=w, gap=GAP_UM,
                                     offset=0.0, tag="convergence", strip=strip, **kw)
                    row[name] = {"n1": r["n1"], "n2": r["n2"], "dofs": r["dofs"],
                                 "window_um": r["window_um"], "seconds": r["seconds"],
                                 "kappa_at_w_per_um": math.pi / 1.31 * (r["n1"] - r["n2"])}
                convergence.append(row)
        if plan == "temperature":  # first order vs solves where the supermodes are unmixed
            for pol in ("te", "tm"):
                for w in (min(NOMINAL_WIDTHS_UM), max(NOMINAL_WIDTHS_UM)):
                    tip = w == min(NOMINAL_WIDTHS_UM)
                    base = solve_cached(cache, pol=pol, lam=1.31, w=w, gap=GAP_UM, offset=0.0,
                                        tag="nominal", cmt=tip, projection=tip, strip=strip)
                    for t in CHECK_TEMPERATURES_C:
                        r = solve_cached(cache, pol=pol, lam=1.31, w=w, gap=GAP_UM, offset=0.0,
                                         tag="temperature", temperature_c=t, strip=strip)
                        n0, n1 = base["n_mat"], r["n_mat"]
                        row = {"polarization": pol, "width_um": w, "temperature_c": t}
                        for i in (1, 2):
                            if f"n{i}" not in base or f"n{i}" not in r:
                                continue
                            row[f"n{i}_base"] = base[f"n{i}"]
                            row[f"n{i}_solve"] = r[f"n{i}"]
                            row[f"n{i}_first_order"] = base[f"n{i}"] + sum(
                                base[f"dn{i}_dn{k}"] * (n1[k] - n0[k]) for k in REGIONS)
                        temperature.append(row)
        if write is not None:
            write(cache, crossings, convergence, temperature)
    return cache, crossings, convergence, temperature


# --- output ------------------------------------------------------------------------------
ROW_KEYS = ("tag", "polarization", "wavelength_um", "width_um", "gap_um", "offset_um",
            "temperature_c", "n1", "n2", "te_fraction1", "te_fraction2",
            *[f"dn{i}_dn{r}" for i in (1, 2) for r in REGIONS],
            *[f"gamma{i}_{r}" for i in (1, 2) for r in REGIONS],
            "n_iso_si", "n_iso_pwg", "cmt_n1", "cmt_n2", "cmt_delta_per_um", "cmt_kappa_per_um",
            "cmt_pwg_projection1", "full_pwg_projection1", "full_pwg_projection1_femwell",
            "window_um", "dofs", "seconds")


def summarize(cache, crossings, convergence, temperature, args, runtime):
    import skfem

    rows = [r for r in cache.data.values()
            if r.get("mesh") == MESH and r.get("window_scale") == 1.0]
    rows.sort(key=lambda r: (r["tag"], r["polarization"], r["wavelength_um"], r["gap_um"],
                             r["offset_um"], r["temperature_c"], r["width_um"]))
    out_rows = []
    for r in rows:
        o = {k: r[k] for k in ROW_KEYS if k in r}
        c = [c for c in crossings if all(c[k] == r[k] for k in (
            "polarization", "wavelength_um", "gap_um", "offset_um", "temperature_c"))]
        if c:
            kap, slope = c[0]["kappa_per_um"], c[0]["ddelta_dw_per_um2"]
            dw = r["width_um"] - c[0]["w_star_um"]
            o["c12_per_um_width"] = -kap * slope / ((slope * dw) ** 2 + 4 * kap**2)
        out_rows.append(o)
    agree = [r for r in rows if "cmt_n1" in r and "n2" in r]
    lams = sorted({r["wavelength_um"] for r in rows})
    try:
        import femwell
        femwell_version = getattr(femwell, "__version__", None)
    except ImportError:
        femwell_version = None
    if femwell_version is None:
        from importlib.metadata import PackageNotFoundError, version
        try:
            femwell_version = version("femwell")
        except PackageNotFoundError:
            femwell_version = "not installed"
    return {
        "description": "Two highest local supermodes (per polarisation) of the Si-taper → PWG "
                       "coupler cross-section: 220 nm Si strip on SiO2 BOX, PWG cladding polymer "
                       "around it, the 5.5 µm PWG core `gap` above the strip, shifted sideways by "
                       "`offset`. Read by the runtime coupler (yieldmc/physics/supermodes.py).",
        "columns": {
            "n1, n2": "effective indices of the two highest guided supermodes of the "
                      "polarisation (n1 > n2; n2 absent where only one is guided above "
                      "n_clad + 2e-4)",
            "dn{i}_dn{r}": "∂n_eff/∂n_r of supermode i, r ∈ si, box, core, clad (exact "
                           "discrete-eigenvalue derivative, adjoint); first-order shifts: "
                           "Δn_eff = Σ_r ∂n_eff/∂n_r·Δn_r",
            "gamma{i}_{r}": "electric-energy confinement factor ∫_r ε|E|²/∫ε|E|² of supermode i",
            "te_fraction{i}": "∫|Ex|²/∫(|Ex|²+|Ey|²)",
            "n_iso_si, n_iso_pwg": "isolated modes on the same mesh (core → cladding; strip → "
                                   "cladding)",
            "cmt_*": "overlap route: 2 × 2 Petrov–Galerkin reduction of the full operator on "
                     "the isolated modes; δ = β_si − β_pwg incl. self-coupling, κ",
            "cmt_pwg_projection1, full_pwg_projection1": "power projection of supermode 1 "
                                                         "(2 × 2 model / full solve) on the "
                                                         "isolated PWG mode",
            "crossings": "per (pol, λ, gap, offset): quadratic fit of (β1 − β2)² over the "
                         "widths around phase matching: w* (phase matching), κ = ½ min(β1 − β2), "
                         "dδ/dw; node_cmt_*: overlap route at cmt_node_width_um; w_iso_um: "
                         "width where the isolated strip index (si_strip_modes.json) equals the "
                         "isolated PWG index",
            "c12_per_um_width": "local-mode coupling C12(w) = dθ/dw = −κ·(dδ/dw)/((dδ/dw)²"
                                "(w − w*)² + 4κ²), 1/µm per µm of width, from the row's "
                                "crossing (two-mode model, mixing angle θ = ½·atan(2κ/δ)); "
                                "along a taper multiply by dw/dz",
        },
        "geometry": {
            "si_thickness_um": THICKNESS_UM, "core_width_um": CORE_UM,
            "core_thickness_um": CORE_UM, "nominal_gap_um": GAP_UM,
            "gap": "PWG core bottom above the Si strip top",
            "box": f"semi-infinite for the modes (window {WINDOW['box_um']} µm, PEC); "
                   "substrate leakage not modelled",
            "sidewalls": "vertical",
            "source": "conf/package/pwg/polysiloxane.yaml, conf/package/coupler/adiabatic.yaml",
        },
        "materials": {
            "temperature_c": TEMPERATURE_C, "humidity_rh": HUMIDITY_RH,
            "source": "yieldmc.physics.materials: silicon_index, silica_index, polymer_index "
                      "(module polysiloxane coefficients) with n_ref core/clad from "
                      "conf/package/pwg/polysiloxane.yaml",
            "reference": pwg_reference(),
            "per_wavelength": [dict(wavelength_um=lam, **material_indices(lam)) for lam in lams],
            "dn_dT_per_k": {"si": 1.86e-4, "box": 0.95e-5, "core": -3.45e-4, "clad": -3.45e-4},
            "dn_dRH_per_rh": {"core": 5e-6, "clad": 5e-6},
        },
        "solver": {
            "name": "finite elements (scikit-fem): 2nd-order Nédélec (E_t) × 2nd-order Lagrange "
                    "(E_z), femwell's formulation (doi:10.1080/02726340290084012); power "
                    "projections from E and H = curl E/(iωμ0) evaluated on the elements "
                    "(cross-checked against femwell's calculate_hfield/calculate_overlap "
                    "where femwell is installed: full_pwg_projection1_femwell)",
            "scikit_fem_version": getattr(skfem, "__version__", "?"),
            "femwell_version": femwell_version,
            "scipy_version": scipy.__version__, "numpy_version": np.__version__,
            "python": platform.python_version(),
            "eigensolver": "scipy ARPACK shift-invert (SuperLU), tol 1e-11; left eigenvectors",
            "symmetry": "offset 0: half domain x ≥ 0, TE class PEC / TM class PMC at x = 0; "
                        "offset ≠ 0: full domain; PEC outer window",
        },
        "mesh": {**MESH, "rule": "tensor triangle mesh, nodes on every interface; spacing "
                 "h_si_edge at the strip's edges growing by ratio to h_si_in inside the strip, "
                 "to h_core between strip and core and through the core, to h_far outside",
                 "fine_mesh": FINE_MESH},
        "window": {**WINDOW, "rule": "beyond the core sideways and above: n_decay/γ, γ = "
                   "k0·sqrt(n_low² − n_clad²), n_low = max(lower guess, n_clad + 1.5e-3), "
                   "clipped to [w_min_um, w_max_um]; BOX depth box_um"},
        "width_sampling": {"scan_offsets_nm": list(SCAN_OFFSETS_NM),
                           "nominal_widths_um": list(NOMINAL_WIDTHS_UM),
                           "rule": "per (pol, λ, gap, offset): overlap-route node at the "
                                   "width where the strip table gives n_clad + "
                                   f"{PWG_EXCESS_GUESS}; full solves at the estimated phase "
                                   "matching + scan_offsets_nm"},
        "crossings": crossings,
        "convergence": convergence,
        "temperature_check": temperature,
        "agreement": {
            "note": "overlap route (2 × 2 model) vs full solves at the same nodes",
            "max_abs_dn1": max((abs(r["cmt_n1"] - r["n1"]) for r in agree), default=None),
            "max_abs_dn2": max((abs(r["cmt_n2"] - r["n2"]) for r in agree), default=None),
            "kappa_cmt_over_full": [c.get("kappa_cmt_over_full") for c in crossings],
        },
        "provenance": {
            "date": datetime.date.today().isoformat(),
            "command": "python scripts/si_pwg_supermodes.py " + " ".join(args.argv),
            "runtime_s": round(runtime, 1),
            "solve_seconds": round(sum(r.get("seconds", 0) for r in cache.data.values()), 1),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared, nice 19)",
            "script": "scripts/si_pwg_supermodes.py",
        },
        "rows": out_rows,
    }


def report(path):
    """Markdown tables of the headline numbers of a written JSON (no solves)."""
    d = json.loads(Path(path).read_text())
    print("| pol | λ µm | gap µm | offset µm | T °C | w* nm | κ full /µm | κ overlap /µm | ratio | "
          "w* − w_iso nm | dδ/dw /µm² |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for c in d["crossings"]:
        print(f"| {c['polarization']} | {c['wavelength_um']} | {c['gap_um']} | {c['offset_um']} | "
              f"{c['temperature_c']:.0f} | "
              f"{1e3 * c['w_star_um']:.1f} | {c['kappa_per_um']:.4f} | "
              f"{c.get('node_cmt_kappa_per_um', float('nan')):.4f} | "
              f"{c.get('kappa_cmt_over_full', float('nan')):.3f} | "
              f"{c.get('w_star_minus_w_iso_nm', float('nan')):.1f} | "
              f"{c['ddelta_dw_per_um2']:.2f} |")
    dwdz = 1e-3 * (300.0 - 80.0) / 1500.0  # a linear 300 → 80 nm taper of 1.5 mm (an example)
    print(f"\nLandau–Zener transfer loss at phase matching for a linear 300 → 80 nm taper of 1.5 mm "
          f"(|dw/dz| = {dwdz:.3e}): P = exp(−2πκ²/(dδ/dw·|dw/dz|))")
    for c in d["crossings"]:
        p_lz = math.exp(-2 * math.pi * c["kappa_per_um"] ** 2 / (c["ddelta_dw_per_um2"] * dwdz))
        print(f"  {c['polarization']} λ={c['wavelength_um']} gap={c['gap_um']} "
              f"offset={c['offset_um']} T={c['temperature_c']:.0f}: P = {p_lz:.3g} "
              f"({-10 * math.log10(max(1 - p_lz, 1e-12)):.2f} dB)")
    print()
    print("| pol | w nm | mesh | n1 | n2 | κ(w) = π(n1 − n2)/λ /µm | dofs | window µm |")
    print("|---|---|---|---|---|---|---|---|")
    for r in d["convergence"]:
        for name in ("base", "fine_mesh", "window_x1.5"):
            if name in r:
                q = r[name]
                print(f"| {r['polarization']} | {1e3 * r['width_um']:.1f} | {name} | "
                      f"{q['n1']:.7f} | {q['n2']:.7f} | {q['kappa_at_w_per_um']:.6f} | "
                      f"{q['dofs']} | {q['window_um']:.1f} |")
    print()
    print("| pol | w nm | T °C | n1 solve | n1 first order | n2 solve | n2 first order |")
    print("|---|---|---|---|---|---|---|")
    for r in d["temperature_check"]:
        nan = float("nan")
        print(f"| {r['polarization']} | {1e3 * r['width_um']:.1f} | {r['temperature_c']:.0f} | "
              f"{r['n1_solve']:.6f} | {r['n1_first_order']:.6f} | {r.get('n2_solve', nan):.6f} | "
              f"{r.get('n2_first_order', nan):.6f} |")
    print()
    print("| pol | w nm | n1 | n2 | Γ1 si/box/core/clad | full proj. on PWG | femwell |")
    print("|---|---|---|---|---|---|---|")
    for r in d["rows"]:
        if r["tag"] == "nominal" and "full_pwg_projection1" in r:
            g = "/".join(f"{r[f'gamma1_{k}']:.3f}" for k in REGIONS)
            print(f"| {r['polarization']} | {1e3 * r['width_um']:.0f} | {r['n1']:.6f} | "
                  f"{r.get('n2', float('nan')):.6f} | {g} | {r['full_pwg_projection1']:.4f} | "
                  f"{r.get('full_pwg_projection1_femwell', float('nan')):.4f} |")
    a = d["agreement"]
    print(f"\noverlap route vs full solves at the same nodes: max |Δn1| = {a['max_abs_dn1']:.2e}, "
          f"max |Δn2| = {a['max_abs_dn2']:.2e}")
    ratio = [(r["cmt_n1"] - r["cmt_n2"]) / (r["n1"] - r["n2"]) for r in d["rows"]
             if "cmt_n1" in r and "n2" in r]
    print(f"splitting overlap/full at the same nodes: {min(ratio):.3f} … {max(ratio):.3f} "
          f"({len(ratio)} nodes)")
    kr = [c["kappa_cmt_over_full"] for c in d["crossings"] if "kappa_cmt_over_full" in c]
    print(f"κ overlap/full: {min(kr):.3f} … {max(kr):.3f} ({len(kr)} crossings)")
    samp = max(c["min_sampled_splitting_per_um"] / (2 * c["kappa_per_um"]) for c in d["crossings"])
    print(f"largest sampled minimum splitting / 2κ: {samp:.4f}")
    pv = d["provenance"]
    print(f"{len(d['rows'])} rows; solve time {pv['solve_seconds']:.0f} s in all ({pv['machine']})")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plan", default="nominal,convergence,gap,offset,temperature,wavelength,"
                    "gap2,wavelength2,offset1")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/si_pwg_supermodes.jsonl"))
    ap.add_argument("--out-json", type=Path, default=ROOT / "yieldmc/data/si_pwg_supermodes.json")
    ap.add_argument("--cached-only", action="store_true",
                    help="run no solve: what is not in --cache is left out (the JSON from finished solves)")
    ap.add_argument("--report", action="store_true",
                    help="print the headline tables of --out-json (no solves) and exit")
    args = ap.parse_args(argv)
    if args.report:
        report(args.out_json)
        return 0
    args.argv = sys.argv[1:] if argv is None else list(argv)
    t0 = time.perf_counter()

    def write(cache, crossings, convergence, temperature):
        table = summarize(cache, crossings, convergence, temperature, args,
                          time.perf_counter() - t0)
        args.out_json.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out_json.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(table, indent=1, ensure_ascii=False) + "\n")
        tmp.replace(args.out_json)
        print(f"wrote {args.out_json}: {len(table['rows'])} rows, {len(crossings)} crossings",
              flush=True)

    run_plan(args, write=write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
