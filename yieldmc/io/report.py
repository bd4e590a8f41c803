"""``yieldmc-report STORE…``: one self-contained HTML page per result store (edge).

The page ``<store>_report.html`` is written beside each store and needs nothing else to be
opened: the summary, the yield with its interval, the per-condition table, the sensitivities
or the optimisation (where the store has them), every plot of :mod:`yieldmc.io.plots`
embedded as a ``data:`` PNG with its caption, the resolved configuration and the provenance.
It is replaced only where it is a yieldmc report (its ``<meta name="generator">``), like the
plots (docs/plots.md).
"""

from __future__ import annotations

import base64
import html
import sys
from pathlib import Path

import numpy as np
import xarray as xr

from yieldmc.io import plots

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;max-width:1100px;
margin:1.5em auto;padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0;font-size:.92em} th,td{border:1px solid #ccc;padding:.25em .6em}
th{background:#f2f2f2;text-align:left} td.num{text-align:right;font-variant-numeric:tabular-nums}
td.nan{color:#777;font-style:italic;background:repeating-linear-gradient(45deg,#eee,#eee 4px,#fff 4px,#fff 8px)}
pre{background:#f7f7f7;border:1px solid #ddd;padding:.6em;overflow-x:auto;font-size:.85em}
figure{margin:1em 0} img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85em;color:#444;max-width:60em} .meta{color:#666;font-size:.9em}
.verdict{padding:.4em .8em;border:1px solid #999;display:inline-block}
.reached{background:#e5f5e0} .unreachable{background:#fde0dd}
"""

NOT_ESTIMATED = plots.NOT_ESTIMATED


def report_path(store_path) -> Path:
    """``<store without .zarr>_report.html`` beside the store."""
    return Path(f"{Path(store_path).with_suffix('')}_report.html")


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _num(v, fmt: str = ".4f") -> str:
    """A table cell: the number, or "not estimated" (hatched) for NaN."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return f"<td>{_e(v)}</td>"
    if not np.isfinite(f):
        return f'<td class="nan">{NOT_ESTIMATED}</td>'
    return f'<td class="num">{f:{fmt}}</td>'


def _table(header: list[str], rows: list[list[str]], table_id: str) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(r) + "</tr>" for r in rows)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def summary_text(ds: xr.Dataset, store_path) -> str:
    """The command line's summary of the store (the text ``yieldmc`` printed)."""
    kind = plots.store_kind(ds)
    if kind == "sensitivity":
        from yieldmc.analysis.sensitivity import ranked_table

        return ranked_table(ds)
    if kind == "optimize":
        lines = [f"{ds.attrs.get('kind', '?')} optimisation ({ds.sizes['step']} steps):"]
        lines += [f"  {p} = {v:.6g}" for p, v in zip(ds.parameter.values, ds.optimum.values)]
        lines.append(f"re-check on fresh draws: yield {float(ds['yield']):.4f} (95 % CI {float(ds.yield_ci_low):.4f}"
                     f" – {float(ds.yield_ci_high):.4f}, {int(ds.n_samples)} modules), target "
                     f"{float(ds.attrs.get('target_yield', float('nan'))):g}")
        return "\n".join(lines)
    if kind == "calibrate":
        lines = [f"calibration on {ds.attrs.get('n_modules', '?')} measured modules:"]
        lines += [f"  {p} = {v:.4g} ± {s:.2g}" for p, v, s in zip(ds.parameter.values, ds.value.values,
                                                                  ds.value_se.values)]
        return "\n".join(lines)
    from yieldmc.io.cli import summary

    try:
        return summary(ds, Path(store_path), [])
    except (AttributeError, KeyError, IndexError, ValueError):  # a store the command line cannot summarise
        y, lo, hi = (np.asarray(ds[v].values, dtype=float).ravel() for v in ("yield", "yield_ci_low", "yield_ci_high"))
        i = int(np.nanargmin(y)) if np.isfinite(y).any() else 0
        return f"yield {y[i]:.4f} (95 % CI {lo[i]:.4f} – {hi[i]:.4f}; a map: its lowest point)"


def _yield_section(ds: xr.Dataset) -> str:
    """The yield with its interval: one row, or one per sweep point (up to 400)."""
    dims = plots.sweep_dims(ds)
    method = ds.attrs.get("interval_method", "95 %")
    header = [f"{d} [{plots.coord_unit(ds, d)}]" if plots.coord_unit(ds, d) not in (None, "1") else d
              for d in dims] + ["yield", "95 % low", "95 % high", "modules"]
    flat = {v: np.asarray(ds[v].values, dtype=float).ravel() for v in ("yield", "yield_ci_low", "yield_ci_high")}
    n = np.broadcast_to(np.asarray(ds.n_samples.values), ds["yield"].shape).ravel()
    rows = []
    grid = np.indices(ds["yield"].shape).reshape(len(dims), -1).T if dims else [()]
    for i, idx in enumerate(grid):
        if i >= 400:
            break
        coords = [f'<td class="num">{float(ds[d].values[j]):g}</td>' for d, j in zip(dims, idx)]
        rows.append(coords + [_num(flat["yield"][i]), _num(flat["yield_ci_low"][i]),
                              _num(flat["yield_ci_high"][i]), f'<td class="num">{int(n[i]):,}</td>'])
    note = f"<p class=\"meta\">Interval: {_e(method)}. Sampler: {_e(ds.attrs.get('sampler', '?'))}.</p>"
    return "<h2>Yield and interval</h2>" + _table(header, rows, "yield-table") + note


def _condition_section(ds: xr.Dataset) -> str:
    if "condition_yield" not in ds:
        return ""
    dims = plots.sweep_dims(ds)
    where = ""
    if dims:
        y = np.asarray(ds["yield"].values, dtype=float)
        idx = np.unravel_index(int(np.nanargmin(y)) if np.isfinite(y).any() else 0, y.shape)
        ds = ds.isel(dict(zip(dims, idx)))
        where = " at the lowest-yield point (" + ", ".join(f"{d} = {float(ds[d]):g}" for d in dims) + ")"
    rows = []
    for k, name in enumerate(ds.condition.values):
        row = [f"<td>{_e(name)}</td>", _num(ds.condition_yield.values[k])]
        for v in ("condition_fail_only", "yield_without_condition"):
            row.append(_num(ds[v].values[k]) if v in ds else '<td class="nan">—</td>')
        rows.append(row)
    rows.append(["<td><b>envelope</b> (every condition)</td>", _num(ds["yield"].values), '<td></td>', '<td></td>'])
    return (f"<h2>Per condition{_e(where)}</h2>"
            + _table(["condition", "yield", "fails only here", "envelope yield without it"], rows, "condition-table"))


def _sensitivity_section(ds: xr.Dataset) -> str:
    if "elasticity" not in ds:
        return ""
    e = np.asarray(ds.elasticity.values, dtype=float)
    order = sorted(range(e.size), key=lambda i: -abs(e[i]) if np.isfinite(e[i]) else 1.0)
    rows = []
    for i in order:
        rows.append([f"<td>{_e(ds.parameter.values[i])}</td>",
                     _num(ds.value.values[i], ".6g") if "value" in ds else "<td></td>",
                     _num(ds.yield_gradient.values[i], ".4g"), _num(ds.yield_gradient_se.values[i], ".2g"),
                     _num(e[i], ".4g")])
    return ("<h2>Sensitivities</h2><p class=\"meta\">Sorted by |elasticity| (θ/Y·∂Y/∂θ: % yield change per % "
            f"parameter change); estimator {_e(ds.attrs.get('estimator', '?'))}.</p>"
            + _table(["parameter", "value", "∂Y/∂θ", "± standard error", "elasticity"], rows, "sensitivity-table"))


def _optimize_section(ds: xr.Dataset) -> str:
    if "history_yield" not in ds:
        return ""
    verdict, text = ds.attrs.get("verdict"), ds.attrs.get("verdict_text")
    out = "<h2>Optimisation</h2>"
    if verdict or text:
        v = _e(verdict or "")
        out += f'<p id="verdict" class="verdict {v}">verdict: <b>{v}</b> {_e(text or "")}</p>'
    rows = [[f"<td>{_e(p)}</td>", _num(v, ".6g")] for p, v in zip(ds.parameter.values, ds.optimum.values)]
    return out + _table(["parameter", "optimum"], rows, "optimum-table")


def _figures_section(ds: xr.Dataset) -> str:
    out = ["<h2>Plots</h2>"]
    import matplotlib.pyplot as plt

    for suffix, make in plots.figures(ds):
        fig = make()
        if fig is None:
            continue
        try:
            data = base64.b64encode(plots.figure_bytes(fig, "png")).decode("ascii")
            title = getattr(fig, "yieldmc_title", suffix).replace("\n", " — ")
            caption = getattr(fig, "yieldmc_caption", "")
        finally:
            plt.close(fig)
        out.append(f'<figure id="plot-{_e(suffix)}"><img alt="{_e(title)}" src="data:image/png;base64,{data}">'
                   f"<figcaption>{_e(caption)}</figcaption></figure>")
    return "".join(out)


def _provenance_section(ds: xr.Dataset) -> str:
    rows = [[f"<td>{_e(k)}</td>", f"<td>{_e(v)}</td>"] for k, v in ds.attrs.items()
            if k != "config_yaml" and len(str(v)) < 2000]
    return "<h2>Provenance</h2>" + _table(["attribute", "value"], rows, "provenance-table")


def report_html(ds: xr.Dataset, store_path) -> str:
    """The report page of one store, as one self-contained HTML string."""
    store_path = Path(store_path)
    package = plots.value_at(plots._config(ds), "package.name") or "?"
    kind = plots.store_kind(ds)
    title = f"yieldmc report: {store_path.name}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta name="generator" content="{_e(plots.marker())}">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">package {_e(package)} · {_e(kind)} · store {_e(store_path)}'
        + (f" · created {_e(ds.attrs['date_created'])}" if "date_created" in ds.attrs else "") + "</p>",
        "<h2>Summary</h2>",
        f'<pre id="summary">{_e(summary_text(ds, store_path))}</pre>',
    ]
    if "yield_ci_low" in ds and kind == "run":
        parts.append(_yield_section(ds))
    parts += [_condition_section(ds) if kind == "run" else "", _sensitivity_section(ds), _optimize_section(ds),
              _figures_section(ds),
              '<h2>Configuration</h2><pre id="configuration">' + _e(ds.attrs.get("config_yaml", "(none stored)"))
              + "</pre>",
              _provenance_section(ds), "</body></html>"]
    return "\n".join(p for p in parts if p)


def write_report(ds: xr.Dataset, store_path) -> Path | None:
    """Write :func:`report_path` (atomically; only over a yieldmc report); None if not written."""
    path = report_path(store_path)
    if not plots._replaceable(path):  # checked before drawing, and again when written
        plots._refuse(path, "report")
        return None
    return plots._write_atomic(report_html(ds, store_path).encode("utf-8"), report_path(store_path),
                               what="report")


def main(argv=None) -> int:
    """``yieldmc-report [STORE|DIR ...] [--latest]``: write ``<store>_report.html`` beside each
    complete store (a directory: its newest store)."""
    import argparse

    from yieldmc.io.store import StoreError, open_result

    parser = argparse.ArgumentParser(prog="yieldmc-report", description=main.__doc__)
    parser.add_argument("stores", nargs="*", metavar="STORE|DIR",
                        help="a yieldmc zarr store, or a directory of stores (its newest complete one)")
    parser.add_argument("--latest", action="store_true", help="the newest complete store in results/")
    args = parser.parse_args(argv)
    try:
        stores = plots.resolve_stores(args.stores, latest=args.latest, prog="yieldmc-report")
        data = [(s, open_result(s)) for s in stores]
    except (StoreError, ValueError) as exc:
        msg = str(exc)
        print(msg if msg.startswith("yieldmc-report") else f"yieldmc-report: error: {msg}", file=sys.stderr)
        return 2
    status = 0
    for store, ds in data:
        path = write_report(ds, store)
        if path is None:
            status = 1
        else:
            print(path)
    return status


if __name__ == "__main__":
    sys.exit(main())
