"""The sampler interface: how a block's draws are made and how its statistics become an estimate.

A sampler is an object whose methods the engine, the store, the results and the API call
without knowing which sampler it is. The registry (:mod:`yieldmc.samplers.registry`) holds
one instance per name; the parse binds a copy of it to its name and its static settings —
what :meth:`Sampler.configure` read from the configuration — and
:attr:`yieldmc.engine.problem.Static.sampler` holds that copy (hashable, compared by value,
so it is part of the compiled programs' cache key; :class:`yieldmc.parts.Part`).

=======================  ==================================================================
configuration            :meth:`Sampler.configure` (reads ``sampler``'s own section, checks
                         ``samples``/``engine.block_size``), :meth:`Sampler.bind`,
                         :attr:`Sampler.supports_sweep`, :attr:`Sampler.supports_gradients`
host tables              :meth:`Sampler.tables` (device-independent, put on every device)
draws of a block         :meth:`Sampler.draws` → (D, B) standard normals from (seed, block);
                         :meth:`Sampler.weighted_draws` adds their weights p/q (B,)
statistics per block     :meth:`Sampler.program` (the compiled one-block function),
                         :meth:`Sampler.block_shapes` (what the store keeps per block),
                         :attr:`Sampler.counts`
interval groups          :meth:`Sampler.groups`, :meth:`Sampler.group_of`
estimator and interval   :meth:`Sampler.estimate` (per-block statistics → :class:`Estimate`),
                         :meth:`Sampler.interval` (summed counts → :class:`Interval`)
provenance               :meth:`Sampler.interval_method`
=======================  ==================================================================

Most samplers only change the draws: they subclass
:class:`yieldmc.samplers.counting.CountingSampler`, which supplies the engine's integer
count statistics, their exact sums and the Wilson interval. This module imports nothing
from the engine, so the registry (and :mod:`yieldmc.configuration`) can
import it without a cycle.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Hashable, Iterable
from typing import TYPE_CHECKING, Any

import jax.numpy as jnp
import numpy as np

from yieldmc.parts import Part

if TYPE_CHECKING:  # annotations only
    from yieldmc.engine.statistics import Stats
    from yieldmc.engine.problem import Problem, Static


@dataclasses.dataclass
class Interval:
    """A 95 % interval of the yield at every sweep point, from summed counts.

    Attributes:
      low, high: the ends, shape (P,) (P = sweep points, flattened).
      label: how it was made, for the variables' ``long_name`` (e.g. ``"Wilson"``).
      variables: further data variables, name → (dims, values, attrs), dims and values
        complete (sweep dimensions included), e.g. qmc's ``yield_se``.
    """

    low: np.ndarray
    high: np.ndarray
    label: str
    variables: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Estimate:
    """What a sampler made of all the per-block statistics of a problem.

    Attributes:
      problem: the problem the numbers belong to (after a fallback, the fallback's: its
        sampler names the provenance and the interval).
      stats: the summed integer counts (count-based estimates), from which
        :func:`yieldmc.io.results.dataset` builds the result variables with
        :meth:`Sampler.interval`; None when the sampler gives every variable itself.
      variables: data variables, name → (dims, values, attrs); they are added to (and
        replace) those built from ``stats``.
      attrs: global attributes added to (and replacing) the provenance.
    """

    problem: Problem
    stats: Stats | None = None
    variables: dict = dataclasses.field(default_factory=dict)
    attrs: dict = dataclasses.field(default_factory=dict)


#: Per-block statistics as the engine and the store hand them over: an iterable of
#: ``(block_indices (k,), {name: array with a leading axis of k blocks})``.
BlockSlices = Iterable[tuple[np.ndarray, dict]]


class Sampler(Part, abc.ABC):
    """One way of sampling the modules of a problem (mc, qmc, is, or a plugin's).

    Subclasses set the class attributes and implement at least :meth:`draws`,
    :meth:`program`, :meth:`block_shapes`, :meth:`estimate` and :meth:`interval_method`
    (:class:`~yieldmc.samplers.counting.CountingSampler` implements all but
    :meth:`draws`). Every method is a pure function of its arguments and of the bound
    sampler's :attr:`settings` (:meth:`bind`); a sampler holds no other state. The engine
    calls the methods of ``static.sampler``, the bound copy.
    """

    #: The name it was selected by (``sampler=<name>``), set by :meth:`bind`: what the
    #: results (``sampler`` attribute), the start line and the messages print.
    name: str = ""

    #: One line for ``--help`` and the docs.
    description: str = ""
    #: Its configuration keys: :class:`yieldmc.parts.Key` rows whose ``path`` is the suffix
    #: under the sampler's own section, named as it is registered (``qmc.randomizations``,
    #: ``is.method``); the schema declares them for every registered sampler (a plugin's
    #: too) and checks their type, bounds and choices before :meth:`configure` reads them.
    keys: tuple = ()
    #: Whether a run may sweep config keys (all points share the draws of each block).
    supports_sweep: bool = True
    #: Whether the gradient estimators (sensitivity, optimize) may use its draws; they
    #: call :meth:`draws` without tables, with plain (unweighted) module averages.
    supports_gradients: bool = False
    #: Whether a sensitivity (``mode=sensitivity``) may use its draws with their importance
    #: weights (:meth:`weighted_draws`, tables included): ∂Y/∂θ = E_q[w·…] for a proposal q
    #: fixed at θ. Optimisation, which moves θ away from the proposal, still needs
    #: :attr:`supports_gradients`.
    weighted_gradients: bool = False
    #: Whether the per-block statistics are the engine's integer counts
    #: (:data:`yieldmc.engine.statistics.STATISTICS`): then they combine exactly in any
    #: order (``engine.accumulate``) and the store self-checks and repairs each block.
    counts: bool = True

    # ------------------------------------------------------------------ configuration
    def configure(self, config: dict, *, samples: int, block_size: int) -> Hashable:
        """Read this sampler's settings from the resolved configuration and check them.

        Args:
          config: the whole configuration (plain dict, already type-checked by
            :mod:`yieldmc.configuration.schema`); a sampler reads its own section (``qmc.*``).
          samples, block_size: the validated ``samples`` and ``engine.block_size``.

        Returns:
          Hashable static settings, bound as :attr:`settings` (None: none).

        Raises:
          ValueError: one line naming the offending key.
        """
        return None

    def bind(self, name: str, settings: Hashable = None) -> Sampler:
        """This sampler bound to its name and its settings (:meth:`configure`'s value):
        the copy :attr:`yieldmc.engine.problem.Static.sampler` holds."""
        return self._bound(name=name, settings=settings)

    def groups(self, static: Static) -> int:
        """Independent groups whose yields the interval compares (1 unless grouped)."""
        return 1

    def group_of(self, static: Static, blocks) -> np.ndarray:
        """The group of each block index (int64, like ``blocks``)."""
        return np.zeros_like(np.asarray(blocks, dtype=np.int64))

    # ------------------------------------------------------------------ device side
    def tables(self, problem: Problem) -> Any:
        """Host tables the draws need (a pytree of numpy arrays; None for none). They
        depend on the problem alone, never on the device or the block."""
        return None

    @abc.abstractmethod
    def draws(self, seed, block, static: Static, tables=None):
        """The standard normals u of one block, shape (D, B) (D = random dimensions,
        B = ``static.block_size``), a traced function of (seed, block) and the tables
        alone, so that a block is the same whoever computes it."""

    def weighted_draws(self, seed, block, static: Static, tables=None):
        """The draws u (D, B) of one block and their weights w = p(u)/q(u) (B,), q the
        density the sampler draws from (ones for a sampler that draws from p)."""
        u = self.draws(seed, block, static, tables)
        return u, jnp.ones(u.shape[-1], u.dtype)

    @abc.abstractmethod
    def program(self, static: Static):
        """The one-block function ``f(seed, block, n_valid, params, tables) -> {name:
        array}``, compiled (``jax.jit``); the engine caches it per ``static``."""

    @abc.abstractmethod
    def block_shapes(self, problem: Problem) -> dict:
        """Name → (per-block shape, dtype) of the program's outputs (the store's arrays)."""

    # ------------------------------------------------------------------ estimator
    @abc.abstractmethod
    def estimate(self, problem: Problem, blocks: BlockSlices, *, n_devices: int | None = None) -> Estimate:
        """The estimate from the per-block statistics of every block of the problem.

        Args:
          problem: the problem.
          blocks: ``(indices, {name: per-block values})`` slices covering every block
            once, in any order and grouping (the result must not depend on them);
            consumed lazily, so an estimate that needs no blocks computes none.
          n_devices: local devices for any further computation (a fallback).
        """

    def interval(self, problem: Problem, stats: Stats) -> Interval:
        """The 95 % interval from the summed counts (count-based estimates only)."""
        raise NotImplementedError(f"{type(self).__name__} gives no interval from counts")

    @abc.abstractmethod
    def interval_method(self, problem: Problem) -> str:
        """How the interval is made, for the ``interval_method`` attribute."""
