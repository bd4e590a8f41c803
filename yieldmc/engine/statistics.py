"""The per-block statistics of the count samplers: one table (pure JAX + numpy; no xarray, zarr or Hydra).

Each row of :data:`STATISTICS` (a :class:`Statistic`) declares one statistic once: its
shape per sweep point (a function of :class:`~yieldmc.engine.problem.Static`), its value
for one block on the device (from the block's :class:`Figures`), the int32 arrays the
store keeps of it (one chunk per block), how blocks combine, the self-check of a stored
block and the result variables it becomes. The engine (:mod:`yieldmc.engine.blocks`),
the store (:mod:`yieldmc.io.store`) and the result Dataset (:mod:`yieldmc.io.results`)
read the table and nothing else, so a new output variable is one row here
(docs/architecture.md, "Adding an output variable").

Every block is reduced to integers that the host combines as int64 (sums, minima,
maxima): exact in any order, so the totals are bit-identical however the blocks are
grouped, and a block's statistics can be stored on their own.
"""

from __future__ import annotations

import collections
import dataclasses
import types
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from yieldmc.engine.conditions import condition_figures, condition_variables, failed_allowance, stress_indices
from yieldmc.engine.model import PARTS
from yieldmc.engine.stats import quantiles_from_histogram, wilson_interval

#: Loss values are clipped to [0, LOSS_CLIP_DB] before the fixed-point sum.
LOSS_CLIP_DB = 100.0
_LO_BITS = 10
#: yield_vs_spec: spec values S + j·Δ for j = −SPEC_STEPS … SPEC_STEPS, Δ the loss
#: histogram's bin width (``engine.hist_max_db / engine.hist_bins``, 0.01 dB by default).
SPEC_STEPS = 200


class Figures(collections.namedtuple("Figures", "static params loss pdl figure valid weight fail passed "
                                                "envelope fail_only others_pass change parts")):
    """What the statistics of one block at one sweep point are computed from (device
    arrays; K conditions, L layers, C channels, B modules).

    Attributes:
      static, params: the problem's :class:`~yieldmc.engine.problem.Static` and this
        sweep point's parameters.
      loss, pdl: channel loss and polarisation-dependent loss, dB, (K, L, C, B).
      figure: the pass figure (:func:`yieldmc.engine.model.pass_figure_db`), (K, L, C, B).
      valid, weight: which modules count, (B,), as bool and as int32.
      fail: channels whose figure exceeds ``spec.max_loss_db``, (K, L, C, B).
      passed: modules passing under each condition, (K, B).
      envelope, fail_only, others_pass: :func:`envelope_outcomes`.
      change: after − initial loss of each stress condition, dB, (S, L, C, B) (S = 0
        without stress conditions).
      parts: the loss parts (:data:`yieldmc.engine.model.PARTS`), dB, (4, K, L, C, B).
    """


def envelope_outcomes(passed):
    """From per-condition module passes (K, B) to the envelope's: ``(passes every
    condition (B,), fails this condition and no other (K, B), passes every other
    condition (K, B))``."""
    failed = ~passed
    n_failed = jnp.sum(failed, axis=0, dtype=jnp.int32)
    others_failed = n_failed[None] - failed.astype(jnp.int32)
    return n_failed == 0, failed & (others_failed == 0), others_failed == 0


def figures(parts: dict, params, valid, static) -> Figures:
    """The :class:`Figures` of a block from its channel loss parts (K, L, C, B)
    (:func:`yieldmc.engine.blocks.condition_parts`)."""
    figure = condition_figures(parts, params, static.conditions)
    fail = figure > params["spec.max_loss_db"]
    allowed = failed_allowance(params, static.conditions)
    passed = jnp.sum(fail, axis=(1, 2), dtype=jnp.int32) <= (allowed if jnp.ndim(allowed) == 0 else allowed[:, None])
    change = parts.get("change")
    if change is None:
        change = jnp.zeros((0, *parts["loss"].shape[1:]), parts["loss"].dtype)
    return Figures(static, params, parts["loss"], parts["pdl"], figure, valid, valid.astype(jnp.int32), fail,
                   passed, *envelope_outcomes(passed), change, jnp.stack([parts["parts"][k] for k in PARTS]))


