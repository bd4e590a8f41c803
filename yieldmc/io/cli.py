"""The ``yieldmc`` command: a Hydra app over ``conf/`` (edge: Hydra, zarr, plots).

Bad input (an unknown key, a wrong type, an invalid value, an unwritable output, a
foreign store) ends with one line on stderr naming the problem and exit code 2, before
anything is compiled or written.

``--help`` and ``--version`` import neither JAX nor Hydra (Hydra, the engine and the
stores are imported inside the functions that use them): the help text is the one
``yieldmc/data/help.json`` holds while the files it is generated from are unchanged
(:mod:`yieldmc.io.help`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from yieldmc.io.config import CONF_DIR, local_search_path
from yieldmc.io.progress import Progress, start_line
from yieldmc.io.signals import catch_from_job_start, hand_on_caught_signal, stop_at_block_boundary

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from yieldmc.engine.problem import Problem
    from yieldmc.job import Job

EXIT_BAD_INPUT = 2
#: mode=optimize: the target yield is not reached (the verdict says why; the store is written).
EXIT_TARGET_MISSED = 3
_INFO_FLAGS = {"--help", "-h", "--hydra-help", "--version", "--cfg", "-c", "--info", "-i",
               "--resolve", "--shell-completion", "-sc", "--package", "-p"}
_CONFIG_FLAGS = {"--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd",
                 "--experimental-rerun"}


def _fail(message) -> None:
    print(f"yieldmc: error: {' '.join(str(message).split())}", file=sys.stderr)
    sys.exit(EXIT_BAD_INPUT)


def _split_argv(argv):
    """(overrides, multirun, skip): Hydra's command-line overrides and mode flags."""
    overrides, multirun, skip = [], False, False
    it = iter(argv)
    for arg in it:
        if arg in ("--multirun", "-m"):
            multirun = True
        elif arg.split("=")[0] in _INFO_FLAGS or arg.split("=")[0] in _CONFIG_FLAGS:
            skip = True
            if arg in _CONFIG_FLAGS or arg in ("--cfg", "-c", "--info", "-i", "--package", "-p"):
                next(it, None)
        elif not arg.startswith("-"):
            overrides.append(arg)
    return overrides, multirun, skip


def _expand(overrides, multirun):
    """Every override combination a (multi)run will compose."""
    ours = [o for o in overrides if not o.lstrip("+~").startswith(("hydra.", "hydra/"))]
    if not multirun:
        return [ours]
    import itertools

    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    # as Hydra's basic sweeper splits them: one list of choices per key (a key given twice
    # keeps its first place and its last value), their Cartesian product
    choices = {}
    for o in OverridesParser.create().parse_overrides(overrides=ours):
        key = o.get_key_element()
        if not o.is_sweep_override():
            choices[key] = [f"{key}={o.get_value_element_as_str()}"]
        elif o.is_discrete_sweep():
            choices[key] = [f"{key}={v}" for v in o.sweep_string_iterator()]
        else:
            raise HydraException(f"BasicSweeper does not support sweep type : {o.value_type.name}")
    return [list(x) for x in itertools.product(*choices.values())]


def _override_key(override: str) -> str:
    """The key an override sets (``+``/``++``/``~`` and a ``@package`` dropped)."""
    return override.split("=", 1)[0].lstrip("+~").split("@", 1)[0]


def _mapping_keys() -> set:
    """The keys whose value is a mapping written in braces (``sweep={key:[...]}``)."""
    from yieldmc.configuration import schema

    return {k.path for k in schema.all_keys() if k.type == "mapping" and k.path != "hydra"}


def _did_you_mean(key: str, candidates) -> str:
    """``did you mean a, b or c?`` for the closest ``candidates`` (difflib), or a pointer to the
    key table when none is close."""
    import difflib

    close = difflib.get_close_matches(key, sorted(candidates), n=3, cutoff=0.6)
    if close:  # the best and those as close as it (samplez: samples or sampler)
        ratio = {c: difflib.SequenceMatcher(None, key, c).ratio() for c in close}
        close = [c for c in close if ratio[c] >= ratio[close[0]] - 0.01]
    if not close:
        return "yieldmc --help lists every key"
    return "did you mean " + (close[0] if len(close) == 1 else f"{', '.join(close[:-1])} or {close[-1]}") + "?"


