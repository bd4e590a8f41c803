"""The extension recipes of docs/architecture.md, done for real.

Each test applies its recipe to a copy of the package (the files the recipe names, and no
others), runs the copy in a fresh interpreter and checks the new part against a closed
form. The output-variable recipe has its own test beside the statistics table, and the
plugin sampler with a setting is ``tests/test_sampler_registry.py`` (one file, loaded with
``YIELDMC_PLUGINS``).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from yieldmc import validation

ROOT = Path(__file__).resolve().parent.parent


def _copy_of_the_package(tmp_path: Path) -> Path:
    for name in ("yieldmc", "conf"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, (path, old)
    path.write_text(text.replace(old, new), encoding="utf-8")


def _changed(copy: Path) -> list[str]:
    """The files of the copy that differ from the checkout's."""
    out = []
    for name in ("yieldmc", "conf"):
        for f in sorted((copy / name).rglob("*")):
            if f.is_file() and "__pycache__" not in f.parts:
                original = ROOT / f.relative_to(copy)
                if not original.is_file() or original.read_bytes() != f.read_bytes():
                    out.append(f.relative_to(copy).as_posix())
    return out


@pytest.mark.slow
def test_a_new_varied_quantity_is_an_entry_and_its_physics(tmp_path):
    """Recipe "a varied quantity": an entry appended to ``quantities.CATALOGUE`` and the
    line of the model where it enters (here a second lateral offset, ``dx2_um``, added to
    ``dx``): two files. Its configuration keys, defaults, random stream and checks follow.
    A module-level ``dx2_um`` of sigma σ then gives the closed-form yield of a shared
    lateral offset (validation.module_offset), within 4.5 binomial standard errors."""
    copy = _copy_of_the_package(tmp_path)
    _edit(copy / "yieldmc/engine/quantities.py", "\n)\n",
          '\n    Quantity("dx2_um", "µm", "process", None, "model.waveguide_offsets (lateral offset)",\n'
          '             "a second lateral placement error (recipe test)"),\n)\n')
    _edit(copy / "yieldmc/engine/model.py", 'dx = values["dx_um"] + ', 'dx = values["dx_um"] + values["dx2_um"] + ')
    assert len(_changed(copy)) <= 3 and _changed(copy) == ["yieldmc/engine/model.py", "yieldmc/engine/quantities.py"]

    problem = validation.module_offset(sigma_um=1.2)
    n = 32768
    overrides = [o.replace("process.dx_um.", "process.dx2_um.") for o in problem.overrides]
    assert any("dx2_um" in o for o in overrides)
    script = (
        "import json, sys, yieldmc\n"
        "from yieldmc.configuration import schema\n"
        "assert schema.declared('process.dx2_um.channel.values_file')\n"
        f"ds = yieldmc.run(yieldmc.compose({[*overrides, f'samples={n}', 'engine.block_size=8192']!r}))\n"
        "print(json.dumps({'file': yieldmc.__file__, 'yield': float(ds['yield'])}))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(copy), JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert Path(out["file"]).is_relative_to(copy)
    truth = problem.expected_yield
    assert abs(out["yield"] - truth) <= 4.5 * math.sqrt(truth * (1 - truth) / n), (out["yield"], truth)
