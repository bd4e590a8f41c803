"""Samplers behind one interface: mc, qmc, is and those registered by plugins.

* :class:`Sampler` (:mod:`yieldmc.samplers.base`) — the interface the engine, store,
  results and API call: configuration, host tables, draws of a block, the per-block
  statistics program and shapes, the estimator and its interval, provenance.
* :class:`~yieldmc.samplers.counting.CountingSampler` — the base of samplers that only
  change the draws (integer count statistics, Wilson interval): ``mc``, ``qmc``.
* :func:`register_sampler`, :func:`get_sampler`, :func:`sampler_names` — the registry.

Built-in samplers: ``mc`` (:mod:`.mc`), ``qmc`` (:mod:`.qmc`), ``is`` (:mod:`.importance`).
A new sampler is one module: a subclass and a :func:`register_sampler` call, imported
through ``YIELDMC_PLUGINS`` (see ``tests/toy_sampler.py``).

This package's ``__init__`` imports only the interface and the registry (no engine), so
that :mod:`yieldmc.configuration` can use it without an import cycle.
"""

from yieldmc.samplers.base import Estimate, Interval, Sampler
from yieldmc.samplers.registry import get_sampler, register_sampler, require_gradients, sampler_names

__all__ = ["Estimate", "Interval", "Sampler", "get_sampler", "register_sampler", "require_gradients",
           "sampler_names"]
