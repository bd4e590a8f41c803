"""The key table is generated once from the schema: docs and --help agree with it.

Both are rendered in fresh processes, as a user gets them: a test that registered a toy
coupler or sampler in this process must not leak into the comparison.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, JAX_PLATFORMS="cpu")
ENV.pop("YIELDMC_PLUGINS", None)


def _run(*args):
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.slow
def test_committed_docs_are_the_generated_table_and_help_agrees():
    docs = (ROOT / "docs" / "configuration.md").read_text()
    assert docs == _run("scripts/make_config_docs.py", "--stdout"), \
        "docs/configuration.md is stale: run python scripts/make_config_docs.py"
    cells = [re.split(r"(?<!\\)\|", line)[1:-1] for line in docs.splitlines() if line.startswith("| `")]
    rows = [(c[0].strip().strip("`"), c[4].strip()) for c in cells]  # key, default
    assert len(rows) > 60 and rows[0][0] == "samples"
    help_text = _run("-m", "yieldmc", "--help")
    help_rows = re.findall(r"^  (\S+?)(?:=(\S*))?\s{2,}\S", help_text.split("Configuration keys")[1], flags=re.M)
    assert [(k, d) for k, d in help_rows if "." in k or k.isidentifier()][:len(rows)] == rows
