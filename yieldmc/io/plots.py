"""Plots of a result store (edge: matplotlib, Agg backend). See docs/plots.md.

Every figure has a title of at most two lines (what, package; spec, N, yield with its 95 %
interval); the details go into a caption stored in the image's metadata (PNG ``Description``
text chunk, SVG ``dc:description``) and shown by the HTML report. Units are written out
(``fraction``, ``channel index``). Colour scales follow the data so that the variation is
visible, and every value the figure rests on is printed or marked; a value a sampler did not
estimate (NaN) is drawn hatched grey and labelled "not estimated", never as zero.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import stat
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
import yaml  # noqa: E402
from matplotlib.colors import ListedColormap, LogNorm, Normalize  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402

from yieldmc.configuration.schema import value_at  # noqa: E402
from yieldmc.outputs import replaceable, write_replacing  # noqa: E402

CHANNEL_DIMS = ("quantile", "layer", "channel", "condition", "randomization", "spec_db", "part",
                "realization", "band_quantile", "uncertain")
ZERO_COLOUR = "#2ca25f"  # fail map on a log scale: a channel that never failed (fraction exactly 0)
NAN_COLOUR = "#d9d9d9"  # a value the sampler did not estimate (NaN), drawn hatched
NAN_HATCH = "////"
NOT_ESTIMATED = "not estimated"
MAX_PANELS = 24  # more facet panels than this: the first MAX_PANELS and a note in the caption
DPI = 150
LOG_RATIO = 100.0  # positive values spanning more than this factor: logarithmic scale
MAX_CELL_TEXT = 160  # heat maps with more cells than this carry no per-cell numbers

_UNITS = {"um": "µm", "nm": "nm", "mm": "mm", "cm": "cm", "mrad": "mrad", "rad": "rad",
          "deg": "°", "db": "dB", "ppm": "ppm", "c": "°C", "k": "K", "rh": "%RH"}
_NAMED = {"max_failed_channels": "channels", "samples": "modules", "n_core": "1",
          "n_clad": "1", "n_gap": "1", "dn_core": "1"}
_DIST_PARAMS = ("sigma", "mean", "low", "high")
# CF / UDUNITS spellings a store may carry on its coordinates, as printed on an axis
_CF_DISPLAY = {"um": "µm", "micrometer": "µm", "micrometre": "µm", "degC": "°C", "degree_Celsius": "°C",
               "celsius": "°C", "percent": "%", "%": "%", "mrad": "mrad", "milliradian": "mrad"}


# --------------------------------------------------------------------------- text helpers
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
    """Unit of a (swept) config key from its name; a distribution parameter carries its
    quantity's unit.

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


def coord_unit(ds: xr.Dataset, dim: str) -> str | None:
    """The unit of a coordinate: its ``units`` attribute (CF spellings shown as symbols),
    else derived from the key's name (:func:`key_unit`)."""
    unit = ds[dim].attrs.get("units") if dim in ds.coords else None
    if unit:
        return _CF_DISPLAY.get(str(unit), str(unit))
    return key_unit(dim, _config(ds))


def axis_label(ds: xr.Dataset, dim: str) -> str:
    """``key [unit]``; a dimensionless key reads ``key (dimensionless)``."""
    unit = coord_unit(ds, dim)
    if unit == "1":
        return f"{dim} (dimensionless)"
    return f"{dim} [{unit}]" if unit else dim


def _point(ds: xr.Dataset, dim: str, value) -> str:
    unit = coord_unit(ds, dim)
    return f"{dim} = {value:g}" + (f" {unit}" if unit and unit != "1" else "")


def format_yield(y: float, low: float, high: float) -> str:
    """``0.853 [0.831, 0.872]`` with enough digits to resolve the interval."""
    width = high - low
    d = 3 if not width > 0 else min(8, max(3, math.ceil(-math.log10(width)) + 1))
    return f"{y:.{d}f} [{low:.{d}f}, {high:.{d}f}]"


def _spec_text(ds: xr.Dataset) -> str:
    cfg = _config(ds)
    parts = []
    for k, fmt in (("max_loss_db", "loss ≤ {} dB"), ("max_failed_channels", "{} failed ch. allowed")):
        c = ds.coords.get(f"spec.{k}")  # swept: a dimension (map) or a scalar (one of its points)
        v = value_at(cfg, f"spec.{k}") if c is None else None if c.ndim else f"{float(c):g}"
        parts.append(fmt.format(v) if v is not None else f"spec.{k} swept")
    return ", ".join(parts)


def _yield_summary(ds: xr.Dataset) -> tuple[str, str]:
    """(short, long): the yield for a title and, for the caption, with the interval at the
    lowest and the highest point of a map."""
    y, lo, hi = (np.asarray(ds[v].values, dtype=float).ravel() for v in ("yield", "yield_ci_low", "yield_ci_high"))
    if not np.isfinite(y).any():
        return f"yield {NOT_ESTIMATED}", f"yield {NOT_ESTIMATED}"
    i, j = int(np.nanargmin(y)), int(np.nanargmax(y))
    if y.size == 1:
        text = f"yield {format_yield(y[i], lo[i], hi[i])} (95 %)"
        return text, text
    return (f"yield {y[i]:.3f} … {y[j]:.3f} over {y.size} points",
            f"yield {format_yield(y[i], lo[i], hi[i])} (lowest) … {format_yield(y[j], lo[j], hi[j])} "
            f"(highest), 95 % intervals, over {y.size} points")


def _n_text(ds: xr.Dataset) -> str:
    n = np.asarray(ds.n_samples.values).ravel()
    return f"N = {int(n.min()):,}" if n.min() == n.max() else f"N = {int(n.min()):,}–{int(n.max()):,}"


def title_text(ds: xr.Dataset, what: str) -> str:
    """Two lines: what and the package; the spec, N modules per point and the yield."""
    package = value_at(_config(ds), "package.name") or "?"
    short, _ = _yield_summary(ds)
    return f"{what} · package {package}\n{_spec_text(ds)} · {_n_text(ds)} modules · {short}"


def caption_text(ds: xr.Dataset, what: str, extra: str = "") -> str:
    """The details that do not fit a two-line title (stored in the image metadata)."""
    _, long = _yield_summary(ds)
    package = value_at(_config(ds), "package.name") or "?"
    text = (f"{what}, package {package}; spec: {_spec_text(ds)}; {_n_text(ds)} modules per point "
            f"(sampler {ds.attrs.get('sampler', '?')}); {long}.")
    return text + (" " + extra.strip() if extra.strip() else "")


def _set_title(fig, title: str, caption: str) -> None:
    """At most two title lines, the font shrunk (down to 7 pt) until each fits the width;
    the caption is kept on the figure for the image metadata and the report."""
    lines = title.split("\n")[:2]
    width_pt = fig.get_figwidth() * 72 * 0.96
    size = 10.0
    longest = max(len(line) for line in lines)
    while size > 7 and longest * size * 0.55 > width_pt:
        size -= 0.5
    if longest * size * 0.55 > width_pt:  # still too long: cut, the caption has it all
        keep = int(width_pt / (size * 0.55)) - 1
        lines = [line if len(line) <= keep else line[: keep - 1] + "…" for line in lines]
    fig.suptitle("\n".join(lines), fontsize=size)
    fig.yieldmc_title = "\n".join(lines)
    fig.yieldmc_caption = caption


