"""Test-suite plugin (``YIELDMC_PLUGINS=toy_parts``, with ``tests/`` on ``PYTHONPATH``).

Registers parts from outside the package to show the extension points work end to end
through the command:

* a toy coupler ``toy`` (:class:`ToyCoupler`) with closed-form efficiency and its config
  group option ``package/coupler=toy`` (from ``toy_coupler.yaml`` beside this module,
  stored in Hydra's ConfigStore).
"""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp
import yaml
from hydra.core.config_store import ConfigStore

from yieldmc.couplers import PREFIX, Coupler, register_coupler
from yieldmc.parts import Key

HERE = Path(__file__).resolve().parent


class ToyCoupler(Coupler):
    """η = exp(−(dx² + dy²)/w²) (``shape: gaussian``) or 1/(1 + (dx² + dy²)/w²)
    (``lorentzian``), ``w`` = ``package.coupler.w_toy_um``; no gap, no Fresnel.

    With only the offsets (dx, dy) varying, a channel passes ``spec.max_loss_db`` = L
    (propagation P included) when dx² + dy² <= r², r² = w²·(L − P)·ln10/10 (gaussian) or
    w²·(10^((L − P)/10) − 1) (lorentzian).
    """

    kind = "toy"
    keys = (
        Key("w_toy_um", "float", "µm", "(0, inf)", "toy mode radius"),
        Key("shape", "str", "", "", "toy efficiency shape", choices=("gaussian", "lorentzian")),
    )

    def static(self, config):
        return config["shape"]

    def validate(self, config, package) -> None:
        if not config["w_toy_um"] < package["pitch_um"]:
            raise ValueError(f"{PREFIX}w_toy_um: must be < package.pitch_um "
                             f"({package['pitch_um']!r}), got {config['w_toy_um']!r}")

    def efficiency(self, inputs, *, polarization="te"):
        w = inputs.params["package.coupler.w_toy_um"]
        r2 = (inputs.dx_um * inputs.dx_um + inputs.dy_um * inputs.dy_um) / (w * w)
        return jnp.exp(-r2) if self.settings == "gaussian" else 1.0 / (1.0 + r2)


register_coupler(ToyCoupler())
ConfigStore.instance().store(
    group="package/coupler", name="toy",
    node=yaml.safe_load((HERE / "toy_coupler.yaml").read_text()),
)  # no package: the group's default, package.coupler, as conf/package/coupler/*.yaml (no header)
