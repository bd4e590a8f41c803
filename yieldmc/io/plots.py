"""PNG plots of a result Dataset (edge: matplotlib, Agg backend). See docs/plots.md.

Fixed colour scales (an all-pass and an all-fail run never look alike), sweep axes sorted by
value and labelled with units, titles that state package, spec, N and yield ± 95 % interval.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import secrets
import stat
import sys
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
import yaml  # noqa: E402
from matplotlib.colors import ListedColormap, LogNorm, Normalize  # noqa: E402

from yieldmc.engine.schema import value_at  # noqa: E402

CHANNEL_DIMS = ("quantile", "layer", "channel", "condition", "randomization", "spec_db")
FAIL_MIN = 1e-6  # fail map: log colour scale FAIL_MIN..1; 0 < f < FAIL_MIN drawn at FAIL_MIN
ZERO_COLOUR = "#2ca25f"  # fail map: a channel that never failed (fraction exactly 0)
MAX_PANELS = 24  # more facet panels than this: the first MAX_PANELS and a note

_UNITS = {"um": "µm", "nm": "nm", "mm": "mm", "cm": "cm", "mrad": "mrad", "rad": "rad",
          "deg": "°", "db": "dB", "ppm": "ppm", "c": "°C", "k": "K", "rh": "%RH"}
_NAMED = {"max_failed_channels": "channels", "samples": "modules", "n_core": "1",
          "n_clad": "1", "n_gap": "1", "dn_core": "1"}
_DIST_PARAMS = ("sigma", "mean", "low", "high")


def sweep_dims(ds: xr.Dataset) -> list[str]:
    return [d for d in ds["yield"].dims if d not in CHANNEL_DIMS]


def _config(ds: xr.Dataset) -> dict:
    try:
        return yaml.safe_load(ds.attrs.get("config_yaml", "")) or {}
    except yaml.YAMLError:
        return {}


def _name_unit(name: str) -> str | None:
    """Unit of one name from its suffix: ``pitch_um`` → µm, ``loss_db_per_cm`` → dB/cm."""
    if name in _NAMED:
        return _NAMED[name]
    t = name.lower().split("_")
    if len(t) >= 3 and t[-2] == "per" and t[-1] in _UNITS:
        return f"{_UNITS.get(t[-3], '1')}/{_UNITS[t[-1]]}"
    return _UNITS[t[-1]] if len(t) >= 2 and t[-1] in _UNITS else None


def key_unit(key: str, config: dict | None = None) -> str | None:
    """Unit of a (swept) config key; a distribution parameter carries its quantity's unit.

    ``process.dx_um.module.sigma`` → µm, ``spec.max_loss_db`` → dB, ``package.n_core`` → 1;
    the sigma of a log-normal variation is that of the underlying normal, so → 1.
    """
    parts = key.split(".")
    unit = _name_unit(parts[-1])
    if unit is None and parts[-1] in _DIST_PARAMS and len(parts) >= 2:
        if parts[-1] == "sigma" and value_at(config or {}, ".".join(parts[:-1]) + ".distribution") == "lognormal":
            return "1"
        unit = next((u for p in reversed(parts[:-1]) if (u := _name_unit(p))), None)
    return unit


def axis_label(ds: xr.Dataset, dim: str) -> str:
    unit = ds[dim].attrs.get("units") or key_unit(dim, _config(ds))
    return f"{dim} [{unit}]" if unit else dim


def _point(ds: xr.Dataset, dim: str, value) -> str:
    unit = ds[dim].attrs.get("units") or key_unit(dim, _config(ds))
    return f"{dim} = {value:g}" + (f" {unit}" if unit and unit != "1" else "")


def format_yield(y: float, low: float, high: float) -> str:
    """``yield 0.853 [0.831, 0.872]`` with enough digits to resolve the interval."""
    width = high - low
    d = 3 if not width > 0 else min(8, max(3, math.ceil(-math.log10(width)) + 1))
    return f"{y:.{d}f} [{low:.{d}f}, {high:.{d}f}]"


def title_text(ds: xr.Dataset, what: str, *, width: int = 70) -> str:
    """Multi-line title: what, package, spec, N per point, yield ± 95 % interval (min … max)."""
    cfg = _config(ds)
    spec = {}
    for k, unit in (("max_loss_db", " dB"), ("max_failed_channels", "")):
        c = ds.coords.get(f"spec.{k}")  # swept: a dimension (map) or a scalar (one of its points)
        v = value_at(cfg, f"spec.{k}") if c is None else None if c.ndim else f"{float(c):g}"
        spec[k] = f"≤ {v}{unit}" if v is not None else f"swept (spec.{k} on an axis)"
    n = np.asarray(ds.n_samples.values).ravel()
    n_txt = f"{int(n.min()):,}" if n.min() == n.max() else f"{int(n.min()):,}–{int(n.max()):,}"
    y, lo, hi = (np.asarray(ds[v].values, dtype=float).ravel() for v in ("yield", "yield_ci_low", "yield_ci_high"))
    i, j = int(np.nanargmin(y)), int(np.nanargmax(y))
    ytxt = (f"yield {format_yield(y[i], lo[i], hi[i])}" if y.size == 1 else
            f"yield {format_yield(y[i], lo[i], hi[i])} (lowest) … {format_yield(y[j], lo[j], hi[j])}"
            f" (highest) over {y.size} points")
    lines = [f"{what} — package {value_at(cfg, 'package.name') or '?'}",
             f"spec: channel loss {spec['max_loss_db']}, "
             f"failed channels per module {spec['max_failed_channels']}",
             f"N = {n_txt} modules per point",
             ytxt + " (95 % interval)"]
    return "\n".join(textwrap.fill(line, width) for line in lines)


def _suptitle(fig, ds: xr.Dataset, what: str, extra: str = "") -> None:
    width = max(40, int(fig.get_figwidth() * 72 / (9 * 0.62)))  # characters at 9 pt
    text = title_text(ds, what, width=width) + ("\n" + textwrap.fill(extra, width) if extra else "")
    fig.suptitle(text, fontsize=9)


def _facets(ds: xr.Dataset, dims: list[str]) -> tuple[list[dict], str]:
    """One selection per combination of the values of ``dims`` (capped at MAX_PANELS)."""
    combos = [dict(zip(dims, c)) for c in itertools.product(*(range(ds.sizes[d]) for d in dims))]
    note = ""
    if len(combos) > MAX_PANELS:
        note = f"Note: showing the first {MAX_PANELS} of {len(combos)} combinations of {', '.join(dims)}."
        combos = combos[:MAX_PANELS]
    return combos, note


def _grid(n: int, panel: tuple[float, float]):
    ncols = min(n, 4)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(6.5, panel[0] * ncols), 1.6 + panel[1] * nrows),
                             constrained_layout=True, squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    return fig, axes.ravel()[:n]


def yield_figure(ds: xr.Dataset, *, target_yield: float = 0.9):
    """1 swept key: yield vs value with its 95 % band; 2: heat map (fixed 0–1) + target contour;
    more: one heat-map panel per combination of the extra keys. With conditions and at most
    one swept key: each condition's yield beside the envelope. None when nothing is swept
    and there are no conditions."""
    dims = sweep_dims(ds)
    if "condition_yield" in ds and len(dims) <= 1:
        return _condition_yield_figure(ds, dims, target_yield)
    if not dims:
        return None
    ds = ds.sortby(dims)
    if len(dims) == 1:
        fig, ax = plt.subplots(figsize=(6.5, 5), constrained_layout=True)
        x = ds[dims[0]].values
        ax.plot(x, ds["yield"].values, "o-", label="yield")
        ax.fill_between(x, ds.yield_ci_low.values, ds.yield_ci_high.values, alpha=0.3, label="95 % interval")
        ax.axhline(target_yield, color="grey", ls="--", lw=1, label=f"target {target_yield:g}")
        ax.set_xlabel(axis_label(ds, dims[0]))
        ax.set_ylabel("yield [1]")
        ax.set_ylim(-0.02, 1.02)
        ax.legend()
        _suptitle(fig, ds, "yield map")
        return fig
    xd, yd, extra = dims[0], dims[1], dims[2:]
    combos, note = _facets(ds, extra)
    fig, axes = _grid(len(combos), (4.2, 3.4))
    norm = Normalize(vmin=0.0, vmax=1.0)
    xs, ys = ds[xd].values, ds[yd].values
    for ax, sel in zip(axes, combos):
        sub = ds.isel(sel)
        y = sub["yield"].transpose(yd, xd).values
        mesh = ax.pcolormesh(xs, ys, y, shading="nearest", norm=norm, cmap="viridis")
        if len(xs) > 1 and len(ys) > 1 and np.nanmin(y) < target_yield < np.nanmax(y):
            cs = ax.contour(xs, ys, y, levels=[target_yield], colors="w")
            ax.clabel(cs, fmt={target_yield: f"Y = {target_yield:g}"})
        ax.set_xlabel(axis_label(ds, xd))
        ax.set_ylabel(axis_label(ds, yd))
        if sel:
            ax.set_title("\n".join(_point(ds, d, float(ds[d][i])) for d, i in sel.items()), fontsize=8)
    fig.colorbar(mesh, ax=list(axes), label="yield [1] (fraction of modules passing)")
    facet = f"one panel per value of {', '.join(extra)}" if extra else ""
    _suptitle(fig, ds, "yield map" + (f" ({facet})" if facet else ""), note)
    return fig


def _condition_yield_figure(ds: xr.Dataset, dims: list, target_yield: float):
    """Conditions (the qualification envelope): each condition's yield beside the envelope
    yield (with its 95 % interval) — bars without a sweep, one line per condition along a
    single swept key."""
    names = [str(c) for c in ds.condition.values]
    fig, ax = plt.subplots(figsize=(max(6.5, 0.9 * len(names) + 2.5), 5), constrained_layout=True)
    if not dims:
        y = float(ds["yield"])
        heights = [float(v) for v in ds.condition_yield.values] + [y]
        colours = ["tab:blue"] * len(names) + ["tab:red"]
        ax.bar(range(len(heights)), heights, color=colours)
        ax.errorbar([len(names)], [y], yerr=[[y - float(ds.yield_ci_low)], [float(ds.yield_ci_high) - y]],
                    color="k", capsize=4)
        ax.set_xticks(range(len(heights)), names + ["envelope"], rotation=30, ha="right")
        for i, h in enumerate(heights):
            ax.text(i, h + 0.01, f"{h:.3f}", ha="center", va="bottom", fontsize=8)
        ax.set_xlabel("condition")
    else:
        ds = ds.sortby(dims)
        x = ds[dims[0]].values
        for k, name in enumerate(names):
            ax.plot(x, ds.condition_yield.isel(condition=k).values, "o-", lw=1, ms=3, label=name)
        ax.plot(x, ds["yield"].values, "k-", lw=2.5, label="envelope (every condition)")
        ax.fill_between(x, ds.yield_ci_low.values, ds.yield_ci_high.values, color="k", alpha=0.2)
        ax.set_xlabel(axis_label(ds, dims[0]))
        ax.legend(fontsize=8)
    ax.axhline(target_yield, color="grey", ls="--", lw=1)
    ax.set_ylabel("yield [1] (fraction of modules passing)")
    ax.set_ylim(-0.02, 1.05)
    _suptitle(fig, ds, "yield per condition and envelope",
              f"Envelope: a module passes only under every condition. Dashed: target {target_yield:g}.")
    return fig


def spec_figure(ds: xr.Dataset, *, target_yield: float = 0.9):
    """Yield versus the loss spec (``yield_vs_spec``) with its 95 % band, the configured spec
    marked; each condition's curve beside the envelope; one curve per point of a single
    swept key (bands only without a sweep). None without ``yield_vs_spec`` or with more than
    one swept key."""
    if "yield_vs_spec" not in ds:
        return None
    dims = sweep_dims(ds)
    if len(dims) > 1:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 5), constrained_layout=True)
    x = ds.spec_db.values
    if dims:
        ds = ds.sortby(dims)
        for i in range(ds.sizes[dims[0]]):
            sub = ds.isel({dims[0]: i})
            ax.plot(x, sub.yield_vs_spec.values, lw=1.5, label=_point(ds, dims[0], float(ds[dims[0]][i])))
    else:
        ax.plot(x, ds.yield_vs_spec.values, "k-", lw=2,
                label="envelope (every condition)" if "condition_yield_vs_spec" in ds else "yield")
        ax.fill_between(x, ds.yield_vs_spec_ci_low.values, ds.yield_vs_spec_ci_high.values, color="k",
                        alpha=0.2, label="95 % interval")
        if "condition_yield_vs_spec" in ds:
            for k, name in enumerate(ds.condition.values):
                ax.plot(x, ds.condition_yield_vs_spec.isel(condition=k).values, lw=1, label=str(name))
    spec = float(x[len(x) // 2])
    ax.axvline(spec, color="tab:red", ls=":", lw=1, label=f"configured spec {spec:g} dB")
    ax.axhline(target_yield, color="grey", ls="--", lw=1, label=f"target {target_yield:g}")
    ax.set_xlabel("loss spec spec.max_loss_db [dB]")
    ax.set_ylabel("yield [1] (fraction of modules passing)")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8)
    _suptitle(fig, ds, "yield versus loss spec", "Same modules; only the loss spec changes.")
    return fig


def calibration_figure(ds: xr.Dataset):
    """Goodness of fit of a calibration: per matched statistic (pooled channel losses,
    module mean, spread within layers, spread of layer means), the fitted model's quantiles
    against the measured ones (QQ; on the diagonal when the model reproduces the data),
    one colour per condition, with the KS p-value of the per-module statistics."""
    matched = [str(m) for m in ds.matched.values]
    fig, axes = _grid(len(matched), (3.6, 3.4))
    for ax, j in zip(axes, range(len(matched))):
        for k in range(ds.sizes["condition_index"]):
            x = ds.measured_quantile.values[k, j]
            y = ds.fitted_quantile.values[k, j]
            ax.plot(x, y, "o", ms=3, label=f"condition {k}" if ds.sizes["condition_index"] > 1 else None)
        lo = float(min(ds.measured_quantile.values[:, j].min(), ds.fitted_quantile.values[:, j].min()))
        hi = float(max(ds.measured_quantile.values[:, j].max(), ds.fitted_quantile.values[:, j].max()))
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
        title = matched[j].replace("_", " ")
        if matched[j] in [str(s) for s in ds.statistic.values]:
            p = float(ds.gof_p_value.sel(statistic=matched[j]).min())
            title += f"\nKS p = {p:.2g}" + (" (misfit)" if p < 0.01 else "")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("measured quantile [dB]")
        ax.set_ylabel("fitted model quantile [dB]")
    fig.suptitle(f"calibration: fitted model vs measured ({ds.attrs.get('n_modules', '?')} modules); "
                 "on the diagonal = reproduced", fontsize=10)
    return fig


def plot_calibration(ds: xr.Dataset, store_path) -> Path | None:
    """Write ``<store>_fit.png`` (:func:`calibration_figure`) beside a calibration store."""
    path = Path(f"{Path(store_path).with_suffix('')}_fit.png")
    if os.path.lexists(path) and not _replaceable(path):
        _refuse(path)
        return None
    return _save(calibration_figure(ds), path)


def fail_figure(ds: xr.Dataset):
    """Per-channel fail fraction, layer × channel, at the sweep point of lowest yield; fixed log
    colour scale FAIL_MIN..1, exact 0 in ZERO_COLOUR; one panel per condition if any."""
    dims = sweep_dims(ds)
    fail = ds.channel_fail_fraction
    where = ""
    if dims:
        idx = np.unravel_index(int(np.nanargmin(ds["yield"].values)), ds["yield"].shape)
        sel = dict(zip(dims, idx))
        fail = fail.isel(sel)
        ds = ds.isel(sel)
        where = "At the lowest-yield point: " + ", ".join(_point(ds, d, float(ds[d])) for d in dims) + "."
    rest = [d for d in fail.dims if d not in ("layer", "channel")]
    combos, note = _facets(fail, rest)
    nl, nc = fail.sizes["layer"], fail.sizes["channel"]
    fig, axes = _grid(len(combos), (max(6.0, 0.25 * nc), max(2.6, 0.6 * nl + 1.2)))
    magma = plt.get_cmap("magma_r")(np.linspace(0.0, 0.88, 256))  # top stays dark purple, not black
    cmap = ListedColormap(magma, name="fail").with_extremes(under=ZERO_COLOUR, bad=ZERO_COLOUR)
    norm = LogNorm(vmin=FAIL_MIN, vmax=1.0)
    for ax, sel in zip(axes, combos):
        f = np.asarray(fail.isel(sel).transpose("layer", "channel").values, dtype=float)
        shown = np.ma.masked_where(~(f > 0), np.clip(f, FAIL_MIN, 1.0))  # exact 0 → ZERO_COLOUR
        im = ax.imshow(shown, origin="lower", aspect="auto", cmap=cmap, norm=norm,
                       interpolation="nearest", extent=(-0.5, nc - 0.5, -0.5, nl - 0.5))
        ax.set_xlabel("channel [index]")
        ax.set_ylabel("layer [index, 0 = bottom]")
        ax.set_yticks(range(nl))
        if sel:
            ax.set_title(", ".join(f"{d} = {fail[d].values[i]}" for d, i in sel.items()), fontsize=8)
    cbar = fig.colorbar(im, ax=list(axes), extend="min",
                        label="channel fail fraction [1] (log)")
    cbar.ax.text(1.6, -0.06, "0", transform=cbar.ax.transAxes, va="center", fontsize=8)
    ticks = 10.0 ** np.arange(round(math.log10(FAIL_MIN)), 1)
    cbar.set_ticks(ticks, labels=[("≤" if t <= FAIL_MIN else "") + f"{t:g}" for t in ticks])
    cbar.minorticks_off()
    extra = (f"{where} Fixed log colour scale {FAIL_MIN:g}–1; green (▼ on the colour bar) = exactly 0; "
             f"0 < f ≤ {FAIL_MIN:g} drawn as {FAIL_MIN:g}.")
    _suptitle(fig, ds, "channel fail fraction", (extra + " " + note).strip())
    return fig


#: The ``Software`` text of every PNG yieldmc writes (a PNG ``tEXt`` chunk): how a plot
#: path that yieldmc may replace is told from a user's file.
MARKER_PREFIX = "yieldmc "
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def marker() -> str:
    from yieldmc._version import __version__

    return MARKER_PREFIX + __version__


def is_yieldmc_png(path) -> bool:
    """Whether ``path`` is a regular file (not a symlink) holding a PNG with yieldmc's
    ``Software`` marker (any version) in a ``tEXt`` chunk before the image data."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return False
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode) or f.read(8) != _PNG_SIGNATURE:
            return False
        for _ in range(64):  # matplotlib writes its text chunks right after IHDR
            head = f.read(8)
            if len(head) < 8:
                return False
            length, kind = int.from_bytes(head[:4], "big"), head[4:]
            if kind in (b"IDAT", b"IEND") or length > 1 << 16:
                return False
            data = f.read(length + 4)  # the chunk's data and CRC
            if kind == b"tEXt":
                keyword, _, text = data[:length].partition(b"\0")
                if keyword == b"Software" and text.startswith(MARKER_PREFIX.encode()):
                    return True
    return False