def _unknown_key(key: str) -> str:
    """``<key>: unknown key; did you mean <the closest declared keys>?``."""
    from yieldmc.configuration import schema
    from yieldmc.io.help import config_groups

    tables = schema._tables()  # every concrete declared key and every section
    groups = {g for g, _, _ in config_groups()}
    return f"{key}: unknown key; {_did_you_mean(key, {*tables.index, *tables.children, *groups} - {''})}"


def check_override_keys(overrides) -> None:
    """Refuse what Hydra would answer for in its own words, before it composes anything.

    * A mapping override (``sweep=``, ``conditions=``, ...) given as several words: the
      shell expanded its braces (``sweep={k:[0.25,0.5]}`` unquoted arrives as
      ``sweep=k:[0.25`` and ``sweep=0.5]``): quote it.
    * A key that :mod:`yieldmc.configuration.schema` does not declare (not a config group either):
      the closest declared keys (``did you mean ...?``), rather than Hydra's "To append to
      your config use +key=...". Keys inside a mapping (``sweep.<key>``), Hydra's own and
      group selections (``package/coupler=butt``) are left to the later checks.

    Raises:
      ValueError: one line naming the key.
    """
    from yieldmc.configuration import schema
    from yieldmc.plugins import load_plugins

    load_plugins()  # a plugin's coupler declares keys
    mappings = _mapping_keys()
    words: dict = {}
    for override in overrides:
        if "=" in override and not override.startswith("~"):
            words.setdefault(_override_key(override), []).append(override.split("=", 1)[1])
    for key, values in words.items():
        if key in mappings and len(values) > 1:
            raise ValueError(f"{key}: the shell split this mapping into {len(values)} words (it expanded "
                             f"the braces); quote the whole override: '{key}={{{','.join(values)}}}'")
    for key in words:
        if ("/" in key or key == "hydra" or key.startswith("hydra.")
                or any(key.startswith(m + ".") for m in mappings)):
            continue
        if not schema.declared(key):
            raise ValueError(_unknown_key(key))


def explain_hydra_error(message: str, overrides) -> str:
    """Hydra's message about ``overrides`` in yieldmc's words, when there are better ones.

    * "Could not override 'k'. To append to your config use +k=...": ``k`` is a key of
      another coupler kind (say which), else unknown (did you mean ...?).
    * A grammar error ("mismatched input '['", "no viable alternative"): name the override
      Hydra could not read; a mapping (``sweep``, ``conditions``...) must be written in
      braces and quoted, ``'sweep={...}'``.
    """
    import re

    text = " ".join(str(message).split())
    found = re.search(r"Could not override '([^']+)'", text)
    if found:
        key = found.group(1)
        from yieldmc.configuration import schema

        if not schema.declared(key):
            return _unknown_key(key)
        rows = schema._tables().index.get(key, ())
        whens = sorted({f"{r.when[0]}={r.when[1]}" for r in rows if r.when})
        if rows and len(whens) == len(rows):
            return (f"{key}: a key of {' or '.join(whens)} only; select that first, e.g. "
                    f"package/coupler={rows[0].when[1]}")
        return text
    if not re.search(r"mismatched input|no viable alternative|extraneous input|token recognition error|"
                     r"missing .* at", text):
        return text
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    for override in overrides:
        try:
            parser.parse_override(override)
        except Exception:  # noqa: BLE001 - the override Hydra cannot read
            key = _override_key(override)
            reason = text.split(" See https://")[0].removeprefix("OverrideParseException: ")
            if "=" not in override:
                return f"{override}: expected KEY=VALUE or GROUP=OPTION ({reason})"
            if key in _mapping_keys():
                return (f"{key}: cannot read {override!r} ({reason}); write the mapping in braces and quote "
                        f"the whole override: '{key}={{...}}'")
            return f"{key}: cannot read {override!r} ({reason})"
    return text


