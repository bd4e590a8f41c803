"""The runtime Si-taper → PWG coupler against an eigenmode-expansion (EME) propagation of the
full 3-D taper (tests/data/eme_reference.json, written by ``python scripts/eme_reference.py
report --write`` from the mode solves of ``scripts/eme_reference.py solve``; no mode solver
here: the test reads the committed points and reruns only the runtime coupler).

The criterion is the coupler validation criterion of docs/physics.md: |Δ| ≤ 0.3 dB or ≤ 20 %
of the reference loss, against the EME averaged over the channel CD scatter or at the nominal
tip (the tip interference phase is not resolved at runtime). The runtime does not meet it:
the EME finds 0.26–0.64 dB more loss than the two-mode coupled-mode model the runtime is built
on. The two-mode equations in the local-mode basis, run on the EME's own splitting and
local coupling of its two highest modes, reproduce the EME's loss; run on the two-mode
model's, they do not: the model's crossing shape (δ(w) interpolated between sparse solves,
steepening on the narrow side where the Si-like mode nears the PWG's higher-order mode)
returns part of the non-adiabatic power that the EME keeps. That test is an expected failure, strict:
a runtime that comes within the criterion fails it until the table is regenerated. The
comparison table (docs/physics.md) is what the runtime gives now, within float32 rounding.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from yieldmc import validation

EME = json.loads((Path(__file__).parent / "data/eme_reference.json").read_text())


def db(eta):
    return -10.0 * math.log10(eta)


def within(value_db, reference_db):
    diff = abs(value_db - reference_db)
    return diff <= EME["criterion_db"] or diff <= EME["criterion_rel"] * reference_db


def test_the_committed_eme_points_cover_both_polarisations_and_a_misaligned_case():
    pts = EME["points"]
    assert len(pts) >= 3
    assert {p["polarization"] for p in pts} == {"te", "tm"}
    assert any(p["gap_um"] != p["geometry"]["gap_um"] or p["offset_um"] != 0.0 for p in pts)
    for p in pts:
        e = p["eme"]
        assert 0.0 < e["eta"] <= 1.0 and 0.0 < e["eta_cd_mean"] <= 1.0
        # the launch is the strip mode, the cascade reflects next to nothing, and the modal
        # basis is converged (the last added modes move the loss by < 0.05 dB)
        assert p["launch_strip_power_in_mode1"] > 0.999 and e["reflected_max"] < 1e-3
        assert abs(db(e["eta_cd_mean_modes"]["16"]) - db(e["eta_cd_mean"])) < 0.05


def test_the_comparison_table_is_what_the_runtime_gives_now():
    """The runtime column of the committed table within float32 rounding: the segments'
    phases sum to ~250 rad, so a relative rounding of 1e-7 moves η by ~1e-5 (5e-5 dB);
    1e-3 dB leaves room for another CPU's vector width."""
    for p in EME["points"] + EME.get("nodes", []):
        run_db = db(float(validation.supermode_coupler_eta(p, p["geometry"])))
        assert abs(run_db - db(p["runtime_eta"])) <= 1e-3, (p["polarization"], p["name"], run_db)


@pytest.mark.xfail(strict=True, reason="the runtime's two-mode coupler is 0.33–0.75 dB more optimistic than "
                   "the EME (docs/physics.md, 'Against an eigenmode expansion')")
def test_runtime_coupler_within_the_criterion_of_the_eme_propagation():
    bad = []
    for p in EME["points"]:
        run_db = db(float(validation.supermode_coupler_eta(p, p["geometry"])))
        refs = [db(p["eme"][k]) for k in ("eta_cd_mean", "eta")]
        if not any(within(run_db, r) for r in refs):
            bad.append((p["polarization"], p["name"], refs, run_db))
    assert not bad, bad


def residual(local, w_star_nm, *, model, stop_above_nm=2.0):
    """Second implementation of the script's two-mode equations in the local-mode basis, from
    the raw overlap blocks: each interface transmits the nearest orthogonal matrix to Oᵀ (its
    polar factor — a mode whose sign the solver flipped is a −1 in it, no sign bookkeeping),
    each cell its phases; the two-mode model's interfaces are its rotations by Δθ. Read out
    ``stop_above_nm`` above the narrowest-side minimum of the gap to the third mode (the tip
    if that minimum is the last cell). Returns the power in the second mode, the power in the
    first, and the amplitudes (in the solver's signs of the last cell's modes) where the tip
    is the read-out, else None."""
    ws = np.asarray(local["width_nm"])
    gap = np.asarray(local["third_gap_per_um"])
    narrow = np.nonzero(ws < w_star_nm)[0]
    k = narrow[np.argmin(gap[narrow])]
    stop = ws[k] + stop_above_nm if k < len(ws) - 1 else -np.inf
    split = np.asarray(local["model_splitting_per_um" if model else "splitting_per_um"])
    a = np.array([1.0, 0.0], dtype=complex)
    for i in np.nonzero(ws >= stop - 1e-9)[0]:
        if model:
            c, s = math.cos(local["model_rotation_rad"][i]), math.sin(local["model_rotation_rad"][i])
            u = np.array([[c, s], [-s, c]])
        else:
            left, _, right = np.linalg.svd(np.asarray(local["overlap_block"][i]).T)
            u = left @ right
        a = np.exp([-0.5j * split[i] * local["length_um"][i], 0.5j * split[i] * local["length_um"][i]]) * (u @ a)
    return float(abs(a[1]) ** 2), float(abs(a[0]) ** 2), (a if stop == -np.inf else None)


def test_two_modes_with_the_emes_own_crossing_reproduce_the_eme_and_the_models_do_not():
    """The diagnosis of the failure above, on the committed local-mode data: with the EME's
    splitting and local coupling the two-mode residual is the EME's loss within the EME's own
    uncertainty (its two interface tests differ by 0.06–0.09 dB); with the two-mode model's on
    the same cells it is 0.25 dB or more short of it."""
    for p in EME["points"]:
        ws = 1e3 * p["w_star_um"]
        loss_db = db(p["eme"]["eta"])
        spread_db = abs(db(p["eme"]["eta_transmitted_test"]) - loss_db)
        own = db(1.0 - residual(p["local_modes"], ws, model=False)[0])
        two_mode = db(1.0 - residual(p["local_modes"], ws, model=True)[0])
        assert abs(own - loss_db) <= spread_db, (p["case"], own, loss_db, spread_db)
        assert loss_db - two_mode >= 0.25, (p["case"], two_mode, loss_db)


def test_the_local_mode_column_is_a_second_implementations_result():
    """The committed local-mode η of every case and node (the script's rotations with the
    modes' signs made continuous) against the polar-factor implementation above: the first
    mode's power at the read-out width times its power in the PWG mode at the tip, or where
    the tip is the read-out, |P1·a1 + P2·a2|² there. Both take the rotation factor of each
    interface's block (O = R·S, S symmetric), one through its angle, one through the SVD, so
    they agree to rounding."""
    for p in EME["points"] + EME.get("nodes", []):
        _, first, at_tip = residual(p["local_modes"], 1e3 * p["w_star_um"], model=False)
        proj = np.asarray(p["local_modes"]["projection_raw"][-1])
        eta = first * proj[0] ** 2 if at_tip is None else float(abs(proj @ at_tip) ** 2)
        assert abs(db(eta) - db(p["local_mode_eta"])) <= 1e-6, (p["case"], db(eta), db(p["local_mode_eta"]))
