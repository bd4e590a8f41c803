"""The ``yieldmc`` command: a Hydra app over ``conf/`` (edge: Hydra, zarr, plots).

Bad input (an unknown key, a wrong type, an invalid value, an unwritable output, a
foreign store) ends with one line on stderr naming the problem and exit code 2, before
anything is compiled or written.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from yieldmc.io.config import CONF_DIR, compose, local_search_path, to_container
from yieldmc.job import Job, parse_job
from yieldmc.engine.problem import Problem
from yieldmc.io.progress import Progress, start_line

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
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides=ours)
    return [list(batch) for batches in BasicSweeper.split_arguments(parsed, None) for batch in batches]


def check_config(config, base: Path | None = None) -> Problem:
    """Validate everything the command needs, for every mode, before anything is computed.

    The job is parsed once (:func:`yieldmc.job.parse_job`: every key against
    :mod:`yieldmc.engine.schema`, the shards, the output — a plain file name, a directory that
    can be created and written, checked without creating anything — and the gradient and
    optimisation sections); this returns its problem.

    Raises:
      ValueError: one line, ``<key>: <what is wrong>, got <value>``.
    """
    return parse_job(config, base=base).problem


def _prevalidate(argv) -> None:
    overrides, multirun, skip = _split_argv(argv)
    if skip:
        return
    from yieldmc.io.store import check_replaceable, must_replace

    base = Path.cwd()  # Hydra's runtime cwd: where yieldmc started
    for combo in _expand(overrides, multirun):
        job = parse_job(to_container(compose(combo)), base=base)
        path = store_path(job, base)  # refused stores too, before Hydra writes outputs/
        if job.mode == "run":
            must_replace(path, job, overwrite=job.overwrite, replace=job.num_shards == 1)
        else:
            check_replaceable(path, overwrite=job.overwrite)


def store_path(job: Job, base: Path) -> Path:
    """``<output.dir>/<output.name>``; the default name is ``yield_<package>_<identity>.zarr``,
    and ``mode=sensitivity``/``optimize`` write ``<mode>_<that name without yield_>``."""
    directory = Path(job.output.dir)
    if not directory.is_absolute():
        directory = base / directory
    path = directory / (job.output.name or f"yield_{job.package_name}_{job.identity[:8]}.zarr")
    if job.mode != "run":
        path = path.with_name(f"{job.mode}_{path.name.removeprefix('yield_')}")
    return path


def summary(ds, path: Path, plots) -> str:
    """A short human summary: yield with interval, worst channel, where things are."""
    import numpy as np

    lines = []
    dims = [d for d in ds["yield"].dims]
    n = int(ds.n_samples.max())
    sampler = ds.attrs.get("sampler", "mc")
    if not dims:
        lines.append(f"yield {float(ds['yield']):.4f}  (95 % CI {float(ds.yield_ci_low):.4f} – "
                     f"{float(ds.yield_ci_high):.4f}, {n} modules, sampler {sampler})")
        fail = ds.channel_fail_fraction
    else:
        y = ds["yield"]
        i = np.unravel_index(int(np.argmin(y.values)), y.shape)
        j = np.unravel_index(int(np.argmax(y.values)), y.shape)
        at = lambda k: ", ".join(f"{d}={ds[d].values[x]:g}" for d, x in zip(dims, k))  # noqa: E731
        lines.append(f"yield map over {', '.join(dims)} ({n} modules per point, sampler {sampler})")
        lines.append(f"  lowest  {float(y.values[i]):.4f} at {at(i)}")
        lines.append(f"  highest {float(y.values[j]):.4f} at {at(j)}")
        fail = ds.channel_fail_fraction.isel(dict(zip(dims, i)))
    if "condition" in ds.dims:
        point = {} if not dims else dict(zip(dims, i))
        lines += _condition_lines(ds.isel(point), "" if not dims else f" (at {at(i)})")
    if np.isnan(fail.values).all():  # subset simulation estimates no per-channel figure
        lines.append("worst channel: not estimated by this sampler")
    elif "condition" in ds.dims:
        k, lyr, ch = np.unravel_index(int(np.argmax(fail.values)), fail.shape)
        lines.append(f"worst channel: layer {lyr}, channel {ch} fails in {float(fail.values[k, lyr, ch]):.4%} "
                     f"of modules under {ds.condition.values[k]}")
    else:
        lyr, ch = np.unravel_index(int(np.argmax(fail.values)), fail.shape)
        lines.append(f"worst channel: layer {lyr}, channel {ch} fails in {float(fail.values[lyr, ch]):.4%} of modules")
    lines.append(f"store: {path}")
    for p in plots:
        lines.append(f"plot:  {p}")
    return "\n".join(lines)


def _condition_lines(ds, where: str) -> list:
    """The envelope part of the summary: each condition's yield, what it alone costs, and
    the condition that costs most (the envelope yield gained without it)."""
    names = [str(c) for c in ds.condition.values]
    envelope = float(ds["yield"])
    lines = [f"envelope of {len(names)} conditions{where}: yield {envelope:.4f} passes every one"]
    if all(v != v for v in ds.condition_yield.values.ravel()):  # NaN: not estimated
        return lines + ["  per-condition yields: not estimated by this sampler"]
    width = max(len(n) for n in names)
    for k, name in enumerate(names):
        lines.append(f"  {name:<{width}}  yield {float(ds.condition_yield[k]):.4f}   fails only here "
                     f"{float(ds.condition_fail_only[k]):.4f}   envelope without it "
                     f"{float(ds.yield_without_condition[k]):.4f}")
    gain = ds.yield_without_condition.values - envelope
    k = int(gain.argmax())
    if gain[k] > 0:
        lines.append(f"costs most: {names[k]} (dropping it raises the envelope yield by {gain[k]:.4f})")
    else:
        lines.append("costs most: no single condition (dropping any one leaves the envelope yield unchanged: "
                     "the failing modules fail under several)")
    return lines


def execute_gradient_mode(job: Job, base: Path) -> int:
    """``mode=sensitivity`` (ranked table) or ``mode=optimize`` (optimum, re-checked)."""
    from yieldmc.analysis.optimize import optimize
    from yieldmc.analysis.sensitivity import ranked_table, sensitivity
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
        write_small_store(ds, path, overwrite=job.overwrite, identity_=job.identity)
    except ValueError as exc:
        _fail(exc)
    if mode == "calibrate":
        print(_calibration_summary(ds))
        if job.output.plots:
            from yieldmc.io.plots import plot_calibration

            written = plot_calibration(ds, path)
            if written is not None:
                print(f"plot:  {written}")
    elif mode == "sensitivity":
        print(ranked_table(ds))
    else:
        lines = [f"{ds.attrs['kind']} optimisation ({ds.sizes['step']} steps):"]
        for name, value in zip(ds.parameter.values, ds.optimum.values):
            lines.append(f"  {name} = {value:.6g}")
        if ds.attrs["kind"] == "tolerance":
            lines.append(f"  cost Σ c/σ = {float(ds.cost):.6g}")
        lines.append(f"re-check on fresh draws: yield {float(ds['yield']):.4f} (95 % CI "
                     f"{float(ds.yield_ci_low):.4f} – {float(ds.yield_ci_high):.4f}, "
                     f"{int(ds.n_samples)} modules), target {ds.attrs['target_yield']:g}")
        lines.append(f"verdict: {ds.attrs['verdict_text']}")
        print("\n".join(lines))
    print(f"store: {path}")
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
    """Run (or resume, or finish) the job described by ``cfg``; print the summary."""
    from yieldmc.io import store as zstore
    from yieldmc.io.plots import plot_all
    from yieldmc.plugins import load_plugins

    try:
        load_plugins()  # a cluster job is a fresh process
    except ValueError as exc:
        _fail(exc)
    try:
        job = parse_job(cfg, base=base)
    except ValueError as exc:
        _fail(exc)
    if job.mode != "run":
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
            zstore.run_blocks(root, problem, mine, progress=progress)
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
    if job.output.plots:
        plots = plot_all(ds, path, target_yield=job.output.target_yield)
    print(summary(ds, path, plots))
    return 0


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def _app(cfg: DictConfig) -> int:
    from hydra.core.hydra_config import HydraConfig

    return execute(cfg, Path(HydraConfig.get().runtime.cwd))


#: Exit status when stdout (or stderr) is a pipe whose reader has gone, e.g. ``yieldmc | head -1``:
#: 141 = 128 + SIGPIPE, what a shell reports for a tool ended by a closed pipe, so
#: ``set -o pipefail`` scripts see yieldmc like ``cat``; nothing is printed.
_EXIT_CLOSED_PIPE = 141

# From README.md, "Using it".
_HELP_EXAMPLES = (
    ("yieldmc package=pwg18_32ch process.dx_um.module.sigma=0.5 samples=10000000",
     "32 channels at 18 µm pitch, placement sigma 0.5 µm, 10^7 modules"),
    ("yieldmc process=none process.dx_um.channel.sigma=0.3", "one variation only"),
    ("yieldmc 'sweep={process.dx_um.module.sigma:[0.25,0.5,1.0],"
     "process.dy_um.module.sigma:[0.1,0.2]}'", "a 3 x 2 yield map"),
    ("yieldmc package/coupler=butt package.coupler.gap_um=5", "butt coupling instead"),
    ("yieldmc mode=sensitivity", "ranked table: tighten this first"),
    ("yieldmc --cfg job package=pwg18_4x32ch", "print the resolved configuration"),
)


def _yaml_defaults(path: Path) -> dict:
    """``{group: option}`` of the ``defaults`` list of one YAML file of ``conf/``."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}
    found = {}
    for item in (data.get("defaults") or []) if isinstance(data, dict) else []:
        if isinstance(item, dict):
            for key, value in item.items():
                found[str(key).removeprefix("override ").strip().lstrip("/")] = value
    return found


