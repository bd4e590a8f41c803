"""Reference modes of a rectangular polymer-waveguide (PWG) core from a full-vector solver.

Writes ``tests/data/pwg_modes.csv`` (one row per core) and ``tests/data/pwg_modes.json``
(provenance and the discretisation check), the reference that
``yieldmc.physics.slab.pwg_effective_index`` / ``pwg_mode_radii_um`` /
``pwg_vertical_decay_per_um`` are fitted to (``scripts/fit_pwg_modes.py``) and tested
against (``tests/test_pwg_modes.py``).

Solver: EMpy's full-vector finite-difference mode solver
(``EMpy.modesolvers.FD.VFDModeSolver``; A. B. Fallahkhair, K. S. Li, T. E. Murphy,
J. Lightwave Technol. 26:1423 (2008)); PyPI package ``ElectroMagneticPython``. It is an
optional extra for this script only (``pip install ElectroMagneticPython``); nothing in
``yieldmc/`` imports it.

Geometry: core ``|x| < W/2, |y| < T/2`` (W = width, T = thickness) of index
``n_clad + Δn`` in a uniform cladding ``n_clad``. Only the quadrant x, y ≥ 0 is meshed,
with symmetry walls at x = 0 and y = 0 (EMpy boundary ``"0A0A"``: Hy even, Hx odd → the
fundamental quasi-TE, Ex-major mode) and Hx = Hy = 0 on the outer walls. The mesh has a
node on each core edge (so every cell is wholly core or cladding), is uniform (step h) over
the core and 2.5 µm beyond, then grows geometrically (×1.1 per cell, capped at
0.3/γ_far) to ``12/γ_far`` beyond that, γ_far = k0·sqrt(n_eff² − n_clad²) being the
far-field decay rate (found from a first solve and re-meshed when needed). The level-1
mesh (h = 0.1 µm) is the level-0 mesh (h = 0.2 µm) with every cell halved, so the two give
a clean second-order Richardson extrapolation, ``f = f1 + (f1 − f0)/3``; the table stores
the extrapolated values. The check that follows the table (``--check-only`` re-runs it)
measures their error against the extrapolation of level-1/2 meshes (and level 3, h =
0.025 µm, at the nominal core) at the nominal and five corner cores, repeats two cores in a
1.5× wider window, and solves one quasi-TM mode directly. Result (pwg_modes.json): stored
values within 2e-8 in n_eff and 2e-6 relative in w_x, w_y and γ.

Per core it stores:

* ``n_eff_te``: fundamental quasi-TE (Ex-major) mode index.
* ``n_eff_tm``: fundamental quasi-TM (Ey-major) mode index. By the 90° rotation symmetry it
  is the quasi-TE index of the T × W core, taken from that table row (the width and
  thickness grids are equal; the check verifies it against a direct quasi-TM solve);
  empty for held-out rows.
* ``w_x_um``, ``w_y_um``: the separable Gaussian ``exp(−x²/w_x² − y²/w_y²)`` (1/e field
  radii) maximising the power overlap ``(∫E·G)²/(∫E²·∫G²)`` with the solver's Ex
  (midpoint rule on the solver's cells; ``overlap`` is that maximum).
* ``gamma_per_um``: vertical decay rate of Ex below the core: minus the least-squares slope
  of ``ln|Ex(0, y)|`` sampled at 69 equispaced points over ``0.3 µm ≤ |y| − T/2 ≤ 2 µm``
  (Ex at x = 0 from the two cell columns next to the symmetry wall, ``(9 E(h/2) −
  E(3h/2))/8``, and a cubic spline through the cells below the core edge).
* ``richardson_*``: the Richardson correction (extrapolated − level-1 value), an upper
  estimate of the level-1 discretisation error.

Rows: the grid (``set = grid``, used by the fit) and seeded random held-out cores
(``set = holdout``, never used by the fit).

Run time (2 worker processes on 2 shared cores): table 1088 s (490 cores), check 179 s.

Usage::

    python scripts/pwg_mode_table.py                 # table + check, both cores
    python scripts/pwg_mode_table.py --grid small    # quick preliminary table
    python scripts/pwg_mode_table.py --check-only    # re-run only the discretisation check
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

N_CLAD = 1.55
H0_UM = 0.2  # level-0 mesh step over the core
FINE_UM = 2.5  # uniform mesh beyond the core edge
GROWTH = 1.1  # geometric growth of the outer mesh (level 0)
CAP_DECAYS = 0.3  # largest outer cell (level 0), in units of 1/γ_far
WINDOW_DECAYS = 12.0  # outer wall at 12/γ_far beyond the uniform zone
GAMMA_FIT_UM = (0.3, 2.0)  # γ fit range below the core edge
GAMMA_SAMPLES = 69  # equispaced samples (every 0.025 µm) of the γ fit
TABLE_LEVEL = 1  # h = H0 / 2**level

GRIDS = {
    "full": dict(
        widths=(3.0, 4.5, 5.5, 7.0, 8.0),
        thicknesses=(3.0, 4.5, 5.5, 7.0, 8.0),
        delta_n=(0.004, 0.0086, 0.015),
        wavelengths=(1.26, 1.31, 1.36, 1.50, 1.55, 1.60),
        holdout=40,
    ),
    "small": dict(
        widths=(3.0, 5.5, 8.0),
        thicknesses=(3.0, 5.5, 8.0),
        delta_n=(0.004, 0.015),
        wavelengths=(1.31, 1.55),
        holdout=6,
    ),
}

#: Cores of the discretisation check: nominal, the corners of the range.
CHECK_POINTS = (
    (5.5, 5.5, 0.0086, 1.31),
    (3.0, 3.0, 0.004, 1.60),
    (3.0, 8.0, 0.004, 1.60),
    (8.0, 3.0, 0.015, 1.26),
    (8.0, 8.0, 0.015, 1.26),
    (3.0, 3.0, 0.015, 1.26),
)


def holdout_points(n: int, seed: int = 20240611) -> list[tuple[float, float, float, float]]:
    """Seeded uniform random cores over the table's range (both wavelength bands)."""
    rng = np.random.default_rng(seed)
    pts = []
    for i in range(n):
        band = (1.26, 1.36) if i % 2 == 0 else (1.50, 1.60)
        pts.append((round(float(rng.uniform(3.0, 8.0)), 3), round(float(rng.uniform(3.0, 8.0)), 3),
                    round(float(rng.uniform(0.004, 0.015)), 5), round(float(rng.uniform(*band)), 4)))
    return pts


