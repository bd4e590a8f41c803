"""A sampler plugin from outside the package: ``sampler=antithetic`` (test suite only).

Imported through ``YIELDMC_PLUGINS=toy_sampler`` (with this directory on ``PYTHONPATH``),
or by a test directly. It is one class and one :func:`register_sampler` call — what a
new sampler costs — and runs through the unchanged engine, store, results and command.

Plain Monte Carlo with antithetic pairs: in every block the first B/2 modules take the
engine's pseudo-random normals z of (seed, block) (drawn as a block of B/2) and the
second B/2 take −z. Each module's draw is still N(0, I), so the yield estimate n_pass/N is
unbiased. Interval: Wilson on the N/2 pairs with p̂ = n_pass/N, i.e. of the
pair-averaged pass indicator. That average lies in [0, 1] with variance
(Var I + Cov(I, I'))/2 <= p(1 − p), so the interval is conservative whatever the
correlation within a pair (exact for a pass region symmetric under u → −u, where the
pair members agree; plain Wilson on N would then be too narrow by √2).

Its one setting, ``antithetic.pairs`` (declared with its default in :attr:`Antithetic.keys`,
so the schema checks it like any key and the composed configuration holds it:
``antithetic.pairs=false``): false draws the second half-block independently (plain Monte
Carlo, Wilson on N).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from yieldmc.engine.rng import block_key, standard_normals
from yieldmc.parts import Key
from yieldmc.samplers import Interval, register_sampler
from yieldmc.samplers.counting import CountingSampler
from yieldmc.engine.stats import wilson_interval


class Antithetic(CountingSampler):
    """Plain Monte Carlo whose second half-block is the negated first half."""

    description = "antithetic (toy: mc with antithetic pairs)"
    supports_gradients = False  # the gradient estimators assume independent modules
    keys = (Key("pairs", "bool", "", "", "true: the second half-block is the negated first; false: independent",
                default=True),)

    def configure(self, config, *, samples, block_size):
        if block_size % 2:
            raise ValueError(f"engine.block_size: sampler=antithetic needs an even block size, got {block_size}")
        return config["antithetic"]["pairs"]

    def draws(self, seed, block, static, tables=None):
        half = dataclasses.replace(static, block_size=static.block_size // 2)
        z = standard_normals(block_key(seed, block, half), half)  # (D, B/2)
        if self.settings:
            return jnp.concatenate([z, -z], axis=1)
        other = standard_normals(jax.random.fold_in(block_key(seed, block, half), 1), half)  # independent of z
        return jnp.concatenate([z, other], axis=1)

    def interval(self, problem, stats) -> Interval:
        if not self.settings:
            low, high = wilson_interval(stats.n_pass, stats.n_samples)
            return Interval(low, high, "Wilson")
        low, high = wilson_interval(stats.n_pass / 2, stats.n_samples / 2)
        return Interval(low, high, "Wilson (antithetic pairs)")

    def interval_method(self, problem) -> str:
        if not self.settings:
            return "Wilson score, 95 %, over the N modules (antithetic.pairs=false: independent draws)"
        return "Wilson score, 95 %, over the N/2 antithetic pairs (pair-averaged pass indicator)"


SAMPLER = register_sampler("antithetic", Antithetic())
