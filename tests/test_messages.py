"""What the command says: --help without JAX, yieldmc's own words for Hydra's errors, the
summaries' digits, the sensitivity table, store names and the stores' CF attributes.

The command runs in a subprocess (never Hydra's main in pytest); the formatting is checked
on small Datasets whose figures are known in closed form.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import warm_process
from yieldmc.io import cli

Z95 = 1.959963984540054  # standard-normal 97.5 % quantile


def yieldmc(*args, cwd, **kwargs):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return warm_process.run([sys.executable, "-m", "yieldmc", *args], cwd=cwd, env=env, timeout=300, **kwargs)


# --------------------------------------------------------------------------- --help, --version
@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_import_neither_jax_nor_hydra(flag, tmp_path):
    code = ("import sys\nfrom yieldmc.io.cli import main\nsys.argv = ['yieldmc', %r]\nmain()\n"
            "print('LOADED', sorted(m for m in ('jax', 'hydra', 'omegaconf', 'xarray', 'zarr') "
            "if m in sys.modules))" % flag)
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, JAX_PLATFORMS="cpu"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("yieldmc ")
    assert proc.stdout.strip().splitlines()[-1] == "LOADED []", proc.stdout[-300:]


def test_the_stored_help_is_the_generated_one():
    from yieldmc.io import help as yhelp

    stored = json.loads(yhelp.HELP_FILE.read_text(encoding="utf-8"))
    hint = 'stale: python -c "from yieldmc.io.help import write_help_file; write_help_file()"'
    assert stored["fingerprint"] == yhelp._help_fingerprint(), hint
    assert stored["text"] == yhelp._help_text(), hint


# --------------------------------------------------------------------------- Hydra's errors, ours
@pytest.mark.slow
def test_a_misspelt_key_gets_did_you_mean_through_the_command(tmp_path):
    proc = yieldmc("proces.dx_um.module.sigma=0.5", "output.dir=out", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == ("yieldmc: error: proces.dx_um.module.sigma: unknown key; "
                           "did you mean process.dx_um.module.sigma?\n")
    assert not list(tmp_path.iterdir())  # nothing written, not even Hydra's outputs/


@pytest.mark.slow
def test_a_brace_expanded_sweep_gets_a_quoting_hint_through_the_command(tmp_path):
    # what bash passes for the unquoted  yieldmc sweep={process.dx_um.module.sigma:[0.25,0.5]}
    words = subprocess.run(["bash", "-c", "printf '%s\\n' sweep={process.dx_um.module.sigma:[0.25,0.5]}"],
                           capture_output=True, text=True, check=True).stdout.split()
    assert words == ["sweep=process.dx_um.module.sigma:[0.25", "sweep=0.5]"]
    proc = yieldmc(*words, "output.dir=out", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == ("yieldmc: error: sweep: the shell split this mapping into 2 words (it expanded the "
                           "braces); quote the whole override: 'sweep={process.dx_um.module.sigma:[0.25,0.5]}'\n")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("overrides, expected", [
    (["samplez=3"], "samplez: unknown key; did you mean samples or sampler?"),
    (["+process.dx_um.module.sigmaa=1"],
     "process.dx_um.module.sigmaa: unknown key; did you mean process.dx_um.module.sigma?"),
    (["packge=pwg18_32ch"], "packge: unknown key; did you mean package?"),
    (["xyzzy=1"], "xyzzy: unknown key; yieldmc --help lists every key"),
    (["conditions=cold:{temperature_c:-40}", "conditions=hot:{temperature_c:125}"],
     "conditions: the shell split this mapping into 2 words (it expanded the braces); quote the whole "
     "override: 'conditions={cold:{temperature_c:-40},hot:{temperature_c:125}}'"),
])
def test_override_keys_are_checked_before_hydra(overrides, expected):
    with pytest.raises(ValueError) as err:
        cli.check_override_keys(overrides)
    assert str(err.value) == expected


@pytest.mark.parametrize("overrides", [
    ["process.dx_um.module.sigma=0.5", "package=pwg18_32ch", "package/coupler=butt", "sweep.x=1",
     "hydra.run.dir=x", "~process.dx_um", "sweep={process.dx_um.module.sigma:[0.25,0.5]}"],
])
def test_declared_keys_groups_and_mapping_entries_pass(overrides):
    cli.check_override_keys(overrides)


@pytest.mark.parametrize("message, overrides, expected", [
    ("Could not override 'package.coupler.mode_radius_x_um'. To append to your config use "
     "+package.coupler.mode_radius_x_um=3", ["package.coupler.mode_radius_x_um=3"],
     "package.coupler.mode_radius_x_um: a key of package.coupler.kind=butt only; select that first, e.g. "
     "package/coupler=butt"),
    ("mismatched input '[' expecting <EOF> See https://hydra.cc/docs/1.2/advanced/override_grammar/basic for "
     "details", ["samples=10", "sweep=process.dx_um.module.sigma:[0.25,0.5]"],
     "sweep: cannot read 'sweep=process.dx_um.module.sigma:[0.25,0.5]' (mismatched input '[' expecting <EOF>); "
     "write the mapping in braces and quote the whole override: 'sweep={...}'"),
    ("Error parsing override 'foo' missing EQUAL at '<EOF>' See https://hydra.cc/docs/1.2/advanced/override_grammar/"
     "basic for details", ["samples=10", "foo"],
     "foo: expected KEY=VALUE or GROUP=OPTION (Error parsing override 'foo' missing EQUAL at '<EOF>')"),
    ("some other failure", ["samples=10"], "some other failure"),
])
def test_hydra_messages_in_yieldmcs_words(message, overrides, expected):
    assert cli.explain_hydra_error(message, overrides) == expected


def test_the_mismatched_input_message_is_hydras():
    """The grammar error explain_hydra_error rewrites is the one Hydra gives."""
    from yieldmc.io.config import compose

    with pytest.raises(ValueError, match=r"^mismatched input '\['"):
        compose(["sweep=process.dx_um.module.sigma:[0.25,0.5]"])


# --------------------------------------------------------------------------- summaries
def scalar_result(n_pass, n, *, fail=None, conditions=None):
    """A one-point result of ``n`` modules with Wilson's interval (closed form here)."""
    p = n_pass / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * np.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / (1 + Z95**2 / n)
    low = 0.0 if n_pass == 0 else centre - half
    high = 1.0 if n_pass == n else centre + half
    fail = np.zeros((1, 3)) if fail is None else np.asarray(fail, dtype=float)
    data = {"yield": ((), p), "yield_ci_low": ((), low), "yield_ci_high": ((), high),
            "n_samples": ((), np.int64(n)), "channel_fail_fraction": (("layer", "channel"), fail)}
    return xr.Dataset(data, attrs={"sampler": "mc"})


