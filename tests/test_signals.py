"""The stop signals: caught from a job's start, used at the first block boundary or handed on."""

import os
import signal
import threading
import time

from yieldmc.io import signals


def _recording_handler(seen):
    def handler(signum, frame):
        seen.append(signum)
    return handler


def test_a_signal_caught_while_the_job_starts_stops_the_block_loop(monkeypatch):
    seen = []
    previous = signal.signal(signal.SIGTERM, _recording_handler(seen))
    try:
        with signals.catch_from_job_start():
            os.kill(os.getpid(), signal.SIGTERM)  # before the block loop's own context
            with signals.stop_at_block_boundary() as stop:
                assert stop() and stop.signum == signal.SIGTERM
        assert seen == []  # caught, not passed on
        assert signal.getsignal(signal.SIGTERM) is not stop._handler  # restored
        os.kill(os.getpid(), signal.SIGTERM)
        assert seen == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_job_without_blocks_hands_the_caught_signal_on():
    seen = []
    previous = signal.signal(signal.SIGTERM, _recording_handler(seen))
    try:
        with signals.catch_from_job_start():
            os.kill(os.getpid(), signal.SIGTERM)
            assert seen == []
            signals.hand_on_caught_signal()
            assert seen == [signal.SIGTERM]  # delivered once, to the previous handler
            os.kill(os.getpid(), signal.SIGTERM)  # and the previous handler is back
            assert seen == [signal.SIGTERM] * 2
        with signals.stop_at_block_boundary() as stop:  # a later run catches afresh
            assert not stop()
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_stop_signal_ends_the_fault_pause(monkeypatch):
    monkeypatch.setenv("YIELDMC_FAULT_BLOCK_SECONDS", "60")
    monkeypatch.delenv("SLURM_RESTART_COUNT", raising=False)
    with signals.stop_at_block_boundary() as stop:
        timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM))
        start = time.monotonic()
        timer.start()
        assert stop()
        assert time.monotonic() - start < 30
        timer.join()
