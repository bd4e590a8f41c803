"""Bad input is refused with one line naming the key, exit code 2, nothing written.

In process: ``build_problem`` (what the Python API runs) and ``cli.check_config`` (what
the command runs for every mode, before Hydra's main and before anything is compiled or
written) raise ``ValueError`` whose one-line message names the key, for

* booleans that are not ``true``/``false`` (the string ``no`` is not false), integers
  and floats of the wrong type;
* a misspelt or appended (``+``) key in any section, including the Python API's dicts;
* numpy scalars, which are accepted as their Python values;
* values out of range: absolute temperatures, non-finite or unrepresentable floats,
  ``spec.max_failed_channels`` that passes every module, seeds beyond uint32;
* an output name that is not a plain file name, an output directory that cannot be made.

One subprocess test runs the command over a few bad command lines: exit code 2, one line
on stderr naming the key, nothing created in the working directory.
"""

from __future__ import annotations

import copy
import os
import re
import sys

import numpy as np
import pytest

import warm_process
import yieldmc
from yieldmc.configuration import schema
from yieldmc.io.cli import check_config
from yieldmc.io.config import CONF_DIR, compose, to_container
from yieldmc.configuration.parse import build_problem
from yieldmc.parts import NO_DEFAULT


def config_dict(overrides=(), *, check=True) -> dict:
    return to_container(compose(list(overrides), check=check))


def refused(overrides=(), mutate=None, *, check=build_problem, **kwargs) -> str:
    """The one-line message with which ``check`` refuses the configuration."""
    with pytest.raises(ValueError) as info:
        cfg = config_dict(overrides)
        if mutate is not None:
            mutate(cfg)
        check(cfg, **kwargs)
    message = str(info.value)
    assert "\n" not in message, message
    return message


def names(message: str, key: str) -> None:
    assert message.startswith(f"{key}:"), f"message does not lead with {key!r}: {message!r}"


# ---------------------------------------------------------------------------------------
# Types: booleans, integers, floats
# ---------------------------------------------------------------------------------------

BOOL_KEYS = ("overwrite", "progress", "output.plots")


@pytest.mark.parametrize("key", BOOL_KEYS)
@pytest.mark.parametrize("value", ["no", "off", "maybe", "false_", "0", "1"])
def test_a_boolean_must_be_true_or_false(key, value):
    message = refused([f"{key}={value}"], check=check_config)
    names(message, key)
    assert "true or false" in message


@pytest.mark.slow
@pytest.mark.parametrize("key", BOOL_KEYS)
def test_real_booleans_are_accepted(key):
    for value in ("true", "false"):
        check_config(config_dict([f"{key}={value}"]))


def test_every_bool_in_conf_is_declared_bool():
    """Every key that conf/ gives a YAML boolean is declared ``bool`` (so it is checked)."""
    def walk(node, prefix=""):
        for k, v in node.items():
            path = f"{prefix}{k}"
            if isinstance(v, dict):
                yield from walk(v, path + ".")
            elif isinstance(v, bool):
                yield path

    cfg = config_dict()
    bools = sorted(walk(cfg))
    assert bools == sorted(BOOL_KEYS)
    assert all(schema.lookup(cfg, p).type == "bool" for p in bools)


@pytest.mark.parametrize("override, key", [
    ("shard=1.5", "shard"),
    ("num_shards=two", "num_shards"),
    ("samples=1.5", "samples"),
    ("seed=abc", "seed"),
    ("engine.block_size=1024.5", "engine.block_size"),
    ("engine.blocks_per_call=true", "engine.blocks_per_call"),
    ("engine.hist_bins=many", "engine.hist_bins"),
    ("package.layers=1.5", "package.layers"),
    ("package.channels=twelve", "package.channels"),
    ("package.coupler.segments=6.4", "package.coupler.segments"),
    ("qmc.randomizations=2.5", "qmc.randomizations"),
    ("alignment.steps=x", "alignment.steps"),
    ("optimize.steps=1.5", "optimize.steps"),
    ("spec.max_failed_channels=true", "spec.max_failed_channels"),
])
def test_an_integer_must_be_an_integer(override, key):
    names(refused([override], check=check_config), key)