@dataclasses.dataclass(frozen=True)
class Statistic:
    """One per-block statistic: a row of :data:`STATISTICS`.

    Attributes:
      name: the total's name (an attribute of :class:`Stats`).
      doc: what it counts.
      shape: ``shape(static)`` → its shape at one sweep point (the store's per-block
        arrays are (P, *shape), P sweep points).
      block: ``block(figures)`` → its value for one block at one sweep point (traced),
        int32; a tuple, one per stored array, where there are several.
      arrays: the names of the store's per-block arrays (default: ``(name,)``); their
        order in the table is the order of a block's seal.
      decode: the int64 value from the stored arrays (default: the one array).
      combine: the ufunc that combines two blocks (``np.add``, ``np.maximum``,
        ``np.minimum``); every block of the run is combined once.
      by_group: also keep the total per interval group of the sampler as
        ``<name>_group`` (G, P, *shape) (:meth:`yieldmc.samplers.Sampler.group_of`).
      check: ``check(value, n, values)`` → whether a stored block is plausible (``n``
        modules counted in it, ``values`` every statistic of the block by name, int64).
      variables: ``variables(problem, stats, interval)`` → result variables, name →
        (dims, values, attrs): dims after the sweep dimensions, values with a leading
        axis of P sweep points (``interval``: :meth:`yieldmc.samplers.Sampler.interval`).
      dtype: of the stored arrays.
    """

    name: str
    doc: str
    shape: Callable
    block: Callable
    arrays: tuple = ()
    decode: Callable | None = None
    combine: np.ufunc = np.add
    by_group: bool = False
    check: Callable | None = None
    variables: Callable | None = None
    dtype: str = "int32"

    @property
    def stored(self) -> tuple:
        """The names of its per-block arrays in the store."""
        return self.arrays or (self.name,)

    def value(self, values: dict) -> np.ndarray:
        """Its int64 value from its stored arrays (any leading axes)."""
        arrays = [np.asarray(values[a]).astype(np.int64) for a in self.stored]
        return arrays[0] if self.decode is None else self.decode(*arrays)


_IDENTITY = {np.add: 0, np.maximum: np.iinfo(np.int64).min, np.minimum: np.iinfo(np.int64).max}


# --------------------------------------------------------------------------- the rows' parts
def _channel_shape(static) -> tuple:
    return (static.n_conditions, static.layers, static.channels)


def _per_channel(static, values) -> tuple:
    """(dims, values) of a (P, K, L, C) result: the condition dimension only under conditions."""
    if static.conditions:
        return ("condition", "layer", "channel"), values
    return ("layer", "channel"), values[:, 0]


def _limbs(x, f: Figures):
    """Block sums of ``x`` (…, B), clipped to [0, LOSS_CLIP_DB] and rounded to units of
    ``static.loss_unit_db``, as two int32 limbs (high, low bits): each limb's block sum
    fits int32."""
    q = jnp.round(jnp.clip(x, 0.0, LOSS_CLIP_DB) / f.static.loss_unit_db).astype(jnp.int32)
    return (jnp.sum((q >> _LO_BITS) * f.weight, axis=-1, dtype=jnp.int32),
            jnp.sum((q & ((1 << _LO_BITS) - 1)) * f.weight, axis=-1, dtype=jnp.int32))


def _signed_limbs(x, f: Figures):
    """:func:`_limbs` of a signed ``x``, clipped to [−LOSS_CLIP_DB, LOSS_CLIP_DB] (the
    high limb floors, the low one stays in [0, 2^10): :func:`_from_limbs` is exact)."""
    q = jnp.round(jnp.clip(x, -LOSS_CLIP_DB, LOSS_CLIP_DB) / f.static.loss_unit_db).astype(jnp.int32)
    return (jnp.sum((q >> _LO_BITS) * f.weight, axis=-1, dtype=jnp.int32),
            jnp.sum((q & ((1 << _LO_BITS) - 1)) * f.weight, axis=-1, dtype=jnp.int32))


def _from_limbs(high, low):
    return (high << _LO_BITS) + low


def _histogram(index, weight, bins: int):
    """Weighted counts of bin indices ``index`` (…, B) in [0, bins): (…, bins)."""
    lead = index.shape[:-1]
    cells = int(np.prod(lead, dtype=np.int64))
    flat = jnp.arange(cells, dtype=jnp.int32).reshape(*lead, 1) * bins + index
    return jnp.zeros(cells * bins, jnp.int32).at[flat.reshape(-1)].add(
        jnp.broadcast_to(weight, flat.shape).reshape(-1)).reshape(*lead, bins)


