"""Measured module losses for calibration (pandas/xarray imported where a table is read).

A packaging line measures the insertion loss of every channel of every module. The table
(CSV with columns ``module, layer, channel, loss_db`` and optionally ``condition``; a
netCDF/zarr file or an xarray Dataset with a ``loss_db`` variable over those dimensions;
or a pandas DataFrame) becomes an array (M modules, K conditions, L layers, C channels)
in the package's layout, checked: every bad input is one ``ValueError`` line naming the
column or key.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np


#: Fewer measured modules are refused: a bootstrap over n modules has at most
#: C(2n-1, n) distinct resamples (1 for one module, 10 for three: no error estimate), and
#: a module-level spread estimated from n modules has a relative standard error of about
#: 1/sqrt(2(n-1)), over 35 % below 5 modules.
MIN_MODULES = 5


def check_enough_modules(n_modules: int, names) -> None:
    """Refuse a fit whose data cannot identify the parameters (before anything is compiled).

    Raises:
      ValueError: one line, ``calibrate.data: ...``, when fewer than :data:`MIN_MODULES`
        modules were measured.
    """
    if n_modules < MIN_MODULES:
        raise ValueError(f"calibrate.data: {n_modules} measured module{'s' if n_modules != 1 else ''} cannot "
                         f"identify {', '.join(names)}: the module-to-module spread and the bootstrap errors "
                         f"need at least {MIN_MODULES} modules (20 or more for a meaningful goodness of fit)")


#: Columns a measurement table must have (``condition`` is optional).
COLUMNS = ("module", "layer", "channel", "loss_db")


@dataclasses.dataclass(frozen=True)
class Measured:
    """Measured losses in the package's layout.

    Attributes:
      loss_db: (M, K, L, C) float64, K = the problem's conditions (1 without).
      modules: the M module labels, in order.
      source: where they came from (a path or "in-memory table").
    """

    loss_db: np.ndarray
    modules: tuple
    source: str


def _frame(data, base: Path | None):
    import pandas as pd
    import xarray as xr

    if isinstance(data, pd.DataFrame):
        return data.copy(), "in-memory table"
    if isinstance(data, xr.Dataset):
        if "loss_db" not in data:
            raise ValueError("calibrate.data: the Dataset has no variable 'loss_db'")
        return data["loss_db"].to_dataframe().reset_index(), "in-memory Dataset"
    if not isinstance(data, (str, Path)):
        raise ValueError(f"calibrate.data: expected a path, a pandas DataFrame or an xarray Dataset, "
                         f"got {type(data).__name__}")
    path = Path(data)
    if not path.is_absolute() and base is not None:
        path = base / path
    if not path.exists():
        raise ValueError(f"calibrate.data: no such file {str(path)!r}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".nc", ".zarr") or path.is_dir():
            ds = xr.open_zarr(path) if (suffix == ".zarr" or path.is_dir()) else xr.open_dataset(path)
            frame, _ = _frame(ds.load(), None)
        else:
            frame = pd.read_csv(path, skipinitialspace=True, comment="#")
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001 - unreadable file: one line
        raise ValueError(f"calibrate.data: cannot read {str(path)!r}: {type(exc).__name__}: {exc}") from None
    return frame, str(path)


def read_measurements(data, *, layers: int, channels: int, conditions: tuple = (),
                      base: Path | None = None) -> Measured:
    """The measured losses of ``data`` in the package's (K, L, C) layout.

    Args:
      data: a path (CSV, netCDF ``.nc``, zarr), a pandas DataFrame or an xarray Dataset.
      layers, channels: the package's layout (indices 0 … L − 1, 0 … C − 1).
      conditions: the configuration's condition names (empty: none; then a ``condition``
        column is refused).
      base: the directory a relative path is relative to.

    Raises:
      ValueError: one line naming the column (missing column; non-numeric, NaN, infinite
        or negative loss; layer/channel out of range; a module without every channel, or
        with one twice; unknown condition) or the key ``calibrate.data``.
    """
    frame, source = _frame(data, base)
    frame.columns = [str(c).strip() for c in frame.columns]
    for column in COLUMNS:
        if column not in frame.columns:
            raise ValueError(f"calibrate.data: missing column {column!r} (need {', '.join(COLUMNS)}"
                             " [, condition])")
    if len(frame) == 0:
        raise ValueError("calibrate.data: the table has no rows")
    loss = _numbers(frame, "loss_db")
    bad = ~np.isfinite(loss)
    if bad.any():
        raise ValueError(f"loss_db: {int(bad.sum())} NaN or infinite value(s), first at row {int(np.argmax(bad))}")
    if (loss < 0).any():
        row = int(np.argmax(loss < 0))
        raise ValueError(f"loss_db: a loss must be >= 0 dB, got {loss[row]!r} at row {row}")
    index = {}
    for column, size in (("layer", layers), ("channel", channels)):
        values = _numbers(frame, column)
        ok = np.isfinite(values) & (values == np.round(values)) & (values >= 0) & (values < size)
        if not ok.all():
            row = int(np.argmax(~ok))
            raise ValueError(f"{column}: expected an integer in [0, {size}) (the package's {column}s), "
                             f"got {frame[column].iloc[row]!r} at row {row}")
        index[column] = values.astype(np.int64)
    names = tuple(conditions) or ("",)
    if "condition" in frame.columns:
        if not conditions:
            raise ValueError("condition: the table has a condition column but the configuration has no "
                             "conditions (set conditions=... to the measured ones)")
        labels = frame["condition"].astype(str).str.strip().to_numpy()
        unknown = sorted(set(labels) - set(names))
        if unknown:
            raise ValueError(f"condition: {unknown[0]!r} is not a configured condition (expected one of "
                             f"{list(names)})")
        k = np.array([names.index(v) for v in labels], dtype=np.int64)
    elif conditions and len(conditions) > 1:
        raise ValueError("condition: the configuration has several conditions; the table needs a "
                         "condition column")
    else:
        k = np.zeros(len(frame), np.int64)
    modules, m = np.unique(frame["module"].astype(str).to_numpy(), return_inverse=True)
    out = np.full((len(modules), len(names), layers, channels), np.nan)
    seen = np.zeros(out.shape, np.int64)
    np.add.at(seen, (m, k, index["layer"], index["channel"]), 1)
    if (seen > 1).any():
        i = np.argwhere(seen > 1)[0]
        raise ValueError(f"module: module {modules[i[0]]!r} has layer {i[2]}, channel {i[3]} more than once")
    out[m, k, index["layer"], index["channel"]] = loss
    missing = np.isnan(out)
    if missing.any():
        i = np.argwhere(missing)[0]
        what = f" under condition {names[i[1]]!r}" if conditions else ""
        raise ValueError(f"module: module {modules[i[0]]!r} has no loss for layer {i[2]}, channel {i[3]}{what} "
                         "(every module needs every channel)")
    return Measured(out, tuple(modules), source)


def _numbers(frame, column: str) -> np.ndarray:
    import pandas as pd

    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
    raw_missing = frame[column].isna().to_numpy()
    bad = np.isnan(values) & ~raw_missing
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"{column}: not a number, got {frame[column].iloc[row]!r} at row {row}")
    return values