def check_config(config, base: Path | None = None) -> Problem:
    """Validate everything the command needs, for every mode, before anything is computed.

    The job is parsed once (:func:`yieldmc.job.parse_job`: every key against
    :mod:`yieldmc.configuration.schema`, the shards, the output — a plain file name, a directory that
    can be created and written, checked without creating anything — and the gradient and
    optimisation sections); this returns its problem.

    Raises:
      ValueError: one line, ``<key>: <what is wrong>, got <value>``.
    """
    from yieldmc.job import parse_job

    return parse_job(config, base=base).problem


#: Jobs parsed by :func:`_prevalidate` in this process, by configuration: the same
#: configuration, composed again by Hydra for :func:`execute` (a multirun, or a run with
#: ``hydra.*`` settings), is not parsed twice (a job of a multirun launched elsewhere is
#: parsed where it runs).
_PARSED: dict = {}


def _parse_key(config: dict, base: Path) -> str:
    import json

    return json.dumps([config, str(base)], sort_keys=True, default=repr)


def _prevalidate(argv) -> list:
    """Compose and parse every job the command will run, and check its store, before
    anything is compiled or written; the parsed jobs (none for Hydra's own flags)."""
    overrides, multirun, skip = _split_argv(argv)
    if skip:
        return []
    launcher = next((o.split("=", 1)[1] for o in overrides if o.lstrip("+").startswith("hydra/launcher=")), "")
    if multirun and "slurm" in launcher:
        import shutil

        if shutil.which("sbatch") is None:
            raise ValueError(f"hydra/launcher={launcher}: SLURM was not found (no sbatch on PATH); run on a "
                             "SLURM login node, or use hydra/launcher=submitit_local for this machine")
    from yieldmc.io.config import compose, to_container
    from yieldmc.io.store import check_replaceable, must_replace
    from yieldmc.job import parse_job

    check_override_keys(overrides)
    base = Path.cwd()  # Hydra's runtime cwd: where yieldmc started
    jobs = []
    for combo in _expand(overrides, multirun):
        try:
            config = to_container(compose(combo))
        except ValueError as exc:
            raise ValueError(explain_hydra_error(str(exc), combo)) from None
        job = parse_job(config, base=base)
        _PARSED[_parse_key(config, base)] = job  # Hydra composes this again for execute()
        path = store_path(job, base)  # refused stores too, before Hydra writes outputs/
        if job.mode == "run":
            must_replace(path, job, overwrite=job.overwrite, replace=job.num_shards == 1)
        else:
            check_replaceable(path, overwrite=job.overwrite)
        jobs.append(job)
    return jobs


def store_path(job: Job, base: Path) -> Path:
    """The store of ``job`` (:func:`yieldmc.job.store_path`; imported here lazily)."""
    from yieldmc.job import store_path as path_of

    return path_of(job, base)


def _decimals(low: float, high: float, *, least: int = 4, most: int = 12) -> int:
    """Decimal places that show two significant digits of the interval's width (at least
    ``least``), so that its ends print differently."""
    import math

    width = high - low
    if not (math.isfinite(width) and width > 0):
        return least
    return int(min(most, max(least, 1 - math.floor(math.log10(width)))))


def _fraction(x: float, decimals: int) -> str:
    """A fraction in [0, 1] with ``decimals`` places; one that is not 1 (not 0) but would
    print as 1 (as 0) prints as ``≥ 0.99999`` (``≤ 0.00001``)."""
    import math

    if not math.isfinite(x):
        return str(x)
    text = f"{x:.{decimals}f}"
    if x < 1 and float(text) >= 1:
        return f"≥ {1 - 10.0 ** -decimals:.{decimals}f}"
    if x > 0 and float(text) <= 0:
        return f"≤ {10.0 ** -decimals:.{decimals}f}"
    return text