def test_a_yield_of_one_shows_its_interval():
    ds = scalar_result(16384, 16384)
    low = 16384 / (16384 + Z95**2)  # Wilson's lower end at p = 1
    assert f"{low:.5f}" == "0.99977"
    assert cli.summary(ds, Path("s.zarr"), []) == (
        "yield 1.00000 (95 % CI 0.99977 – 1.00000), 16384 modules, sampler mc\n"
        "worst channel: none; no channel fails in any module\n"
        "store: s.zarr")


def test_fail_fractions_print_significant_digits():
    ds = scalar_result(16382, 16384, fail=[[0.0, 2 / 16384, 1 / 16384]])
    text = cli.summary(ds, Path("s.zarr"), [])
    assert "worst channel: layer 0, channel 1 fails in 0.0122 % of modules" in text  # 2/16384 = 0.0122 %
    low, high = float(ds.yield_ci_low), float(ds.yield_ci_high)
    assert 1e-4 <= high - low < 1e-3  # two significant digits of the width: five decimals
    assert text.startswith(f"yield {16382 / 16384:.5f} (95 % CI {low:.5f} – {high:.5f}), 16384 modules")


@pytest.mark.parametrize("x, decimals, text", [
    (0.9999996, 5, "≥ 0.99999"), (1.0, 5, "1.00000"), (0.0000004, 5, "≤ 0.00001"), (0.0, 4, "0.0000"),
    (0.66381, 4, "0.6638"),
])
def test_fractions(x, decimals, text):
    assert cli._fraction(x, decimals) == text


@pytest.mark.parametrize("low, high, decimals", [
    (0.6565, 0.6710, 4), (0.99977, 1.0, 5), (0.99999962, 1.0, 8), (0.3, 0.3, 4)])
def test_decimals_resolve_the_interval(low, high, decimals):
    assert cli._decimals(low, high) == decimals


def swept_with_conditions(names):
    """A 3-point map whose worst point is the last one; per-condition figures that differ
    per point, so that the breakdown shows which point it is of."""
    sigma = [0.25, 0.5, 1.0]
    k = len(names)
    y = np.array([0.9, 0.8, 0.5])
    cond = np.array([[0.95 - 0.1 * i - 0.01 * c for c in range(k)] for i in range(3)])
    data = {
        "yield": (("s",), y), "yield_ci_low": (("s",), y - 0.01), "yield_ci_high": (("s",), y + 0.01),
        "n_samples": (("s",), np.full(3, 1000, dtype=np.int64)),
        "condition_yield": (("s", "condition"), cond),
        "condition_fail_only": (("s", "condition"), np.full((3, k), 0.002)),
        "yield_without_condition": (("s", "condition"), cond + 0.01),
        "channel_fail_fraction": (("s", "condition", "layer", "channel"),
                                  np.arange(3 * k * 2, dtype=float).reshape(3, k, 1, 2) / 100),
    }
    return xr.Dataset(data, coords={"s": ("s", sigma), "condition": ("condition", names)},
                      attrs={"sampler": "mc"})


