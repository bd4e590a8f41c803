"""Fit the PWG mode model of ``yieldmc/physics/slab.py`` to the full-vector reference table.

Reads ``tests/data/pwg_modes.csv`` (made by ``scripts/pwg_mode_table.py``), fits the
coefficients of ``pwg_effective_index``, ``pwg_mode_radii_um`` and
``pwg_vertical_decay_per_um``, prints the fit errors on the grid rows (the fit data) and on
the held-out rows (never used by the fit) and the coefficient block; ``--write`` puts that
block into ``yieldmc/physics/slab.py`` (between the ``# <fit_pwg_modes.py>`` markers).

Model. Weak guidance makes the scalar mode a function of V_x = k0·(W/2)·NA and V_y =
k0·(T/2)·NA only (NA² = n_core² − n_clad²); the full-vector (polarisation) corrections are
first order in ε = NA²/n_core² (= 2Δ; at fixed V_x, V_y the solver's radii and ln b move
linearly in NA²). Each quantity is a physical base (slab-mode approximations with the right
trends and limits) times exp(correction), the correction a Chebyshev series in the log-V
variable ``t = (2 ln V − ln V_lo − ln V_hi)/(ln V_hi − ln V_lo)`` (V_lo, V_hi =
:data:`V_RANGE`), clipped to [−1, 1] so that outside the fitted range the correction is held
at its boundary value and the base carries the trend (the ln b correction also decays above
V_hi, :data:`B_DECAY`). With ``P[C](a, b) = Σ C_ij T_i(a) T_j(b)`` (total degree ≤ the
block's degree), w_s(V) the rational approximation :func:`slab_w` of the symmetric slab's
TE0 decay parameter sqrt(V² − u²) (within 0.13 % for V ≥ 0.5, exact limits; no eigenvalue
solve per sample), b_s = (w_s/V)², and s(V) = 0.6450 + 1.0439/V + 0.5458/V³ the
slab fit of w/(d/2) (docs/physics.md, "2.2 Mode size and effective index"):

* ``ln b = ln b_s(V_x) + ln b_s(V_y) + D·(P[B](t_x, t_y) + ε·P[BE](t_x, t_y))``, B
  symmetric, b = (n_eff² − n_clad²)/NA², D = (min(V_x, V_hi)/V_x · min(V_y, V_hi)/V_y)^1.25
  (1 inside the fitted range);
* ``ln(w_x/(W/2)) = F(V_x, V_y)`` and ``ln(w_y/(T/2)) = F(V_y, V_x) + ε·(t_y − t_x)·P[RP](t_y,
  t_x)`` with ``F(V, V') = ln s(V) + P[R](t, t') + ε·P[RE](t, t')``: one function for both
  axes plus a polarisation term that vanishes for t_x = t_y, so a square core is exactly
  round. RP carries the x/y asymmetry of the quasi-TE mode of non-square cores (without it
  the radii's worst error is 0.52 %). The solver's quasi-TE mode of a square core is
  itself elongated along E by up to 0.5 %, which sets the radii's error floor of ~0.25 %;
* ``ln(γ·T/2) = ln w_s(V_y) + Σ_k δ^k P[G_k](t_y, t_x) + ε·P[GE](t_y, t_x)`` (the base
  is the thickness slab's decay), δ = (1 µm)/(T/2) clipped to the table's
  [1/4, 1/1.5]: γ is a slope over a fixed 0.3–2 µm window below the core, so it also
  depends on the window in units of the core.

Degrees (:data:`DEGREES`, :data:`GAMMA_WINDOW`) were chosen on the held-out rows: higher
ones did not lower their errors.

The fits are least squares, refined by Lawson's iteration towards the minimax fit of the
error measure the tests check: |Δn_eff| (weight ∂n_eff/∂ln b = b·NA²/(2 n_eff)) for ln b,
the relative error for the radii and γ.

Usage::

    python scripts/fit_pwg_modes.py            # fit, print errors and coefficients
    python scripts/fit_pwg_modes.py --write    # ... and replace them in yieldmc/physics/slab.py
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

V_RANGE = (0.6, 4.5)
DELTA_RANGE = (0.25, 1.0 / 1.5)  # (1 µm)/(T/2) over the table's T = 3–8 µm
#: Above V_hi the ln b correction is scaled by (V_hi/V_x)^q·(V_hi/V_y)^q: it vanishes for
#: large cores like the solver's (∝ V^−2.6 for square cores from V = 4.3 to 8).
B_DECAY = 1.25
#: Total degree of each block (see the module docstring); GAMMA_WINDOW: degrees of G_1, G_2, ….
DEGREES = dict(B=6, BE=2, R=6, RE=1, RP=1, G=6, GE=1)
GAMMA_WINDOW = (2, 2)
BEGIN = "# <fit_pwg_modes.py>"
END = "# </fit_pwg_modes.py>"


def load(path: Path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    out = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    for k in out:
        if k != "set":
            out[k] = np.array([float(v) if v != "" else np.nan for v in out[k]])
    return out


def t_of_v(v):
    lo, hi = np.log(V_RANGE[0]), np.log(V_RANGE[1])
    return (2.0 * np.log(v) - lo - hi) / (hi - lo)


def cheb(t, n):
    out = [np.ones_like(t), t]
    for _ in range(2, n + 1):
        out.append(2.0 * t * out[-1] - out[-2])
    return np.stack(out[: n + 1], axis=-1)


def pairs(degree, symmetric=False):
    """Index pairs (i, j), i + j ≤ degree; symmetric: i ≤ j (each stands for ij + ji)."""
    return [(i, j) for i in range(degree + 1) for j in range(degree + 1 - i) if not symmetric or i <= j]


def design(ta, tb, degree, symmetric=False):
    ca, cb = cheb(ta, degree), cheb(tb, degree)
    cols = []
    for i, j in pairs(degree, symmetric):
        c = ca[:, i] * cb[:, j]
        if symmetric and i != j:
            c = c + ca[:, j] * cb[:, i]
        cols.append(c)
    return np.stack(cols, axis=1)


def to_matrix(coef, degree, symmetric=False):
    m = np.zeros((degree + 1, degree + 1))
    for c, (i, j) in zip(coef, pairs(degree, symmetric)):
        m[i, j] += c
        if symmetric and i != j:
            m[j, i] += c
    return m


def evaluate(m, ta, tb):
    d = m.shape[0] - 1
    return np.einsum("ni,ij,nj->n", cheb(ta, d), m, cheb(tb, d))


def lawson_fit(a, y, w, iters=300):
    """Weighted least squares, then Lawson's iteration (weights ∝ |error|) towards the
    minimax solution of max |w·(a c − y)|; returns the best iterate."""
    lam = np.ones(len(y)) / len(y)
    best = None
    for _ in range(iters + 1):
        sw = np.sqrt(lam) * w
        c, *_ = np.linalg.lstsq(a * sw[:, None], y * sw, rcond=None)
        err = np.abs(w * (a @ c - y))
        if best is None or err.max() < best[1]:
            best = (c, err.max())
        lam = lam * err
        lam = lam / lam.sum()
    return best[0]


#: Rational approximation of the symmetric slab's TE0 decay parameter w = sqrt(V² − u²)
#: (u·tan u = w): with N = V + a·V² + b·V³, w ≈ V·N/(N + 1 + (π²/8)·b·V) — exact limits
#: w ≈ V² for V → 0 and w ≈ V − π²/(8V) for V → ∞; (a, b) minimise the worst |ln w error|
#: over 0.5 ≤ V ≤ 100: 0.13 % (0.6 % at V = 0.3).
SLAB_W_AB = (1.4276, 0.2413)


def slab_w(v):
    """The rational slab decay parameter (:data:`SLAB_W_AB`); b_s = (w/V)²."""
    a, b = SLAB_W_AB
    n = v * (1.0 + v * (a + b * v))
    return v * n / (n + 1.0 + (np.pi**2 / 8.0 * b) * v)


def slab_b_exact(v):
    """Exact b_s = 1 − u²/V² of the slab's TE0 mode (Brent's method), to check slab_w."""
    from scipy.optimize import brentq

    out = []
    for x in np.atleast_1d(v):
        u = brentq(lambda u: u * np.sin(u) - np.sqrt(max(x * x - u * u, 0.0)) * np.cos(u), 0.0, min(x, np.pi / 2),
                   xtol=1e-300, rtol=8.9e-16)
        out.append(1.0 - (u / x) ** 2)
    return np.array(out)


def slab_fit(v):
    """The slab fit, w/(d/2) = 0.6450 + 1.0439/V + 0.5458/V³."""
    return 0.6450 + 1.0439 / v + 0.5458 / v**3


def variables(data):
    """V, t (clipped), NA², ε, δ (clipped) and the bases, from the exact inputs (the CSV's
    v_x, v_y are rounded)."""
    na2 = (data["n_core"] - data["n_clad"]) * (data["n_core"] + data["n_clad"])
    k_na = np.pi / data["wavelength_um"] * np.sqrt(na2)
    vx, vy = k_na * data["width_um"], k_na * data["thickness_um"]
    wx, wy = slab_w(vx), slab_w(vy)
    decay = (np.minimum(vx, V_RANGE[1]) / vx * (np.minimum(vy, V_RANGE[1]) / vy)) ** B_DECAY
    return dict(tx=np.clip(t_of_v(vx), -1, 1), ty=np.clip(t_of_v(vy), -1, 1), na2=na2, b_decay=decay,
                eps=na2 / data["n_core"] ** 2, delta=np.clip(1.0 / (data["thickness_um"] / 2), *DELTA_RANGE),
                ln_b0=2.0 * np.log(wx / vx * (wy / vy)), ln_rx0=np.log(slab_fit(vx)), ln_ry0=np.log(slab_fit(vy)),
                ln_g0=np.log(wy))


def _split(c, blocks):
    out, i0 = {}, 0
    for name, deg, sym in blocks:
        n = len(pairs(deg, sym))
        out[name] = to_matrix(c[i0:i0 + n], deg, sym)
        i0 += n
    return out


def fit(data, deg=DEGREES, window=GAMMA_WINDOW):
    g = data["set"] == "grid"
    v = variables(data)
    tx, ty, eps = v["tx"][g], v["ty"][g], v["eps"][g]
    res = {}

    # ln b
    b = (data["n_eff_te"] ** 2 - data["n_clad"] ** 2) / v["na2"]
    wgt = (b * v["na2"] / (2.0 * data["n_eff_te"]))[g]
    blocks = [("B", deg["B"], True)] + ([("BE", deg["BE"], False)] if deg["BE"] >= 0 else [])
    cols = [design(tx, ty, deg["B"], True)]
    if deg["BE"] >= 0:
        cols.append(design(tx, ty, deg["BE"]) * eps[:, None])
    res.update(_split(lawson_fit(np.concatenate(cols, 1), np.log(b[g]) - v["ln_b0"][g], wgt), blocks))

    # radii: rows for w_x (own = x) and w_y (own = y)
    rx = np.log(data["w_x_um"][g] / (data["width_um"][g] / 2)) - v["ln_rx0"][g]
    ry = np.log(data["w_y_um"][g] / (data["thickness_um"][g] / 2)) - v["ln_ry0"][g]
    blocks = [("R", deg["R"], False), ("RE", deg["RE"], False), ("RP", deg["RP"], False)]
    ax = [design(tx, ty, deg["R"]), design(tx, ty, deg["RE"]) * eps[:, None],
          np.zeros((g.sum(), len(pairs(deg["RP"]))))]
    ay = [design(ty, tx, deg["R"]), design(ty, tx, deg["RE"]) * eps[:, None],
          design(ty, tx, deg["RP"]) * (eps * (ty - tx))[:, None]]
    a = np.concatenate([np.concatenate(ax, 1), np.concatenate(ay, 1)])
    res.update(_split(lawson_fit(a, np.concatenate([rx, ry]), np.ones(2 * g.sum())), blocks))

    # gamma: own = y
    delta = v["delta"][g]
    blocks = [("G0", deg["G"], False)] + [(f"G{k + 1}", d, False) for k, d in enumerate(window)]
    cols = [design(ty, tx, deg["G"])] + [design(ty, tx, d) * (delta ** (k + 1))[:, None] for k, d in enumerate(window)]
    if deg["GE"] >= 0:
        blocks.append(("GE", deg["GE"], False))
        cols.append(design(ty, tx, deg["GE"]) * eps[:, None])
    y = np.log(data["gamma_per_um"][g] * data["thickness_um"][g] / 2) - v["ln_g0"][g]
    res.update(_split(lawson_fit(np.concatenate(cols, 1), y, np.ones(g.sum())), blocks))
    res["G"] = [res.pop(f"G{k}") for k in range(len(window) + 1)]
    return res


def predict(m, data):
    v = variables(data)
    tx, ty, eps = v["tx"], v["ty"], v["eps"]
    corr_b = evaluate(m["B"], tx, ty) + (eps * evaluate(m["BE"], tx, ty) if "BE" in m else 0.0)
    ln_b = v["ln_b0"] + v["b_decay"] * corr_b
    ln_rx = v["ln_rx0"] + evaluate(m["R"], tx, ty) + eps * evaluate(m["RE"], tx, ty)
    ln_ry = (v["ln_ry0"] + evaluate(m["R"], ty, tx) + eps * evaluate(m["RE"], ty, tx)
             + eps * (ty - tx) * evaluate(m["RP"], ty, tx))
    ln_g = v["ln_g0"] + sum(v["delta"] ** k * evaluate(gk, ty, tx) for k, gk in enumerate(m["G"]))
    if "GE" in m:
        ln_g = ln_g + eps * evaluate(m["GE"], ty, tx)
    return dict(n_eff=np.sqrt(data["n_clad"] ** 2 + np.exp(ln_b) * v["na2"]),
                w_x=data["width_um"] / 2 * np.exp(ln_rx),
                w_y=data["thickness_um"] / 2 * np.exp(ln_ry),
                gamma=2.0 / data["thickness_um"] * np.exp(ln_g))


def errors(m, data, sel):
    p = predict(m, data)
    return dict(n_eff=np.abs(p["n_eff"] - data["n_eff_te"])[sel].max(),
                w_x=np.abs(p["w_x"] / data["w_x_um"] - 1)[sel].max(),
                w_y=np.abs(p["w_y"] / data["w_y_um"] - 1)[sel].max(),
                gamma=np.abs(p["gamma"] / data["gamma_per_um"] - 1)[sel].max())


def literal(m, indent=""):
    """A matrix as a tuple of tuples of Python floats (weakly typed in JAX, so float32 inputs
    stay float32); trailing zeros of each row dropped, four numbers a line."""
    rows = []
    for r in m:
        nz = [j for j, x in enumerate(r) if x != 0.0]
        vals = [f"{x:.12e}" for x in r[: (nz[-1] + 1 if nz else 1)]]
        lines = [", ".join(vals[k:k + 4]) for k in range(0, len(vals), 4)]
        rows.append(f"{indent}    (" + f",\n{indent}     ".join(lines) + ",),\n")
    return "(\n" + "".join(rows) + f"{indent})"


def block_text(m):
    degree = max(max(x.shape[0] for x in m["G"]), *(m[k].shape[0] for k in m if k != "G")) - 1
    lines = [f"_PWG_V_RANGE = {V_RANGE}", f"_PWG_DELTA_RANGE = {DELTA_RANGE}", f"_PWG_B_DECAY = {B_DECAY}",
             f"_PWG_DEGREE = {degree}"]
    for name, key in (("_PWG_LN_B", "B"), ("_PWG_LN_B_EPS", "BE"), ("_PWG_LN_W", "R"), ("_PWG_LN_W_EPS", "RE"),
                      ("_PWG_LN_W_POL", "RP"), ("_PWG_LN_GAMMA_EPS", "GE")):
        lines.append(f"{name} = {literal(m[key]) if key in m else '((0.0,),)'}")
    lines.append("_PWG_LN_GAMMA = (\n" + "".join(f"    {literal(g, '    ')},\n" for g in m["G"]) + ")")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--csv", type=Path, default=Path(__file__).resolve().parents[1] / "tests/data/pwg_modes.csv")
    ap.add_argument("--write", action="store_true", help="replace the coefficient block in yieldmc/physics/slab.py")
    args = ap.parse_args(argv)
    data = load(args.csv)
    m = fit(data)
    for s in ("grid", "holdout"):
        sel = data["set"] == s
        if sel.any():
            e = errors(m, data, sel)
            print(f"# {s} ({sel.sum()} rows): max |dn_eff| = {e['n_eff']:.2e}, max |dw_x/w_x| = "
                  f"{100 * e['w_x']:.3f} %, max |dw_y/w_y| = {100 * e['w_y']:.3f} %, max |dgamma/gamma| = "
                  f"{100 * e['gamma']:.3f} %")
    block = block_text(m)
    print(block)
    if args.write:
        path = Path(__file__).resolve().parents[1] / "yieldmc/physics/slab.py"
        src = path.read_text()
        i, j = src.index(BEGIN) + len(BEGIN), src.index(END)
        path.write_text(src[:i] + "\n" + block + "\n" + src[j:])
        print(f"# written to {path}")


if __name__ == "__main__":
    main()