def _significant(x: float, digits: int = 3) -> str:
    """``x`` with ``digits`` significant digits in fixed notation (0 as ``0``); scientific
    below 1e-9."""
    import math

    if x == 0 or not math.isfinite(x):
        return "0" if x == 0 else str(x)
    decimals = digits - 1 - math.floor(math.log10(abs(x)))
    if decimals > 12:
        return f"{x:.{digits - 1}e}"
    return f"{x:.{max(0, decimals)}f}"


def _yield_with_interval(ds, point: dict | None = None) -> str:
    """``0.6638 (95 % CI 0.6565 – 0.6710)`` at a sweep point, with as many digits as the
    interval needs."""
    point = point or {}
    y, low, high = (float(ds[v].isel(point)) for v in ("yield", "yield_ci_low", "yield_ci_high"))
    d = _decimals(low, high)
    return f"{_fraction(y, d)} (95 % CI {_fraction(low, d)} – {_fraction(high, d)})"


def summary(ds, path: Path, plots) -> str:
    """A short human summary: the yield with its interval (a map: its best and worst points),
    the conditions' breakdown, the worst channel, where things are.

    Every fraction prints with the digits its interval needs; a sweep's condition breakdown
    and worst channel are those of its worst point, which it names."""
    import numpy as np

    lines = []
    dims = [d for d in ds["yield"].dims]
    n = int(ds.n_samples.max())
    sampler = ds.attrs.get("sampler", "?")
    worst: dict = {}
    if not dims:
        lines.append(f"yield {_yield_with_interval(ds)}, {n} modules, sampler {sampler}")
        where = ""
    else:
        y = ds["yield"].values
        finite = np.where(np.isnan(y), np.inf, y)
        i = np.unravel_index(int(np.argmin(finite)), y.shape)
        j = np.unravel_index(int(np.argmax(np.where(np.isnan(y), -np.inf, y))), y.shape)
        at = lambda k: ", ".join(f"{d}={ds[d].values[x]:g}" for d, x in zip(dims, k))  # noqa: E731
        worst = dict(zip(dims, (int(x) for x in i)))
        best = dict(zip(dims, (int(x) for x in j)))
        lines.append(f"yield map over {', '.join(dims)} ({y.size} points, {n} modules per point, sampler {sampler})")
        lines.append(f"  best   {_yield_with_interval(ds, best)} at {at(j)}")
        lines.append(f"  worst  {_yield_with_interval(ds, worst)} at {at(i)}")
        where = f" (at the worst point, {at(i)})"
    point = ds.isel(worst)
    if "condition" in ds.dims:
        lines += _condition_lines(point, where)
    fail = point.channel_fail_fraction
    if np.isnan(fail.values).all():  # subset simulation estimates no per-channel figure
        lines.append("worst channel: not estimated by this sampler")
    elif float(np.nanmax(fail.values)) == 0:
        lines.append(f"worst channel: none; no channel fails in any module{where}")
    elif "condition" in ds.dims:
        k, lyr, ch = np.unravel_index(int(np.nanargmax(fail.values)), fail.shape)
        lines.append(f"worst channel: layer {lyr}, channel {ch} fails in "
                     f"{_significant(100 * float(fail.values[k, lyr, ch]))} % of modules under "
                     f"{ds.condition.values[k]}{where}")
    else:
        lyr, ch = np.unravel_index(int(np.nanargmax(fail.values)), fail.shape)
        lines.append(f"worst channel: layer {lyr}, channel {ch} fails in "
                     f"{_significant(100 * float(fail.values[lyr, ch]))} % of modules{where}")
    if "yield_band" in ds:
        lines = _band_lines(ds) + lines
    lines.append(f"store: {path}")
    for p in plots:
        lines.append(f"plot:  {p}")
    return "\n".join(lines)


