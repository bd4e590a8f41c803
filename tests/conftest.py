"""Test-wide setup: float64 available for the reference tests (engine tests pick their dtype),
and one persistent JAX compilation cache for the whole run.

The suite is compile-bound: both pytest-xdist workers and every ``yieldmc`` subprocess compile
the same block programs. A compiled program is keyed by its HLO, options and backend, so a
shared on-disk cache changes no result, only who pays the compilation. An environment
``JAX_COMPILATION_CACHE_DIR`` is used as it is.
"""

import os
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      os.path.join(tempfile.gettempdir(), f"yieldmc-tests-jax-cache-{os.getuid()}"))
# every program, however quick to compile (JAX caches only those over 1 s by default): each
# subprocess would otherwise compile its small ones again
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)



def pytest_sessionfinish(session, exitstatus):
    """End the warm interpreters (tests/warm_process.py) while this process can still wait
    for them."""
    import sys

    if "warm_process" in sys.modules:
        sys.modules["warm_process"].close_all()
