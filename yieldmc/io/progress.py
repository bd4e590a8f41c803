"""Progress of a run on stderr: a tqdm bar on a terminal, plain periodic lines otherwise.

Every report is addressed to a person waiting for the job, on a terminal or reading a batch
log (SLURM, ``> log 2>&1``):

* a **start line** (``start_line``: what runs, on which device), written at once in both
  forms, before anything is compiled;
* a **first estimate** after the first blocks: the line written at the second report (the
  engine fetches its first two blocks one at a time for it), whose
  rate leaves the first report (and the compilation inside it) out, so it is not inflated;
  if it says the job has more than :data:`LONG_JOB_S` seconds left, a **warning** line
  follows (on a terminal as well);
* then, without a terminal, one plain line every ``interval`` seconds (default
  :data:`PLAIN_INTERVAL_S`; the command's ``output.progress_interval_s``) or at every
  further 10 % of the work, whichever comes first, but never two within
  :data:`MIN_GAP_S` seconds (a job that ends within a second writes no progress line)::

      progress: 180224/1000000 samples (18.0%), 52103/s, ETA 16 s

  On a terminal the tqdm bar carries the same figures; it appears once the run has taken
  longer than :data:`TTY_DELAY_S`.

A run that wrote any line writes a last one when it closes, so a log shows how far the job
got. :meth:`Progress.note` adds a line of the caller's (an optimiser's outer step, say).
``progress=false`` (``enabled`` false) silences everything.
"""

from __future__ import annotations

import math
import sys
import time

#: Seconds a run must last before the terminal bar appears.
TTY_DELAY_S = 2.0
#: Default seconds between two plain progress lines when stderr is not a terminal.
PLAIN_INTERVAL_S = 30.0
#: Fraction of the work after which a plain line is due even before the interval.
STEP_FRACTION = 0.1
#: The least time between two plain lines that the 10 % rule or the first estimate writes.
MIN_GAP_S = 1.0
#: A first estimate of more seconds than this is followed by a warning line.
LONG_JOB_S = 300.0


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, OSError, ValueError):
        return False


def _terminal_sized(stream) -> bool:
    import os

    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return False
    return size.columns > 0 and size.lines > 0


