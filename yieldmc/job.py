"""A job, parsed once at the edge into frozen typed objects.

:func:`parse_job` takes the resolved configuration (a ``DictConfig`` or a plain mapping,
numpy scalars allowed), checks every key against :mod:`yieldmc.configuration.schema` and every value
that only a whole job can check (shards, output, the gradient and optimisation
sections), and returns a :class:`Job`. ``run``, ``sensitivity``, ``optimize``, the store
and the results take the job (or its parts); none of them reads the raw configuration.
"""

from __future__ import annotations

import dataclasses
import hashlib
import types
from pathlib import Path

import yaml

from yieldmc.configuration import schema
from yieldmc.configuration.parse import check_declared, problem_of
from yieldmc.engine import estimators
from yieldmc.engine.problem import REALIZATION, Problem
from yieldmc.samplers import require_gradients

#: Config keys that do not change the result (how it is run, where it goes).
NON_IDENTITY_KEYS = ("output", "shard", "num_shards", "overwrite", "progress", "hydra")
#: Layout version of the store: part of the identity, so a store of another layout is
#: never resumed into (see docs/store.md).
STORE_FORMAT = 3


@dataclasses.dataclass(frozen=True)
class Output:
    """Where the results go (``output.*``)."""

    dir: str
    name: str | None
    plots: bool
    target_yield: float
    progress_interval_s: float


@dataclasses.dataclass(frozen=True)
class GradientSettings:
    """``gradient.*``: the yield-gradient estimator and the pathwise smoothing."""

    estimator: estimators.GradientEstimator
    tau_db: float


@dataclasses.dataclass(frozen=True)
class OptimizeSettings:
    """``optimize.*`` (mode=optimize), checked against the problem."""

    kind: str
    target_yield: float
    costs: types.MappingProxyType  # config key of a sigma -> cost
    parameters: types.MappingProxyType  # config key -> (low, high)
    steps: int
    outer: int
    learning_rate: float
    penalty: float
    recheck_samples: int | None
    recheck_seed_offset: int

    def __post_init__(self):
        for name in ("costs", "parameters"):  # null: none given
            object.__setattr__(self, name, getattr(self, name) or types.MappingProxyType({}))


@dataclasses.dataclass(frozen=True)
class CalibrateSettings:
    """``calibrate.*`` (mode=calibrate), checked against the problem and the data."""

    data: str | None  # the measured losses' path (None: given to yieldmc.calibrate directly)
    parameters: tuple  # config keys to fit
    name: str  # conf/process/<name>.yaml
    samples: int
    steps: int
    bootstrap: int
    learning_rate: float


@dataclasses.dataclass(frozen=True)
class Job:
    """Everything a run, a sensitivity or an optimisation needs, typed and frozen.

    Attributes:
      problem: the engine's :class:`~yieldmc.engine.problem.Problem`.
      mode: ``run`` | ``sensitivity`` | ``optimize``.
      gradient: the gradient settings (every mode has them; defaults apply).
      optimize: the optimisation settings (``mode=optimize`` only, else None).
      calibrate: the calibration settings (``mode=calibrate`` only, else None).
      output: where the results go.
      shard, num_shards: this job's share of the blocks.
      overwrite, progress: how it runs.
      package_name: the package's name (store names, plot titles).
      config_yaml: the resolved configuration as YAML (provenance in every result).
      identity: hash of everything that fixes the result (and the store layout).
    """

    problem: Problem
    mode: str
    gradient: GradientSettings
    optimize: OptimizeSettings | None
    output: Output
    shard: int
    num_shards: int
    overwrite: bool
    progress: bool
    package_name: str
    config_yaml: str
    identity: str
    calibrate: CalibrateSettings | None = None


# --------------------------------------------------------------------------- sections
def gradient_settings(config: dict) -> GradientSettings:
    """The ``gradient`` section with its estimator built (:mod:`yieldmc.engine.estimators`)."""
    g = schema.record(GradientSettings, config, "gradient")
    return dataclasses.replace(g, estimator=estimators.make_estimator(g.estimator, tau_db=g.tau_db))