def _loss_histogram(f: Figures):
    """Loss histogram (K, L, C, hist_bins + 1); the last bin is the overflow."""
    nbins = f.static.hist_bins
    idx = jnp.clip(jnp.floor(f.loss * (nbins / f.static.hist_max_db)), 0, nbins).astype(jnp.int32)
    return _histogram(idx, f.weight, nbins + 1)


def _stress_shape(static) -> tuple:
    return (len(stress_indices(static.conditions)), static.layers, static.channels)


def _change_histogram(f: Figures):
    """Histogram of the signed loss change (S, L, C, hist_bins + 1): bins of the loss
    histogram's width over [−hist_max_db/2, hist_max_db/2) (a change below it counts in the
    first bin), the last bin the overflow."""
    nbins, half = f.static.hist_bins, 0.5 * f.static.hist_max_db
    idx = jnp.clip(jnp.floor((f.change + half) * (nbins / f.static.hist_max_db)), 0, nbins).astype(jnp.int32)
    return _histogram(idx, f.weight, nbins + 1)


def _per_condition(static, values):
    """(P, S, …) over the stress conditions → (P, K, …) over every condition (NaN under
    an operating one)."""
    out = np.full((values.shape[0], static.n_conditions, *values.shape[2:]), np.nan)
    out[:, list(stress_indices(static.conditions))] = values
    return out


def _change_variables(problem, stats, interval) -> dict:
    """``loss_change_db_mean`` (condition, layer, channel) and ``loss_change_db_quantile``
    (condition, quantile, layer, channel): the signed change after − initial of each
    channel's loss under each stress condition (NaN under an operating one); absent
    without stress conditions."""
    s = problem.static
    if not stress_indices(s.conditions):
        return {}
    width, half = s.hist_max_db / s.hist_bins, 0.5 * s.hist_max_db
    mean = _per_condition(s, stats.change_sum * s.loss_unit_db / stats.n_samples)
    q = quantiles_from_histogram(stats.change_hist, problem.quantiles, bin_width_db=width) - half  # (Q, P, S, L, C)
    q = _per_condition(s, np.moveaxis(q, 0, 2))  # (P, K, Q, L, C)
    what = "after − initial loss of the channel under a stress condition, read at its readout environment"
    return {
        "loss_change_db_mean": (("condition", "layer", "channel"), mean, {
            "units": "dB", "long_name": f"mean {what} (NaN: an operating condition; each change clipped at "
                                        f"±{LOSS_CLIP_DB:g} dB)"}),
        "loss_change_db_quantile": (("condition", "quantile", "layer", "channel"), q, {
            "units": "dB", "long_name": f"quantile of the {what} (resolution {width:g} dB; NaN: an operating "
                                        "condition)"}),
    }


def _part_variables(problem, stats, interval) -> dict:
    """``loss_part_db_mean`` (part, [condition,] layer, channel): the mean of each part of
    the channel loss (:data:`yieldmc.engine.model.PARTS`; those of the worst polarisation
    and lane), which add up to ``loss_db_mean``."""
    s = problem.static
    mean = stats.part_sum * s.loss_unit_db / stats.n_samples  # (P, 4, K, L, C)
    dims = ("part", "condition", "layer", "channel") if s.conditions else ("part", "layer", "channel")
    return {"loss_part_db_mean": (dims, mean if s.conditions else mean[:, :, 0], {
        "units": "dB", "long_name": f"mean part of the channel loss (each clipped at {LOSS_CLIP_DB:g} dB): "
                                    "coupler, propagation, bend, Fresnel"})}


