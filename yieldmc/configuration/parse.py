"""The parse: a resolved configuration, validated, as the engine's frozen, typed objects.

``build_problem(config)`` takes the resolved configuration as a plain nested ``dict``
(``OmegaConf.to_container(cfg, resolve=True)``), validates every value before anything
is compiled, and splits it into

* :class:`~yieldmc.engine.problem.Static` — hashable settings that fix array shapes and code paths (layers,
  channels, the coupler and the sampler bound to their settings, active variations,
  block size …): the ``jit`` static argument;
* ``params`` — a flat ``dict`` of float parameters keyed by config path (e.g.
  ``"process.dx_um.module.sigma"``), each an array over the flattened sweep grid: these
  are traced, so a sweep compiles once.

The allowed keys, their types and simple bounds are declared once in
:mod:`yieldmc.configuration.schema`; this module applies them (to the whole tree, and to every traced
parameter at every sweep point) and adds the relations between keys.

The coupler and the sampler are looked up in their registries here, once: :class:`Static`
holds the parts themselves (:class:`yieldmc.parts.Part`), and the engine, the store and the
results call them without a registry.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping

import numpy as np

from yieldmc import couplers, physics

from yieldmc.configuration import schema
from yieldmc.engine import conditions as _conditions
from yieldmc.engine import empirical as _empirical
from yieldmc.engine import quantities as _quantities
from yieldmc.engine.problem import Problem, Static, random_dimension
from yieldmc.engine.distributions import DISTRIBUTIONS, Distribution
from yieldmc.engine.variation import LEVELS, PARAMS, QUANTITIES, process_key
from yieldmc.parts import number as _number
from yieldmc.samplers.base import Sampler
from yieldmc.samplers.registry import get_sampler, sampler_names

PACKAGE_FLOATS = (
    "pitch_um", "layer_pitch_um", "wavelength_um", "temperature_c", "lock_temperature_c",
    "cte_mismatch_ppm_per_k",
    "pwg.core_width_um", "pwg.core_thickness_um", "pwg.n_core", "pwg.n_clad", "pwg.dn_dt_per_k",
    "pwg.index_temperature_c", "pwg.loss_db_per_cm", "pwg.length_cm",
    "humidity_rh", "lock_humidity_rh", "chm_mismatch_ppm_per_rh", "gap_swelling_um_per_rh",
    "pwg.index_wavelength_um", "pwg.cauchy_b_um2", "pwg.index_humidity_rh", "pwg.dn_drh_per_rh",
    "pwg.water_loss_db_per_cm_per_rh", "pwg.bend_radius_mm", "pwg.bent_angle_deg",
    "gap_thermal_um_per_k",
)
#: Nullable package floats and the value their null stands for (a straight flex).
PACKAGE_NULL_FLOATS = {"package.pwg.bend_radius_mm": 0.0}
POLARIZATIONS = {"te": ("te",), "tm": ("tm",), "worst": ("te", "tm")}
SPEC_FLOATS = ("max_loss_db", "max_failed_channels")
RNG_IMPLS = schema.choices("engine.rng_impl")
DTYPES = schema.choices("engine.dtype")
#: Largest number of modules one device handles per call: keeps int32 partial sums exact.
MAX_MODULES_PER_CALL = 2**21
#: Most blocks one run may have. The store keeps one chunk file per block and statistic
#: (ten per block with the default sampler) and the command keeps a done flag per block in
#: memory: 2^20 blocks are about ten million files; beyond that a larger ``engine.block_size`` (up to
#: :data:`MAX_MODULES_PER_CALL`, i.e. 2^41 ≈ 2.2e12 modules in all) is the way to more modules.
MAX_BLOCKS = 2**20

def _get(config: dict, path: str):
    node = config
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ValueError(f"{path}: missing from the configuration")
        node = node[part]
    return node


def _set(config: dict, path: str, value) -> None:
    parts = path.split(".")
    node = config
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value


def _finite(path: str, value) -> float:
    x = _number(path, value)
    if not math.isfinite(x):
        raise ValueError(f"{path}: must be finite, got {value!r}")
    return x


def float_param_paths(config: dict) -> list[str]:
    """Config paths of every traced float parameter (also the sweepable keys)."""
    _get(config, "package.coupler.kind")
    paths = [f"package.{p}" for p in PACKAGE_FLOATS]
    paths += couplers.float_paths(config)  # the selected coupler's (raises for an unknown kind)
    paths += [process_key(q, lv, p) for q in QUANTITIES for lv in LEVELS for p in PARAMS]
    paths += [f"spec.{p}" for p in SPEC_FLOATS]
    if (config.get("spec") or {}).get("max_crosstalk_db") is not None:
        paths.append("spec.max_crosstalk_db")
    paths += _conditions.float_paths(_conditions.parse(config))
    return paths


def _param_value(config: dict, path: str) -> float:
    """A traced parameter's value at one resolved point (a null stands for its default)."""
    value = _get(config, path)
    if value is None and path in PACKAGE_NULL_FLOATS:
        return PACKAGE_NULL_FLOATS[path]
    return float(value)


