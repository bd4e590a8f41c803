"""The configuration keys, declared once: path → type, unit, bounds, description.

:data:`KEYS` is the single declaration of every key a configuration may hold; the
allowed key set of every section (``package``, ``package.coupler``, ``output``, …) is
derived from it, so a key that is not declared here is refused with
``<full.key.path>: unknown key; expected one of [...]``. **A new configuration key
(a new file under ``conf/``, a new section) must be declared here**; the test
``tests/test_input.py::test_every_shipped_key_is_declared`` composes every shipped option
and fails on an undeclared one.

Each row is data (``yieldmc --help`` and docs/configuration.md are generated from it):

* ``path`` — dotted key; ``{quantity}`` and ``{level}`` stand for every entry of
  :data:`yieldmc.engine.variation.QUANTITIES` and :data:`~yieldmc.engine.variation.LEVELS`.
* ``type`` — ``bool`` (YAML ``true``/``false`` only; the string ``no`` is not false),
  ``int`` (an ``int``; a float with an integral value such as ``1e6`` is accepted as
  that integer), ``float`` (an ``int`` or ``float``), ``str``, ``list[float]``,
  ``list[str]``, ``matrix`` (a list of lists, checked by its user) or ``mapping`` (a free
  mapping whose keys are config keys, checked by its user: ``sweep``,
  ``optimize.costs``/``parameters``, ``conditions``, ``uncertain``, ``hydra``).
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

The ``package.coupler.*`` rows are not in :data:`KEYS`: each coupler declares its own
(:attr:`yieldmc.couplers.Coupler.keys`) and :func:`all_keys` adds those of the couplers
registered when a configuration is checked (``kind``'s choices are the registered kinds;
a coupler from a plugin counts).

Float rule (representability in the engine's dtype): besides its bounds, every finite
float must satisfy ``|x| <= sqrt(finfo(engine.dtype).max)`` (≈1.8e19 in float32,
≈1.3e154 in float64), so that the squares the model forms (Gaussian overlaps, mode
radii, κ², …) stay finite; every scaling the model applies to a config value
(mrad → rad, ppm → 1, µm → µm) only shrinks it.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import types
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from yieldmc.engine.empirical import max_magnitude
from yieldmc.engine.distributions import DISTRIBUTIONS
from yieldmc.engine.estimators import ESTIMATORS
from yieldmc.engine.variation import LEVELS, QUANTITIES
from yieldmc.parts import NO_DEFAULT, Key
from yieldmc.samplers.registry import RegisteredNames

#: Absolute zero in °C: the lower bound of every absolute temperature.
ABSOLUTE_ZERO_C = -273.15
#: Largest number of modules one device handles per call: keeps int32 partial sums exact.
MAX_MODULES_PER_CALL = 2**21
#: Seeds are uint32 (the engine puts ``np.uint32(seed)`` on the device for jax.random.key).
SEED_LIMIT = 2**32


_T = "[-273.15, inf)"  # absolute temperatures, °C
_POS = "(0, inf)"
_NONNEG = "[0, inf)"
_ANY = "(-inf, inf)"  # any finite value

KEYS: tuple[Key, ...] = (
    # --- top level ---
    Key("samples", "int", "modules", "[1, inf)", "module samples per sweep point", default=1000000),
    Key("seed", "int", "", "[0, 4294967296)", "RNG seed (uint32); with engine.block_size fixes every draw", default=0),
    Key("mode", "str", "", "", "what the command computes",
        choices=("run", "sensitivity", "optimize", "calibrate"), default="run"),
    Key("sampler", "str", "", "", "mc (pseudo-random) | qmc (randomised Sobol') | is (importance sampling)",
        choices=RegisteredNames(), default="mc"),  # live: the registry's names when checked (a plugin's sampler counts)
    Key("sweep", "mapping", "", "", "config key -> list of values; each key a dimension of the yield map",
        nullable=True, default=None),
    Key("conditions", "mapping", "", "",
        "condition name -> environment settings (temperature_c, humidity_rh, bend_radius_mm, wavelength_um, "
        "polarization), process additions, kind, readout and spec (conditions.{condition}.*); a module passes "
        "only under every condition", nullable=True,
        default=None),
    Key("uncertain", "mapping", "", "",
        "config key -> distribution of its value (variation format: normal, truncnormal, uniform, lognormal, "
        "empirical): model uncertainty, drawn as outer realisations", nullable=True, default=None),
    Key("uncertainty.realizations", "int", "", "[2, inf)",
        "outer realisations of the uncertain values (each runs the Monte Carlo on the same module draws)",
        default=64),
    Key("uncertainty.sampling", "str", "", "",
        "outer point set: lhs (Latin hypercube) | sobol (scrambled Sobol'; aliases inputs at few points) | random",
        choices=("lhs", "sobol", "random"), default="lhs"),
    Key("shard", "int", "", "[0, inf)", "this job's shard: computes blocks b with b % num_shards == shard", default=0),
    Key("num_shards", "int", "", "[1, inf)", "number of cluster jobs sharing one store", default=1),
    Key("overwrite", "bool", "", "", "replace a store made from a different configuration", default=False),
    Key("progress", "bool", "", "", "progress on stderr: a bar on a terminal, plain lines in a log", default=True),
    Key("hydra", "mapping", "", "", "Hydra's own settings (not read by yieldmc)", nullable=True),
    # --- spec ---
    Key("spec.max_loss_db", "float", "dB", _ANY,
        "a channel fails above this loss (1.5: IBM's < 1.5 dB per Si→PWG interface, La Porta et al. 2018)", default=1.5),
    Key("spec.max_crosstalk_db", "float", "dB", _ANY,
        "a channel also fails when the crosstalk into it exceeds this (null: not checked)", nullable=True, default=None),
    Key("spec.max_failed_channels", "int", "channels", "[0, inf)",
        "a module passes with at most this many failed channels (< layers x channels)", default=0),
    Key("spec.max_loss_change_db", "float", "dB", _NONNEG,
        "under a stress condition a channel also fails when |loss after − initial loss| exceeds this "
        "(null: no change limit unless the condition sets one)", nullable=True, default=None),
    Key("spec.scope", "str", "", "",
        "what spec.max_loss_db limits: channel (coupler + Fresnel + propagation + bend) | coupler (the "
        "Si→PWG interface alone: coupler + Fresnel, the scope of the 1.5 dB default)",
        choices=("channel", "coupler"), default="channel"),
    # --- engine ---
    Key("engine.block_size", "int", "modules", f"[1, {MAX_MODULES_PER_CALL}]", "modules per block (part of the random-number layout)", default=16384),
    Key("engine.blocks_per_call", "int", "blocks", "[1, inf)", "blocks per device between host syncs", default=8),
    Key("engine.dtype", "str", "", "", "float precision of the model (float64 needs JAX_ENABLE_X64=1)",
        choices=("float32", "float64"), default="float32"),
    Key("engine.rng_impl", "str", "", "", "JAX PRNG implementation",
        choices=("threefry2x32", "rbg", "unsafe_rbg"), default="threefry2x32"),
    Key("engine.hist_bins", "int", "bins", "[1, inf)", "loss histogram bins", default=2000),
    Key("engine.hist_max_db", "float", "dB", _POS, "upper edge of the loss histogram", default=20.0),
    Key("engine.quantiles", "list[float]", "", "(0, 1)", "loss quantiles reported per channel", default=[0.5, 0.9, 0.99]),
    # --- output ---
    Key("output.dir", "str", "path", "", "store directory, relative to the starting directory", default="results"),
    Key("output.name", "str", "file name", "", "store name (a plain file name); null: derived from the config",
        nullable=True, default=None),
    Key("output.plots", "bool", "", "", "write PNG plots beside the store", default=True),
    Key("output.target_yield", "float", "", "(0, 1)", "contour / reference line in the yield-map plot", default=0.9),
    Key("output.progress_interval_s", "float", "s", _POS,
        "most seconds between two progress lines in a log (one also comes every 10 %)", default=30.0),
    # --- samplers, gradients, optimisation, alignment ---
    Key("gradient.estimator", "str", "", "", "yield-gradient estimator (pathwise | score, or a registered one)",
        choices=ESTIMATORS.keys(), default="pathwise"),  # live choices: a plugin's estimator counts
    Key("gradient.tau_db", "float", "dB", _POS, "pathwise smoothing temperature of the pass indicator", default=0.02),
    Key("optimize.kind", "str", "", "", "tolerance (min sum cost/sigma) | centring (max yield)",
        choices=("tolerance", "centring"), default="tolerance"),
    Key("optimize.target_yield", "float", "", "(0, 1)", "yield constraint of the tolerance optimisation", default=0.9),
    Key("optimize.costs", "mapping", "", "", "tolerance: process sigma key -> cost", nullable=True, default=None),
    Key("optimize.parameters", "mapping", "", "", "centring: float key -> [low, high]", nullable=True, default=None),
    Key("optimize.steps", "int", "", "[1, inf)", "Adam steps per outer iteration", default=60),
    Key("optimize.outer", "int", "", "[1, inf)", "augmented-Lagrangian outer iterations", default=6),
    Key("optimize.learning_rate", "float", "", _POS, "Adam learning rate", default=0.05),
    Key("optimize.penalty", "float", "", _NONNEG, "augmented-Lagrangian penalty rho", default=200.0),
    Key("optimize.recheck_samples", "int", "modules", "[1, inf)",
        "fresh-draw re-check of the optimum (null: samples)", nullable=True, default=None),
    Key("optimize.recheck_seed_offset", "int", "", "[0, 4294967296)",
        "seed offset of the re-check draws (seed + offset must stay < 2^32)", default=1000003),
    Key("calibrate.data", "str", "path", "", "measured losses: CSV (module, layer, channel, loss_db [, condition]), "
        ".nc or .zarr; relative to the starting directory", nullable=True, default=None),
    Key("calibrate.parameters", "list[str]", "", "", "config keys to fit (process.<q>.<level>.mean|sigma|low|high, "
        "package.*)", default=[]),
    Key("calibrate.name", "str", "file name", "", "the fitted process is written to conf/process/<name>.yaml "
        "(starting directory): use it as process=<name>", default="calibrated"),
    Key("calibrate.samples", "int", "modules", "[16, inf)", "simulated modules per objective evaluation", default=2048),
    Key("calibrate.steps", "int", "", "[1, inf)", "Adam steps of the fit (a bootstrap refit takes a third)", default=300),
    Key("calibrate.bootstrap", "int", "", "[2, inf)", "bootstrap refits over the measured modules (the errors)", default=20),
    Key("calibrate.learning_rate", "float", "", _POS, "Adam learning rate (normalised parameters)", default=0.05),
    Key("alignment.mode", "str", "", "", "passive (placed and fixed) | active (re-aligned per module)",
        choices=("passive", "active"), default="passive"),
    Key("alignment.objective", "str", "", "", "active alignment objective", choices=("worst", "sum_log"), default="worst"),
    Key("alignment.steps", "int", "", "[0, inf)", "damped Newton steps of active alignment", default=0),
    # --- package ---
    Key("package.name", "str", "", "", "package label (used in store names)", default="package"),
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
    Key("package.pwg.index_wavelength_um", "float", "µm", _POS, "wavelength at which n_core, n_clad are given"),
    Key("package.pwg.cauchy_b_um2", "float", "µm²", _ANY,
        "material dispersion n(λ) = n + B·(1/λ² − 1/λ_ref²) of core and cladding"),
    Key("package.pwg.index_humidity_rh", "float", "%RH", "[0, 100]",
        "humidity at which n_core, n_clad and loss_db_per_cm are given"),
    Key("package.pwg.dn_drh_per_rh", "float", "1/%RH", _ANY, "index change per %RH (core and cladding)"),
    Key("package.pwg.water_loss_db_per_cm_per_rh", "float", "dB/cm/%RH", _ANY,
        "water-absorption loss per %RH above index_humidity_rh"),
    Key("package.pwg.bend_radius_mm", "float", "mm", _ANY,
        "bend radius of the flex (null or <= 0: straight)", nullable=True),
    Key("package.pwg.bent_angle_deg", "float", "deg", _NONNEG, "angle over which the flex is bent"),
    Key("package.humidity_rh", "float", "%RH", "[0, 100]", "operating relative humidity"),
    Key("package.lock_humidity_rh", "float", "%RH", "[0, 100]", "relative humidity at bonding (swelling reference)"),
    Key("package.chm_mismatch_ppm_per_rh", "float", "ppm/%RH", _ANY,
        "hygroscopic expansion mismatch flex vs chip (pitch run-out)"),
    Key("package.gap_swelling_um_per_rh", "float", "µm/%RH", _ANY,
        "swelling of the bond line under the PWG per %RH (vertical offset)"),
    Key("package.polarization", "str", "", "", "te | tm | worst (the channel loss is the worse one)",
        choices=("te", "tm", "worst"), default="worst"),
    Key("package.lanes_um", "list[float]", "µm", _POS,
        "WDM lane wavelengths (null: package.wavelength_um); the channel loss is the worst lane",
        nullable=True, default=None),
    Key("package.gap_thermal_um_per_k", "float", "µm/K", _ANY,
        "change of the PWG-to-chip bond line per K from the lock temperature (adhesive expansion, "
        "warpage; vertical offset)"),
    # package.coupler.*: declared by the registered couplers (yieldmc.couplers), see all_keys()
    # --- process (every quantity x level; draws are added to the quantity's nominal) ---
    Key("process.{quantity}.{level}.distribution", "str", "", "",
        "distribution of this level's draw (empirical: from values or values_file)", choices=tuple(DISTRIBUTIONS),
        default="normal"),
    Key("process.{quantity}.{level}.mean", "float", "quantity", _ANY, "mean (lognormal: of the underlying normal)",
        default=0.0),
    Key("process.{quantity}.{level}.sigma", "float", "quantity", _NONNEG,
        "standard deviation (lognormal: of the underlying normal)", default=0.0),
    Key("process.{quantity}.{level}.low", "float", "quantity", "[-inf, inf]", "lower bound (truncnormal, uniform)",
        default=-math.inf),
    Key("process.{quantity}.{level}.high", "float", "quantity", "[-inf, inf]", "upper bound (truncnormal, uniform)",
        default=math.inf),
    Key("process.{quantity}.{level}.values", "list[float]", "quantity", _ANY,
        "empirical: the measured values; the draw is their piecewise-linear (Hazen) quantile of Phi(z), "
        "added to the nominal (>= 2 values; not with values_file)", nullable=True, default=None),
    Key("process.{quantity}.{level}.values_file", "str", "path", "",
        "empirical: text/CSV file of values, one per line, optional header, '#' comments; relative to the "
        "starting directory (not with values)", nullable=True, default=None),
    Key("process.correlation.quantities", "list[str]", "", "", "module-level quantities tied by a Gaussian copula",
        choices=QUANTITIES, nullable=True, default=[]),
    Key("process.correlation.matrix", "matrix", "", "", "their correlation matrix", nullable=True, default=[]),
    # --- a condition's own keys ({condition}: any condition name; its environment settings and
    # process additions are checked as the package and process keys they replace) ---
    Key("conditions.{condition}.kind", "str", "", "",
        "operating: the loss is read during the condition | stress: read before and after it at the readout "
        "environment, its process entries the lasting changes it leaves", choices=("operating", "stress"),
        default="operating"),
    Key("conditions.{condition}.readout", "mapping", "", "",
        "stress: the readout environment (temperature_c, humidity_rh, bend_radius_mm, wavelength_um); "
        "null: the package's own", nullable=True, default=None),
    Key("conditions.{condition}.spec.max_loss_db", "float", "dB", _ANY,
        "absolute limit under this condition (absent: spec.max_loss_db; null: none, stress only)",
        nullable=True),
    Key("conditions.{condition}.spec.max_loss_change_db", "float", "dB", _NONNEG,
        "stress: limit on |loss after − initial loss| of each channel (absent: spec.max_loss_change_db; "
        "null: none)", nullable=True),
    Key("conditions.{condition}.spec.max_failed_channels", "int", "channels", "[0, inf)",
        "failed channels a module may have under this condition (absent: spec.max_failed_channels)"),
)

#: The placeholder of a free name in a row's path: the rows of ``conditions.{condition}.*``
#: hold for every condition. Such rows give no default to the configuration's tree.
CONDITION = "{condition}"


def condition_row(key: str) -> Key:
    """The row of a condition's own key (``kind``, ``readout``, ``spec.max_loss_db`` …)."""
    return _tables().index[f"conditions.{CONDITION}.{key}"][0]

