"""Validation table of the runtime bend loss against a 2-D leaky-mode solve (docs/physics.md, "Bending").

For the nominal PWG core (5.5 × 5.5 µm², n_core 1.5586, n_clad 1.55) at 1.31 and 1.55 µm
and a set of bend radii, prints one Markdown row per case: the loss of the fundamental
mode of the bent rectangular core from ``tests/reference_bend.py``
(``bent_rect_core_loss_db_per_cm``: 2-D scalar finite differences of the conformally
mapped bend with PMLs; nothing of ``yieldmc``) at steps 0.25 and 0.1833 µm, extrapolated
to zero step (Richardson, second order), against :func:`yieldmc.physics.bend_loss_db_per_cm`
(the runtime model) and :func:`yieldmc.physics.slab_bend_loss_db_per_cm` (Marcuse's slab
formula on the effective-index slab), both in float64. About 10 s per case on the 2-vCPU VM.

Usage::

    python scripts/bend_validation.py
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import reference_bend as ref  # noqa: E402

from yieldmc.physics import bend_loss_db_per_cm, slab_bend_loss_db_per_cm  # noqa: E402

CORE = dict(core_width_um=5.5, core_thickness_um=5.5, n_core=1.5586, n_clad=1.55)
CASES = {1.31: (3.0, 4.0, 5.0, 6.0, 8.0), 1.55: (4.0, 6.0, 8.0, 10.0)}
STEPS_UM = (0.25, 5.5 / 30)  # both divide the core's half width and thickness


def reference_db_per_cm(*, wavelength_um, radius_mm):
    """(coarse, fine, extrapolated) 2-D reference loss, dB/cm."""
    coarse, fine = (ref.bent_rect_core_loss_db_per_cm(**CORE, wavelength_um=wavelength_um,
                                                      radius_um=radius_mm * 1e3, step_um=h)[1]
                    for h in STEPS_UM)
    return coarse, fine, ref.richardson(coarse, fine, ratio=STEPS_UM[0] / STEPS_UM[1])


def main(argv=None) -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    print(f"| λ (µm) | R (mm) | 2-D reference h = {STEPS_UM[0]:.3g} / {STEPS_UM[1]:.3g} µm → 0 (dB/cm) "
          "| model | model / ref | slab formula | slab / ref |")
    print("|---|---|---|---|---|---|---|")
    for lam, radii in CASES.items():
        for r in radii:
            coarse, fine, extrap = reference_db_per_cm(wavelength_um=lam, radius_mm=r)
            model = float(bend_loss_db_per_cm(radius_mm=r, **CORE, wavelength_um=lam))
            slab = float(slab_bend_loss_db_per_cm(radius_mm=r, **CORE, wavelength_um=lam))
            print(f"| {lam:g} | {r:g} | {coarse:.4g} / {fine:.4g} → {extrap:.4g} | {model:.4g} | "
                  f"{model / extrap:.3f} | {slab:.4g} | {slab / extrap:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
