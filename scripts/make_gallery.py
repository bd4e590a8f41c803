"""Make docs/gallery/: run the commands of docs/gallery.md and check the PNGs it shows.

The commands are the docs' own (README.md, docs/*.md) with a small-run override
(``samples=…``, ``output.dir=docs/gallery``, ``output.name=…``; ``overwrite=true`` where a
mode refuses to replace its earlier store; fewer steps: ``optimize.steps=…``,
``calibrate.steps=…``, ``calibrate.bootstrap=…``), each in a ```bash block of
docs/gallery.md right above the images it makes. This script

1. checks that each ``yieldmc`` command, with those override words removed, is a command
   of README.md or docs/*.md (so the gallery shows what the documented commands draw);
2. runs every line of every ```bash block from the repository root (stops at the first
   failure);
3. checks that every image docs/gallery.md shows exists, was written by yieldmc (its PNG
   marker) and is small (a warning above 100 kB).

    python scripts/make_gallery.py            # run and check
    python scripts/make_gallery.py --check    # only steps 1 and 3
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GALLERY = ROOT / "docs" / "gallery.md"
OVERRIDES = ("samples=", "output.dir=", "output.name=", "overwrite=", "calibrate.steps=", "calibrate.bootstrap=",
             "optimize.steps=")
MAX_KB = 100


def commands(text: str) -> list[tuple[str, int]]:
    """``(command, expected exit code)`` of every non-comment line of every ```bash block, in
    order; a block after ``<!-- docs-test: exit=N -->`` is expected to exit with N."""
    out = []
    for marker, block in re.findall(r"(?:<!-- docs-test: exit=(\d+) -->\n)?```bash\n(.*?)```", text, re.S):
        out += [(line.strip(), int(marker or 0)) for line in block.splitlines()
                if line.strip() and not line.strip().startswith("#")]
    return out


def normalised(command: str) -> str:
    """A shell command's words, without the override words, one space apart."""
    try:
        words = shlex.split(command)
    except ValueError:
        return command.strip()
    return " ".join(w for w in words if not w.startswith(OVERRIDES))


def documented_commands() -> set[str]:
    """Every ``yieldmc`` command line of README.md and docs/*.md (continuations joined,
    prompts and trailing comments removed), :func:`normalised`."""
    paths = [ROOT / "README.md"] + sorted(p for p in (ROOT / "docs").glob("*.md") if p != GALLERY)
    out = set()
    for p in paths:
        text = re.sub(r"\\\n\s*", " ", p.read_text(encoding="utf-8"))  # join continued shell lines
        lines = text.splitlines() + re.findall(r"`(yieldmc[^`]*)`", text)  # code blocks, inline code
        for line in lines:
            for code in line.strip().removeprefix("$ ").split("  #")[0].split("&&"):
                code = code.strip()
                if code == "yieldmc" or code.startswith("yieldmc "):
                    out.add(normalised(code))
    return out


def main(argv=None) -> int:
    sys.path.insert(0, str(ROOT))
    from yieldmc.io.plots import is_yieldmc_png

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="do not run the commands, only check")
    args = parser.parse_args(argv)
    text = GALLERY.read_text(encoding="utf-8")
    docs = documented_commands()
    cmds = commands(text)
    bad = [c for c, _ in cmds if c.split()[0] == "yieldmc" and normalised(c) not in docs]
    for c in bad:
        print(f"not a documented command (without {', '.join(OVERRIDES)}): {c}", file=sys.stderr)
    if bad:
        return 1
    if not args.check:
        for c, expected in cmds:
            t0 = time.perf_counter()
            print(f"$ {c}", flush=True)
            r = subprocess.run(c, shell=True, cwd=ROOT, executable="/bin/bash")
            if r.returncode != expected:
                print(f"failed (exit {r.returncode}): {c}", file=sys.stderr)
                return 1
            print(f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
    status = 0
    for rel in re.findall(r"!\[[^\]]*\]\((gallery/[^)]+\.png)\)", text):
        path = ROOT / "docs" / rel
        if not path.exists() or not is_yieldmc_png(path):
            print(f"missing or not a yieldmc PNG: {path}", file=sys.stderr)
            status = 1
            continue
        kb = path.stat().st_size / 1024
        print(f"{rel}: {kb:.0f} kB" + (f"  (over {MAX_KB} kB)" if kb > MAX_KB else ""))
    return status


if __name__ == "__main__":
    sys.exit(main())