def _band_lines(ds, drivers: int = 5) -> list:
    """The model-uncertainty part of the summary: the band of the yield over the uncertain
    values and its largest first-order shares (at the sweep point of the lowest expected
    yield), then the warnings."""
    import numpy as np

    expected = ds["yield_expected"]
    at = {}
    if expected.dims:
        flat = np.where(np.isnan(expected.values), np.inf, expected.values)
        at = dict(zip(expected.dims, (int(i) for i in np.unravel_index(int(np.argmin(flat)), flat.shape))))
    point = ds.isel(at)
    where = (" at " + ", ".join(f"{d}={ds[d].values[i]:g}" for d, i in at.items())) if at else ""
    band = [float(v) for v in point.yield_band.values]
    se = float(point.yield_expected_se)
    lines = [f"yield band over {ds.sizes['realization']} realisations of {ds.sizes['uncertain']} uncertain "
             f"inputs{where}: 5 % {band[0]:.3f}, 50 % {band[1]:.3f}, 95 % {band[2]:.3f}; expected "
             f"{float(point.yield_expected):.3f} ± {se:.2g} (inner Monte-Carlo error {float(point.yield_inner_se):.2g})"]
    share, share_se = point.uncertain_importance.values, point.uncertain_importance_se.values
    order = [k for k in np.argsort(-np.where(np.isnan(share), -np.inf, share)) if not np.isnan(share[k])]
    if order:
        lines.append("  driven by (first-order variance share): " + ", ".join(
            f"{ds.uncertain.values[k]} {share[k]:.2f} ± {share_se[k]:.2f}" for k in order[:drivers]))
    for w in filter(None, str(ds.attrs.get("warnings", "")).split(" | ")):
        lines.append(f"warning: {w}")
    return lines


def _condition_lines(ds, where: str) -> list:
    """The envelope part of the summary: each condition's yield, what it alone costs, and
    the condition that costs most (the envelope yield gained without it). One condition is
    named with its yield alone."""
    names = [str(c) for c in ds.condition.values]
    envelope = float(ds["yield"])
    d = _decimals(float(ds.yield_ci_low), float(ds.yield_ci_high))
    if len(names) == 1:
        return [f"condition {names[0]}{where}: yield {_fraction(envelope, d)} (the only condition)"]
    lines = [f"envelope of {len(names)} conditions{where}: yield {_fraction(envelope, d)} passes every one"]
    if all(v != v for v in ds.condition_yield.values.ravel()):  # NaN: not estimated
        return lines + ["  per-condition yields: not estimated by this sampler"]
    width = max(len(n) for n in names)
    for k, name in enumerate(names):
        lines.append(f"  {name:<{width}}  yield {_fraction(float(ds.condition_yield[k]), d)}   fails only here "
                     f"{_significant(float(ds.condition_fail_only[k])):<8}   envelope without it "
                     f"{_fraction(float(ds.yield_without_condition[k]), d)}")
    gain = ds.yield_without_condition.values - envelope
    k = int(gain.argmax())
    if gain[k] > 0:
        lines.append(f"costs most: {names[k]} (dropping it raises the envelope yield by {_significant(float(gain[k]))})")
    else:
        lines.append("costs most: no single condition (dropping any one leaves the envelope yield unchanged: "
                     "the failing modules fail under several)")
    return lines


