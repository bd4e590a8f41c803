"""PNG plots of a result Dataset (edge: matplotlib, Agg backend)."""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

CHANNEL_DIMS = ("quantile", "layer", "channel")


def sweep_dims(ds: xr.Dataset) -> list[str]:
    return [d for d in ds["yield"].dims if d not in CHANNEL_DIMS]


def plot_yield_map(ds: xr.Dataset, path: Path, *, target_yield: float = 0.9) -> Path | None:
    """1 swept key: yield vs value with its 95 % band; 2 keys: heatmap + target contour."""
    dims = sweep_dims(ds)
    if len(dims) not in (1, 2):
        return None
    fig, ax = plt.subplots(figsize=(6, 4.5), constrained_layout=True)
    if len(dims) == 1:
        x = ds[dims[0]].values
        ax.plot(x, ds["yield"].values, "o-", label="yield")
        ax.fill_between(x, ds.yield_ci_low.values, ds.yield_ci_high.values, alpha=0.3,
                        label="95 % interval")
        ax.axhline(target_yield, color="grey", ls="--", lw=1, label=f"target {target_yield:g}")
        ax.set_xlabel(dims[0])
        ax.set_ylabel("yield")
        ax.set_ylim(-0.02, 1.02)
        ax.legend()
    else:
        y = ds["yield"].transpose(dims[1], dims[0])
        xs, ys = ds[dims[0]].values, ds[dims[1]].values
        mesh = ax.pcolormesh(xs, ys, y.values, shading="nearest", vmin=0, vmax=1, cmap="viridis")
        fig.colorbar(mesh, ax=ax, label="yield")
        if len(xs) > 1 and len(ys) > 1 and y.min() < target_yield < y.max():
            cs = ax.contour(xs, ys, y.values, levels=[target_yield], colors="w")
            ax.clabel(cs, fmt={target_yield: f"Y = {target_yield:g}"})
        ax.set_xlabel(dims[0])
        ax.set_ylabel(dims[1])
    ax.set_title(f"yield map ({int(ds.n_samples.max())} modules per point)")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_fail_map(ds: xr.Dataset, path: Path) -> Path:
    """Per-channel fail fraction, layer × channel, at the sweep point of lowest yield."""
    dims = sweep_dims(ds)
    fail = ds.channel_fail_fraction
    where = ""
    if dims:
        idx = np.unravel_index(int(np.argmin(ds["yield"].values)), ds["yield"].shape)
        sel = dict(zip(dims, idx))
        fail = fail.isel(sel)
        where = " at " + ", ".join(f"{d}={ds[d].values[i]:g}" for d, i in sel.items())
    fig, ax = plt.subplots(figsize=(max(6, 0.25 * fail.sizes["channel"]), 1.5 + 0.6 * fail.sizes["layer"]),
                           constrained_layout=True)
    nl, nc = fail.sizes["layer"], fail.sizes["channel"]
    mesh = ax.imshow(fail.transpose("layer", "channel").values, origin="lower", aspect="auto",
                     cmap="magma_r", interpolation="nearest",
                     extent=(-0.5, nc - 0.5, -0.5, nl - 0.5))
    fig.colorbar(mesh, ax=ax, label="fail fraction")
    ax.set_xlabel("channel")
    ax.set_ylabel("layer")
    ax.set_yticks(fail.layer.values)
    ax.set_title("channel fail fraction" + (f"\n{where.strip()}" if where else ""), fontsize=9)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_all(ds: xr.Dataset, store_path, *, target_yield: float = 0.9) -> list[Path]:
    """Write ``<store>_yield.png`` (if swept) and ``<store>_fail.png`` beside the store."""
    store_path = Path(store_path)
    stem = store_path.with_suffix("")
    out = []
    y = plot_yield_map(ds, Path(f"{stem}_yield.png"), target_yield=target_yield)
    if y is not None:
        out.append(y)
    out.append(plot_fail_map(ds, Path(f"{stem}_fail.png")))
    return out


def main(argv=None) -> int:
    """``yieldmc-plot STORE [--target-yield Y]``: redraw the plots of a complete store."""
    import argparse

    from yieldmc.store import StoreError, open_result

    parser = argparse.ArgumentParser(prog="yieldmc-plot", description=main.__doc__)
    parser.add_argument("store", help="path of a yieldmc zarr store")
    parser.add_argument("--target-yield", type=float, default=0.9)
    args = parser.parse_args(argv)
    try:
        ds = open_result(args.store)
    except StoreError as exc:
        print(f"yieldmc-plot: error: {exc}", file=sys.stderr)
        return 2
    for p in plot_all(ds, args.store, target_yield=args.target_yield):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
