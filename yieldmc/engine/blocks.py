"""Streaming Monte-Carlo engine (docs/architecture.md). Pure JAX + numpy: no xarray, zarr or Hydra.

Modules are processed in fixed-size blocks, one compiled program per block, dealt
round-robin over the local devices. Block ``b``'s random numbers come from
``fold_in(key(seed), b)`` alone (one (D, B) draw, D the random dimensions of the active
variations), so a result does not depend on how many blocks one call takes or on the
number of devices or jobs. Every block is
reduced on the device to the integer statistics of :data:`yieldmc.engine.statistics.STATISTICS`
(pass counts, fail counts, a fixed-point loss sum, a loss histogram …) that the host
combines as int64: exact in any order, so the totals are bit-identical however the blocks
are grouped, and a block's statistics can be stored on their own (the zarr checkpoint).
All sweep points of a block use the same draws (common random numbers).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from yieldmc.engine.alignment import align
from yieldmc.engine.conditions import apply_stacked, condition_figures, readouts, stress_indices
from yieldmc.engine.conditions import stacked as stacked_conditions
from yieldmc.engine.model import channel_loss_db, channel_loss_parts, nominal_values
from yieldmc.engine.problem import Problem, Static
from yieldmc.engine.statistics import Stats, block_counts, block_values, combine_blocks, figures
from yieldmc.engine.variation import variation_params

def draw_block(seed, block, static: Static, tables=None):
    """Standard normals of one block, (D, B), as the problem's sampler draws them
    (:meth:`yieldmc.samplers.Sampler.draws`; ``tables`` from
    :meth:`~yieldmc.samplers.Sampler.tables`); :func:`split_draws` gives each
    (quantity, level) its rows."""
    return static.sampler.draws(seed, block, static, tables)


def split_draws(u, static: Static) -> dict:
    """(D, B) standard-normal space → the per-(quantity, level) draws of a block:
    module (B,), layer (L, 1, B), channel (L, C, B), keyed ``(quantity, level)``; then
    each condition's drift variations, keyed ``(condition, quantity, level)``."""
    b, nl, nc = u.shape[-1], static.layers, static.channels
    shapes = {"module": (b,), "layer": (nl, 1, b), "channel": (nl, nc, b)}
    rows = [((q, lv), lv) for q, lv, _ in static.active]
    rows += [((c.name, q, lv), lv) for c in static.conditions for q, lv, _ in c.drift]
    out, row = {}, 0
    for key, lv in rows:
        height = int(np.prod(shapes[lv][:-1], dtype=np.int64))
        out[key] = u[row:row + height].reshape(shapes[lv])
        row += height
    return out


def assemble_values(z, params, static: Static):
    """Quantity values (nominal + level draws) broadcastable to (L, C, B), one sweep point."""
    if static.copula:
        zc = jnp.stack([z[(q, "module")] for q in static.copula], axis=-1)
        chol = jnp.stack(
            [params[f"process.correlation.cholesky.{i}"] for i in range(len(static.copula))]
        )
        mixed = zc @ chol.T
        z = dict(z)
        for i, q in enumerate(static.copula):
            z[(q, "module")] = mixed[..., i]
    values = dict(nominal_values(params, static))
    for q, lv, dist in static.active:
        draw = dist.transform(z[(q, lv)], **variation_params(params, q, lv))
        values[q] = values[q] + draw
    return values