# ---------------------------------------------------------------------------------------
# mesh, solve, analysis
# ---------------------------------------------------------------------------------------
def base_axis(half_um: float, gamma_far: float) -> np.ndarray:
    """Level-0 node coordinates 0 … L along one axis (a node on the core edge)."""
    n = int(np.ceil(half_um / H0_UM - 1e-9))
    step = half_um / n
    x = list(np.linspace(0.0, half_um, n + 1))
    m = int(np.ceil(FINE_UM / step - 1e-9))
    x += list(half_um + step * np.arange(1, m + 1))
    end = x[-1] + WINDOW_DECAYS / gamma_far
    cap = max(step, CAP_DECAYS / gamma_far)
    s = step
    while x[-1] < end:
        s = min(s * GROWTH, cap)
        x.append(x[-1] + s)
    return np.asarray(x)


def refine(x: np.ndarray, level: int) -> np.ndarray:
    """Halve every cell ``level`` times (nested meshes for Richardson extrapolation)."""
    for _ in range(level):
        mid = 0.5 * (x[1:] + x[:-1])
        x = np.insert(x, np.arange(1, len(x)), mid)
    return x


def solve_mode(width, thickness, dn, lam, xb, yb, level, n_guess=None, pol="TE"):
    """Fundamental quasi-TE (or quasi-TM) mode on the level-``level`` refinement of (xb, yb)."""
    import scipy.sparse.linalg as sla
    from EMpy.modesolvers.FD import VFDModeSolver

    n_core = N_CLAD + dn
    k0 = 2.0 * np.pi / lam
    x, y = refine(xb, level), refine(yb, level)

    def eps(xc, yc):
        inside = (xc[:, None] < 0.5 * width) & (yc[None, :] < 0.5 * thickness)
        return np.where(inside, n_core**2, N_CLAD**2)

    solver = VFDModeSolver(lam, x, y, eps, "0A0A" if pol == "TE" else "0S0S")
    a = solver.build_matrix()
    # Shift-invert just above the expected index (or at n_core): the fundamental mode of
    # this symmetry class is the eigenvalue nearest the shift.
    n_shift = n_core if n_guess is None else min(n_guess + 2e-4, n_core)
    vals, vecs = sla.eigs(a, k=2, sigma=(k0 * n_shift) ** 2, which="LM")
    i = int(np.argmax(vals.real))
    n_eff = float(np.sqrt(vals[i].real) / k0)
    nn = len(x) * len(y)
    hx = vecs[:nn, i].reshape(len(x), len(y))
    hy = vecs[nn:, i].reshape(len(x), len(y))
    _, ex, ey, _ = (f[0] for f in solver.compute_other_fields([n_eff], [hx], [hy]))
    e = ex if pol == "TE" else ey
    e = (e / e.flat[np.argmax(np.abs(e))]).real
    if e.min() < -1e-6:  # the fundamental mode has no node
        raise RuntimeError(f"not the fundamental mode at {(width, thickness, dn, lam)}: min E {e.min()}")
    return dict(n_eff=n_eff, x=x, y=y, e=e, nodes=nn)