_PLACEHOLDERS = {"{quantity}": QUANTITIES, "{level}": LEVELS}


def _expand(key: Key) -> list[Key]:
    """The concrete rows of a declaration (its placeholders replaced by every value)."""
    rows = [key]
    for name, values in _PLACEHOLDERS.items():
        if name in key.path:
            rows = [r._replace(path=r.path.replace(name, v)) for r in rows for v in values]
    return rows


class _Tables(NamedTuple):
    index: dict  # concrete path -> its rows (several when they differ by ``when``)
    children: dict  # mapping node (every proper prefix of a declared path; "" the root) -> child names
    int_paths: tuple  # paths declared ``int`` (under some ``when``)
    discriminators: tuple  # keys whose value selects other keys (``when``), checked before the rest


def all_keys() -> tuple[Key, ...]:
    """Every declared row: :data:`KEYS` with the ``package.coupler.*`` rows of the couplers
    registered now (:func:`yieldmc.couplers.schema_rows`) after the other ``package`` rows,
    and the rows of the registered samplers (:func:`yieldmc.samplers.registry.schema_rows`,
    each under its own section) after ``output``.

    Read at call time, so that a coupler or sampler registered by a plugin is declared too."""
    from yieldmc import couplers
    from yieldmc.samplers import registry

    last = max(i for i, k in enumerate(KEYS) if k.path.startswith("package."))
    rows = KEYS[: last + 1] + couplers.schema_rows() + KEYS[last + 1:]
    at = max(i for i, k in enumerate(rows) if k.path.startswith("output.")) + 1
    return rows[:at] + registry.schema_rows() + rows[at:]