def _validate_point(config: dict, dtype: str = "float32") -> None:
    """Validate one fully resolved configuration point (no sweep).

    Every traced parameter is checked against its :mod:`yieldmc.configuration.schema` declaration (type,
    finite unless its bounds allow ±inf, ``|x| <= sqrt(finfo(dtype).max)``, bounds), then
    the relations between keys.
    """
    for path in float_param_paths(config):
        if path.startswith("conditions."):
            continue  # _validate_conditions checks them as the package keys they replace
        value = _get(config, path)
        if value is None and path in PACKAGE_NULL_FLOATS:
            continue
        schema.check_value(path, value, schema.lookup(config, path), dtype)
    _check_process_temperatures(config)
    _validate_conditions(config, dtype)
    pkg = config["package"]
    for path in ("package.pitch_um", "package.layer_pitch_um"):
        if not _finite(path, _get(config, path)) > 0:
            raise ValueError(f"{path}: must be > 0, got {_get(config, path)!r}")
    pwg = pkg["pwg"]
    wl = {"wavelength_um": "package.wavelength_um"}
    for dim in ("core_thickness_um", "core_width_um"):
        _physics_check(
            physics.validate_slab,
            {"thickness_um": f"package.pwg.{dim}", "n_core": "package.pwg.n_core",
             "n_clad": "package.pwg.n_clad", **wl},
            thickness_um=pwg[dim], n_core=pwg["n_core"], n_clad=pwg["n_clad"],
            wavelength_um=pkg["wavelength_um"],
        )
    for name in ("loss_db_per_cm", "length_cm"):
        if not _finite(f"package.pwg.{name}", pwg[name]) >= 0:
            raise ValueError(f"package.pwg.{name}: must be >= 0, got {pwg[name]!r}")
    couplers.validate(config)  # the selected coupler's relations, naming package.coupler.* keys
    for q in QUANTITIES:
        for lv in LEVELS:
            node = config["process"][q][lv]
            path = process_key(q, lv)
            dist = node["distribution"]
            if dist not in DISTRIBUTIONS:
                raise ValueError(
                    f"{path}.distribution: unknown distribution {dist!r}; expected one of {tuple(DISTRIBUTIONS)}"
                )
            sigma = _number(f"{path}.sigma", node["sigma"])
            if not sigma >= 0 or not math.isfinite(sigma):
                raise ValueError(f"{path}.sigma: must be >= 0, got {node['sigma']!r}")
            mean = _finite(f"{path}.mean", node["mean"])
            low, high = _number(f"{path}.low", node["low"]), _number(f"{path}.high", node["high"])
            if low > high:
                raise ValueError(f"{path}.low: must not exceed high ({high!r}), got {low!r}")
            DISTRIBUTIONS[dist].validate(path, {"mean": mean, "sigma": sigma, "low": low, "high": high})
    spec = config["spec"]
    _finite("spec.max_loss_db", spec["max_loss_db"])
    m = _number("spec.max_failed_channels", spec["max_failed_channels"], integer=True)
    if m < 0:
        raise ValueError(f"spec.max_failed_channels: must be >= 0, got {spec['max_failed_channels']!r}")
    n_channels = int(pkg["layers"]) * int(pkg["channels"])
    if m >= n_channels:
        raise ValueError(
            f"spec.max_failed_channels: must be < package.layers x package.channels = {n_channels} "
            f"(with that many failures allowed every module passes), got {spec['max_failed_channels']!r}"
        )


