"""The progress report's cadence, with an injected clock (no timing), and one real command
whose redirected log shows the start line and the progress lines."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import pytest

from yieldmc.io.progress import Progress


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, t: float = 0.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def progress_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("progress: ")]


def test_start_line_at_once_in_both_forms():
    for tty in (False, True):
        stream = io.StringIO()
        progress = Progress(1000, True, stream=stream, tty=tty, start_line="yieldmc: run of pwg50_12ch",
                            clock=Clock())
        assert stream.getvalue().splitlines()[0] == "yieldmc: run of pwg50_12ch", tty
        progress.close()
    stream = io.StringIO()
    Progress(1000, False, stream=stream, start_line="silenced").close()
    assert stream.getvalue() == ""


def test_a_sixty_second_job_logs_an_estimate_and_a_line_every_tenth():
    """10 s of compilation in the first block, then 99 blocks of 0.5 s: the first estimate
    (at the second block) leaves the compilation out, and a line follows every 10 %."""
    clock, stream = Clock(), io.StringIO()
    progress = Progress(100, True, stream=stream, interval=30.0, clock=clock, start_line="start", tty=False)
    clock.t = 10.0
    progress(1)
    assert progress_lines(stream.getvalue()) == []  # 10 s: under the interval, no new tenth
    clock.t = 10.5
    progress(1)
    # the first estimate: the second block alone (2/s), 98 blocks left
    assert progress.estimate == 49.0
    assert progress_lines(stream.getvalue()) == ["progress: 2/100 samples (2.0%), 2/s, ETA 49 s"]
    for k in range(3, 101):
        clock.t = 10.0 + 0.5 * (k - 1)
        progress(1)
    progress.close()
    lines = progress_lines(stream.getvalue())
    done = [int(re.match(r"progress: (\d+)/", line).group(1)) for line in lines]
    # the first estimate, then a line whenever a new tenth is reached (10, 20, ... 100 blocks)
    assert done == [2, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100], lines
    assert lines[1] == "progress: 10/100 samples (10.0%), 2/s, ETA 45 s"
    assert stream.getvalue().splitlines()[0] == "start"
    assert "warning" not in stream.getvalue()


def test_the_interval_when_a_tenth_takes_longer():
    """One block per 20 s of 1000: the 10 % rule never fires; the interval (30 s) does."""
    clock, stream = Clock(), io.StringIO()
    progress = Progress(1000, True, stream=stream, interval=30.0, clock=clock, tty=False,
                        long_job_s=float("inf"))
    for k in range(1, 10):
        clock.t = 20.0 * k
        progress(1)
    times = [20.0 * k for k in range(1, 10)]
    # the first report (20 s < 30 s: none), the first estimate at 40 s (over MIN_GAP_S),
    # then every report at least 30 s after the previous line: 80, 120, 160
    expected = [2, 4, 6, 8]
    lines = progress_lines(stream.getvalue())
    assert [int(re.match(r"progress: (\d+)/", line).group(1)) for line in lines] == expected, (lines, times)


def test_a_long_job_is_warned_by_the_first_estimate():
    clock, stream = Clock(), io.StringIO()
    progress = Progress(1000, True, stream=stream, clock=clock, tty=False, long_job_s=300.0)
    clock.t = 30.0  # compilation: not part of the estimate
    progress(10)
    assert "warning" not in stream.getvalue()
    clock.t = 31.0
    progress(1)  # 1 per second: 989 s left
    warnings = [line for line in stream.getvalue().splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: long job: about 16.5 min left by the first estimate (1 samples/s); "
                        "interrupt it and reduce the work (e.g. samples) for a quicker answer"]
    assert progress.estimate == 989.0
    progress.close()

    stream = io.StringIO()  # on a terminal too, through the bar's writer
    progress = Progress(1000, True, stream=stream, clock=clock, tty=True, delay=1e9)
    clock.t = 40.0
    progress(10)
    clock.t = 41.0
    progress(1)
    progress.close()
    assert "warning: long job: about 16.5 min left" in stream.getvalue()


def test_a_fast_job_writes_only_its_start_and_last_lines():
    clock, stream = Clock(), io.StringIO()
    progress = Progress(1000, True, stream=stream, clock=clock, start_line="start", tty=False)
    for k in range(10):
        clock.t = 0.05 * (k + 1)
        progress(100)
    progress.close()
    assert stream.getvalue().splitlines() == ["start", "progress: 1000/1000 samples (100.0%), 2000/s, ETA 0 s"]


def test_notes_and_units():
    clock, stream = Clock(), io.StringIO()
    progress = Progress(6, True, stream=stream, clock=clock, tty=False, unit="steps")
    clock.t = 2.0
    progress(1)
    progress.note("outer 1/6: yield 0.8")
    progress.close()
    # the first report's time holds the compilation: no estimate from it
    assert stream.getvalue().splitlines() == ["progress: 1/6 steps (16.7%), 0.5/s, ETA ? s",
                                              "outer 1/6: yield 0.8"]


@pytest.mark.slow
def test_a_redirected_run_logs_a_start_line_and_progress_lines(tmp_path):
    """The command with stderr to a file: the start line at once, then progress lines (a
    short interval keeps the run short)."""
    log = tmp_path / "log"
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    with open(log, "w") as f:
        proc = subprocess.run([sys.executable, "-m", "yieldmc", "samples=196608", "engine.block_size=4096",
                               "engine.blocks_per_call=1", "package.channels=4", "output.dir=out",
                               "output.plots=false", "output.progress_interval_s=0.05"],
                              cwd=tmp_path, env=env, stdout=f, stderr=subprocess.STDOUT, timeout=300)
    text = log.read_text()
    assert proc.returncode == 0, text[-2000:]
    lines = text.splitlines()
    assert lines[0].startswith("yieldmc: run of "), lines[:3]
    assert "196608 samples" in lines[0] and "device" in lines[0], lines[0]
    progress = progress_lines(text)
    assert len(progress) >= 5, text[-2000:]
    assert progress[-1].startswith("progress: 196608/196608 samples (100.0%)")
    assert all("ETA" in line for line in progress)
