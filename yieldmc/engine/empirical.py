"""Empirical distributions: a variation's table from ``values`` or ``values_file``.

A variation ``process.<quantity>.<level>`` with ``distribution: empirical`` draws from a
measured sample (placement metrology, core-width measurements, …) instead of a
parametric law::

    process:
      dx_um:
        module: {distribution: empirical, values_file: examples/placement_dx_um.csv}
      core_width_um:
        channel: {distribution: empirical, values: [-0.12, -0.05, 0.0, 0.04, 0.11]}

Exactly one of ``values`` (an inline list) and ``values_file`` (a path) gives the table;
the values are in the quantity's unit and, like every other draw, are *added* to the
quantity's nominal (so a placement file holds offsets, a core-width file holds deviations
from ``package.pwg.core_width_um``). ``mean``, ``sigma``, ``low`` and ``high`` are not
read (as ``uniform`` does not read ``mean``/``sigma``), and sweeping them is refused. The
draw is Q(Φ(z)), Q the piecewise-linear Hazen quantile function of the table
(:func:`yieldmc.engine.distributions.empirical_quantile`), so the Gaussian copula of
``process.correlation`` still ties a module-level empirical quantity to the others.

File format: plain text / CSV, one number per line; blank lines and lines starting with
``#`` are skipped, and the first remaining line may be a header (a single non-numeric
field, e.g. ``dx_um``). A relative path is relative to the directory yieldmc was started
in (Hydra's runtime cwd; the same convention as ``output.dir``).

The table becomes an :class:`yieldmc.engine.distributions.Empirical` in
:attr:`yieldmc.engine.problem.Static.active` (a constant of the compiled program: a
different table compiles anew). Host-side, numpy only.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from yieldmc.engine.distributions import DISTRIBUTIONS, Distribution, Empirical
from yieldmc.engine.variation import process_key

#: Fewest values of a table (a quantile function needs two points).
MIN_VALUES = 2
#: Most values of a table (it is a constant of the compiled program; subsample a larger one).
MAX_VALUES = 1_000_000


def max_magnitude(dtype: str) -> float:
    """Largest |x| a float config value may have: sqrt of the dtype's largest finite value."""
    return math.sqrt(float(np.finfo(dtype).max))


def start_directory() -> Path:
    """Where yieldmc was started: Hydra's runtime cwd inside the command, else the cwd.

    (Hydra is not imported here; it is asked only when it is already loaded.)
    """
    hc = sys.modules.get("hydra.core.hydra_config")
    if hc is not None and hc.HydraConfig.initialized():
        return Path(hc.HydraConfig.get().runtime.cwd)
    return Path.cwd()


