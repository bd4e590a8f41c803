"""The store never loses or misreports data (docs/store.md): faults are injected, not hoped away.

Most cases run the command's ``execute`` in this process (one compiled program for the
module); kills and simultaneous shards need real processes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

import warm_process
import yieldmc
from yieldmc.io import store as zstore
from yieldmc.io.cli import execute
from yieldmc.io.config import compose, to_container
from yieldmc.job import parse_job
from yieldmc.configuration.parse import build_problem

# 12 blocks of 4096 modules; process=none keeps each block cheap.
RUN = ["samples=49152", "seed=5", "engine.block_size=4096", "engine.blocks_per_call=1",
       "process=none", "process.dx_um.module.sigma=1.2", "process.dy_um.channel.sigma=0.3"]
VARS = ("yield", "yield_ci_low", "yield_ci_high", "n_pass", "n_samples",
        "channel_fail_fraction", "loss_db_mean", "loss_db_quantile")
NAME = "s.zarr"


def overrides(out: Path, *extra):
    return [*RUN, f"output.dir={out}", f"output.name={NAME}", "output.plots=false", *extra]


def command(out: Path, *extra, capsys=None):
    """The command's ``execute`` in this process: (exit code, stdout, stderr)."""
    cfg = compose(overrides(out, *extra))
    try:
        code = execute(cfg, out.parent)
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr() if capsys is not None else None
    return code, captured.out if captured else "", captured.err if captured else ""


def process(out: Path, *extra, env=None, timeout=300):
    env = dict(os.environ, JAX_PLATFORMS="cpu", **(env or {}))
    return warm_process.run([sys.executable, "-m", "yieldmc", *overrides(out, *extra)], cwd=out.parent,
                            env=env, timeout=timeout)


def assert_result(path: Path, reference: xr.Dataset):
    ds = zstore.open_result(path)  # verified: status complete, digest matches
    for name in VARS:
        np.testing.assert_array_equal(ds[name].values, reference[name].values, err_msg=name)


@pytest.fixture(scope="module")
def reference():
    """The in-memory API result (engine.accumulate): an independent path to the numbers."""
    return yieldmc.run(compose(RUN))


@pytest.fixture(scope="module")
def blocks_done(tmp_path_factory):
    """A store whose every block is computed and whose result is not yet written."""
    out = tmp_path_factory.mktemp("prepared") / "out"
    job = parse_job(compose(overrides(out)), check_output=False)
    root = zstore.open_store(out / NAME, job, overwrite=False)
    zstore.run_blocks(root, job.problem, range(job.problem.n_blocks))
    return out / NAME, job.problem


def fresh_copy(blocks_done, tmp_path) -> Path:
    src, _ = blocks_done
    out = tmp_path / "out"
    out.mkdir()
    shutil.copytree(src, out / NAME)
    return out


@pytest.mark.slow
def test_complete_store_is_verified_and_reused(blocks_done, reference, tmp_path, capsys):
    out = fresh_copy(blocks_done, tmp_path)
    code, stdout, _ = command(out, capsys=capsys)
    assert code == 0 and "yield" in stdout
    assert_result(out / NAME, reference)
    code, stdout, _ = command(out, capsys=capsys)
    assert code == 0 and "already complete" in stdout


# ----------------------------------------------------------------------------- overwrite
def test_overwrite_never_touches_a_plain_directory(tmp_path, capsys):
    out = tmp_path / "out"
    (out / NAME).mkdir(parents=True)
    (out / NAME / "thesis.tex").write_text("years of work")
    code, _, err = command(out, "overwrite=true", capsys=capsys)
    assert code == 2 and "not a yieldmc store" in err and len(err.strip().splitlines()) == 1
    assert (out / NAME / "thesis.tex").read_text() == "years of work"


def test_overwrite_aimed_at_parent_removes_nothing(tmp_path):
    (tmp_path / "precious.txt").write_text("keep")
    (tmp_path / "sub").mkdir()
    job = parse_job(compose(overrides(tmp_path / "sub")), check_output=False)
    with pytest.raises(zstore.StoreError, match="not a yieldmc store"):
        zstore.open_store(tmp_path / "sub" / "..", job, overwrite=True)
    assert (tmp_path / "precious.txt").read_text() == "keep" and (tmp_path / "sub").is_dir()


def test_overwrite_replaces_only_a_yieldmc_store(blocks_done, reference, tmp_path, capsys):
    out = fresh_copy(blocks_done, tmp_path)
    code, _, err = command(out, "seed=6", capsys=capsys)
    assert code == 2 and "different configuration" in err
    assert zstore.root_attrs(out / NAME)["status"] == "running"  # untouched
    code, _, _ = command(out, "seed=6", "overwrite=true", capsys=capsys)
    assert code == 0 and zstore.open_result(out / NAME).attrs["seed"] == 6
    assert not [p for p in out.iterdir() if p.name != NAME]  # no leftovers beside it


