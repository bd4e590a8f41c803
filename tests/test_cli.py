"""The ``yieldmc`` command end to end, always in a process of its own (never Hydra's main in
pytest): a fork of a warm interpreter (tests/warm_process.py), or a fresh process where the
test signals it, kills it or gives it a terminal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import warm_process
from yieldmc.io.progress import TTY_DELAY_S

# A small run: 36 blocks of 4096 modules (process=none keeps each block cheap).
RUN = ["samples=147456", "seed=11", "engine.block_size=4096", "engine.blocks_per_call=1",
       "process.dx_um.module.sigma=1.2", "process.dy_um.channel.sigma=0.1"]
VARS = ("yield", "yield_ci_low", "yield_ci_high", "n_pass", "n_samples",
        "channel_fail_fraction", "loss_db_mean", "loss_db_quantile")


def yieldmc(*args, cwd, timeout=300):
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1")
    return warm_process.run([sys.executable, "-m", "yieldmc", *args], cwd=cwd, env=env, timeout=timeout)


def the_store(directory: Path) -> Path:
    stores = sorted(Path(directory).glob("*.zarr"))
    assert len(stores) == 1, stores
    return stores[0]


def assert_same_result(a: xr.Dataset, b: xr.Dataset):
    for name in VARS:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted run: the store every other run must reproduce bit for bit."""
    cwd = tmp_path_factory.mktemp("reference")
    proc = yieldmc(*RUN, "output.dir=out", cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return cwd, proc, the_store(cwd / "out")


@pytest.mark.slow
def test_end_to_end_store_and_summary(reference):
    cwd, proc, store = reference
    assert "yield" in proc.stdout and "worst channel" in proc.stdout and str(store) in proc.stdout
    assert "yieldmc: run of " in proc.stderr and "\r" not in proc.stderr  # plain lines in a log, no bar
    ds = xr.open_zarr(store)
    for name in VARS:
        assert {"units", "long_name"} <= set(ds[name].attrs), name
    assert ds.channel_fail_fraction.dims == ("layer", "channel")
    assert ds.sizes["channel"] == 12 and int(ds.n_samples) == 147456
    for key in ("config_yaml", "seed", "yieldmc_version", "jax_version", "jaxlib_version",
                "backend", "device_kind", "rng_impl"):
        assert key in ds.attrs, key
    assert ds.attrs["status"] == "complete" and ds.attrs["seed"] == 11
    # CF attributes: conventions, when and by which command, the package and the spec
    assert ds.attrs["Conventions"] == "CF-1.10" and ds.attrs["source"].startswith("yieldmc ")
    created = datetime.fromisoformat(ds.attrs["date_created"].replace("Z", "+00:00"))
    assert created.utcoffset().total_seconds() == 0 and abs(time.time() - created.timestamp()) < 3600
    assert ds.attrs["history"] == f"{ds.attrs['date_created']}: yieldmc {' '.join(RUN)} output.dir=out"
    assert ds.attrs["package"] == "pwg50_12ch"
    assert ds.attrs["spec_max_loss_db"] == 1.5 and ds.attrs["spec_max_failed_channels"] == 0
    assert "sigma: 1.2" in ds.attrs["config_yaml"]
    assert not (cwd / "outputs").exists()  # one job writes its store and plots alone (no Hydra run directory)
    fail_png = store.with_name(store.stem + "_fail.png")
    assert fail_png.stat().st_size > 5000


@pytest.mark.slow
def test_rerun_of_a_complete_store_recomputes_nothing(reference):
    cwd, _, store = reference
    meta = store / "zarr.json"  # rewritten by any attribute or result write
    before = meta.stat().st_mtime_ns
    proc = yieldmc(*RUN, "output.dir=out", cwd=cwd)
    assert proc.returncode == 0 and "already complete" in proc.stdout
    assert meta.stat().st_mtime_ns == before


@pytest.mark.slow
def test_kill_and_resume_is_bit_identical(reference, tmp_path):
    _, _, ref = reference
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    cmd = [sys.executable, "-m", "yieldmc", *RUN, "output.dir=out"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    done_dir = None
    while time.time() < deadline and proc.poll() is None:
        found = list((tmp_path / "out").glob("*.zarr/blocks/done/c"))
        if found and len(list(found[0].iterdir())) >= 4:
            done_dir = found[0]
            break
        time.sleep(0.05)
    assert done_dir is not None, "the run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    n_done = len(list(done_dir.iterdir()))
    assert 4 <= n_done < 36
    partial = xr.open_zarr(the_store(tmp_path / "out"), consolidated=False)
    assert "yield" not in partial  # a killed store never looks complete
    resumed = yieldmc(*RUN, "output.dir=out", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_result(xr.open_zarr(the_store(tmp_path / "out")), xr.open_zarr(ref))


@pytest.mark.slow
def test_two_submitit_shards_equal_one_job(reference, tmp_path):
    _, _, ref = reference
    proc = yieldmc("--multirun", "hydra/launcher=submitit_local", "shard=0,1", "num_shards=2",
                   *RUN, f"output.dir={tmp_path / 'out'}", cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_same_result(xr.open_zarr(the_store(tmp_path / "out")), xr.open_zarr(ref))


@pytest.mark.slow
def test_sweep_map_and_plots(tmp_path):
    sweep = "sweep={process.dx_um.module.sigma:[0.5,1.5],spec.max_loss_db:[0.5,1.0,1.5]}"
    proc = yieldmc("samples=4096", "engine.block_size=4096", sweep, "output.dir=out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    store = the_store(tmp_path / "out")
    ds = xr.open_zarr(store)
    assert ds["yield"].dims == ("process.dx_um.module.sigma", "spec.max_loss_db")
    assert ds["process.dx_um.module.sigma"].attrs == {"long_name": "process.dx_um.module.sigma", "units": "µm"}
    assert ds["spec.max_loss_db"].attrs == {"long_name": "spec.max_loss_db", "units": "dB"}
    assert "spec_max_loss_db" not in ds.attrs  # swept: no single value
    lines = proc.stdout.splitlines()  # the best and the worst point, each with its interval
    assert lines[1].startswith("  best   ") and lines[2].startswith("  worst  ") and "95 % CI" in lines[2]
    assert ds.loss_db_quantile.dims == ("process.dx_um.module.sigma", "spec.max_loss_db",
                                        "quantile", "layer", "channel")
    yield_png = store.with_name(store.stem + "_yield.png")
    assert yield_png.stat().st_size > 5000
    yield_png.unlink()
    redraw = subprocess.run([sys.executable, "-m", "yieldmc.io.plots", str(store)],
                            capture_output=True, text=True, timeout=120)
    assert redraw.returncode == 0 and yield_png.stat().st_size > 5000


@pytest.mark.slow
@pytest.mark.parametrize("args, key", [
    (["process.dx_um.module.sigmaa=1"], "process.dx_um.module.sigmaa"),
    (["samples=many"], "samples"),
    (["process.dx_um.module.sigma=-0.5"], "process.dx_um.module.sigma"),
    (["process.gap_um.module.low=1", "process.gap_um.module.high=0"], "process.gap_um.module.low"),
    (["process.yaw_mrad.layer.distribution=cauchy"], "process.yaw_mrad.layer.distribution"),
    (["sweep={process.dx_um.module.sigma:[0.5,-1]}"], "process.dx_um.module.sigma"),
    (["samples=0"], "samples"),
    (["output.dir=/proc/forbidden"], "output"),
    (["--multirun", "shard=0,5", "num_shards=2"], "shard"),
])
def test_bad_input_exits_2_with_one_line(args, key, tmp_path):
    proc = yieldmc("output.dir=out", *args, cwd=tmp_path)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0] and "Traceback" not in proc.stderr
    assert not list(tmp_path.glob("out/*.zarr"))


@pytest.mark.slow
def test_foreign_store_is_refused_then_overwritten(reference, tmp_path):
    _, _, ref = reference
    out = tmp_path / "out"
    first = yieldmc("samples=4096", "engine.block_size=4096", "output.dir=out", "output.name=s.zarr", cwd=tmp_path)
    assert first.returncode == 0
    clash = yieldmc("samples=8192", "engine.block_size=4096", "output.dir=out", "output.name=s.zarr", cwd=tmp_path)
    assert clash.returncode == 2 and "different configuration" in clash.stderr
    assert int(xr.open_zarr(out / "s.zarr").n_samples) == 4096  # the user's data is intact
    again = yieldmc("samples=8192", "engine.block_size=4096", "output.dir=out", "output.name=s.zarr",
                    "overwrite=true", cwd=tmp_path)
    assert again.returncode == 0 and int(xr.open_zarr(out / "s.zarr").n_samples) == 8192


def test_help_and_cfg_job(tmp_path):
    proc = yieldmc("--cfg", "job", "package=pwg18_4x32ch", cwd=tmp_path)
    assert proc.returncode == 0 and "channels: 32" in proc.stdout and "layers: 4" in proc.stdout
    assert yieldmc("--help", cwd=tmp_path).returncode == 0
    assert not list(tmp_path.rglob("*.zarr"))


@pytest.mark.slow
@pytest.mark.parametrize("progress", [True, False])
def test_progress_bar_only_on_a_terminal(progress, tmp_path):
    import pty

    master, slave = pty.openpty()
    # a run longer than the bar's delay (TTY_DELAY_S): a pause after its first block
    env = dict(os.environ, JAX_PLATFORMS="cpu", YIELDMC_FAULT_BLOCK_SECONDS=str(TTY_DELAY_S + 1))
    proc = subprocess.run([sys.executable, "-m", "yieldmc", "samples=16384", "engine.block_size=8192",
                           "engine.blocks_per_call=1", f"progress={str(progress).lower()}",
                           "output.dir=out"],
                          cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=slave, timeout=300)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    err = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0
    assert ("ETA" in err and "samples" in err) == progress, err[-500:]


@pytest.mark.slow
def test_sensitivity_mode_ranks_tolerances_and_writes_a_store(tmp_path):
    overrides = ["mode=sensitivity", "process=none", "process.dx_um.module.sigma=1.0",
                 "process.dy_um.module.sigma=0.3", "samples=8192", "engine.block_size=2048", "output.dir=out",
                 "output.name=sens.zarr"]
    proc = yieldmc(*overrides, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "tighten from the top" in proc.stdout
    table = proc.stdout.split("tighten from the top:")[1].split("nominals and spec:")[0]
    assert table.index("process.dx_um.module.sigma") < table.index("process.dy_um.module.sigma")
    # the name as given, and the tornado chart beside it
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["sens.zarr", "sens_tornado.png"]
    ds = xr.open_zarr(tmp_path / "out" / "sens.zarr")
    assert ds.yield_gradient.dims == ("parameter",) and "yield_gradient_se" in ds
    assert "process.dx_um.module.sigma" in [str(p) for p in ds.parameter.values]
    assert ds.attrs["estimator"] == "pathwise" and ds.attrs["Conventions"] == "CF-1.10"
    units = dict(zip(ds.parameter.values, ds.units.values))
    assert units["process.dx_um.module.sigma"] == "µm" and units["spec.max_loss_db"] == "dB"
    assert units["package.pwg.n_core"] == "1" and units["package.temperature_c"] == "°C"


@pytest.mark.slow
@pytest.mark.parametrize("args, key", [
    (["mode=bogus"], "mode"),
    (["mode=optimize"], "optimize.costs"),
    (["mode=sensitivity", "gradient.estimator=magic"], "gradient.estimator"),
    (["mode=optimize", "optimize.costs={package.pitch_um:1}"], "optimize.costs.package.pitch_um"),
])
def test_gradient_modes_bad_input(args, key, tmp_path):
    proc = yieldmc("output.dir=out", "samples=1000", *args, cwd=tmp_path)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0]
    assert not list(tmp_path.glob("out/*.zarr"))


@pytest.mark.slow
def test_rare_event_samplers_through_the_command(tmp_path):
    proc = yieldmc("sampler=is", "package/coupler=butt", "samples=16384", "engine.block_size=8192", "output.dir=out",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "sampler is" in proc.stdout
    ds = xr.open_zarr(the_store(tmp_path / "out"))
    assert ds.attrs["sampler"] == "is" and float(ds.failure_probability_se) > 0
    assert ds.attrs["is_design_points"] >= 1 and "effective_sample_size" in ds


@pytest.mark.slow
def test_a_command_parses_its_job_once(tmp_path):
    """The check before Hydra and the run after it share one parse of the configuration."""
    script = textwrap.dedent("""
        import atexit, sys
        import yieldmc.job as job
        calls = []
        parse = job.parse_job
        job.parse_job = lambda *a, **k: calls.append(1) or parse(*a, **k)
        atexit.register(lambda: print(f"parses={len(calls)}", file=sys.stderr))
        sys.argv = ["yieldmc", "samples=2048", "engine.block_size=2048", "output.plots=false", "output.dir=out"]
        from yieldmc.io.cli import main
        main()
    """)
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "parses=1" in proc.stderr, proc.stderr[-3000:]


@pytest.mark.parametrize("overrides", [["a=1,2", "b=x", "c=range(0,3)", "a=5,6"], ["seed=0,1,2", "samples=10"],
                                       ["x=choice(1,2)", "y=[1,2]", "z={a:1}"]])
def test_multirun_expansion_is_hydras_basic_sweeper(overrides):
    """The pre-check expands a multirun with Hydra's public override parser; its basic sweeper
    (private API, only here as the reference) splits the same overrides into the same jobs."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from yieldmc.io import cli

    parsed = OverridesParser.create().parse_overrides(overrides=overrides)
    assert cli._expand(overrides, True) == [list(b) for bs in BasicSweeper.split_arguments(parsed, None) for b in bs]
