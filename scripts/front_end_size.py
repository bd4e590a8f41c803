"""Lines of the configuration front end, now or at a git revision.

    python scripts/front_end_size.py            # the working tree
    python scripts/front_end_size.py 178ca0d    # a revision (git show)

The front end: the schema, the parse (problem building, conditions, empirical tables), the
job's sections and the samplers' ``configure``, wherever they live at that revision, and
the YAML that held defaults (conf/config.yaml, conf/process/none.yaml). Prints the lines of
each file, the total and the code lines (no docstrings, comments or blank lines).
"""

from __future__ import annotations

import ast
import io
import subprocess
import sys
import tokenize

FILES = ["yieldmc/engine/schema.py", "yieldmc/engine/problem.py", "yieldmc/job.py", "yieldmc/engine/conditions.py",
         "yieldmc/engine/variation.py", "yieldmc/engine/empirical.py", "yieldmc/engine/distributions.py",
         "yieldmc/configuration/__init__.py", "yieldmc/configuration/schema.py", "yieldmc/configuration/parse.py",
         "yieldmc/configuration/tree.py", "yieldmc/configuration/conditions.py"]
YAML = ["conf/config.yaml", "conf/process/none.yaml"]
SAMPLERS = ["yieldmc/samplers/base.py", "yieldmc/samplers/qmc.py", "yieldmc/samplers/importance.py"]


def read(path: str, rev: str | None):
    if rev is None:
        try:
            with open(path, encoding="utf-8") as f:
                return f.read()
        except FileNotFoundError:
            return None
    out = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True)
    return out.stdout if out.returncode == 0 else None


def code_lines(source: str) -> int:
    docs = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant) \
                    and isinstance(first.value.value, str):
                docs.update(range(first.lineno, first.end_lineno + 1))
    lines = set()
    skip = (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER)
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type not in skip:
            lines.update(n for n in range(tok.start[0], tok.end[0] + 1) if n not in docs)
    return len(lines)


def main() -> None:
    rev = sys.argv[1] if len(sys.argv) > 1 else None
    total = code = 0
    for path in FILES + YAML:
        text = read(path, rev)
        if text is not None:
            n = len(text.splitlines())
            total += n
            code += code_lines(text) if path.endswith(".py") else n
            print(f"{n:5d}  {path}")
    for path in SAMPLERS:
        text = read(path, rev)
        for node in ast.walk(ast.parse(text or "")):
            if isinstance(node, ast.FunctionDef) and node.name == "configure":
                n = node.end_lineno - node.lineno + 1
                total, code = total + n, code + n
                print(f"{n:5d}  {path}: configure")
    print(f"{total:5d}  lines in all; {code} code lines (no docstrings, comments, blank lines)")


if __name__ == "__main__":
    main()
