"""Streaming Monte-Carlo engine (DESIGN §6). Pure JAX + numpy: no xarray, zarr or Hydra.

Modules are processed in fixed-size blocks. Block ``b``'s random numbers come from
``fold_in(key(seed), b)`` alone, and each (quantity, level) draws from its own stream
folded in from that, so a result does not depend on how many blocks one call takes, on
the number of devices or jobs, or on which other variations are active. Every block is
reduced on the device to integer sufficient statistics (pass counts, fail counts, a
fixed-point loss sum, a loss histogram) that the host adds as int64: integer sums are
exact in any order, so the totals are bit-identical however the blocks are grouped.
All sweep points of a block use the same draws (common random numbers).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from yieldmc.model import channel_loss_db, nominal_values
from yieldmc.problem import Problem, Static
from yieldmc.variation import QUANTITIES, LEVELS, transform_normal

#: Loss values are clipped to [0, LOSS_CLIP_DB] before the fixed-point sum.
LOSS_CLIP_DB = 100.0
_LO_BITS = 10


@dataclasses.dataclass
class Stats:
    """Integer sufficient statistics over the sweep points (host side, int64).

    Attributes:
      n_samples: modules counted.
      n_pass: passing modules, shape (P,).
      fail: failing-channel counts, (P, L, C).
      loss_sum: sum of clipped losses in units of ``static.loss_unit_db``, (P, L, C).
      hist: loss histogram, (P, L, C, hist_bins + 1); the last bin is the overflow.
    """

    n_samples: int
    n_pass: np.ndarray
    fail: np.ndarray
    loss_sum: np.ndarray
    hist: np.ndarray

    @classmethod
    def zeros(cls, problem: Problem) -> "Stats":
        s = problem.static
        p, lc = problem.n_points, (s.layers, s.channels)
        z = functools.partial(np.zeros, dtype=np.int64)
        return cls(0, z((p,)), z((p, *lc)), z((p, *lc)), z((p, *lc, s.hist_bins + 1)))

    def __iadd__(self, other: "Stats") -> "Stats":
        self.n_samples += other.n_samples
        self.n_pass += other.n_pass
        self.fail += other.fail
        self.loss_sum += other.loss_sum
        self.hist += other.hist
        return self


def draw_normals(key, static: Static):
    """Standard-normal draws of one block for every active (quantity, level)."""
    b, nl, nc = static.block_size, static.layers, static.channels
    shapes = {"module": (b,), "layer": (b, nl), "channel": (b, nl, nc)}
    dtype = jnp.dtype(static.dtype)
    out = {}
    for q, lv, _ in static.active:
        k = jax.random.fold_in(jax.random.fold_in(key, QUANTITIES.index(q)), LEVELS.index(lv))
        out[(q, lv)] = jax.random.normal(k, shapes[lv], dtype=dtype)
    return out


def assemble_values(z, params, static: Static):
    """Quantity values (nominal + level draws) broadcastable to (B, L, C), one sweep point."""
    if static.copula:
        zc = jnp.stack([z[(q, "module")] for q in static.copula], axis=-1)
        chol = jnp.stack(
            [params[f"process.correlation.cholesky.{i}"] for i in range(len(static.copula))]
        )
        mixed = zc @ chol.T
        z = dict(z)
        for i, q in enumerate(static.copula):
            z[(q, "module")] = mixed[..., i]
    values = dict(nominal_values(params))
    expand = {"module": (slice(None), None, None), "layer": (slice(None), slice(None), None),
              "channel": (Ellipsis,)}
    for q, lv, dist in static.active:
        base = f"process.{q}.{lv}"
        draw = transform_normal(
            z[(q, lv)], distribution=dist, mean=params[f"{base}.mean"],
            sigma=params[f"{base}.sigma"], low=params[f"{base}.low"], high=params[f"{base}.high"],
        )
        values[q] = values[q] + draw[expand[lv]]
    return values


def _point_stats(z, params, valid, static: Static):
    loss = channel_loss_db(assemble_values(z, params, static), params, static)
    nl, nc, nbins = static.layers, static.channels, static.hist_bins
    w = valid.astype(jnp.int32)[:, None, None]
    fail = loss > params["spec.max_loss_db"]
    n_fail = jnp.sum(fail, axis=(1, 2))
    passed = n_fail <= params["spec.max_failed_channels"]
    q = jnp.round(jnp.clip(loss, 0.0, LOSS_CLIP_DB) / static.loss_unit_db).astype(jnp.int32)
    idx = jnp.clip(jnp.floor(loss * (nbins / static.hist_max_db)), 0, nbins).astype(jnp.int32)
    flat = (jnp.arange(nl * nc, dtype=jnp.int32).reshape(nl, nc) * (nbins + 1) + idx)
    hist = jnp.zeros(nl * nc * (nbins + 1), jnp.int32).at[flat.reshape(-1)].add(
        jnp.broadcast_to(w, flat.shape).reshape(-1)
    )
    return {
        "n_pass": jnp.sum(passed & valid, dtype=jnp.int32),
        "fail": jnp.sum(fail * w, axis=0, dtype=jnp.int32),
        "loss_hi": jnp.sum((q >> _LO_BITS) * w, axis=0, dtype=jnp.int32),
        "loss_lo": jnp.sum((q & ((1 << _LO_BITS) - 1)) * w, axis=0, dtype=jnp.int32),
        "hist": hist.reshape(nl, nc, nbins + 1),
    }


def block_stats(seed, block, n_valid, params, static: Static):
    """Integer statistics of one block for every sweep point (leading axis of ``params``).

    Args:
      seed: RNG seed (traced integer).
      block: block index (traced uint32); fixes the block's random numbers.
      n_valid: how many of the block's modules count (the first ``n_valid``; the last
        block of a run is partial, padding blocks count none).
      params: config path → array of shape (P, ...).
      static: :class:`Static`.
    """
    key = jax.random.fold_in(jax.random.key(seed, impl=static.rng_impl), block)
    z = draw_normals(key, static)
    valid = jnp.arange(static.block_size, dtype=jnp.int32) < n_valid
    return jax.lax.map(lambda p: _point_stats(z, p, valid, static), params)


def _device_stats(seed, blocks, n_valid, params, static: Static):
    """Sum of :func:`block_stats` over a device's blocks (a scan; int32 on the device)."""

    def body(acc, xs):
        s = block_stats(seed, *xs, params, static)
        return jax.tree.map(jnp.add, acc, s), None

    zero = jax.eval_shape(lambda: block_stats(seed, blocks[0], n_valid[0], params, static))
    zero = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), zero)
    acc, _ = jax.lax.scan(body, zero, (blocks, n_valid))
    return acc


