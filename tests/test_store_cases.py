"""The last ways a store could lose work or a job could end 0 without its result.

Each case injects its fault: two configurations overwriting one store at once (real
processes, one held at a known moment), a user's file or another store inside a store,
an output directory inside a store, a read-only mount, a damaged root ``zarr.json``.
The rule checked every time: the correct result, or one line and a non-zero exit code,
and nothing removed that yieldmc did not write.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import yieldmc
from yieldmc.io import store as zstore
from yieldmc.io.cli import execute
from yieldmc.io.config import compose, to_container
from yieldmc.job import parse_job

pytestmark = pytest.mark.slow  # the quick tier (pytest -m "not slow") leaves these out

# 4 blocks of 4096 modules; process=none keeps each block cheap.
RUN = ["samples=16384", "engine.block_size=4096", "engine.blocks_per_call=1", "process=none",
       "process.dx_um.module.sigma=1.2", "process.dy_um.channel.sigma=0.3", "output.plots=false"]
NAME = "X.zarr"


def args(out: Path, seed: int, *extra) -> list[str]:
    return [*RUN, f"seed={seed}", f"output.dir={out}", f"output.name={NAME}", *extra]


def command(out: Path, seed: int, *extra, capsys):
    """The command's ``execute`` in this process: (exit code, stdout, stderr)."""
    try:
        code = execute(compose(args(out, seed, *extra)), out.parent)
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def start(out: Path, seed: int, *extra, env=None) -> subprocess.Popen:
    # the same JAX flags as this process (conftest enables x64), so the blocks match bit for bit
    env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_ENABLE_X64="1", **(env or {}))
    return subprocess.Popen([sys.executable, "-m", "yieldmc", *args(out, seed, *extra)], cwd=out.parent,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, timeout=300):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def printed_yield(stdout: str) -> float:
    return float(re.search(r"^yield (\d\.\d+)", stdout, re.M).group(1))


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("yieldmc: error:"), err
    return lines[0]


@pytest.fixture(scope="module")
def references():
    """seed -> the in-memory API's yield (engine.accumulate: an independent path to the numbers)."""
    return {seed: yieldmc.run(compose([*RUN, f"seed={seed}"])) for seed in (0, 1)}


@pytest.fixture(scope="module")
def complete(tmp_path_factory, references):
    """A complete store of seed 0 (built by the command in this process), to be copied."""
    out = tmp_path_factory.mktemp("complete") / "out"
    try:
        code = execute(compose(args(out, 0)), out.parent)
    except SystemExit as exc:
        code = exc.code
    assert code == 0
    return out / NAME


