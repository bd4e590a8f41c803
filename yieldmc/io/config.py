"""Configuration: compose the Hydra config from ``conf/`` and turn it into a Problem.

This module is the edge where Hydra/OmegaConf live; everything it hands on is a plain
``dict`` or a frozen :class:`yieldmc.engine.problem.Problem`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: ``yieldmc --help`` needs CONF_DIR alone
    from omegaconf import DictConfig

    from yieldmc.engine.problem import Problem

#: The configuration directory shipped with the project.
CONF_DIR = Path(__file__).resolve().parent.parent.parent / "conf"


def compose(overrides: Sequence[str] = (), *, check: bool = True) -> DictConfig:
    """The configuration the command line would build from ``conf/`` with ``overrides``.

    Args:
      overrides: Hydra override strings, e.g. ``["package=pwg18_32ch", "samples=10000"]``.
      check: check every key against the schema now (False: the configuration exactly
        as Hydra composed it, e.g. to edit it before :func:`yieldmc.job.parse_job` checks it).

    Returns:
      The composed ``DictConfig`` (struct mode: unknown keys are errors).

    Raises:
      ValueError: for an override Hydra rejects (unknown key, bad syntax), with Hydra's
        message, which names the key; for a key the schema does not declare, a value of
        the wrong type or out of its bounds (:func:`yieldmc.configuration.parse.check_declared`),
        naming the key. Relations between keys and every sweep point are checked by
        :func:`yieldmc.job.parse_job`.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from yieldmc.plugins import load_plugins

    load_plugins()  # parts registered from outside, and their config group options
    overrides = [*overrides, *local_search_path(overrides)]
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
            cfg = hydra_compose(config_name="config", overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as exc:
        raise ValueError(" ".join(str(exc).split())) from None
    from yieldmc.configuration.parse import check_declared

    if check:
        check_declared(to_container(cfg))  # type and range errors at compose time
    return cfg


def local_search_path(overrides: Sequence[str] = ()) -> list[str]:
    """``hydra.searchpath=[file://<cwd>/conf]`` when the starting directory has a ``conf/``
    of its own (where ``mode=calibrate`` writes ``process/<name>.yaml``), so that
    ``process=<name>`` finds it; nothing when the user sets the search path or ``conf/``
    is the package's own."""
    local = Path.cwd() / "conf"
    if (not local.is_dir() or local.resolve() == CONF_DIR.resolve()
            or any(o.lstrip("+").startswith("hydra.searchpath") for o in overrides)):
        return []
    return [f"hydra.searchpath=[file://{local.resolve()}]"]


def to_container(cfg) -> dict:
    """A resolved plain ``dict`` from a DictConfig or mapping (the Hydra node dropped).

    The copy is plain Python all the way down (:func:`yieldmc.configuration.schema.plain`): numpy
    scalars (``np.float64``, ``np.int64``, ``np.bool_``) become ``float``/``int``/``bool``,
    also inside lists; numpy arrays and tuples become lists; a float with an integral
    value at a key declared ``int`` in :mod:`yieldmc.configuration.schema` (``samples=1e6``) becomes that
    ``int``, and an ``int`` at a key declared ``float`` (``spec.max_loss_db=2``), in a
    ``list[float]`` or the correlation matrix, in a ``sweep`` value list, an
    ``optimize.costs`` value or an ``optimize.parameters`` bound becomes a ``float``
    (:func:`yieldmc.configuration.schema.integral_floats`; bools stay bools), so that the spelling of a
    number does not change the store identity. Nothing is validated here
    (:func:`yieldmc.build_problem` does that).

    Raises:
      ValueError: ``cfg`` is not a mapping, or an interpolation does not resolve.
    """
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from yieldmc.configuration.schema import integral_floats, integral_ints, plain

    if isinstance(cfg, DictConfig):
        try:
            cfg = OmegaConf.to_container(cfg, resolve=True)
        except OmegaConfBaseException as exc:
            raise ValueError(" ".join(str(exc).split())) from None
    if not isinstance(cfg, Mapping):
        raise ValueError(f"config: expected a mapping, got {type(cfg).__name__}")
    cfg = integral_floats(integral_ints(plain(cfg)))
    cfg.pop("hydra", None)
    return cfg


def check_output_dir(directory: str, base: Path | None = None) -> None:
    """Refuse an ``output.dir`` that can be neither used nor created, without creating anything.

    Walks up from the directory (relative to ``base``; default: Hydra's runtime cwd, else
    the current directory) to the nearest existing path, which must be a directory that we
    may write and enter (``os.access(W_OK | X_OK)``; a read-only file system fails too) and
    that is not on a kernel file system such as ``/proc`` (where root's ``os.access`` says yes).

    Raises:
      ValueError: ``output.dir: <what is wrong>, got <value>``.
    """
    import os

    if "\0" in directory:
        raise ValueError(f"output.dir: contains a NUL byte, got {directory!r}")
    if base is None:
        from hydra.core.hydra_config import HydraConfig

        base = Path(HydraConfig.get().runtime.cwd) if HydraConfig.initialized() else Path.cwd()
    target = Path(directory)
    if not target.is_absolute():
        target = Path(base) / target
    probe = target
    while not os.path.lexists(probe) and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise ValueError(f"output.dir: {probe} is not a directory, got {directory!r}")
    if not os.access(probe, os.W_OK | os.X_OK):
        what = "is not writable" if probe == target else f"cannot be created ({probe} is not writable)"
        raise ValueError(f"output.dir: {target} {what}, got {directory!r}")
    fs = _file_system_type(probe)
    if fs in _VIRTUAL_FILE_SYSTEMS:  # os.access says yes to root even there
        raise ValueError(f"output.dir: {probe} is on a {fs} file system, which holds no files, got {directory!r}")


#: Kernel file systems that hold no user files (root's os.access still says "writable").
_VIRTUAL_FILE_SYSTEMS = frozenset({
    "proc", "sysfs", "cgroup", "cgroup2", "devpts", "securityfs", "debugfs", "tracefs", "pstore",
    "bpf", "configfs", "fusectl", "mqueue", "binfmt_misc", "efivarfs",
})


def _file_system_type(path: Path) -> str | None:
    """The type of the file system holding ``path`` (Linux ``/proc/self/mountinfo``), or None."""
    import os
    import re

    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    real = os.path.realpath(path)
    best, found = "", None
    for line in lines:
        fields = line.split()
        if "-" not in fields[6:] or len(fields) < 5:
            continue
        mount = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), fields[4])  # " " is \040
        fs = fields[fields.index("-", 6) + 1]
        inside = real == mount or real.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, found = mount, fs
    return found


def problem_from_config(cfg) -> Problem:
    """Validate a configuration and build the engine's :class:`Problem` (no compilation)."""
    from yieldmc.configuration.parse import build_problem

    return build_problem(to_container(cfg))
