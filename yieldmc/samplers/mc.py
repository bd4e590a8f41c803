"""``sampler=mc``: plain Monte Carlo with the engine's pseudo-random normals."""

from __future__ import annotations

from yieldmc.engine.rng import block_key, standard_normals
from yieldmc.samplers.counting import CountingSampler


class MonteCarlo(CountingSampler):
    """Pseudo-random standard normals of block b from ``fold_in(key(seed), b)``
    (:func:`yieldmc.engine.rng.standard_normals`); Wilson interval."""

    description = "mc (pseudo-random)"
    supports_gradients = True

    def draws(self, seed, block, static, tables=None):
        return standard_normals(block_key(seed, block, static), static)


SAMPLER = MonteCarlo()
#: ``sampler=mc`` bound as :attr:`yieldmc.engine.problem.Static.sampler` holds it: the sampler
#: of the statics that programs with their own draws compile with (design-point search,
#: subset-simulation chains, a calibration's simulations), so that those programs are
#: compiled once whatever sampler the run uses.
PLAIN = SAMPLER.bind("mc")
