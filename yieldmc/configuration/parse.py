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

import copy
import functools
import itertools
from collections.abc import Mapping

import numpy as np

from yieldmc import couplers, physics

from yieldmc.configuration import schema
from yieldmc.configuration.schema import MAX_MODULES_PER_CALL
from yieldmc.configuration import conditions as _conditions
from yieldmc.configuration import uncertain as _uncertain
from yieldmc.engine import empirical as _empirical
from yieldmc.engine.problem import REALIZATION, Problem, Static, random_dimension
from yieldmc.engine.distributions import DISTRIBUTIONS
from yieldmc.engine.variation import LEVELS, PARAMS, QUANTITIES, process_key
from yieldmc.parts import number as _number
from yieldmc.samplers.base import Sampler
from yieldmc.samplers.registry import get_sampler, sampler_names

#: The package's traced floats (sweepable, differentiable): every float row of ``package``
#: in the schema (the coupler's come from the selected coupler).
PACKAGE_FLOATS = tuple(k.path for k in schema.KEYS if k.path.startswith("package.") and k.type == "float")
#: Nullable package floats and the value their null stands for (a straight flex).
PACKAGE_NULL_FLOATS = {"package.pwg.bend_radius_mm": 0.0}
POLARIZATIONS = {"te": ("te",), "tm": ("tm",), "worst": ("te", "tm")}
SPEC_FLOATS = ("max_loss_db", "max_failed_channels")
DTYPES = schema.choices("engine.dtype")
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


def float_param_paths(config: dict, conditions=()) -> list[str]:
    """Config paths of every traced float parameter (also the sweepable keys); ``conditions``:
    the parsed conditions (:func:`yieldmc.configuration.conditions.parse`)."""
    _get(config, "package.coupler.kind")
    paths = list(PACKAGE_FLOATS)
    paths += couplers.float_paths(config)  # the selected coupler's (raises for an unknown kind)
    paths += [process_key(q, lv, p) for q in QUANTITIES for lv in LEVELS for p in PARAMS]
    paths += [f"spec.{p}" for p in SPEC_FLOATS]
    for key in ("max_crosstalk_db", "max_loss_change_db"):  # traced where set
        if (config.get("spec") or {}).get(key) is not None:
            paths.append(f"spec.{key}")
    return paths + [p for c in conditions for p in c.float_paths()]


def _param_value(config: dict, path: str) -> float:
    """A traced parameter's value at one resolved point (a null stands for its default)."""
    value = _get(config, path)
    if value is None and path in PACKAGE_NULL_FLOATS:
        return PACKAGE_NULL_FLOATS[path]
    return float(value)


def _validate_point(config: dict, dtype: str, conditions, check_relations) -> None:
    """Validate one fully resolved configuration point (no sweep).

    Every traced parameter is checked against its :mod:`yieldmc.configuration.schema` declaration (type,
    finite unless its bounds allow ±inf, ``|x| <= sqrt(finfo(dtype).max)``, bounds), then
    the relations between keys, then each condition (as the keys it replaces).
    """
    for path in float_param_paths(config):
        value = _get(config, path)
        if value is not None or path not in PACKAGE_NULL_FLOATS:
            schema.check_value(path, value, schema.lookup(config, path), dtype)
    check_relations(config)
    _conditions.check_point(config, conditions, dtype, check_relations)


def _check_relations(config: dict, *, distributions: dict) -> None:
    """The relations between the keys of one resolved point (one-line ``<key>: …`` errors);
    ``distributions``: (quantity, level) → the variation's :class:`Distribution`."""
    _check_process_temperatures(config, distributions)
    pkg = config["package"]
    pwg = pkg["pwg"]
    for dim in ("core_thickness_um", "core_width_um"):
        _physics_check(
            physics.validate_slab,
            {"thickness_um": f"package.pwg.{dim}", "n_core": "package.pwg.n_core",
             "n_clad": "package.pwg.n_clad", "wavelength_um": "package.wavelength_um"},
            thickness_um=pwg[dim], n_core=pwg["n_core"], n_clad=pwg["n_clad"],
            wavelength_um=pkg["wavelength_um"],
        )
    couplers.validate(config)  # the selected coupler's relations, naming package.coupler.* keys
    for q in QUANTITIES:
        for lv in LEVELS:
            node, path = config["process"][q][lv], process_key(q, lv)
            if node["low"] > node["high"]:
                raise ValueError(f"{path}.low: must not exceed high ({node['high']!r}), got {node['low']!r}")
            DISTRIBUTIONS[node["distribution"]].validate(path, {p: node[p] for p in PARAMS})
    m, n_channels = config["spec"]["max_failed_channels"], pkg["layers"] * pkg["channels"]
    if m >= n_channels:
        raise ValueError(
            f"spec.max_failed_channels: must be < package.layers x package.channels = {n_channels} "
            f"(with that many failures allowed every module passes), got {m!r}"
        )


