"""Randomised Sobol' points on the device (pure numpy/JAX; no xarray, zarr or Hydra).

The direction numbers are Joe & Kuo's (ACM TOMS 29:49 (2003), new-joe-kuo-6.21201, as
shipped by SciPy). Each randomisation r is a random linear matrix scramble of the
direction numbers plus a digital shift (Owen, "Scrambling Sobol' and Niederreiter–Xing
points", J. Complexity 14:466 (1998); Matoušek 1998), drawn on the host from
(seed, r) alone. On the device point i of a randomisation is the XOR of the scrambled
direction numbers of the set bits of i (natural order), XORed with the shift; its
first 2^m points are a (t, m, s)-net whatever m.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtri

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
