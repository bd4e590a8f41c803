"""Variation model: quantities, levels, the parameters of a variation (docs/physics.md,
"3. Variation model"). Each (quantity, level) draws from one distribution family,
:mod:`yieldmc.engine.distributions`, which maps a standard-normal ``z`` to the draw.
"""

from __future__ import annotations

from yieldmc.engine.quantities import QUANTITIES  # noqa: F401 - the catalogue, in random-stream order

#: Levels: one draw per module, per layer, per waveguide (channel of a layer).
LEVELS = ("module", "layer", "channel")

#: Parameter keys present on every (quantity, level) in the configuration.
PARAMS = ("mean", "sigma", "low", "high")


def process_key(quantity: str, level: str, param: str | None = None) -> str:
    """The configuration path of a variation, ``process.<quantity>.<level>[.<param>]``."""
    return f"process.{quantity}.{level}" if param is None else f"process.{quantity}.{level}.{param}"


def variation_params(params, quantity: str, level: str) -> dict:
    """``{mean, sigma, low, high}`` of one variation from ``params`` (config path → value)."""
    return {p: params[process_key(quantity, level, p)] for p in PARAMS}