#: Where a calibration writes its process (relative to the starting directory), and the
#: first line of every file it writes (an existing file without it is never replaced).
PROCESS_DIR = Path("conf") / "process"
UNCERTAINTY_DIR = Path("conf") / "uncertainty"
CALIBRATION_MARKER = "# written by yieldmc calibrate"


def calibrate_settings(config: dict, problem: Problem, *, base: Path | None, need_data: bool) -> CalibrateSettings:
    """The ``calibrate`` section, checked against the problem (and, with ``need_data``, the
    measured table itself: its columns and values; nothing is compiled)."""
    from yieldmc.measurements import read_measurements

    c = schema.record(CalibrateSettings, config, "calibrate")
    if problem.sweep_keys:
        raise ValueError(f"sweep: mode=calibrate fits at one point; remove the sweep, got {list(problem.sweep_keys)}")
    names = list(c.parameters)
    if not names:
        raise ValueError("calibrate.parameters: name at least one config key to fit, e.g. "
                         "[process.dx_um.module.sigma]")
    active = {f"process.{q}.{lv}": d for q, lv, d in problem.static.active}
    active.update({f"conditions.{c.name}.process.{q}.{lv}": d for c in problem.static.conditions
                   for q, lv, d in c.drift})
    for key in names:
        parts = str(key).split(".")
        drift = parts[0] == "conditions" and len(parts) == 6 and parts[2] == "process"
        if key not in problem.params or not (parts[0] in ("process", "package") or drift) \
                or key.startswith("package.lanes_um"):
            raise ValueError(f"calibrate.parameters: {key!r} is not a process, package or condition drift "
                             "parameter of this configuration")
        if parts[0] != "package":
            variation, what = key.rpartition(".")[0], parts[-1]
            if variation not in active:
                raise ValueError(f"calibrate.parameters: {key} belongs to a variation that is off in this "
                                 f"configuration (give {variation} a starting sigma > 0)")
            if what not in active[variation].params:
                raise ValueError(f"calibrate.parameters: {key} is not a parameter of its "
                                 f"{active[variation]} distribution")
            if what == "sigma" and not float(problem.params[key][0]) > 0:
                raise ValueError(f"calibrate.parameters: {key} must start > 0, got {float(problem.params[key][0])!r}")
    if len(set(names)) != len(names):
        raise ValueError("calibrate.parameters: a key is listed twice")
    name = c.name
    if not name.isidentifier():
        raise ValueError(f"calibrate.name: expected a plain name (letters, digits, _), got {name!r}")
    from yieldmc.configuration.tree import CONF_DIR

    for group in (PROCESS_DIR, UNCERTAINTY_DIR):
        shipped = CONF_DIR / group.name / f"{name}.yaml"
        if shipped.exists() and not is_calibration_file(shipped):
            raise ValueError(f"calibrate.name: {name!r} is a {group.name} option shipped with yieldmc; "
                             "choose another name")
        target = (base or Path.cwd()) / group / f"{name}.yaml"
        if target.exists() and not is_calibration_file(target):
            raise ValueError(f"calibrate.name: {target} exists and was not written by yieldmc; choose another name")
    if need_data:
        if c.data is None:
            raise ValueError("calibrate.data: give the measured losses (a CSV with columns module, layer, "
                             "channel, loss_db)")
        s = problem.static
        table = read_measurements(c.data, layers=s.layers, channels=s.channels,
                                  conditions=tuple(x.name for x in s.conditions), base=base)
        from yieldmc.measurements import check_enough_modules

        check_enough_modules(int(table.loss_db.shape[0]), names)
    return c


def is_calibration_file(path: Path) -> bool:
    """Whether ``path`` is a file written by ``yieldmc calibrate``: its first line, or its
    second after Hydra's ``# @package`` line (which must come first to be read)."""
    try:
        with open(path, encoding="utf-8") as f:
            first = f.readline()
            if first.startswith("# @package"):
                first = f.readline()
            return first.startswith(CALIBRATION_MARKER)
    except (OSError, UnicodeDecodeError):
        return False


