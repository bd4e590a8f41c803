"""Regenerate every generated output block of README.md and docs/*.md from its commands.

    python scripts/make_docs.py                 # every document
    python scripts/make_docs.py README.md       # only these

A generated block is a ```text transcript preceded by ``<!-- generated -->`` (or
``<!-- generated: continues -->``, which goes on in the scratch directory of the generated
block before it). Its ``$ command`` lines are kept; each is run, in order, in one fresh
scratch directory outside the checkout, at the size it states (no small-size override),
and its stdout (the scratch directory's path left out) is written below it. A command
that fails stops the script (exit 1) and leaves the document unchanged.
tests/test_docs.py reruns the same commands at a small size and compares within the
numbers' intervals, so a changed default fails that test until this script is rerun.
The rules: tests/docs_harness.py. It needs nothing but the checkout and its installed
dependencies; on the shared 2-vCPU VM the whole run took about 8 minutes (README 6.5,
docs/physics.md 1.5; the calibration alone 2.3).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import docs_harness as h  # noqa: E402


def regenerate(path: Path, *, cache_dir: Path) -> int:
    """Rewrite the generated blocks of ``path``; return how many commands ran."""
    chains = h.generated_chains(h.parse_blocks(path))
    if not chains:
        return 0
    env = h.environment(cache_dir)
    bodies = []
    ran = 0
    for chain in chains:
        with tempfile.TemporaryDirectory(prefix="yieldmc-docs-") as tmp:
            cwd = Path(tmp)
            for block in chain:
                out = []
                for step in h.transcript(block):
                    result = h.run_command(step.command, cwd=cwd, env=env)
                    ran += 1
                    print(f"{block.where}: {result.seconds:6.1f} s  $ {step.command}", flush=True)
                    if result.returncode != 0:
                        sys.stderr.write(f"make_docs: {block.where}: `{step.command}` exited {result.returncode}\n"
                                         f"{result.stderr[-3000:]}")
                        raise SystemExit(1)
                    if out:
                        out.append("")
                    out += step.display + h.clean_output(result.stdout, cwd)
                bodies.append((_commands(block), out))
    # the document as it is now (it may have been edited meanwhile): same generated blocks
    now = [b for c in h.generated_chains(h.parse_blocks(path)) for b in c]
    if [_commands(b) for b in now] != [c for c, _ in bodies]:
        sys.stderr.write(f"make_docs: the generated blocks of {path} changed while it ran; rerun it\n")
        raise SystemExit(1)
    lines = path.read_text().splitlines()
    for block, (_, out) in sorted(zip(now, bodies), key=lambda pair: -pair[0].line):
        lines[block.line:block.end - 1] = out  # between the fences
    path.write_text("\n".join(lines) + "\n")
    return ran


def _commands(block: h.Block) -> list[str]:
    return [s.command for s in h.transcript(block)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("docs", nargs="*", type=Path, help="documents (default: README.md and docs/*.md)")
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in args.docs] or h.doc_files()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="yieldmc-docs-jax-") as cache:
        ran = sum(regenerate(p, cache_dir=Path(cache)) for p in paths)
    print(f"{ran} commands in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
