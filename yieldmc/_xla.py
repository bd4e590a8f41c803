"""XLA:CPU code-generation defaults, set before JAX starts its backend.

``--xla_cpu_prefer_vector_width=512``: XLA:CPU vectorises for 256-bit registers by
default; on a CPU with AVX-512 (the 2-vCPU AMD EPYC Zen 4 of docs/benchmarks.md) 512-bit
vectors made the engine 1.26× (butt) and 1.26× (the default Si-strip ``landau_zener``
job) faster in throughput, per CPU up to 1.3×, with the same yields. On a CPU without
AVX-512 LLVM keeps the widest vector it has, and GPUs ignore the flag.

XLA reads ``XLA_FLAGS`` once, when JAX's backend starts, so this only takes effect when
``yieldmc`` is imported before any JAX computation runs; a value the user already put in
``XLA_FLAGS`` for this option is kept (``--xla_cpu_prefer_vector_width=256`` restores
XLA's default). It is a process-wide setting. Vector width can change a floating-point
reduction's order, so a run is bit-reproducible for a given machine and setting; the
integer statistics of the pinned tests (tests/test_pins.py) are the same under both widths.
"""

from __future__ import annotations

import os
import re

#: Option and value yieldmc adds to ``XLA_FLAGS`` unless the option is already there.
DEFAULTS = {"--xla_cpu_prefer_vector_width": "512"}


def set_defaults(environ=os.environ) -> None:
    """Append each of :data:`DEFAULTS` that ``XLA_FLAGS`` does not set yet (as ``--option``
    or ``-option``; options inside a ``--flagfile`` are not looked at)."""
    flags = environ.get("XLA_FLAGS", "")
    extra = [f"{k}={v}" for k, v in DEFAULTS.items()
             if not re.search(rf"(^|\s)--?{re.escape(k.lstrip('-'))}(=|\s|$)", flags)]
    if extra:
        environ["XLA_FLAGS"] = " ".join([flags, *extra]).strip()