def _replaceable(path: Path) -> bool:
    """Absent, or a yieldmc PNG: yieldmc may write there (never a user's file, a symlink, a
    directory or anything else yieldmc did not create)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return True
    return stat.S_ISREG(st.st_mode) and is_yieldmc_png(path)


def _refuse(path: Path) -> None:
    print(f"plot: {path} exists and was not written by yieldmc; left untouched", file=sys.stderr)


def _save(fig, path: Path) -> Path | None:
    """Write ``fig`` to ``path`` as a marked PNG, atomically (a temporary file in the same
    directory, then renamed onto ``path``), only where :func:`_replaceable`; else print one
    line on stderr and return None. An OSError (e.g. a read-only directory) is reported the
    same way: the plots come after a complete store and never fail the run."""
    path = Path(path)
    tmp = None
    try:
        if not _replaceable(path):
            _refuse(path)
            return None
        for _ in range(100):
            tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
                break
            except FileExistsError:
                tmp = None
        else:
            raise FileExistsError(f"no free temporary name beside {path}")
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format="png", dpi=120, metadata={"Software": marker()})
        if not _install(tmp, path):
            _refuse(path)
            return None
        tmp = None
        return path
    except OSError as exc:
        print(f"plot: cannot write {path}: {exc.strerror or exc}; skipped", file=sys.stderr)
        return None
    finally:
        plt.close(fig)
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _install(tmp: Path, path: Path) -> bool:
    """Move ``tmp`` onto ``path`` if that is (still) :func:`_replaceable`; False if not."""
    if not _replaceable(path):
        return False
    if not os.path.lexists(path):
        try:  # no-clobber: a file that appeared since the check is not replaced
            os.link(tmp, path)
        except FileExistsError:
            return _install(tmp, path)
        except OSError:  # no hard links on this file system: rename (checked just above)
            pass
        else:
            os.unlink(tmp)
            return True
    os.replace(tmp, path)
    return True


def plot_yield_map(ds: xr.Dataset, path: Path, *, target_yield: float = 0.9) -> Path | None:
    """Write the yield map (see :func:`_save`); None when nothing is swept or not written."""
    if os.path.lexists(path) and not _replaceable(Path(path)):  # do not draw what is not written
        _refuse(Path(path))
        return None
    fig = yield_figure(ds, target_yield=target_yield)
    return None if fig is None else _save(fig, path)


def plot_fail_map(ds: xr.Dataset, path: Path) -> Path | None:
    """Write the fail map (see :func:`_save`); None when not written."""
    if os.path.lexists(path) and not _replaceable(Path(path)):
        _refuse(Path(path))
        return None
    return _save(fail_figure(ds), path)


def plot_all(ds: xr.Dataset, store_path, *, target_yield: float = 0.9) -> list[Path]:
    """Write ``<store>_yield.png`` (if swept, or with conditions), ``<store>_fail.png`` and
    ``<store>_spec.png`` (yield versus the loss spec, :func:`spec_figure`) beside the store.

    A path that exists and is not a yieldmc PNG (a user's file, a symlink, a directory) is
    left untouched and its plot skipped, with one line on stderr. Returns the paths written.
    """
    store_path = Path(store_path)
    stem = store_path.with_suffix("")
    out = []
    y = plot_yield_map(ds, Path(f"{stem}_yield.png"), target_yield=target_yield)
    if y is not None:
        out.append(y)
    f = plot_fail_map(ds, Path(f"{stem}_fail.png"))
    if f is not None:
        out.append(f)
    spec_path = Path(f"{stem}_spec.png")
    if os.path.lexists(spec_path) and not _replaceable(spec_path):
        _refuse(spec_path)
    else:
        fig = spec_figure(ds, target_yield=target_yield)
        if fig is not None and _save(fig, spec_path) is not None:
            out.append(spec_path)
    return out


def main(argv=None) -> int:
    """``yieldmc-plot STORE [--target-yield Y]``: redraw the plots of a complete store."""
    import argparse

    from yieldmc.io.store import StoreError, open_result

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