def _grid(n: int, panel: tuple[float, float], *, ncols: int = 3, extra_h: float = 1.0, **kw):
    ncols = max(1, min(n, ncols))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(6.5, panel[0] * ncols), extra_h + panel[1] * nrows),
                             layout="constrained", squeeze=False, **kw)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    return fig, axes.ravel()[:n]


def _facets(ds: xr.Dataset, dims: list[str]) -> tuple[list[dict], str]:
    """One selection per combination of the values of ``dims`` (capped at MAX_PANELS)."""
    combos = [dict(zip(dims, c)) for c in itertools.product(*(range(ds.sizes[d]) for d in dims))]
    note = ""
    if len(combos) > MAX_PANELS:
        note = f"Showing the first {MAX_PANELS} of {len(combos)} combinations of {', '.join(dims)}."
        combos = combos[:MAX_PANELS]
    return combos, note


def _text_colour(rgba) -> str:
    r, g, b = rgba[:3]
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 else "white"


def _digits(values: np.ndarray) -> int:
    """Decimals that tell the printed values apart (3 to 5)."""
    v = np.unique(np.round(values[np.isfinite(values)], 6))
    if v.size < 2:
        return 3
    step = float(np.min(np.diff(v)))
    return int(min(5, max(3, math.ceil(-math.log10(step)) if step > 0 else 3)))


def auto_norm(values) -> Normalize:
    """A colour scale fitted to the finite values: linear from min to max, logarithmic over
    the positive values when they span more than LOG_RATIO (exact zeros then fall below it)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return Normalize(0.0, 1.0)
    pos = v[v > 0]
    if pos.size and pos.max() / pos.min() > LOG_RATIO:
        return LogNorm(vmin=float(pos.min()), vmax=float(pos.max()))
    return _linear_norm(v)


def _linear_norm(values) -> Normalize:
    """Linear colour scale from the smallest to the largest finite value (widened a little
    when they are equal)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 1.0)
    if hi - lo < 1e-12:
        pad = max(abs(hi) * 0.05, 1e-3)
        lo, hi = lo - pad, hi + pad
    return Normalize(vmin=lo, vmax=hi)


def _hatch_nan(ax, mask: np.ndarray, x_edges, y_edges) -> None:
    """Hatched grey over each cell where ``mask`` (rows = y, cols = x)."""
    for r, c in zip(*np.nonzero(mask)):
        ax.add_patch(Rectangle((x_edges[c], y_edges[r]), x_edges[c + 1] - x_edges[c],
                               y_edges[r + 1] - y_edges[r], facecolor=NAN_COLOUR, edgecolor="grey",
                               hatch=NAN_HATCH, lw=0))


def _nan_patch() -> Patch:
    return Patch(facecolor=NAN_COLOUR, edgecolor="grey", hatch=NAN_HATCH, label=f"{NOT_ESTIMATED} (NaN)")


def _cell_edges(values) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    if v.size == 1:
        return np.array([v[0] - 0.5, v[0] + 0.5]) if v[0] == 0 else np.array([v[0] * 0.9, v[0] * 1.1])
    mid = (v[1:] + v[:-1]) / 2
    return np.concatenate([[v[0] - (mid[0] - v[0])], mid, [v[-1] + (v[-1] - mid[-1])]])


# --------------------------------------------------------------------------- yield map
def _target(ds: xr.Dataset, target_yield: float | None) -> float:
    if target_yield is not None:
        return float(target_yield)
    t = value_at(_config(ds), "output.target_yield")
    return float(t) if t is not None else 0.9


def yield_figure(ds: xr.Dataset, *, target_yield: float | None = None):
    """1 swept key: yield vs the value with its 95 % band, each point printed; 2: heat map
    with the yield printed in each cell, the colour scale fitted to the values, the target
    contour; more: one heat-map panel per combination of the extra keys (one shared scale).
    With conditions and at most one swept key: each condition's yield beside the envelope.
    None when nothing is swept and there are no conditions."""
    target = _target(ds, target_yield)
    dims = sweep_dims(ds)
    if "condition_yield" in ds and len(dims) <= 1:
        return _condition_yield_figure(ds, dims, target)
    if not dims:
        return None
    ds = ds.sortby(dims)
    if len(dims) == 1:
        fig, ax = plt.subplots(figsize=(6.5, 4.6), layout="constrained")
        x = ds[dims[0]].values
        y = np.asarray(ds["yield"].values, dtype=float)
        ax.fill_between(x, ds.yield_ci_low.values, ds.yield_ci_high.values, alpha=0.3, label="95 % interval")
        ax.plot(x, y, "o-", label="yield")
        d = _digits(y)
        for xi, yi in zip(x, y):
            ax.annotate(f"{yi:.{d}f}" if np.isfinite(yi) else NOT_ESTIMATED, (xi, yi if np.isfinite(yi) else 0.5),
                        textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8)
        ax.axhline(target, color="grey", ls="--", lw=1, label=f"target yield {target:g}")
        ax.set_xlabel(axis_label(ds, dims[0]))
        ax.set_ylabel("yield (fraction of modules passing)")
        ax.set_ylim(-0.02, 1.06)
        ax.legend(fontsize=8)
        _set_title(fig, title_text(ds, "yield map"), caption_text(ds, "Yield map", "Numbers: yield at each point."))
        return fig
    xd, yd, extra = dims[0], dims[1], dims[2:]
    combos, note = _facets(ds, extra)
    nx, ny = ds.sizes[xd], ds.sizes[yd]
    panel = (min(7.0, max(3.6, 0.75 * nx + 1.6)), min(6.0, max(2.8, 0.45 * ny + 1.6)))
    fig, axes = _grid(len(combos), panel, ncols=1 if panel[0] > 5 else 2 if len(combos) <= 4 else 3)
    values = np.asarray(ds["yield"].values, dtype=float)
    norm = _linear_norm(values)
    cmap = plt.get_cmap("viridis").with_extremes(bad=NAN_COLOUR)
    xs, ys = ds[xd].values.astype(float), ds[yd].values.astype(float)
    xe, ye = _cell_edges(xs), _cell_edges(ys)
    d = _digits(values)
    mesh = None
    for ax, sel in zip(axes, combos):
        y = np.asarray(ds.isel(sel)["yield"].transpose(yd, xd).values, dtype=float)
        mesh = ax.pcolormesh(xe, ye, np.ma.masked_invalid(y), norm=norm, cmap=cmap)
        _hatch_nan(ax, ~np.isfinite(y), xe, ye)
        if nx * ny <= MAX_CELL_TEXT:
            for (r, c), v in np.ndenumerate(y):
                ax.text(xs[c], ys[r], f"{v:.{d}f}" if np.isfinite(v) else "n/e", ha="center", va="center",
                        fontsize=8, color=_text_colour(cmap(norm(v))) if np.isfinite(v) else "black")
        if nx > 1 and ny > 1 and np.nanmin(y) < target < np.nanmax(y):
            cs = ax.contour(xs, ys, y, levels=[target], colors="w", linewidths=1.5, linestyles="--")
            ax.clabel(cs, fmt={target: f"Y = {target:g}"}, fontsize=8)
        ax.set_xticks(xs, [f"{v:g}" for v in xs])
        ax.set_yticks(ys, [f"{v:g}" for v in ys])
        ax.set_xlabel(axis_label(ds, xd))
        ax.set_ylabel(axis_label(ds, yd))
        if sel:
            ax.set_title(", ".join(_point(ds, d_, float(ds[d_][i])) for d_, i in sel.items()), fontsize=8)
    fig.colorbar(mesh, ax=list(axes), label="yield (fraction of modules passing)", shrink=0.9)
    facet = f"; one panel per value of {', '.join(extra)}" if extra else ""
    _set_title(fig, title_text(ds, "yield map" + (" (faceted)" if extra else "")),
               caption_text(ds, "Yield map" + facet,
                            f"Number in each cell: yield; colour scale fitted to {norm.vmin:.3f}–{norm.vmax:.3f}; "
                            f"dashed white: target yield {target:g}. {note}"))
    return fig


