"""Configuration: compose the Hydra config from ``conf/`` and turn it into a Problem.

This module is the edge where Hydra/OmegaConf live; everything it hands on is a plain
``dict`` or a frozen :class:`yieldmc.problem.Problem`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from yieldmc.problem import Problem, build_problem

#: The configuration directory shipped with the project.
CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


def compose(overrides: Sequence[str] = ()) -> DictConfig:
    """The configuration the command line would build from ``conf/`` with ``overrides``.

    Args:
      overrides: Hydra override strings, e.g. ``["package=pwg18_32ch", "samples=10000"]``.

    Returns:
      The composed ``DictConfig`` (struct mode: unknown keys are errors).

    Raises:
      ValueError: for an override Hydra rejects (unknown key, bad syntax), with Hydra's
        message, which names the key.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
            return hydra_compose(config_name="config", overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as exc:
        raise ValueError(" ".join(str(exc).split())) from None


def to_container(cfg) -> dict:
    """A resolved plain ``dict`` from a DictConfig or mapping (the Hydra node dropped)."""
    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg, resolve=True)
    cfg = dict(cfg)
    cfg.pop("hydra", None)
    return cfg


def problem_from_config(cfg) -> Problem:
    """Validate a configuration and build the engine's :class:`Problem` (no compilation)."""
    return build_problem(to_container(cfg))
