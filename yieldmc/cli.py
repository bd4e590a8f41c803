"""The ``yieldmc`` command: a Hydra app over ``conf/`` (edge: Hydra, zarr, plots).

Bad input (an unknown key, a wrong type, an invalid value, an unwritable output, a
foreign store) ends with one line on stderr naming the problem and exit code 2, before
anything is compiled or written.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig

from yieldmc.config import CONF_DIR, compose, to_container
from yieldmc.problem import Problem, build_problem

EXIT_BAD_INPUT = 2
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


def check_config(config: dict) -> Problem:
    """Validate everything the command needs beyond the engine's own checks."""
    if config.get("mode", "run") not in MODES:
        raise ValueError(f"mode: expected one of {MODES}, got {config.get('mode')!r}")
    problem = build_problem(config)
    shard, num = config.get("shard", 0), config.get("num_shards", 1)
    if not isinstance(num, int) or isinstance(num, bool) or num < 1:
        raise ValueError(f"num_shards: must be a positive integer, got {num!r}")
    if not isinstance(shard, int) or isinstance(shard, bool) or not 0 <= shard < num:
        raise ValueError(f"shard: must be an integer in [0, num_shards={num}), got {shard!r}")
    out = config.get("output") or {}
    if not isinstance(out.get("dir"), str) or not out["dir"]:
        raise ValueError(f"output.dir: expected a path, got {out.get('dir')!r}")
    if out.get("name") is not None and (not isinstance(out["name"], str) or "/" in out["name"]):
        raise ValueError(f"output.name: expected a file name, got {out['name']!r}")
    ty = out.get("target_yield", 0.9)
    if isinstance(ty, bool) or not isinstance(ty, (int, float)) or not 0 < ty < 1:
        raise ValueError(f"output.target_yield: must lie in (0, 1), got {ty!r}")
    return problem


def _prevalidate(argv) -> None:
    overrides, multirun, skip = _split_argv(argv)
    if skip:
        return
    for combo in _expand(overrides, multirun):
        check_config(to_container(compose(combo)))


class Progress:
    """A one-line progress bar on stderr (samples done, rate, ETA) for runs over ~2 s."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.done, self.start = total, 0, time.perf_counter()
        self.enabled = enabled and sys.stderr.isatty()
        self.shown = False

    def __call__(self, n: int) -> None:
        self.done += n
        elapsed = time.perf_counter() - self.start
        if not self.enabled or elapsed < 2.0:
            return
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else math.inf
        frac = self.done / max(self.total, 1)
        bar = "#" * int(30 * frac)
        sys.stderr.write(f"\r[{bar:<30}] {frac:6.1%} {self.done:.3g}/{self.total:.3g} samples "
                         f"{rate:.3g}/s ETA {eta:5.0f} s ")
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\n")


def store_path(config: dict, base: Path) -> Path:
    from yieldmc.store import identity

    out = config["output"]
    directory = Path(out["dir"])
    if not directory.is_absolute():
        directory = base / directory
    name = out.get("name") or f"yield_{config['package'].get('name', 'package')}_{identity(config)[:8]}.zarr"
    return directory / name


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
    lyr, ch = np.unravel_index(int(np.argmax(fail.values)), fail.shape)
    lines.append(f"worst channel: layer {lyr}, channel {ch} fails in {float(fail.values[lyr, ch]):.4%} of modules")
    lines.append(f"store: {path}")
    for p in plots:
        lines.append(f"plot:  {p}")
    return "\n".join(lines)


MODES = ("run", "sensitivity", "optimize")


def _write_atomically(ds, path: Path, overwrite: bool) -> None:
    """Write a small Dataset to ``path`` via a temporary store renamed into place."""
    import shutil
    import warnings

    if path.exists() and not overwrite:
        _fail(f"output: {path} exists; pass overwrite=true to replace it")
    tmp = path.with_name(path.name + ".partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        with warnings.catch_warnings():  # zarr v3: string coordinates, consolidated metadata
            warnings.simplefilter("ignore")
            ds.to_zarr(str(tmp), mode="w", consolidated=True)
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        _fail(f"output: cannot write {path}: {exc.strerror or exc}")


def execute_gradient_mode(config: dict, mode: str, base: Path) -> int:
    """``mode=sensitivity`` (ranked table) or ``mode=optimize`` (optimum, re-checked)."""
    from yieldmc.optimize import optimize, optimize_settings
    from yieldmc.sensitivity import gradient_settings, ranked_table, sensitivity

    try:
        problem = check_config(config)
        gradient_settings(config)
        if problem.sweep_keys:
            raise ValueError(f"sweep: mode={mode} runs at one point; remove the sweep")
        if mode == "optimize":
            optimize_settings(config, problem)
        path = store_path(config, base)
        path = path.with_name(f"{mode}_{path.name.removeprefix('yield_')}")
        if path.exists() and not config.get("overwrite"):
            raise ValueError(f"output: {path} exists; pass overwrite=true to replace it")
        ds = sensitivity(config) if mode == "sensitivity" else optimize(config)
    except ValueError as exc:
        _fail(exc)
    _write_atomically(ds, path, bool(config.get("overwrite")))
    if mode == "sensitivity":
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
        print("\n".join(lines))
    print(f"store: {path}")
    return 0


def execute(cfg: DictConfig, base: Path) -> int:
    """Run (or resume, or finish) the job described by ``cfg``; print the summary."""
    from yieldmc import store as zstore
    from yieldmc.plots import plot_all

    config = to_container(cfg)
    mode = config.get("mode", "run")
    if mode not in MODES:
        _fail(f"mode: expected one of {MODES}, got {mode!r}")
    if mode != "run":
        return execute_gradient_mode(config, mode, base)
    try:
        problem = check_config(config)
        path = store_path(config, base)
        root = zstore.open_store(path, problem, config, overwrite=bool(config.get("overwrite")))
    except ValueError as exc:
        _fail(exc)
    if zstore.is_complete(root):
        ds = zstore.open_result(path)
        print(f"(already complete: {path})")
    else:
        shard, num = config.get("shard", 0), config.get("num_shards", 1)
        done = zstore.done_blocks(root)
        mine = [b for b in range(problem.n_blocks) if b % num == shard and not done[b]]
        progress = Progress(problem.samples // num, bool(config.get("progress", True)))
        try:
            zstore.run_blocks(root, problem, mine, progress=progress)
        except OSError as exc:
            _fail(f"output: cannot write {path}: {exc}")
        finally:
            progress.close()
        done = zstore.done_blocks(root)
        if not done.all() or (mine and not zstore.claim_finalize(path)):
            print(f"shard {shard}/{num} finished; {int(done.sum())} of {done.size} blocks of "
                  f"{path} done; the shard that completes the last block writes the result")
            return 0
        ds = zstore.finalize(root, path, problem, config)
    plots = []
    if config["output"].get("plots", True):
        plots = plot_all(ds, path, target_yield=config["output"].get("target_yield", 0.9))
    print(summary(ds, path, plots))
    return 0


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def _app(cfg: DictConfig) -> int:
    from hydra.core.hydra_config import HydraConfig

    return execute(cfg, Path(HydraConfig.get().runtime.cwd))


def main() -> None:
    """Entry point of the ``yieldmc`` console script and ``python -m yieldmc``."""
    try:
        _prevalidate(sys.argv[1:])
    except ValueError as exc:
        _fail(exc)
    except Exception as exc:  # noqa: BLE001 - Hydra's own parse errors
        _fail(f"{type(exc).__name__}: {exc}")
    _app()