def test_an_integral_float_is_taken_as_its_int():
    """The int rule: ``samples=1e6`` (a float to YAML) is accepted as 1000000, and
    ``to_container`` hands on an ``int``, so the command never sees ``2.0`` shards."""
    cfg = config_dict(["samples=1e6", "num_shards=2.0", "shard=1.0", "package.layers=1.0"])
    assert (cfg["samples"], cfg["num_shards"], cfg["shard"]) == (1_000_000, 2, 1)
    assert all(type(v) is int for v in (cfg["samples"], cfg["num_shards"], cfg["shard"]))
    assert check_config(cfg).samples == 1_000_000
    # build_problem alone (the API's dicts) applies the same rule.
    assert build_problem(dict(config_dict(), samples=2.0e3)).samples == 2000


@pytest.mark.slow
@pytest.mark.parametrize("override, key", [
    ("package.pitch_um=wide", "package.pitch_um"),
    ("package.pwg.n_core=true", "package.pwg.n_core"),
    ("process.dx_um.module.mean=[1]", "process.dx_um.module.mean"),
    ("output.target_yield=high", "output.target_yield"),
    ("gradient.tau_db=small", "gradient.tau_db"),
    ("optimize.learning_rate=fast", "optimize.learning_rate"),
    ("engine.hist_max_db=none", "engine.hist_max_db"),
    ("engine.quantiles=[0.5,x]", "engine.quantiles"),
    ("package.name=[a]", "package.name"),
    ("output.dir=[a]", "output.dir"),
])
def test_a_float_must_be_a_number_and_a_string_a_string(override, key):
    names(refused([override], check=check_config), key)


# ---------------------------------------------------------------------------------------
# Unknown keys, in every section
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides, key", [
    (["+package.pitch=5"], "package.pitch"),
    (["+package.pitch_mm=5"], "package.pitch_mm"),
    (["+package.pwg.n_cor=1.5"], "package.pwg.n_cor"),
    (["+package.pwg=5"], None),  # Hydra: pwg exists; not an append (refused while composing)
    (["+package.coupler.kappa=0.1"], "package.coupler.kappa"),
    (["+package.coupler.n_chip=1.45"], "package.coupler.n_chip"),  # a butt key on an adiabatic coupler
    (["package/coupler=butt", "+package.coupler.model=cmt"], "package.coupler.model"),
    (["package/coupler=butt", "+package.coupler.segments=64"], "package.coupler.segments"),
    (["+output.nme=x.zarr"], "output.nme"),
    (["+gradient.tau=0.1"], "gradient.tau"),
    (["+optimize.cost=1"], "optimize.cost"),
    (["+qmc.randomisations=4"], "qmc.randomisations"),
    (["+alignment.step=3"], "alignment.step"),
    (["+engine.blocksize=1024"], "engine.blocksize"),
    (["+spec.max_loss=1.0"], "spec.max_loss"),
    (["+process.dz_um={module:{sigma:1}}"], "process.dz_um"),
    (["+process.dx_um.wafer={sigma:1}"], "process.dx_um.wafer"),
    (["+process.dx_um.module.sd=1"], "process.dx_um.module.sd"),
    (["+process.correlation.quantity=[dx_um]"], "process.correlation.quantity"),
    (["+samplez=10"], "samplez"),
])
def test_an_unknown_key_is_refused_with_the_expected_ones(overrides, key):
    if key is None:  # Hydra itself refuses; the message still names the key
        with pytest.raises(ValueError, match="package.pwg"):
            compose(overrides)
        return
    message = refused(overrides, check=check_config)
    names(message, key)
    assert "unknown key; expected one of [" in message


@pytest.mark.slow
@pytest.mark.parametrize("path, key", [
    (("package",), "pich_um"),
    (("package", "pwg"), "n_cor"),
    (("package", "coupler"), "mode_radius_x_um"),
    (("output",), "plot"),
    (("gradient",), "estimater"),
    (("optimize",), "target"),
    (("qmc",), "randomization"),
    (("alignment",), "mod"),
    (("engine",), "dtpye"),
    (("spec",), "max_loss"),
    (("process",), "dxum"),
    (("process", "dx_um"), "modul"),
    (("process", "dx_um", "module"), "sigm"),
    (("process", "correlation"), "matrx"),
    ((), "seeds"),
])
def test_an_unknown_key_in_a_python_dict_is_refused(path, key):
    def add(cfg):
        node = cfg
        for part in path:
            node = node[part]
        node[key] = 1

    full = ".".join((*path, key))
    message = refused(mutate=add)
    assert message.startswith(f"{full}: unknown key; expected one of ["), message


