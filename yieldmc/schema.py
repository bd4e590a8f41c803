"""The configuration keys, declared once (DESIGN §3–§4): path → type, unit, bounds, description.

:data:`KEYS` is the single declaration of every key a configuration may hold; the
allowed key set of every section (``package``, ``package.coupler``, ``output``, …) is
derived from it, so a key that is not declared here is refused with
``<full.key.path>: unknown key; expected one of [...]``. **A new configuration key
(a new file under ``conf/``, a new section) must be declared here**; the test
``tests/test_input.py::test_every_shipped_key_is_declared`` composes every shipped option
and fails on an undeclared one.

Each row is data (a later issue generates ``--help`` from it):

* ``path`` — dotted key; ``{quantity}`` and ``{level}`` stand for every entry of
  :data:`yieldmc.variation.QUANTITIES` and :data:`~yieldmc.variation.LEVELS`.
* ``type`` — ``bool`` (YAML ``true``/``false`` only; the string ``no`` is not false),
  ``int`` (an ``int``; a float with an integral value such as ``1e6`` is accepted as
  that integer), ``float`` (an ``int`` or ``float``), ``str``, ``list[float]``,
  ``list[str]``, ``matrix`` (a list of lists, checked by its user) or ``mapping`` (a free
  mapping whose keys are config keys, checked by its user: ``sweep``,
  ``optimize.costs``/``parameters``, ``hydra``).
* ``unit`` — the value's unit ("" when dimensionless; ``quantity`` for a variation
  parameter, which has its quantity's unit).
* ``bounds`` — an interval such as ``"(0, inf)"`` or ``"[-273.15, inf)"`` ("" for none).
  A float must be finite unless the interval is *closed* at that infinity
  (``"[-inf, inf]"``: ``process.*.low``/``high`` may be ±inf).
* ``doc`` — one line.
* ``choices`` — the allowed values of a ``str`` (or of each element of a ``list[str]``).
* ``nullable`` — ``null`` is allowed.
* ``when`` — ``(path, value)``: the key exists only when ``path`` holds ``value`` (the
  coupler's keys depend on ``package.coupler.kind``).

Float rule (representability in the engine's dtype): besides its bounds, every finite
float must satisfy ``|x| <= sqrt(finfo(engine.dtype).max)`` (≈1.8e19 in float32,
≈1.3e154 in float64), so that the squares the model forms (Gaussian overlaps, mode
radii, κ², …) stay finite; every scaling the model applies to a config value
(mrad → rad, ppm → 1, µm → µm) only shrinks it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from yieldmc.variation import DISTRIBUTIONS, LEVELS, QUANTITIES

#: Absolute zero in °C: the lower bound of every absolute temperature.
ABSOLUTE_ZERO_C = -273.15
#: Seeds are uint32 (the engine puts ``np.uint32(seed)`` on the device for jax.random.key).
SEED_LIMIT = 2**32


class Key(NamedTuple):
    """One declared configuration key (a row of :data:`KEYS`)."""

    path: str
    type: str
    unit: str
    bounds: str
    doc: str
    choices: tuple = ()
    nullable: bool = False
    when: tuple = ()


_ADIABATIC = ("package.coupler.kind", "adiabatic")
_BUTT = ("package.coupler.kind", "butt")
_T = "[-273.15, inf)"  # absolute temperatures, °C
_POS = "(0, inf)"
_NONNEG = "[0, inf)"
_ANY = "(-inf, inf)"  # any finite value

KEYS: tuple[Key, ...] = (
    # --- top level ---
    Key("samples", "int", "modules", "[1, inf)", "module samples per sweep point"),
    Key("seed", "int", "", "[0, 4294967296)", "RNG seed (uint32); with engine.block_size fixes every draw"),
    Key("mode", "str", "", "", "what the command computes", choices=("run", "sensitivity", "optimize")),
    Key("sampler", "str", "", "", "mc (pseudo-random) | qmc (randomised Sobol') | is (importance sampling)",
        choices=("mc", "qmc", "is")),
    Key("sweep", "mapping", "", "", "config key -> list of values; each key a dimension of the yield map",
        nullable=True),
    Key("shard", "int", "", "[0, inf)", "this job's shard: computes blocks b with b % num_shards == shard"),
    Key("num_shards", "int", "", "[1, inf)", "number of cluster jobs sharing one store"),
    Key("overwrite", "bool", "", "", "replace a store made from a different configuration"),
    Key("progress", "bool", "", "", "progress bar on stderr (only when it is a terminal)"),
    Key("hydra", "mapping", "", "", "Hydra's own settings (not read by yieldmc)", nullable=True),
    # --- spec ---
    Key("spec.max_loss_db", "float", "dB", _ANY, "a channel fails above this loss"),
    Key("spec.max_failed_channels", "int", "channels", "[0, inf)",
        "a module passes with at most this many failed channels (< layers x channels)"),
    # --- engine ---
    Key("engine.block_size", "int", "modules", "[1, inf)", "modules per block (part of the random-number layout)"),
    Key("engine.blocks_per_call", "int", "blocks", "[1, inf)", "blocks per device between host syncs"),
    Key("engine.dtype", "str", "", "", "float precision of the model (float64 needs JAX_ENABLE_X64=1)",
        choices=("float32", "float64")),
    Key("engine.rng_impl", "str", "", "", "JAX PRNG implementation",
        choices=("threefry2x32", "rbg", "unsafe_rbg")),
    Key("engine.hist_bins", "int", "bins", "[1, inf)", "loss histogram bins"),
    Key("engine.hist_max_db", "float", "dB", _POS, "upper edge of the loss histogram"),
    Key("engine.quantiles", "list[float]", "", "(0, 1)", "loss quantiles reported per channel"),
    # --- output ---
    Key("output.dir", "str", "path", "", "store directory, relative to the starting directory"),
    Key("output.name", "str", "file name", "", "store name (a plain file name); null: derived from the config",
        nullable=True),
    Key("output.plots", "bool", "", "", "write PNG plots beside the store"),
    Key("output.target_yield", "float", "", "(0, 1)", "contour / reference line in the yield-map plot"),
    # --- samplers, gradients, optimisation, alignment ---
    Key("qmc.randomizations", "int", "", "[2, inf)", "independent Sobol' scramblings (the interval's groups)"),
    Key("gradient.estimator", "str", "", "", "yield-gradient estimator", choices=("pathwise", "score")),
    Key("gradient.tau_db", "float", "dB", _POS, "pathwise smoothing temperature of the pass indicator"),
    Key("optimize.kind", "str", "", "", "tolerance (min sum cost/sigma) | centring (max yield)",
        choices=("tolerance", "centring")),
    Key("optimize.target_yield", "float", "", "(0, 1)", "yield constraint of the tolerance optimisation"),
    Key("optimize.costs", "mapping", "", "", "tolerance: process sigma key -> cost", nullable=True),
    Key("optimize.parameters", "mapping", "", "", "centring: float key -> [low, high]", nullable=True),
    Key("optimize.steps", "int", "", "[1, inf)", "Adam steps per outer iteration"),
    Key("optimize.outer", "int", "", "[1, inf)", "augmented-Lagrangian outer iterations"),
    Key("optimize.learning_rate", "float", "", _POS, "Adam learning rate"),
    Key("optimize.penalty", "float", "", _NONNEG, "augmented-Lagrangian penalty rho"),
    Key("optimize.recheck_samples", "int", "modules", "[1, inf)",
        "fresh-draw re-check of the optimum (null: samples)", nullable=True),
    Key("optimize.recheck_seed_offset", "int", "", "[0, 4294967296)",
        "seed offset of the re-check draws (seed + offset must stay < 2^32)"),
    Key("alignment.mode", "str", "", "", "passive (placed and fixed) | active (re-aligned per module)",
        choices=("passive", "active")),
    Key("alignment.objective", "str", "", "", "active alignment objective", choices=("worst", "sum_log")),
    Key("alignment.steps", "int", "", "[0, inf)", "damped Newton steps of active alignment"),
    # --- package ---
    Key("package.name", "str", "", "", "package label (used in store names)"),
    Key("package.layers", "int", "", "[1, inf)", "stacked PWG layers"),
    Key("package.channels", "int", "", "[1, inf)", "waveguides per layer"),
    Key("package.pitch_um", "float", "µm", _POS, "waveguide pitch"),
    Key("package.layer_pitch_um", "float", "µm", _POS, "PWG layer thickness in a stack"),
    Key("package.wavelength_um", "float", "µm", _POS, "operating wavelength"),
    Key("package.temperature_c", "float", "°C", _T, "operating temperature"),
    Key("package.lock_temperature_c", "float", "°C", _T, "adhesive cure / bond temperature"),
    Key("package.cte_mismatch_ppm_per_k", "float", "ppm/K", _ANY, "PWG-flex vs chip CTE mismatch"),
    Key("package.pwg.core_width_um", "float", "µm", _POS, "PWG core width"),
    Key("package.pwg.core_thickness_um", "float", "µm", _POS, "PWG core thickness"),
    Key("package.pwg.n_core", "float", "", _POS, "core index (> n_clad)"),
    Key("package.pwg.n_clad", "float", "", _POS, "cladding index"),
    Key("package.pwg.dn_dt_per_k", "float", "1/K", _ANY, "thermo-optic coefficient"),
    Key("package.pwg.index_temperature_c", "float", "°C", _T, "temperature at which n_core, n_clad are given"),
    Key("package.pwg.loss_db_per_cm", "float", "dB/cm", _NONNEG, "propagation loss"),
    Key("package.pwg.length_cm", "float", "cm", _NONNEG, "PWG length on the module"),
    Key("package.coupler.kind", "str", "", "", "coupler (switch with package/coupler=...)",
        choices=("adiabatic", "butt")),
    Key("package.coupler.model", "str", "", "", "adiabatic transfer model", choices=("cmt", "landau_zener"),
        when=_ADIABATIC),
    Key("package.coupler.segments", "int", "", "[1, inf)", "cmt segments (null: 64)", nullable=True,
        when=_ADIABATIC),
    Key("package.coupler.kappa_per_um", "float", "1/µm", _NONNEG, "coupling κ0 at the nominal gap",
        when=_ADIABATIC),
    Key("package.coupler.taper_length_um", "float", "µm", _POS, "taper length", when=_ADIABATIC),
    Key("package.coupler.delta_beta_start_per_um", "float", "1/µm", _ANY, "Δβ at the taper start",
        when=_ADIABATIC),
    Key("package.coupler.delta_beta_end_per_um", "float", "1/µm", _ANY, "Δβ at the taper end", when=_ADIABATIC),
    Key("package.coupler.gap_um", "float", "µm", _ANY, "nominal Si-to-PWG vertical gap (reference for κ0)",
        when=_ADIABATIC),
    Key("package.coupler.n_gap", "float", "", _POS, "index between Si and PWG core (<= n_clad)", when=_ADIABATIC),
    Key("package.coupler.decay_per_um", "float", "1/µm", _POS, "evanescent decay γ (null: derived)",
        nullable=True, when=_ADIABATIC),
    Key("package.coupler.yaw_pivot_um", "float", "µm", _ANY, "yaw pivot along the taper, from its centre",
        when=_ADIABATIC),
    Key("package.coupler.mode_radius_x_um", "float", "µm", _POS, "chip mode radius (1/e field), x", when=_BUTT),
    Key("package.coupler.mode_radius_y_um", "float", "µm", _POS, "chip mode radius (1/e field), y", when=_BUTT),
    Key("package.coupler.gap_um", "float", "µm", _NONNEG, "nominal facet gap", when=_BUTT),
    Key("package.coupler.n_gap", "float", "", _POS, "index of the gap medium", when=_BUTT),
    Key("package.coupler.n_chip", "float", "", _POS, "chip-side index (Fresnel at the chip facet)", when=_BUTT),
    # --- process (every quantity x level; draws are added to the quantity's nominal) ---
    Key("process.{quantity}.{level}.distribution", "str", "", "", "distribution of this level's draw",
        choices=tuple(DISTRIBUTIONS)),
    Key("process.{quantity}.{level}.mean", "float", "quantity", _ANY, "mean (lognormal: of the underlying normal)"),
    Key("process.{quantity}.{level}.sigma", "float", "quantity", _NONNEG,
        "standard deviation (lognormal: of the underlying normal)"),
    Key("process.{quantity}.{level}.low", "float", "quantity", "[-inf, inf]", "lower bound (truncnormal, uniform)"),
    Key("process.{quantity}.{level}.high", "float", "quantity", "[-inf, inf]", "upper bound (truncnormal, uniform)"),
    Key("process.correlation.quantities", "list[str]", "", "", "module-level quantities tied by a Gaussian copula",
        choices=QUANTITIES, nullable=True),
    Key("process.correlation.matrix", "matrix", "", "", "their correlation matrix", nullable=True),
)

_PLACEHOLDERS = {"{quantity}": QUANTITIES, "{level}": LEVELS}


def _expand(key: Key) -> list[Key]:
    """The concrete rows of a declaration (its placeholders replaced by every value)."""
    rows = [key]
    for name, values in _PLACEHOLDERS.items():
        if name in key.path:
            rows = [r._replace(path=r.path.replace(name, v)) for r in rows for v in values]
    return rows


#: Concrete path -> its rows (several when they differ by ``when``).
_INDEX: dict[str, list[Key]] = {}
for _key in KEYS:
    for _row in _expand(_key):
        _INDEX.setdefault(_row.path, []).append(_row)
#: Mapping nodes (every proper prefix of a declared path; "" is the root) -> child names.
_CHILDREN: dict[str, dict[str, list[Key]]] = {}
for _path, _rows in _INDEX.items():
    _parts = _path.split(".")
    for _i in range(len(_parts)):
        _node = ".".join(_parts[:_i])
        _child = ".".join(_parts[: _i + 1])
        _CHILDREN.setdefault(_node, {}).setdefault(_parts[_i], _INDEX.get(_child, []))


#: Paths declared ``int`` (under some ``when``).
_INT_PATHS = tuple(p for p, rows in _INDEX.items() if any(r.type == "int" for r in rows))
#: Keys whose value selects other keys (``when``), checked before the rest.
_DISCRIMINATORS = tuple(dict.fromkeys(k.when[0] for k in KEYS if k.when))


def choices(path: str) -> tuple:
    """The declared choices of ``path`` (e.g. ``choices("engine.dtype")``)."""
    return _INDEX[path][0].choices


def declared(path: str) -> bool:
    """Whether ``path`` is a declared key or section."""
    return path in _INDEX or path in _CHILDREN


# ---------------------------------------------------------------------------------------
# The checks that interpret the table
# ---------------------------------------------------------------------------------------


def plain(value):
    """A recursive plain-Python copy: numpy scalars become ``bool``/``int``/``float``,
    numpy arrays, tuples and other sequences become lists, mappings become ``dict``."""
    if isinstance(value, Mapping):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def integral_ints(config: dict) -> dict:
    """In place: a float with an integral value (``samples=1e6``) at a key declared ``int``
    becomes that ``int``, so that code reading the configuration sees the declared type."""
    for path in _INT_PATHS:
        parent, _, leaf = path.rpartition(".")
        node = _value_at(config, parent) if parent else config
        if isinstance(node, dict) and isinstance(node.get(leaf), float) and node[leaf].is_integer():
            key = lookup(config, path)
            if key is not None and key.type == "int":
                node[leaf] = int(node[leaf])
    return config


def _interval(bounds: str):
    lo, hi = (s.strip() for s in bounds[1:-1].split(","))
    return float(lo), bounds[0] == "[", float(hi), bounds[-1] == "]"


def _bounds_message(bounds: str) -> str:
    lo, lo_closed, hi, hi_closed = _interval(bounds)
    fmt = lambda x: f"{int(x)}" if x.is_integer() and abs(x) < 2**63 else f"{x:g}"  # noqa: E731
    if math.isinf(lo):
        return f"must be {'<=' if hi_closed else '<'} {fmt(hi)}"
    if math.isinf(hi):
        return f"must be {'>=' if lo_closed else '>'} {fmt(lo)}"
    return f"must lie in {bounds}"


def max_magnitude(dtype: str) -> float:
    """Largest |x| a float config value may have: sqrt of the dtype's largest finite value."""
    return math.sqrt(float(np.finfo(dtype).max))