def _condition_yield_figure(ds: xr.Dataset, dims: list, target: float):
    """Conditions (the qualification envelope): each condition's yield beside the envelope
    yield (with its 95 % interval): bars without a sweep, one line per condition along a
    single swept key."""
    names = [str(c) for c in ds.condition.values]
    fig, ax = plt.subplots(figsize=(max(6.5, 0.8 * len(names) + 2.5), 4.8), layout="constrained")
    if not dims:
        y = float(ds["yield"])
        heights = [float(v) for v in ds.condition_yield.values] + [y]
        colours = ["tab:blue"] * len(names) + ["tab:red"]
        for i, h in enumerate(heights):
            if np.isfinite(h):
                ax.bar(i, h, color=colours[i])
                ax.text(i, h + 0.01, f"{h:.3f}", ha="center", va="bottom", fontsize=8)
            else:
                ax.bar(i, 1.0, color=NAN_COLOUR, hatch=NAN_HATCH, edgecolor="grey")
                ax.text(i, 0.5, NOT_ESTIMATED, ha="center", va="center", rotation=90, fontsize=8)
        if np.isfinite(y):
            ax.errorbar([len(names)], [y], yerr=[[y - float(ds.yield_ci_low)], [float(ds.yield_ci_high) - y]],
                        color="k", capsize=4)
        ax.set_xticks(range(len(heights)), names + ["envelope"], rotation=30, ha="right")
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
    ax.axhline(target, color="grey", ls="--", lw=1)
    ax.set_ylabel("yield (fraction of modules passing)")
    ax.set_ylim(-0.02, 1.08)
    _set_title(fig, title_text(ds, "yield per condition and envelope"),
               caption_text(ds, "Yield per condition and envelope",
                            f"Envelope: a module passes only under every condition (red bar, with its 95 % "
                            f"interval). Dashed: target yield {target:g}."))
    return fig


# --------------------------------------------------------------------------- yield vs spec
def spec_at_yield(spec_db, yield_, target: float) -> float | None:
    """The smallest spec (linear interpolation on the grid) at which ``yield_`` reaches
    ``target``; None when it never does on the grid, the grid's first value when it is
    reached there already."""
    x, y = np.asarray(spec_db, dtype=float), np.asarray(yield_, dtype=float)
    ok = np.nonzero(np.isfinite(y) & (y >= target))[0]
    if ok.size == 0:
        return None
    i = int(ok[0])
    if i == 0:
        return float(x[0])
    y0, y1 = y[i - 1], y[i]
    return float(x[i - 1] + (target - y0) / (y1 - y0) * (x[i] - x[i - 1])) if y1 > y0 else float(x[i])