def _validate_conditions(config: dict, dtype: str) -> None:
    """Each condition's settings as the package key they replace (type, bounds, and every
    relation: the configuration with the condition's values in place of the package's
    must be valid), its drift parameters as process parameters; errors name the
    ``conditions.<name>.*`` key."""
    parsed = _conditions.parse(config)
    if not parsed:
        return
    for name, c in parsed.items():
        renamed = {}
        for q, value in c["settings"].items():
            key = _quantities.BY_NAME[q].nominal
            path = _conditions.setting_path(name, q)
            schema.check_value(path, value, schema.lookup(config, key), dtype)
            renamed[key] = path
        for (q, lv), entry in c["process"].items():
            for p in PARAMS:
                schema.check_value(f"{_conditions.drift_path(name, q, lv)}.{p}", entry[p],
                                   schema.lookup(config, process_key(q, lv, p)), dtype)
        cfg = _copy(config)
        cfg["conditions"] = None
        for q, value in c["settings"].items():
            _set(cfg, _quantities.BY_NAME[q].nominal, value)
        try:
            _validate_point(cfg, dtype)
        except ValueError as exc:
            msg = str(exc)
            for key, path in renamed.items():
                msg = msg.replace(key, path)
            if not msg.startswith(f"conditions.{name}"):
                msg = f"conditions.{name}: under this condition {msg}"
            raise ValueError(msg) from None


def _check_process_temperatures(config: dict) -> None:
    """Each level's temperature draw, added to ``package.temperature_c``, must be able to
    stay at or above absolute zero: for a bounded distribution (uniform, truncnormal with a
    finite ``low``) the nominal plus ``low``, otherwise the nominal plus ``mean`` (the centre
    of a normal draw; a lognormal draw is > 0 and never lowers it)."""
    nominal = float(_get(config, "package.temperature_c"))
    for lv in LEVELS:
        node = config["process"]["temperature_c"][lv]
        dist = node["distribution"]
        # an unknown name reads as centred on its mean here; _validate_point refuses it below
        family = DISTRIBUTIONS.get(dist, Distribution) if isinstance(dist, str) else Distribution
        name = family.floor_param(node)
        if name is None:
            continue
        if nominal + node[name] < schema.ABSOLUTE_ZERO_C:
            raise ValueError(
                f"process.temperature_c.{lv}.{name}: package.temperature_c ({nominal:g} °C) plus this "
                f"draw must stay >= {schema.ABSOLUTE_ZERO_C} °C, got {node[name]!r}"
            )


def _physics_check(check, names: dict, **kwargs) -> None:
    """Run a physics ``validate_*`` helper, reporting the config key instead of its argument."""
    try:
        check(**kwargs)
    except ValueError as exc:
        arg, _, rest = str(exc).partition(":")
        raise ValueError(f"{names.get(arg, arg)}:{rest}") from None


def _correlation(config: dict) -> tuple[tuple[str, ...], np.ndarray]:
    corr = config["process"].get("correlation") or {}
    names = tuple(corr.get("quantities") or ())
    matrix = corr.get("matrix") or []
    for name in names:
        if name not in QUANTITIES:
            raise ValueError(f"process.correlation.quantities: unknown quantity {name!r}")
    if len(set(names)) != len(names):
        raise ValueError("process.correlation.quantities: a quantity is listed twice")
    if not names:
        if matrix:
            raise ValueError("process.correlation.matrix: given without quantities")
        return (), np.zeros((0, 0))
    try:
        m = np.asarray(matrix, dtype=float)
    except (TypeError, ValueError):
        raise ValueError("process.correlation.matrix: must be a square matrix of numbers") from None
    n = len(names)
    if m.shape != (n, n):
        raise ValueError(f"process.correlation.matrix: must be {n}x{n} for {list(names)}, got shape {m.shape}")
    if not np.all(np.isfinite(m)) or not np.allclose(m, m.T, atol=1e-12):
        raise ValueError("process.correlation.matrix: must be symmetric and finite")
    if not np.allclose(np.diag(m), 1.0, atol=1e-12) or np.any(np.abs(m) > 1):
        raise ValueError("process.correlation.matrix: must have a unit diagonal and entries in [-1, 1]")
    try:
        chol = np.linalg.cholesky(m)
    except np.linalg.LinAlgError:
        raise ValueError("process.correlation.matrix: not positive definite") from None
    if np.min(np.diag(chol)) < 1e-9:
        raise ValueError("process.correlation.matrix: not positive definite")
    return names, chol