def execute_gradient_mode(job: Job, base: Path) -> int:
    """``mode=sensitivity`` (ranked table) or ``mode=optimize`` (optimum, re-checked)."""
    from yieldmc.analysis.optimize import optimize
    from yieldmc.analysis.sensitivity import ranked_table, sensitivity
    from yieldmc.io.results import parameter_units
    from yieldmc.io.store import check_replaceable, write_small_store

    mode, path = job.mode, store_path(job, base)

    def progress(total, unit):
        what = f"{total} {unit} ({job.problem.samples} modules)"
        return Progress(total, job.progress, interval=job.output.progress_interval_s, unit=unit,
                        start_line=start_line(job, what=what) if job.progress else None)

    try:
        check_replaceable(path, overwrite=job.overwrite)  # before the computation, not after
        if mode == "calibrate":
            from yieldmc.analysis.calibrate import calibrate

            ds = calibrate(job, base=base, write_process=True, progress=progress)
        else:
            ds = (sensitivity(job, progress=progress) if mode == "sensitivity"
                  else optimize(job, progress=progress))
        ds = parameter_units(ds, job.config_yaml)
        write_small_store(ds, path, overwrite=job.overwrite, identity_=job.identity)
    except ValueError as exc:
        _fail(exc)
    if mode == "calibrate":
        print(_calibration_summary(ds))
    elif mode == "sensitivity":
        print(ranked_table(ds))
    else:
        lines = [f"{ds.attrs['kind']} optimisation ({ds.sizes['step']} steps):"]
        for name, value in zip(ds.parameter.values, ds.optimum.values):
            lines.append(f"  {name} = {value:.6g}")
        if ds.attrs["kind"] == "tolerance":
            lines.append(f"  cost Σ c/σ = {float(ds.cost):.6g}")
        lines.append(f"re-check on fresh draws: yield {_yield_with_interval(ds)}, "
                     f"{int(ds.n_samples)} modules, target {ds.attrs['target_yield']:g}")
        lines.append(f"verdict: {ds.attrs['verdict_text']}")
        print("\n".join(lines))
    print(f"store: {path}")
    if job.output.plots:  # the fit, the tornado or the history beside the store
        from yieldmc.io.plots import plot_all

        for written in plot_all(ds, path):
            print(f"plot:  {written}")
    if mode == "optimize" and ds.attrs["verdict"] != "reached":
        sys.stdout.flush()
        sys.exit(EXIT_TARGET_MISSED)
    return 0


def _calibration_summary(ds) -> str:
    """Fitted values ± bootstrap errors, the fit's quality, the warnings, the process file."""
    lines = [f"calibration on {ds.attrs['n_modules']} measured modules ({ds.attrs['data']}):"]
    for name, v, se, v0 in zip(ds.parameter.values, ds.value.values, ds.value_se.values, ds.initial.values):
        lines.append(f"  {name} = {v:.4g} ± {se:.2g}   (start {v0:.4g})")
    p = ds.gof_p_value.values
    lines.append(f"goodness of fit: smallest KS p-value {p.min():.3g} "
                 f"({'the model reproduces the data' if p.min() >= 0.01 else 'the model does NOT reproduce the data'})")
    for w in filter(None, ds.attrs["warnings"].split(" | ")):
        lines.append(f"warning: {w}")
    if "process_file" in ds.attrs:
        name = Path(ds.attrs["process_file"]).stem
        lines.append(f"process: {ds.attrs['process_file']}  (use it: yieldmc process={name})")
    if "uncertainty_file" in ds.attrs:
        name = Path(ds.attrs["uncertainty_file"]).stem
        lines.append(f"uncertainty: {ds.attrs['uncertainty_file']}  (the fit's errors as a band: "
                     f"yieldmc uncertainty={name})")
    return "\n".join(lines)


def _finish(root, path: Path, job: Job):
    """(Dataset, None) once the result is written or verified; (None, note) otherwise.

    Only the job holding the store's finalize lock writes the result; it first checks
    that no other job completed it meanwhile.
    """
    from yieldmc.io import store as zstore

    done = zstore.done_blocks(root)
    if not done.all():
        return None, (f"{int(done.sum())} of {done.size} blocks of {path} done; the job that "
                      "completes the last block writes the result (rerun this command to finish it)")
    with zstore.FinalizeLock(path) as lock:
        if not lock.acquired:
            return None, f"every block of {path} is done; the result is being written by {lock.holder}"
        ds = zstore.load_result(path)
        if ds is None:
            ds = zstore.finalize(root, path, job)
    return ds, None


def execute(cfg: DictConfig, base: Path) -> int:
    """Hydra's job (a multirun's, or a run with ``hydra.*`` settings): parse ``cfg`` (or take
    the job the check parsed) and run it."""
    from yieldmc.plugins import load_plugins

    try:
        load_plugins()  # a cluster job is a fresh process
    except ValueError as exc:
        _fail(exc)
    from yieldmc.configuration.tree import to_container
    from yieldmc.job import parse_job

    try:
        config = to_container(cfg)
        job = _PARSED.pop(_parse_key(config, base), None) or parse_job(config, base=base)
    except ValueError as exc:
        _fail(exc)
    return _run_job(job, base)


