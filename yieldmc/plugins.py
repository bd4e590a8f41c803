"""Extension modules: parts (couplers, samplers) registered from outside the package.

``YIELDMC_PLUGINS`` names importable modules, comma-separated (e.g.
``YIELDMC_PLUGINS=mylab.couplers``). They are imported once, before any configuration is
composed (:func:`yieldmc.compose`, the command, and each cluster job), so that what they
register — a coupler, a sampler, their config group options in Hydra's ConfigStore —
exists by the time the configuration is read. An environment variable rather than a
config key because the configuration cannot name options that do not exist yet, and
because it reaches every SLURM job unchanged.
"""

from __future__ import annotations

import importlib
import os

ENV = "YIELDMC_PLUGINS"
_loaded: set[str] = set()


def load_plugins() -> None:
    """Import every module named in ``YIELDMC_PLUGINS`` (once per process).

    Raises:
      ValueError: a named module cannot be imported (naming it).
    """
    for name in (s.strip() for s in os.environ.get(ENV, "").split(",")):
        if not name or name in _loaded:
            continue
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ValueError(f"{ENV}: cannot import plugin module {name!r}: {exc}") from None
        _loaded.add(name)
