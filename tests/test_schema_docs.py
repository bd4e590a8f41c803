"""The key table is generated once from yieldmc/schema.py: docs and --help agree with it."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from yieldmc import schema
from yieldmc.cli import _help_text

ROOT = Path(__file__).resolve().parent.parent


def _script():
    spec = importlib.util.spec_from_file_location("make_config_docs", ROOT / "scripts" / "make_config_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_docs_are_the_generated_table():
    assert (ROOT / "docs" / "configuration.md").read_text() == _script().render(), \
        "docs/configuration.md is stale: run python scripts/make_config_docs.py"


def test_help_and_docs_list_the_same_keys_with_the_same_defaults():
    docs = (ROOT / "docs" / "configuration.md").read_text()
    cells = [re.split(r"(?<!\\)\|", line)[1:-1] for line in docs.splitlines() if line.startswith("| `")]
    doc_rows = [(c[0].strip().strip("`"), c[4]) for c in cells]  # key, default
    help_text = _help_text()
    declared = [k.path for k in schema.all_keys()]
    assert [p for p, _ in doc_rows] == declared
    for path, default in doc_rows:
        default = default.strip()
        assert re.search(rf"^  {re.escape(path)}{'=' + re.escape(default) if default else ''}\s", help_text,
                         flags=re.M), (path, default)
