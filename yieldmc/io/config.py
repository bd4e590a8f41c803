"""Configuration: compose the Hydra config from ``conf/`` and turn it into a Problem.

This module is the edge where Hydra/OmegaConf live; everything it hands on is a plain
``dict`` or a frozen :class:`yieldmc.engine.problem.Problem`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from yieldmc.configuration.tree import CONF_DIR, register_defaults, to_container  # noqa: F401 - named here too

if TYPE_CHECKING:  # imported where used: ``yieldmc --help`` needs CONF_DIR alone
    from omegaconf import DictConfig

    from yieldmc.engine.problem import Problem


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
    register_defaults()
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


def problem_from_config(cfg) -> Problem:
    """Validate a configuration and build the engine's :class:`Problem` (no compilation)."""
    from yieldmc.configuration.parse import build_problem

    return build_problem(to_container(cfg))
