"""The sampler interface and registry: a plugin sampler end to end, no sampler branches, no cycle."""

from __future__ import annotations

import ast
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import warm_process
import yieldmc
from yieldmc import validation
from yieldmc.samplers import Sampler, get_sampler, register_sampler, sampler_names

TESTS = Path(__file__).resolve().parent
PACKAGE = TESTS.parent / "yieldmc"


@pytest.mark.slow
def test_toy_sampler_through_the_command(tmp_path):
    """``sampler=antithetic`` from tests/toy_sampler.py, loaded by YIELDMC_PLUGINS, through
    the real command (store, result, summary) against the closed-form yield."""
    problem = validation.module_offset(sigma_um=1.2)  # process=none, dx module sigma 1.2 µm
    n = 16384
    cmd = [sys.executable, "-m", "yieldmc", "sampler=antithetic", *problem.overrides, f"samples={n}",
           "engine.block_size=4096", "output.dir=out", "output.plots=false"]
    env = dict(os.environ, YIELDMC_PLUGINS="toy_sampler", PYTHONPATH=str(TESTS), JAX_PLATFORMS="cpu")
    proc = warm_process.run(cmd, cwd=tmp_path, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "sampler antithetic" in proc.stdout
    (store,) = (tmp_path / "out").glob("*.zarr")
    from yieldmc.io.store import open_result

    ds = open_result(store)
    assert ds.attrs["sampler"] == "antithetic" and "antithetic pairs" in ds.attrs["interval_method"]
    assert int(ds.n_samples) == n
    y, truth = float(ds["yield"]), problem.expected_yield
    se = math.sqrt(truth * (1 - truth) / (n / 2))  # N/2 pairs (|dx| <= r: a pair passes together)
    assert abs(y - truth) <= 4.5 * se, (y, truth, se)
    assert float(ds.yield_ci_low) <= y <= float(ds.yield_ci_high)


@pytest.mark.slow
def test_a_plugin_samplers_own_setting_through_the_command(tmp_path):
    """The toy sampler declares ``antithetic.pairs`` (:attr:`Sampler.keys`): the schema
    accepts it, refuses a bad value with one line naming it, and the setting reaches the
    sampler (independent halves: Wilson over N, the yield within 4.5 SE of the closed form)."""
    problem = validation.module_offset(sigma_um=1.2)
    n = 16384
    cmd = [sys.executable, "-m", "yieldmc", "sampler=antithetic", *problem.overrides, f"samples={n}",
           "engine.block_size=4096", "output.dir=out", "output.plots=false"]
    env = dict(os.environ, YIELDMC_PLUGINS="toy_sampler", PYTHONPATH=str(TESTS), JAX_PLATFORMS="cpu")
    bad = warm_process.run([*cmd, "antithetic.pairs=maybe"], cwd=tmp_path, env=env, timeout=600)
    assert bad.returncode == 2, bad.stderr
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and "antithetic.pairs" in lines[0] and not (tmp_path / "out").exists(), bad.stderr
    proc = warm_process.run([*cmd, "antithetic.pairs=false"], cwd=tmp_path, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    (store,) = (tmp_path / "out").glob("*.zarr")
    from yieldmc.io.store import open_result

    ds = open_result(store)
    assert "independent draws" in ds.attrs["interval_method"]
    y, truth = float(ds["yield"]), problem.expected_yield
    assert abs(y - truth) <= 4.5 * math.sqrt(truth * (1 - truth) / n), (y, truth)


@pytest.mark.slow
def test_toy_sampler_draws_pairs_and_runs_in_process():
    import toy_sampler  # noqa: F401  (registers "antithetic" once per process)

    from yieldmc.io.config import problem_from_config
    from yieldmc.engine.blocks import draw_block

    assert "antithetic" in sampler_names() and "antithetic" in yieldmc.configuration.schema.choices("sampler")
    base = list(validation.channel_offset().overrides) + ["samples=8192", "engine.block_size=2048"]
    p = problem_from_config(yieldmc.compose(base + ["sampler=antithetic"]))
    u = np.asarray(draw_block(np.uint32(0), np.uint32(1), p.static))
    half = p.static.block_size // 2
    np.testing.assert_array_equal(u[:, half:], -u[:, :half])
    a = yieldmc.run(yieldmc.compose(base + ["sampler=antithetic", "engine.blocks_per_call=1"]))
    b = yieldmc.run(yieldmc.compose(base + ["sampler=antithetic", "engine.blocks_per_call=3"]))
    np.testing.assert_array_equal(a.n_pass.values, b.n_pass.values)
    np.testing.assert_array_equal(a.loss_db_mean.values, b.loss_db_mean.values)
    with pytest.raises(ValueError, match=r"engine\.block_size"):
        problem_from_config(yieldmc.compose(base + ["sampler=antithetic", "engine.block_size=2047"]))
    with pytest.raises(ValueError, match="sampler"):  # no gradient estimators for this one
        yieldmc.sensitivity(yieldmc.compose(base + ["sampler=antithetic", "mode=sensitivity"]))


def test_registry():
    assert sampler_names()[:3] == ("mc", "qmc", "is")
    assert set(sampler_names(supporting="supports_gradients")) >= {"mc"}
    assert "is" not in sampler_names(supporting="supports_sweep")
    assert get_sampler("mc") is get_sampler("mc") and isinstance(get_sampler("is"), Sampler)
    with pytest.raises(ValueError, match=r"no sampler is registered as 'sobol' \(registered: mc, qmc, is"):
        get_sampler("sobol")
    with pytest.raises(ValueError, match="already registered"):
        register_sampler("mc", get_sampler("qmc"))
    with pytest.raises(TypeError):
        register_sampler("nothing", object())
    with pytest.raises(ValueError, match="identifier"):
        register_sampler("not a name", get_sampler("mc"))

    class Incomplete(Sampler):  # the interface is abstract: draws, estimate, ... are required
        pass

    with pytest.raises(TypeError):
        Incomplete()


_BRANCH = re.compile(r"sampler\s*[!=]=")


def test_no_sampler_branch_outside_the_registry():
    """`sampler ==` / `sampler !=` only in the registry; the engine, store, results, API,
    problem, optimize and sensitivity name no sampler."""
    hits = [f"{p.relative_to(PACKAGE.parent)}:{i}" for p in PACKAGE.rglob("*.py")
            for i, line in enumerate(p.read_text().splitlines(), 1) if _BRANCH.search(line)]
    assert all(h.startswith("yieldmc/samplers/registry.py") for h in hits), hits
    for name in ("engine/blocks", "io/store", "io/results", "api", "job", "analysis/optimize",
                 "analysis/sensitivity"):
        text = (PACKAGE / f"{name}.py").read_text()
        assert not re.search(r"""["'](qmc|is)["']""", text), name
        assert "importance" not in text.replace("importance-sampling blocks", ""), name


def _import_graph() -> dict:
    """yieldmc module → the yieldmc modules it imports (every import statement, also inside
    functions; not those under ``if TYPE_CHECKING``)."""
    mods = {}
    for p in PACKAGE.rglob("*.py"):
        parts = list(p.relative_to(PACKAGE.parent).with_suffix("").parts)
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    graph = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text())
        skip = {id(m) for n in ast.walk(tree) if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test)
                for m in ast.walk(n)}
        edges = set()
        for node in ast.walk(tree):
            if id(node) in skip or not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            if isinstance(node, ast.Import):
                wanted = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        pkg = pkg.rpartition(".")[0]
                    base = f"{pkg}.{base}" if base else pkg
                wanted = [base] + [f"{base}.{a.name}" for a in node.names]
            for t in wanted:
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t not in ("yieldmc", name):
                    edges.add(t)
        graph[name] = edges
    return graph