def _type_name(key: Key) -> str:
    return {"bool": "true or false", "int": "an integer", "float": "a number", "str": "a string",
            "mapping": "a mapping", "list[float]": "a list of numbers", "list[str]": "a list of names",
            "matrix": "a list of rows"}[key.type]


def check_value(path: str, value, key: Key, dtype: str = "float32"):
    """Check one value against its declaration; return it (an integral float as ``int``).

    Raises:
      ValueError: ``<path>: <what is wrong>, got <value>``.
    """
    if value is None:
        if key.nullable:
            return None
        raise ValueError(f"{path}: expected {_type_name(key)}, got null")
    t = key.type
    if t == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{path}: expected true or false, got {value!r}")
        return value
    if t == "int":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{path}: expected an integer, got {value!r}")
        if isinstance(value, float):
            if not math.isfinite(value) or not value.is_integer():
                raise ValueError(f"{path}: expected an integer, got {value!r}")
            value = int(value)
        _check_bounds(path, value, key.bounds)
        return value
    if t == "float":
        return _check_float(path, value, key.bounds, dtype)
    if t == "str":
        if not isinstance(value, str):
            raise ValueError(f"{path}: expected a string, got {value!r}")
        if key.choices and value not in key.choices:
            raise ValueError(f"{path}: expected one of {list(key.choices)}, got {value!r}")
        return value
    if t == "mapping":
        if not isinstance(value, dict):
            raise ValueError(f"{path}: expected a mapping, got {value!r}")
        return value
    if not isinstance(value, list):
        raise ValueError(f"{path}: expected {_type_name(key)}, got {value!r}")
    if t == "list[float]":
        return [_check_float(path, v, key.bounds, dtype) for v in value]
    if t == "list[str]":
        for v in value:
            if not isinstance(v, str) or (key.choices and v not in key.choices):
                raise ValueError(f"{path}: expected names from {list(key.choices)}, got {v!r}")
    return value