def spec_figure(ds: xr.Dataset, *, target_yield: float | None = None):
    """Yield versus the loss spec (``yield_vs_spec``) from 0 dB with its 95 % band, the
    configured spec and the spec at the target yield marked and printed; each condition's
    curve beside the envelope; one curve per point of a single swept key. None without
    ``yield_vs_spec`` or with more than one swept key."""
    if "yield_vs_spec" not in ds:
        return None
    dims = sweep_dims(ds)
    if len(dims) > 1:
        return None
    target = _target(ds, target_yield)
    keep = ds.spec_db.values >= 0
    x = ds.spec_db.values[keep]
    fig, ax = plt.subplots(figsize=(6.5, 4.6), layout="constrained")
    found = []
    if dims:
        ds = ds.sortby(dims)
        for i in range(ds.sizes[dims[0]]):
            sub = ds.isel({dims[0]: i})
            y = sub.yield_vs_spec.values[keep]
            s = spec_at_yield(x, y, target)
            value = float(ds[dims[0]][i])
            label = _point(ds, dims[0], value)
            line, = ax.plot(x, y, lw=1.5, label=f"{value:g}: " + (f"{s:.2f} dB" if s is not None else "not reached"))
            if s is not None:
                ax.plot([s], [target], "o", color=line.get_color(), ms=5)
                found.append(f"{label}: {s:.2f} dB")
    else:
        y = ds.yield_vs_spec.values[keep]
        lo, hi = ds.yield_vs_spec_ci_low.values[keep], ds.yield_vs_spec_ci_high.values[keep]
        ax.fill_between(x, lo, hi, color="k", alpha=0.2, label="95 % interval")
        ax.plot(x, y, "k-", lw=2, zorder=3,
                label="envelope (every condition)" if "condition_yield_vs_spec" in ds else "yield")
        if "condition_yield_vs_spec" in ds:
            for k, name in enumerate(ds.condition.values):
                ax.plot(x, ds.condition_yield_vs_spec.isel(condition=k).values[keep], lw=1, label=str(name))
        s = spec_at_yield(x, y, target)
        if s is not None:
            s_lo, s_hi = spec_at_yield(x, hi, target), spec_at_yield(x, lo, target)
            band = f" ({s_lo:.2f}–{s_hi:.2f} dB)" if s_lo is not None and s_hi is not None else ""
            ax.plot([s, s], [0, target], color="tab:blue", lw=1.2)
            ax.plot([s], [target], "o", color="tab:blue", ms=6, label=f"spec for yield {target:g}: {s:.2f} dB{band}")
            ax.annotate(f"{s:.2f} dB", (s, target), textcoords="offset points", xytext=(7, -16),
                        color="tab:blue", fontsize=9, fontweight="bold")
            found.append(f"{s:.2f} dB{band}")
    spec_cfg = value_at(_config(ds), "spec.max_loss_db")
    spec = float(spec_cfg) if spec_cfg is not None else float(ds.spec_db.values[ds.sizes["spec_db"] // 2])
    ax.axvline(spec, color="tab:red", ls=":", lw=1.2, label=f"configured spec {spec:g} dB")
    ax.axhline(target, color="grey", ls="--", lw=1, label=f"target yield {target:g}")
    ax.set_xlim(0, float(x[-1]))
    ax.set_xlabel("loss spec spec.max_loss_db [dB]")
    ax.set_ylabel("yield (fraction of modules passing)")
    ax.set_ylim(-0.02, 1.02)
    handles, labels = ax.get_legend_handles_labels()
    title = f"{axis_label(ds, dims[0])}: spec at yield {target:g}" if dims else None
    ncols = 1 if max(map(len, labels)) > 48 else 2 if max(map(len, labels)) > 30 else 3
    fig.legend(handles, labels, fontsize=8, title=title, title_fontsize=8, loc="outside lower center",
               ncols=min(ncols, len(labels)))
    where = "; ".join(found) if found else "not reached on the grid"
    _set_title(fig, title_text(ds, f"yield versus loss spec (yield {target:g} at {where.split(' (')[0]})"
                               if len(found) <= 1 else "yield versus loss spec"),
               caption_text(ds, "Yield versus the loss spec",
                            f"Same modules; only the loss spec changes. Spec at which the yield reaches "
                            f"{target:g}: {where} (in brackets: from the 95 % band)."))
    return fig


# --------------------------------------------------------------------------- fail fractions
def _fail_point(ds: xr.Dataset):
    """(Dataset at the lowest-yield sweep point, text naming the point)."""
    dims = sweep_dims(ds)
    if not dims:
        return ds, ""
    y = np.asarray(ds["yield"].values, dtype=float)
    flat = int(np.nanargmin(y)) if np.isfinite(y).any() else 0
    sel = dict(zip(dims, np.unravel_index(flat, y.shape)))
    sub = ds.isel(sel)
    return sub, "At the lowest-yield point: " + ", ".join(_point(sub, d, float(sub[d])) for d in dims) + "."


def _fail_what(conds, where: str) -> str:
    return ("channel fail fraction" + (" per condition" if conds[0] is not None else "")
            + (" at the lowest-yield point" if where else ""))


def _wilson(f: np.ndarray, n: float) -> tuple[np.ndarray, np.ndarray]:
    """95 % Wilson interval of binomial fractions ``f`` of ``n`` (Wilson 1927)."""
    z = 1.959963984540054
    denom = 1 + z * z / n
    centre = (f + z * z / (2 * n)) / denom
    half = z * np.sqrt(np.maximum(f * (1 - f), 0) / n + z * z / (4 * n * n)) / denom
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def fail_figure(ds: xr.Dataset):
    """Per-channel fail fraction at the sweep point of lowest yield.

    A single-layer package: the fraction per channel (markers and a line) with its 95 %
    Wilson interval (samplers that count modules: mc, qmc), on a scale fitted to the values
    (logarithmic when they span more than LOG_RATIO). A stack: a layer × channel heat map
    with a fitted colour scale and the value in each cell. Conditions: small multiples on one
    shared scale. A channel whose fraction was not estimated (NaN) is hatched grey and
    labelled; a sampler that estimates none gives a panel that says so.
    """
    sub, where = _fail_point(ds)
    fail = sub.channel_fail_fraction
    conds = [str(c) for c in fail.condition.values] if "condition" in fail.dims else [None]
    order = [d for d in ("condition", "layer", "channel") if d in fail.dims]
    rest = [d for d in fail.dims if d not in order]
    if rest:  # any further dimension: its first entry
        fail = fail.isel({d: 0 for d in rest})
    v = np.asarray(fail.transpose(*order).values, dtype=float).reshape(len(conds), fail.sizes["layer"],
                                                                        fail.sizes["channel"])
    n = float(np.asarray(sub.n_samples.values).min())
    sampler = str(ds.attrs.get("sampler", "?"))
    what = "channel fail fraction"
    if not np.isfinite(v).any():
        fig, ax = plt.subplots(figsize=(6.5, 3.2), layout="constrained")
        ax.add_patch(Rectangle((0, 0), 1, 1, transform=ax.transAxes, facecolor=NAN_COLOUR, edgecolor="grey",
                               hatch=NAN_HATCH))
        ax.text(0.5, 0.5, f"channel fail fractions {NOT_ESTIMATED}\nby this sampler ({sampler})", ha="center",
                va="center", fontsize=12, transform=ax.transAxes,
                bbox={"facecolor": "white", "edgecolor": "grey"})
        ax.set_xticks([])
        ax.set_yticks([])
        _set_title(fig, title_text(sub, what), caption_text(
            sub, "Channel fail fraction", f"{where} The sampler ({sampler}) estimates the module yield only; "
            "every per-channel value is NaN (not estimated) and is not drawn as a number."))
        return fig
    if v.shape[1] == 1:
        return _fail_lines(sub, v[:, 0, :], conds, n, sampler, where)
    return _fail_heat(sub, v, conds, where)


def _fail_lines(ds, v: np.ndarray, conds, n: float, sampler: str, where: str):
    """One panel per condition: fraction per channel with its interval, shared y scale."""
    nc = v.shape[1]
    counted = sampler in ("mc", "qmc") and n > 0
    lo, hi = _wilson(np.nan_to_num(v), n) if counted else (v, v)
    lo, hi = np.fmin(lo, v), np.fmax(hi, v)  # rounding at f = 0 or 1 must not put f outside
    finite = v[np.isfinite(v)]
    pos = finite[finite > 0]
    log = pos.size > 0 and pos.max() / pos.min() > LOG_RATIO
    fig, axes = _grid(len(conds), (min(4.5, max(3.4, 0.2 * nc + 1.2)), 2.5), ncols=3)
    ch = np.arange(nc)
    has_nan = has_zero_log = False
    for ax, k, name in zip(axes, range(len(conds)), conds):
        f = v[k]
        ok = np.isfinite(f)
        if counted:
            ax.fill_between(ch, np.where(ok, lo[k], np.nan), np.where(ok, hi[k], np.nan), color="tab:red",
                            alpha=0.2, step=None, label="95 % Wilson interval")
            ax.errorbar(ch[ok], f[ok], yerr=[f[ok] - lo[k][ok], hi[k][ok] - f[ok]], fmt="none", ecolor="tab:red",
                        elinewidth=1, capsize=2)
        shown = np.where(ok & ((f > 0) | ~log), f, np.nan)
        ax.plot(ch, shown, "o-", color="tab:red", ms=4, lw=1, label="fail fraction")
        for c in ch[~ok]:
            has_nan = True
            ax.axvspan(c - 0.4, c + 0.4, facecolor=NAN_COLOUR, edgecolor="grey", hatch=NAN_HATCH, lw=0)
            ax.text(c, 0.5, NOT_ESTIMATED, rotation=90, ha="center", va="center", fontsize=7,
                    transform=ax.get_xaxis_transform())
        if log:
            zero = ch[ok & (f == 0)]
            if zero.size:
                has_zero_log = True
                ax.plot(zero, np.full(zero.size, pos.min() / 3), "v", color=ZERO_COLOUR, ms=6, label="exactly 0")
        if name is not None:
            ax.set_title(f"condition {name}", fontsize=9)
        ax.set_xticks(ch if nc <= 16 else ch[:: max(1, nc // 16)])
        ax.set_xlim(-0.6, nc - 0.4)
        ax.set_xlabel("channel index")
        ax.grid(alpha=0.3)
    for ax in axes[::3]:
        ax.set_ylabel("fail fraction (of modules)")
    if log:
        for ax in axes:
            ax.set_yscale("log")
    handles, labels = axes[0].get_legend_handles_labels()
    if has_nan:
        handles.append(_nan_patch())
    axes[0].legend(handles=handles, fontsize=7, loc="best")
    scale = "logarithmic (values span more than 100×)" if log else "linear, fitted to the values"
    if len(conds) > 1:
        scale += ", each panel its own (read the levels off the axes)"
    interval = (f"95 % Wilson interval of {int(n):,} modules" if counted else
                f"no per-channel interval from this sampler ({sampler})")
    _set_title(fig, title_text(ds, _fail_what(conds, where)),
               caption_text(ds, "Channel fail fraction per channel",
                            f"{where} Scale: {scale}. Band and bars: {interval}."
                            + (" Green ▼: exactly 0." if has_zero_log else "")
                            + (f" Hatched grey: {NOT_ESTIMATED}." if has_nan else "")))
    return fig


def _fail_heat(ds, v: np.ndarray, conds, where: str):
    """Layer × channel heat maps (one per condition) on one colour scale fitted to the values."""
    _, nl, nc = v.shape
    norm = auto_norm(v)
    log = isinstance(norm, LogNorm)
    magma = plt.get_cmap("magma_r")(np.linspace(0.05, 0.9, 256))  # pale = rare, dark = often
    cmap = ListedColormap(magma, name="fail").with_extremes(under=ZERO_COLOUR, bad=NAN_COLOUR)
    panel_w = min(10.0, max(4.0, 0.26 * nc + 1.4))
    ncols = 1 if panel_w > 6 else 2
    if len(conds) > 1 and nc > 16:
        panel_w, ncols = min(6.0, 0.16 * nc + 1.0), 2
    fig, axes = _grid(len(conds), (panel_w, max(1.6, 0.38 * nl + 1.0)), ncols=ncols)
    text = nl * nc <= MAX_CELL_TEXT and nc <= 16
    d = 2 if text else 0
    im = None
    has_nan = bool(np.isnan(v).any())
    has_zero = log and bool((v == 0).any())
    xe, ye = np.arange(nc + 1) - 0.5, np.arange(nl + 1) - 0.5
    for ax, k, name in zip(axes, range(len(conds)), conds):
        f = v[k]
        shown = np.ma.masked_invalid(np.where(f == 0, 0.0 if not log else norm.vmin / 10, f))
        im = ax.imshow(shown, origin="lower", aspect="auto", cmap=cmap, norm=norm, interpolation="nearest",
                       extent=(-0.5, nc - 0.5, -0.5, nl - 0.5))
        _hatch_nan(ax, np.isnan(f), xe, ye)
        if text:
            for (r, c), val in np.ndenumerate(f):
                if np.isfinite(val):
                    ax.text(c, r, f"{val:.{d}g}" if val < 0.01 else f"{val:.3f}", ha="center", va="center",
                            fontsize=6.5, color=_text_colour(cmap(norm(val))) if val > 0 or not log else "white")
        ax.set_xlabel("channel index")
        ax.set_ylabel("layer index (0 = bottom)")
        ax.set_yticks(range(nl))
        if name is not None:
            ax.set_title(f"condition {name}", fontsize=9)
    rows = math.ceil(len(conds) / ncols)
    cbar = fig.colorbar(im, ax=list(axes), extend="min" if has_zero else "neither", shrink=0.9 if rows == 1 else 0.6,
                        label="fail fraction (of modules)" + (", logarithmic" if log else ""))
    handles = ([_nan_patch()] if has_nan else []) + (
        [Patch(facecolor=ZERO_COLOUR, label="exactly 0")] if has_zero else [])
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8)
    del cbar
    scale = (f"logarithmic {norm.vmin:.2g}–{norm.vmax:.2g}" if log else f"linear {norm.vmin:.3g}–{norm.vmax:.3g}")
    _set_title(fig, title_text(ds, _fail_what(conds, where)),
               caption_text(ds, "Channel fail fraction, layer × channel",
                            f"{where} Colour scale fitted to the values ({scale}), shared by all panels"
                            + ("; numbers: the fraction in each cell" if text else "")
                            + (f"; hatched grey: {NOT_ESTIMATED}" if has_nan else "")
                            + ("; green: exactly 0" if has_zero else "") + "."))
    return fig


# --------------------------------------------------------------------------- sensitivity, optimize
TOLERANCE_SUFFIXES = (".sigma", ".low", ".high")


def sensitivity_figure(ds: xr.Dataset, *, top: int = 12):
    """Tornado chart of ``mode=sensitivity``: the elasticity θ/Y·∂Y/∂θ of each parameter
    (a 1 % rise of θ changes the yield by that many %), largest |elasticity| at the top,
    with its 95 % interval (1.96 × the Monte-Carlo standard error scaled like the gradient);
    the tolerances (``…sigma``, ``…low``, ``…high``: tighten from the top) in one panel, the
    nominals and the spec in another, each with its own scale and at most ``top`` bars.
    Parameters whose gradient is 0 or not finite are left out and counted in the caption."""
    names = [str(p) for p in ds.parameter.values]
    e = np.asarray(ds.elasticity.values, dtype=float)
    g = np.asarray(ds.yield_gradient.values, dtype=float)
    se = np.asarray(ds.yield_gradient_se.values, dtype=float)
    val = np.asarray(ds.value.values, dtype=float) if "value" in ds else np.full(len(names), np.nan)
    y = float(ds["yield"])
    with np.errstate(divide="ignore", invalid="ignore"):
        e_se = np.abs(val / y) * se
    keep = [i for i in range(len(names)) if np.isfinite(e[i]) and np.isfinite(g[i]) and g[i] != 0.0]
    keep.sort(key=lambda i: -abs(e[i]))
    dropped = len(names) - len(keep)
    groups = [("tolerances: tighten from the top", [i for i in keep if names[i].endswith(TOLERANCE_SUFFIXES)]),
              ("nominals and spec", [i for i in keep if not names[i].endswith(TOLERANCE_SUFFIXES)])]
    groups = [(label, idx[:top][::-1]) for label, idx in groups if idx]  # largest at the top
    if not groups:
        groups = [("no parameter with a non-zero gradient", [])]
    heights = [max(len(idx), 1) + 1.2 for _, idx in groups]
    fig, axes = plt.subplots(len(groups), 1, figsize=(8.0, 1.3 + 0.3 * sum(heights)), layout="constrained",
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, (label, shown) in zip(axes[:, 0], groups):
        colours = ["tab:red" if e[i] < 0 else "tab:blue" for i in shown]
        ax.barh(range(len(shown)), [e[i] for i in shown], color=colours,
                xerr=[1.96 * e_se[i] if np.isfinite(e_se[i]) else 0 for i in shown], ecolor="k", capsize=2)
        ax.set_yticks(range(len(shown)), [names[i] for i in shown], fontsize=8)
        ax.axvline(0, color="k", lw=0.8)
        for pos, i in enumerate(shown):
            ax.annotate(f"{e[i]:+.3g}", (e[i], pos), textcoords="offset points",
                        xytext=(4 if e[i] >= 0 else -4, 0), ha="left" if e[i] >= 0 else "right", va="center",
                        fontsize=7)
        lim = max([abs(e[i]) + 1.96 * (e_se[i] if np.isfinite(e_se[i]) else 0) for i in shown] or [1.0])
        ax.set_xlim(-1.3 * lim, 1.3 * lim)
        ax.set_ylim(-0.7, max(len(shown), 1) - 0.3)
        ax.set_title(label, fontsize=9, loc="left")
        ax.set_xlabel("elasticity: % yield change per % parameter change", fontsize=9)
    axes[0, 0].legend(handles=[Patch(color="tab:red", label="raising it lowers the yield"),
                               Patch(color="tab:blue", label="raising it raises the yield")], fontsize=7,
                      loc="lower right")
    package = value_at(_config(ds), "package.name") or "?"
    n = int(ds.n_samples)
    estimator = ds.attrs.get("estimator", "?")
    shown_all = [i for _, idx in groups for i in idx]
    _set_title(fig, f"yield sensitivity (tornado) · package {package}\n"
                    f"yield {y:.4f} · N = {n:,} modules · {estimator} estimator · {len(keep)} parameters",
               f"Tornado chart of mode=sensitivity, package {package}: elasticity θ/Y·∂Y/∂θ per parameter "
               f"(config key), the tolerances and the nominals each sorted by magnitude (at most {top} each), "
               f"bars ± 1.96 standard errors; yield {y:.4f} from {n:,} modules ({estimator} estimator). "
               f"{dropped} parameters with a zero or undefined gradient are not drawn."
               + ("" if np.isfinite(e_se[shown_all]).all() else " Standard errors not available for every "
                  "parameter (no bar where missing)."))
    return fig


def optimize_figure(ds: xr.Dataset):
    """History and verdict of ``mode=optimize``: the smoothed yield per step against the
    target with the re-checked hard yield (95 % interval) at the end, the cost (tolerance
    allocation) and each parameter's path; the verdict from the store's ``verdict`` and
    ``verdict_text`` attributes where present."""
    kind = ds.attrs.get("kind", "?")
    target = float(ds.attrs.get("target_yield", math.nan))
    steps = ds.step.values
    cost = np.asarray(ds.history_cost.values, dtype=float)
    panels = 3 if np.isfinite(cost).any() else 2
    fig, axes = plt.subplots(panels, 1, figsize=(7.0, 2.2 * panels + 1.2), sharex=True, layout="constrained")
    ax = axes[0]
    ax.plot(steps, ds.history_yield.values, "-", color="tab:blue", label="smoothed yield (fixed draws)")
    if np.isfinite(target):
        ax.axhline(target, color="grey", ls="--", lw=1, label=f"target yield {target:g}")
    y, lo, hi = float(ds["yield"]), float(ds.yield_ci_low), float(ds.yield_ci_high)
    ax.errorbar([steps[-1]], [y], yerr=[[y - lo], [hi - y]], fmt="s", color="k", capsize=3,
                label=f"re-check, fresh draws: {format_yield(y, lo, hi)}")
    ax.set_ylabel("yield (fraction)")
    ax.legend(fontsize=7, loc="best")
    verdict, verdict_text = ds.attrs.get("verdict"), ds.attrs.get("verdict_text")
    if verdict or verdict_text:
        colour = {"reached": "#e5f5e0", "unreachable": "#fde0dd"}.get(str(verdict), "#f0f0f0")
        ax.set_title(f"verdict: {verdict_text or verdict}", fontsize=8, loc="left",
                     bbox={"facecolor": colour, "edgecolor": "grey"})
    if panels == 3:
        axes[1].plot(steps, cost, color="tab:purple")
        axes[1].set_ylabel("cost Σ c/σ (cost units)")
    axp = axes[-1]
    for j, name in enumerate(ds.parameter.values):
        unit = key_unit(str(name), _config(ds))
        axp.plot(steps, ds.history_value.isel(parameter=j).values,
                 label=f"{name}" + (f" [{unit}]" if unit and unit != "1" else ""))
    axp.set_ylabel("parameter value")
    axp.set_xlabel("optimisation step")
    axp.legend(fontsize=7)
    for a in axes:
        a.grid(alpha=0.3)
    package = value_at(_config(ds), "package.name") or "?"
    head = f"{'verdict: ' + str(verdict) + ' · ' if verdict else ''}re-check yield {format_yield(y, lo, hi)}"
    optimum = ", ".join(f"{p} = {v:.4g}" for p, v in zip(ds.parameter.values, ds.optimum.values))
    _set_title(fig, f"{kind} optimisation · package {package}\n{head} · target {target:g} · N = {int(ds.n_samples):,}",
               f"History of mode=optimize ({kind}), package {package}: smoothed yield on fixed draws per step, "
               f"{'the cost Σ c/σ, ' if panels == 3 else ''}each parameter's value; optimum {optimum}; re-checked "
               f"with the hard pass indicator on {int(ds.n_samples):,} fresh modules: {format_yield(y, lo, hi)} "
               f"(95 %) against the target {target:g}." + (f" Verdict: {verdict_text or verdict}." if verdict or
                                                            verdict_text else ""))
    return fig


def calibration_figure(ds: xr.Dataset):
    """Goodness of fit of a calibration: per matched statistic (pooled channel losses,
    module mean, spread within layers, spread of layer means), the fitted model's quantiles
    against the measured ones (QQ; on the diagonal when the model reproduces the data),
    one colour per condition, with the KS p-value of the per-module statistics."""
    matched = [str(m) for m in ds.matched.values]
    fig, axes = _grid(len(matched), (3.6, 3.4), ncols=4)
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
    n = ds.attrs.get("n_modules", "?")
    _set_title(fig, f"calibration: fitted model vs measured · {n} modules\non the diagonal = reproduced",
               f"Calibration goodness of fit on {n} measured modules: QQ plot of each matched statistic, "
               "fitted model against measurement, with the Kolmogorov–Smirnov p-value (misfit below 0.01).")
    return fig


# --------------------------------------------------------------------------- files
#: The ``Software`` text of every PNG (a ``tEXt`` chunk) and the ``dc:creator`` of every SVG
#: yieldmc writes: how a plot path that yieldmc may replace is told from a user's file.
MARKER_PREFIX = "yieldmc "
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SVG_MARK = re.compile(rb"<dc:creator>\s*<cc:Agent>\s*<dc:title>" + re.escape(MARKER_PREFIX.encode()))


def marker() -> str:
    from yieldmc._version import __version__

    return MARKER_PREFIX + __version__


def _open_regular(path):
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    f = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
        f.close()
        return None
    return f


def _head(path, size: int) -> bytes | None:
    """The first ``size`` bytes of a regular file (not a symlink), or None."""
    f = _open_regular(path)
    if f is None:
        return None
    with f:
        return f.read(size)


def is_yieldmc_png(path) -> bool:
    """Whether ``path`` is a regular file (not a symlink) holding a PNG with yieldmc's
    ``Software`` marker (any version) in a ``tEXt`` chunk before the image data."""
    f = _open_regular(path)
    if f is None:
        return False
    with f:
        if f.read(8) != _PNG_SIGNATURE:
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


def is_yieldmc_svg(path) -> bool:
    """Whether ``path`` is a regular file (not a symlink) holding an SVG whose metadata
    names yieldmc (any version) as its creator, within its first 64 kB."""
    head = _head(path, 1 << 16)
    return head is not None and head.lstrip().startswith(b"<?xml") and b"<svg" in head and _SVG_MARK.search(head) is not None


_HTML_MARK = re.compile(rb'<meta name="generator" content="' + re.escape(MARKER_PREFIX.encode()))


def is_yieldmc_html(path) -> bool:
    """Whether ``path`` is a regular file (not a symlink) holding an HTML page whose head
    names yieldmc (any version) as its generator, within its first 4 kB."""
    head = _head(path, 4096)
    return head is not None and head.lstrip().lower().startswith(b"<!doctype html") and _HTML_MARK.search(head) is not None


def _is_ours(path: Path) -> bool:
    """A yieldmc PNG / SVG / HTML report, by the marker in its head."""
    check = {".svg": is_yieldmc_svg, ".html": is_yieldmc_html}.get(Path(path).suffix, is_yieldmc_png)
    return check(path)


def _replaceable(path: Path) -> bool:
    """Absent, or a yieldmc PNG / SVG / HTML report (:func:`yieldmc.outputs.replaceable`)."""
    return replaceable(path, _is_ours)


def _refuse(path: Path, what: str = "plot") -> None:
    print(f"{what}: {path} exists and was not written by yieldmc; left untouched", file=sys.stderr)


def figure_bytes(fig, fmt: str = "png") -> bytes:
    """The figure as PNG (150 dpi, 256-colour palette) or SVG bytes, with the marker, title
    and caption in its metadata."""
    import io

    title = getattr(fig, "yieldmc_title", "").replace("\n", " — ")
    caption = getattr(fig, "yieldmc_caption", "")
    buf = io.BytesIO()
    if fmt == "svg":
        meta = {"Creator": marker(), "Title": title, "Description": caption, "Date": None}
        fig.savefig(buf, format="svg", metadata=meta)
        return buf.getvalue()
    from PIL import Image, PngImagePlugin

    # a plot has few colours: a 256-colour palette (no dithering) keeps it sharp at a third
    # of the size of the RGBA image
    fig.savefig(buf, format="png", dpi=DPI)
    buf.seek(0)
    with Image.open(buf) as im:
        pal = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    info = PngImagePlugin.PngInfo()
    for key, value in (("Software", marker()), ("Title", title), ("Description", caption)):
        info.add_text(key, value)
    out = io.BytesIO()
    pal.save(out, format="PNG", pnginfo=info, dpi=(DPI, DPI), optimize=True)
    return out.getvalue()


def _write_atomic(data: bytes, path: Path, *, what: str = "plot") -> Path | None:
    """Write ``data`` to ``path`` through :func:`yieldmc.outputs.write_replacing`: only where
    :func:`_replaceable`, else one line on stderr and None. An OSError (e.g. a read-only
    directory) is reported the same way: plots never fail a run."""
    path = Path(path)
    try:
        if write_replacing(data, path, ours=_is_ours):
            return path
        _refuse(path, what)
        return None
    except OSError as exc:
        print(f"{what}: cannot write {path}: {exc.strerror or exc}; skipped", file=sys.stderr)
        return None


def _save(fig, path: Path, *, svg: bool = False) -> Path | None:
    """Write ``fig`` as a marked PNG at ``path`` (and, with ``svg``, as ``path`` with the
    suffix .svg), each through :func:`_write_atomic`; returns the PNG path or None."""
    try:
        out = _write_atomic(figure_bytes(fig, "png"), Path(path))
        if svg:
            _write_atomic(figure_bytes(fig, "svg"), Path(path).with_suffix(".svg"))
        return out
    finally:
        plt.close(fig)


def _write_plot(make, path: Path, *, svg: bool = False) -> Path | None:
    """Draw ``make()`` and write it unless a path yieldmc may not replace is in the way
    (checked before drawing); None when nothing is drawn or written."""
    path = Path(path)
    if os.path.lexists(path) and not _replaceable(path):
        _refuse(path)
        return None
    if svg and os.path.lexists(path.with_suffix(".svg")) and not _replaceable(path.with_suffix(".svg")):
        _refuse(path.with_suffix(".svg"))
        svg = False
    fig = make()
    return None if fig is None else _save(fig, path, svg=svg)


def plot_fail_map(ds: xr.Dataset, path: Path, *, svg: bool = False) -> Path | None:
    """Write the fail-fraction figure; None when not written."""
    return _write_plot(lambda: fail_figure(ds), path, svg=svg)


def _band_point(ds: xr.Dataset) -> tuple[dict, str]:
    """The sweep point of the lowest expected yield (index by dimension) and its label."""
    expected = ds["yield_expected"]
    if not expected.dims:
        return {}, ""
    flat = np.where(np.isnan(expected.values), np.inf, expected.values)
    at = dict(zip(expected.dims, (int(i) for i in np.unravel_index(int(np.argmin(flat)), flat.shape))))
    return at, ", ".join(f"{d}={ds[d].values[i]:g}" for d, i in at.items())


def band_figure(ds: xr.Dataset):
    """Model uncertainty: the yields of the realisations (a histogram) with the band's
    5 / 50 / 95 % quantiles and the expected yield; with one swept key, the band against
    it (5–95 % shaded, the median and the expected yield as lines). None with more swept keys."""
    dims = [d for d in ds["yield_expected"].dims if d not in CHANNEL_DIMS]
    if len(dims) > 1:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4.6), layout="constrained")
    n, k = ds.sizes["realization"], ds.sizes["uncertain"]
    if dims:
        d = dims[0]
        sub = ds.sortby(d)
        x = sub[d].values
        band = sub.yield_band.transpose("band_quantile", d).values
        ax.fill_between(x, band[0], band[-1], alpha=0.3, label="5–95 % over the uncertain values")
        ax.plot(x, band[1], "o-", label="median")
        ax.plot(x, sub.yield_expected.values, "k--", label="expected (predictive) yield")
        ax.set_xlabel(axis_label(ds, d))
        ax.set_ylabel("yield (fraction of modules passing)")
    else:
        y = np.asarray(ds.yield_realization.values, dtype=float)
        ax.hist(y[np.isfinite(y)], bins=max(8, min(40, n // 4)), color="tab:blue", alpha=0.6)
        for q, v in zip(ds.band_quantile.values, ds.yield_band.values):
            ax.axvline(v, color="k", ls=":" if q != 0.5 else "-", lw=1.2)
            ax.annotate(f"{100 * q:g} %: {v:.3f}", (v, 1), xycoords=("data", "axes fraction"),
                        rotation=90, va="top", ha="right", fontsize=8)
        ax.axvline(float(ds.yield_expected), color="tab:red", ls="--", lw=1.2,
                   label=f"expected {float(ds.yield_expected):.3f}")
        ax.set_xlabel("yield of a realisation (fraction of modules passing)")
        ax.set_ylabel("realisations")
    ax.legend(fontsize=8)
    ax.set_title(f"yield band: {n} realisations of {k} uncertain inputs\n"
                 f"{ds.attrs.get('package', '')}, inner Monte-Carlo error "
                 f"{float(np.nanmax(ds.yield_inner_se.values)):.2g}", fontsize=10)
    return fig


def importance_figure(ds: xr.Dataset, *, top: int = 15):
    """Tornado of the uncertain inputs' first-order variance shares of the yield (largest
    at the top) with 1.96 standard errors, at the sweep point of the lowest expected yield."""
    at, where = _band_point(ds)
    point = ds.isel(at)
    names = [str(u) for u in ds.uncertain.values]
    s = np.asarray(point.uncertain_importance.values, dtype=float)
    se = np.asarray(point.uncertain_importance_se.values, dtype=float)
    shown = [i for i in np.argsort(-np.where(np.isfinite(s), s, -np.inf)) if np.isfinite(s[i])][:top][::-1]
    fig, ax = plt.subplots(figsize=(8.0, 1.6 + 0.3 * max(len(shown), 1)), layout="constrained")
    ax.barh(range(len(shown)), [s[i] for i in shown], color="tab:blue",
            xerr=[1.96 * se[i] if np.isfinite(se[i]) else 0 for i in shown], ecolor="k", capsize=2)
    ax.set_yticks(range(len(shown)), [names[i] for i in shown], fontsize=8)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel("first-order share of the yield's variance over the uncertain values")
    ax.set_title("what drives the yield band" + (f" (at {where})" if where else "") + "\n"
                 f"{ds.sizes['realization']} realisations; bars: 95 % interval", fontsize=10)
    return fig


def store_kind(ds: xr.Dataset) -> str:
    """``run``, ``sensitivity``, ``optimize`` or ``calibrate``, from the variables."""
    if "elasticity" in ds:
        return "sensitivity"
    if "history_yield" in ds:
        return "optimize"
    if "gof_p_value" in ds and "matched" in ds.dims:
        return "calibrate"
    return "run"


def figures(ds: xr.Dataset, *, target_yield: float | None = None) -> list[tuple[str, object]]:
    """``(suffix, make)`` of every figure of a store, in the order of :func:`plot_all`;
    ``make()`` returns the Figure or None."""
    kind = store_kind(ds)
    if kind == "sensitivity":
        return [("tornado", lambda: sensitivity_figure(ds))]
    if kind == "optimize":
        return [("history", lambda: optimize_figure(ds))]
    if kind == "calibrate":
        return [("fit", lambda: calibration_figure(ds))]
    if "yield_band" in ds:
        return [("band", lambda: band_figure(ds)), ("importance", lambda: importance_figure(ds))]
    return [("yield", lambda: yield_figure(ds, target_yield=target_yield)), ("fail", lambda: fail_figure(ds)),
            ("spec", lambda: spec_figure(ds, target_yield=target_yield))]


def plot_all(ds: xr.Dataset, store_path, *, target_yield: float | None = None, svg: bool = False) -> list[Path]:
    """Write the plots of a store beside it: ``<store>_yield.png`` (swept, or conditions),
    ``<store>_fail.png``, ``<store>_spec.png`` (``yield_vs_spec``); ``<store>_tornado.png``
    for ``mode=sensitivity``, ``<store>_history.png`` for ``mode=optimize``,
    ``<store>_fit.png`` for ``mode=calibrate``; with ``svg`` an SVG beside each PNG.

    A path that exists and is not a yieldmc plot (a user's file, a symlink, a directory) is
    left untouched and its plot skipped, with one line on stderr. Returns the PNG paths
    written. ``target_yield`` None: the store's ``output.target_yield`` (else 0.9).
    """
    stem = Path(store_path).with_suffix("")
    out = []
    for suffix, make in figures(ds, target_yield=target_yield):
        p = _write_plot(make, Path(f"{stem}_{suffix}.png"), svg=svg)
        if p is not None:
            out.append(p)
    return out


# --------------------------------------------------------------------------- command line
def _newest_store(directory: Path) -> Path | None:
    """The most recently modified complete yieldmc store directly inside ``directory``."""
    from yieldmc.io.store import root_attrs

    found = []
    for p in directory.iterdir():
        if p.is_dir() and not p.is_symlink():
            attrs = root_attrs(p)
            if attrs is not None and attrs.get("status") == "complete":
                found.append((p.stat().st_mtime, p.name, p))
    return max(found)[2] if found else None


def resolve_stores(paths, *, latest: bool = False, prog: str = "yieldmc") -> list[Path]:
    """The stores named on a command line: a store as it is; a directory that is not a store
    (e.g. ``results/``): the newest complete store in it; no path with ``latest``: the newest
    in ``results/``. Raises ValueError with a one-line message for a path that is neither."""
    from yieldmc.io.store import root_attrs

    paths = [Path(p) for p in paths] or ([Path("results")] if latest else [])
    if not paths:
        raise ValueError(f"{prog}: name a store, a directory of stores (e.g. results/) or --latest")
    out = []
    for p in paths:
        if root_attrs(p) is not None:
            out.append(p)
        elif p.is_dir():
            newest = _newest_store(p)
            if newest is None:
                raise ValueError(f"{prog}: no complete yieldmc store in {p}")
            out.append(newest)
        else:
            raise ValueError(f"{prog}: {p} is not a yieldmc store or a directory of stores")
    return out


def main(argv=None) -> int:
    """``yieldmc-plot [STORE|DIR ...] [--latest] [--svg] [--target-yield Y]``: redraw the
    plots of complete stores (a directory: its newest store)."""
    import argparse

    from yieldmc.io.store import StoreError, open_result

    parser = argparse.ArgumentParser(prog="yieldmc-plot", description=main.__doc__)
    parser.add_argument("stores", nargs="*", metavar="STORE|DIR",
                        help="a yieldmc zarr store, or a directory of stores (its newest complete one)")
    parser.add_argument("--latest", action="store_true", help="the newest complete store in results/ "
                        "(or in each directory named)")
    parser.add_argument("--svg", action="store_true", help="also write an SVG beside each PNG")
    parser.add_argument("--target-yield", type=float, default=None,
                        help="reference yield (default: the store's output.target_yield)")
    args = parser.parse_args(argv)
    try:
        stores = resolve_stores(args.stores, latest=args.latest, prog="yieldmc-plot")
        data = [(s, open_result(s)) for s in stores]
    except (StoreError, ValueError) as exc:
        msg = str(exc)
        print(msg if msg.startswith("yieldmc-plot") else f"yieldmc-plot: error: {msg}", file=sys.stderr)
        return 2
    for store, ds in data:
        for p in plot_all(ds, store, target_yield=args.target_yield, svg=args.svg):
            print(p)
            if args.svg and is_yieldmc_svg(p.with_suffix(".svg")):
                print(p.with_suffix(".svg"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
