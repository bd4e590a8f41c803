"""Regression pins: results of fixed configurations and seeds must stay bit-identical.

A pin is re-recorded only by a change that alters results on purpose (new physics, a new
proposal of ``sampler=is``); the git log says which and why.

These are not references for correctness (the engine tests compare with closed forms);
they catch any refactoring that changes a single draw, a reduction order or a default.
The float64 value of ``failure_probability`` is compared exactly too: the IS estimate is
a deterministic function of the stored per-block statistics.
"""

from __future__ import annotations

import numpy as np
import pytest

import yieldmc

PINS = {
    "default": (["samples=65536"], [51109], None),
    "butt_sweep": (["package/coupler=butt", "samples=32768",
                    "sweep={process.dx_um.module.sigma:[0.5,1.0],spec.max_loss_db:[1.0,2.0]}"],
                   [28427, 32654, 18360, 28505], None),
    "pwg18_4x32ch_copula_m2": (["package=pwg18_4x32ch", "samples=16384", "spec.max_failed_channels=2",
                                "process.correlation.quantities=[dx_um,dy_um]",
                                "process.correlation.matrix=[[1,0.5],[0.5,1]]"], [13823], None),
    "landau_zener_active": (["package/coupler=adiabatic_linear", "package.coupler.model=landau_zener",
                             "alignment=active", "samples=8192",
                             "engine.block_size=4096"], [8192], None),
    "qmc": (["sampler=qmc", "samples=65536", "engine.block_size=4096"], [51178], None),
    "is": (["package/coupler=adiabatic_linear", "sampler=is", "samples=16384", "engine.block_size=8192",
            "spec.max_loss_db=3.0"], [6528],
           0.002273245365358889),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(PINS))
def test_results_are_pinned(name):
    overrides, n_pass, failure_probability = PINS[name]
    ds = yieldmc.run(yieldmc.compose(overrides))
    assert np.asarray(ds.n_pass.values).ravel().tolist() == n_pass
    if failure_probability is not None:
        assert float(ds.failure_probability) == failure_probability
