"""Couplers behind one interface (docs/architecture.md, "Extending"): the registry, the
schema rows that come from it, and a coupler registered from outside the package.

In process: the shipped couplers are registered and declared; an unknown kind is refused
naming ``package.coupler.kind``; a coupler registered later (here by a fixture) is
accepted by the schema, the problem and the model. One subprocess test runs the command
with the test-suite plugin ``tests/toy_parts.py`` (``YIELDMC_PLUGINS=toy_parts``) and
checks the yield of its toy coupler against the closed form.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import warm_process
import yieldmc
from yieldmc import couplers
from yieldmc.configuration import schema
from yieldmc.io.config import compose, to_container
from yieldmc.couplers import COUPLERS, Coupler, get_coupler, register_coupler
from yieldmc.engine.model import channel_loss_db, nominal_values
from yieldmc.configuration.parse import build_problem, float_param_paths

TESTS = Path(__file__).resolve().parent


def config_dict(overrides=()) -> dict:
    return to_container(compose(list(overrides)))


def refused(cfg) -> str:
    with pytest.raises(ValueError) as info:
        build_problem(cfg)
    message = str(info.value)
    assert "\n" not in message, message
    return message


# ---------------------------------------------------------------------------------------
# The shipped couplers
# ---------------------------------------------------------------------------------------


def test_registry_holds_the_shipped_couplers():
    assert {"adiabatic", "butt"} <= set(COUPLERS)
    for kind in ("adiabatic", "butt"):
        coupler = get_coupler(kind)
        assert isinstance(coupler, Coupler) and coupler.kind == kind and COUPLERS[kind] is coupler
    with pytest.raises(TypeError):
        COUPLERS["x"] = get_coupler("butt")  # a read-only view


def test_schema_rows_come_from_the_registry():
    assert schema.choices("package.coupler.kind") == tuple(COUPLERS)
    cfg = lambda kind: {"package": {"coupler": {"kind": kind}}}  # noqa: E731
    assert schema.lookup(cfg("butt"), "package.coupler.gap_um").bounds == "[0, inf)"
    assert schema.lookup(cfg("adiabatic"), "package.coupler.gap_um").bounds == "(-inf, inf)"
    assert schema.lookup(cfg("butt"), "package.coupler.kappa_per_um") is None
    rows = [k for k in schema.all_keys() if k.path.startswith("package.coupler.")]
    assert rows[0].path == "package.coupler.kind" and not rows[0].when
    for kind in ("butt", "adiabatic"):
        mine = {k.path.removeprefix("package.coupler.") for k in rows if k.when == ("package.coupler.kind", kind)}
        assert mine == {k.path for k in get_coupler(kind).keys}
    assert "package.coupler.kind" not in {k.path for k in schema.KEYS}  # declared once, by the registry


def test_compose_butt_still_works():
    cfg = to_container(yieldmc.compose(["package/coupler=butt"]))
    problem = build_problem(cfg)
    assert problem.static.coupler.name == "butt" and problem.static.coupler.settings == ()
    assert [p for p in problem.params if p.startswith("package.coupler.")] == [
        "package.coupler.mode_radius_x_um", "package.coupler.mode_radius_y_um", "package.coupler.gap_um",
        "package.coupler.n_gap", "package.coupler.n_chip"]


@pytest.mark.slow
def test_float_and_static_keys_of_the_adiabatic_coupler():
    derived = build_problem(config_dict())
    knots = ((0.1, 0.17),)
    assert derived.static.coupler.settings == ("cmt", 64, True, "si_strip", "piecewise", knots)
    assert derived.static.polarizations == ("te", "tm")
    assert "package.coupler.decay_per_um" not in derived.params  # null: a static choice
    assert "package.coupler.delta_beta_start_per_um" not in derived.params  # si_strip: null
    assert "package.coupler.kappa_per_um" not in derived.params  # si_strip: κ from the supermode table
    given = build_problem(config_dict(["package.coupler.decay_per_um=0.2", "package.coupler.segments=32",
                                       "package.coupler.model=landau_zener"]))
    assert given.static.coupler.settings == ("landau_zener", 32, False, "si_strip", "piecewise", knots)
    linear = build_problem(config_dict(["package/coupler=adiabatic_linear"]))
    assert linear.static.coupler.settings == ("cmt", 64, True, "linear", "linear", ())
    assert linear.static.polarizations == ("te",)  # polarisation independent: one evaluation
    assert given.params["package.coupler.decay_per_um"].tolist() == [0.2]
    with pytest.raises(ValueError, match=r"^sweep\.package\.coupler\.segments: not sweepable"):
        build_problem(config_dict(["+sweep={package.coupler.segments:[16,32]}"]))


@pytest.mark.parametrize("kind", ["grating", None, 3])
def test_an_unknown_kind_is_refused_naming_the_key(kind):
    cfg = config_dict()
    cfg["package"]["coupler"]["kind"] = kind
    assert refused(cfg).startswith("package.coupler.kind: ")
    with pytest.raises(ValueError, match=r"^package\.coupler\.kind: unknown coupler"):
        float_param_paths(cfg)
    with pytest.raises(ValueError, match=r"^package\.coupler\.kind: unknown coupler 'grating'"):
        get_coupler("grating")


def test_an_unknown_kind_is_refused_on_the_command_line():
    with pytest.raises(ValueError, match="package/coupler"):  # Hydra: no such group option
        compose(["package/coupler=grating"])
    with pytest.raises(ValueError, match=r"^package\.coupler\.kind: expected one of \['adiabatic', 'butt'"):
        build_problem(config_dict(["package.coupler.kind=grating"]))


@pytest.mark.slow
def test_coupler_checks_name_their_keys():
    cfg = config_dict(["package.coupler.n_gap=1.6"])
    assert refused(cfg).startswith("package.coupler.n_gap: must be in (0, package.pwg.n_clad]")
    cfg = config_dict(["package/coupler=butt"])
    del cfg["package"]["coupler"]["n_chip"]
    assert refused(cfg) == "package.coupler.n_chip: missing from the configuration"
    cfg = config_dict()
    del cfg["package"]["coupler"]["model"]  # a static key
    assert refused(cfg) == "package.coupler.model: missing from the configuration"


def test_nominal_values_come_from_the_coupler():
    for overrides in ([], ["package/coupler=butt"]):
        problem = build_problem(config_dict([*overrides, "package.coupler.gap_um=0.25"]))
        params = {k: v[0] for k, v in problem.params.items()}
        assert nominal_values(params, problem.static)["gap_um"] == 0.25


# ---------------------------------------------------------------------------------------
# A coupler registered later (in process)
# ---------------------------------------------------------------------------------------


class FlatCoupler(Coupler):
    """η = ``package.coupler.eta_flat`` on every channel, whatever the offsets."""

    kind = "flat_test"
    keys = (schema.Key("eta_flat", "float", "", "(0, 1]", "constant efficiency"),
            schema.Key("label", "str", "", "", "a static setting", choices=("a", "b")))

    def static(self, config):
        return ("label", config["label"])

    def efficiency(self, inputs, *, polarization="te"):
        return inputs.params["package.coupler.eta_flat"] + 0.0 * inputs.dx_um


@pytest.fixture
def flat():
    coupler = register_coupler(FlatCoupler())
    try:
        yield coupler
    finally:
        couplers._REGISTRY.pop(coupler.kind, None)


def test_a_coupler_registered_later_is_accepted(flat):
    assert "flat_test" in COUPLERS and schema.choices("package.coupler.kind")[-1] == "flat_test"
    cfg = config_dict()
    cfg["package"]["coupler"] = {"kind": "flat_test", "eta_flat": 0.5, "label": "b"}
    problem = build_problem(cfg)
    assert problem.static.coupler.name == "flat_test" and problem.static.coupler.settings == ("label", "b")
    assert [p for p in problem.params if p.startswith("package.coupler.")] == ["package.coupler.eta_flat"]
    params = {k: v[0] for k, v in problem.params.items()}
    loss = np.asarray(channel_loss_db(nominal_values(params, problem.static), params, problem.static))
    assert loss.shape == (1, 12, 1)
    np.testing.assert_allclose(loss, 10 * math.log10(2) + 0.28, rtol=1e-12)
    assert nominal_values(params, problem.static)["gap_um"] == 0.0  # not owned: 0

    cfg["package"]["coupler"]["eta_flat"] = 1.5
    assert refused(cfg) == "package.coupler.eta_flat: must lie in (0, 1], got 1.5"
    cfg["package"]["coupler"] = {"kind": "flat_test", "eta_flat": 0.5, "label": "b", "gap_um": 1.0}
    assert refused(cfg).startswith("package.coupler.gap_um: unknown key; expected one of ['eta_flat', 'kind'")


def test_the_registry_refuses_malformed_couplers():
    with pytest.raises(TypeError):
        register_coupler(object())

    class Bad(FlatCoupler):
        kind = "bad_test"
        keys = (schema.Key("kind", "str", "", "", "clash"),)

    with pytest.raises(ValueError, match="malformed key"):
        register_coupler(Bad())
    assert "bad_test" not in COUPLERS


def test_the_schema_forgets_a_coupler_that_is_gone(flat):
    assert schema.declared("package.coupler.eta_flat")
    couplers._REGISTRY.pop("flat_test")
    assert not schema.declared("package.coupler.eta_flat")
    assert "flat_test" not in schema.choices("package.coupler.kind")


# ---------------------------------------------------------------------------------------
# A coupler from a plugin, end to end through the command
# ---------------------------------------------------------------------------------------


def _toy_yield(cfg: dict) -> float:
    """P(module passes) for the toy coupler (gaussian) with only dx ~ N(0, σ²) at module level.

    Channel c sees the offset dx + ρ_c, ρ_c = x_c·Δα·1e-6·(T − T_lock) its thermal run-out
    (dy = 0), so its loss is 10·log10(e)·(dx + ρ_c)²/w² + P (P the propagation loss) and
    it passes L when |dx + ρ_c| <= r, r = w·sqrt((L − P)·ln10/10). All channels pass when
    −r − min ρ <= dx <= r − max ρ.
    """
    pkg, cpl = cfg["package"], cfg["package"]["coupler"]
    prop = pkg["pwg"]["loss_db_per_cm"] * pkg["pwg"]["length_cm"]
    r = cpl["w_toy_um"] * math.sqrt((cfg["spec"]["max_loss_db"] - prop) * math.log(10) / 10)
    x = (np.arange(pkg["channels"]) - 0.5 * (pkg["channels"] - 1)) * pkg["pitch_um"]
    rho = x * pkg["cte_mismatch_ppm_per_k"] * 1e-6 * (pkg["temperature_c"] - pkg["lock_temperature_c"])
    sigma = cfg["process"]["dx_um"]["module"]["sigma"]
    lo, hi = -r - rho.min(), r - rho.max()
    return max(0.0, 0.5 * (math.erf(hi / (sigma * math.sqrt(2))) - math.erf(lo / (sigma * math.sqrt(2)))))


@pytest.mark.slow
def test_toy_coupler_from_a_plugin_runs_through_the_command(tmp_path):
    from yieldmc.io.store import open_result

    env = dict(os.environ, YIELDMC_PLUGINS="toy_parts", JAX_PLATFORMS="cpu",
               PYTHONPATH=os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH")) if p))
    args = ["package/coupler=toy", "process=none", "process.dx_um.module.sigma=1", "samples=8192",
            "engine.block_size=4096", "output.dir=out", "output.plots=false"]
    proc = warm_process.run([sys.executable, "-m", "yieldmc", *args], cwd=tmp_path, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (store,) = (tmp_path / "out").glob("*.zarr")
    ds = open_result(store)
    cfg = yaml.safe_load(ds.attrs["config_yaml"])
    assert cfg["package"]["coupler"] == {"kind": "toy", "w_toy_um": 2.0, "shape": "gaussian"}
    n, k = int(ds.n_samples), int(ds.n_pass)
    p = _toy_yield(cfg)
    assert n == 8192 and 0.3 < p < 0.9  # the run-out matters: p differs from P(|dx| <= r)
    assert abs(k / n - p) <= 4.5 * math.sqrt(p * (1 - p) / n), (k / n, p)

    # The plugin's own check runs too (package.coupler.w_toy_um < package.pitch_um).
    bad = warm_process.run([sys.executable, "-m", "yieldmc", *args, "package.coupler.w_toy_um=60"],
                           cwd=tmp_path, env=env, timeout=300)
    assert bad.returncode == 2 and "package.coupler.w_toy_um: must be < package.pitch_um" in bad.stderr