def condition_parts(z, params, static: Static) -> dict:
    """Channel loss, PDL, crosstalk and the loss parts (:func:`yieldmc.engine.model.channel_loss_parts`),
    each (K, L, C, B), of a block at one sweep point under each of its K conditions
    (:mod:`yieldmc.engine.conditions`; K = 1, the package's own environment, without
    conditions); crosstalk None when not checked. With stress conditions also ``"change"``
    (S, L, C, B): after − initial loss (the loss the spec limits) of each stress condition,
    in order (+inf where either readout is outside the model's domain).

    The draws and the quantity values are formed once; each condition replaces the
    environment nominals it sets and adds its drift draws. A stress condition is evaluated
    at its readout environment with its drift (after); its initial readout
    (:func:`yieldmc.engine.conditions.readouts`, shared by the stress conditions read in the
    same environment) without. Active alignment happens once,
    at assembly (the package's own environment), and the module keeps that position under
    every condition. Conditions that evaluate the same polarisations run as one body under
    ``jax.lax.map`` (K× the cost of one; unrolled, XLA:CPU ran two conditions 6× slower
    than one, docs/benchmarks.md); otherwise they are unrolled.
    """
    values = assemble_values(z, params, static)
    shape = (static.layers, static.channels, static.block_size)

    def parts(v, polarizations=None):
        out = channel_loss_parts(v, params, static, polarizations=polarizations)
        return jax.tree.map(lambda x: jnp.broadcast_to(x, shape), {k: x for k, x in out.items() if x is not None})

    if static.alignment == "active":
        values = _aligned(values, params, static, shape)
    evaluated = static.conditions + readouts(static.conditions)
    if not static.conditions:
        out = jax.tree.map(lambda a: a[None], parts(values))
    elif len({c.polarizations for c in evaluated}) == 1:
        nominal = nominal_values(params, static)
        xs = stacked_conditions(evaluated, z, params, nominal)
        pols = evaluated[0].polarizations
        xs["index"] = jnp.arange(len(evaluated))  # a leading axis even when nothing else varies
        out = jax.lax.map(lambda x: parts(apply_stacked(values, x, nominal), pols), xs)
    else:
        nominal = nominal_values(params, static)
        xs = stacked_conditions(evaluated, z, params, nominal)
        each = [parts(apply_stacked(values, jax.tree.map(lambda a, k=k: a[k], xs), nominal), c.polarizations)
                for k, c in enumerate(evaluated)]
        out = jax.tree.map(lambda *e: jnp.stack(e), *each)
    k = len(static.conditions)
    if len(evaluated) > k:
        scoped = out.get("scoped", out["loss"])
        change = jnp.stack([scoped[i] - scoped[k + static.conditions[i].readout]
                            for i in stress_indices(static.conditions)])
        out = jax.tree.map(lambda a: a[:k], out)
        out["change"] = jnp.where(jnp.isnan(change), jnp.inf, change)
    out.setdefault("crosstalk", None)
    return out


def _aligned(values, params, static: Static, shape):
    """``values`` with the active-alignment shift (which minimises the pass figure,
    :func:`yieldmc.engine.model.channel_loss_db`) added to dx and dy."""
    def moved(s):
        v = dict(values)
        v["dx_um"] = v["dx_um"] + s[0]
        v["dy_um"] = v["dy_um"] + s[1]
        return v

    s = align(lambda s: jnp.broadcast_to(channel_loss_db(moved(s), params, static), shape),
              static.block_size, kind=static.alignment_objective,
              steps=static.alignment_steps, dtype=jnp.dtype(static.dtype))
    return moved(jax.lax.stop_gradient(s))


def module_losses(z, params, static: Static):
    """The pass figure (K, L, C, B) of a block at one sweep point under each of its K
    conditions (K = 1 without conditions) — the channel loss (or the loss ``spec.scope``
    names), with the crosstalk spec, a stress condition's change limit and a condition's
    own limits folded in (:func:`yieldmc.engine.conditions.condition_figures`): a channel
    fails iff its figure exceeds ``spec.max_loss_db`` — after active alignment."""
    return condition_figures(condition_parts(z, params, static), params, static.conditions)


def block_stats(seed, block, n_valid, params, tables, static: Static):
    """Integer statistics of one block for every sweep point (leading axis of ``params``).

    Args:
      seed: RNG seed (traced integer).
      block: block index (traced uint32); fixes the block's random numbers.
      n_valid: how many of the block's modules count (the first ``n_valid``; the last
        block of a run is partial, padding blocks count none).
      params: config path → array of shape (P, ...).
      tables: the sampler's tables (:meth:`yieldmc.samplers.Sampler.tables`), or None.
      static: :class:`Static`.
    """
    return block_stats_from_draws(draw_block(seed, block, static, tables), n_valid, params, static)


def block_stats_from_draws(u, n_valid, params, static: Static):
    """:func:`block_stats` given the block's draws ``u`` (D, B) from :func:`draw_block`."""
    z = split_draws(u, static)
    valid = jnp.arange(static.block_size, dtype=jnp.int32) < n_valid
    return jax.lax.map(lambda p: block_values(figures(condition_parts(z, p, static), p, valid, static)), params)


class _TwoStage:
    """draw_block and the statistics as two compiled programs, called like
    :func:`block_stats`: on XLA's CPU backend about 8 % faster than one program holding
    both (2× faster with a modules-first array layout)."""

    def __init__(self, static: Static):
        self.draw = jax.jit(functools.partial(draw_block, static=static))
        self.stats = jax.jit(functools.partial(block_stats_from_draws, static=static))

    def __call__(self, seed, block, n_valid, params, tables):
        return self.stats(self.draw(seed, block, tables=tables), n_valid, params)

    def _cache_size(self) -> int:
        return self.draw._cache_size() + self.stats._cache_size()