def analyse(mode, width, thickness):
    """Best-fit Gaussian radii, overlap and decay rate γ below the core."""
    from scipy.interpolate import CubicSpline
    from scipy.optimize import minimize

    x, y, e = mode["x"], mode["y"], mode["e"]
    xc, yc = 0.5 * (x[1:] + x[:-1]), 0.5 * (y[1:] + y[:-1])
    ea = e * np.outer(np.diff(x), np.diff(y))
    ee = float(np.sum(e * ea))
    dx, dy = np.diff(x), np.diff(y)

    def neg_overlap(p):
        wx, wy = np.exp(p)
        gx, gy = np.exp(-(xc / wx) ** 2), np.exp(-(yc / wy) ** 2)
        eg = gx @ ea @ gy
        gg = np.sum(gx * gx * dx) * np.sum(gy * gy * dy)
        return -(eg * eg) / (ee * gg)

    p0 = np.log([0.6 * width, 0.6 * thickness])
    res = minimize(neg_overlap, p0, method="Nelder-Mead",
                   options=dict(xatol=1e-10, fatol=1e-15, maxiter=4000))
    res = minimize(neg_overlap, res.x, method="Nelder-Mead",
                   options=dict(xatol=1e-11, fatol=1e-16, maxiter=4000))
    wx, wy = np.exp(res.x)

    # γ: ln|Ex(0, y)| from the cells below the core edge (uniform mesh there), by a cubic
    # spline at GAMMA_SAMPLES fixed points (so the fit does not jump as cells enter or leave
    # the range when the mesh is refined), then the least-squares slope.
    col = (9.0 * e[0] - e[1]) / 8.0  # Ex(0, y), second order
    below = yc - 0.5 * thickness
    near = (below > 0.0) & (below < FINE_UM)
    spline = CubicSpline(below[near], np.log(np.abs(col[near])))
    ys = np.linspace(*GAMMA_FIT_UM, GAMMA_SAMPLES)
    gamma = -np.polyfit(ys, spline(ys), 1)[0]
    return dict(w_x_um=float(wx), w_y_um=float(wy), overlap=float(-res.fun), gamma_per_um=float(gamma))


def meshes(width, thickness, gamma_far):
    return base_axis(0.5 * width, gamma_far), base_axis(0.5 * thickness, gamma_far)


def reference_point(width, thickness, dn, lam, levels=(0, 1), pol="TE"):
    """Solve on nested meshes; the window is set from the measured far-field decay."""
    n_core = N_CLAD + dn
    k0 = 2.0 * np.pi / lam
    gamma_far = 0.3 * k0 * np.sqrt(n_core**2 - N_CLAD**2)  # first guess, then measured
    t0 = time.time()
    for _ in range(4):
        xb, yb = meshes(width, thickness, gamma_far)
        m0 = solve_mode(width, thickness, dn, lam, xb, yb, 0, pol=pol)
        g = k0 * np.sqrt(max(m0["n_eff"] ** 2 - N_CLAD**2, 1e-12))
        if g <= gamma_far * 1.5 and g >= gamma_far * 0.999:  # window wide enough, not wasteful
            break
        gamma_far = 0.999 * g
    out = {}
    n_guess = m0["n_eff"]
    for lev in levels:
        m = m0 if lev == 0 else solve_mode(width, thickness, dn, lam, xb, yb, lev, n_guess=n_guess, pol=pol)
        n_guess = m["n_eff"]
        r = dict(n_eff=m["n_eff"], nodes=m["nodes"], window_um=(float(m["x"][-1]), float(m["y"][-1])),
                 h_um=H0_UM / 2**lev * 0.5 * width / (np.ceil(0.5 * width / H0_UM - 1e-9) * H0_UM))
        if pol == "TE":
            r.update(analyse(m, width, thickness))
        out[lev] = r
    out["gamma_far_mesh"] = float(gamma_far)
    out["seconds"] = time.time() - t0
    return out