_TABLES: dict = {}  # the registries' tokens -> _Tables


def _tables() -> _Tables:
    """The lookup tables of :func:`all_keys` (rebuilt when a coupler or sampler is registered)."""
    from yieldmc import couplers
    from yieldmc.samplers import registry

    token = couplers.registry_token(), registry.registry_token()
    tables = _TABLES.get(token)
    if tables is None:
        index: dict[str, list[Key]] = {}
        for key in all_keys():
            for row in _expand(key):
                index.setdefault(row.path, []).append(row)
        children: dict[str, dict[str, list[Key]]] = {}
        for path, rows in index.items():
            parts = path.split(".")
            for i in range(len(parts)):
                node, child = ".".join(parts[:i]), ".".join(parts[: i + 1])
                children.setdefault(node, {}).setdefault(parts[i], index.get(child, []))
        tables = _Tables(
            index=index,
            children=children,
            int_paths=tuple(p for p, rows in index.items() if any(r.type == "int" for r in rows)),
            discriminators=tuple(dict.fromkeys(r.when[0] for rows in index.values() for r in rows if r.when)),
        )
        _TABLES.clear()
        _TABLES[token] = tables
    return tables


def choices(path: str) -> tuple:
    """The declared choices of ``path`` (e.g. ``choices("engine.dtype")``)."""
    return _tables().index[path][0].choices


