"""Progress of a run on stderr: a tqdm bar on a terminal, plain periodic lines otherwise.

On a terminal the bar (samples done, rate, ETA) appears only once a run has taken longer than
:data:`TTY_DELAY_S`, so short runs stay silent. Without a terminal (batch jobs, SLURM logs,
``2> file``) a carriage-return bar would fill the log with one huge line, so instead one plain
line is written every :data:`PLAIN_INTERVAL_S` seconds::

    progress: 180224/1000000 samples (18.0%), 52103/s, ETA 16 s

A run shorter than the interval writes nothing; a run that wrote at least one line writes a
last one when it closes, so a log shows how far the job got. ``progress=false`` (``enabled``
false) silences both.
"""

from __future__ import annotations

import math
import sys
import time

#: Seconds a run must last before the terminal bar appears.
TTY_DELAY_S = 2.0
#: Seconds between two plain progress lines when stderr is not a terminal.
PLAIN_INTERVAL_S = 60.0


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


class Progress:
    """Samples done out of ``total``, reported on ``stream`` (default: ``sys.stderr``).

    Call the object with the number of samples just finished; call :meth:`close` at the end
    (also after an error). ``interval`` (plain lines) and ``delay`` (terminal bar) are in
    seconds (default: the module's :data:`PLAIN_INTERVAL_S` and :data:`TTY_DELAY_S`, read
    when the object is made); ``tty`` forces the terminal or the plain form (default:
    ``stream.isatty()``).
    """

    def __init__(self, total: int, enabled: bool = True, *, stream=None,
                 interval: float | None = None, delay: float | None = None,
                 tty: bool | None = None, clock=time.monotonic):
        self.total, self.done = int(total), 0
        self.stream = sys.stderr if stream is None else stream
        self.enabled = bool(enabled)
        self.interval = float(PLAIN_INTERVAL_S if interval is None else interval)
        delay = TTY_DELAY_S if delay is None else delay
        self.clock = clock
        self.start = self.last_line = clock()
        self._first = None          # (time, done) at the first report: rates skip compilation
        self.lines, self._last_done = 0, 0      # plain lines written, samples in the last one
        self._bar = None
        if self.enabled and (_isatty(self.stream) if tty is None else tty):
            from tqdm import tqdm

            # a terminal that reports no size (a bare pty) would hide the bar: 100 x 20 then
            sized = _terminal_sized(self.stream)
            self._bar = tqdm(total=self.total, file=self.stream, delay=delay, desc="yieldmc",
                             unit=" samples", unit_scale=True, leave=True, dynamic_ncols=sized,
                             ncols=None if sized else 100, nrows=None if sized else 20,
                             bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
                                        "samples [{elapsed}, {rate_fmt}, ETA {remaining}]")

    def __call__(self, n: int) -> None:
        if not self.enabled:
            return
        self.done += int(n)
        if self._bar is not None:
            self._bar.update(int(n))
            return
        now = self.clock()
        if self._first is None:
            self._first = (now, self.done)
        if now - self.last_line >= self.interval:
            self._line(now)

    def rate(self, now: float | None = None) -> float:
        """Samples per second since the first report (so compilation does not count), or
        since the start while there has been only one report."""
        now = self.clock() if now is None else now
        t0, d0 = self._first if self._first is not None else (self.start, 0)
        if self.done - d0 <= 0 or now <= t0:
            t0, d0 = self.start, 0
        return (self.done - d0) / (now - t0) if now > t0 else 0.0

    def line(self, now: float | None = None) -> str:
        """The plain progress line for the current state."""
        rate = self.rate(now)
        left = max(self.total - self.done, 0)
        eta = f"{math.ceil(left / rate)}" if rate > 0 else "?"
        pct = self.done / self.total if self.total > 0 else 1.0
        shown = f"{rate:.0f}" if rate >= 100 else f"{rate:.3g}"
        return (f"progress: {self.done}/{self.total} samples ({pct:.1%}), {shown}/s, "
                f"ETA {eta} s")

    def _line(self, now: float) -> None:
        self.stream.write(self.line(now) + "\n")
        self.stream.flush()
        self.last_line, self.lines = now, self.lines + 1
        self._last_done = self.done

    def close(self) -> None:
        """End the report: finish the bar, or write a last line if any line was written."""
        if self._bar is not None:
            bar, self._bar = self._bar, None
            bar.close()
        elif self.enabled and self.lines and self._last_done != self.done:
            self._line(self.clock())
        self.enabled = False
