"""A clean stop at a block boundary when a batch system (or a user) asks a run to end (edge).

SLURM ends a job that meets its time limit, is preempted, requeued (``scontrol requeue``) or
cancelled (``scancel``) with SIGTERM, and SIGKILL ``KillWait`` seconds later (30 s by
default); Hydra's submitit launcher also asks SLURM for a warning signal ``signal_delay_s``
before the time limit (SIGUSR2). Inside :func:`stop_at_block_boundary` these signals only
set a flag; the block loop (:func:`yieldmc.io.store.run_blocks`) checks it after each
written chunk of blocks, whose statistics and done flags are then complete, and returns.
:meth:`BlockBoundaryStop.exit` then ends the process with one line on stderr:

* SIGTERM / SIGINT: exit status ``128 + signal`` (143 / 130), the shell's convention for a
  process ended by that signal. The done blocks are kept: the same command (or the
  requeued job) resumes from them, bit-identically.
* SIGUSR2 in a submitit SLURM job (the warning before the time limit): the signal is
  handed to submitit's own handler, which requeues the job (the launcher is
  checkpointable: the requeued job runs the same command) and exits.

A second signal of the same kind while the first is pending is passed on at once (a
user's second Ctrl-C interrupts a long compilation).

A job of a multirun catches these signals from its start (:func:`catch_from_job_start`):
SLURM sends the warning signal up to 60 s earlier than asked (``sbatch(1)``, ``--signal``),
so it can arrive while the job still starts; submitit's own handler would then raise
``SystemExit`` wherever Python is (inside a garbage-collection callback it is swallowed, and
the job runs on while SLURM has requeued it). Caught early, the signal stops the run at its
first block boundary; a job that runs no blocks (a gradient mode) hands it on at once.

Fault injection for the tests: ``YIELDMC_FAULT_BLOCK_SECONDS=<s>`` pauses up to ``s`` seconds
after the first call of blocks of a run (in a SLURM job, only in its first start: not once it
is requeued), so that a small run lasts long enough to be stopped there; a stop signal ends
the pause.

References:
  SLURM, ``scancel(1)``, ``sbatch(1)`` (``--signal``), ``slurm.conf(5)`` (``KillWait``,
  ``GraceTime``); submitit, ``docs/checkpointing.md``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time


def _submitit_signal():
    """The warning signal submitit asks SLURM for, when this process is a submitit SLURM job."""
    if os.environ.get("SUBMITIT_EXECUTOR") != "slurm":
        return None
    return getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2"), None)


class BlockBoundaryStop:
    """The flag set by a stop signal; calling it answers "stop after this block?".

    Attributes:
      signum: the first stop signal received, or None.
    """

    def __init__(self, signums):
        self.signum = None
        self._signums = [s for s in signums if s is not None]
        self._previous = {}
        first_start = os.environ.get("SLURM_RESTART_COUNT", "0") in ("", "0")
        self._pause_s = float(os.environ.get("YIELDMC_FAULT_BLOCK_SECONDS", "0") or 0) if first_start else 0.0

    def __call__(self) -> bool:
        end = time.monotonic() + self._pause_s  # the test hook: a stop signal ends the pause
        while self.signum is None and time.monotonic() < end:
            time.sleep(0.05)
        self._pause_s = 0.0
        return self.signum is not None

    def _handler(self, signum, frame):
        if self.signum is None:
            self.signum = signum
            return
        previous = self._previous.get(signum)
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    def install(self) -> None:
        for signum in self._signums:
            try:
                self._previous[signum] = signal.signal(signum, self._handler)
            except (ValueError, OSError):  # not the main thread: the run is simply not stoppable
                pass

    def restore(self) -> None:
        for signum, previous in self._previous.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(signum, previous)

    def hand_on(self) -> None:
        """Restore the previous handlers and deliver a signal caught so far to them (for a
        job with no block boundary to stop at)."""
        self.restore()
        signum, self.signum = self.signum, None
        previous = self._previous.get(signum)
        if signum is None or previous == signal.SIG_IGN:
            return
        if callable(previous):
            previous(signum, None)
        else:
            os.kill(os.getpid(), signum)

    def exit(self, what: str) -> None:
        """End the process after a stop: one line on stderr, then the signal's exit.

        Args:
          what: what was kept, e.g. ``"37 of 64 blocks of <store> are done"``.
        """
        name = signal.Signals(self.signum).name
        previous = self._previous.get(self.signum)
        if self.signum == _submitit_signal() and callable(previous):
            print(f"yieldmc: stopped by {name} (SLURM's warning before the time limit) at a block "
                  f"boundary; {what}; submitit requeues the job (up to hydra.launcher.max_num_timeout "
                  "times) and it resumes", file=sys.stderr, flush=True)
            previous(self.signum, None)  # checkpoint and requeue, then exit (submitit)
        print(f"yieldmc: stopped by {name} at a block boundary; {what}; rerun the same command "
              "(or let SLURM requeue the job) to resume", file=sys.stderr, flush=True)
        sys.exit(128 + int(self.signum))


_ACTIVE: list = []  # the catching stop of this process, when one is installed


@contextlib.contextmanager
def stop_at_block_boundary():
    """Within the block: SIGTERM, SIGINT and submitit's warning signal set a flag only.

    Inside :func:`catch_from_job_start` the job's stop (and any signal it caught) is used.

    Yields:
      A :class:`BlockBoundaryStop`: pass it as ``stop`` to
      :func:`yieldmc.io.store.run_blocks`; after the loop, ``stop.signum`` tells whether a
      stop was asked, and ``stop.exit(...)`` ends the process.
    """
    if _ACTIVE:
        yield _ACTIVE[-1]
        return
    stop = BlockBoundaryStop([signal.SIGTERM, signal.SIGINT, _submitit_signal()])
    stop.install()
    _ACTIVE.append(stop)
    try:
        yield stop
    finally:
        if stop in _ACTIVE:  # not yet handed on
            _ACTIVE.remove(stop)
        stop.restore()


@contextlib.contextmanager
def catch_from_job_start():
    """Catch the stop signals for a whole job of a multirun (see the module's docstring)."""
    with stop_at_block_boundary():
        yield


def hand_on_caught_signal() -> None:
    """A job that runs no blocks: give the signals back, delivering one caught so far."""
    if _ACTIVE:
        _ACTIVE.pop().hand_on()
