"""The documented SLURM command against a real one-node SLURM, and the stop at a block boundary.

The SLURM tests start the daemons with ``.ci/setup_slurm.sh`` (installed and started when
they are not up) and FAIL when they cannot start. They run the command of
``docs/cluster.md`` (the block after the docs-test marker) with only its sizes and output
directory substituted, and compare every store bit for bit with one uninterrupted local run.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import warm_process

pytestmark = pytest.mark.slow  # the quick tier (pytest -m "not slow") leaves these out

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "cluster.md"
MARKER = "<!-- docs-test: tests/test_slurm.py -->"
SAMPLES = 131072
BLOCK = 2048  # 64 blocks, written 8 at a time (engine.blocks_per_call)
N_BLOCKS = 64
FIRST_CALL = 1  # the engine fetches a run's first block alone (then 1, then 8 at a time)
SIZES = [f"engine.block_size={BLOCK}"]
VARS = ("yield", "yield_ci_low", "yield_ci_high", "n_pass", "n_samples",
        "channel_fail_fraction", "loss_db_mean", "loss_db_quantile")


#: The command of docs/cluster.md and the README, as documented (the docs test finds it here).
DOCUMENTED = "yieldmc --multirun hydra/launcher=yieldmc_slurm hydra.launcher.partition=gpu shard='range(8)' num_shards=8 samples=1000000000 output.dir=/scratch/$USER/yield"  # noqa: E501


def documented_command() -> str:
    """The ``yieldmc`` line of the bash block that follows the docs-test marker (the one
    :data:`DOCUMENTED` spells)."""
    text = DOC.read_text()
    assert MARKER in text, f"{DOC} lost its docs-test marker"
    block = text.split(MARKER, 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    lines = [line.strip() for line in block.replace("\\\n", " ").splitlines()]
    assert "pip install -e '.[cluster]'" in lines
    (line,) = [" ".join(line.split()) for line in lines if line.startswith("yieldmc ")]
    assert line == DOCUMENTED, f"{DOC} documents {line!r}; tests/test_slurm.py knows {DOCUMENTED!r}"
    return line


def slurm_args(*, shards: int, out: Path, extra=()) -> list:
    """The documented command's arguments with the sizes and the output directory substituted."""
    args = shlex.split(documented_command())[1:]
    sizes = {"shard": f"range({shards})", "num_shards": str(shards), "samples": str(SAMPLES),
             "output.dir": str(out)}
    seen = set()
    for i, arg in enumerate(args):
        key = arg.split("=", 1)[0]
        if key in sizes:
            args[i], _ = f"{key}={sizes[key]}", seen.add(key)
    assert seen == set(sizes), f"the documented command lacks {set(sizes) - seen}"
    assert "hydra/launcher=yieldmc_slurm" in args and "hydra.launcher.partition=gpu" in args
    return [*args, *SIZES, *extra]


def environment(cache: Path, **extra) -> dict:
    """The runs' environment (SLURM passes it on to the jobs): CPU JAX, a shared compile cache
    keeping every program."""
    return dict(os.environ, JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1",
                JAX_COMPILATION_CACHE_DIR=str(cache), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="-1", **extra)


def yieldmc(args, *, cwd, env, timeout=600):
    """A run to its end, by a fork of a warm interpreter (tests/warm_process.py)."""
    return warm_process.run([sys.executable, "-m", "yieldmc", *args], cwd=cwd, env=env, timeout=timeout)


def the_store(directory: Path) -> Path:
    stores = sorted(Path(directory).glob("*.zarr"))
    assert len(stores) == 1, stores
    return stores[0]


def done_blocks(out: Path) -> dict:
    """Block index → modification time (ns) of its done flag's chunk, for every done block
    (not a chunk still being written: zarr writes ``<index>.<uuid>.partial`` and renames it)."""
    return {int(p.name): p.stat().st_mtime_ns for p in Path(out).glob("*.zarr/blocks/done/c/*")
            if p.name.isdigit()}


def assert_same_result(store: Path, ref: Path):
    a, b = xr.open_zarr(store), xr.open_zarr(ref)
    assert a.attrs["status"] == "complete"
    for name in VARS:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


def wait_for(what: str, predicate, timeout_s: float, every_s: float = 0.2):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """A directory of this session shared by its xdist workers (computed once, under a lock)."""
    base = tmp_path_factory.getbasetemp()
    path = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "slurm_shared"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="module")
def cache(shared):
    """The suite's persistent compilation cache (tests/conftest.py), else one of this session."""
    return Path(os.environ.get("JAX_COMPILATION_CACHE_DIR") or shared / "jax_cache")


