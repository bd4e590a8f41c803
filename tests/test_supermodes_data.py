"""Internal consistency of yieldmc/data/si_pwg_supermodes.json (no solver needed).

The data (scripts/si_pwg_supermodes.py, docs/supermodes.md) hold, per solve, quantities
computed in independent ways; these tests check the relations that must hold between them:

* ∂n_eff/∂n_r (derivative of the discrete eigenvalue, left/right eigenvectors) against the
  electric-energy confinement factors Γ_r (field integrals): for a non-dispersive
  cross-section n_r·∂n_eff/∂n_r = n_g·Γ_r for every region r (J. T. Robinson et al.,
  Opt. Express 16:16659 (2008)), and ΣΓ_r = 1;
* widening the strip raises ε pointwise, so every guided n_eff rises with width
  (min–max principle);
* the overlap route (2 × 2 coupled local modes from the isolated modes) against the full
  supermode solves: the splitting at the same node and κ = ½·min(β1 − β2);
* first-order temperature shifts Σ ∂n_eff/∂n_r·Δn_r against full solves at −40 and 125 °C
  (remainder small and second order);
* the supermode's projection on the PWG mode from this script's E × H against femwell's.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent.parent / "yieldmc" / "data" / "si_pwg_supermodes.json"
REGIONS = ("si", "box", "core", "clad")

#: Agreement stated in docs/supermodes.md between the overlap route and the full solves
#: (relative, on the splitting β1 − β2 at the same node and on κ).
OVERLAP_ROUTE_REL = 0.15
#: n_r·∂n/∂n_r/Γ_r: the same n_g for every region to this relative spread. The identity
#: holds for the discrete Galerkin solution as well (the committed data: ≈ 1e-12), so
#: any larger spread means wrong regions, E_z scaling or eigenvector pairing.
ROBINSON_REL = 1e-8
#: First-order temperature shifts over −40…125 °C (polymer index −0.034…+0.022): the
#: accuracy stated in docs/supermodes.md, in n_eff (the remainder is second order in the
#: index changes, largest for the Si-like modes).
FIRST_ORDER_ABS = 1e-3


@pytest.fixture(scope="module")
def data():
    return json.loads(DATA.read_text())


def _modes(row):
    return [i for i in (1, 2) if f"n{i}" in row]


def test_confinement_factors_and_derivatives(data):
    checked = 0
    for row in data["rows"]:
        for i in _modes(row):
            gam = {r: row[f"gamma{i}_{r}"] for r in REGIONS}
            assert sum(gam.values()) == pytest.approx(1.0, abs=1e-9)
            assert all(g >= 0 for g in gam.values())
            n_mat = data["materials"]["per_wavelength"]
            lam = [m for m in n_mat if m["wavelength_um"] == row["wavelength_um"]][0]
            if row["temperature_c"] != data["materials"]["temperature_c"]:
                continue  # indices of the table temperature only
            ng = [lam[r] * row[f"dn{i}_dn{r}"] / gam[r] for r in REGIONS if gam[r] > 0.01]
            assert max(ng) - min(ng) <= ROBINSON_REL * max(ng), (row, i, ng)
            assert min(ng) > row[f"n{i}"]  # waveguide dispersion: n_g > n_eff
            checked += 1
    assert checked >= 20


def test_indices_rise_with_width(data):
    nominal = data["geometry"]["nominal_gap_um"]
    for pol in ("te", "tm"):
        rows = sorted((r for r in data["rows"] if r["polarization"] == pol
                       and r["tag"] == "nominal" and r["gap_um"] == nominal
                       and r["offset_um"] == 0.0 and r["wavelength_um"] == 1.31
                       and r["temperature_c"] == data["materials"]["temperature_c"]),
                      key=lambda r: r["width_um"])
        assert len(rows) >= 6
        for i in (1, 2):
            seq = [(r["width_um"], r[f"n{i}"]) for r in rows if f"n{i}" in r]
            for (w0, n0), (w1, n1) in zip(seq, seq[1:]):
                assert n1 > n0, (pol, i, w0, w1)


def test_overlap_route_matches_full_splitting(data):
    checked = 0
    for row in data["rows"]:
        if "cmt_n1" not in row or "n2" not in row:
            continue
        full = row["n1"] - row["n2"]
        cmt = row["cmt_n1"] - row["cmt_n2"]
        assert abs(cmt / full - 1) <= OVERLAP_ROUTE_REL, row
        # the 2 × 2 model's own relation: splitting² = δ² + 4κ²
        k0 = 2 * math.pi / row["wavelength_um"]
        two_mode = math.hypot(row["cmt_delta_per_um"], 2 * row["cmt_kappa_per_um"]) / k0
        assert two_mode == pytest.approx(cmt, rel=1e-2)
        checked += 1
    assert checked >= 4


def test_kappa_from_minimum_splitting(data):
    for c in data["crossings"]:
        k0 = 2 * math.pi / c["wavelength_um"]
        rows = [r for r in data["rows"] if r["polarization"] == c["polarization"]
                and r["wavelength_um"] == c["wavelength_um"] and r["gap_um"] == c["gap_um"]
                and r["offset_um"] == c["offset_um"] and r["temperature_c"] == c["temperature_c"]
                and "n2" in r]
        split = {r["width_um"]: k0 * (r["n1"] - r["n2"]) for r in rows}
        w_min = min(split, key=split.get)
        # a minimum lies below every sample and above the two-mode bound at the nearest one
        assert 2 * c["kappa_per_um"] <= split[w_min] * (1 + 1e-9)
        a = c["ddelta_dw_per_um2"] ** 2
        gap = min(abs(w - c["w_star_um"]) for w in split)
        assert split[w_min] ** 2 - 4 * c["kappa_per_um"] ** 2 <= 2 * a * gap**2 + 1e-12
        if "node_cmt_kappa_per_um" in c:
            assert abs(c["node_cmt_kappa_per_um"] / c["kappa_per_um"] - 1) <= OVERLAP_ROUTE_REL


def test_first_order_temperature_shift(data):
    rows = data["temperature_check"]
    assert len(rows) >= 4
    remainder = {}
    for r in rows:
        for i in (1, 2):
            if f"n{i}_solve" not in r:
                continue
            err = r[f"n{i}_solve"] - r[f"n{i}_first_order"]
            assert abs(err) <= FIRST_ORDER_ABS, (r, i)
            remainder.setdefault((r["polarization"], r["width_um"], i), {})[
                r["temperature_c"]] = err
    # what is left is second order in ΔT: the same sign on both sides of 25 °C
    for key, errs in remainder.items():
        e = list(errs.values())
        if len(e) == 2 and min(abs(x) for x in e) > 1e-5:
            assert e[0] * e[1] > 0, (key, errs)


def test_projection_matches_femwell(data):
    rows = [r for r in data["rows"] if "full_pwg_projection1_femwell" in r]
    for r in rows:
        assert r["full_pwg_projection1"] == pytest.approx(r["full_pwg_projection1_femwell"],
                                                          abs=1e-3)
    assert all(0.0 < r["full_pwg_projection1"] <= 1.0 for r in data["rows"]
               if "full_pwg_projection1" in r)
