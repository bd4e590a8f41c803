"""Every command and snippet of README.md and docs/*.md, run from a scratch directory
outside the checkout; every generated output block compared with a rerun of its command.

The rules (what runs, the small-size override, the markers) are in tests/docs_harness.py
and the README's "Documentation tests" paragraph.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import pytest

import docs_harness as h

pytestmark = pytest.mark.slow  # the quick tier (pytest -m "not slow") leaves these out

BLOCKS = [b for path in h.doc_files() for b in h.parse_blocks(path)]


def _items():
    """(id, kind, payload) for every test: bash and python blocks, delegated blocks and
    generated chains; a block whose commands a generated chain already runs, in the same
    order from the start, is left to the chain; identical blocks run once."""
    chains = [c for doc in dict.fromkeys(b.doc for b in BLOCKS)
              for c in h.generated_chains([b for b in BLOCKS if b.doc == doc])]
    covered = set()
    for chain in chains:
        commands = [s.command for b in chain for s in h.transcript(b)]
        covered |= {tuple(commands[:k]) for k in range(1, len(commands) + 1)}
    items, seen = [], set()
    for b in BLOCKS:
        if b.generated or b.lang not in ("bash", "python"):
            continue
        arg = b.docs_test
        if arg == "lead":
            warnings.warn(f"{b.where}: block marked 'docs-test: lead' is not run (awaiting the lead)")
            continue
        if arg and not arg.startswith("exit="):
            items.append((b.where, "delegated", b))
            continue
        if b.lang == "bash":
            commands = tuple(h.bash_commands(b))
            if not commands or (commands in covered and b.expected_exit == 0):
                continue
            key = ("bash", commands, b.expected_exit)
        else:
            key = ("python", b.body)
        if key not in seen:
            seen.add(key)
            items.append((b.where, b.lang, b))
    # the generated chains first: they hold the longest runs, and xdist hands items out in order
    return [(chain[0].where, "generated", chain) for chain in chains] + items


ITEMS = _items()


@pytest.fixture(scope="session")
def jax_cache(tmp_path_factory):
    """A persistent JAX compilation cache for the documented commands of this session,
    shared by the xdist workers (their base directories have one parent); a
    ``JAX_COMPILATION_CACHE_DIR`` set in the environment is used instead (a cache kept
    between runs: entries are keyed by the compiled program, so old ones do no harm)."""
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return Path(os.environ["JAX_COMPILATION_CACHE_DIR"])
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    path = root / "docs-jax-cache"
    path.mkdir(exist_ok=True)
    return path


def _scratch(tmp_path):
    assert h.ROOT not in tmp_path.resolve().parents, "the scratch directory must be outside the checkout"
    return tmp_path


def _explain(result) -> str:
    return (f"$ {result.command}\n(exit {result.returncode}, {result.seconds:.1f} s)\n"
            f"--- stdout ---\n{result.stdout[-3000:]}\n--- stderr ---\n{result.stderr[-3000:]}")


@pytest.mark.parametrize("kind,payload", [(k, p) for _, k, p in ITEMS], ids=[i for i, _, _ in ITEMS])
def test_documented(kind, payload, tmp_path, jax_cache):
    cwd = _scratch(tmp_path)
    env = h.environment(jax_cache)
    if kind == "delegated":
        problems = h.delegated_problems(payload)
        assert not problems, "\n".join(problems)
    elif kind == "bash":
        for command in h.bash_commands(payload):
            result = h.run_command(h.small(command, exit_only=True), cwd=cwd, env=env)
            assert result.returncode == payload.expected_exit, f"{payload.where}:\n{_explain(result)}"
    elif kind == "python":
        result = h.run_python(payload.body, cwd=cwd, env=env)
        assert result.returncode == 0, f"{payload.where}:\n{_explain(result)}"
    else:
        problems = []
        for block in payload:
            for step in h.transcript(block):
                command = h.small(step.command)
                result = h.run_command(command, cwd=cwd, env=env)
                assert result.returncode == 0, f"{block.where}:\n{_explain(result)}"
                found = h.compare_output(step.output, h.clean_output(result.stdout, cwd),
                                         n_doc=h.modules_of(step.command), n_rerun=h.modules_of(command))
                problems += [f"{block.where} $ {step.command}: {p}" for p in found]
        assert not problems, ("documented output disagrees with its command (rerun "
                              "`python scripts/make_docs.py` if a default changed):\n" + "\n".join(problems))


def test_no_command_outside_a_fence():
    """A command in an indented code block would escape this test: it must be fenced."""
    found = [c for path in h.doc_files() for c in h.indented_commands(path)]
    assert not found, "commands outside a ```bash block:\n" + "\n".join(found)


def test_generated_blocks_follow_the_syntax():
    for b in BLOCKS:
        if b.generated:
            assert b.lang == "text", b.where
            assert all(s.command for s in h.transcript(b)), b.where


# --- the harness itself ----------------------------------------------------------------


def test_bash_commands_join_continuations_and_drop_comments_and_pip():
    block = h.Block("x.md", 1, 5, "bash", "pip install -e . && yieldmc   # the default job\n"
                    "# a comment line\n"
                    "yieldmc 'sweep={a:[1,2]}' \\\n    samples=8   # small\n"
                    "pip install -e '.[cluster]'\n"
                    "echo '# not a comment'")
    assert h.bash_commands(block) == ["yieldmc", "yieldmc 'sweep={a:[1,2]}' samples=8", "echo '# not a comment'"]


def test_small_override():
    assert h.small("yieldmc") == f"yieldmc samples={h.SMALL_SAMPLES} output.plots=false"
    assert h.small("yieldmc samples=10000000 output.plots=true") == \
        f"yieldmc samples={h.SMALL_SAMPLES} output.plots=true"
    assert h.small("yieldmc samples=4096") == "yieldmc samples=4096 output.plots=false"
    assert h.small("yieldmc calibrate.samples=99999 samples=99999") == \
        f"yieldmc calibrate.samples=99999 samples={h.SMALL_SAMPLES} output.plots=false"
    assert h.small("python scripts/x.py --samples 100000") == f"python scripts/x.py --samples {h.SMALL_SAMPLES}"
    assert h.small("yieldmc", exit_only=True) == \
        f"yieldmc samples={h.EXIT_ONLY_SAMPLES} engine.block_size={h.EXIT_ONLY_SAMPLES} output.plots=false"
    assert h.small("yieldmc samples=65536 engine.block_size=1024", exit_only=True) == \
        f"yieldmc samples={h.EXIT_ONLY_SAMPLES} engine.block_size=1024 output.plots=false"
    assert h.small("yieldmc samples=16384", exit_only=True) == "yieldmc samples=16384 output.plots=false"
    assert h.small("yieldmc-plot results/") == "yieldmc-plot results/"
    assert h.small("yieldmc mode=calibrate samples=4096") == \
        f"yieldmc mode=calibrate samples=4096 output.plots=false calibrate.bootstrap={h.SMALL_BOOTSTRAP}"
    assert h.small("yieldmc mode=calibrate calibrate.bootstrap=30 samples=4096") == \
        "yieldmc mode=calibrate calibrate.bootstrap=30 samples=4096 output.plots=false"


def test_compare_output_uses_binomial_intervals():
    doc = ["yield 0.6600  (95 % CI 0.6574 – 0.6626, 131072 modules, sampler mc)",
           "  cold  yield 0.7723   fails only here 0.0000",
           "worst channel: layer 0, channel 11 fails in 13.8245% of modules",
           "store: results/yield_pwg50_12ch_ae4948c4.zarr"]
    # within 4.5 standard errors of 16384 + 131072 modules (σ ≈ 0.0039 for the yield)
    close = ["yield 0.6700  (95 % CI 0.6628 – 0.6771, 16384 modules, sampler mc)",
             "  cold  yield 0.7800   fails only here 0.0002",
             "worst channel: layer 0, channel 0 fails in 13.5000% of modules",
             "store: results/yield_pwg50_12ch_0123abcd.zarr"]
    assert h.compare_output(doc, close, n_doc=131072, n_rerun=16384) == []
    far = list(close)
    far[0] = "yield 0.6900  (95 % CI 0.6828 – 0.6971, 16384 modules, sampler mc)"
    problems = h.compare_output(doc, far, n_doc=131072, n_rerun=16384)
    assert problems and all(p.endswith(doc[0]) for p in problems)  # the yield line only
    other = list(close)
    other[1] = "  hot   yield 0.7800   fails only here 0.0002"
    assert h.compare_output(doc, other, n_doc=131072, n_rerun=16384)
    assert h.compare_output(doc, close[:3], n_doc=131072, n_rerun=16384)
    assert h.compare_output(doc, close, n_doc=131072, n_rerun=131072)  # 16384 is not the count


def test_the_best_and_worst_realisation_index_is_not_compared_but_a_sweep_point_is():
    doc = ["  worst  0.5222 (95 % CI 0.5069 – 0.5375) at realization=3",
           "  worst  0.6012 (95 % CI 0.5940 – 0.6084) at process.dx_um.module.sigma=1.0"]
    now = ["  worst  0.5301 (95 % CI 0.5148 – 0.5453) at realization=26",
           "  worst  0.6012 (95 % CI 0.5940 – 0.6084) at process.dx_um.module.sigma=1.0"]
    assert h.compare_output(doc, now, n_doc=4096, n_rerun=4096) == []
    moved = now[:1] + ["  worst  0.6012 (95 % CI 0.5940 – 0.6084) at process.dx_um.module.sigma=0.5"]
    assert h.compare_output(doc, moved, n_doc=4096, n_rerun=4096)


def test_fractions_as_the_summaries_print_them():
    doc = ["  cold  yield 0.7792   fails only here 0.0000305",
           "worst channel: layer 0, channel 11 fails in 62.7 % of modules under hot",
           "| 25 | 1.163 | 0.6696 |"]
    close = ["  cold  yield 0.7800   fails only here 0",
             "worst channel: layer 0, channel 0 fails in 62.0 % of modules under hot",
             "| 25 | 1.163 | 0.6700 |"]
    assert h.compare_output(doc, close, n_doc=131072, n_rerun=16384) == []
    # a loss in dB (1.163) is compared exactly, never as a fraction of modules
    other = close[:2] + ["| 25 | 1.164 | 0.6700 |"]
    assert h.compare_output(doc, other, n_doc=131072, n_rerun=16384)
    far = close[:1] + ["worst channel: layer 0, channel 0 fails in 58.0 % of modules under hot"] + close[2:]
    assert h.compare_output(doc, far, n_doc=131072, n_rerun=16384)  # 4.7 % is ~12 standard errors


def test_compare_output_value_with_standard_error():
    doc = ["  process.dx_um.module.sigma = 0.8931 ± 0.16   (start 0.7)"]
    def compare(line):
        return h.compare_output(doc, [line], n_doc=None, n_rerun=None)

    assert compare("  process.dx_um.module.sigma = 1.5 ± 0.2   (start 0.7)") == []  # 0.61 < 4.5·0.26
    assert compare("  process.dx_um.module.sigma = 2.5 ± 0.2   (start 0.7)")
    assert compare("  process.dx_um.module.sigma = 0.8931 ± 0.16   (start 0.8)")


def test_delegated_block_must_be_in_the_named_file():
    ci = h.Block("x.md", 1, 3, "bash", "pip install -e '.[test]' && pytest   # the suite", "docs-test: .ci/run")
    assert h.delegated_problems(ci) == []
    other = h.Block("x.md", 1, 3, "bash", "yieldmc --multirun samples=7", "docs-test: .ci/run")
    assert h.delegated_problems(other) and "does not contain" in h.delegated_problems(other)[0]
    missing = h.Block("x.md", 1, 3, "bash", "pytest", "docs-test: tests/no_such_test.py")
    assert "names no file" in h.delegated_problems(missing)[0]


def test_transcript_steps():
    block = h.Block("x.md", 1, 9, "text", "$ yieldmc a=1 \\\n    b=2\nout 1\n\n$ yieldmc c=3\nout 2\n", "generated")
    steps = h.transcript(block)
    assert [s.command for s in steps] == ["yieldmc a=1 b=2", "yieldmc c=3"]
    assert [s.output for s in steps] == [["out 1"], ["out 2"]]
    assert re.search("scripts", h.resolve_scripts("python scripts/package_report.py")) and \
        str(h.ROOT) in h.resolve_scripts("python scripts/package_report.py")


def test_yieldmc_examples_copies_and_never_replaces_other_files(tmp_path, capsys):
    from yieldmc import examples

    target = tmp_path / "ex"
    assert examples.main([str(target)]) == 0
    for name in examples.NAMES:
        assert (target / name).read_bytes() == (h.ROOT / "yieldmc" / "examples" / name).read_bytes()
    assert capsys.readouterr().out.split() == [str(target / n) for n in examples.NAMES]
    assert examples.main([str(target)]) == 0  # the same files again: nothing to do
    (target / examples.NAMES[0]).write_text("module,layer,channel,loss_db\nmine,0,0,1.0\n")
    assert examples.main([str(target)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and examples.NAMES[0] in err
    assert (target / examples.NAMES[0]).read_text().startswith("module,layer,channel,loss_db\nmine")
    with pytest.raises(ValueError, match="no example file"):
        examples.path("nothing.csv")
