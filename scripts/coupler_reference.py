"""Float64 reference for the Si-taper → PWG coupler: the coupled local-mode equations
integrated along the taper, against the runtime coupler (float32).

    python scripts/coupler_reference.py            # the validation table (docs/physics.md)
    python scripts/coupler_reference.py --write    # also tests/data/coupler_reference.json

For each case (polarisation, wavelength, gap, lateral offset, temperature, tip width, on the
configured geometry of conf/package/coupler/adiabatic.yaml and on two other width profiles):

* the crossing's κ, w* and dδ/dw are the data of that case's own solves where they exist
  (``yieldmc/data/si_pwg_supermodes.json``: one crossing per varied axis), else the
  runtime's interpolation (marked ``interp.``);
* δ(w) near the crossing comes from that case's own rows (δ = ±sqrt((β1 − β2)² − 4κ²),
  monotone cubic through them), continued by the nominal crossing's shape outside them;
* the two-mode equations da/dz = −i(δ/2)a − iκb, db/dz = i(δ/2)b − iκa are integrated
  over the whole taper in float64 from the bare Si mode at the start, as the product of
  the exact transfer matrices of 2^18 equal pieces (δ at each midpoint; the change from
  2^17 pieces is listed as the convergence); η = |b(L)|², the power in the PWG mode at
  the tip.

Past the crossing the two supermodes interfere at the tip with a phase accumulated over
hundreds of radians; a tip-width change of a few nm (the channel-to-channel CD scatter of
conf/process/nominal.yaml, σ = 2 nm) moves it by several radians, so η oscillates about its
mean by up to ≈ 2·sqrt(P(1 − P))·κ/|δ_tip|. The reference is therefore also averaged over
that scatter (5-point Gauss–Hermite in the tip width), and the runtime coupler
(:func:`yieldmc.couplers.adiabatic.supermode_transfer`, model ``cmt`` with 64 segments,
float32) is compared with that average and with the reference itself: within 0.3 dB or 20 % of
the reference loss of either (its coarse segments land anywhere in the oscillation; the
table lists Δ from the mean).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402
from scipy.interpolate import PchipInterpolator  # noqa: E402

from yieldmc import validation  # noqa: E402
from yieldmc.physics import supermodes, taper  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests/data/coupler_reference.json"
CRITERION_DB, CRITERION_REL = 0.3, 0.2
SEGMENTS = 2**18
#: Channel-to-channel CD scatter of the tips, nm (conf/process/nominal.yaml), and its Gauss–Hermite nodes.
CD_SIGMA_NM = yaml.safe_load((ROOT / "conf/process/nominal.yaml").read_text())["taper_tip_width_nm"]["channel"]["sigma"]
CD_NODES = 5


def configured():
    cp = yaml.safe_load((ROOT / "conf/package/coupler/adiabatic.yaml").read_text())
    fr = cp.get("profile_knots_fraction") or []
    ws = cp.get("profile_knots_width_nm") or []
    return {"length_um": cp["taper_length_um"], "start_nm": cp["start_width_nm"], "tip_nm": cp["tip_width_nm"],
            "profile": cp["profile"], "knots": [[f, w] for f, w in zip(fr, ws)],
            "exponent": cp.get("profile_exponent"), "gap_um": cp["gap_um"]}


def variants(geo):
    """The configured geometry and two other shapes of the same ends."""
    lin = dict(geo, profile="linear", knots=[], exponent=None)
    expo = dict(geo, profile="exponential", knots=[], exponent=2.0)
    mid = 0.5 * (geo["start_nm"] + geo["tip_nm"])
    pw = dict(geo, profile="piecewise", knots=[[0.2, mid]], exponent=None)
    out = {"configured": geo}
    for name, g in (("linear", lin), ("exponential a=2", expo), ("piecewise 20 %", pw)):
        if (g["profile"], g["knots"], g["exponent"]) != (geo["profile"], geo["knots"], geo["exponent"]):
            out[name] = g
    return out


def cases(geo):
    base = {"wavelength_um": 1.31, "gap_um": geo["gap_um"], "offset_um": 0.0, "temperature_c": 25.0,
            "tip_nm": geo["tip_nm"]}
    out = []
    for pol in ("te", "tm"):
        rows = [("nominal", {})]
        rows += [(f"offset {d:g} µm", {"offset_um": d}) for d in (1.0, 2.0, 3.0)]
        rows += [(f"gap +{d:g} µm", {"gap_um": geo["gap_um"] + d}) for d in (0.5, 1.0)]
        rows += [(f"{t:g} °C", {"temperature_c": t}) for t in (-40.0, 125.0)]
        rows += [(f"λ {lam:g} µm", {"wavelength_um": lam}) for lam in (1.26, 1.36)]
        rows += [(f"tip {geo['tip_nm'] + d:g} nm", {"tip_nm": geo["tip_nm"] + d}) for d in (-20.0, 20.0)]
        for name, ch in rows:
            out.append(dict(base, **ch, polarization=pol, name=name))
    return out


def data_crossing(data, case):
    for c in data["crossings"]:
        if c["polarization"] == case["polarization"] and all(
                abs(c[k] - case[k]) < 1e-9 for k in ("wavelength_um", "gap_um", "offset_um", "temperature_c")):
            return c
    return None


def case_delta(data, pol, c, slope):
    """δ(u) of a crossing (u = w − w*): monotone cubic through the crossing's own rows
    (``c`` None: none), the nominal shape scaled by ``slope`` outside them; returns
    (δ(u) for u clipped to the sampled range, u_min, u_max)."""
    pts = [(0.0, 0.0)]
    if c is not None:
        pts += [(u, d) for u, d in supermodes.delta_points(data, c) if abs(u) > 1.5e-3]
    pts.sort()
    grid, g = supermodes.shape_table(pol)
    u_lo, u_hi = pts[0][0], pts[-1][0]
    outside = [(u, slope * gv) for u, gv in zip(grid, g) if u < u_lo - 1e-4 or u > u_hi + 1e-4]
    allp = sorted(outside + pts)
    uu = np.array([p[0] for p in allp])
    dd = np.array([p[1] for p in allp])
    keep = np.concatenate([[True], np.diff(dd) > 0])
    interp = PchipInterpolator(uu[keep], dd[keep], extrapolate=False)
    u_min, u_max = uu[keep][0], uu[keep][-1]
    return (lambda u: interp(np.clip(u, u_min, u_max))), u_min, u_max


def reference_eta(data, case, geo):
    pol = case["polarization"]
    c = data_crossing(data, case)
    if c is not None:
        kappa, w_star = c["kappa_per_um"], c["w_star_um"]
        slope, _ = supermodes.slope_fit(data, c)
        source = "solves"
    else:
        x = supermodes.crossing(polarization=pol, wavelength_um=case["wavelength_um"], gap_um=case["gap_um"],
                                offset_um=case["offset_um"], temperature_c=case["temperature_c"])
        kappa, w_star, slope = float(x.kappa_per_um), float(x.w_star_um), float(x.slope_per_um2)
        source = "interp."
    delta_u, u_min, u_max = case_delta(data, pol, c, slope)
    prof = taper.width_profile(geo["profile"], start_width_um=1e-3 * geo["start_nm"],
                               tip_width_um=1e-3 * geo["tip_nm"], length_um=geo["length_um"],
                               knots=tuple((f, 1e-3 * w) for f, w in geo["knots"]), exponent=geo["exponent"])
    bias = 1e-3 * (case["tip_nm"] - geo["tip_nm"])
    length = geo["length_um"]

    def delta_z(z):
        w = np.asarray(prof.width(jnp.asarray(z, jnp.float64)))
        return delta_u(w + bias - w_star)

    eta, eta_half = (transfer_eta(delta_z, kappa, length, n) for n in (SEGMENTS, SEGMENTS // 2))
    # the mean over the channel-to-channel CD scatter (Gauss–Hermite): the phase of the
    # two supermodes' interference at the tip is not predictable within it
    x, wts = np.polynomial.hermite_e.hermegauss(CD_NODES)
    mean = 0.0
    for xk, wk in zip(x, wts / wts.sum()):
        shift = 1e-3 * CD_SIGMA_NM * xk

        def delta_k(z, shift=shift):
            return delta_z(z) if shift == 0.0 else delta_u(
                np.asarray(prof.width(jnp.asarray(z, jnp.float64))) + bias + shift - w_star)

        mean += wk * (eta if xk == 0.0 else transfer_eta(delta_k, kappa, length, SEGMENTS))
    return {"eta": eta, "eta_cd_mean": mean, "kappa_per_um": kappa, "w_star_um": w_star, "slope_per_um2": slope,
            "source": source, "convergence": abs(eta - eta_half)}


def transfer_eta(delta_z, kappa, length, segments):
    """|b(L)|^2 of the two-mode equations from (a, b) = (1, 0): the product of the exact
    transfer matrices of ``segments`` equal pieces, δ at each piece's midpoint (float64,
    multiplied pairwise; the midpoint rule's error falls as 1/segments^2)."""
    h = length / segments
    d = 0.5 * delta_z((np.arange(segments) + 0.5) * h)
    om = np.sqrt(d * d + kappa * kappa)
    c = np.cos(om * h)
    sn = np.sin(om * h) / om
    m = np.empty((segments, 2, 2), complex)
    m[:, 0, 0] = c - 1j * sn * d
    m[:, 1, 1] = c + 1j * sn * d
    m[:, 0, 1] = -1j * sn * kappa
    m[:, 1, 0] = -1j * sn * kappa
    while len(m) > 1:
        if len(m) % 2:
            m = np.concatenate([m, np.eye(2)[None]])
        m = m[1::2] @ m[0::2]  # later pieces act after earlier ones
    return float(abs(m[0, 1, 0]) ** 2)


