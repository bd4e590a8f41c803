"""Active alignment: the per-module compensator of an actively aligned assembly."""

from __future__ import annotations

import numpy as np
import pytest

import yieldmc
from yieldmc import validation

ENGINE = ["samples=8192", "engine.block_size=4096"]


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