def test_no_import_cycle_through_the_engine_or_the_samplers():
    graph = _import_graph()
    watched = {m for m in graph if m.startswith("yieldmc.samplers")} | {
        f"yieldmc.{m}" for m in ("engine.blocks", "engine.problem", "io.store", "io.results", "api", "job",
                                 "analysis.optimize", "analysis.sensitivity")}

    def reaches(start, goal):
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()] - seen:
                if nxt == goal:
                    return True
                seen.add(nxt)
                todo.append(nxt)
        return False

    cycles = [m for m in sorted(watched) if reaches(m, m)]
    assert not cycles, cycles
    assert "yieldmc.engine.blocks" not in graph["yieldmc.samplers.base"] | graph["yieldmc.samplers.registry"]


def _package(module: str) -> str:
    """The node of ``module`` in the package graph: its subpackage (``yieldmc.engine``) or,
    for a top-level module, the module itself (``yieldmc.job``)."""
    parts = module.split(".")
    if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()):
        return ".".join(parts[:2])
    return module


def test_the_package_graph_has_no_cycle():
    """Subpackages and top-level modules import one another in one direction only (imports
    inside functions count; those under ``if TYPE_CHECKING`` do not)."""
    edges: dict = {}
    for module, targets in _import_graph().items():
        for target in targets:
            a, b = _package(module), _package(target)
            if a != b:
                edges.setdefault(a, {}).setdefault(b, []).append(f"{module} -> {target}")
    state: dict = {}  # package -> "open" while on the path, "done" after

    def cycle_from(node, path):
        state[node] = "open"
        for nxt in sorted(edges.get(node, {})):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = cycle_from(nxt, path + [nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for start in sorted(edges):
        if start not in state:
            cycle = cycle_from(start, [start])
            if cycle:
                lines = [line for a, b in zip(cycle, cycle[1:]) for line in sorted(edges[a][b])]
                pytest.fail("package import cycle " + " -> ".join(cycle) + ":\n  " + "\n  ".join(lines))


@pytest.mark.slow
@pytest.mark.parametrize("first", ["yieldmc.samplers.importance", "yieldmc.engine.blocks"])
def test_modules_import_first_in_a_fresh_interpreter(first):
    code = (f"import {first}\nfrom yieldmc.samplers import get_sampler\n"
            "print([type(get_sampler(n)).__name__ for n in ('mc', 'qmc', 'is')])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, JAX_PLATFORMS="cpu"))
    assert proc.returncode == 0, proc.stderr
    assert "QuasiMonteCarlo" in proc.stdout


def test_a_loaded_plugin_sampler_does_not_change_another_configurations_identity():
    """A plugin sampler's declared defaults enter every configuration composed while it is
    registered; the store identity of a run with another sampler must not see them (the same
    configuration resumes its store with or without the plugin loaded)."""
    import subprocess

    from yieldmc.job import parse_job

    code = ("import sys, yieldmc\nfrom yieldmc.job import parse_job\n"
            "print(parse_job(yieldmc.compose(['seed=3']), check_output=False).identity)")
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                           env=dict(os.environ, JAX_PLATFORMS="cpu"))
    assert fresh.returncode == 0, fresh.stderr
    import toy_sampler  # noqa: F401  (registers "antithetic" with its antithetic.pairs default)

    cfg = yieldmc.compose(["seed=3"])
    assert cfg.antithetic.pairs is True  # the plugin's section is in the composed configuration
    assert parse_job(cfg, check_output=False).identity == fresh.stdout.strip().splitlines()[-1]
