"""The configuration as a plain tree: where the shipped configuration lives and the plain
``dict`` every reader of a configuration starts from (OmegaConf imported only when given
one of its nodes).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

#: The configuration directory shipped with the project.
CONF_DIR = Path(__file__).resolve().parent.parent.parent / "conf"


def to_container(cfg) -> dict:
    """A resolved plain ``dict`` from a DictConfig or mapping (the Hydra node dropped).

    The copy is plain Python all the way down (:func:`yieldmc.configuration.schema.plain`:
    numpy scalars as Python numbers, tuples and arrays as lists), each number of the type
    its key declares (:func:`yieldmc.configuration.schema.typed_numbers`: ``1e6`` at an
    ``int`` key, ``2`` at a ``float`` key), so that the spelling of a number does not
    change the store identity. Nothing is validated here.

    Raises:
      ValueError: ``cfg`` is not a mapping, or an interpolation does not resolve.
    """
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from yieldmc.configuration.schema import plain, typed_numbers

    if isinstance(cfg, DictConfig):
        try:
            cfg = OmegaConf.to_container(cfg, resolve=True)
        except OmegaConfBaseException as exc:
            raise ValueError(" ".join(str(exc).split())) from None
    if not isinstance(cfg, Mapping):
        raise ValueError(f"config: expected a mapping, got {type(cfg).__name__}")
    cfg = typed_numbers(plain(cfg))
    cfg.pop("hydra", None)
    return cfg


def register_defaults() -> None:
    """Put the schema's defaults (:func:`yieldmc.configuration.schema.defaults`, with those
    of the parts registered now) in Hydra's config store as ``yieldmc_defaults``, the first
    entry of ``conf/config.yaml``'s defaults list."""
    from hydra.core.config_store import ConfigStore

    from yieldmc.configuration.schema import defaults

    ConfigStore.instance().store(name="yieldmc_defaults", node=defaults())