KEYS = ("n_eff", "w_x_um", "w_y_um", "gamma_per_um")


def richardson(r1, r0):
    return {k: r1[k] + (r1[k] - r0[k]) / 3.0 for k in KEYS}


def table_row(args):
    kind, (width, thickness, dn, lam) = args
    r = reference_point(width, thickness, dn, lam)
    ext = richardson(r[1], r[0])
    k0 = 2.0 * np.pi / lam
    na = np.sqrt((N_CLAD + dn) ** 2 - N_CLAD**2)
    row = dict(
        set=kind, width_um=width, thickness_um=thickness, delta_n=dn, n_core=N_CLAD + dn,
        n_clad=N_CLAD, wavelength_um=lam, v_x=k0 * width / 2 * na, v_y=k0 * thickness / 2 * na,
        n_eff_te=ext["n_eff"], n_eff_tm=float("nan"), w_x_um=ext["w_x_um"], w_y_um=ext["w_y_um"],
        gamma_per_um=ext["gamma_per_um"], overlap=r[1]["overlap"],
        richardson_n_eff=ext["n_eff"] - r[1]["n_eff"],
        richardson_w_x_rel=ext["w_x_um"] / r[1]["w_x_um"] - 1.0,
        richardson_w_y_rel=ext["w_y_um"] / r[1]["w_y_um"] - 1.0,
        richardson_gamma_rel=ext["gamma_per_um"] / r[1]["gamma_per_um"] - 1.0,
        window_x_um=r[1]["window_um"][0], window_y_um=r[1]["window_um"][1], nodes=r[1]["nodes"],
        seconds=r["seconds"],
    )
    print(f"{kind} W={width} T={thickness} dn={dn} lam={lam}: n_eff={row['n_eff_te']:.7f} "
          f"wx={row['w_x_um']:.4f} wy={row['w_y_um']:.4f} g={row['gamma_per_um']:.4f} "
          f"({row['seconds']:.1f} s)", flush=True)
    return row


COLUMNS = ("set", "width_um", "thickness_um", "delta_n", "n_core", "n_clad", "wavelength_um", "v_x", "v_y",
           "n_eff_te", "n_eff_tm", "w_x_um", "w_y_um", "gamma_per_um", "overlap", "richardson_n_eff",
           "richardson_w_x_rel", "richardson_w_y_rel", "richardson_gamma_rel", "window_x_um",
           "window_y_um", "nodes", "seconds")
FORMATS = dict(n_core="{:.5f}", n_clad="{:.5f}", v_x="{:.6f}", v_y="{:.6f}", n_eff_te="{:.9f}",
               n_eff_tm="{:.9f}", w_x_um="{:.6f}", w_y_um="{:.6f}", gamma_per_um="{:.6f}",
               overlap="{:.6f}", richardson_n_eff="{:.3e}", richardson_w_x_rel="{:.3e}",
               richardson_w_y_rel="{:.3e}", richardson_gamma_rel="{:.3e}", window_x_um="{:.1f}",
               window_y_um="{:.1f}", seconds="{:.1f}")


def write_csv(rows, path: Path):
    lines = [",".join(COLUMNS)]
    for r in rows:
        cells = []
        for c in COLUMNS:
            v = r[c]
            if isinstance(v, float) and np.isnan(v):
                cells.append("")
            elif c in FORMATS:
                cells.append(FORMATS[c].format(v))
            else:
                cells.append(str(v))
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n")


def fill_tm(rows):
    """n_eff_tm(W, T) = n_eff_te(T, W) (90° rotation), from the grid rows."""
    te = {(r["width_um"], r["thickness_um"], r["delta_n"], r["wavelength_um"]): r["n_eff_te"]
          for r in rows if r["set"] == "grid"}
    for r in rows:
        if r["set"] == "grid":
            r["n_eff_tm"] = te.get((r["thickness_um"], r["width_um"], r["delta_n"], r["wavelength_um"]),
                                   float("nan"))