def test_the_expected_keys_follow_the_coupler_kind():
    adiabatic = refused(mutate=lambda c: c["package"]["coupler"].update(n_chip=1.45))
    butt = refused(["package/coupler=butt"], lambda c: c["package"]["coupler"].update(model="cmt"))
    assert "'kappa_per_um'" in adiabatic and "'mode_radius_x_um'" not in adiabatic
    assert "'mode_radius_x_um'" in butt and "'kappa_per_um'" not in butt


def test_free_mappings_and_nullable_keys_are_not_key_checked_here():
    """sweep and optimize.costs/parameters hold config keys (checked by their users);
    decay_per_um, output.name, recheck_samples may be null."""
    cfg = config_dict(["sweep={process.dx_um.module.sigma:[0.5,1.0]}",
                       "optimize.costs={process.dx_um.module.sigma:1.0}",
                       "optimize.parameters={package.coupler.taper_length_um:[1500,3000]}",
                       "package.coupler.decay_per_um=null", "output.name=null",
                       "optimize.recheck_samples=null"])
    assert build_problem(cfg).n_points == 2
    static = build_problem(config_dict(["package.coupler.decay_per_um=0.2"])).static
    assert static.coupler.settings.derive_decay is False


@pytest.mark.slow
def test_every_shipped_key_is_declared():
    """Every option of every config group composes to a configuration the schema knows."""
    groups = {g: sorted(p.stem for p in (CONF_DIR / g).glob("*.yaml"))
              for g in ("package", "package/coupler", "process", "alignment")}
    for package in groups["package"]:
        for coupler in groups["package/coupler"]:
            for process in groups["process"]:
                for alignment in groups["alignment"]:
                    cfg = config_dict([f"package={package}", f"package/coupler={coupler}",
                                       f"process={process}", f"alignment={alignment}"])
                    schema.check_tree(cfg)
                    build_problem(cfg)


def test_every_row_is_well_formed():
    """The table is data: every row (the couplers' and samplers' too) well formed, and its
    default, where it has one, passes its own check."""
    for key in schema.all_keys():
        assert key.type in ("bool", "int", "float", "str", "mapping", "list[float]", "list[str]", "matrix")
        assert key.doc and (not key.bounds or key.bounds[0] in "[(" and key.bounds[-1] in ")]")
        if key.default is not NO_DEFAULT:
            assert schema.check_value(key.path, key.default, key) == key.default, key.path


# ---------------------------------------------------------------------------------------
# numpy scalars through the Python API
# ---------------------------------------------------------------------------------------

def _numpy_config(overrides=()):
    cfg = config_dict(overrides)
    cfg["samples"] = np.int64(cfg["samples"])
    cfg["seed"] = np.uint32(7)
    cfg["overwrite"] = np.bool_(False)
    cfg["package"]["layers"] = np.int64(1)
    cfg["package"]["pitch_um"] = np.float64(50.0)
    cfg["package"]["temperature_c"] = np.float32(25.0)
    cfg["process"]["dx_um"]["module"]["sigma"] = np.float64(0.7)
    cfg["spec"]["max_failed_channels"] = np.int32(0)
    cfg["engine"]["quantiles"] = [np.float64(0.5), np.float64(0.9)]
    cfg["sweep"] = {"process.dy_um.module.sigma": np.array([0.1, 0.2])}
    return cfg


def test_numpy_scalars_are_accepted_as_python_numbers():
    cfg = _numpy_config()
    before = copy.deepcopy(cfg)
    problem = build_problem(cfg)
    assert problem.seed == 7 and problem.static.layers == 1 and problem.n_points == 2
    assert problem.quantiles == (0.5, 0.9)
    assert float(problem.params["package.pitch_um"][0]) == 50.0
    assert cfg.keys() == before.keys() and cfg["seed"] == before["seed"]  # input untouched
    plain = to_container(cfg)
    assert type(plain["samples"]) is int and type(plain["overwrite"]) is bool
    assert type(plain["package"]["pitch_um"]) is float
    assert all(type(q) is float for q in plain["engine"]["quantiles"])
    assert plain["sweep"]["process.dy_um.module.sigma"] == [0.1, 0.2]
    check_config(plain)


