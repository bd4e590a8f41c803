"""A new output variable is one row of the statistics table (docs/architecture.md,
"Adding an output variable"): a row added here, in the test alone, runs through the
unchanged engine, store and result Dataset, and its variable matches an independent
computation from the same draws."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from yieldmc.engine import blocks, statistics
from yieldmc.io import store as zstore
from yieldmc.io.cli import execute
from yieldmc.io.config import compose
from yieldmc.job import parse_job

# 3 blocks of 1024 modules, the last partial (452); two sweep points
RUN = ["samples=2500", "seed=3", "engine.block_size=1024", "process=none", "process.dy_um.channel.sigma=0.3",
       "sweep={process.dx_um.module.sigma:[0.6,1.2]}", "output.plots=false", "output.name=s.zarr"]


def _worst_loss(f: statistics.Figures):
    """Largest clipped channel loss of the block's counted modules, units of loss_unit_db."""
    q = jnp.round(jnp.clip(f.loss, 0.0, statistics.LOSS_CLIP_DB) / f.static.loss_unit_db).astype(jnp.int32)
    return jnp.max(jnp.where(f.valid, q, 0), axis=-1)


LOSS_MAX = statistics.Statistic(
    "loss_max", "largest clipped channel loss over the modules, units of static.loss_unit_db",
    lambda s: (s.n_conditions, s.layers, s.channels), _worst_loss, combine=np.maximum,
    check=lambda v, n, _: np.all(v >= 0),
    variables=lambda problem, stats, interval: {"loss_db_max": (
        ("layer", "channel"), stats.loss_max[:, 0] * problem.static.loss_unit_db,
        {"units": "dB", "long_name": "largest channel loss over the modules"})})


@pytest.fixture
def extended_table(monkeypatch):
    """The table with LOSS_MAX appended; the compiled programs are traced afresh."""
    monkeypatch.setattr(statistics, "STATISTICS", (*statistics.STATISTICS, LOSS_MAX))
    blocks._compiled.cache_clear()
    yield
    blocks._compiled.cache_clear()


def _largest_losses(problem) -> np.ndarray:
    """Independent reference: the largest channel loss (P, L, C) over the counted modules,
    from each block's draws and the model's losses, in NumPy."""
    s = problem.static
    losses = jax.jit(lambda u, params: blocks.condition_parts(blocks.split_draws(u, s), params, s)["loss"])
    out = np.zeros((problem.n_points, s.layers, s.channels))
    for b, n in zip(range(problem.n_blocks), blocks.block_counts(problem, range(problem.n_blocks))):
        u = blocks.draw_block(np.uint32(problem.seed), np.uint32(b), s)
        for p in range(problem.n_points):
            params = {k: jnp.asarray(v[p].astype(s.dtype)) for k, v in problem.params.items()}
            loss = np.asarray(losses(u, params))[0, :, :, :n]  # (L, C, n): the counted modules
            out[p] = np.maximum(out[p], np.clip(loss, 0.0, statistics.LOSS_CLIP_DB).max(axis=-1))
    return out


@pytest.mark.slow
def test_a_new_row_becomes_a_stored_checked_result_variable(extended_table, tmp_path):
    out = tmp_path / "out"
    cfg = compose([*RUN, f"output.dir={out}"])
    assert execute(cfg, tmp_path) in (0, None)
    job = parse_job(cfg, check_output=False)
    problem = job.problem
    root = zstore.open_store(out / "s.zarr", job, overwrite=False)
    assert root["blocks/loss_max"].shape == (problem.n_blocks, problem.n_points, *LOSS_MAX.shape(problem.static))
    assert zstore.damaged_blocks(root, problem) == []  # sealed with the new array, its check passes
    ds = zstore.open_result(out / "s.zarr")  # verified: complete, digest matches
    got = ds.loss_db_max
    assert got.dims == ("process.dx_um.module.sigma", "layer", "channel") and got.attrs["units"] == "dB"
    expected = _largest_losses(problem).reshape(got.shape)
    assert np.all(expected > 0.1)  # losses of a few dB: the comparison is not vacuous
    # the statistic rounds to loss_unit_db: ≤ half a unit, plus float32 rounding of loss/unit (< 1e-3 unit)
    np.testing.assert_allclose(got.values, expected, rtol=0, atol=0.501 * problem.static.loss_unit_db)
    assert not np.array_equal(got.values[0], got.values[1])  # the sweep points are told apart