def declared(path: str) -> bool:
    """Whether ``path`` is a declared key or section."""
    tables = _tables()
    return path in tables.index or path in tables.children


def defaults() -> dict:
    """The nested mapping of every declared default (the rows whose ``default`` is set):
    the base the shipped ``conf/`` composes on, and what :func:`with_defaults` fills in."""
    tree: dict = {}
    for key in all_keys():
        if key.default is NO_DEFAULT or key.when or CONDITION in key.path:
            continue
        for row in _expand(key):
            *parents, leaf = row.path.split(".")
            node = tree
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = copy.deepcopy(row.default)
    return tree


def with_defaults(config: dict) -> dict:
    """A copy of ``config`` with every declared default that it lacks filled in (a section
    given as ``null`` is filled as if absent)."""
    def merge(node, base):
        out = dict(base)
        for k, v in node.items():
            out[k] = merge(v, base[k]) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
            if v is None and isinstance(base.get(k), dict):
                out[k] = base[k]
        return out

    return merge(config, defaults())


def record(cls, config: dict, section: str):
    """The frozen record ``cls`` (a dataclass whose fields are the section's keys) from a
    checked configuration: lists become tuples and mappings read-only, so that it hashes."""
    def frozen(value):
        if isinstance(value, list):
            return tuple(frozen(v) for v in value)
        if isinstance(value, dict):
            return types.MappingProxyType({k: frozen(v) for k, v in value.items()})
        return value

    node = value_at(config, section) or {}
    return cls(**{f.name: frozen(node.get(f.name)) for f in dataclasses.fields(cls)})


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


