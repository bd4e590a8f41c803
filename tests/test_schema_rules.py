"""Each key's rule is stated once, in its schema row (:mod:`yieldmc.configuration.schema`).

The test reads every declared row (the couplers' and samplers' included) and every module
of the package, and fails where a module other than the schema restates a row: a
``.get("<key>", <its default>)``, a literal dict holding the defaults of two or more keys,
or an error message that repeats the row's bound (``"<key>: must be >= …"``) or its choices
(``"<key>: expected one of …"``), which the schema's own check already gives.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import yieldmc
from yieldmc.configuration import schema
from yieldmc.parts import NO_DEFAULT

PACKAGE = Path(yieldmc.__file__).parent
SCHEMA = PACKAGE / "configuration" / "schema.py"


def _rows():
    return [row for key in schema.all_keys() for row in schema._expand(key)]


def _literal(node):
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return NO_DEFAULT


def restatements(source: str, rows) -> list[str]:
    """Where ``source`` restates a default, a bound or the choices of one of ``rows``."""
    by_leaf: dict = {}
    for row in rows:
        if row.default is not NO_DEFAULT and row.default is not None:
            by_leaf.setdefault(row.path.rpartition(".")[2], []).append(row.default)
    # "<leaf>: <the row's own message>" (the leaf: a message may build the key's section
    # from a variable, f"{section}n_chip: must be > 0")
    messages = {f"{r.path.rpartition('.')[2]}: {schema._bounds_message(r.bounds)}" for r in rows if r.bounds}
    messages |= {f"{r.path.rpartition('.')[2]}: expected one of" for r in rows if r.choices}

    def is_default(leaf, node):
        value = _literal(node)
        return any(type(d) is type(value) and d == value for d in by_leaf.get(leaf, ()))

    found = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                and len(node.args) == 2 and isinstance(node.args[0], ast.Constant)
                and is_default(node.args[0].value, node.args[1])):
            found.append(f"line {node.lineno}: .get({node.args[0].value!r}, <its default>)")
        elif isinstance(node, ast.Dict):
            leaves = [k.value for k, v in zip(node.keys, node.values)
                      if isinstance(k, ast.Constant) and is_default(k.value, v)]
            if len(leaves) >= 2:
                found.append(f"line {node.lineno}: a dict of defaults {leaves}")
        elif isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            parts = node.values if isinstance(node, ast.JoinedStr) else [node]
            text = "".join(p.value if isinstance(p, ast.Constant) else "{}" for p in parts)
            for m in messages:
                at = text.find(m)
                if at >= 0 and (at == 0 or not (text[at - 1].isalnum() or text[at - 1] == "_")):
                    found.append(f"line {node.lineno}: a restated rule {text[:60]!r}")
                    break
    return found


def test_the_detector_finds_each_kind_of_restatement():
    rows = _rows()
    assert restatements('engine = dict(config.get("engine") or {}).get("block_size", 16384)', rows)
    assert restatements('DEFAULTS = {"estimator": "pathwise", "tau_db": 0.02}', rows)
    assert restatements('raise ValueError(f"engine.hist_bins: must be >= 1, got {x}")', rows)
    assert restatements('raise ValueError(f"engine.dtype: expected one of {D}, got {x!r}")', rows)
    assert not restatements('x = node.get("block_size", None); y = {"a": 1, "b": 2}', rows)
    assert restatements('raise ValueError(f"{prefix}n_chip: must be > 0, got {x!r}")', rows)
    assert not restatements('raise ValueError("engine.blocks_per_call: blocks_per_call x block_size")', rows)
    assert not restatements('raise ValueError(f"{p}.low: must not exceed high ({h!r}), got {x!r}")', rows)


@pytest.mark.parametrize("path", sorted(p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")
                                         if p != SCHEMA))
def test_no_module_restates_a_schema_row(path):
    found = restatements((PACKAGE / path).read_text(encoding="utf-8"), _rows())
    assert not found, f"yieldmc/{path} restates schema rows: {found}"