def _check_process_temperatures(config: dict, distributions: dict) -> None:
    """Each level's temperature draw, added to ``package.temperature_c``, must be able to
    stay at or above absolute zero (:meth:`Distribution.lowest`: its lower bound, else its
    centre; a lognormal draw is > 0 and never lowers it)."""
    nominal = _get(config, "package.temperature_c")
    for lv in LEVELS:
        node = config["process"]["temperature_c"][lv]
        lowest = distributions[("temperature_c", lv)].lowest(node)
        if lowest is not None and nominal + lowest[1] < schema.ABSOLUTE_ZERO_C:
            raise ValueError(
                f"process.temperature_c.{lv}.{lowest[0]}: package.temperature_c ({nominal:g} °C) plus this "
                f"draw must stay >= {schema.ABSOLUTE_ZERO_C} °C, got {lowest[1]!r}"
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
    node = config["alignment"]
    if node["mode"] == "active" and node["steps"] < 1:
        raise ValueError(f"alignment.steps: active alignment needs >= 1 step, got {node['steps']}")
    return {"alignment": node["mode"], "alignment_objective": node["objective"],
            "alignment_steps": node["steps"] if node["mode"] == "active" else 0}


def _sampler(config: dict, samples: int, block_size: int) -> Sampler:
    """The selected sampler bound to its name and its own settings
    (:meth:`yieldmc.samplers.Sampler.configure` reads its section and checks them)."""
    name = config["sampler"]
    sampler = get_sampler(name)
    for section, what in (("sweep", "the sweep"), ("uncertain", "the uncertain inputs")):
        if config.get(section) and not sampler.supports_sweep:
            able = ", ".join(sampler_names(supporting="supports_sweep"))
            raise ValueError(f"{section}: sampler={name} estimates one point; remove {what} or use a "
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


def check_declared(config: dict) -> dict:
    """Every key of a resolved configuration against :mod:`yieldmc.configuration.schema`: declared,
    of its type, within its bounds (swept keys are checked at every sweep point later).

    Returns:
      A plain copy with the declared defaults filled in (``alignment: active`` read as
      ``alignment.mode``).

    Raises:
      ValueError: one line naming the key.
    """
    if not isinstance(config, Mapping):
        raise ValueError(f"config: expected a mapping, got {type(config).__name__}")
    config = schema.plain(config)  # a copy: numpy scalars as Python numbers, tuples as lists
    if isinstance(config.get("alignment"), str):  # `alignment: active` shorthand
        config["alignment"] = {"mode": config["alignment"]}
    config = schema.with_defaults(config)
    dtype = config["engine"]["dtype"] if isinstance(config["engine"], dict) else None
    sweep = config.get("sweep")
    swept = frozenset(sweep) if isinstance(sweep, dict) else frozenset()
    schema.check_tree(config, dtype=dtype if dtype in DTYPES else "float32", skip=swept)
    return config


def build_problem(config: dict) -> Problem:
    """Validate a resolved configuration (plain dict) and turn it into a :class:`Problem`.

    The input is not modified; numpy scalars are taken as their Python values; a key it
    lacks takes its declared default.

    Raises:
      ValueError: one line naming the offending key, for a key not declared in
        :mod:`yieldmc.configuration.schema` (anywhere in the tree), a value of the wrong type (a bool that
        is not true/false, a non-integral integer, a non-number), a float that is not finite
        or exceeds sqrt(finfo(engine.dtype).max), a value out of its declared bounds (e.g. a
        temperature below -273.15 °C, a seed outside [0, 2^32)), low > high, an unknown
        distribution or level, a correlation matrix that is not positive
        definite, spec.max_failed_channels >= layers x channels, a non-sweepable or unknown
        sweep key, an empirical distribution without a usable table (no values / values_file,
        both, a missing or unreadable file, a non-numeric or non-finite value, fewer than 2
        values; :mod:`yieldmc.engine.empirical`), a table given to another distribution, a
        swept mean/sigma/low/high of an empirical variation, … — at every sweep point.
    """
    return problem_of(check_declared(config))


def problem_of(config: dict) -> Problem:
    """:func:`build_problem` of a configuration :func:`check_declared` returned."""
    config = copy.deepcopy(config)  # the conditions' parse fills in their defaults
    if not isinstance(config.get("package"), dict):
        raise ValueError("package: missing from the configuration")
    process = config["process"]
    conditions = _conditions.parse(config)  # once; normalises config["conditions"] in place
    paths = float_param_paths(config, conditions)
    samples, engine = config["samples"], config["engine"]
    block_size, bpc = engine["block_size"], engine["blocks_per_call"]
    if -(-samples // block_size) > MAX_BLOCKS:  # files in the store, flags in memory
        raise ValueError(f"samples: at most 2^20 = {MAX_BLOCKS} blocks of engine.block_size={block_size} "
                         f"modules ({MAX_BLOCKS * block_size} modules; raise engine.block_size for more), "
                         f"got {samples!r}")
    if bpc * block_size > MAX_MODULES_PER_CALL:
        raise ValueError(
            f"engine.blocks_per_call: blocks_per_call x engine.block_size must be <= {MAX_MODULES_PER_CALL} "
            f"(int32 partial sums; lower either), got {bpc} x {block_size}"
        )
    if engine["dtype"] == "float64" and not _x64_enabled():
        raise ValueError("engine.dtype: float64 needs JAX_ENABLE_X64=1 (or jax_enable_x64), got 'float64'")
    quantiles = tuple(engine["quantiles"])
    if not quantiles:
        raise ValueError("engine.quantiles: expected a non-empty list of numbers in (0, 1), got []")
    if len(set(quantiles)) != len(quantiles):  # each is a coordinate of the result
        raise ValueError(f"engine.quantiles: a value is listed twice, got {list(quantiles)}")

    # each variation's family, for empirical with its table (values / values_file, read once here)
    distributions = {(q, lv): _empirical.distribution_of(process[q][lv], process_key(q, lv), dtype=engine["dtype"])
                     for q in QUANTITIES for lv in LEVELS}
    check_relations = functools.partial(_check_relations, distributions=distributions)
    sweep_keys, sweep_values = _sweep(config, paths)
    uncertain, outer = _outer(config, paths, sweep_keys)
    if uncertain:  # the realisations lead the sweep grid
        sweep_keys, sweep_values = (REALIZATION, *sweep_keys), (tuple(map(float, range(len(outer)))), *sweep_values)
    grid = list(itertools.product(*sweep_values)) if sweep_keys else [()]
    columns = {p: [] for p in paths}
    for point in grid:
        cfg = copy.deepcopy(config)
        for key, value in zip(sweep_keys, point):
            if key == REALIZATION:
                for k, v in zip(uncertain, outer[int(value)]):
                    _set(cfg, k, float(v))
            else:
                _set(cfg, key, value)
        try:
            _validate_point(cfg, engine["dtype"], conditions, check_relations)
        except ValueError as exc:
            if sweep_keys:
                where = ", ".join(f"{k}={v}" for k, v in zip(sweep_keys, point) if k != REALIZATION)
                if uncertain:
                    r = int(point[0])
                    drawn = ", ".join(f"{k}={v:g}" for k, v in zip(uncertain, outer[r]))
                    where = f"realization {r}: {drawn}" + (f"; sweep point {where}" if where else "")
                    raise ValueError(f"{exc} (at {where}; narrow the uncertain distributions)") from None
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
            dist = distributions[(q, lv)]
            degenerate = all(
                dist.is_degenerate(**{p: params[process_key(q, lv, p)][i] for p in PARAMS})
                for i in range(len(grid))
            )
            if not degenerate or (lv == "module" and q in copula):
                active.append((q, lv, dist))
    alignment = _alignment(config)
    sampler = _sampler(config, samples, block_size)
    cpl = config["package"]["coupler"]
    coupler = couplers.get_coupler(cpl["kind"])
    environment = _environment(config, params, active, len(grid), coupler, conditions)
    static = Static(
        layers=_get(config, "package.layers"),
        channels=_get(config, "package.channels"),
        coupler=coupler.bind(coupler.static(cpl)),
        sampler=sampler,
        active=tuple(active),
        copula=copula,
        block_size=block_size,
        hist_bins=engine["hist_bins"],
        hist_max_db=engine["hist_max_db"],
        loss_unit_db=1e-4,
        dtype=engine["dtype"],
        rng_impl=engine["rng_impl"],
        **alignment,
        **environment,
    )
    dim = random_dimension(static)
    if dim * block_size >= 2**32:
        raise ValueError(f"engine.block_size: {block_size} modules x {dim} random dimensions reach "
                         "2^32 random numbers per block (the generator's counter); use a smaller block")
    return Problem(
        static=static,
        params=params,
        sweep_keys=sweep_keys,
        sweep_values=sweep_values,
        samples=samples,
        seed=config["seed"],
        blocks_per_call=bpc,
        quantiles=quantiles,
        uncertain=uncertain,
        uncertain_values=outer,
    )


def _outer(config: dict, paths: list[str], sweep_keys) -> tuple[tuple[str, ...], np.ndarray | None]:
    """The uncertain keys and their outer realisations (R, K) (:mod:`yieldmc.configuration.uncertain`);
    ((), None) without ``uncertain``."""
    keys, dists = _uncertain.entries(config, paths, sweep_keys)
    if not keys:
        return (), None
    mode = config["mode"]
    if mode not in ("run", "sensitivity"):
        raise ValueError(f"uncertain: mode={mode} with uncertain inputs is not available (mode=run and "
                         "mode=sensitivity are); remove uncertain (uncertainty=none)")
    node = config["uncertainty"]
    return keys, _uncertain.realizations(dists, n=node["realizations"], seed=config["seed"],
                                         sampling=node["sampling"])


def _x64_enabled() -> bool:
    """Whether JAX computes in 64-bit here (``JAX_ENABLE_X64=1`` or ``jax_enable_x64``)."""
    import jax

    return bool(jax.config.jax_enable_x64)


def _environment(config: dict, params: dict, active: list, n_points: int, coupler: couplers.Coupler,
                 conditions) -> dict:
    """The static fields of the environment terms: polarisations, WDM lanes (their
    wavelengths become the traced params ``package.lanes_um.<i>``), whether the flex can be
    bent, whether crosstalk is checked, and the conditions (``coupler``: the selected one,
    which says whether η depends on the polarisation)."""
    pkg = config["package"]
    pol = pkg["polarization"]
    lanes = pkg["lanes_um"]
    if lanes is not None:
        if not lanes:
            raise ValueError("package.lanes_um: expected a non-empty list of wavelengths or null, got []")
        for i, lane in enumerate(lanes):
            params[f"package.lanes_um.{i}"] = np.full(n_points, float(lane))
    dependent = coupler.polarization_dependent(pkg["coupler"])

    def pols_of(name):
        pols = POLARIZATIONS[pol if name is None else name]
        return pols if dependent else pols[:1]  # one evaluation serves both polarisations (PDL 0)

    conds = _conditions.conditions_of(conditions, params, pols_of, n_points)
    bend = (bool(np.any(params["package.pwg.bend_radius_mm"] > 0))
            or any(q == "bend_radius_mm" for q, _, _ in active)
            or any(np.any(params[c.setting("bend_radius_mm")] > 0)
                   for c in conds if "bend_radius_mm" in c.settings)
            or any(q == "bend_radius_mm" for c in conds for q, _, _ in c.drift))
    return {"polarizations": pols_of(None), "lanes": 0 if lanes is None else len(lanes),
            "bend": bend, "crosstalk": "spec.max_crosstalk_db" in params, "conditions": conds,
            "scope": config["spec"]["scope"]}
