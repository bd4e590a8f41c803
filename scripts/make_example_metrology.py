"""Write yieldmc/examples/placement_dx_um.csv: a small measured-looking placement metrology file.

400 lateral placement offsets dx (µm) of a PWG flex on the chip, as a line with two
bonders would measure them: 85 % from bonder A (bias +0.10 µm, σ 0.40 µm), 15 % from
bonder B (bias +0.60 µm, σ 0.80 µm), rounded to the metrology's 1 nm. Not Gaussian on
purpose (skewed, heavier right tail): the case for ``distribution: empirical``. Use it as

    yieldmc process.dx_um.module.distribution=empirical \\
            process.dx_um.module.values_file=examples/placement_dx_um.csv

Reproducible (fixed seed):

    python scripts/make_example_metrology.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

TARGET = Path(__file__).resolve().parent.parent / "yieldmc" / "examples" / "placement_dx_um.csv"


def placement_dx_um(n: int = 400, seed: int = 20241216) -> np.ndarray:
    """The offsets: a two-bonder mixture, rounded to 1 nm."""
    rng = np.random.default_rng(seed)
    bonder_b = rng.random(n) < 0.15
    dx = np.where(bonder_b, rng.normal(0.60, 0.80, n), rng.normal(0.10, 0.40, n))
    return np.round(dx, 3)


def main() -> None:
    dx = placement_dx_um()
    lines = ["# lateral placement offset of the PWG flex, µm (yieldmc: process.dx_um.<level>.values_file)",
             "# synthetic: written by scripts/make_example_metrology.py (two-bonder mixture, seed 20241216)",
             "dx_um"] + [f"{x:.3f}" for x in dx]
    TARGET.parent.mkdir(exist_ok=True)
    TARGET.write_text("\n".join(lines) + "\n")
    print(f"{TARGET}: {dx.size} values, mean {dx.mean():.3f} µm, std {dx.std(ddof=1):.3f} µm")


if __name__ == "__main__":
    main()