def check_point(p):
    width, thickness, dn, lam = p
    levels = (0, 1, 2, 3) if p == CHECK_POINTS[0] else (0, 1, 2)
    r = reference_point(width, thickness, dn, lam, levels=levels)
    ext01 = richardson(r[1], r[0])
    ext12 = richardson(r[2], r[1])
    res = dict(core=dict(width_um=width, thickness_um=thickness, delta_n=dn, wavelength_um=lam),
               levels={str(k): {kk: r[k][kk] for kk in (*KEYS, "nodes", "h_um")} for k in levels},
               richardson_01=ext01, richardson_12=ext12,
               # error of the stored (level 0+1 extrapolated) values against the finer extrapolation
               stored_error=dict(n_eff=ext01["n_eff"] - ext12["n_eff"],
                                 w_x_rel=ext01["w_x_um"] / ext12["w_x_um"] - 1.0,
                                 w_y_rel=ext01["w_y_um"] / ext12["w_y_um"] - 1.0,
                                 gamma_rel=ext01["gamma_per_um"] / ext12["gamma_per_um"] - 1.0),
               level1_error=dict(n_eff=r[1]["n_eff"] - ext12["n_eff"],
                                 w_x_rel=r[1]["w_x_um"] / ext12["w_x_um"] - 1.0,
                                 w_y_rel=r[1]["w_y_um"] / ext12["w_y_um"] - 1.0,
                                 gamma_rel=r[1]["gamma_per_um"] / ext12["gamma_per_um"] - 1.0))
    if 3 in r:
        res["richardson_23"] = richardson(r[3], r[2])
    print("check", p, json.dumps(res["stored_error"]), flush=True)
    return res


def window_check(p):
    """Same core with a 1.5× wider window (WINDOW_DECAYS 18 instead of 12), level 0 + 1."""
    global WINDOW_DECAYS
    width, thickness, dn, lam = p
    base = richardson(*[reference_point(width, thickness, dn, lam)[k] for k in (1, 0)])
    saved, WINDOW_DECAYS = WINDOW_DECAYS, 18.0
    try:
        wide = richardson(*[reference_point(width, thickness, dn, lam)[k] for k in (1, 0)])
    finally:
        WINDOW_DECAYS = saved
    return dict(core=dict(width_um=width, thickness_um=thickness, delta_n=dn, wavelength_um=lam),
                n_eff=wide["n_eff"] - base["n_eff"], w_x_rel=wide["w_x_um"] / base["w_x_um"] - 1,
                w_y_rel=wide["w_y_um"] / base["w_y_um"] - 1,
                gamma_rel=wide["gamma_per_um"] / base["gamma_per_um"] - 1)


def tm_check(width, thickness, dn, lam):
    """Direct quasi-TM solve of W × T vs the quasi-TE solve of T × W (rotation symmetry)."""
    tm = reference_point(width, thickness, dn, lam, pol="TM")
    te = reference_point(thickness, width, dn, lam)
    n_tm = tm[1]["n_eff"] + (tm[1]["n_eff"] - tm[0]["n_eff"]) / 3
    n_te = te[1]["n_eff"] + (te[1]["n_eff"] - te[0]["n_eff"]) / 3
    return dict(core=dict(width_um=width, thickness_um=thickness, delta_n=dn, wavelength_um=lam),
                n_eff_tm_direct=n_tm, n_eff_te_rotated=n_te, difference=n_tm - n_te)