def optimize_settings(config: dict, problem: Problem) -> OptimizeSettings:
    """The ``optimize`` section, checked against the problem (called by :func:`yieldmc.job.parse_job`)."""
    o = schema.record(OptimizeSettings, config, "optimize")
    require_gradients(problem, what="optimisation")
    if o.kind == "tolerance":
        if not o.costs:
            raise ValueError("optimize.costs: give at least one tolerance key with its cost")
        for key, c in o.costs.items():
            if key not in problem.params or not key.startswith("process.") or not key.endswith(".sigma"):
                raise ValueError(f"optimize.costs.{key}: not a process sigma")
            if not float(problem.params[key][0]) > 0:
                raise ValueError(f"optimize.costs.{key}: the starting sigma must be > 0")
            if isinstance(c, bool) or not isinstance(c, (int, float)) or not c > 0:
                raise ValueError(f"optimize.costs.{key}: cost must be > 0, got {c!r}")
    else:
        if not o.parameters:
            raise ValueError("optimize.parameters: give at least one key with [low, high]")
        for key, b in o.parameters.items():
            if key not in problem.params:
                raise ValueError(f"optimize.parameters.{key}: not a float parameter")
            if not (isinstance(b, (list, tuple)) and len(b) == 2 and b[0] < b[1]):
                raise ValueError(f"optimize.parameters.{key}: expected [low, high] with low < high")
            if not b[0] <= float(problem.params[key][0]) <= b[1]:  # on a bound: started just inside
                raise ValueError(f"optimize.parameters.{key}: the starting value must lie within {list(b)}, "
                                 f"got {float(problem.params[key][0])!r}")
    return dataclasses.replace(o, parameters=types.MappingProxyType(
        {k: (float(b[0]), float(b[1])) for k, b in o.parameters.items()}))