def count_program(static: Static) -> _TwoStage:
    """The one-block program of the integer count statistics (:func:`block_stats`), with
    the sampler's draws: what count-based samplers return from ``program``."""
    return _TwoStage(static)


@functools.lru_cache(maxsize=None)
def _compiled(static: Static):
    """The compiled one-block function (:meth:`yieldmc.samplers.Sampler.program`), one per
    ``static``: a sweep, a second run or another seed reuses it.

    Every block, on every device and whatever the grouping, runs these same programs, so
    its floating-point results (and hence the integer statistics) are bit-identical.
    """
    return static.sampler.program(static)


def _host_block(out) -> dict:
    """One block's device statistics as host int32 arrays."""
    return {k: np.asarray(v) for k, v in out.items()}


def device_params(problem: Problem, device=None):
    """The traced parameters as arrays of the engine's dtype on ``device``."""
    dtype = np.dtype(problem.static.dtype)
    return {k: jax.device_put(v.astype(dtype), device) for k, v in problem.params.items()}


def sync_slices(n: int, size: int, *, first: int = 1):
    """Slices of ``range(n)`` fetched to the host together: ``first`` items twice, then ``size``.

    The first sync holds the compilation and the second one times the blocks alone, so a
    first estimate of the run's time (:class:`yieldmc.io.progress.Progress`) comes after two
    blocks rather than after two full groups; the grouping does not change any result.
    """
    start, k = 0, 0
    while start < n:
        step = first if k < 2 else size
        yield slice(start, min(start + max(step, 1), n))
        start, k = start + max(step, 1), k + 1


def iterate_blocks(problem: Problem, blocks, *, n_devices: int | None = None):
    """Yield ``(block_indices, per_block_stats)`` every ``blocks_per_call`` rounds.

    Blocks are dealt round-robin to the local devices and dispatched asynchronously; at
    each sync the host pulls every block's statistics (the sampler's
    :meth:`~yieldmc.samplers.Sampler.block_shapes`), stacked on a leading block axis. The
    first two syncs take one round each (:func:`sync_slices`).
    """
    static = problem.static
    if static.dtype == "float64" and not jax.config.jax_enable_x64:
        raise ValueError("engine.dtype: float64 needs JAX_ENABLE_X64=1 (or jax_enable_x64)")
    devices = jax.local_devices()[: n_devices or jax.local_device_count()]
    one_block = _compiled(static)
    params = [device_params(problem, d) for d in devices]
    seeds = [jax.device_put(np.uint32(problem.seed), d) for d in devices]
    host_tables = static.sampler.tables(problem)  # device-independent: put on every device
    tables = [None if host_tables is None else jax.device_put(host_tables, d) for d in devices]
    blocks = np.asarray(list(blocks), dtype=np.int64)
    per_sync = len(devices) * problem.blocks_per_call
    for part in sync_slices(len(blocks), per_sync, first=len(devices)):
        chunk = blocks[part]
        outs = []
        for i, (b, n) in enumerate(zip(chunk, block_counts(problem, chunk))):
            k = i % len(devices)
            args = jax.device_put((np.uint32(b), np.int32(n)), devices[k])
            outs.append(one_block(seeds[k], *args, params[k], tables[k]))
        host = [_host_block(o) for o in outs]
        yield chunk, {k: np.stack([h[k] for h in host]) for k in host[0]}


def accumulate(problem: Problem, blocks, *, n_devices: int | None = None) -> Stats:
    """Statistics of the given blocks (any subset of ``range(n_blocks)``), summed as int64.

    Args:
      problem: the validated :class:`Problem`, its sampler one of integer counts
        (:attr:`yieldmc.samplers.Sampler.counts`: mc, qmc).
      blocks: block indices to process, in any order.
      n_devices: local devices to use (default: all).
    """
    if not problem.static.sampler.counts:
        raise ValueError(f"sampler: accumulate() sums integer counts; sampler={problem.static.sampler.name} "
                         "keeps other per-block statistics (use yieldmc.run)")
    return combine_blocks(problem, iterate_blocks(problem, blocks, n_devices=n_devices))


def compile_count(problem: Problem) -> int:
    """Number of compiled executables behind the engine's block function for this problem."""
    return _compiled(problem.static)._cache_size()