def _config_groups() -> list:
    """``[(group, options, default)]`` for every config group under ``conf/`` but hydra/."""
    top = _yaml_defaults(CONF_DIR / "config.yaml")

    def default(group):
        if group in top:
            return top[group]
        parent, _, child = group.rpartition("/")
        chosen = default(parent) if parent else None
        return _yaml_defaults(CONF_DIR / parent / f"{chosen}.yaml").get(child) if chosen else None

    groups = []
    for directory in sorted(p for p in CONF_DIR.rglob("*") if p.is_dir()):
        group = directory.relative_to(CONF_DIR).as_posix()
        options = sorted(f.stem for f in directory.glob("*.yaml"))
        if options and group.split("/")[0] != "hydra":
            groups.append((group, options, default(group)))
    return groups


def _help_text() -> str:
    """``yieldmc --help``: what it does, groups, main keys with defaults, examples."""
    from yieldmc.engine import schema
    from yieldmc._version import __version__

    try:
        defaults = to_container(compose([]))
    except Exception:  # noqa: BLE001 - a broken conf/ must not break --help
        defaults = {}
    lines = [
        f"yieldmc {__version__}: Monte-Carlo yield analysis for polymer-waveguide co-packaged optics",
        "",
        "usage: yieldmc [GROUP=OPTION ...] [KEY=VALUE ...]",
        "       yieldmc --multirun KEY=V1,V2 ...  (one job per combination, Hydra launchers)",
        "",
        "Builds many virtual modules (a PWG package under process variations), computes every",
        "channel's coupling loss and reports the yield (fraction of modules meeting the loss",
        "spec) with its 95 % interval, per-channel fail fractions and loss quantiles. Writes an",
        "xarray/zarr store (resumable: rerun a killed command unchanged) with plots beside it and",
        "prints a summary. mode=sensitivity ranks the tolerances, mode=optimize sizes them.",
        "Configuration is Hydra over conf/: any key can be set as KEY=VALUE.",
        "",
        "Config groups (GROUP=OPTION; * marks the default):",
    ]
    groups = _config_groups()
    width = max([len(g) for g, _, _ in groups] + [8]) + 2
    for group, options, chosen in groups:
        names = "  ".join(o + ("*" if o == chosen else "") for o in options)
        note = f"  (* with the default {group.rpartition('/')[0]})" if "/" in group and chosen else ""
        lines.append(f"  {group:<{width}}{names}{note}")
    lines += ["", "Configuration keys (KEY=VALUE; default shown; generated from yieldmc/engine/schema.py,",
              "the same table as docs/configuration.md):",
              schema.key_table(markdown=False, defaults=defaults)]
    lines += [
        "  process.<quantity>.<level>.<param>=VALUE: a variation, e.g. process.dx_um.module.sigma=0.5",
        "",
        "Examples:",
    ]
    for cmd, note in _HELP_EXAMPLES:
        lines += ([f"  # {note}"] if note else []) + [f"  {cmd}"]
    lines += [
        "",
        "Options:",
        "  -h, --help          this help",
        "  --version           print the version",
        "  --cfg job           print the composed configuration (with the overrides) and exit",
        "  -m, --multirun      run every combination of comma-separated override values",
        "  --hydra-help        Hydra's own help (--info, --config-dir, launchers, shell completion)",
        "",
        f"Exit status: 0 done; 2 bad input (one line on stderr naming the key); "
        f"{_EXIT_CLOSED_PIPE} output pipe closed.",
        "Documentation: README.md and docs/ in the yieldmc repository.",
    ]
    return "\n".join(lines)


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
        print(_help_text())
        return
    try:
        _prevalidate(argv)
    except ValueError as exc:
        _fail(exc)
    except Exception as exc:  # noqa: BLE001 - Hydra's own parse errors
        _fail(f"{type(exc).__name__}: {exc}")
    sys.argv.extend(local_search_path(argv))  # the same search path for Hydra's own composition
    _app()


def main() -> None:
    """Entry point of the ``yieldmc`` console script and ``python -m yieldmc``.

    ``--help``/``-h`` and ``--version`` are answered here (Hydra's own help: ``--hydra-help``).
    A closed output pipe (``yieldmc ... | head -1``) ends quietly with exit status 141.
    """
    streams = sys.stdout, sys.stderr
    if streams[0] is not None and streams[1] is not None:
        sys.stdout, sys.stderr = _GuardedStream(streams[0]), _GuardedStream(streams[1])
    try:
        try:
            _run_command(sys.argv[1:])
        finally:
            sys.stdout.flush()  # here, not at exit, so that a closed pipe is seen here
    except _ClosedPipe as exc:
        sys.stdout, sys.stderr = streams
        _end_quietly(exc.fd)
    except BrokenPipeError:
        sys.stdout, sys.stderr = streams
        _end_quietly(None)
    finally:
        sys.stdout, sys.stderr = streams