def _alignment(config: dict) -> dict:
    node = config.get("alignment") or {"mode": "passive"}
    if isinstance(node, str):
        node = {"mode": node}
    mode = node.get("mode", "passive")
    if mode not in ("passive", "active"):
        raise ValueError(f"alignment.mode: expected passive or active, got {mode!r}")
    objective = node.get("objective", "worst")
    if objective not in ("worst", "sum_log"):
        raise ValueError(f"alignment.objective: expected worst or sum_log, got {objective!r}")
    steps = int(_number("alignment.steps", node.get("steps", 0), integer=True))
    if mode == "active" and steps < 1:
        raise ValueError(f"alignment.steps: active alignment needs >= 1 step, got {steps}")
    return {"alignment": mode, "alignment_objective": objective,
            "alignment_steps": steps if mode == "active" else 0}


def _sampler(config: dict, samples: int, block_size: int) -> Sampler:
    """The selected sampler bound to its name and its own settings
    (:meth:`yieldmc.samplers.Sampler.configure` reads its section and checks them)."""
    name = config.get("sampler", "mc")
    sampler = get_sampler(name)  # ValueError "sampler: expected one of [...]" if unknown
    if config.get("sweep") and not sampler.supports_sweep:
        able = ", ".join(sampler_names(supporting="supports_sweep"))
        raise ValueError(f"sweep: sampler={name} estimates one point; remove the sweep or use a "
                         f"sampler that supports sweeps ({able})")
    return sampler.bind(name, sampler.configure(config, samples=samples, block_size=block_size))


def _sweep(config: dict, paths: list[str]):
    sweep = config.get("sweep") or {}
    if not isinstance(sweep, dict):
        raise ValueError(f"sweep: expected a mapping of config keys to value lists, got {sweep!r}")
    keys, values = [], []
    for key, vals in sweep.items():
        if key not in paths:
            try:
                _get(config, key)
            except ValueError:
                raise ValueError(f"sweep.{key}: unknown config key") from None
            raise ValueError(
                f"sweep.{key}: not sweepable (only float parameters are; shapes and model "
                "choices need separate runs)"
            )
        if not isinstance(vals, (list, tuple)) or not vals:
            raise ValueError(f"sweep.{key}: expected a non-empty list of values, got {vals!r}")
        unread = _empirical.unread_parameter(config, key)
        if unread:
            raise ValueError(f"sweep.{key}: {unread}")
        vals = tuple(_number(f"sweep.{key}", v) for v in vals)
        if len(set(vals)) != len(vals):  # each value is a coordinate of the yield map
            twice = sorted({v for v in vals if vals.count(v) > 1})
            raise ValueError(f"sweep.{key}: a value is listed twice ({twice[0]:g}), got {list(vals)}")
        keys.append(key)
        values.append(vals)
    return tuple(keys), tuple(values)


def check_declared(config: dict) -> None:
    """Every key of a resolved configuration against :mod:`yieldmc.configuration.schema`: declared,
    of its type, within its bounds (swept keys are checked at every sweep point later).

    Raises:
      ValueError: one line naming the key.
    """
    engine = config.get("engine") if isinstance(config.get("engine"), dict) else {}
    dtype = engine.get("dtype", DEFAULT_ENGINE["dtype"])
    tree = config
    if isinstance(config.get("alignment"), str):  # `alignment: active` shorthand
        tree = dict(config, alignment={"mode": config["alignment"]})
    sweep = config.get("sweep")
    swept = frozenset(sweep) if isinstance(sweep, dict) else frozenset()
    schema.check_tree(tree, dtype=dtype if dtype in DTYPES else "float32", skip=swept)