def _run_job(job: Job, base: Path) -> int:
    """Run (or resume, or finish) a parsed job; print the summary."""
    from yieldmc.io import store as zstore

    if job.mode != "run":
        hand_on_caught_signal()  # no block boundary to stop at
        return execute_gradient_mode(job, base)
    problem, shard, num = job.problem, job.shard, job.num_shards
    path = store_path(job, base)
    try:
        root = zstore.open_store(path, job, overwrite=job.overwrite, replace=num == 1)
    except ValueError as exc:
        _fail(exc)
    ds = zstore.load_result(path)
    if ds is not None:
        print(f"(already complete: {path})")
    else:
        if (zstore.root_attrs(path) or {}).get("status") == "complete":
            print(f"(the stored result of {path} is damaged; recomputing it from the blocks)")
        done = zstore.done_blocks(root)
        mine = [b for b in range(problem.n_blocks) if b % num == shard and not done[b]]
        from yieldmc.engine.blocks import block_counts

        total = int(block_counts(problem, mine).sum())
        progress = Progress(total, job.progress, interval=job.output.progress_interval_s,
                            start_line=start_line(job, samples=total) if job.progress else None)
        try:
            with stop_at_block_boundary() as stop:  # SIGTERM: stop after a block, keep it
                zstore.run_blocks(root, problem, mine, progress=progress, stop=stop)
            done = zstore.done_blocks(root)
            if stop.signum is not None and not done[mine].all():  # stopped with blocks left
                stop.exit(f"{int(done.sum())} of {done.size} blocks of {path} are done")
            ds, note = _finish(root, path, job)
        except OSError as exc:
            _fail(f"output: cannot write {path}: {exc.strerror or exc}")
        except zstore.StoreError as exc:
            _fail(exc)
        finally:
            progress.close()
        if ds is None:
            print(f"shard {shard}/{num} finished; {note}")
            return 0
    plots = []
    if job.output.plots:  # matplotlib only when it draws
        from yieldmc.io.plots import plot_all

        plots = plot_all(ds, path, target_yield=job.output.target_yield)
    print(summary(ds, path, plots))
    return 0


def _task(cfg: DictConfig) -> int:
    """Hydra's task function: one job (each job of a multirun, here or on a cluster)."""
    from hydra.core.hydra_config import HydraConfig

    with catch_from_job_start():  # SLURM's warning may come while the job starts
        return execute(cfg, Path(HydraConfig.get().runtime.cwd))


def _app() -> None:
    """Hydra's main over ``conf/`` (Hydra imported here, not when this module is)."""
    import hydra

    from yieldmc.configuration.tree import register_defaults

    register_defaults()
    hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")(_task)()


#: Exit status when stdout (or stderr) is a pipe whose reader has gone, e.g. ``yieldmc | head -1``:
#: 141 = 128 + SIGPIPE, what a shell reports for a tool ended by a closed pipe, so
#: ``set -o pipefail`` scripts see yieldmc like ``cat``; nothing is printed.
_EXIT_CLOSED_PIPE = 141

class _ClosedPipe(BaseException):
    """A write to a pipe whose reader has gone (``fd`` is the stream's descriptor).

    A BaseException, so that it passes Hydra's and logging's ``except Exception`` and
    reaches :func:`main`, which ends quietly.
    """

    def __init__(self, fd):
        super().__init__(fd)
        self.fd = fd