def test_numpy_values_are_still_checked():
    cfg = config_dict()
    cfg["process"]["dx_um"]["module"]["sigma"] = np.float64(-1.0)
    with pytest.raises(ValueError, match=r"^process\.dx_um\.module\.sigma: must be >= 0, got -1\.0$"):
        build_problem(cfg)
    cfg = config_dict()
    cfg["overwrite"] = np.str_("no")
    with pytest.raises(ValueError, match="^overwrite: expected true or false"):
        yieldmc.run(cfg)


@pytest.mark.slow
def test_api_run_with_numpy_scalars():
    cfg = config_dict(["process=none", "process.dx_um.module.sigma=1.0", "engine.block_size=1024"])
    cfg["samples"] = np.int64(2048)
    cfg["seed"] = np.int64(3)
    cfg["process"]["dx_um"]["module"]["sigma"] = np.float64(1.0)
    ds = yieldmc.run(cfg)
    assert int(ds.n_samples) == 2048


# ---------------------------------------------------------------------------------------
# Ranges (every mode, every sweep point)
# ---------------------------------------------------------------------------------------

MODES = ["run", "sensitivity", "optimize"]
OPT = "optimize.costs={process.dx_um.module.sigma:1.0}"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("overrides, key", [
    (["package.temperature_c=-300"], "package.temperature_c"),
    (["package.lock_temperature_c=-273.16"], "package.lock_temperature_c"),
    (["package.pwg.index_temperature_c=-1000"], "package.pwg.index_temperature_c"),
    (["process.temperature_c.module.mean=-400"], "process.temperature_c.module.mean"),
    (["process.temperature_c.module.distribution=uniform", "process.temperature_c.module.low=-300",
      "process.temperature_c.module.high=0"], "process.temperature_c.module.low"),
    (["process.temperature_c.layer.distribution=truncnormal", "process.temperature_c.layer.sigma=5",
      "process.temperature_c.layer.low=-299"], "process.temperature_c.layer.low"),
    (["package.pitch_um=inf"], "package.pitch_um"),
    (["package.pitch_um=nan"], "package.pitch_um"),
    (["process.dx_um.module.mean=-inf"], "process.dx_um.module.mean"),
    (["process.dx_um.module.low=nan"], "process.dx_um.module.low"),
    (["package.pwg.length_cm=1e300"], "package.pwg.length_cm"),
    (["process.pitch_ppm.module.sigma=1e20"], "process.pitch_ppm.module.sigma"),
    (["spec.max_loss_db=inf"], "spec.max_loss_db"),
    (["spec.max_failed_channels=12"], "spec.max_failed_channels"),
    (["package=pwg18_4x32ch", "spec.max_failed_channels=128"], "spec.max_failed_channels"),
    (["seed=4294967296"], "seed"),
    (["seed=-1"], "seed"),
    (["shard=-1"], "shard"),
    (["num_shards=0"], "num_shards"),
    (["shard=3", "num_shards=3"], "shard"),
    (["sweep={package.temperature_c:[25,-274]}"], "package.temperature_c"),
    (["sweep={spec.max_failed_channels:[0,12]}"], "spec.max_failed_channels"),
    (["sweep={package.pitch_um:[50,1e300]}"], "package.pitch_um"),
])
def test_out_of_range_values_are_refused_in_every_mode(mode, overrides, key):
    message = refused([f"mode={mode}", OPT, *overrides], check=check_config)
    names(message, key)
    assert "got" in message