def identity(config: dict, tables: dict | None = None) -> str:
    """Hash of the configuration entries that determine the result (and the layout), and
    of the contents of any empirical table (``tables``: key → sha256,
    :func:`yieldmc.engine.empirical.table_digests`; the configuration names only the file).

    The section of a sampler from a plugin counts only when that sampler is selected: its
    declared defaults are in every configuration composed while the plugin is loaded, and
    they do not change another sampler's result."""
    from yieldmc.samplers.registry import BUILTIN_NAMES, sampler_names

    unselected = set(sampler_names()) - set(BUILTIN_NAMES) - {config.get("sampler")}
    ident = {k: v for k, v in config.items() if k not in NON_IDENTITY_KEYS and k not in unselected}
    engine = dict(ident.get("engine") or {})
    engine.pop("blocks_per_call", None)  # grouping only; results are identical
    ident["engine"] = engine
    ident["_store_format"] = STORE_FORMAT
    if tables:
        ident["_empirical_tables"] = dict(tables)
    text = yaml.safe_dump(ident, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def parse_job(cfg, *, base: Path | None = None, check_output: bool = True) -> Job:
    """Check a configuration and parse it into a :class:`Job` (nothing is compiled or written).

    Args:
      cfg: a ``DictConfig`` (``yieldmc.compose``) or a plain mapping.
      base: the directory a relative ``output.dir`` is relative to (default: where
        yieldmc started).
      check_output: check that ``output.dir`` can be created and written (the command;
        the in-memory API writes nothing).

    Raises:
      ValueError: one line, ``<key>: <what is wrong>, got <value>``.
    """
    from yieldmc.configuration.tree import to_container
    from yieldmc.engine.empirical import table_digests

    config = check_declared(to_container(cfg))  # plain values, defaults filled, every key checked
    problem = problem_of(config)
    mode, num, shard = config["mode"], config["num_shards"], config["shard"]
    if not shard < num:
        raise ValueError(f"shard: must be an integer in [0, num_shards={num}), got {shard!r}")
    output = schema.record(Output, config, "output")
    if output.name is not None:
        _check_plain_name("output.name", output.name)
    package_name = config["package"]["name"]
    _check_plain_name("package.name", package_name)  # part of the default store name
    ident = identity(config, table_digests(problem.static))
    if check_output:
        _check_output(output.dir, base, name=output.name, mode=mode, package_name=package_name, ident=ident)
    swept = [k for k in problem.sweep_keys if not (problem.uncertain and k == REALIZATION)]
    if mode in ("sensitivity", "optimize") and swept:
        raise ValueError(f"sweep: mode={mode} runs at one point; remove the sweep, got {swept}")
    settings = None
    if mode == "optimize":
        settings = optimize_settings(config, problem)
        offset = settings.recheck_seed_offset
        if problem.seed + offset >= schema.SEED_LIMIT:
            raise ValueError(f"optimize.recheck_seed_offset: seed + offset (the re-check's seed) must be "
                             f"< {schema.SEED_LIMIT}, got {offset!r} with seed={problem.seed}")
    calibration = None
    if mode == "calibrate":
        calibration = calibrate_settings(config, problem, base=base, need_data=check_output)
    return Job(
        problem=problem, mode=mode, gradient=gradient_settings(config),
        optimize=settings, calibrate=calibration, output=output, shard=shard, num_shards=num,
        overwrite=config["overwrite"], progress=config["progress"], package_name=package_name,
        config_yaml=yaml.safe_dump(config, sort_keys=False), identity=ident,
    )


def _check_plain_name(key: str, name) -> None:
    """Refuse a name that is not one plain path component (it names a store or is part of
    the name of one: ``..``, a separator or an absolute path would put it elsewhere)."""
    if (not isinstance(name, str) or name in ("", ".", "..")
            or any(c in name for c in "/\\\0")):
        raise ValueError(f"{key}: must be a plain file name (not empty, no '/', '\\' or NUL, "
                         f"not '.' or '..'), got {name!r}")


def store_path(job: Job, base: Path) -> Path:
    """``<output.dir>/<output.name>``: an ``output.name`` the user gave is used as given, in
    every mode; the default name is ``yield_<package>_<identity>.zarr``, and
    ``<mode>_<package>_<identity>.zarr`` for ``mode=sensitivity``/``optimize``/``calibrate``."""
    return _store_path(job.output.dir, base, name=job.output.name, mode=job.mode,
                       package_name=job.package_name, ident=job.identity)


def _store_path(directory: str, base: Path | None, *, name, mode, package_name, ident) -> Path:
    directory = Path(directory)
    if not directory.is_absolute():
        directory = (base or Path.cwd()) / directory
    if name:
        return directory / name
    return directory / f"{'yield' if mode == 'run' else mode}_{package_name}_{ident[:8]}.zarr"


def _check_output(directory: str, base: Path | None, *, name, mode, package_name, ident) -> None:
    """``output.dir`` can be written, or holds this job's complete result (which is only read,
    so a read-only mount serves it), and lies inside no store (stores never nest)."""
    from yieldmc.outputs import check_output_dir, enclosing_store, root_attrs

    if base is None:
        from yieldmc.engine.empirical import start_directory

        base = start_directory()
    try:
        check_output_dir(directory, base)
    except ValueError:
        path = _store_path(directory, base, name=name, mode=mode, package_name=package_name, ident=ident)
        attrs = root_attrs(path) or {}
        if not (mode == "run" and attrs.get("status") == "complete" and attrs.get("yieldmc_identity") == ident):
            raise
    target = Path(directory) if Path(directory).is_absolute() else Path(base) / directory
    store = enclosing_store(target)
    if store is not None:
        raise ValueError(f"output.dir: {target} is inside the yieldmc store {store} (stores never nest; "
                         f"choose a directory outside it), got {directory!r}")


def as_job(cfg_or_job, *, mode: str | None = None) -> Job:
    """A :class:`Job` from a job (returned as it is) or a configuration (parsed, output unchecked).

    Args:
      cfg_or_job: a :class:`Job`, a ``DictConfig`` or a plain mapping.
      mode: parse the configuration as this mode (the Python API's ``sensitivity`` and
        ``optimize`` need their sections checked whatever ``mode`` says).
    """
    if isinstance(cfg_or_job, Job):
        return cfg_or_job
    if mode is not None:
        from yieldmc.configuration.tree import to_container

        cfg_or_job = dict(to_container(cfg_or_job), mode=mode)
    return parse_job(cfg_or_job, check_output=False)
