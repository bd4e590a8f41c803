"""Model uncertainty (``uncertain``): outer realisations, the band, the expected yield and
the first-order importance, against independent computations.

* the band and the expected yield against a nested closed form: the butt-coupled module
  with a shared Gaussian offset of uncertain σ has Y(σ) = erf(r/(σ√2))
  (:func:`yieldmc.validation.module_offset`), so each realisation, each band quantile and
  the mean over σ are known exactly;
* the importance against SALib's pick-freeze indices of a three-input closed form
  (tests/data/uncertain_importance_reference.csv, written by
  scripts/uncertain_importance_reference.py; SALib is not needed here);
* the estimator alone against analytic indices, and the Sobol' points' stratification;
* each realisation is the plain run at its values on the same module draws (bit for bit),
  and shards and a resume give the same result as one job;
* ``mode=sensitivity`` of the expected yield against the same closed form: the mean over
  σ ~ U[a, b] of ∂Y/∂σ is (Y(b) − Y(a))/(b − a).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate
from scipy.special import ndtr

import yieldmc
from yieldmc import validation
from yieldmc.configuration.parse import build_problem
from yieldmc.configuration.uncertain import latin_hypercube_normals, sobol_normals
from yieldmc.engine import uncertainty as est
from yieldmc.io import store as zstore
from yieldmc.io.cli import execute
from yieldmc.io.config import compose, to_container

REFERENCE = Path(__file__).parent / "data" / "uncertain_importance_reference.csv"
SIGMA = {"distribution": "uniform", "low": 0.5, "high": 1.5}


def _uncertain(entries: dict) -> str:
    body = ",".join(f"{k}:{{{','.join(f'{p}:{v}' for p, v in e.items())}}}" for k, e in entries.items())
    return f"uncertain={{{body}}}"


def _module_offset(*extra, channels: int = 1):
    prob = validation.module_offset(sigma_um=1.0, channels=channels)
    return compose([*prob.overrides, "engine.block_size=8192", *extra])


def _closed_form(sigma_um):
    w_x, _ = validation.pwg_mode_radii_um()
    r = w_x * math.sqrt(0.3 / validation.DB_PER_NEPER_POWER)  # module_offset's default spec 0.3 dB
    return np.vectorize(lambda s: math.erf(r / (s * math.sqrt(2.0))))(sigma_um)


# --------------------------------------------------------------------------- nested closed form
@pytest.fixture(scope="module")
def band_run():
    n = 2**15
    cfg = _module_offset(f"samples={n}", "uncertainty.realizations=64",
                         _uncertain({"process.dx_um.module.sigma": SIGMA}))
    return yieldmc.run(cfg), n


def test_each_realisation_is_the_closed_form_at_its_sigma(band_run):
    ds, n = band_run
    sigma = ds.uncertain_value.sel(uncertain="process.dx_um.module.sigma").values
    exact = _closed_form(sigma)
    se = np.sqrt(exact * (1 - exact) / n)
    assert np.all(np.abs(ds.yield_realization.values - exact) <= 4.5 * se + 1e-12)
    assert sigma.min() >= 0.5 and sigma.max() <= 1.5


def test_band_quantiles_and_expected_yield_against_the_nested_closed_form(band_run):
    ds, _ = band_run
    inner = float(ds.yield_inner_se)
    for p, low, high in zip(ds.band_quantile.values, ds.yield_band_ci_low.values, ds.yield_band_ci_high.values):
        exact = float(_closed_form(0.5 + (1.0 - p)))  # Y falls with σ ~ U[0.5, 1.5]: ξ_p(Y) = Y(σ_{1-p})
        assert low - 4.5 * inner <= exact <= high + 4.5 * inner, (p, low, exact, high)
    band = ds.yield_band.values
    assert band[0] <= band[1] <= band[2]
    mean = integrate.quad(lambda s: float(_closed_form(s)), 0.5, 1.5)[0]
    assert abs(float(ds.yield_expected) - mean) <= 4.5 * float(ds.yield_expected_se)
    # one uncertain input carries the whole variance (the correlation ratio's bin bias is
    # the variation of Y within one of its 8 bins: below 4 % for this smooth Y)
    s = float(ds.uncertain_importance[0])
    assert 0.96 <= s <= 1.0 + 1e-9


def test_a_realisation_is_the_plain_run_at_its_values_on_the_same_draws(band_run):
    ds, n = band_run
    r = 5
    sigma = float(ds.uncertain_value.isel(realization=r, uncertain=0))
    plain = yieldmc.run(_module_offset(f"samples={n}", f"process.dx_um.module.sigma={sigma!r}"))
    assert int(ds.n_pass.isel(realization=r)) == int(plain.n_pass)


# --------------------------------------------------------------------------- SALib reference
def _reference():
    with REFERENCE.open() as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
    return {r["key"]: (float(r["low"]), float(r["high"]), float(r["S1"]), float(r["S1_conf95"])) for r in rows}


@pytest.mark.parametrize("sampling, realizations", [("lhs", 256), ("sobol", 256), ("random", 1024)])
def test_importance_against_salib(sampling, realizations):
    ref = _reference()
    prob = validation.module_offset(sigma_um=1.0, channels=1)
    entries = {k: {"distribution": "uniform", "low": lo, "high": hi} for k, (lo, hi, _, _) in ref.items()}
    cfg = compose([*prob.overrides, "process.dy_um.module.sigma=0.3", "samples=8192", "engine.block_size=8192",
                   f"uncertainty.realizations={realizations}", f"uncertainty.sampling={sampling}",
                   _uncertain(entries)])
    ds = yieldmc.run(cfg)
    for key, (_, _, s1, conf) in ref.items():
        s = float(ds.uncertain_importance.sel(uncertain=key))
        se = float(ds.uncertain_importance_se.sel(uncertain=key))
        assert abs(s - s1) <= 4.5 * math.hypot(se, conf / 1.96), (key, s, se, s1, conf)
    # the inputs in SALib's order of importance
    order = sorted(ref, key=lambda k: -ref[k][2])
    values = [float(ds.uncertain_importance.sel(uncertain=k)) for k in order]
    assert values == sorted(values, reverse=True)


# --------------------------------------------------------------------------- the estimators
@pytest.mark.parametrize("sampling", ["sobol", "lhs", "random"])
def test_first_order_against_analytic_indices(sampling):
    """Y = X1 + 2·X2 (+ a dummy X3), X ~ U[0,1]³: S = (1/5, 4/5, 0). On Sobol' points in
    few dimensions the noise correction of the bin means over-corrects, by up to
    (M − 1)/R · W/s² <= (M − 1)/R (the estimator's documented one-sided bias)."""
    n = 4096
    rng = np.random.default_rng(7)
    x = {"sobol": lambda: ndtr(sobol_normals(n, 3, seed=7)), "random": lambda: rng.random((n, 3)),
         "lhs": lambda: ndtr(latin_hypercube_normals(n, 3, rng=rng))}[sampling]()
    sobol = sampling == "sobol"
    s, se = est.first_order(x, x[:, 0] + 2 * x[:, 1])
    exact = np.array([0.2, 0.8, 0.0])
    low = (est.bins(n) - 1) / n if sobol else 0.0
    assert np.all(s >= exact - low - 4.5 * se) and np.all(s <= exact + 4.5 * se), (s, se)
    assert np.all(se < 0.03)


@pytest.mark.parametrize("sampling", ["sobol", "lhs"])
def test_outer_points_are_stratified(sampling):
    """Each one-dimensional projection of the first 2^m points of a (scrambled) Sobol'
    sequence, and each column of a Latin hypercube, has one point in each interval
    [j/n, (j+1)/n)."""
    u = ndtr(sobol_normals(64, 5, seed=3) if sampling == "sobol"
             else latin_hypercube_normals(64, 5, rng=np.random.default_rng(3)))
    for k in range(5):
        assert sorted(np.floor(u[:, k] * 64).astype(int)) == list(range(64))


def test_aliased_sobol_dimensions_are_named_and_the_hypercube_separates_them():
    """In the first 64 Sobol' points dimensions 1 and 16 fall into the same eighths: a yield
    that depends on input 1 alone credits input 16 with the same share, and the warning
    names the pair. On a Latin hypercube every other input's share is 0 within 4.5 SE."""
    from types import SimpleNamespace

    from yieldmc.io.uncertainty import aliased

    keys = tuple(f"k{i}" for i in range(1, 17))
    for sampling in ("sobol", "lhs"):
        z = sobol_normals(64, 16, seed=5) if sampling == "sobol" else latin_hypercube_normals(
            64, 16, rng=np.random.default_rng(5))
        x = ndtr(z)
        s, se = est.first_order(x, (x[:, 0] > 0.5) + 0.1 * x[:, 0])
        warnings = aliased(SimpleNamespace(uncertain=keys, uncertain_values=x))
        if sampling == "sobol":
            assert s[0] > 0.9 and s[15] > 0.9  # input 16 takes input 1's share
            assert any("k1 and k16 are aliased" in w for w in warnings)
        else:
            assert s[0] > 0.9 and np.all(np.abs(s[1:]) <= 4.5 * se[1:]), (s, se)
            assert not warnings


def test_band_interval_covers_with_the_binomial_ranks():
    """The order-statistic interval of the median of 64 uniforms covers 1/2 in about 95 %
    of independent samples (coverage >= 0.95 by construction: 4.5 binomial SE below it
    would fail)."""
    rng = np.random.default_rng(11)
    trials = 2000
    hits = 0
    for _ in range(trials):
        low, high = est.band_interval(rng.random(64), (0.5,))
        hits += int(low[0] <= 0.5 <= high[0])
    assert hits / trials >= 0.95 - 4.5 * math.sqrt(0.95 * 0.05 / trials)


# --------------------------------------------------------------------------- input
def _problem(*extra):
    return build_problem(to_container(_module_offset("samples=1000", *extra)))


@pytest.mark.parametrize("extra, message", [
    ([_uncertain({"package.nonsense": SIGMA})], "uncertain.package.nonsense: unknown config key"),
    ([_uncertain({"package.layers": SIGMA})], "uncertain.package.layers: not a traced float parameter"),
    ([_uncertain({"process.dx_um.module.sigma": SIGMA}), "sweep={process.dx_um.module.sigma:[0.5,1.0]}"],
     "uncertain.process.dx_um.module.sigma: also swept"),
    ([_uncertain({"process.dx_um.module.sigma": {"distribution": "beta"}})],
     "uncertain.process.dx_um.module.sigma.distribution: unknown distribution"),
    ([_uncertain({"process.dx_um.module.sigma": {"distribution": "uniform", "low": 0.5}})],
     "uncertain.process.dx_um.module.sigma.high: uniform needs a finite bound"),
    ([_uncertain({"process.dx_um.module.sigma": {"distribution": "uniform", "low": 2, "high": 1}})],
     "uncertain.process.dx_um.module.sigma.low: must not exceed high"),
    ([_uncertain({"process.dx_um.module.sigma": {"distribution": "normal", "mean": 1.0}})],
     "uncertain.process.dx_um.module.sigma.sigma: an uncertain value needs a spread"),
    ([_uncertain({"process.dx_um.module.sigma": {"distribution": "uniform", "low": 0.5, "high": 1, "scale": 2}})],
     "uncertain.process.dx_um.module.sigma.scale: unknown key"),
    ([_uncertain({"process.dx_um.module.sigma": {"distribution": "uniform", "low": -1.0, "high": 1.0}})],
     "process.dx_um.module.sigma: must be >= 0, got -"),
    ([_uncertain({"process.dx_um.module.sigma": SIGMA}), "uncertainty.realizations=1"],
     "uncertainty.realizations: must be >= 2, got 1"),
    ([_uncertain({"process.dx_um.module.sigma": SIGMA}), "mode=optimize"],
     "uncertain: mode=optimize with uncertain inputs is not available"),
    ([_uncertain({"process.dx_um.module.sigma": SIGMA}), "sampler=is"],
     "uncertain: sampler=is estimates one point"),
])
def test_bad_uncertain_input_is_one_line_naming_the_key(extra, message):
    with pytest.raises(ValueError) as info:
        _problem(*extra)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_drawn_value_out_of_bounds_names_the_realisation():
    with pytest.raises(ValueError, match=r"\(at realization \d+: process.dx_um.module.sigma=-"):
        _problem(_uncertain({"process.dx_um.module.sigma": {"distribution": "normal", "mean": 0.2, "sigma": 0.5}}))


def test_without_uncertain_the_problem_is_unchanged():
    plain = _problem()
    assert plain.uncertain == () and plain.uncertain_values is None
    assert "realization" not in plain.sweep_keys


def test_realisations_lead_the_sweep_grid_and_are_traced():
    p = _problem(_uncertain({"spec.max_loss_db": {"distribution": "uniform", "low": 0.2, "high": 0.4}}),
                 "uncertainty.realizations=8", "sweep={process.dx_um.module.sigma:[0.5,1.0,1.5]}")
    assert p.sweep_keys == ("realization", "process.dx_um.module.sigma") and p.sweep_shape == (8, 3)
    spec = p.params["spec.max_loss_db"].reshape(8, 3)
    np.testing.assert_array_equal(spec, np.repeat(p.uncertain_values[:, :1], 3, axis=1))
    np.testing.assert_array_equal(p.params["process.dx_um.module.sigma"].reshape(8, 3), [[0.5, 1.0, 1.5]] * 8)


# --------------------------------------------------------------------------- composition
@pytest.mark.slow
def test_sweep_conditions_shards_and_resume_give_the_in_memory_result(tmp_path, capsys):
    run = ["samples=24576", "engine.block_size=8192", "engine.blocks_per_call=1", "uncertainty.realizations=8",
           _uncertain({"process.dx_um.module.sigma": SIGMA}), "sweep={spec.max_loss_db:[0.2,0.3]}",
           "conditions={cold:{temperature_c:0},hot:{temperature_c:70}}"]
    prob = validation.module_offset(sigma_um=1.0, channels=2)
    reference = yieldmc.run(compose([*prob.overrides, *run]))
    assert reference.condition_yield_band.dims == ("band_quantile", "spec.max_loss_db", "condition")
    assert reference.uncertain_importance.dims == ("uncertain", "spec.max_loss_db")
    out = tmp_path / "out"

    def command(*extra):
        cfg = compose([*prob.overrides, *run, f"output.dir={out}", "output.name=u.zarr", "output.plots=false",
                       "progress=false", *extra])
        try:
            return execute(cfg, tmp_path)
        except SystemExit as exc:
            return exc.code

    assert command("shard=0", "num_shards=2") == 0
    assert command("shard=1", "num_shards=2") == 0
    ds = zstore.open_result(out / "u.zarr")
    for name in ("yield_realization", "yield_band", "yield_band_ci_low", "yield_expected", "uncertain_importance",
                 "uncertain_importance_se", "condition_yield_band", "uncertain_value", "yield_inner_se"):
        np.testing.assert_array_equal(ds[name].values, reference[name].values, err_msg=name)
    assert "yield band over 8 realisations of 1 uncertain inputs" in capsys.readouterr().out


def test_the_band_and_importance_plots_are_written(band_run, tmp_path):
    from yieldmc.io.plots import plot_all

    ds, _ = band_run
    paths = plot_all(ds, tmp_path / "u.zarr")
    assert [p.name for p in paths] == ["u_band.png", "u_importance.png"]
    assert all(p.stat().st_size > 0 for p in paths)


# --------------------------------------------------------------------------- sensitivity
def test_sensitivity_of_the_expected_yield_against_the_closed_form():
    """E_σ[∂Y/∂σ] over σ ~ U[0.5, 1.5] is Y(1.5) − Y(0.5) (the fundamental theorem of
    calculus): the score estimator (unbiased) at each realisation, averaged, must meet it
    within 4.5 of its standard errors (outer spread over √R plus the inner bound); the
    expected yield against the mean of the closed form."""
    from yieldmc.analysis.sensitivity import sensitivity

    n = 2**15
    cfg = _module_offset(f"samples={n}", "uncertainty.realizations=32", "mode=sensitivity",
                         "gradient.estimator=score", _uncertain({"process.dx_um.module.sigma": SIGMA}))
    ds = sensitivity(cfg)
    key = "process.dx_um.module.sigma"
    g, se = float(ds.yield_gradient.sel(parameter=key)), float(ds.yield_gradient_se.sel(parameter=key))
    exact = float(_closed_form(1.5) - _closed_form(0.5))
    assert abs(g - exact) <= 4.5 * se, (g, se, exact)
    assert se < 0.25 * abs(exact)  # the check has teeth
    assert ds.attrs["realizations"] == 32 and int(ds.n_samples) == 32 * n
    mean_y = integrate.quad(lambda s: float(_closed_form(s)), 0.5, 1.5)[0]
    assert abs(float(ds["yield"]) - mean_y) <= 4.5 * math.sqrt(mean_y * (1 - mean_y) / n) + 0.02