def spec_figures(figure, max_failed):
    """Each module's figure of merit against the spec: the (m+1)-th largest channel figure
    under each condition (K, B), and over the envelope (B,), the largest of those — the
    module passes at spec S iff its figure ≤ S.

    Args:
      figure: the pass figures (K, L, C, B) (:func:`pass_figure_db`).
      max_failed: m, traced (a sort along the channels only when m > 0); or one per
        condition, (K,) (:func:`yieldmc.engine.conditions.failed_allowance`).
    """
    flat = figure.reshape(figure.shape[0], -1, figure.shape[-1])  # (K, L·C, B)
    if jnp.ndim(max_failed) == 1:  # one allowance per condition
        ordered = jnp.sort(flat, axis=1)
        index = jnp.clip(flat.shape[1] - 1 - max_failed, 0, flat.shape[1] - 1).astype(jnp.int32)
        per_condition = jnp.take_along_axis(ordered, index[:, None, None], axis=1)[:, 0]
        return per_condition, jnp.max(per_condition, axis=0)

    def kth(_):
        ordered = jnp.sort(flat, axis=1)  # ascending: the (m+1)-th largest is at L·C − 1 − m
        index = jnp.clip(flat.shape[1] - 1 - max_failed, 0, flat.shape[1] - 1).astype(jnp.int32)
        return jax.lax.dynamic_index_in_dim(ordered, index, axis=1, keepdims=False)
    per_condition = jax.lax.cond(max_failed == 0, lambda _: jnp.max(flat, axis=1), kth, None)
    return per_condition, jnp.max(per_condition, axis=0)


def spec_rows(static) -> int:
    """Rows of the spec histogram: the envelope, then each condition when there are several."""
    return 1 if static.n_conditions == 1 else 1 + static.n_conditions


def _spec_histogram(f: Figures):
    """Counts of the modules' spec figures on the grid S + j·Δ (:data:`SPEC_STEPS`):
    bin i (0 … 2J+1) holds the figures F with ⌈(F − S)/Δ⌉ + J = i (clipped), so the
    cumulative count up to bin j is the number of modules with F ≤ S + (j − J)·Δ — at
    j = J exactly the passing count (F ≤ S ⟺ F − S ≤ 0). Rows: the envelope, then each
    condition when there are several. Shape (1 [+ K], 2J + 2)."""
    per_condition, envelope = spec_figures(f.figure, failed_allowance(f.params, f.static.conditions))
    rows = envelope[None] if f.static.n_conditions == 1 else jnp.concatenate([envelope[None], per_condition])
    width = f.static.hist_max_db / f.static.hist_bins
    steps = jnp.clip((rows - f.params["spec.max_loss_db"]) / width, -SPEC_STEPS - 1.0, SPEC_STEPS + 1.0)
    index = jnp.clip(jnp.ceil(steps).astype(jnp.int32) + SPEC_STEPS, 0, 2 * SPEC_STEPS + 1)
    return _histogram(index, f.weight, 2 * SPEC_STEPS + 2)


def spec_grid_db(problem) -> np.ndarray | None:
    """The ``spec_db`` coordinate: S + j·Δ, j = −J … J (None when ``spec.max_loss_db`` is
    swept or uncertain: the grid would differ from point to point)."""
    if "spec.max_loss_db" in problem.sweep_keys or "spec.max_loss_db" in problem.uncertain:
        return None
    s = problem.static
    spec = float(problem.params["spec.max_loss_db"][0])
    return spec + np.arange(-SPEC_STEPS, SPEC_STEPS + 1) * (s.hist_max_db / s.hist_bins)


def _yield_variables(problem, stats, interval) -> dict:
    n = stats.n_samples
    envelope = " under every condition (envelope yield)" if problem.static.conditions else ""
    return {
        "yield": ((), stats.n_pass / n, {
            "units": "1", "long_name": "fraction of modules that meet the loss spec" + envelope}),
        "yield_ci_low": ((), interval.low, {
            "units": "1", "long_name": f"yield, lower end of the 95 % {interval.label} interval"}),
        "yield_ci_high": ((), interval.high, {
            "units": "1", "long_name": f"yield, upper end of the 95 % {interval.label} interval"}),
        "n_pass": ((), stats.n_pass, {"units": "1", "long_name": "number of passing modules"}),
        "n_samples": ((), np.full(problem.n_points, n, dtype=np.int64), {
            "units": "1", "long_name": "number of module samples"}),
    }


def _mean_db(total: str, name: str, long_name: str):
    """Result variable ``name``: the per-module mean of the fixed-point sum ``total``, dB."""
    def variables(problem, stats, interval) -> dict:
        s = problem.static
        mean = getattr(stats, total) * s.loss_unit_db / stats.n_samples
        return {name: (*_per_channel(s, mean), {"units": "dB", "long_name": long_name})}
    return variables