def runtime_eta(case, geo, *, dtype=jnp.float32, model="cmt", segments=64):
    """The runtime coupler on one case (:func:`yieldmc.validation.supermode_coupler_eta`)."""
    return float(validation.supermode_coupler_eta(case, geo, dtype=dtype, model=model, segments=segments))


def within(value_db, reference_db):
    """|Δ| ≤ 0.3 dB or ≤ 20 % of the reference loss."""
    diff = abs(value_db - reference_db)
    return diff <= CRITERION_DB or diff <= CRITERION_REL * reference_db


def db(eta):
    return -10.0 * math.log10(max(eta, 1e-30))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help=f"write the reference points to {OUT.relative_to(ROOT)}")
    args = ap.parse_args(argv)
    data = supermodes._data()
    geo = configured()
    points = []
    print(f"geometry: {geo['profile']} taper, L = {geo['length_um']:g} µm, {geo['start_nm']:g} → "
          f"{geo['tip_nm']:g} nm, gap {geo['gap_um']:g} µm" + (f", knots {geo['knots']}" if geo["knots"] else "")
          + (f", a = {geo['exponent']:g}" if geo["exponent"] else ""))
    print("\n| profile | pol | case | κ /µm | w* nm | data | reference dB | reference, CD mean dB | runtime cmt dB | "
          "Δ dB (vs mean) | ok | landau_zener dB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    worst = 0.0
    conv = []
    failed = 0
    for vname, g in variants(geo).items():
        for case in cases(g) if vname == "configured" else [c for c in cases(g) if c["name"] == "nominal"]:
            ref = reference_eta(data, case, g)
            run = runtime_eta(case, g)
            lz = db(runtime_eta(case, g, model="landau_zener"))
            p_db, r_db, q_db = db(ref["eta"]), db(ref["eta_cd_mean"]), db(run)
            diff = q_db - r_db
            ok = within(q_db, r_db) or within(q_db, p_db)
            failed += not ok
            worst = max(worst, abs(diff))
            print(f"| {vname} | {case['polarization']} | {case['name']} | {ref['kappa_per_um']:.4f} | "
                  f"{1e3 * ref['w_star_um']:.1f} | {ref['source']} | {p_db:.3f} | {r_db:.3f} | {q_db:.3f} | {diff:+.3f} | "
                  f"{'yes' if ok else 'NO'} | {lz:.3f} |")
            conv.append(ref["convergence"])
            points.append({"geometry": g, **case, "reference_eta": ref["eta"], "reference_eta_cd_mean": ref["eta_cd_mean"],
                           "source": ref["source"]})
    print(f"\nlargest change from halving the reference's pieces: {max(conv):.1e} in η")
    print(f"largest |Δ| from the CD mean = {worst:.3f} dB; criterion: |Δ| ≤ {CRITERION_DB} dB or ≤ "
          f"{100 * CRITERION_REL:.0f} % of the reference loss, from the CD mean or from the reference itself; "
          f"{failed} of {len(points)} cases outside it")
    print(f"\n{len(points)} cases")
    if args.write:
        OUT.write_text(json.dumps({"description": __doc__.splitlines()[0], "criterion_db": CRITERION_DB,
                                   "criterion_rel": CRITERION_REL, "points": points}, indent=1,
                                  ensure_ascii=False) + "\n")
        print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