def run_checks(pool):
    t0 = time.time()
    checks = pool.map(check_point, CHECK_POINTS, chunksize=1)
    windows = pool.map(window_check, [CHECK_POINTS[1], CHECK_POINTS[0]], chunksize=1)
    tms = [tm_check(4.5, 7.0, 0.0086, 1.31)]
    worst = {k: max(abs(c["stored_error"][k]) for c in checks) for k in checks[0]["stored_error"]}
    worst1 = {k: max(abs(c["level1_error"][k]) for c in checks) for k in checks[0]["level1_error"]}
    return dict(points=checks, window=windows, tm_rotation=tms, worst_stored_error=worst,
                worst_level1_error=worst1, seconds=time.time() - t0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--grid", choices=sorted(GRIDS), default="full")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "tests/data/pwg_modes")
    ap.add_argument("--check-only", action="store_true", help="only the discretisation check (JSON)")
    ap.add_argument("--no-check", action="store_true")
    args = ap.parse_args(argv)

    import multiprocessing as mp

    import EMpy
    import scipy

    g = GRIDS[args.grid]
    csv_path, json_path = args.out.with_suffix(".csv"), args.out.with_suffix(".json")
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    with mp.get_context("fork").Pool(args.workers) as pool:
        if args.check_only:
            meta = json.loads(json_path.read_text())
            meta["convergence"] = run_checks(pool)
            json_path.write_text(json.dumps(meta, indent=1) + "\n")
            return
        jobs = [("grid", (w, t, dn, lam)) for dn in g["delta_n"] for lam in g["wavelengths"]
                for w in g["widths"] for t in g["thicknesses"]]
        jobs += [("holdout", p) for p in holdout_points(g["holdout"])]
        # Expensive (near-cut-off) cores first so both workers finish together.
        jobs.sort(key=lambda j: (j[1][0] + j[1][1]) * j[1][2] / j[1][3])
        rows = pool.map(table_row, jobs, chunksize=1)
        t_table = time.time() - t0
        order = {"grid": 0, "holdout": 1}
        rows.sort(key=lambda r: (order[r["set"]], r["delta_n"], r["wavelength_um"], r["width_um"],
                                 r["thickness_um"]))
        fill_tm(rows)
        write_csv(rows, csv_path)
        meta = dict(
            description="Fundamental quasi-TE mode of a rectangular PWG core (|x|<W/2, |y|<T/2, "
                        "n_core = n_clad + delta_n) in a uniform cladding; see scripts/pwg_mode_table.py",
            solver=dict(name="EMpy.modesolvers.FD.VFDModeSolver (full-vector finite difference, "
                             "Fallahkhair, Li & Murphy, J. Lightwave Technol. 26:1423 (2008))",
                        package="ElectroMagneticPython", version=EMpy.__version__,
                        numpy=np.__version__, scipy=scipy.__version__,
                        eigensolver="scipy.sparse.linalg.eigs, shift-invert"),
            grid={k: list(v) if isinstance(v, tuple) else v for k, v in g.items()} | dict(n_clad=N_CLAD),
            holdout=dict(n=g["holdout"], seed=20240611, note="uniform random W, T in [3, 8] um, delta_n in "
                         "[0.004, 0.015], wavelength alternately in [1.26, 1.36] and [1.50, 1.60] um"),
            mesh=dict(domain="quadrant x, y >= 0; symmetry walls at x = 0, y = 0 (boundary '0A0A'); "
                             "H = 0 on the outer walls",
                      core_step_um=[H0_UM, H0_UM / 2], fine_zone_um=FINE_UM, growth=GROWTH,
                      max_cell=f"{CAP_DECAYS}/gamma_far (level 0)",
                      window=f"{WINDOW_DECAYS}/gamma_far beyond the fine zone, gamma_far = "
                             "k0*sqrt(n_eff^2 - n_clad^2)",
                      levels="level 1 = level 0 with every cell halved; stored values = Richardson "
                             "extrapolation f1 + (f1 - f0)/3"),
            quantities=dict(
                n_eff_te="quasi-TE (Ex-major) fundamental mode index",
                n_eff_tm="quasi-TM index = n_eff_te of the rotated (T x W) core",
                w_x_um="best-fit separable Gaussian, 1/e field radius along the width",
                w_y_um="same, along the thickness",
                overlap="maximum normalised power overlap of that Gaussian with Ex (level 1)",
                gamma_per_um=f"-d ln|Ex(0,y)|/dy: least-squares slope over {GAMMA_SAMPLES} equispaced "
                             f"points {GAMMA_FIT_UM[0]} <= |y| - T/2 <= {GAMMA_FIT_UM[1]} um (cubic spline "
                             "through the cells below the core)"),
            date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            command="python " + " ".join([Path(sys.argv[0]).as_posix().split("/work/main/")[-1], *sys.argv[1:]]),
            workers=args.workers,
            table_seconds=round(t_table, 1),
        )
        json_path.write_text(json.dumps(meta, indent=1) + "\n")
        print(f"table: {len(rows)} rows in {t_table:.0f} s", flush=True)
        if not args.no_check:
            meta["convergence"] = run_checks(pool)
            json_path.write_text(json.dumps(meta, indent=1) + "\n")
            print(json.dumps(meta["convergence"]["worst_stored_error"]), flush=True)


if __name__ == "__main__":
    main()