@functools.lru_cache(maxsize=None)
def _compiled(static: Static, n_devices: int):
    """A jitted call over ``n_devices × k`` blocks, sharded over the local devices."""
    devices = np.asarray(jax.local_devices()[:n_devices])
    mesh = Mesh(devices, ("d",))
    spec = PartitionSpec("d")

    def per_device(seed, blocks, n_valid, params):
        out = _device_stats(seed, blocks[0], n_valid[0], params, static)
        return jax.tree.map(lambda a: a[None], out)

    sharded = jax.shard_map(
        per_device,
        mesh=mesh,
        in_specs=(PartitionSpec(), spec, spec, PartitionSpec()),
        out_specs=spec,
        check_vma=False,
    )
    return jax.jit(sharded)


def _to_host(out, static: Static) -> Stats:
    host = jax.tree.map(lambda a: np.asarray(a).astype(np.int64).sum(axis=0), out)
    loss_sum = (host["loss_hi"] << _LO_BITS) + host["loss_lo"]
    return Stats(0, host["n_pass"], host["fail"], loss_sum, host["hist"])


def device_params(problem: Problem):
    """The traced parameters as device arrays of the engine's dtype."""
    dtype = np.dtype(problem.static.dtype)
    return {k: jnp.asarray(v.astype(dtype)) for k, v in problem.params.items()}


def accumulate(problem: Problem, blocks, *, n_devices: int | None = None, params=None,
               on_call=None) -> Stats:
    """Statistics of the given blocks, streamed ``blocks_per_call`` per device per call.

    Args:
      problem: the validated :class:`Problem`.
      blocks: block indices to process (any order, any subset of ``range(n_blocks)``).
      n_devices: local devices to shard over (default: all).
      params: device parameters (default: :func:`device_params`).
      on_call: optional ``callback(block_indices, stats)`` after each call, e.g. to
        write a checkpoint; ``stats`` covers exactly ``block_indices``.

    Returns:
      :class:`Stats` summed over the blocks (int64).
    """
    static = problem.static
    if static.dtype == "float64" and not jax.config.jax_enable_x64:
        raise ValueError("engine.dtype: float64 needs JAX_ENABLE_X64=1 (or jax_enable_x64)")
    n_devices = n_devices or jax.local_device_count()
    params = device_params(problem) if params is None else params
    fn = _compiled(static, n_devices)
    per_call = n_devices * problem.blocks_per_call
    blocks = np.asarray(list(blocks), dtype=np.uint32)
    total = Stats.zeros(problem)
    seed = np.uint32(problem.seed)
    for start in range(0, len(blocks), per_call):
        chunk = blocks[start:start + per_call]
        pad = per_call - len(chunk)
        counted = np.clip(
            problem.samples - chunk.astype(np.int64) * static.block_size, 0, static.block_size
        ).astype(np.int32)
        b = np.concatenate([chunk, np.zeros(pad, np.uint32)]).reshape(n_devices, -1)
        n = np.concatenate([counted, np.zeros(pad, np.int32)]).reshape(n_devices, -1)
        stats = _to_host(fn(seed, b, n, params), static)
        stats.n_samples = int(counted.sum())
        if on_call is not None:
            on_call(chunk, stats)
        total += stats
    return total


def compile_count(problem: Problem, n_devices: int | None = None) -> int:
    """Number of compiled executables behind the engine's call for this problem."""
    return _compiled(problem.static, n_devices or jax.local_device_count())._cache_size()