def build_problem(config: dict) -> Problem:
    """Validate a resolved configuration (plain dict) and turn it into a :class:`Problem`.

    The input is not modified; numpy scalars are taken as their Python values.

    Raises:
      ValueError: one line naming the offending key, for a key not declared in
        :mod:`yieldmc.configuration.schema` (anywhere in the tree), a value of the wrong type (a bool that
        is not true/false, a non-integral integer, a non-number), a float that is not finite
        or exceeds sqrt(finfo(engine.dtype).max), a value out of its declared bounds (e.g. a
        temperature below -273.15 °C, a seed outside [0, 2^32)), a negative sigma, low >
        high, an unknown distribution or level, a correlation matrix that is not positive
        definite, spec.max_failed_channels >= layers x channels, a non-sweepable or unknown
        sweep key, an empirical distribution without a usable table (no values / values_file,
        both, a missing or unreadable file, a non-numeric or non-finite value, fewer than 2
        values; :mod:`yieldmc.engine.empirical`), a table given to another distribution, a
        swept mean/sigma/low/high of an empirical variation, … — at every sweep point.
    """
    if not isinstance(config, Mapping):
        raise ValueError(f"config: expected a mapping, got {type(config).__name__}")
    config = schema.plain(config)  # a copy: numpy scalars as Python numbers, tuples as lists
    check_declared(config)
    for key in ("package", "process", "samples", "seed", "spec"):
        if key not in config:
            raise ValueError(f"{key}: missing from the configuration")
    process = config["process"]
    for q in QUANTITIES:
        if q not in process:
            raise ValueError(f"process.{q}: missing from the configuration")
        for lv in LEVELS:
            if lv not in process[q]:
                raise ValueError(f"process.{q}.{lv}: missing from the configuration")
            for p in ("distribution", *PARAMS):
                if p not in process[q][lv]:
                    raise ValueError(f"process.{q}.{lv}.{p}: missing from the configuration")
    paths = float_param_paths(config)
    samples = _number("samples", config["samples"], integer=True)
    if samples < 1:
        raise ValueError(f"samples: must be a positive integer, got {config['samples']!r}")
    seed = _number("seed", config["seed"], integer=True)
    if not 0 <= seed < schema.SEED_LIMIT:
        raise ValueError(f"seed: must lie in [0, {schema.SEED_LIMIT}) (a uint32), got {config['seed']!r}")
    engine = dict(DEFAULT_ENGINE, **(config.get("engine") or {}))
    block_size = int(_number("engine.block_size", engine["block_size"], integer=True))
    bpc = int(_number("engine.blocks_per_call", engine["blocks_per_call"], integer=True))
    if block_size < 1:
        raise ValueError(f"engine.block_size: must be >= 1, got {block_size}")
    if -(-int(samples) // block_size) > MAX_BLOCKS:  # files in the store, flags in memory
        raise ValueError(f"samples: at most 2^20 = {MAX_BLOCKS} blocks of engine.block_size={block_size} "
                         f"modules ({MAX_BLOCKS * block_size} modules; raise engine.block_size for more), "
                         f"got {config['samples']!r}")
    if block_size > MAX_MODULES_PER_CALL:  # int32 partial sums on the device
        raise ValueError(f"engine.block_size: must be <= {MAX_MODULES_PER_CALL}, got {block_size}")
    if bpc < 1 or bpc * block_size > MAX_MODULES_PER_CALL:
        raise ValueError(
            f"engine.blocks_per_call: blocks_per_call x engine.block_size must be <= {MAX_MODULES_PER_CALL} "
            f"(int32 partial sums; lower either), got {bpc} x {block_size}"
        )
    if engine["dtype"] not in DTYPES:
        raise ValueError(f"engine.dtype: expected one of {DTYPES}, got {engine['dtype']!r}")
    if engine["dtype"] == "float64" and not _x64_enabled():
        raise ValueError("engine.dtype: float64 needs JAX_ENABLE_X64=1 (or jax_enable_x64), got 'float64'")
    if engine["rng_impl"] not in RNG_IMPLS:
        raise ValueError(f"engine.rng_impl: expected one of {RNG_IMPLS}, got {engine['rng_impl']!r}")
    hist_bins = int(_number("engine.hist_bins", engine["hist_bins"], integer=True))
    hist_max = _finite("engine.hist_max_db", engine["hist_max_db"])
    if hist_bins < 1 or hist_max <= 0:
        raise ValueError("engine.hist_bins: need hist_bins >= 1 and hist_max_db > 0")
    if not isinstance(engine["quantiles"], (list, tuple)) or not engine["quantiles"]:
        raise ValueError(f"engine.quantiles: expected a non-empty list of numbers in (0, 1), "
                         f"got {engine['quantiles']!r}")
    quantiles = tuple(_number("engine.quantiles", q) for q in engine["quantiles"])
    if not all(0 < q < 1 for q in quantiles):
        raise ValueError(f"engine.quantiles: each must lie in (0, 1), got {list(quantiles)}")
    if len(set(quantiles)) != len(quantiles):  # each is a coordinate of the result
        raise ValueError(f"engine.quantiles: a value is listed twice, got {list(quantiles)}")

    config["conditions"] = _normalised_conditions(config)
    sweep_keys, sweep_values = _sweep(config, paths)
    grid = list(itertools.product(*sweep_values)) if sweep_keys else [()]
    columns = {p: [] for p in paths}
    for point in grid:
        cfg = _copy(config)
        for key, value in zip(sweep_keys, point):
            _set(cfg, key, value)
        try:
            _validate_point(cfg, engine["dtype"])
        except ValueError as exc:
            if sweep_keys:
                where = ", ".join(f"{k}={v}" for k, v in zip(sweep_keys, point))
                raise ValueError(f"{exc} (at sweep point {where})") from None
            raise
        for p in paths:
            columns[p].append(_param_value(cfg, p))
    params = {p: np.asarray(v, dtype=np.float64) for p, v in columns.items()}

    copula, chol = _correlation(config)
    for i, name in enumerate(copula):
        params[f"process.correlation.cholesky.{i}"] = np.tile(chol[i], (len(grid), 1))

    if config.get("mode") == "optimize":  # an empirical variation's unread mean/sigma: no gradient
        for section in ("costs", "parameters"):
            for key in ((config.get("optimize") or {}).get(section) or {}):
                unread = _empirical.unread_parameter(config, key)
                if unread:
                    raise ValueError(f"optimize.{section}.{key}: {unread}")
    active = []
    for q in QUANTITIES:
        for lv in LEVELS:
            # its family, for empirical with its table (values / values_file, read once here)
            dist = _empirical.distribution_of(process[q][lv], process_key(q, lv), dtype=engine["dtype"])
            if q == "temperature_c":  # nominal + lowest value >= absolute zero, at every sweep point
                _empirical.check_lowest(process[q][lv], process_key(q, lv), dist,
                                        float(np.min(params["package.temperature_c"])), schema.ABSOLUTE_ZERO_C)
            degenerate = all(
                dist.is_degenerate(**{p: params[process_key(q, lv, p)][i] for p in PARAMS})
                for i in range(len(grid))
            )
            if not degenerate or (lv == "module" and q in copula):
                active.append((q, lv, dist))
    alignment = _alignment(config)
    sampler = _sampler(config, int(samples), block_size)
    cpl = config["package"]["coupler"]
    coupler = couplers.get_coupler(cpl["kind"])
    environment = _environment(config, params, active, len(grid), coupler)
    static = Static(
        layers=int(_number("package.layers", _get(config, "package.layers"), integer=True)),
        channels=int(_number("package.channels", _get(config, "package.channels"), integer=True)),
        coupler=coupler.bind(coupler.static(cpl)),
        sampler=sampler,
        active=tuple(active),
        copula=copula,
        block_size=block_size,
        hist_bins=hist_bins,
        hist_max_db=hist_max,
        loss_unit_db=1e-4,
        dtype=engine["dtype"],
        rng_impl=engine["rng_impl"],
        **alignment,
        **environment,
    )
    for name in ("layers", "channels"):
        if getattr(static, name) < 1:
            raise ValueError(f"package.{name}: must be >= 1, got {getattr(static, name)}")
    dim = random_dimension(static)
    if dim * block_size >= 2**32:
        raise ValueError(f"engine.block_size: {block_size} modules x {dim} random dimensions reach "
                         "2^32 random numbers per block (the generator's counter); use a smaller block")
    return Problem(
        static=static,
        params=params,
        sweep_keys=sweep_keys,
        sweep_values=sweep_values,
        samples=int(samples),
        seed=int(seed),
        blocks_per_call=bpc,
        quantiles=quantiles,
    )


def _x64_enabled() -> bool:
    """Whether JAX computes in 64-bit here (``JAX_ENABLE_X64=1`` or ``jax_enable_x64``)."""
    import jax

    return bool(jax.config.jax_enable_x64)


def _normalised_conditions(config: dict):
    """``conditions`` with every drift parameter filled in and a null bend radius as 0, so
    that each traced condition parameter is a key of the tree (and sweepable); None when
    there are no conditions."""
    parsed = _conditions.parse(config)
    if not parsed:
        return None
    out = {}
    for name, c in parsed.items():
        node = dict(c["settings"])
        if c["polarization"] is not None:
            node["polarization"] = c["polarization"]
        if c["process"]:
            proc = {}
            for (q, lv), entry in c["process"].items():
                proc.setdefault(q, {})[lv] = dict(entry)
            node["process"] = proc
        out[name] = node
    return out


def _condition_statics(config: dict, params: dict, pols_of, n_points: int) -> tuple:
    """The :class:`yieldmc.engine.conditions.Condition` of each condition: its settings, its
    polarisations (``pols_of`` maps te/tm/worst to the evaluated ones) and its drift
    variations that are random at some sweep point."""
    out = []
    for name, c in _conditions.parse(config).items():
        drift = []
        for (q, lv), entry in c["process"].items():
            base = _conditions.drift_path(name, q, lv)
            dist = DISTRIBUTIONS[entry["distribution"]]()  # parametric (the drift parse refuses a table)
            degenerate = all(dist.is_degenerate(**{p: params[f"{base}.{p}"][i] for p in PARAMS})
                             for i in range(n_points))
            if not degenerate:
                drift.append((q, lv, dist))
        out.append(_conditions.Condition(name=name, settings=tuple(c["settings"]),
                                         polarizations=pols_of(c["polarization"]), drift=tuple(drift)))
    return tuple(out)


def _environment(config: dict, params: dict, active: list, n_points: int, coupler: couplers.Coupler) -> dict:
    """The static fields of the environment terms: polarisations, WDM lanes (their
    wavelengths become the traced params ``package.lanes_um.<i>``), whether the flex can be
    bent, whether crosstalk is checked, and the conditions (``coupler``: the selected one,
    which says whether η depends on the polarisation)."""
    pkg = config["package"]
    pol = pkg.get("polarization", "worst")
    if pol not in POLARIZATIONS:
        raise ValueError(f"package.polarization: expected one of {tuple(POLARIZATIONS)}, got {pol!r}")
    lanes = pkg.get("lanes_um")
    if lanes is not None:
        if not isinstance(lanes, (list, tuple)) or not lanes:
            raise ValueError(f"package.lanes_um: expected a non-empty list of wavelengths or null, got {lanes!r}")
        for i, lane in enumerate(lanes):
            if not _finite("package.lanes_um", lane) > 0:
                raise ValueError(f"package.lanes_um: each wavelength must be > 0, got {lane!r}")
            params[f"package.lanes_um.{i}"] = np.full(n_points, float(lane))
    dependent = coupler.polarization_dependent(pkg["coupler"])

    def pols_of(name):
        pols = POLARIZATIONS[pol if name is None else name]
        return pols if dependent else pols[:1]  # one evaluation serves both polarisations (PDL 0)

    conds = _condition_statics(config, params, pols_of, n_points)
    bend = (bool(np.any(params["package.pwg.bend_radius_mm"] > 0))
            or any(q == "bend_radius_mm" for q, _, _ in active)
            or any(np.any(params[_conditions.setting_path(c.name, "bend_radius_mm")] > 0)
                   for c in conds if "bend_radius_mm" in c.settings)
            or any(q == "bend_radius_mm" for c in conds for q, _, _ in c.drift))
    return {"polarizations": pols_of(None), "lanes": 0 if lanes is None else len(lanes),
            "bend": bend, "crosstalk": "spec.max_crosstalk_db" in params, "conditions": conds}

DEFAULT_ENGINE = {
    "block_size": 16384,
    "blocks_per_call": 8,
    "dtype": "float32",
    "rng_impl": "threefry2x32",
    "hist_bins": 2000,
    "hist_max_db": 20.0,
    "quantiles": [0.5, 0.9, 0.99],
}


def _copy(config):
    if isinstance(config, dict):
        return {k: _copy(v) for k, v in config.items()}
    if isinstance(config, list):
        return [_copy(v) for v in config]
    return config