def _check_float(path: str, value, bounds: str, dtype: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{path}: expected a number, got {value!r}")
    limit = max_magnitude(dtype)
    try:
        x = float(value)
    except OverflowError:
        raise ValueError(f"{path}: too large for {dtype} (|x| must be <= {limit:.3g} so its square "
                         f"stays finite), got {value!r}") from None
    if math.isnan(x):
        raise ValueError(f"{path}: expected a number, got nan")
    if math.isinf(x):
        lo, lo_closed, hi, hi_closed = _interval(bounds or _ANY)
        if not ((x < 0 and math.isinf(lo) and lo_closed) or (x > 0 and math.isinf(hi) and hi_closed)):
            raise ValueError(f"{path}: must be finite, got {value!r}")
        return x
    if abs(x) > limit:
        raise ValueError(f"{path}: too large for {dtype} (|x| must be <= {limit:.3g} so its square "
                         f"stays finite), got {value!r}")
    _check_bounds(path, x, bounds, value)
    return x


def _check_bounds(path: str, x, bounds: str, shown=None) -> None:
    if not bounds:
        return
    lo, lo_closed, hi, hi_closed = _interval(bounds)
    ok = (x >= lo if lo_closed else x > lo) and (x <= hi if hi_closed else x < hi)
    if not ok:
        raise ValueError(f"{path}: {_bounds_message(bounds)}, got {x if shown is None else shown!r}")


def lookup(config: dict, path: str) -> Key | None:
    """The declaration of ``path`` that applies to ``config`` (its ``when`` holds)."""
    for key in _INDEX.get(path, ()):
        if not key.when or _value_at(config, key.when[0]) == key.when[1]:
            return key
    return None


def _value_at(config: dict, path: str):
    node = config
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def check_tree(config: dict, *, dtype: str = "float32", skip: frozenset = frozenset()) -> None:
    """Refuse an undeclared key anywhere, or a declared value of the wrong type/choice/bounds.

    Only keys present are checked (missing ones are the caller's business); a section may
    be ``null``. ``skip`` holds paths whose values are checked elsewhere (swept keys:
    their configured value is replaced at every sweep point).

    Raises:
      ValueError: ``<full.key.path>: unknown key; expected one of [...]`` or
        ``<path>: <what is wrong>, got <value>``.
    """
    for path in _DISCRIMINATORS:  # first, so that the key set they select is the right one
        value = _value_at(config, path)
        if value is not None:
            check_value(path, value, lookup(config, path), dtype)
    _walk(config, "", config, dtype, skip)


def _walk(node, prefix: str, config: dict, dtype: str, skip) -> None:
    children = _CHILDREN[prefix]
    allowed = {name for name, rows in children.items()
               if not rows or any(not r.when or _value_at(config, r.when[0]) == r.when[1] for r in rows)}
    for name, value in node.items():
        path = f"{prefix}.{name}" if prefix else str(name)
        if name not in allowed:
            raise ValueError(f"{path}: unknown key; expected one of {sorted(allowed)}")
        if path in _CHILDREN:  # a section
            if value is None:
                continue
            if not isinstance(value, dict):
                raise ValueError(f"{path}: expected a mapping, got {value!r}")
            _walk(value, path, config, dtype, skip)
        elif path not in skip:
            check_value(path, value, lookup(config, path), dtype)
