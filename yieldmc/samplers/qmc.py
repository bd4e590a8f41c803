"""``sampler=qmc``: randomised Sobol' points on the device (pure numpy/JAX; no xarray, zarr or Hydra).

The direction numbers are Joe & Kuo's (ACM TOMS 29:49 (2003), new-joe-kuo-6.21201, as
shipped by SciPy). Each randomisation r is a random linear matrix scramble of the
direction numbers plus a digital shift (Owen, "Scrambling Sobol' and Niederreiter–Xing
points", J. Complexity 14:466 (1998); Matoušek 1998), drawn on the host from
(seed, r) alone. On the device point i of a randomisation is the XOR of the scrambled
direction numbers of the set bits of i (natural order), XORed with the shift; its
first 2^m points are a (t, m, s)-net whatever m.

The sampler (:class:`QuasiMonteCarlo`): ``qmc.randomizations`` = R independent
randomisations of K blocks each (``samples`` = R·K·``engine.block_size``); block b
belongs to randomisation b // K and holds its points (b mod K)·B … (b mod K)·B + B − 1.
The yield is the mean of the R randomisation yields; the 95 % interval is Student-t
with R − 1 degrees of freedom over them.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtri
from scipy.stats import t as student_t

from yieldmc.engine.stats import clopper_pearson_interval
from yieldmc.engine.problem import random_dimension
from yieldmc.parts import Key
from yieldmc.samplers.base import Interval
from yieldmc.samplers.counting import CountingSampler

BITS = 32


def direction_numbers(dim: int) -> np.ndarray:
    """Unscrambled Sobol' direction numbers, shape (dim, 32), uint32 (bit 31 first digit)."""
    from scipy.stats import qmc

    if dim > 21201:
        raise ValueError(f"sampler: qmc supports at most 21201 random dimensions, got {dim}")
    return np.asarray(qmc.Sobol(dim, scramble=False, bits=BITS)._sv, dtype=np.uint32)


def scrambled_tables(dim: int, *, seed: int, randomizations: int) -> tuple[np.ndarray, np.ndarray]:
    """Per randomisation: LMS-scrambled direction numbers (R, dim, 32) and shifts (R, dim)."""
    v = direction_numbers(dim)
    # bit matrix of each direction number: digit j (0 = most significant) of v[d, k]
    digits = (v[:, :, None] >> (BITS - 1 - np.arange(BITS, dtype=np.uint32))) & 1  # (dim, 32 k, 32 j)
    tables, shifts = [], []
    for r in range(randomizations):
        rng = np.random.default_rng([seed, r, 0x51B0])
        lower = np.tril(rng.integers(0, 2, size=(dim, BITS, BITS), dtype=np.uint8), k=-1)
        lower[:, np.arange(BITS), np.arange(BITS)] = 1  # unit diagonal: invertible
        # scrambled digit i of v[d, k] = XOR_j L[d, i, j]·digit_j
        new_digits = np.einsum("dij,dkj->dki", lower.astype(np.int64), digits.astype(np.int64)) & 1
        weights = (np.uint64(1) << (BITS - 1 - np.arange(BITS, dtype=np.uint64)))
        tables.append((new_digits.astype(np.uint64) * weights).sum(axis=-1).astype(np.uint32))
        shifts.append(rng.integers(0, 2**BITS, size=dim, dtype=np.uint64).astype(np.uint32))
    return np.stack(tables), np.stack(shifts)


def sobol_uint(index, table, shift, *, nbits: int):
    """Sobol' integers of point indices ``index`` (B,) for one randomisation → (B, dim)."""
    return _sobol_uint_t(index, table, shift, nbits=nbits).T


def _sobol_uint_t(index, table, shift, *, nbits: int):
    """:func:`sobol_uint` transposed, (dim, B) (the engine's layout)."""
    index = index.astype(jnp.uint32)
    x = jnp.zeros((table.shape[0], index.shape[0]), jnp.uint32)
    for k in range(nbits):
        bit = ((index >> k) & 1).astype(bool)[None, :]
        x = x ^ jnp.where(bit, table[:, k, None], jnp.uint32(0))
    return x ^ shift[:, None]


def sobol_normals(index, table, shift, *, nbits: int, dtype):
    """Standard normals Φ⁻¹(u) of randomised Sobol' points, (dim, B); u never 0 or 1."""
    x = _sobol_uint_t(index, table, shift, nbits=nbits)
    mant = 24 if jnp.dtype(dtype) == jnp.float32 else 32
    u = ((x >> (BITS - mant)).astype(dtype) + 0.5) / (2.0**mant)
    return ndtri(u)