def test_overwrite_from_concurrent_shards_is_refused(blocks_done, tmp_path, capsys):
    out = fresh_copy(blocks_done, tmp_path)
    code, _, err = command(out, "seed=6", "overwrite=true", "num_shards=2", capsys=capsys)
    assert code == 2 and "shards" in err
    assert zstore.root_attrs(out / NAME)["yieldmc_identity"] == \
        zarr.open_group(str(blocks_done[0]), mode="r").attrs["yieldmc_identity"]


# ----------------------------------------------------------------------------- creation race
def test_simultaneous_creation_from_threads(tmp_path):
    job = parse_job(compose(overrides(tmp_path)), check_output=False)
    barrier, errors, idents = threading.Barrier(8), [], []

    def one():
        barrier.wait()
        try:
            root = zstore.open_store(tmp_path / NAME, job, overwrite=False)
            idents.append(root.attrs["yieldmc_identity"])
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors and len(set(idents)) == 1 and len(idents) == 8
    assert [p.name for p in tmp_path.iterdir()] == [NAME]  # no creation leftovers


@pytest.mark.slow
def test_four_shard_processes_started_at_once(reference, tmp_path):
    out = tmp_path / "out"
    # the same JAX flags as this process (conftest enables x64), so the blocks match bit for bit
    env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_ENABLE_X64="1")
    procs = [subprocess.Popen([sys.executable, "-m", "yieldmc", *overrides(out, f"shard={k}", "num_shards=4")],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for k in range(4)]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (stdout, stderr) in zip(procs, results):
        assert p.returncode == 0, stderr[-2000:]
        assert "yield" in stdout or "finished" in stdout, stdout
    assert any("worst channel" in stdout for stdout, _ in results)  # someone printed the result
    assert_result(out / NAME, reference)


# ----------------------------------------------------------------------------- kills
@pytest.mark.slow
@pytest.mark.parametrize("point", ["finalize-aside", "finalize-move", "finalize-status"])
def test_kill_while_the_result_is_written(point, blocks_done, reference, tmp_path, capsys):
    out = fresh_copy(blocks_done, tmp_path)
    killed = process(out, env={"YIELDMC_FAULT": point})
    assert killed.returncode == -9, killed.stderr[-2000:]
    with pytest.raises(zstore.StoreError, match="incomplete"):
        zstore.open_result(out / NAME)
    # the dead finalizer's lock file is left behind; the next run takes it over
    assert (out / NAME / ".finalize-lock").exists()
    code, stdout, _ = command(out, capsys=capsys)
    assert code == 0 and "worst channel" in stdout
    assert_result(out / NAME, reference)
    assert not list((out / NAME).glob(".result-*"))


@pytest.mark.slow
def test_kill_while_the_store_is_created(reference, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    killed = process(out, env={"YIELDMC_FAULT": "create-aside"})
    assert killed.returncode == -9
    assert not (out / NAME).exists()  # nothing half-made under the store's name
    code, _, _ = command(out, capsys=capsys)
    assert code == 0
    assert_result(out / NAME, reference)


@pytest.mark.slow
def test_a_live_lock_holder_is_named(blocks_done, tmp_path, capsys):
    out = fresh_copy(blocks_done, tmp_path)
    with zstore.FinalizeLock(out / NAME) as held:
        assert held.acquired
        code, stdout, _ = command(out, capsys=capsys)
    assert code == 0 and f"pid {os.getpid()}" in stdout and "being written" in stdout
    with pytest.raises(zstore.StoreError):
        zstore.open_result(out / NAME)


# ----------------------------------------------------------------------------- damage
def _chunk_files(array_dir: Path) -> list[Path]:
    return sorted(p for p in (array_dir / "c").rglob("*") if p.is_file())


def test_deleted_block_chunk_in_a_half_finished_store_is_recomputed(reference, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, _ = command(out, "shard=0", "num_shards=2", capsys=capsys)
    assert code == 0 and "6 of 12 blocks" in stdout
    (out / NAME / "blocks" / "hist" / "c" / "4" / "0" / "0" / "0" / "0" / "0").unlink()  # block 4 (shard 0)
    code, _, _ = command(out, "shard=1", "num_shards=2", capsys=capsys)
    assert code == 0
    assert_result(out / NAME, reference)


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["flip-result", "delete-yield"])
def test_damaged_result_is_refused_then_recomputed(damage, blocks_done, reference, tmp_path, capsys):
    out = fresh_copy(blocks_done, tmp_path)
    assert command(out, capsys=capsys)[0] == 0
    store = out / NAME
    if damage == "delete-yield":
        (store / "yield" / "c").unlink()
    else:
        _flip(_chunk_files(store / "channel_fail_fraction")[0])
    with pytest.raises(zstore.StoreError, match="damaged"):
        zstore.open_result(store)  # never read as a result
    code, stdout, _ = command(out, capsys=capsys)
    assert code == 0 and "damaged; recomputing" in stdout
    assert_result(store, reference)


def test_damaged_blocks_and_flags_are_found_and_repaired(blocks_done, reference, tmp_path):
    out = fresh_copy(blocks_done, tmp_path)
    store = out / NAME
    _flip(store / "blocks" / "fail" / "c" / "7" / "0" / "0" / "0" / "0")  # checksum mismatch
    (store / "blocks" / "n_pass" / "c" / "9" / "0").unlink()  # reads as the sentinel
    _flip(store / "blocks" / "done" / "c" / "3")
    config = to_container(compose(overrides(out)))
    problem = build_problem(config)
    root = zarr.open_group(str(store), mode="r+")
    assert np.flatnonzero(~zstore.done_blocks(root)).tolist() == [3]
    assert zstore.damaged_blocks(root, problem) == [3, 7, 9]  # 3: its seal cannot be read
    assert zstore.repair_blocks(root, problem) == [3, 7, 9]
    assert zstore.damaged_blocks(root, problem) == [] and zstore.done_blocks(root).all()


def test_block_self_check_catches_an_inconsistent_histogram(blocks_done, tmp_path):
    out = fresh_copy(blocks_done, tmp_path)
    config = to_container(compose(overrides(out)))
    problem = build_problem(config)
    root = zarr.open_group(str(out / NAME), mode="r+")
    hist = root["blocks/hist"]
    block = np.asarray(hist[2])
    block[..., 0] += 1  # a valid chunk (checksum fine) whose counts no longer add up
    hist[2] = block
    assert zstore.damaged_blocks(root, problem) == [2]


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x5A
    path.write_bytes(bytes(data))


def test_a_chunk_copied_from_another_block_or_store_is_caught(blocks_done, tmp_path):
    out = fresh_copy(blocks_done, tmp_path)
    store = out / NAME
    for name in ("n_pass", "fail", "loss_hi", "loss_lo", "hist", "done"):  # block 0 over block 2, flag too
        src = sorted((store / "blocks" / name / "c" / "0").rglob("*")) if name != "done" else []
        if name == "done":
            shutil.copy(store / "blocks" / "done" / "c" / "0", store / "blocks" / "done" / "c" / "2")
        else:
            for f in (p for p in src if p.is_file()):
                target = store / "blocks" / name / "c" / "2" / f.relative_to(store / "blocks" / name / "c" / "0")
                shutil.copy(f, target)
    other = tmp_path / "other"  # block 5 from a store of another seed: same shapes, other identity
    config = to_container(compose(overrides(other, "seed=99")))
    job = parse_job(config, check_output=False)
    zstore.run_blocks(zstore.open_store(other / NAME, job, overwrite=False), job.problem, [5])
    for name in ("n_pass", "fail", "loss_hi", "loss_lo", "hist", "done"):
        shutil.rmtree(store / "blocks" / name / "c" / "5", ignore_errors=True)
        if (other / NAME / "blocks" / name / "c" / "5").is_dir():
            shutil.copytree(other / NAME / "blocks" / name / "c" / "5", store / "blocks" / name / "c" / "5")
        else:
            shutil.copy(other / NAME / "blocks" / name / "c" / "5", store / "blocks" / name / "c" / "5")
    problem = build_problem(to_container(compose(overrides(out))))
    root = zarr.open_group(str(store), mode="r+")
    assert zstore.damaged_blocks(root, problem) == [2, 5]


@pytest.mark.parametrize("damage", ["garbage-hist-metadata", "no-done-array"])
def test_damaged_block_metadata_is_rebuilt(damage, reference, tmp_path, capsys):
    out = tmp_path / "out"
    assert command(out, "shard=0", "num_shards=2", capsys=capsys)[0] == 0
    blocks = out / NAME / "blocks"
    if damage == "no-done-array":
        shutil.rmtree(blocks / "done")
    else:
        (blocks / "hist" / "zarr.json").write_text("{garbage")
    code, stdout, _ = command(out, "shard=1", "num_shards=2", capsys=capsys)
    assert code == 0
    code, stdout, _ = command(out, capsys=capsys)  # the rebuilt blocks of shard 0
    assert code == 0 and "worst channel" in stdout
    assert_result(out / NAME, reference)


def test_damaged_result_metadata_is_recomputed_quietly(blocks_done, reference, tmp_path, capfd):
    out = fresh_copy(blocks_done, tmp_path)
    assert command(out)[0] == 0
    (out / NAME / "yield" / "zarr.json").write_text("{garbage")
    assert zstore.load_result(out / NAME) is None
    capfd.readouterr()
    code, _, _ = command(out)
    captured = capfd.readouterr()
    assert code == 0 and "damaged; recomputing" in captured.out
    assert "Traceback" not in captured.out + captured.err and "ERROR" not in captured.out + captured.err
    assert_result(out / NAME, reference)


@pytest.mark.slow
def test_a_refused_store_leaves_no_hydra_outputs(tmp_path):
    out = tmp_path / "out"
    (out / NAME).mkdir(parents=True)
    proc = process(out)
    assert proc.returncode == 2 and "not a yieldmc store" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "outputs").exists() and [p.name for p in out.iterdir()] == [NAME]
