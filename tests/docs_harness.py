"""Documentation that runs: the commands and snippets of README.md and docs/*.md.

Used by tests/test_docs.py (runs them) and scripts/make_docs.py (writes the generated
output blocks). The rules, as the README's "Documentation tests" paragraph states them:

* A fenced ```bash block is a list of commands: lines joined at a trailing ``\\``,
  ``# comments`` dropped, ``pip install …`` lines (and ``pip install … &&`` prefixes) left
  out. The block's commands run in order, in one fresh scratch directory outside the
  checkout; each must exit 0, or N where the block is preceded by
  ``<!-- docs-test: exit=N -->``. ``python scripts/x.py`` names a script of the checkout
  and is run as ``python <checkout>/scripts/x.py``. A command of plain and quoted words
  naming a console script of this environment (``yieldmc …``) is run as bash would exec
  it, by a fork of a warm interpreter (tests/warm_process.py); any other line by bash.
* A fenced ```python block is written to a file in a fresh scratch directory and run
  with ``python``; it must exit 0.
* ``yieldmc`` commands get the small-size override: ``samples=N`` larger than
  :data:`SMALL_SAMPLES` becomes ``samples=16384``, a missing one is appended (in a bash
  block, whose commands are checked for their exit status alone, both become
  :data:`EXIT_ONLY_SAMPLES`, 4096, with ``engine.block_size=4096`` unless the command sets
  it, since the engine computes a partial block in full; a size of 16384 or less that a
  block states stays), and
  ``output.plots=false`` is appended unless the command sets ``output.plots``;
  ``--samples N`` of a script likewise. A command with uncertain inputs (``uncertain=``
  or ``uncertainty=``) that does not set ``uncertainty.realizations`` gets
  :data:`SMALL_REALIZATIONS` of them, and ``mode=calibrate`` without ``calibrate.bootstrap``
  refits :data:`SMALL_BOOTSTRAP` bootstrap samples (the printed errors are compared within
  4.5 combined errors, which a smaller bootstrap widens, not biases).
* ``<!-- docs-test: PATH -->`` before a block (PATH relative to the checkout, e.g.
  ``tests/test_cluster.py``): that file runs the block; the harness checks that it
  contains every command (or the snippet) verbatim, whitespace runs counted as one
  (a command line with its ``pip install`` parts left out will do).
  ``<!-- docs-test: lead -->``: a block awaiting a change the lead merges (not run).
* ``<!-- generated -->`` before a ```text block: a transcript. Its ``$ command`` lines
  are run in order in one scratch directory and the output below each is what
  scripts/make_docs.py pasted from that command at the size shown.
  ``<!-- generated: continues -->`` goes on in the scratch directory of the generated
  block before it in the same file. The test reruns the commands with the small-size
  override and compares: the text with its numbers masked must be the same, fractions
  of modules (4 decimals, or a percentage) must agree within 4.5 combined binomial
  standard errors, ``value ± se`` within 4.5 combined errors, sample counts must be
  the commands' ``samples``, p-values, timings, the worst channel's indices, the index of
  the best and worst realisation of uncertain inputs and the
  ``plot:`` lines (the test runs without plots) are not compared, and every other number
  must be equal.
* ```text blocks without a marker and unlabelled fences are output or records, not run.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import warm_process

ROOT = Path(__file__).resolve().parent.parent
SMALL_SAMPLES = 16384
EXIT_ONLY_SAMPLES = 4096  # a bash block's commands: the size does not enter their check
SMALL_REALIZATIONS = 8
SMALL_BOOTSTRAP = 5
Z_TOLERANCE = 4.5  # combined standard errors
COMMAND_TIMEOUT_S = 900

_MARKER = re.compile(r"^\s*<!--\s*(docs-test|generated)\s*(?::\s*(.*?))?\s*-->\s*$")
_FENCE = re.compile(r"^(\s*)```\s*([A-Za-z0-9_+-]*)\s*$")
_INDENTED_COMMAND = re.compile(r"^ {4,}(\$ )?(yieldmc\b|yieldmc-|python |pip |pytest\b)")


def doc_files() -> list[Path]:
    """README.md and every docs/*.md that exists now."""
    return [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))


@dataclass(frozen=True)
class Block:
    """One fenced block of a document."""

    doc: str  # path relative to the checkout
    line: int  # 1-based line of the opening fence
    end: int  # 1-based line of the closing fence
    lang: str
    body: str
    marker: str | None = None  # "docs-test: …" text or "generated[: continues]"

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"

    @property
    def generated(self) -> bool:
        return self.marker is not None and self.marker.startswith("generated")

    @property
    def continues(self) -> bool:
        return self.marker == "generated: continues"

    @property
    def docs_test(self) -> str | None:
        """The argument of a ``docs-test:`` marker, or None."""
        if self.marker and self.marker.startswith("docs-test:"):
            return self.marker.split(":", 1)[1].strip()
        return None

    @property
    def expected_exit(self) -> int:
        arg = self.docs_test or ""
        return int(arg.split("=", 1)[1]) if arg.startswith("exit=") else 0


def parse_blocks(path: Path) -> list[Block]:
    """Every fenced block of ``path`` with the marker comment just before it (blank lines
    between them allowed)."""
    lines = path.read_text().splitlines()
    rel = str(path.relative_to(ROOT))
    blocks, marker, i = [], None, 0
    while i < len(lines):
        m = _MARKER.match(lines[i])
        if m:
            marker = m.group(1) + (f": {m.group(2)}" if m.group(2) else "")
            i += 1
            continue
        f = _FENCE.match(lines[i])
        if f:
            start, lang = i, f.group(2).lower()
            i += 1
            while i < len(lines) and not re.match(r"^\s*```\s*$", lines[i]):
                i += 1
            if i == len(lines):
                raise ValueError(f"{rel}:{start + 1}: unclosed code fence")
            indent = len(f.group(1))
            body = "\n".join(line[indent:] if line[:indent].isspace() else line for line in lines[start + 1:i])
            blocks.append(Block(rel, start + 1, i + 1, lang, body, marker))
            marker = None
        elif lines[i].strip():
            marker = None  # a marker applies to the next block only
        i += 1
    return blocks


def indented_commands(path: Path) -> list[str]:
    """Commands written as indented code outside any fence (they would escape the test)."""
    out, in_fence = [], False
    for k, line in enumerate(path.read_text().splitlines(), 1):
        if re.match(r"^\s*```", line):
            in_fence = not in_fence
        elif not in_fence and _INDENTED_COMMAND.match(line):
            out.append(f"{path.relative_to(ROOT)}:{k}: {line.strip()}")
    return out


def _strip_comment(line: str) -> str:
    """``line`` without a shell ``# comment`` (a ``#`` outside quotes that starts a word)."""
    quote = None
    for k, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (k == 0 or line[k - 1].isspace()):
            return line[:k].rstrip()
    return line.rstrip()


def split_and(command: str) -> list[str]:
    """``a && b`` → [a, b], ``&&`` inside quotes kept."""
    parts, quote, start, k = [], None, 0, 0
    while k < len(command):
        ch = command[k]
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif command.startswith("&&", k):
            parts.append(command[start:k].strip())
            start, k = k + 2, k + 1
        k += 1
    parts.append(command[start:].strip())
    return parts


def join_lines(text: str) -> list[str]:
    """Logical command lines: ``\\`` continuations joined, comments and blanks dropped."""
    out, current = [], ""
    for raw in text.splitlines():
        line = _strip_comment(raw)
        if line.endswith("\\"):
            current += line[:-1].strip() + " "
            continue
        current += line.strip()
        if current.strip():
            out.append(" ".join(current.split()))
        current = ""
    if current.strip():
        out.append(" ".join(current.split()))
    return out


def bash_commands(block: Block) -> list[str]:
    """The commands a ```bash block runs (``pip install`` parts left out)."""
    commands = []
    for line in join_lines(block.body):
        kept = [p for p in split_and(line) if not p.startswith("pip install")]
        if kept:
            commands.append(" && ".join(kept))
    return commands


def delegated_problems(block: Block) -> list[str]:
    """What the test named by ``<!-- docs-test: PATH -->`` lacks of ``block``'s commands."""
    target = ROOT / block.docs_test
    if not target.is_file():
        return [f"{block.where}: 'docs-test: {block.docs_test}' names no file of the checkout"]
    text = " ".join(target.read_text().split())
    if block.lang == "python":
        snippet = " ".join(block.body.split())
        return [] if snippet in text else [f"{block.where}: {block.docs_test} does not contain the snippet"]
    problems = []
    for line in join_lines(block.body):
        # the whole line, or the line without its `pip install` parts (which no test runs)
        short = " && ".join(p for p in split_and(line) if not p.startswith("pip install"))
        if line not in text and short and short not in text:
            problems.append(f"{block.where}: {block.docs_test} does not contain {line!r}")
    return problems


def _samples_in(command: str) -> int | None:
    m = re.search(r"(?:^|\s)'?samples=(\d+)", command) or re.search(r"--samples[ =](\d+)", command)
    return int(m.group(1)) if m else None


def default_samples() -> int:
    """The default of ``samples`` (its schema row): what a yieldmc command without
    ``samples=`` runs."""
    from yieldmc.configuration import schema

    return schema.lookup({}, "samples").default


def modules_of(command: str) -> int | None:
    """How many modules a yieldmc command or a ``--samples`` script samples; None if neither."""
    n = _samples_in(command)
    if n is None and command.split()[:1] == ["yieldmc"]:
        return default_samples()
    return n


def small(command: str, *, exit_only: bool = False) -> str:
    """``command`` with the documented small-size override (``exit_only``: for a bash block,
    whose commands are checked for their exit status alone: :data:`EXIT_ONLY_SAMPLES`)."""
    words = command.split()
    if not words:
        return command
    if words[0] == "yieldmc":
        n = _samples_in(command)
        size = EXIT_ONLY_SAMPLES if exit_only else SMALL_SAMPLES
        if n is None:
            command += f" samples={size}"
        elif n > SMALL_SAMPLES:
            command = re.sub(r"(^|\s)('?)samples=\d+", rf"\g<1>\g<2>samples={size}", command)
        if exit_only and (n is None or n > SMALL_SAMPLES) and "engine.block_size=" not in command:
            command += f" engine.block_size={size}"  # a partial block costs a whole one
        if "output.plots=" not in command:
            command += " output.plots=false"
        if re.search(r"(^|\s)'?(uncertain=|uncertainty=)", command) and "uncertainty.realizations=" not in command:
            command += f" uncertainty.realizations={SMALL_REALIZATIONS}"
        if re.search(r"(^|\s)mode=calibrate(\s|$)", command) and "calibrate.bootstrap=" not in command:
            command += f" calibrate.bootstrap={SMALL_BOOTSTRAP}"
    elif words[0] == "python" and "--samples" in command:
        n = _samples_in(command)
        if n is not None and n > SMALL_SAMPLES:
            command = re.sub(r"--samples([ =])\d+", rf"--samples\g<1>{SMALL_SAMPLES}", command)
    return command


def resolve_scripts(command: str) -> str:
    """``python scripts/x.py`` → ``python <checkout>/scripts/x.py`` (scripts are not installed)."""
    return re.sub(r"(^|\s)python (scripts/\S+\.py)",
                  lambda m: f"{m.group(1)}python {shlex.quote(str(ROOT / m.group(2)))}", command)


def environment(cache_dir: Path | None) -> dict:
    """The environment of a documented command: this checkout's yieldmc first on the
    path, the current interpreter's scripts first on PATH, and a persistent JAX
    compilation cache shared by the commands of one test session."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("JAX_PLATFORMS", "cpu")
    env.pop("YIELDMC_PLUGINS", None)
    if cache_dir is not None:
        env["JAX_COMPILATION_CACHE_DIR"] = str(cache_dir)
        env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
        env["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "-1"
    return env


@dataclass
class Result:
    command: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def run_command(command: str, *, cwd: Path, env: dict) -> Result:
    """Run one command line with bash in ``cwd``; a ``yieldmc …`` line of plain words is
    exec'd as bash would, by a fork of a warm interpreter (tests/warm_process.py)."""
    t0 = time.perf_counter()
    proc = warm_process.run(resolve_scripts(command), cwd=cwd, env=env, timeout=COMMAND_TIMEOUT_S,
                            shell_line=True)
    return Result(command, proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - t0)


def run_python(snippet: str, *, cwd: Path, env: dict) -> Result:
    """Run a Python snippet as a file in ``cwd``."""
    script = cwd / "snippet.py"
    script.write_text(snippet + "\n")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(script)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=COMMAND_TIMEOUT_S)
    return Result("python snippet.py", proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - t0)


# --- generated transcripts -------------------------------------------------------------


@dataclass
class Step:
    """One ``$ command`` of a transcript and the output below it."""

    display: list[str]  # the command as shown (with its continuation lines)
    output: list[str] = field(default_factory=list)

    @property
    def command(self) -> str:
        return join_lines("\n".join(line.removeprefix("$ ") for line in self.display))[0]


def transcript(block: Block) -> list[Step]:
    """The steps of a generated ```text block."""
    steps, lines, k = [], block.body.splitlines(), 0
    while k < len(lines):
        line = lines[k]
        if line.startswith("$ "):
            display = [line]
            while display[-1].rstrip().endswith("\\") and k + 1 < len(lines):
                k += 1
                display.append(lines[k])
            steps.append(Step(display))
        elif steps:
            steps[-1].output.append(line)
        elif line.strip():
            raise ValueError(f"{block.where}: a generated block starts with a '$ command' line")
        k += 1
    if not steps:
        raise ValueError(f"{block.where}: a generated block has no '$ command' line")
    for s in steps:  # one blank line separates steps; it is not output
        while s.output and not s.output[-1].strip():
            s.output.pop()
    return steps


def generated_chains(blocks: list[Block]) -> list[list[Block]]:
    """Generated blocks grouped: a block and the ``continues`` blocks after it."""
    chains = []
    for b in blocks:
        if not b.generated:
            continue
        if b.lang != "text":
            raise ValueError(f"{b.where}: a generated block is a ```text block")
        if b.continues:
            if not chains or chains[-1][0].doc != b.doc:
                raise ValueError(f"{b.where}: 'generated: continues' with no generated block before it")
            chains[-1].append(b)
        else:
            chains.append([b])
    return chains


def clean_output(stdout: str, cwd: Path) -> list[str]:
    """A command's stdout as the docs show it: the scratch directory's path left out."""
    text = stdout.replace(str(cwd) + os.sep, "").replace(str(cwd), ".")
    real = str(Path(cwd).resolve())
    text = text.replace(real + os.sep, "").replace(real, ".")
    return text.rstrip("\n").splitlines()


# --- comparing a transcript with a rerun ---------------------------------------------

_NUMBER = re.compile(r"(?<![A-Za-z_0-9.])[-−]?\d+(?:\.\d+)?(?:e[-+]?\d+)?%?(?![A-Za-z_0-9])")
_HASH = re.compile(r"_[0-9a-f]{8}(?=\.zarr|_)")
_SKIP_BEFORE = ("p-value ", "layer ", "channel ", "realization=")  # p-values, argmax indices of random draws
_SKIP_AFTER = (" s for", " s)", " s,")


def _tokens(line: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group()) for m in _NUMBER.finditer(line)]


def _value(token: str) -> float:
    return float(token.replace("−", "-").rstrip("%"))


_UNIT_AFTER = re.compile(r"\s*(dB|µm|um|nm|mrad|rad|ppm|°C|K|/)")


def _is_fraction(doc: str, now: str, after: str) -> bool:
    """Whether a number is a fraction of modules as the summaries print it: a yield or a
    fraction (``0.1383``, ``0.0000305``, ``0`` where the other run printed a decimal), or a
    percentage (``62.7 %``, ``62.7106%``). A number with a unit after it is not one."""
    if after.startswith(" %") or doc.endswith("%"):
        return True
    if _UNIT_AFTER.match(after):
        return False
    shape = r"[01]|0\.\d{3,}|1\.0{3,}"  # in [0, 1]: a loss of 1.042 dB in a table is no fraction
    return bool(re.fullmatch(shape, doc) and re.fullmatch(shape, now) and ("." in doc or "." in now))


def _binomial_tolerance(a: float, n_a: int, b: float, n_b: int) -> float:
    """4.5 combined standard errors of two fractions of n_a and n_b modules (Agresti–Coull
    centre, so a fraction of 0 still has an error), plus the rounding of 4 decimals."""
    var = 0.0
    for p, n in ((a, n_a), (b, n_b)):
        q = (p * n + 2.0) / (n + 4.0)
        var += q * (1.0 - q) / n
    return Z_TOLERANCE * math.sqrt(var) + 1e-4


def _compared(lines: list[str]) -> list[str]:
    """The lines compared: not the ``plot:`` lines (the test runs without plots)."""
    return [line for line in lines if not line.startswith("plot:")]


def compare_output(doc: list[str], rerun: list[str], *, n_doc: int | None, n_rerun: int | None) -> list[str]:
    """Where ``rerun`` (the command at the small size) disagrees with ``doc`` (the pasted
    output); empty when they agree within their intervals."""
    problems = []
    doc, rerun = _compared(doc), _compared(rerun)
    if len(doc) != len(rerun):
        return [f"{len(doc)} lines documented, {len(rerun)} printed now:\n  doc: " + "\n  doc: ".join(doc)
                + "\n  now: " + "\n  now: ".join(rerun)]
    for d_line, r_line in zip(doc, rerun):
        d_line, r_line = _HASH.sub("_<hash>", d_line), _HASH.sub("_<hash>", r_line)
        d_tok, r_tok = _tokens(d_line), _tokens(r_line)
        if _NUMBER.sub("#", d_line).split() != _NUMBER.sub("#", r_line).split():
            problems.append(f"text differs:\n  doc: {d_line}\n  now: {r_line}")
            continue
        skip = set()
        for k, (s, e, tok) in enumerate(d_tok):
            before, after = d_line[:s], d_line[e:]
            if k in skip:
                continue
            a, b = _value(tok), _value(r_tok[k][2])
            if after.startswith(" ± ") and k + 1 < len(d_tok):  # value ± standard error
                se_a, se_b = _value(d_tok[k + 1][2]), _value(r_tok[k + 1][2])
                skip.add(k + 1)
                if abs(a - b) > Z_TOLERANCE * math.hypot(se_a, se_b) + 1e-12:
                    problems.append(f"{tok} ± {d_tok[k + 1][2]} documented, {r_tok[k][2]} ± {r_tok[k + 1][2]} "
                                    f"now: {d_line.strip()}")
                continue
            if before.endswith(_SKIP_BEFORE) or after.startswith(_SKIP_AFTER):
                continue
            if n_doc is not None and n_rerun is not None and tok == str(n_doc) and r_tok[k][2] == str(n_rerun):
                continue  # the sample count of each run
            if _is_fraction(tok, r_tok[k][2], after) and n_doc and n_rerun:
                percent = tok.endswith("%") or after.startswith(" %")
                pa, pb = (a / 100, b / 100) if percent else (a, b)
                if 0.0 <= pa <= 1.0 and abs(pa - pb) <= _binomial_tolerance(pa, n_doc, pb, n_rerun):
                    continue
                problems.append(f"{tok} documented ({n_doc} modules), {r_tok[k][2]} now ({n_rerun} modules), "
                                f"more than {Z_TOLERANCE} standard errors apart: {d_line.strip()}")
                continue
            if tok != r_tok[k][2]:
                problems.append(f"{tok} documented, {r_tok[k][2]} now: {d_line.strip()}")
    return problems