@pytest.fixture(scope="module")
def reference(shared, cache):
    """One uninterrupted local run (one process, no shards): the store every run must equal."""
    import fcntl

    cwd = shared / "reference"
    with open(shared / "reference.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (cwd / "ok").exists():
            cwd.mkdir(exist_ok=True)
            proc = yieldmc([f"samples={SAMPLES}", *SIZES, "output.dir=out", "output.plots=false"],
                           cwd=cwd, env=environment(cache))
            assert proc.returncode == 0, proc.stderr[-3000:]
            (cwd / "ok").touch()
    return the_store(cwd / "out")


@pytest.fixture(scope="module")
def slurm():
    """A running SLURM (started by .ci/setup_slurm.sh when it is not): fails when it cannot start."""
    proc = subprocess.run(["bash", str(ROOT / ".ci" / "setup_slurm.sh")], capture_output=True,
                          text=True, timeout=900, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, ("the SLURM daemons could not start (.ci/setup_slurm.sh):\n"
                                  + proc.stdout[-2000:] + proc.stderr[-6000:])


# --------------------------------------------------------------------------- SLURM
def _array_job(cwd: Path) -> str:
    """The SLURM array job id of the one multirun started in ``cwd`` (from submitit's folders)."""
    found = {p.name.split("_")[0] for p in cwd.glob("multirun/*/*/.submitit/*_*") if p.is_dir()}
    return found.pop() if len(found) == 1 else ""


def _squeue(job: str) -> list:
    proc = subprocess.run(["squeue", "-h", "-j", job, "-o", "%i %T"], capture_output=True, text=True)
    return proc.stdout.split("\n") if proc.stdout.strip() else []


def _log(cwd: Path, task: str, kind: str = "err") -> str:
    return "".join(p.read_text() for p in cwd.glob(f"multirun/*/*/.submitit/{task}/{task}_0_log.{kind}"))


def test_slurm_command_after_scancel_and_preemption_is_bit_identical(slurm, reference, cache, tmp_path):
    """The documented command, 4 shards: shard 0 is cancelled (scancel) and shard 1 preempted
    (scontrol requeue) after their first block; both stop at that block boundary, keeping it;
    the requeued shard resumes by itself, the cancelled one with the rerun of the command."""
    out = tmp_path / "yield"
    args = slurm_args(shards=4, out=out)
    env = environment(cache, YIELDMC_FAULT_BLOCK_SECONDS="8")  # a pause after each shard's first block
    with open(tmp_path / "first.log", "w") as log:
        first = subprocess.Popen([sys.executable, "-m", "yieldmc", *args], cwd=tmp_path, env=env,
                                 stdout=log, stderr=subprocess.STDOUT)
    try:
        job = wait_for("the array job", lambda: _array_job(tmp_path), 120)
        wait_for("block 0 (shard 0)", lambda: 0 in done_blocks(out), 300)
        subprocess.run(["scancel", f"{job}_0"], check=True)
        wait_for("block 1 (shard 1)", lambda: 1 in done_blocks(out), 300)
        subprocess.run(["scontrol", "requeue", f"{job}_1"], check=True)
        wait_for("the first multirun to end", lambda: first.poll() is not None, 400, 1)
        wait_for("every job of the array to end", lambda: not _squeue(job), 400, 1)
    finally:
        if first.poll() is None:
            first.kill()
        subprocess.run(["scancel", job], capture_output=True) if "job" in locals() and job else None
    first_log = (tmp_path / "first.log").read_text()
    assert first.returncode != 0, first_log[-3000:]  # shard 0 was cancelled: the sweep failed
    sbatch = next(tmp_path.glob("multirun/*/*/.submitit/*/*_submission.sh"), None) or next(
        tmp_path.glob("multirun/*/*/.submitit/submission_file_*.sh"))
    text = sbatch.read_text()
    assert "--partition=gpu" in text and "--gpus-per-node=1" in text and "--signal=USR2@" in text

    for task in (f"{job}_0", f"{job}_1"):  # one line each, at a block boundary
        stops = re.findall(r"yieldmc: stopped by SIGTERM at a block boundary; (\d+) of 64 blocks", _log(tmp_path, task))
        assert len(stops) == 1, (task, _log(tmp_path, task)[-3000:])
    done = done_blocks(out)
    second_of_shard_0 = set(range(0, N_BLOCKS, 4)[FIRST_CALL:])  # all but its first block
    assert set(done) == set(range(N_BLOCKS)) - second_of_shard_0, sorted(done)
    assert "Job completed successfully" in _log(tmp_path, f"{job}_1", "out")  # the requeued shard resumed
    assert not (the_store(out) / "yield").exists()  # not complete: no result yet

    rerun = yieldmc(args, cwd=tmp_path, env=environment(cache))
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    after = done_blocks(out)
    assert set(after) == set(range(N_BLOCKS))
    assert all(after[b] == t for b, t in done.items())  # the kept blocks were not recomputed
    assert_same_result(the_store(out), reference)


def test_time_limit_stops_at_a_block_boundary_and_the_requeued_job_resumes(slurm, reference, cache, tmp_path):
    """The documented command with a two-minute time limit on jobs that need longer (a pause
    after their first block): SLURM's warning before the limit stops each job at that block
    boundary, submitit requeues it, and the requeued job computes only what is left.

    SLURM sends the warning up to 60 s before the time asked (``sbatch(1)``; its time-limit
    check runs every 30 s): 30 s before a 2-minute limit it comes 60–90 s after the start,
    after the first block and long before the requeued job's rest would be stopped."""
    out = tmp_path / "yield"
    args = slurm_args(shards=2, out=out, extra=["hydra.launcher.timeout_min=2",
                                                "hydra.launcher.signal_delay_s=30"])
    env = environment(cache, YIELDMC_FAULT_BLOCK_SECONDS="600")  # until the warning ends it
    first_seen = {}
    with open(tmp_path / "multirun.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "yieldmc", *args], cwd=tmp_path, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 600
        while proc.poll() is None and time.time() < deadline:  # when each done flag first appears
            for b, t in done_blocks(out).items():
                first_seen.setdefault(b, t)
            time.sleep(0.5)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, (tmp_path / "multirun.log").read_text()[-3000:]
    job = _array_job(tmp_path)
    for task in (f"{job}_0", f"{job}_1"):
        stops = re.findall(r"yieldmc: stopped by SIGUSR2 \(SLURM's warning before the time limit\) at a "
                           r"block boundary; (\d+) of 64 blocks", _log(tmp_path, task))
        assert stops and int(stops[0]) >= FIRST_CALL, _log(tmp_path, task)[-3000:]
    final = done_blocks(out)
    assert all(final[b] == t for b, t in first_seen.items())  # kept, never recomputed
    assert_same_result(the_store(out), reference)


# --------------------------------------------------------------------------- without SLURM
def test_sigterm_stops_after_a_block_and_the_rerun_resumes(reference, cache, tmp_path):
    """SIGTERM (what SLURM sends at a time limit, preemption or scancel) to a plain run: one
    line, exit status 143, every written block kept; the same command then finishes."""
    env = environment(cache, YIELDMC_FAULT_BLOCK_SECONDS="8")
    run = [f"samples={SAMPLES}", *SIZES, "output.dir=out", "output.plots=false"]
    proc = subprocess.Popen([sys.executable, "-m", "yieldmc", *run], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for("the first block", lambda: len(done_blocks(tmp_path / "out")) >= FIRST_CALL or proc.poll() is not None, 300)
        assert proc.poll() is None, "the run ended before it could be stopped"
        seen = done_blocks(tmp_path / "out")
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, (proc.returncode, stderr[-3000:])
    # besides the start line and progress lines, exactly one line says why it stopped
    lines = [line for line in stderr.strip().splitlines()
             if not line.startswith(("yieldmc: run of ", "progress: "))]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-3000:]
    kept = done_blocks(tmp_path / "out")
    assert re.fullmatch(rf"yieldmc: stopped by SIGTERM at a block boundary; {len(kept)} of 64 blocks of "
                        r"\S+ are done; rerun the same command \(or let SLURM requeue the job\) to resume",
                        lines[0]), lines[0]
    # the signal came during the pause after the first call of blocks: it stopped there
    assert set(kept) == set(seen) and len(kept) == FIRST_CALL
    assert not (the_store(tmp_path / "out") / "yield").exists()
    rerun = yieldmc(run, cwd=tmp_path, env=environment(cache))
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert all(done_blocks(tmp_path / "out")[b] == t for b, t in kept.items())
    assert_same_result(the_store(tmp_path / "out"), reference)


def test_without_slurm_the_command_says_so(tmp_path):
    """No ``sbatch`` on PATH: one line naming the launcher, exit status 2, nothing written."""
    out = tmp_path / "yield"
    env = dict(os.environ, JAX_PLATFORMS="cpu", PATH=str(tmp_path / "empty"))
    proc = subprocess.run([sys.executable, "-m", "yieldmc", *slurm_args(shards=8, out=out)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert lines[0].startswith("yieldmc: error: hydra/launcher=yieldmc_slurm: SLURM was not found")
    assert not out.exists() and not (tmp_path / "multirun").exists()
