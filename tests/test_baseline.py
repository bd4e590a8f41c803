"""The engine vs an independent second implementation (scripts/numpy_baseline.py).

The NumPy baseline was written from the specification of the physics (docs/physics.md)
alone, with its own random numbers; the two must agree statistically (4.5 combined
binomial standard errors on the yield) on the configurations below, which between them
exercise both couplers, stacked layers, roll, stack accumulation, the copula and the
thermal index shift.

The baseline implements the butt coupler and the linear-sweep adiabatic one
(``package/coupler=adiabatic_linear``) and takes the PWG modes from the package (a fitted
model tested against the mode-solver table on its own); the Si-strip coupler is checked
against an ODE solve and closed forms in tests/test_si_taper.py.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

import yieldmc
from yieldmc.io.config import to_container

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import numpy_baseline  # noqa: E402

N = 40_000
LIN = "package/coupler=adiabatic_linear"
CASES = {
    "default": [LIN],
    "butt": ["package/coupler=butt"],
    "stack_roll": ["package=pwg18_4x32ch", "process.roll_mrad.module.sigma=3",
                   "process.layer_thickness_um.layer.sigma=1"],
    "hot_45C": [LIN, "package.temperature_c=45"],
    "copula": [LIN, "process.correlation.quantities=[dx_um,pitch_ppm]",
               "process.correlation.matrix=[[1,0.7],[0.7,1]]", "process.pitch_ppm.module.sigma=2000"],
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_engine_agrees_with_numpy_baseline(name):
    overrides = CASES[name]
    ds = yieldmc.run(yieldmc.compose(overrides + [f"samples={N}", "engine.block_size=8192"]))
    ref = numpy_baseline.simulate(to_container(yieldmc.compose(overrides)), samples=N, seed=7)
    y1, y2 = float(ds["yield"]), ref["n_pass"] / ref["n_samples"]
    se = math.sqrt(y1 * (1 - y1) / N + y2 * (1 - y2) / N)
    assert abs(y1 - y2) <= 4.5 * max(se, 1 / N), (y1, y2, se)
    fail2 = ref["channel_fail"] / N
    fail1 = ds.channel_fail_fraction.values
    se_c = np.sqrt(fail1 * (1 - fail1) / N + fail2 * (1 - fail2) / N)
    assert np.all(np.abs(fail1 - fail2) <= 4.5 * np.maximum(se_c, 1 / N) + 1e-12)
