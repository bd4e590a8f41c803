"""Host CPU as several XLA devices (edge code: used by the command, not by the kernels).

XLA's CPU backend runs one program at a time per device, splitting each fused kernel
over the cores with a barrier per kernel; a block program has ~40 kernels, so on a
shared 2-core VM one device leaves the cores idle at every barrier. With one CPU device
per core the engine deals whole blocks to the devices (``engine.iterate_blocks``), which
run side by side: butt coupler 1.2–1.25× the throughput of one device on the project's
2-core machine (docs/benchmarks.md). Results are bit-identical for any device count.
Each extra device compiles the block programs once more (~1 s).
"""

from __future__ import annotations

import os

import jax

#: Most CPU devices the command creates by default.
MAX_CPU_DEVICES = 4


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask: a Slurm allocation, taskset)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def configure_cpu_devices(count: int | None = None) -> int | None:
    """Make the host CPU ``count`` XLA devices (default: usable cores, ≤ MAX_CPU_DEVICES).

    Must run before JAX's first computation. Does nothing, and returns None, when the user
    already chose (``JAX_NUM_CPU_DEVICES`` or ``--xla_force_host_platform_device_count``
    in ``XLA_FLAGS``), when fewer than 2 devices would result, or when JAX's backends are
    already initialised. Accelerators (GPUs) are not affected.

    Returns:
      The number of CPU devices configured, or None.
    """
    if os.environ.get("JAX_NUM_CPU_DEVICES") or "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return None
    count = min(usable_cores(), MAX_CPU_DEVICES) if count is None else int(count)
    if count < 2:
        return None
    try:
        jax.config.update("jax_num_cpu_devices", count)
    except RuntimeError:  # backends already initialised: keep what is there
        return None
    return count
