"""The command as a citizen: --help, --version, a closed pipe, and the progress report.

The command-line tests run ``python -m yieldmc`` in a subprocess (never Hydra's main in
pytest); the progress tests drive :mod:`yieldmc.io.progress` in-process with a fake stream.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from yieldmc._version import __version__
from yieldmc.io.progress import Progress


def yieldmc(*args, cwd, **kwargs):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.run([sys.executable, "-m", "yieldmc", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, **kwargs)


def test_help_describes_yieldmc(tmp_path):
    proc = yieldmc("--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert out.startswith("yieldmc ") and "yield" in out
    for option in ("pwg50_12ch*", "pwg18_32ch", "pwg18_4x32ch", "nominal*", "none", "adiabatic",
                   "butt", "passive*", "active"):
        assert option in out, option
    for line in ("spec.max_loss_db=1.5", "samples=1000000", "seed=0", "output.dir=results",
                 "engine.dtype=float32", "progress=true", "mode=run", "num_shards=1"):
        assert line in out, line
    assert "--hydra-help" in out and "yieldmc --cfg job" in out
    assert "Hydra (1." not in out and "Powered by Hydra" not in out  # not Hydra's stub
    assert not list(tmp_path.iterdir())  # nothing written (no outputs/ either)


def test_version(tmp_path):
    proc = yieldmc("--version", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == f"yieldmc {__version__}"


@pytest.mark.slow
@pytest.mark.parametrize("args", [
    ["--help"],
    ["samples=4096", "engine.block_size=4096", "output.dir=out", "output.plots=false"],
], ids=["help", "run"])
def test_a_closed_pipe_ends_quietly(args, tmp_path):
    # Unbuffered, so that the run's summary hits the closed pipe inside Hydra's job.
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "yieldmc", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before yieldmc writes a byte
    err = proc.stderr.read().decode(errors="replace")
    assert proc.wait(timeout=300) == 141, err[-2000:]
    assert "Traceback" not in err and "BrokenPipeError" not in err and "Error" not in err, err


def clock(*times):
    it = iter(times)
    return lambda: next(it)


def test_plain_lines_with_a_short_interval():
    stream = io.StringIO()
    progress = Progress(1000, True, stream=stream, interval=0.0, clock=clock(0.0, 1.0, 2.0))
    progress(100)
    progress(400)
    progress.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert lines[0].startswith("progress: 100/1000 samples (10.0%), 100/s, ETA ? s"), lines  # compiling
    # the rate leaves the first report (compilation) out: 400 samples in 1 s
    assert lines[1] == "progress: 500/1000 samples (50.0%), 400/s, ETA 2 s", lines
    assert len(lines) == 2  # close adds nothing when the last line is up to date


def test_plain_lines_every_interval_and_a_last_one():
    stream = io.StringIO()
    progress = Progress(4000, True, stream=stream, interval=10.0, min_gap=float("inf"),  # interval alone
                        clock=clock(0.0, 4.0, 11.0, 12.0, 13.0, 14.0))
    for _ in range(4):
        progress(1000)
    assert stream.getvalue().splitlines() == ["progress: 2000/4000 samples (50.0%), 143/s, ETA 14 s"]
    progress.close()
    assert stream.getvalue().splitlines()[-1].startswith("progress: 4000/4000 samples (100.0%)")
    assert stream.getvalue().splitlines()[-1].endswith("ETA 0 s")


def test_real_clock_interval():
    stream = io.StringIO()
    progress = Progress(10, True, stream=stream, interval=0.05)
    import time

    for _ in range(3):
        time.sleep(0.06)
        progress(2)
    progress.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) >= 3 and all(line.startswith("progress: ") and "ETA" in line for line in lines)


def test_a_short_job_writes_nothing():
    stream = io.StringIO()
    progress = Progress(1000, True, stream=stream)  # default interval: PLAIN_INTERVAL_S
    for _ in range(10):
        progress(100)
    progress.close()
    assert stream.getvalue() == ""


def test_disabled_writes_nothing():
    for tty in (False, True):
        stream = io.StringIO()
        progress = Progress(1000, False, stream=stream, interval=0.0, delay=0.0, tty=tty)
        progress(500)
        progress.close()
        assert stream.getvalue() == ""


def test_terminal_bar_after_its_delay():
    stream = io.StringIO()
    progress = Progress(1000, True, stream=stream, delay=0.0, tty=True)
    progress(500)
    progress.close()
    out = stream.getvalue()
    assert "ETA" in out and "samples" in out and "500/1.00k samples" in out and "\n" in out
    assert not out.startswith("progress:")

    stream = io.StringIO()
    progress = Progress(1000, True, stream=stream, tty=True)  # default delay: a fast run is silent
    progress(1000)
    progress.close()
    assert stream.getvalue() == ""


def test_the_command_uses_this_progress():
    from yieldmc.io import cli

    assert cli.Progress is Progress