def duration(seconds: float) -> str:
    """A duration for a person: ``42 s``, ``14.6 min``, ``2.3 h``."""
    if not math.isfinite(seconds):
        return "?"
    if seconds < 120:
        return f"{math.ceil(seconds)} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class Progress:
    """Work done out of ``total`` (in ``unit``), reported on ``stream`` (default: ``sys.stderr``).

    Call the object with the amount of work just finished; call :meth:`close` at the end
    (also after an error).

    Args:
      total: the work of the whole run, in ``unit``.
      enabled: false: write nothing at all.
      stream: where the report goes (default ``sys.stderr``).
      interval: seconds between two plain lines at most (default :data:`PLAIN_INTERVAL_S`,
        read when the object is made).
      delay: seconds before the terminal bar appears (default :data:`TTY_DELAY_S`).
      tty: force the terminal (True) or the plain (False) form (default:
        ``stream.isatty()``).
      clock: seconds as a float (injected by tests).
      start_line: written at once, in both forms (None: no start line).
      unit: what ``total`` counts (``samples``, ``steps``, ...).
      long_job_s: a first estimate above this many seconds left is followed by a warning.
      min_gap: the least seconds between two lines that the 10 % rule or the first estimate
        writes (default :data:`MIN_GAP_S`).
    """

    def __init__(self, total: int, enabled: bool = True, *, stream=None,
                 interval: float | None = None, delay: float | None = None,
                 tty: bool | None = None, clock=time.monotonic, start_line: str | None = None,
                 unit: str = "samples", long_job_s: float | None = None, min_gap: float | None = None):
        self.total, self.done = int(total), 0
        self.stream = sys.stderr if stream is None else stream
        self.enabled = bool(enabled)
        self.interval = float(PLAIN_INTERVAL_S if interval is None else interval)
        self.long_job_s = float(LONG_JOB_S if long_job_s is None else long_job_s)
        self.min_gap = float(MIN_GAP_S if min_gap is None else min_gap)
        self.unit = str(unit)
        delay = TTY_DELAY_S if delay is None else delay
        self.clock = clock
        self.start = self.last_line = clock()
        self._first = None          # (time, done) at the first report: rates skip compilation
        self._reports = 0
        self.estimate = None        # seconds left by the first estimate (None: not made yet)
        self.lines, self._last_done = 0, 0      # progress lines written, work done at the last one
        self._wrote = False         # any line written (the start line and notes count)
        self._bar = None
        if self.enabled and start_line:
            self._write(start_line)
        if self.enabled and (_isatty(self.stream) if tty is None else tty):
            from tqdm import tqdm

            # a terminal that reports no size (a bare pty) would hide the bar: 100 x 20 then
            sized = _terminal_sized(self.stream)
            self._bar = tqdm(total=self.total, file=self.stream, delay=delay, desc="yieldmc",
                             unit=f" {self.unit}", unit_scale=True, leave=True, dynamic_ncols=sized,
                             ncols=None if sized else 100, nrows=None if sized else 20,
                             bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
                                        f"{self.unit} [{{elapsed}}, {{rate_fmt}}, ETA {{remaining}}]")

    def __call__(self, n: int) -> None:
        if not self.enabled:
            return
        self.done += int(n)
        self._reports += 1
        now = self.clock()
        if self._first is None:
            self._first = (now, self.done)
        first_estimate = self._reports == 2 and self.done < self.total
        if self._bar is not None:
            self._bar.update(int(n))
            if first_estimate:
                self._estimate(now)
            return
        gap = now - self.last_line
        step = max(self.total, 1) * STEP_FRACTION
        new_step = math.floor(self.done / step) > math.floor(self._last_done / step)
        if gap >= self.interval or (gap >= self.min_gap and (first_estimate or new_step)):
            self._line(now)
        if first_estimate:
            self._estimate(now)

    def _estimate(self, now: float) -> None:
        """The first estimate of the time left; a warning when it is long."""
        rate = self.rate(now)
        self.estimate = max(self.total - self.done, 0) / rate if rate > 0 else math.inf
        if self.estimate > self.long_job_s:
            self._write(f"warning: long job: about {duration(self.estimate)} left by the first estimate "
                        f"({self._rate_text(rate)} {self.unit}/s); interrupt it and reduce the work "
                        "(e.g. samples) for a quicker answer")

    def note(self, text: str) -> None:
        """Write one line of the caller's (e.g. an optimiser's outer step), in both forms."""
        if self.enabled:
            self._write(text)

    def _write(self, text: str) -> None:
        self._wrote = True
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def rate(self, now: float | None = None) -> float:
        """Work per second since the first report (so compilation does not count), or
        since the start while there has been only one report."""
        now = self.clock() if now is None else now
        t0, d0 = self._first if self._first is not None else (self.start, 0)
        if self.done - d0 <= 0 or now <= t0:
            t0, d0 = self.start, 0
        return (self.done - d0) / (now - t0) if now > t0 else 0.0

    @staticmethod
    def _rate_text(rate: float) -> str:
        return f"{rate:.0f}" if rate >= 100 else f"{rate:.3g}"

    def line(self, now: float | None = None) -> str:
        """The plain progress line for the current state."""
        rate = self.rate(now)
        left = max(self.total - self.done, 0)
        # one report: its time holds the compilation, so no estimate yet unless it is done
        eta = f"{math.ceil(left / rate)}" if rate > 0 and (self._reports > 1 or not left) else "?"
        pct = self.done / self.total if self.total > 0 else 1.0
        return (f"progress: {self.done}/{self.total} {self.unit} ({pct:.1%}), {self._rate_text(rate)}/s, "
                f"ETA {eta} s")

    def _line(self, now: float) -> None:
        self._write(self.line(now))
        self.last_line, self.lines = now, self.lines + 1
        self._last_done = self.done

    def close(self) -> None:
        """End the report: finish the bar, or write a last line if any line was written."""
        if self._bar is not None:
            bar, self._bar = self._bar, None
            bar.close()
        elif self.enabled and self._wrote and self._last_done != self.done:
            self._line(self.clock())
        self.enabled = False


def start_line(job, *, samples: int | None = None, what: str | None = None) -> str:
    """The start line of a command: what runs, on which package, modules, conditions, device.

    Args:
      job: the parsed :class:`yieldmc.job.Job`.
      samples: the modules this process computes (default: the job's ``samples`` per point).
      what: the work in words when it is not modules (an optimiser's steps, say).
    """
    import jax

    problem, static = job.problem, job.problem.static
    parts = [f"{static.layers}x{static.channels} channels"]
    n = problem.samples if samples is None else int(samples)
    work = what or (f"{n} samples" + (f" at each of {problem.n_points} sweep points" if problem.n_points > 1
                                       else ""))
    parts.append(work)
    if job.num_shards > 1:
        parts.append(f"shard {job.shard}/{job.num_shards}")
    parts.append("conditions " + (", ".join(c.name for c in static.conditions) or "none"))
    parts.append(f"sampler {static.sampler.name}")
    if static.alignment != "passive":
        parts.append(f"alignment {static.alignment}")
    device = jax.devices()[0]
    parts.append(f"device {device.device_kind} ({device.platform}, {jax.device_count()} device"
                 f"{'s' if jax.device_count() > 1 else ''})")
    return f"yieldmc: {job.mode} of {job.package_name}: " + ", ".join(parts)