@dataclasses.dataclass(frozen=True)
class QmcSettings:
    """The settings of ``qmc`` (:attr:`QuasiMonteCarlo.settings` once bound)."""

    randomizations: int  # R: independent randomisations (the interval's groups)
    blocks_per_group: int  # K: blocks per randomisation
    nbits: int  # bits of the point index within a randomisation


class QuasiMonteCarlo(CountingSampler):
    """Randomised Sobol' points; Student-t interval over the randomisations."""

    description = "qmc (randomised Sobol')"
    keys = (Key("randomizations", "int", "", "[2, inf)", "independent Sobol' scramblings (the interval's groups)",
                default=16),)

    def configure(self, config, *, samples, block_size) -> QmcSettings:
        r = config["qmc"]["randomizations"]
        per = samples // r
        if samples % r or per % block_size:
            raise ValueError(
                f"samples: sampler=qmc needs samples = qmc.randomizations x k x engine.block_size "
                f"(here a multiple of {r * block_size}), got {samples}"
            )
        return QmcSettings(randomizations=r, blocks_per_group=per // block_size,
                           nbits=max(1, int(per - 1).bit_length()))

    def groups(self, static) -> int:
        return self.settings.randomizations

    def group_of(self, static, blocks):
        return np.asarray(blocks, dtype=np.int64) // self.settings.blocks_per_group

    def tables(self, problem):
        """(scrambled direction numbers (R, D, 32), shifts (R, D)) (:func:`scrambled_tables`)."""
        return scrambled_tables(random_dimension(problem.static), seed=problem.seed,
                                randomizations=self.settings.randomizations)

    def draws(self, seed, block, static, tables=None):
        q = self.settings
        b = static.block_size
        r = block // q.blocks_per_group
        local = block % q.blocks_per_group
        index = local * b + jnp.arange(b, dtype=jnp.uint32)
        z = sobol_normals(index, tables[0][r], tables[1][r], nbits=q.nbits, dtype=jnp.dtype(static.dtype))
        return jax.lax.optimization_barrier(z)

    def interval(self, problem, stats) -> Interval:
        """Student-t over the R randomisation yields; adds ``yield_randomization`` and ``yield_se``."""
        r = self.settings.randomizations
        sweep_dims, shape = list(problem.sweep_keys), problem.sweep_shape
        per = stats.n_pass_group / (stats.n_samples / r)  # (R, P): yield of each randomisation
        mean = per.mean(axis=0)
        se = per.std(axis=0, ddof=1) / np.sqrt(r)
        t = student_t.ppf(0.975, r - 1)
        low, high = np.clip(mean - t * se, 0, 1), np.clip(mean + t * se, 0, 1)
        # Few failures (or passes) pooled: the R randomisation yields are nearly all equal and
        # the t interval collapses (zero failures: [1, 1]). There the interval also covers the
        # exact Clopper–Pearson interval of the pooled count, as if the points were independent
        # (conservative: scrambled nets do not raise an indicator's variance much above MC).
        fails = stats.n_samples - stats.n_pass
        few = (np.minimum(fails, stats.n_pass) < FEW_EVENTS)
        cp_low, cp_high = clopper_pearson_interval(stats.n_pass, stats.n_samples)
        low = np.where(few, np.minimum(low, cp_low), low)
        high = np.where(few, np.maximum(high, cp_high), high)
        variables = {
            "yield_randomization": (["randomization", *sweep_dims], per.reshape((r, *shape)), {
                "units": "1", "long_name": "yield of each independent Sobol' randomisation"}),
            "yield_se": (sweep_dims, np.asarray(se).reshape(shape), {
                "units": "1", "long_name": "standard error of yield over the randomisations"}),
        }
        return Interval(low, high, f"Student-t ({r} randomisations)", variables)

    def interval_method(self, problem) -> str:
        r = self.settings.randomizations
        return (f"Student t (95 %) over {r} independent Sobol' randomisations; with fewer than "
                f"{FEW_EVENTS} pooled failures (or passes) widened to cover the Clopper-Pearson interval "
                "of the pooled count")


#: Pooled failures (or passes) below which the t interval is widened to Clopper–Pearson.
FEW_EVENTS = 10

SAMPLER = QuasiMonteCarlo()