def test_sweep_point_is_named():
    message = refused(["sweep={package.temperature_c:[25,-274]}"])
    assert message.endswith("(at sweep point package.temperature_c=-274.0)"), message


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_representability_rule_follows_the_engine_dtype(dtype):
    """|x| <= sqrt(finfo(dtype).max): 1e300 fails in both, 1e20 only in float32."""
    limit = np.sqrt(np.finfo(dtype).max)
    assert schema.max_magnitude(dtype) == pytest.approx(limit)
    for value in ("1e300", "-1e300"):
        message = refused([f"engine.dtype={dtype}", f"package.cte_mismatch_ppm_per_k={value}"])
        names(message, "package.cte_mismatch_ppm_per_k")
        assert dtype in message
    overrides = [f"engine.dtype={dtype}", "package.cte_mismatch_ppm_per_k=1e20"]
    if dtype == "float32":  # refused already when the configuration is composed
        with pytest.raises(ValueError, match="^package.cte_mismatch_ppm_per_k: too large for float32"):
            build_problem(config_dict(overrides))
    else:
        build_problem(config_dict(overrides))
    # A Python int too large for any float is refused the same way (not an OverflowError).
    message = refused(mutate=lambda c: c["package"].update(cte_mismatch_ppm_per_k=10**400))
    names(message, "package.cte_mismatch_ppm_per_k")


def test_edges_of_the_ranges_are_accepted():
    cfg = config_dict(["seed=4294967295", "spec.max_failed_channels=11", "package.temperature_c=-273.15",
                       "package.lock_temperature_c=-273.15", "process.temperature_c.module.mean=0",
                       "process.dx_um.module.low=-inf", "process.dx_um.module.high=inf"])
    problem = check_config(cfg)
    assert problem.seed == 2**32 - 1
    # the absolute-temperature rule is on nominal + draw, not on the (relative) draw alone
    check_config(config_dict(["package.temperature_c=100", "process.temperature_c.module.mean=-350"]))


def test_optimize_recheck_seed_stays_a_uint32():
    message = refused(["mode=optimize", OPT, "seed=4294967000"], check=check_config)
    names(message, "optimize.recheck_seed_offset")
    check_config(config_dict(["mode=optimize", OPT, "seed=4294967000", "optimize.recheck_seed_offset=5"]))


def test_samples_beyond_the_block_index_are_refused():
    names(refused(["samples=1e20"]), "samples")


def test_samples_are_limited_by_the_number_of_blocks():
    """At most MAX_BLOCKS blocks (a store holds files per block, the command a flag per
    block): the edge is accepted, one module more is refused naming samples, whatever
    the block size."""
    from yieldmc.configuration.parse import MAX_BLOCKS

    for size in (4096, 16384):
        edge = MAX_BLOCKS * size
        assert build_problem(config_dict([f"samples={edge}", f"engine.block_size={size}",
                                          "engine.blocks_per_call=1"])).n_blocks == MAX_BLOCKS
        message = refused([f"samples={edge + 1}", f"engine.block_size={size}", "engine.blocks_per_call=1"])
        names(message, "samples")
        assert "engine.block_size" in message
    names(refused(["samples=10000000000000"]), "samples")


@pytest.mark.parametrize("name", ["../../../escaped", "/abs/x", "a/b", "..", "", "a\\b"])
def test_package_name_is_one_path_component(name, tmp_path):
    """The package's name is part of the default store name: it must not lead elsewhere."""
    message = refused(["output.dir=out"], lambda c: c["package"].update(name=name),
                      check=check_config, base=tmp_path)
    names(message, "package.name")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("overrides, key", [
    (["engine.quantiles=[]"], "engine.quantiles"),
    (["engine.quantiles=[0.5,0.9,0.5]"], "engine.quantiles"),
    (["sweep={process.dx_um.module.sigma:[0.5,1.0,0.5]}"], "sweep.process.dx_um.module.sigma"),
    (["sweep={process.dx_um.module.sigma:[0.5,0.50]}"], "sweep.process.dx_um.module.sigma"),
])
def test_empty_or_repeated_coordinates_are_refused(overrides, key):
    """Quantiles and sweep values become coordinates of the result: none, or one twice, is refused."""
    message = refused(overrides)
    names(message, key)


def test_float64_without_x64_is_refused_when_parsed(monkeypatch):
    """(This process has x64 on; the command test below runs without it.)"""
    from yieldmc.configuration import parse as problem

    build_problem(config_dict(["engine.dtype=float64"]))
    monkeypatch.setattr(problem, "_x64_enabled", lambda: False)
    names(refused(["engine.dtype=float64"]), "engine.dtype")


# ---------------------------------------------------------------------------------------
# Output: a plain file name, a directory that can be written (nothing created)
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["", ".", "..", "a/b.zarr", "/abs.zarr", "a\\b.zarr", "a\0b", 12])
def test_output_name_must_be_a_plain_file_name(name, tmp_path):
    message = refused(["output.dir=out"], lambda c: c["output"].update(name=name),
                      check=check_config, base=tmp_path)
    names(message, "output.name")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("mode", MODES)