def read_values_file(key: str, name, base: Path | None = None, *, dtype: str = "float32") -> list[float]:
    """The numbers of a one-column text/CSV file (see the module docstring for the format).

    Args:
      key: the config key, for the messages (``process.dx_um.module.values_file``).
      name: the path as configured (relative to ``base``).
      base: the directory a relative path is relative to (default :func:`start_directory`).
      dtype: the engine's float dtype: a value must satisfy the same representability
        rule as the same value written in the configuration
        (:func:`max_magnitude`).

    Raises:
      ValueError: one line naming ``key``: not a string, missing, unreadable, not text,
        more than one column, a non-numeric, non-finite or too large value, too few or too
        many values.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{key}: expected a file path, got {name!r}")
    if "\0" in name:
        raise ValueError(f"{key}: contains a NUL byte, got {name!r}")
    path = Path(name).expanduser()
    if not path.is_absolute():
        path = (base if base is not None else start_directory()) / path
    if not path.exists():
        raise ValueError(f"{key}: no such file {str(path)!r}, got {name!r}")
    if not path.is_file():
        raise ValueError(f"{key}: not a regular file {str(path)!r}, got {name!r}")
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's BOM is skipped
    except UnicodeDecodeError:
        raise ValueError(f"{key}: {str(path)!r} is not a UTF-8 text file") from None
    except OSError as exc:
        raise ValueError(f"{key}: cannot read {str(path)!r} ({exc.strerror or exc})") from None
    values, header_allowed = [], True
    limit = max_magnitude(dtype)
    for number, line in enumerate(text.splitlines(), start=1):
        field = line.strip()
        if not field or field.startswith("#"):
            continue
        where = f"{path.name} line {number}"
        fields = [f.strip() for f in field.replace(";", ",").split(",")]
        if len(fields) > 1 and any(fields[1:]):
            raise ValueError(f"{key}: {where}: expected one column (one number per line), got {field[:60]!r}")
        field = fields[0]
        try:
            x = float(field)
        except ValueError:
            if header_allowed:  # the first line may name the column
                header_allowed = False
                continue
            raise ValueError(f"{key}: {where}: not a number, got {field[:60]!r}") from None
        header_allowed = False
        if not math.isfinite(x):
            raise ValueError(f"{key}: {where}: values must be finite, got {field!r}")
        if abs(x) > limit:
            raise ValueError(f"{key}: {where}: too large for {dtype} (|x| must be <= {limit:.3g} so its "
                             f"square stays finite, as for a value in the configuration), got {field!r}")
        values.append(x)
    return values


def check_table(key: str, values) -> Empirical:
    """An :class:`Empirical` distribution from numbers already checked one by one (the
    schema's ``list[float]`` row, or :func:`read_values_file`), or a one-line ValueError
    naming ``key``: fewer than :data:`MIN_VALUES` or more than :data:`MAX_VALUES` values."""
    if len(values) < MIN_VALUES:
        raise ValueError(f"{key}: an empirical distribution needs at least {MIN_VALUES} values, got {len(values)}")
    if len(values) > MAX_VALUES:
        raise ValueError(f"{key}: at most {MAX_VALUES} values (the table is compiled into the program; "
                         f"subsample it), got {len(values)}")
    return Empirical(values)


def distribution_of(node: dict, path: str, base: Path | None = None, *, dtype: str = "float32") -> Distribution:
    """The distribution of one variation as the engine takes it: its family's
    :class:`Distribution`, for ``empirical`` an :class:`Empirical` with its table.

    Args:
      node: the variation's mapping (``config["process"][q][lv]``; its distribution a
        known name).
      path: its config path (``process.dx_um.module``), for the messages.
      base: the directory a relative ``values_file`` is relative to.
      dtype: the engine's float dtype (the magnitude rule of a file's values).

    Raises:
      ValueError: one line naming the key: empirical without a table or with both
        ``values`` and ``values_file``; a table given to another distribution; a bad table.
    """
    dist = node["distribution"]
    values, name = node.get("values"), node.get("values_file")
    family = DISTRIBUTIONS[dist]
    if family is not Empirical:
        for key, given in (("values", values), ("values_file", name)):
            if given is not None:
                raise ValueError(f"{path}.{key}: only read by distribution empirical (this one is "
                                 f"{dist}); remove it or set {path}.distribution=empirical")
        return family()
    if values is not None and name is not None:
        raise ValueError(f"{path}.values: give either values or values_file, not both")
    if values is None and name is None:
        raise ValueError(f"{path}.values_file: distribution empirical needs its values "
                         f"({path}.values_file=<file> or {path}.values=[...])")
    if values is not None:
        return check_table(f"{path}.values", values)
    return check_table(f"{path}.values_file", read_values_file(f"{path}.values_file", name, base, dtype=dtype))


def unread_parameter(config: dict, key: str) -> str | None:
    """The message refusing a key that names a parameter an empirical variation does not
    read (``process.<q>.<lv>.mean|sigma|low|high`` with ``distribution: empirical``; in a
    sweep or as an optimisation parameter), else None."""
    parts = key.split(".")
    if len(parts) != 4 or parts[0] != "process":
        return None
    node = ((config.get("process") or {}).get(parts[1]) or {}).get(parts[2])
    if isinstance(node, dict) and node.get("distribution") == Empirical.name and parts[3] in node:
        base = ".".join(parts[:3])
        return (f"the distribution of {base} is empirical, which does not read {parts[3]} (its draws "
                f"come from {base}.values / values_file; a table is not sweepable)")
    return None


def table_digests(static) -> dict[str, str]:
    """``process.<q>.<lv>`` → sha256 of its table, for every empirical variation of a
    :class:`yieldmc.engine.problem.Static` (empty without one). The configuration names
    only the file, so a store identity that must change with the file's contents needs
    these (:func:`yieldmc.job.identity` hashes the configuration alone)."""
    return {process_key(q, lv): dist.digest for q, lv, dist in static.active
            if isinstance(dist, Empirical)}