def copy_of(complete: Path, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    shutil.copytree(complete, out / NAME)
    return out


def assert_result_of(path: Path, reference):
    ds = zstore.open_result(path)  # verified: status complete, digest matches
    for name in ("yield", "n_pass", "channel_fail_fraction", "loss_db_quantile"):
        np.testing.assert_array_equal(ds[name].values, reference[name].values, err_msg=name)


def identity_of(seed: int) -> str:
    return parse_job(compose([*RUN, f"seed={seed}"]), check_output=False).identity


# ----------------------------------------------------------------------------- concurrent overwrite
def test_a_store_in_use_is_not_replaced_by_another_configuration(tmp_path, references, capsys):
    """Job A (seed 0) is held right after opening its store; job B (seed 1, overwrite=true)
    must not replace it: one line, exit 2. A then finishes with its own result, and B, rerun
    once A has ended, replaces the store."""
    out = tmp_path / "out"
    out.mkdir()
    flag = tmp_path / "hold"
    flag.write_text("")
    a = start(out, 0, env={"YIELDMC_PAUSE": "store-open", "YIELDMC_PAUSE_FILE": str(flag)})
    reached = Path(f"{flag}.reached")
    deadline = time.monotonic() + 240
    while not reached.exists() and a.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert reached.exists(), finish(a)
    code, _, err = finish(start(out, 1, "overwrite=true"))
    assert code == 2 and "in use by another yieldmc job" in one_line(err)
    flag.unlink()
    code, stdout, err = finish(a)
    assert code == 0, err
    assert zstore.root_attrs(out / NAME)["yieldmc_identity"] == identity_of(0)
    assert_result_of(out / NAME, references[0])
    assert printed_yield(stdout) == pytest.approx(float(references[0]["yield"]), abs=1e-4)
    code, stdout, err = command(out, 1, "overwrite=true", capsys=capsys)  # in this process: compiled already
    assert code == 0, err
    assert_result_of(out / NAME, references[1])


def test_two_configurations_started_together_never_exit_0_without_their_result(tmp_path, references):
    """The audit's reproduction: two configurations, one output.name, overwrite=true, started
    at the same moment. Every job that exits 0 printed its own configuration's result; one
    that does not ends with one line; the store holds a complete, verified result."""
    out = tmp_path / "out"
    out.mkdir()
    procs = {seed: start(out, seed, "overwrite=true") for seed in (0, 1)}
    ended = {seed: finish(p) for seed, p in procs.items()}
    assert any(code == 0 for code, _, _ in ended.values()), ended
    for seed, (code, stdout, err) in ended.items():
        if code == 0:
            assert printed_yield(stdout) == pytest.approx(float(references[seed]["yield"]), abs=1e-4), (seed, stdout)
            assert "being written by" not in stdout
        else:
            assert code == 2 and one_line(err), (seed, err)
    last = zstore.root_attrs(out / NAME)["yieldmc_identity"]
    seed = {identity_of(s): s for s in (0, 1)}[last]
    assert ended[seed][0] == 0  # the store's result is that of a job that exited 0
    assert_result_of(out / NAME, references[seed])


# ----------------------------------------------------------------------------- foreign entries
def test_a_users_file_inside_a_store_is_left_alone(complete, references, tmp_path, capsys):
    out = copy_of(complete, tmp_path)
    (out / NAME / "my_notes.txt").write_text("notes")
    code, stdout, _ = command(out, 0, capsys=capsys)
    assert code == 0 and "already complete" in stdout and "damaged" not in stdout
    assert (out / NAME / "my_notes.txt").read_text() == "notes"
    assert_result_of(out / NAME, references[0])
    # recomputing the result (its digest no longer matches) leaves the file too
    attrs = json.loads((out / NAME / "zarr.json").read_text())
    attrs["attributes"]["result_digest"] = "0" * 64
    (out / NAME / "zarr.json").write_text(json.dumps(attrs))
    code, stdout, _ = command(out, 0, capsys=capsys)
    assert code == 0 and "recomputing" in stdout
    assert (out / NAME / "my_notes.txt").read_text() == "notes"
    assert_result_of(out / NAME, references[0])
    # and a store holding it is not replaced
    code, _, err = command(out, 1, "overwrite=true", capsys=capsys)
    assert code == 2 and "my_notes.txt" in one_line(err)
    assert (out / NAME / "my_notes.txt").read_text() == "notes"
    assert_result_of(out / NAME, references[0])


def test_a_store_inside_a_store_is_never_deleted(complete, references, tmp_path, capsys):
    out = copy_of(complete, tmp_path)
    # the command refuses an output.dir inside a store, before anything is written
    code, _, err = command(out / NAME, 1, "output.name=inner.zarr", capsys=capsys)
    assert code == 2 and one_line(err).startswith("yieldmc: error: output.dir:") and "never nest" in err
    code, _, err = command(out / NAME / "sub" / "deeper", 1, capsys=capsys)
    assert code == 2 and "never nest" in one_line(err)
    assert not (out / NAME / "inner.zarr").exists() and not (out / NAME / "sub").exists()
    # a store put inside one by hand: the outer one is then not replaced
    shutil.copytree(complete, out / NAME / "inner.zarr")
    code, _, err = command(out, 1, "overwrite=true", capsys=capsys)
    assert code == 2 and "inner.zarr" in one_line(err)
    assert_result_of(out / NAME / "inner.zarr", references[0])
    assert_result_of(out / NAME, references[0])


def test_foreign_entries_are_found(complete, tmp_path):
    out = copy_of(complete, tmp_path)
    store = out / NAME
    assert zstore.foreign_entries(store) == []
    (store / "blocks" / "extra.txt").write_text("x")
    (store / "empty").mkdir()
    (store / "yield" / "README").write_text("x")  # inside an array: it is no longer one of ours
    os.symlink("/", store / "link")
    assert zstore.foreign_entries(store) == ["blocks/extra.txt", "empty", "link", "yield"]


# ----------------------------------------------------------------------------- damaged root metadata
def test_a_damaged_root_zarr_json_is_repaired_from_the_marker(complete, references, tmp_path, capsys):
    out = copy_of(complete, tmp_path)
    (out / NAME / "zarr.json").write_text("{ garbage")
    assert zstore.root_attrs(out / NAME)["yieldmc_identity"] == identity_of(0)  # still recognised
    with pytest.raises(zstore.StoreError, match="incomplete"):
        zstore.open_result(out / NAME)
    code, stdout, err = command(out, 0, capsys=capsys)
    assert code == 0, err
    assert_result_of(out / NAME, references[0])
    # the same damage seen by another configuration: a yieldmc store of another configuration
    (out / NAME / "zarr.json").write_text("")
    code, _, err = command(out, 1, capsys=capsys)
    assert code == 2 and "different configuration" in one_line(err)
    # root metadata and marker both lost: the blocks' seals say whose store it is
    (out / NAME / ".yieldmc-store").unlink()
    before = sorted(p.name for p in (out / NAME).iterdir())
    code, _, err = command(out, 1, "overwrite=true", capsys=capsys)  # not provably a store: left alone
    assert code == 2 and "not a yieldmc store" in one_line(err)
    assert sorted(p.name for p in (out / NAME).iterdir()) == before
    code, stdout, err = command(out, 0, capsys=capsys)
    assert code == 0, err
    assert_result_of(out / NAME, references[0])
    assert zstore.root_attrs(out / NAME)["status"] == "complete" and (out / NAME / ".yieldmc-store").exists()


def test_a_foreign_directory_with_a_damaged_zarr_json_is_never_touched(tmp_path, capsys):
    out = tmp_path / "out"
    (out / NAME).mkdir(parents=True)
    (out / NAME / "zarr.json").write_text("{ not ours")
    (out / NAME / "data.bin").write_bytes(b"\x00" * 10)
    code, _, err = command(out, 0, "overwrite=true", capsys=capsys)
    assert code == 2 and "not a yieldmc store" in one_line(err)
    assert sorted(p.name for p in (out / NAME).iterdir()) == ["data.bin", "zarr.json"]
    assert (out / NAME / "zarr.json").read_text() == "{ not ours"


# ----------------------------------------------------------------------------- read-only
def _bind_read_only(src: Path, dst: Path) -> bool:
    """Mount ``src`` read-only at ``dst`` (root, CAP_SYS_ADMIN); False where that is not possible."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    dst.mkdir()
    ok = subprocess.run(["mount", "--bind", str(src), str(dst)], capture_output=True).returncode == 0
    if ok and subprocess.run(["mount", "-o", "remount,ro,bind", str(dst)], capture_output=True).returncode != 0:
        subprocess.run(["umount", str(dst)], capture_output=True)
        ok = False
    return ok


def test_a_complete_store_on_a_read_only_mount_is_printed(complete, references, tmp_path, capsys, monkeypatch):
    """A read-only bind mount where this machine allows one (root); elsewhere a simulated
    read-only file system (every open for writing and os.access(W_OK) under it fail)."""
    src = copy_of(complete, tmp_path)
    ro = tmp_path / "ro"
    if _bind_read_only(src, ro):
        try:
            assert not os.access(ro, os.W_OK) or subprocess.run(["touch", str(ro / "x")]).returncode != 0
            work = tmp_path / "work"
            work.mkdir()
            env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_ENABLE_X64="1")
            done = subprocess.run([sys.executable, "-m", "yieldmc", *args(ro, 0)], cwd=work, env=env,
                                  capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr
            assert "already complete" in done.stdout
            assert printed_yield(done.stdout) == pytest.approx(float(references[0]["yield"]), abs=1e-4)
            assert_result_of(ro / NAME, references[0])
        finally:
            subprocess.run(["umount", str(ro)], capture_output=True)
        return
    store = src / NAME
    real_open, real_access = os.open, os.access
    writes = os.O_WRONLY | os.O_RDWR | os.O_CREAT

    def read_only_open(path, flags, *a, **k):
        if str(path).startswith(str(src)) and flags & writes:
            raise OSError(30, "Read-only file system", str(path))
        return real_open(path, flags, *a, **k)

    monkeypatch.setattr(os, "open", read_only_open)
    monkeypatch.setattr(os, "access", lambda p, m, *a, **k: (False if str(p).startswith(str(src)) and m & os.W_OK
                                                             else real_access(p, m, *a, **k)))
    code, stdout, err = command(src, 0, capsys=capsys)
    assert code == 0 and "already complete" in stdout, err
    assert_result_of(store, references[0])