def test_output_dir_below_a_file_is_refused(mode, tmp_path):
    (tmp_path / "file").write_text("x")
    message = refused([f"mode={mode}", OPT, "output.dir=file/sub"], check=check_config, base=tmp_path)
    names(message, "output.dir")
    assert "not a directory" in message


@pytest.mark.parametrize("mode", MODES)
def test_unwritable_output_dir_is_refused_before_compute(mode, tmp_path, monkeypatch):
    real_access = os.access
    locked = tmp_path / "locked"
    locked.mkdir()
    monkeypatch.setattr(os, "access", lambda p, m, *a, **k: False if str(p) == str(locked) else real_access(p, m))
    message = refused([f"mode={mode}", OPT, f"output.dir={locked}/new/deep"], check=check_config)
    names(message, "output.dir")
    assert "not writable" in message
    assert list(locked.iterdir()) == []  # nothing created


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
@pytest.mark.parametrize("mode", MODES)
def test_output_dir_on_proc_is_refused_even_for_root(mode):
    """Root's os.access says /proc is writable; nothing can be created there."""
    message = refused([f"mode={mode}", OPT, "output.dir=/proc/forbidden"], check=check_config)
    names(message, "output.dir")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_output_dir_by_permissions(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    try:
        names(refused([f"output.dir={locked}/x"], check=check_config), "output.dir")
    finally:
        locked.chmod(0o755)


def test_creatable_output_dir_is_accepted_and_not_created(tmp_path):
    check_config(config_dict(["output.dir=a/b/c"]), base=tmp_path)
    check_config(config_dict([f"output.dir={tmp_path}"]))
    assert list(tmp_path.iterdir()) == []
    check_config(config_dict(["output.dir=rel", "output.name=x.zarr"]))  # relative to the cwd


# ---------------------------------------------------------------------------------------
# The command: exit 2, one line naming the key, nothing created
# ---------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("args, key", [
    (["overwrite=no"], "overwrite"),
    (["+package.pitch=5"], "package.pitch"),
    (["seed=4294967296"], "seed"),
    (["package.temperature_c=-300"], "package.temperature_c"),
    (["output.name=.."], "output.name"),
    (["mode=sensitivity", "output.plots=off"], "output.plots"),
    (["engine.dtype=float64"], "engine.dtype"),  # JAX_ENABLE_X64 unset
    (["engine.quantiles=[]"], "engine.quantiles"),
    (["package.name=../../../escaped"], "package.name"),
])
def test_command_refuses_bad_input_with_one_line(args, key, tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("JAX_ENABLE_X64", None)
    proc = warm_process.run([sys.executable, "-m", "yieldmc", *args], cwd=tmp_path, env=env, timeout=300)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"{key}:" in lines[0] and "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []  # no results/, no outputs/, nothing


# ---------------------------------------------------------------------------------------
# The spelling of a number does not change the configuration (nor the store identity)
# ---------------------------------------------------------------------------------------

SAME_NUMBERS = [
    (["spec.max_loss_db=2"], ["spec.max_loss_db=2.0"]),
    (["process.dx_um.module.sigma=1"], ["process.dx_um.module.sigma=1.0"]),
    (["sweep={process.dx_um.module.sigma:[1,2]}"], ["sweep={process.dx_um.module.sigma:[1.0,2.0]}"]),
    (["sweep={spec.max_loss_db:[1,2],package.temperature_c:[25,85]}"],
     ["sweep={spec.max_loss_db:[1.0,2.0],package.temperature_c:[25.0,85.0]}"]),
    (["engine.quantiles=[0.5,0.9]", "engine.hist_max_db=30"],
     ["engine.quantiles=[0.5,0.9]", "engine.hist_max_db=30.0"]),
    (["package/coupler=butt", "package.coupler.gap_um=1"], ["package/coupler=butt", "package.coupler.gap_um=1.0"]),
    (["process.correlation.quantities=[dx_um,dy_um]", "process.correlation.matrix=[[1,0.5],[0.5,1]]"],
     ["process.correlation.quantities=[dx_um,dy_um]", "process.correlation.matrix=[[1.0,0.5],[0.5,1.0]]"]),
    (["mode=optimize", "optimize.costs={process.dx_um.module.sigma:1}"],
     ["mode=optimize", "optimize.costs={process.dx_um.module.sigma:1.0}"]),
    (["mode=optimize", "optimize.kind=centring", "optimize.parameters={package.temperature_c:[0,50]}"],
     ["mode=optimize", "optimize.kind=centring", "optimize.parameters={package.temperature_c:[0.0,50.0]}"]),
]


@pytest.mark.parametrize("ints, floats", SAME_NUMBERS)
def test_the_spelling_of_a_number_does_not_change_the_identity(ints, floats):
    from yieldmc.job import identity

    a, b = config_dict(ints), config_dict(floats)
    assert a == b and yaml_text(a) == yaml_text(b)
    assert identity(a) == identity(b)
    check_config(a)  # still a valid configuration


def yaml_text(config: dict) -> str:
    import yaml

    return yaml.safe_dump(config, sort_keys=True)


def test_ints_at_float_keys_become_floats_and_ints_stay_ints():
    cfg = config_dict(["spec.max_loss_db=2", "engine.quantiles=[1,0.5]", "samples=1e4",
                       "sweep={process.dx_um.module.sigma:[0,1]}", "optimize.costs={process.dx_um.module.sigma:3}",
                       "optimize.parameters={package.pitch_um:[40,60]}"], check=False)
    assert type(cfg["spec"]["max_loss_db"]) is float and type(cfg["spec"]["max_failed_channels"]) is int
    assert [type(q) for q in cfg["engine"]["quantiles"]] == [float, float]
    assert type(cfg["samples"]) is int and type(cfg["seed"]) is int and type(cfg["engine"]["block_size"]) is int
    assert [type(v) for v in cfg["sweep"]["process.dx_um.module.sigma"]] == [float, float]
    assert type(cfg["optimize"]["costs"]["process.dx_um.module.sigma"]) is float
    assert [type(v) for v in cfg["optimize"]["parameters"]["package.pitch_um"]] == [float, float]


@pytest.mark.parametrize("override, key", [
    ("spec.max_loss_db=true", "spec.max_loss_db"),
    ("engine.quantiles=[0.5,true]", "engine.quantiles"),
    ("sweep={spec.max_loss_db:[1,true]}", "sweep.spec.max_loss_db"),
])
def test_a_bool_is_never_turned_into_a_float(override, key):
    cfg = config_dict([override], check=False)
    values = [cfg["spec"]["max_loss_db"], *cfg["engine"]["quantiles"],
              *(cfg["sweep"] or {}).get("spec.max_loss_db", [])]
    assert any(v is True for v in values)  # still the bool, not 1.0
    names(refused([override]), key)


def test_an_int_too_large_for_a_float_is_left_to_the_checks():
    cfg = config_dict()
    cfg["spec"]["max_loss_db"] = 10**400
    plain = to_container(cfg)  # no OverflowError here
    assert plain["spec"]["max_loss_db"] == 10**400
    with pytest.raises(ValueError, match=r"^spec\.max_loss_db: "):
        build_problem(plain)


@pytest.mark.slow
def test_the_spelling_of_a_number_does_not_change_the_results():
    common = ["samples=4096", "engine.block_size=4096"]
    a = yieldmc.run(compose(common + ["sweep={spec.max_loss_db:[1,2]}", "process.dx_um.module.sigma=1"]))
    b = yieldmc.run(compose(common + ["sweep={spec.max_loss_db:[1.0,2.0]}", "process.dx_um.module.sigma=1.0"]))
    assert a.n_pass.values.tolist() == b.n_pass.values.tolist()
    assert a["spec.max_loss_db"].values.tolist() == [1.0, 2.0]


def test_type_and_range_errors_come_at_compose_time():
    """yieldmc.compose refuses what the schema refuses, before any problem is built."""
    from yieldmc.io.config import compose

    for override, key in (("overwrite=no", "overwrite"), ("samples=10.5", "samples"),
                          ("package.temperature_c=-300", "package.temperature_c"),
                          ("+package.pitch=5", "package.pitch")):
        with pytest.raises(ValueError, match=re.escape(key)):
            compose([override])
    compose(["samples=1e3"])  # an integral float at an int key is that int
