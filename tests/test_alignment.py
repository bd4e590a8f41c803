"""Active alignment: the per-module compensator of an actively aligned assembly."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import yieldmc
from yieldmc import validation
from yieldmc.engine.alignment import align

ENGINE = ["samples=8192", "engine.block_size=4096"]


@pytest.mark.parametrize("kind", ["sum_log", "worst"])
def test_newton_reaches_the_minimum_of_a_coupled_convex_objective(kind):
    """One channel whose loss is exp(dᵀAd), d = s − p_b, A with a cross term: convex, with
    its minimum at each module's own p_b (2.2 µm away: beyond one trust-region step). The
    Levenberg term 10⁻³·tr H makes the last steps converge linearly, by about
    10⁻³·tr H/λ_min ≈ 4·10⁻³ per step: 1e-7 after 12 steps."""
    p = jnp.array([[0.7, -1.5, 2.2], [-0.4, 0.9, 0.0]])
    a = jnp.array([[1.0, 0.3], [0.3, 0.5]])

    def loss_fn(s):  # (2, B) → (L, C, B)
        d = s - p
        return jnp.exp(jnp.einsum("ib,ij,jb->b", d, a, d))[None, None, :]

    s = align(loss_fn, 3, kind=kind, steps=12, dtype=jnp.float64)
    np.testing.assert_allclose(np.asarray(s), np.asarray(p), atol=1e-7)


@pytest.mark.slow
@pytest.mark.parametrize("objective", ["worst", "sum_log"])
def test_shared_offset_is_removed_exactly(objective):
    problem = validation.module_offset(sigma_um=1.0)
    passive = yieldmc.run(yieldmc.compose(list(problem.overrides) + ENGINE))
    active = yieldmc.run(yieldmc.compose(list(problem.overrides) + ENGINE + [
        "alignment=active", f"alignment.objective={objective}"]))
    assert float(passive["yield"]) < 0.7
    assert float(active["yield"]) == 1.0
    np.testing.assert_allclose(active.loss_db_mean.values, 0.0, atol=2e-4)


@pytest.mark.slow
def test_active_beats_passive_with_pitch_error():
    overrides = list(validation.module_offset(sigma_um=0.5).overrides) + ENGINE + [
        "process.pitch_ppm.module.sigma=3000"]
    passive = yieldmc.run(yieldmc.compose(overrides))
    active = yieldmc.run(yieldmc.compose(overrides + ["alignment=active"]))
    assert float(active.yield_ci_low) > float(passive.yield_ci_high)
    # the compensator cannot undo a scale error: outer channels still fail first
    fail = active.channel_fail_fraction.values[0]
    assert fail[0] > fail[5] and fail[-1] > fail[6]