def _quantile_variables(problem, stats, interval) -> dict:
    s = problem.static
    hist_width = s.hist_max_db / s.hist_bins
    q = np.moveaxis(quantiles_from_histogram(stats.hist, problem.quantiles, bin_width_db=hist_width), 0, 1)
    if s.conditions:  # (P, K, quantile, L, C): the condition leads the channel dims
        dims, q = ("condition", "quantile", "layer", "channel"), np.moveaxis(q, 2, 1)
    else:
        dims, q = ("quantile", "layer", "channel"), q[:, :, 0]
    return {"loss_db_quantile": (dims, q, {
        "units": "dB", "long_name": f"channel loss quantile (resolution {hist_width:g} dB)"})}


def _spec_variables(problem, stats, interval) -> dict:
    """``yield_vs_spec`` (spec_db) with its Wilson interval, and ``condition_yield_vs_spec``
    (condition, spec_db) under several conditions: the cumulative counts of the modules'
    spec figures (the (m+1)-th worst channel's pass figure, the largest over the conditions
    for the envelope). At the configured spec it equals ``yield`` exactly. None when
    ``spec.max_loss_db`` is swept (:func:`spec_grid_db`)."""
    if spec_grid_db(problem) is None:
        return {}
    n = stats.n_samples
    passing = np.cumsum(stats.spec_hist, axis=-1)[..., : 2 * SPEC_STEPS + 1]  # (P, rows, S)
    low, high = wilson_interval(passing[:, 0], n)
    what = {"units": "1", "spec_grid": "S + j * bin width of the loss histogram",
            "long_name": "yield if the loss spec were spec_db (same modules; the failed-channel "
                         "allowance and any crosstalk spec unchanged)"}
    data = {
        "yield_vs_spec": (("spec_db",), passing[:, 0] / n, what),
        "yield_vs_spec_ci_low": (("spec_db",), low, {
            "units": "1", "long_name": "yield_vs_spec, lower end of the 95 % Wilson interval"}),
        "yield_vs_spec_ci_high": (("spec_db",), high, {
            "units": "1", "long_name": "yield_vs_spec, upper end of the 95 % Wilson interval"}),
    }
    if passing.shape[1] > 1:
        data["condition_yield_vs_spec"] = (("condition", "spec_db"), passing[:, 1:] / n, {
            **what, "long_name": "yield under this condition alone if the loss spec were spec_db"})
    return data


def _spec_ok(spec, n, values) -> bool:
    """Every module once; the envelope at the configured spec is ``n_pass``."""
    return bool(np.all(spec.sum(axis=-1) == n)
                and np.array_equal(spec[..., 0, :SPEC_STEPS + 1].sum(axis=-1), values["n_pass"]))


#: The per-block statistics of the count samplers, in the order of a block's seal.
STATISTICS = (
    Statistic("n_pass", "modules passing under every condition (the envelope)", lambda s: (),
              lambda f: jnp.sum(f.envelope & f.valid, dtype=jnp.int32), by_group=True,
              check=lambda v, n, _: np.all(v <= n), variables=_yield_variables),
    Statistic("fail", "failing-channel counts", _channel_shape,
              lambda f: jnp.sum(f.fail * f.weight, axis=-1, dtype=jnp.int32), check=lambda v, n, _: np.all(v <= n),
              variables=lambda problem, stats, interval: {"channel_fail_fraction": (
                  *_per_channel(problem.static, stats.fail / stats.n_samples),
                  {"units": "1", "long_name": "fraction of modules in which the channel fails"})}),
    Statistic("loss_sum", "sum of clipped channel losses, units of static.loss_unit_db", _channel_shape,
              lambda f: _limbs(f.loss, f), arrays=("loss_hi", "loss_lo"), decode=_from_limbs,
              variables=_mean_db("loss_sum", "loss_db_mean",
                                 f"mean channel loss (each loss clipped at {LOSS_CLIP_DB:g} dB)")),
    Statistic("hist", "channel loss histogram; the last bin is the overflow",
              lambda s: (*_channel_shape(s), s.hist_bins + 1), _loss_histogram,
              check=lambda v, n, _: np.all(v.sum(axis=-1) == n), variables=_quantile_variables),
    Statistic("pdl_sum", "sum of clipped polarisation-dependent losses, units of static.loss_unit_db",
              _channel_shape, lambda f: _limbs(f.pdl, f), arrays=("pdl_hi", "pdl_lo"), decode=_from_limbs,
              variables=_mean_db("pdl_sum", "pdl_db_mean", "mean polarisation-dependent loss |loss_TE − loss_TM| "
                                                           "(0 when one polarisation is evaluated)")),
    Statistic("conditions", "per condition: modules passing under it, failing under it and under no "
                            "other, passing under every other", lambda s: (s.n_conditions, 3),
              lambda f: jnp.sum(jnp.stack([f.passed, f.fail_only, f.others_pass], axis=-1) * f.weight[:, None],
                                axis=1, dtype=jnp.int32),
              variables=lambda problem, stats, interval: condition_variables(
                  problem.static, [], lambda a: a, stats.conditions / stats.n_samples)),
    Statistic("spec_hist", "the modules' spec figures on the grid S + j·Δ: the envelope, then each "
                           "condition when there are several", lambda s: (spec_rows(s), 2 * SPEC_STEPS + 2),
              _spec_histogram, check=_spec_ok, variables=_spec_variables),
    Statistic("change_sum", "per stress condition: sum of the clipped signed loss changes after − initial, "
                            "units of static.loss_unit_db", _stress_shape, lambda f: _signed_limbs(f.change, f),
              arrays=("change_hi", "change_lo"), decode=_from_limbs, variables=_change_variables),
    Statistic("change_hist", "per stress condition: histogram of the signed loss change; the last bin is the "
                             "overflow", lambda s: (*_stress_shape(s), s.hist_bins + 1), _change_histogram,
              check=lambda v, n, _: np.all(v.sum(axis=-1) == n)),
    Statistic("part_sum", "per part of the loss (coupler, propagation, bend, Fresnel): sum of the clipped "
                          "parts, units of static.loss_unit_db", lambda s: (len(PARTS), *_channel_shape(s)),
              lambda f: _limbs(f.parts, f), arrays=("part_hi", "part_lo"), decode=_from_limbs,
              variables=_part_variables),
)


