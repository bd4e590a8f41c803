"""The calibration figures of each shipped package: nominal loss per polarisation, PDL,
±1 dB lateral and vertical tolerance, the nominal channel's loss and the default
process's yield from −40 to 125 °C.

    python scripts/package_report.py                 # all packages, 100 000 modules per point
    python scripts/package_report.py --samples 20000 --package pwg50_12ch

The figures go into docs/physics.md ("Calibration of the packages"). The nominal numbers
come from :mod:`yieldmc.analysis.nominal` (no sampling); the yields from a temperature
sweep of ``yieldmc.run`` with common random numbers.
"""

from __future__ import annotations

import argparse
import math
import platform
import time

import numpy as np

import yieldmc
from yieldmc.analysis.nominal import nominal_losses, offset_tolerance_um

PACKAGES = ("pwg50_12ch", "pwg18_32ch", "pwg18_4x32ch")
TEMPERATURES_C = (-40.0, -20.0, 0.0, 25.0, 50.0, 70.0, 85.0, 105.0, 125.0)


def report(package: str, samples: int) -> dict:
    cfg = yieldmc.compose(overrides=[f"package={package}"])
    out = {"package": package}
    for pol in ("te", "tm"):
        loss = nominal_losses(cfg, polarization=pol)["loss"]
        out[f"loss_{pol}_db"] = float(loss.max())
        out[f"lateral_{pol}_um"] = offset_tolerance_um(cfg, quantity="dx_um", polarization=pol)
        out[f"vertical_{pol}_um"] = offset_tolerance_um(cfg, quantity="dy_um", polarization=pol, span_um=5.0)
    out["pdl_db"] = abs(out["loss_te_db"] - out["loss_tm_db"])
    dt = np.asarray(TEMPERATURES_C) - float(cfg.package.temperature_c)
    worst = nominal_losses(cfg, temperature_c=dt)["loss"]
    out["nominal_vs_t_db"] = worst.reshape(-1, len(dt)).max(axis=0).tolist()
    t0 = time.perf_counter()
    ds = yieldmc.run(yieldmc.compose(overrides=[
        f"package={package}", f"samples={samples}", "output.plots=false",
        f"sweep={{package.temperature_c:{list(TEMPERATURES_C)}}}"]))
    out["yield_vs_t"] = ds["yield"].values.tolist()
    out["yield_ci_vs_t"] = list(zip(ds.yield_ci_low.values.tolist(), ds.yield_ci_high.values.tolist()))
    out["seconds"] = time.perf_counter() - t0
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--package", action="append", choices=PACKAGES)
    args = parser.parse_args(argv)
    print(f"# yieldmc {yieldmc.__version__}, {platform.processor() or platform.machine()}, "
          f"{samples_line(args.samples)}")
    for package in args.package or PACKAGES:
        r = report(package, args.samples)

        print(f"\n## {package}")
        print(f"nominal loss TE {r['loss_te_db']:.3f} dB, TM {r['loss_tm_db']:.3f} dB, PDL {r['pdl_db']:.3f} dB "
              "(worst channel, incl. propagation)")
        print(f"+1 dB lateral tolerance TE {r['lateral_te_um'][0]:+.2f}/{r['lateral_te_um'][1]:+.2f} µm, "
              f"TM {r['lateral_tm_um'][0]:+.2f}/{r['lateral_tm_um'][1]:+.2f} µm")
        print(f"+1 dB vertical tolerance TE {r['vertical_te_um'][0]:+.2f}/{r['vertical_te_um'][1]:+.2f} µm, "
              f"TM {r['vertical_tm_um'][0]:+.2f}/{r['vertical_tm_um'][1]:+.2f} µm")
        print("| T (°C) | nominal worst loss (dB) | yield | 95 % interval |")
        print("|---|---|---|---|")
        for t, nl, y, (lo, hi) in zip(TEMPERATURES_C, r["nominal_vs_t_db"], r["yield_vs_t"], r["yield_ci_vs_t"]):
            print(f"| {t:g} | {nl:.3f} | {y:.4f} | [{lo:.4f}, {hi:.4f}] |")
        print(f"({r['seconds']:.1f} s for the sweep)")
    return 0


def samples_line(samples: int) -> str:
    return f"{samples} modules per temperature, default process"


if __name__ == "__main__":
    raise SystemExit(main())
