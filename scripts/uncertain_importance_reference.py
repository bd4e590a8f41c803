"""Reference first-order indices for tests/test_uncertainty.py, from SALib (optional extra).

The closed form: the yield of a butt-coupled module whose shared offsets are
dx ~ N(0, σx²) and dy ~ N(0, σy²) (:func:`yieldmc.validation.two_offset_yield`, one
quadrature), with three uncertain inputs

    process.dx_um.module.sigma ~ U[0.5, 1.5] µm,
    process.dy_um.module.sigma ~ U[0.1, 0.5] µm,
    spec.max_loss_db           ~ U[0.2, 0.4] dB.

SALib's Saltelli/Sobol' design (Saltelli et al., Comput. Phys. Commun. 181:259 (2010)) with
N base points gives the first-order indices S1 and their bootstrap 95 % half-widths; the
table is written to tests/data/uncertain_importance_reference.csv (committed; the test
suite does not need SALib).

    PYTHONPATH=$PWD /work/venv-modes/bin/python scripts/uncertain_importance_reference.py
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from yieldmc.validation import two_offset_yield

INPUTS = (
    ("process.dx_um.module.sigma", 0.5, 1.5),
    ("process.dy_um.module.sigma", 0.1, 0.5),
    ("spec.max_loss_db", 0.2, 0.4),
)
OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "uncertain_importance_reference.csv"


def model(row) -> float:
    """The closed-form yield at one point (σx, σy, spec)."""
    return two_offset_yield(row[0], row[1], max_loss_db=row[2])


def main() -> None:
    from SALib.analyze import sobol as analyze
    from SALib.sample import sobol as sample

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=int, default=2**12, help="SALib base sample N (a power of 2)")
    args = parser.parse_args()
    problem = {"num_vars": len(INPUTS), "names": [k for k, _, _ in INPUTS],
               "bounds": [[lo, hi] for _, lo, hi in INPUTS]}
    x = sample.sample(problem, args.base, calc_second_order=False, seed=20261207)
    y = np.array([model(r) for r in x])
    res = analyze.analyze(problem, y, calc_second_order=False, seed=20261207)
    with OUT.open("w", newline="") as f:
        f.write(f"# SALib {_version()} Sobol' first-order indices, N = {args.base} "
                f"({len(y)} evaluations of yieldmc.validation.two_offset_yield); "
                "written by scripts/uncertain_importance_reference.py\n")
        w = csv.writer(f)
        w.writerow(["key", "low", "high", "S1", "S1_conf95"])
        for (key, lo, hi), s1, conf in zip(INPUTS, res["S1"], res["S1_conf"]):
            w.writerow([key, lo, hi, f"{s1:.5f}", f"{conf:.5f}"])
    print(OUT.read_text())


def _version() -> str:
    from importlib.metadata import version

    return version("SALib")


if __name__ == "__main__":
    main()
