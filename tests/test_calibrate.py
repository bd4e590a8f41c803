"""Calibration from measured modules: recovery within the reported errors over seeds, misfit
and non-identifiability flagged, too few modules refused, the fitted process usable as
process=<name> (written only when asked), bad input refused naming the column or key."""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np
import pytest

import warm_process
import yieldmc
from yieldmc import validation
from yieldmc.job import is_calibration_file, parse_job

#: Butt coupler, 12 channels, lateral offsets only: module sigma 0.7, channel sigma 0.2.
BASE = list(validation.channel_offset(sigma_um=0.2, channels=12).overrides) + ["samples=1024"]
TRUTH = {"process.dx_um.module.sigma": 0.7, "process.dx_um.channel.sigma": 0.2}
START = ["process.dx_um.module.sigma=0.5", "process.dx_um.channel.sigma=0.3"]
FIT = ["calibrate.samples=1024", "calibrate.steps=240", "calibrate.bootstrap=8",
       "calibrate.parameters=[process.dx_um.module.sigma,process.dx_um.channel.sigma]"]


def measured(modules=200, seed=0, extra=()):
    return validation.synthetic_measurements(BASE + [f"{k}={v}" for k, v in TRUTH.items()] + list(extra),
                                             modules=modules, seed=seed)


def fit(data, overrides=(), **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = yieldmc.calibrate(yieldmc.compose(BASE + START + FIT + list(overrides)), data,
                               write_process=False, **kw)
    return ds, [str(w.message) for w in caught]


@pytest.mark.slow
def test_recovers_known_parameters_within_the_reported_errors_over_seeds():
    """Synthetic data from known sigmas (each seed its own modules and draws), fitted from
    a wrong start: 10 (seed, parameter) pairs, each 95 % interval value ± 1.96·SE should
    hold the truth with probability ≥ 0.95 (at least 8 of 10 with probability 0.99), and
    no estimate is 4 SE away. The correctly specified model is not flagged (a flag at
    p < 0.01 on either statistic: at most one seed by chance)."""
    truth = np.array(list(TRUTH.values()))
    z, flagged = [], 0
    for seed in range(5):
        ds, notes = fit(measured(seed=100 + seed), [f"seed={seed}"])
        assert list(ds.parameter.values) == list(TRUTH)
        z.append((ds.value.values - truth) / ds.value_se.values)
        flagged += any("goodness of fit" in n for n in notes)
        assert ds.attrs["objective"] < ds.attrs["objective_initial"]
    z = np.concatenate(z)
    assert np.sum(np.abs(z) <= 1.96) >= 8 and np.all(np.abs(z) < 4), z
    assert flagged <= 1


@pytest.mark.slow
def test_a_wrong_distribution_family_is_flagged():
    """Modules placed uniformly on ±1.21 µm (the same sigma 0.7), fitted as normal: the
    module-mean loss has no tail; the KS goodness of fit flags it."""
    data = measured(modules=300, seed=7, extra=[
        "process.dx_um.module.distribution=uniform", "process.dx_um.module.low=-1.212",
        "process.dx_um.module.high=1.212"])
    ds, notes = fit(data)
    assert float(ds.gof_p_value.sel(statistic="module_mean").min()) < 0.01
    assert any("goodness of fit" in n and "module mean" in n for n in notes)
    assert "goodness of fit" in ds.attrs["warnings"]


@pytest.mark.slow
def test_a_parameter_the_losses_do_not_depend_on_is_flagged():
    """A straight flex: the bent angle changes no loss; the Jacobian's column is 0."""
    ds, notes = fit(measured(), ["calibrate.parameters=[process.dx_um.module.sigma,package.pwg.bent_angle_deg]",
                                 "calibrate.bootstrap=2", "calibrate.steps=60"])
    assert any("do not depend on package.pwg.bent_angle_deg" in n for n in notes)


@pytest.mark.slow
def test_the_fitted_process_is_usable_as_a_process(tmp_path, monkeypatch):
    """yieldmc.calibrate(..., write_process=True) writes conf/process/<name>.yaml in the
    starting directory (by default it writes nothing); process=<name> composes it there,
    with the fitted values; a file yieldmc did not write is never replaced."""
    data = measured(seed=3)
    cfg = yieldmc.compose(BASE + START + FIT + ["calibrate.name=line_a", "calibrate.bootstrap=2",
                                                 "calibrate.steps=120"])
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        quiet = yieldmc.calibrate(cfg, data)
        assert not list(tmp_path.iterdir()) and "process_file" not in quiet.attrs
        assert quiet.attrs["process_yaml"].startswith("# written by yieldmc")
        ds = yieldmc.calibrate(cfg, data, base=tmp_path, write_process=True)
    target = tmp_path / "conf" / "process" / "line_a.yaml"
    assert ds.attrs["process_file"] == str(target) and target.read_text().startswith("# written by yieldmc")
    composed = yieldmc.compose([o for o in BASE if not o.startswith("process.")] + ["process=line_a"])
    for key, value in zip(ds.parameter.values, ds.value.values):
        _, q, lv, what = key.split(".")
        assert composed.process[q][lv][what] == pytest.approx(value, rel=1e-12)
    (tmp_path / "conf" / "process" / "mine.yaml").write_text("dx_um: {module: {sigma: 1.0}}\n")
    with pytest.raises(ValueError, match="calibrate.name"):
        parse_job(yieldmc.compose(BASE + START + FIT + ["mode=calibrate", "calibrate.name=mine",
                                                         f"calibrate.data={tmp_path / 'x.csv'}"]),
                  base=tmp_path, check_output=False)


@pytest.mark.slow
def test_data_as_a_dataset_or_a_csv_give_the_same_table(tmp_path):
    from yieldmc.measurements import read_measurements

    frame = measured(modules=20, seed=5)
    path = tmp_path / "m.csv"
    frame.to_csv(path, index=False)
    ds = frame.set_index(["module", "layer", "channel"]).to_xarray()
    a = read_measurements(path, layers=1, channels=12)
    b = read_measurements(ds, layers=1, channels=12)
    c = read_measurements(frame.sample(frac=1.0, random_state=1), layers=1, channels=12)  # any row order
    np.testing.assert_array_equal(a.loss_db, b.loss_db)
    np.testing.assert_array_equal(a.loss_db, c.loss_db)
    assert a.loss_db.shape == (20, 1, 1, 12)


def _csv(tmp_path, text):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    return path


GOOD_ROWS = "".join(f"M1,0,{c},1.0\n" for c in range(12))


@pytest.mark.parametrize("text, extra, key", [
    ("module,layer,channel\nM1,0,0\n", [], "calibrate.data: missing column 'loss_db'"),
    ("module,layer,channel,loss_db\n" + GOOD_ROWS.replace("M1,0,3,1.0", "M1,0,3,-0.5"), [], "loss_db:"),
    ("module,layer,channel,loss_db\n" + GOOD_ROWS.replace("M1,0,3,1.0", "M1,0,3,"), [], "loss_db:"),
    ("module,layer,channel,loss_db\n" + GOOD_ROWS.replace("M1,0,3,1.0", "M1,0,3,abc"), [], "loss_db:"),
    ("module,layer,channel,loss_db\n" + GOOD_ROWS.replace("M1,0,11,1.0", "M1,0,12,1.0"), [], "channel:"),
    ("module,layer,channel,loss_db\n" + GOOD_ROWS.replace("M1,0,11,1.0\n", ""), [], "module:"),
    ("module,layer,channel,loss_db,condition\n" + GOOD_ROWS.replace("\n", ",hot\n"), [], "condition:"),
    ("module,layer,channel,loss_db\n" + GOOD_ROWS, ["calibrate.parameters=[process.nothing.sigma]"],
     "calibrate.parameters:"),
    ("module,layer,channel,loss_db\n" + GOOD_ROWS, ["calibrate.parameters=[process.dx_um.layer.sigma]"],
     "calibrate.parameters:"),
    ("module,layer,channel,loss_db\n" + GOOD_ROWS, ["calibrate.parameters=[]"], "calibrate.parameters:"),
])
def test_bad_input_is_refused_naming_the_column_or_key(tmp_path, text, extra, key):
    path = _csv(tmp_path, text)
    cfg = yieldmc.compose(BASE + START + FIT + ["mode=calibrate", f"calibrate.data={path}",
                                                 f"output.dir={tmp_path / 'out'}"] + extra)
    with pytest.raises(ValueError) as info:
        parse_job(cfg, base=tmp_path)
    assert str(info.value).startswith(key) and "\n" not in str(info.value)


@pytest.mark.slow
def test_too_few_modules_are_refused_and_a_few_warned():
    """One module (or four) cannot identify a spread: refused before anything is compiled,
    in the API and in the job's checks; 8 modules fit, with a warning."""
    from yieldmc.analysis.calibrate import GOF_MIN_MODULES, MIN_MODULES, check_enough_modules

    cfg = yieldmc.compose(BASE + START + FIT)
    for modules in (1, MIN_MODULES - 1):
        with pytest.raises(ValueError, match=r"^calibrate\.data: \d+ measured modules? cannot identify"):
            yieldmc.calibrate(cfg, measured(modules=modules))
    check_enough_modules(MIN_MODULES, ["x"])  # enough: no error
    ds, notes = fit(measured(modules=8), ["calibrate.bootstrap=2", "calibrate.steps=120"])  # compiled once
    assert 8 < GOF_MIN_MODULES and any("only 8 measured modules" in n for n in notes)
    assert "only 8 measured modules" in ds.attrs["warnings"]


@pytest.mark.slow
@pytest.mark.parametrize("text, message", [
    ("module,layer,channel,loss\nM1,0,0,1.0\n", "missing column 'loss_db'"),
    ("module,layer,channel,loss_db\n" + GOOD_ROWS, "calibrate.data: 1 measured module cannot identify"),
], ids=["bad-table", "one-module"])
def test_the_command_refuses_with_exit_2(tmp_path, text, message):
    path = _csv(tmp_path, text)
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = warm_process.run([sys.executable, "-m", "yieldmc", "mode=calibrate", f"calibrate.data={path}",
                             "calibrate.parameters=[process.dx_um.module.sigma]"], cwd=tmp_path, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]


#: A stress read before and after at 25 °C whose lasting drift is a channel offset.
STRESSED = ("conditions={initial:{temperature_c:25.0},cycled:{kind:stress,readout:{temperature_c:25.0},"
            "process:{dx_um:{channel:{sigma:%s}}},spec:{max_loss_change_db:0.5}}}")
DRIFT = "conditions.cycled.process.dx_um.channel.sigma"


@pytest.mark.slow
def test_a_stress_drift_from_before_and_after_readouts_narrows_its_band(tmp_path, monkeypatch):
    """Modules read before (condition ``initial``) and after a stress (``cycled``) whose
    drift sigma is 0.3 µm: the fit of that sigma from 0.15 recovers it within 4 of its
    bootstrap errors; conf/uncertainty/<name>.yaml carries it as an uncertain input, and a
    band run with it is narrower than one over the prior range U[0.05, 0.6] (the same
    modules: the yield falls monotonically with the sigma, so the band is the yield at the
    range's ends)."""
    built = BASE + [f"{k}={v}" for k, v in TRUTH.items()]  # the line's own spread, known here
    data = validation.synthetic_measurements(built + [STRESSED % 0.3], modules=200, seed=11)
    fit_keys = [f"calibrate.parameters=[{DRIFT}]", "calibrate.samples=1024", "calibrate.steps=200",
                "calibrate.bootstrap=8", "calibrate.name=cycled_fit"]
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ds = yieldmc.calibrate(yieldmc.compose(built + [STRESSED % 0.15] + fit_keys), data, base=tmp_path,
                               write_process=True)
    value, se = float(ds.value.sel(parameter=DRIFT)), float(ds.value_se.sel(parameter=DRIFT))
    assert abs(value - 0.3) <= 4 * se and se < 0.1, (value, se)
    target = tmp_path / "conf" / "uncertainty" / "cycled_fit.yaml"
    assert ds.attrs["uncertainty_file"] == str(target) and is_calibration_file(target)
    assert f"#   {DRIFT}: " in (tmp_path / "conf" / "process" / "cycled_fit.yaml").read_text()
    run = built + [STRESSED % 0.3, "samples=4096", "uncertainty.realizations=16"]
    fitted = yieldmc.run(yieldmc.compose(run + ["uncertainty=cycled_fit"]))
    prior = yieldmc.run(yieldmc.compose(run + [
        f"uncertain={{{DRIFT}:{{distribution:uniform,low:0.05,high:0.6}}}}"]))
    width = lambda d: float(d.yield_band.max() - d.yield_band.min())  # noqa: E731
    assert width(fitted) < 0.5 * width(prior), (width(fitted), width(prior))


def test_a_fitted_package_key_makes_a_global_process_file_hydra_reads(tmp_path, monkeypatch):
    """Hydra reads ``# @package`` only among a file's leading directive lines: a process
    file that also sets a package key must start with it (and is still recognised as
    written by yieldmc)."""
    from types import SimpleNamespace

    from yieldmc.analysis.calibrate import process_yaml

    result = SimpleNamespace(names=("process.dx_um.module.sigma", "package.pwg.length_cm"),
                             value=np.array([0.8, 2.5]), value_se=np.array([0.1, 0.2]), warnings=[])
    config = yieldmc.compose(BASE)
    text = process_yaml(yieldmc.io.config.to_container(config), result, name="line_b", source="test")
    target = tmp_path / "conf" / "process" / "line_b.yaml"
    target.parent.mkdir(parents=True)
    target.write_text(text)
    assert is_calibration_file(target)
    monkeypatch.chdir(tmp_path)
    composed = yieldmc.compose([o for o in BASE if not o.startswith("process.")] + ["process=line_b"])
    assert composed.process.dx_um.module.sigma == 0.8 and composed.package.pwg.length_cm == 2.5
