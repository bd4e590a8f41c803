"""The example data files that ship with yieldmc, usable from any directory.

``yieldmc-examples [DIR]`` copies them into ``DIR`` (default ``./examples``), so the
README's commands (``calibrate.data=examples/measured_modules.csv``,
``values_file=examples/placement_dx_um.csv``) work wherever they are typed. From Python,
:func:`path` gives the installed file itself.

* ``measured_modules.csv`` — 150 synthetic measured modules of the default package
  (columns ``module, layer, channel, loss_db``), written by
  ``scripts/make_example_measurements.py``.
* ``placement_dx_um.csv`` — 400 synthetic placement offsets (µm) of a two-bonder line,
  written by ``scripts/make_example_metrology.py``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DIRECTORY = Path(__file__).resolve().parent
NAMES = ("measured_modules.csv", "placement_dx_um.csv")


def path(name: str) -> Path:
    """The installed example file ``name`` (one of :data:`NAMES`).

    Args:
      name: file name, e.g. ``"measured_modules.csv"``.

    Returns:
      Its absolute path inside the installed package.

    Raises:
      ValueError: ``name`` is not an example file.
    """
    if name not in NAMES:
        raise ValueError(f"examples: no example file {name!r} (there are {', '.join(NAMES)})")
    return DIRECTORY / name


def copy_examples(*, target_dir: Path) -> list[Path]:
    """Copy every example file into ``target_dir`` (created if missing).

    A file already there with the same content is left as it is; a different file of the
    same name is never replaced (the user's data), which is an error.

    Args:
      target_dir: the directory to write into.

    Returns:
      The paths of the example files in ``target_dir``.

    Raises:
      ValueError: ``target_dir`` is not a directory, or holds a different file of an
        example's name.
    """
    target_dir = Path(target_dir)
    if target_dir.exists() and not target_dir.is_dir():
        raise ValueError(f"examples: {target_dir} exists and is not a directory")
    clashes = [target_dir / n for n in NAMES
               if (target_dir / n).exists() and (target_dir / n).read_bytes() != path(n).read_bytes()]
    if clashes:
        raise ValueError(f"examples: {clashes[0]} exists with other content; left untouched "
                         "(name another directory)")
    target_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in NAMES:
        out = target_dir / name
        if not out.exists():
            tmp = out.with_name(f".{name}.partial")
            tmp.write_bytes(path(name).read_bytes())
            tmp.replace(out)  # visible only when complete
        written.append(out)
    return written


def main(argv=None) -> int:
    """``yieldmc-examples [DIR]``: copy the example files into DIR; print their paths."""
    parser = argparse.ArgumentParser(
        prog="yieldmc-examples",
        description="Copy yieldmc's example data files into DIR (default ./examples).")
    parser.add_argument("dir", nargs="?", default="examples", help="target directory (default: examples)")
    args = parser.parse_args(argv)
    try:
        written = copy_examples(target_dir=Path(args.dir))
    except (ValueError, OSError) as exc:
        print(f"yieldmc-examples: error: {exc}", file=sys.stderr)
        return 2
    for out in written:
        print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
