"""Butt coupling of the PWG mode to a chip mode across a facet gap
(docs/physics.md, "2.1 Gaussian butt coupling").

The PWG mode (radii from the sampled core) is the source; the chip's
spot-size-converter mode (``package.coupler.mode_radius_x_um``/``_y_um``) the receiver,
across an adhesive gap of index ``n_gap``. Overlap of two misaligned, tilted Gaussian
beams: Joyce & DeLoach, Appl. Opt. 23:4187 (1984); Nemoto & Makimoto, Opt. Quantum
Electron. 11:447 (1979); Marcuse, BSTJ 56:703 (1977). Plus one normal-incidence Fresnel
factor per interface (PWG core → gap, gap → chip).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax.numpy as jnp

from yieldmc import physics
from yieldmc.couplers import PREFIX, Coupler, physics_check, register_coupler
from yieldmc.parts import Key

if TYPE_CHECKING:
    from yieldmc.engine.model import CouplerInputs

_POS = "(0, inf)"


class ButtCoupler(Coupler):
    """``package.coupler.kind: butt`` (``conf/package/coupler/butt.yaml``)."""

    kind = "butt"
    keys = (
        Key("mode_radius_x_um", "float", "µm", _POS, "chip mode radius (1/e field), x"),
        Key("mode_radius_y_um", "float", "µm", _POS, "chip mode radius (1/e field), y"),
        Key("gap_um", "float", "µm", "[0, inf)", "nominal facet gap"),
        Key("n_gap", "float", "", _POS, "index of the gap medium"),
        Key("n_chip", "float", "", _POS, "chip-side index (Fresnel at the chip facet)"),
    )

    def validate(self, config, package) -> None:
        """The Gaussian-overlap domain at the wavelength (the keys' own bounds are the schema's)."""
        c = PREFIX
        physics_check(
            physics.validate_gaussian_coupling,
            {"w2_x_um": c + "mode_radius_x_um", "w2_y_um": c + "mode_radius_y_um",
             "gap_um": c + "gap_um", "n_gap": c + "n_gap", "wavelength_um": "package.wavelength_um"},
            w1_x_um=1.0, w1_y_um=1.0, w2_x_um=config["mode_radius_x_um"],
            w2_y_um=config["mode_radius_y_um"], gap_um=config["gap_um"],
            wavelength_um=package["wavelength_um"], n_gap=config["n_gap"],
        )

    def nominal_values(self, params) -> dict:
        """The nominal facet gap ``package.coupler.gap_um``."""
        return {"gap_um": params["package.coupler.gap_um"]}

    def efficiency(self, inputs: CouplerInputs, *, polarization="te"):
        """η = η_overlap(dx, dy, gap + x·yaw, tilt = yaw) · T(n_core → n_gap) · T(n_gap → n_chip).

        The array yaws about its centre: channel x_c sees the gap ``gap + x_c·yaw``
        (clipped at contact, 0) and the tilt ``yaw``. The Fresnel factors use the nominal
        indices (the core index error moves the mode, not the reflection, to first order).
        Polarisation independent: the weakly guiding modes and normal-incidence Fresnel
        factors are the same for TE and TM.
        """
        i = inputs
        dx_um, dy_um, yaw_rad, params, wavelength_um = i.dx_um, i.dy_um, i.yaw_rad, i.params, i.wavelength_um
        w_x_um, w_y_um = i.w_x_um, i.w_y_um
        gap = jnp.maximum(i.values["gap_um"] + i.x_um * yaw_rad, 0.0)  # rotation about the array centre
        n_gap = params["package.coupler.n_gap"]
        eta = physics.gaussian_coupling(
            w1_x_um=w_x_um, w1_y_um=w_y_um,
            w2_x_um=params["package.coupler.mode_radius_x_um"],
            w2_y_um=params["package.coupler.mode_radius_y_um"],
            dx_um=dx_um, dy_um=dy_um, gap_um=gap, tilt_x_rad=yaw_rad,
            wavelength_um=wavelength_um, n_gap=n_gap,
        )
        eta = eta * physics.fresnel_transmission(params["package.pwg.n_core"], n_gap)
        return eta * physics.fresnel_transmission(n_gap, params["package.coupler.n_chip"])

    def fresnel_db(self, inputs: CouplerInputs, *, polarization="te"):
        """The two normal-incidence Fresnel factors of :meth:`efficiency` (PWG core → gap,
        gap → chip), dB."""
        params = inputs.params
        n_gap = params["package.coupler.n_gap"]
        return (physics.loss_db(physics.fresnel_transmission(params["package.pwg.n_core"], n_gap))
                + physics.loss_db(physics.fresnel_transmission(n_gap, params["package.coupler.n_chip"])))


register_coupler(ButtCoupler())