class Stats(types.SimpleNamespace):
    """Totals of the statistics over blocks (host side, int64): ``n_samples`` (modules
    counted) and one attribute per row of :data:`STATISTICS`, (P, *row.shape(static));
    a row kept by group also ``<name>_group``, (G, P, …), G the sampler's interval groups."""


def block_values(f: Figures) -> dict:
    """Every stored array of one block at one sweep point (traced), by name."""
    out = {}
    for row in STATISTICS:
        value = row.block(f)
        out.update(zip(row.stored, value if len(row.stored) > 1 else (value,)))
    return out


def block_shapes(problem) -> dict:
    """Array name → (per-block shape, dtype) of the stored statistics, in the table's order."""
    return {a: ((problem.n_points, *row.shape(problem.static)), row.dtype) for row in STATISTICS for a in row.stored}


def block_counts(problem, blocks) -> np.ndarray:
    """Modules that count in each block (the last block of a run may be partial)."""
    b = np.asarray(blocks, dtype=np.int64)
    return np.clip(problem.samples - b * problem.static.block_size, 0, problem.static.block_size)


def block_ok(values: dict, n: int) -> bool:
    """Self-check of one stored block (its arrays by name, ``n`` modules counted in it):
    every row's ``check``, e.g. the histogram sums to ``n``, no count exceeds it."""
    decoded = {row.name: row.value(values) for row in STATISTICS}
    return all(row.check is None or bool(row.check(decoded[row.name], n, decoded)) for row in STATISTICS)


def combine_blocks(problem, slices) -> Stats:
    """The totals of per-block statistics, slices ``(block_indices (k,), {array: (k, P, …)})``
    covering each block at most once, combined row by row as int64 (exact in any order
    and grouping); ``n_samples`` counts the modules of those blocks."""
    totals = {}
    for row in STATISTICS:
        shape = (problem.n_points, *row.shape(problem.static))
        totals[row.name] = np.full(shape, _IDENTITY[row.combine], np.int64)
        if row.by_group:
            totals[f"{row.name}_group"] = np.full((problem.groups, *shape), _IDENTITY[row.combine], np.int64)
    n = 0
    for indices, values in slices:
        indices = np.asarray(indices, dtype=np.int64)
        n += int(block_counts(problem, indices).sum())
        for row in STATISTICS:
            v = row.value(values)
            totals[row.name] = row.combine(totals[row.name], row.combine.reduce(v, axis=0))
            if row.by_group:
                row.combine.at(totals[f"{row.name}_group"], problem.group_of(indices), v)
    return Stats(n_samples=n, **totals)
