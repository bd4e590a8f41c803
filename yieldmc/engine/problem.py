"""The engine's view of a configuration: frozen, typed objects (no Hydra, no xarray).

The parse (:func:`yieldmc.configuration.parse.build_problem`) validates a resolved
configuration and splits it into

* :class:`Static` — hashable settings that fix array shapes and code paths (layers,
  channels, the coupler and the sampler bound to their settings, active variations,
  block size …): the ``jit`` static argument;
* ``params`` — a flat ``dict`` of float parameters keyed by config path (e.g.
  ``"process.dx_um.module.sigma"``), each an array over the flattened sweep grid: these
  are traced, so a sweep compiles once;

and hands them to the engine in a :class:`Problem`. :class:`Static` holds the parts
themselves (:class:`yieldmc.parts.Part`): the engine, the store and the results call them
without a registry, so nothing here imports the couplers, the samplers or the parse.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from yieldmc.couplers import Coupler
    from yieldmc.engine.distributions import Distribution
    from yieldmc.samplers.base import Sampler


@dataclasses.dataclass(frozen=True)
class Static:
    """Shape- and code-path-determining settings (hashable; a ``jit`` static argument)."""

    layers: int
    channels: int
    coupler: Coupler  # package.coupler.kind's coupler, bound to its Coupler.static settings
    sampler: Sampler  # the sampler, bound to its name and its Sampler.configure settings
    active: tuple[tuple[str, str, Distribution], ...]  # (quantity, level, distribution) with randomness;
    # an Empirical distribution carries its table (a constant of the program)
    copula: tuple[str, ...]  # module-level quantities tied by the Gaussian copula
    block_size: int
    hist_bins: int
    hist_max_db: float
    loss_unit_db: float
    dtype: str
    rng_impl: str
    alignment: str = "passive"
    alignment_objective: str = "worst"
    alignment_steps: int = 0
    polarizations: tuple[str, ...] = ("te",)  # evaluated polarisations; the channel loss is the worst
    lanes: int = 0  # WDM lanes (params package.lanes_um.<i>); 0: package.wavelength_um alone
    bend: bool = False  # the flex can be bent (a bend radius is set or varied)
    crosstalk: bool = False  # spec.max_crosstalk_db is set: crosstalk is evaluated and checked
    conditions: tuple = ()  # yieldmc.engine.conditions.Condition, one per condition; () = the package's own
    scope: str = "channel"  # spec.scope: what spec.max_loss_db limits (channel | coupler)

    @property
    def n_conditions(self) -> int:
        """Conditions evaluated per module (1 without ``conditions``: the package's own)."""
        return max(1, len(self.conditions))


@dataclasses.dataclass(frozen=True)
class Problem:
    """Everything the engine needs: static settings, traced parameters, the sweep grid."""

    static: Static
    params: dict  # name -> np.ndarray of shape (n_points,)
    sweep_keys: tuple[str, ...]
    sweep_values: tuple[tuple[float, ...], ...]
    samples: int
    seed: int
    blocks_per_call: int
    quantiles: tuple[float, ...]
    # model uncertainty: the uncertain config keys and their outer draws (R, K); the sweep's
    # first dimension is then REALIZATION, whose values are the realisation indices
    uncertain: tuple[str, ...] = ()
    uncertain_values: np.ndarray | None = None

    @property
    def groups(self) -> int:
        """Independent groups of blocks the sampler's interval compares (qmc: its
        randomisations; 1 for most samplers)."""
        return self.static.sampler.groups(self.static)

    def group_of(self, blocks):
        """The sampler's group of each block index (int64; all 0 with one group)."""
        return self.static.sampler.group_of(self.static, blocks)

    @property
    def n_points(self) -> int:
        return int(np.prod([len(v) for v in self.sweep_values], dtype=np.int64)) if self.sweep_keys else 1

    @property
    def n_blocks(self) -> int:
        return -(-self.samples // self.static.block_size)

    @property
    def sweep_shape(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.sweep_values)


#: The leading sweep dimension of a run with ``uncertain`` inputs: one point per realisation.
REALIZATION = "realization"


def random_dimension(static: Static) -> int:
    """Random dimensions of one module: 1 per module-level, L per layer-level, L·C per
    channel-level active variation."""
    sizes = {"module": 1, "layer": static.layers, "channel": static.layers * static.channels}
    drift = [lv for c in static.conditions for _, lv, _ in c.drift]
    return sum(sizes[lv] for _, lv, _ in static.active) + sum(sizes[lv] for lv in drift)
