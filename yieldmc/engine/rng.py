"""The engine's random numbers: a block's key from (seed, block) alone, and its standard
normals — Threefry-2x32 in counter mode with Box–Muller for float32 (written out so that
XLA:CPU fuses it), ``jax.random.normal`` otherwise. Pure JAX.

References: Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as 1, 2, 3",
SC'11 (Threefry); Box & Muller, Ann. Math. Stat. 29:610 (1958).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from yieldmc.engine.problem import Static, random_dimension
from yieldmc.physics._fastmath import sincos


def block_key(seed, block, static: Static):
    """The random key of block ``block``: derived from (seed, block) alone."""
    return jax.random.fold_in(jax.random.key(seed, impl=static.rng_impl), block)


def standard_normals(key, static: Static):
    """One block's standard normals in standard-normal space, shape (D, B).

    A single random-number kernel is several times faster than one per variation on a
    CPU; the draws of a block depend on (seed, block) and on the set of active variations.
    Row d holds random dimension d of every module of the block (the module axis is last,
    see :mod:`yieldmc.engine.model`).
    """
    shape = (random_dimension(static), static.block_size)
    if static.rng_impl == "threefry2x32" and static.dtype == "float32":
        z = threefry_normals(key, shape)
    else:
        z = jax.random.normal(key, shape, dtype=jnp.dtype(static.dtype))
    # materialise the draws once: otherwise XLA may fuse (and so recompute) the
    # random-number kernel into every consumer of every row
    return jax.lax.optimization_barrier(z)


#: Threefry-2x32 rotation constants, rounds 0-3 and 4-7 (Salmon et al. 2011, Table 4).
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def threefry2x32(k0, k1, x0, x1):
    """Threefry-2x32 with 20 rounds (Salmon et al., SC'11), written out as straight-line
    uint32 arithmetic: bit for bit ``jax.extend.random.threefry_2x32`` (tests/test_engine.py),
    which XLA:CPU lowers as a rolled loop over the rounds with a pass over the arrays each;
    written out, the 20 rounds fuse into elementwise kernels (the hash alone 1.4–1.6× faster
    on the 2-vCPU VM; see :func:`_polar_pairs`, docs/benchmarks.md). ``k0, k1``: the key
    words; ``x0, x1``: the counter words (uint32 arrays of one shape). Returns the two
    output words."""
    ks = (k0, k1, k0 ^ k1 ^ np.uint32(0x1BD11BDA))
    x0, x1 = x0 + ks[0], x1 + ks[1]
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x0 = x0 + x1
            x1 = (x1 << np.uint32(r)) | (x1 >> np.uint32(32 - r))
            x1 = x1 ^ x0
        x0, x1 = x0 + ks[(i + 1) % 3], x1 + ks[(i + 2) % 3] + np.uint32(i + 1)
    return x0, x1


def _polar_pairs(k0, k1, half):
    """Box–Muller's radius r and angle θ of pairs i < ``half`` from the two output words of
    ``threefry2x32(k, (i, i + half))`` (see :func:`threefry_normals`), as arrays in memory.

    XLA:CPU removes optimisation barriers, and the written-out hash would otherwise be
    fused into each consumer of Box–Muller's concatenation — recomputed per output element
    and left scalar, 10× slower. A loop's operands are materialised, so r and θ pass
    through a two-trip loop whose body rewrites one element with its own value (``i < 0``
    never holds): the hash stays in top-level kernels, split over the cores (in a loop
    body it would run on one), and the concatenation only evaluates sin/cos.
    Measured in docs/benchmarks.md."""
    c = jax.lax.iota(jnp.uint32, half)
    bits0, bits1 = threefry2x32(k0, k1, c, c + np.uint32(half))
    u1 = ((bits0 >> 8).astype(jnp.float32) + 1.0) * np.float32(2.0**-24)
    theta = (bits1 >> 8).astype(jnp.float32) * np.float32(2.0 * np.pi * 2.0**-24) - np.float32(np.pi)
    r = jnp.sqrt(-2.0 * jnp.log(u1))

    def keep(i, arrays):  # a select, not an addition of 0: −0.0 keeps its sign
        return tuple(jax.lax.dynamic_update_slice(a, jnp.where(i < 0, a[:1] + 1, a[:1]), (0,)) for a in arrays)

    return jax.lax.fori_loop(0, 2, keep, (r, theta))


def threefry_normals(key, shape):
    """float32 standard normals: Threefry-2x32 in counter mode + Box–Muller.

    The n = prod(shape) (rounded up to even) 32-bit words are ``threefry2x32(key, (i, i + n/2))`` for
    i < n/2 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11), both
    output words of every hash used (``jax.random.normal`` under
    ``jax_threefry_partitionable`` XORs them into one). Word i gives u1 = (k + 1)/2^24
    ∈ (0, 1], word i + n/2 gives θ = 2π·k'/2^24 − π (k, k' their top 24 bits), and
    Box–Muller (Box & Muller, Ann. Math. Stat. 29:610 (1958)) makes the independent
    pair r·cos θ, r·sin θ with r = sqrt(−2 ln u1) ≤ 5.77: elements i and i + n/2 of the
    row-major result. sin/cos are the float32 polynomials of ``physics._fastmath``.
    The 32-bit counter limits one call to fewer than 2^32 numbers.
    """
    size = int(np.prod(shape))
    n = size + size % 2  # an odd size draws one more and drops it
    if n >= 2**32:  # build_problem rejects such blocks (engine.block_size) before this
        raise ValueError(f"threefry_normals: shape {shape} needs >= 2^32 numbers, beyond the 32-bit counter")
    data = jax.random.key_data(key)
    r, theta = _polar_pairs(data[0], data[1], n // 2)
    sin, cos = sincos(theta)
    return jnp.concatenate([r * cos, r * sin])[:size].reshape(shape)