def test_a_swept_summary_names_its_best_and_worst_points_and_breaks_the_worst_down():
    text = cli.summary(swept_with_conditions(["cold", "hot"]), Path("m.zarr"), [])
    assert text.splitlines()[:4] == [
        "yield map over s (3 points, 1000 modules per point, sampler mc)",
        "  best   0.9000 (95 % CI 0.8900 – 0.9100) at s=0.25",
        "  worst  0.5000 (95 % CI 0.4900 – 0.5100) at s=1",
        "envelope of 2 conditions (at the worst point, s=1): yield 0.5000 passes every one",
    ]
    assert "  cold  yield 0.7500 " in text and "  hot   yield 0.7400 " in text  # point 2's, not point 0's
    # point 2's largest fail fraction: index (2, 1, 0, 1) of arange / 100 = 11 / 100
    assert "worst channel: layer 0, channel 1 fails in 11.0 % of modules under hot (at the worst point, s=1)" in text


def test_one_condition_is_not_an_envelope():
    text = cli.summary(swept_with_conditions(["hot"]), Path("m.zarr"), [])
    assert "envelope" not in text
    assert "condition hot (at the worst point, s=1): yield 0.5000 (the only condition)" in text


# --------------------------------------------------------------------------- sensitivity table
def test_ranked_table_prints_signed_elasticities():
    from yieldmc.analysis.sensitivity import ranked_table

    names = ["process.dx_um.module.sigma", "process.dx_um.module.mean", "package.pwg.n_clad", "spec.max_loss_db"]
    value = np.array([1.0, 0.0, 1.5, 1.5])
    grad = np.array([-0.2778, -0.9, 39.46, 0.3492])
    y = 0.8665
    ds = xr.Dataset({"yield_gradient": ("parameter", grad), "yield_gradient_se": ("parameter", np.full(4, 0.01)),
                     "elasticity": ("parameter", value * grad / y), "value": ("parameter", value),
                     "yield": ((), y), "n_samples": ((), np.int64(8192))},
                    coords={"parameter": names}, attrs={"estimator": "pathwise"})
    rows = {line.split()[0]: line.split(None, 3)[3] for line in ranked_table(ds).splitlines()[3:]
            if line.startswith("  ")}
    assert rows["process.dx_um.module.sigma"] == f"{-0.2778 / y:+.3g}" == "-0.321"
    assert rows["process.dx_um.module.mean"] == "0 (θ=0)"  # -0.9 * 0: no "-0"
    assert rows["package.pwg.n_clad"] == f"{1.5 * 39.46 / y:+.3g}" == "+68.3"
    assert rows["spec.max_loss_db"] == f"{1.5 * 0.3492 / y:+.3g}"


# --------------------------------------------------------------------------- store names
@pytest.mark.parametrize("mode, name, expected", [
    ("sensitivity", "mine.zarr", "mine.zarr"), ("optimize", "yield_x.zarr", "yield_x.zarr"),
    ("run", "mine.zarr", "mine.zarr"), ("run", None, "yield_pkg_01234567.zarr"),
    ("sensitivity", None, "sensitivity_pkg_01234567.zarr"),
])
def test_an_explicit_output_name_is_used_as_given(mode, name, expected, tmp_path):
    job = types.SimpleNamespace(mode=mode, output=types.SimpleNamespace(dir="out", name=name),
                                package_name="pkg", identity="0123456789abcdef")
    assert cli.store_path(job, tmp_path) == tmp_path / "out" / expected


# --------------------------------------------------------------------------- units of keys
@pytest.mark.parametrize("key, units", [
    ("process.dx_um.module.sigma", "µm"), ("process.temperature_c.module.mean", "°C"),
    ("package.pwg.n_core", "1"), ("spec.max_loss_db", "dB"), ("package.pitch_um", "µm"),
    ("conditions.hot.temperature_c", "°C"), ("conditions.hot.process.yaw_mrad.module.sigma", "mrad"),
    ("conditions.hot.readout.humidity_rh", "%RH"), ("no.such.key", None),
])
def test_units_of_config_keys_come_from_the_schema(key, units):
    from yieldmc.configuration import schema
    from yieldmc.io.results import key_units

    assert key_units({}, key) == units
    if units is not None and not key.startswith("conditions."):
        declared = schema.lookup({}, key).unit
        assert declared in (units, "quantity") or (declared == "" and units == "1")


# --------------------------------------------------------------------------- closed streams
def test_a_closed_stdout_is_refused_in_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "yieldmc", "samples=16384", "output.plots=false", "output.dir=out"],
                          cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=120,
                          preexec_fn=lambda: os.close(1), env=dict(os.environ, JAX_PLATFORMS="cpu"))
    assert proc.returncode == 2
    assert proc.stderr == ("yieldmc: error: stdout is closed, so the summary would be lost; to discard it, "
                           "redirect it: >/dev/null\n")
    assert not list(tmp_path.iterdir())  # refused before anything is computed or written


@pytest.mark.slow
def test_with_stderr_closed_an_error_is_not_printed_on_stdout(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "yieldmc", "samples=-1", "output.dir=out"], cwd=tmp_path,
                          stdout=subprocess.PIPE, text=True, timeout=120, preexec_fn=lambda: os.close(2),
                          env=dict(os.environ, JAX_PLATFORMS="cpu"))
    assert (proc.returncode, proc.stdout) == (2, "")
    assert not list(tmp_path.iterdir())