def typed_numbers(config: dict) -> dict:
    """In place: each number at a declared key as the key's type, so that ``2`` and ``2.0``
    give the same configuration (and the same store identity). A float with an integral
    value at an ``int`` key (``samples=1e6``) becomes that ``int``; an ``int`` at a
    ``float`` key (``spec.max_loss_db=2``) becomes a ``float``, as does every ``int`` inside
    a ``list[float]``, a ``matrix`` or a mapping of keys to numbers (``sweep`` value lists,
    ``optimize.costs``/``parameters``, ``conditions``). A ``bool`` is never a number;
    anything else is left for the checks to refuse."""
    for path in _tables().index:
        parent, _, leaf = path.rpartition(".")
        node = value_at(config, parent) if parent else config
        key = lookup(config, path) if isinstance(node, dict) and leaf in node else None
        if key is None or path == "hydra":
            continue
        value = node[leaf]
        if key.type == "int" and isinstance(value, float) and value.is_integer():
            node[leaf] = int(value)
        elif key.type in ("float", "list[float]", "matrix", "mapping"):
            node[leaf] = _floats(value)
    return config


def _floats(value):
    """``value`` with every ``int`` (not ``bool``) in it a ``float`` (one too large for a
    float is left for the checks to refuse)."""
    if isinstance(value, dict):
        return {k: _floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_floats(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            return value
    return value


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
    for key in _tables().index.get(path, ()):
        if not key.when or value_at(config, key.when[0]) == key.when[1]:
            return key
    return None


def value_at(config: dict, path: str):
    """The value at a dotted path of a nested mapping, or None where the path is absent."""
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
    for path in _tables().discriminators:  # first, so that the key set they select is the right one
        value = value_at(config, path)
        if value is not None:
            check_value(path, value, lookup(config, path), dtype)
    _walk(config, "", config, dtype, skip)


def _walk(node, prefix: str, config: dict, dtype: str, skip) -> None:
    tables = _tables()
    children = tables.children[prefix]
    allowed = {name for name, rows in children.items()
               if not rows or any(not r.when or value_at(config, r.when[0]) == r.when[1] for r in rows)}
    for name, value in node.items():
        path = f"{prefix}.{name}" if prefix else str(name)
        if name not in allowed:
            raise ValueError(f"{path}: unknown key; expected one of {sorted(allowed)}")
        if path in tables.children and not _free_mapping(path):  # a section
            if value is None:
                continue
            if not isinstance(value, dict):
                raise ValueError(f"{path}: expected a mapping, got {value!r}")
            _walk(value, path, config, dtype, skip)
        elif path not in skip:
            check_value(path, value, lookup(config, path), dtype)


def _free_mapping(path: str) -> bool:
    """Whether ``path`` is a mapping of free names checked by its user (``conditions``),
    though rows below it (``conditions.{condition}.*``) make it a node of the table."""
    return any(r.type == "mapping" for r in _tables().index.get(path, ()))


# --------------------------------------------------------------------------- the key table
def _allowed(key: Key) -> str:
    """What a key accepts, in words: its choices or its bounds, and null."""
    if key.choices:
        text = " | ".join(map(str, tuple(key.choices)))
    elif key.type == "bool":
        text = "true | false"
    elif key.bounds:
        text = key.bounds
    else:
        text = key.type
    return text + (" or null" if key.nullable else "")


def _default(defaults: Mapping | None, key: Key) -> str:
    """The default of ``key``: its row's, else the default configuration's value (a
    package preset's), else none."""
    node = defaults
    for part in key.path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            node = key.default
            break
        node = node[part]
    if node is NO_DEFAULT:
        return ""
    if node is None:
        return "null"
    if isinstance(node, bool):
        return str(node).lower()
    return str(node).replace(" ", "")


def key_table(*, markdown: bool, defaults: Mapping | None = None) -> str:
    """The table of every declared key (``yieldmc --help`` and docs/configuration.md).

    Args:
      markdown: a Markdown table (the docs) instead of aligned text (``--help``).
      defaults: the composed default configuration, for the default column (a key
        that the default configuration does not hold, e.g. another coupler's, shows none).

    Returns:
      One row per declaration (``{quantity}``/``{level}`` left as placeholders): key,
      type, unit, allowed values, default and description; a key that exists only for
      one coupler kind says so.
    """
    rows = []
    for key in all_keys():
        doc = key.doc + (f" ({key.when[0].rsplit('.', 1)[-1]}={key.when[1]} only)" if key.when else "")
        rows.append((key.path, key.type, key.unit, _allowed(key), _default(defaults, key), doc))
    if markdown:
        head = "| key | type | unit | allowed | default | description |\n|---|---|---|---|---|---|\n"
        return head + "\n".join(
            "| " + " | ".join(c.replace("|", "\\|") if c else "" for c in (f"`{r[0]}`", *r[1:])) + " |"
            for r in rows) + "\n"
    width = max(len(r[0]) + len(r[4]) + 1 for r in rows) + 2
    lines = []
    for path, type_, unit, allowed, default, doc in rows:
        left = f"{path}={default}" if default else path
        unit = f" [{unit}]" if unit else ""
        lines.append(f"  {left:<{width}}{type_}{unit}, {allowed}: {doc}")
    return "\n".join(lines)