class _GuardedStream:
    """``sys.stdout``/``sys.stderr`` turning BrokenPipeError into :class:`_ClosedPipe`."""

    def __init__(self, stream):
        self._stream = stream

    def _fd(self):
        try:
            return self._stream.fileno()
        except (AttributeError, OSError, ValueError):
            return None

    def write(self, text):
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise _ClosedPipe(self._fd()) from None

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        try:
            return self._stream.flush()
        except BrokenPipeError:
            raise _ClosedPipe(self._fd()) from None

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _end_quietly(fd) -> None:
    """Python's recipe for a closed pipe: point ``fd`` at /dev/null so that the flush at exit
    cannot fail again, and exit with :data:`_EXIT_CLOSED_PIPE` without a word."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno() if fd is None else fd)
    except (AttributeError, OSError, ValueError):
        pass
    sys.exit(_EXIT_CLOSED_PIPE)


def _run_command(argv) -> None:
    if "--version" in argv:
        from yieldmc._version import __version__

        print(f"yieldmc {__version__}")
        return
    if ("--help" in argv or "-h" in argv) and "--hydra-help" not in argv:
        from yieldmc.io.help import help_text

        print(help_text())
        return
    try:
        jobs = _prevalidate(argv)
    except ValueError as exc:
        _fail(exc)
    except Exception as exc:  # noqa: BLE001 - Hydra's own parse errors (a multirun's sweep)
        _fail(explain_hydra_error(f"{type(exc).__name__}: {exc}", _split_argv(argv)[0]))
    overrides, multirun, _ = _split_argv(argv)
    if len(jobs) == 1 and not multirun and not any(o.lstrip("+~").startswith("hydra") for o in overrides):
        # one job: composed and parsed once above, run here (Hydra's launchers, run
        # directory and logging serve a multirun or a run with hydra.* settings)
        _PARSED.clear()
        sys.exit(_run_job(jobs[0], Path.cwd()))
    sys.argv.extend(local_search_path(argv))  # the same search path for Hydra's own composition
    _app()


def _is_closed(fd: int) -> bool:
    """Whether file descriptor ``fd`` is closed (``yieldmc ... >&-``)."""
    import os

    try:
        os.fstat(fd)
    except OSError:
        return True
    return False


def _hold_closed_streams() -> tuple[bool, bool]:
    """(stdout closed, stderr closed). A closed descriptor 1 or 2 is pointed at /dev/null
    first: otherwise the next file opened (a zarr chunk, a plot) would get that number, and
    whatever is written to stdout/stderr (Python's, or XLA's C++ logging) would land in it.
    A closed stderr becomes a Python stream on /dev/null, so that messages are dropped
    rather than printed to stdout (``print(file=None)`` writes to stdout)."""
    import os

    closed = _is_closed(1), _is_closed(2)
    for fd, gone in zip((1, 2), closed):
        if gone:
            devnull = os.open(os.devnull, os.O_WRONLY)
            if devnull != fd:
                os.dup2(devnull, fd)
                os.close(devnull)
    if closed[1]:
        sys.stderr = open(2, "w", closefd=False, errors="backslashreplace")  # noqa: SIM115
    if closed[0]:
        sys.stdout = open(1, "w", closefd=False, errors="backslashreplace")  # noqa: SIM115
    return closed


def main() -> None:
    """Entry point of the ``yieldmc`` console script and ``python -m yieldmc``.

    ``--help``/``-h`` and ``--version`` are answered here (Hydra's own help: ``--hydra-help``).
    A closed output pipe (``yieldmc ... | head -1``) ends quietly with exit status 141. A
    closed stdout (``yieldmc ... >&-``) is refused before anything is computed: one line on
    stderr, exit status 2 (redirect to /dev/null to discard the summary); with a closed
    stderr the command runs and its messages are dropped (the exit status still tells).
    """
    stdout_closed, _ = _hold_closed_streams()
    if stdout_closed:
        _fail("stdout is closed, so the summary would be lost; to discard it, redirect it: >/dev/null")
    streams = sys.stdout, sys.stderr
    if streams[0] is not None and streams[1] is not None:
        sys.stdout, sys.stderr = _GuardedStream(streams[0]), _GuardedStream(streams[1])
    try:
        try:
            _run_command(sys.argv[1:])
        finally:
            if sys.stdout is not None:
                sys.stdout.flush()  # here, not at exit, so that a closed pipe is seen here
    except _ClosedPipe as exc:
        sys.stdout, sys.stderr = streams
        _end_quietly(exc.fd)
    except BrokenPipeError:
        sys.stdout, sys.stderr = streams
        _end_quietly(None)
    finally:
        sys.stdout, sys.stderr = streams
