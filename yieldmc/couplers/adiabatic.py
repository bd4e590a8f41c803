"""Adiabatic (evanescent) Si-taper → PWG coupler (DESIGN §2.3).

Coupled-mode theory of a linear Δβ sweep along the taper (model ``cmt``: exact
piecewise-constant transfer matrices; ``landau_zener``: the infinite-sweep limit
η = 1 − exp(−2πκ²L/|Δβ_end − Δβ_start|)). Misalignment and the PWG stack enter through
κ and Δβ: the vertical gap through κ = κ0·exp(−γ(g − g0)), the lateral offset through
κ·exp(−dx_eff²/w_x²) with the yaw walk-off at the phase-matching point, and every change
of the PWG effective index (core geometry, core index, temperature) through a shift
(2π/λ)·Δn_eff of the Δβ sweep.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from yieldmc import physics
from yieldmc.couplers import PREFIX, Coupler, finite, physics_check, register_coupler
from yieldmc.engine.schema import Key

_ANY = "(-inf, inf)"


class AdiabaticStatic(NamedTuple):
    """The adiabatic coupler's static settings (``Static.coupler_static``)."""

    model: str  # cmt | landau_zener
    segments: int  # cmt segments
    derive_decay: bool  # decay_per_um is null: γ = k0·sqrt(n_eff,PWG² − n_gap²)


class AdiabaticCoupler(Coupler):
    """``package.coupler.kind: adiabatic`` (``conf/package/coupler/adiabatic.yaml``)."""

    kind = "adiabatic"
    keys = (
        Key("model", "str", "", "", "adiabatic transfer model", choices=physics.adiabatic.MODELS),
        Key("segments", "int", "", "[1, inf)", f"cmt segments (null: {physics.DEFAULT_SEGMENTS})",
            nullable=True),
        Key("kappa_per_um", "float", "1/µm", "[0, inf)", "coupling κ0 at the nominal gap"),
        Key("taper_length_um", "float", "µm", "(0, inf)", "taper length"),
        Key("delta_beta_start_per_um", "float", "1/µm", _ANY, "Δβ at the taper start"),
        Key("delta_beta_end_per_um", "float", "1/µm", _ANY, "Δβ at the taper end"),
        Key("gap_um", "float", "µm", _ANY, "nominal Si-to-PWG vertical gap (reference for κ0)"),
        Key("n_gap", "float", "", "(0, inf)", "index between Si and PWG core (<= n_clad)"),
        Key("decay_per_um", "float", "1/µm", "(0, inf)", "evanescent decay γ (null: derived)", nullable=True),
        Key("yaw_pivot_um", "float", "µm", _ANY, "yaw pivot along the taper, from its centre"),
    )

    def static(self, config) -> AdiabaticStatic:
        """Model, segment count (null: the default) and whether γ is derived."""
        return AdiabaticStatic(
            model=config.get("model", "none"),
            segments=int(config.get("segments") or physics.DEFAULT_SEGMENTS),
            derive_decay=config.get("decay_per_um") is None,
        )

    def validate(self, config, package) -> None:
        """The transfer model's domain, Δβ_start ≠ Δβ_end, γ > 0 or null, and
        0 < n_gap <= n_clad (an evanescent tail in the gap)."""
        c = PREFIX
        physics_check(
            physics.validate_adiabatic,
            {k: c + k for k in ("kappa_per_um", "taper_length_um", "delta_beta_start_per_um",
                                "delta_beta_end_per_um", "model", "segments")},
            kappa_per_um=config["kappa_per_um"], taper_length_um=config["taper_length_um"],
            delta_beta_start_per_um=config["delta_beta_start_per_um"],
            delta_beta_end_per_um=config["delta_beta_end_per_um"],
            model=config["model"], segments=config.get("segments"),
        )
        if config["delta_beta_start_per_um"] == config["delta_beta_end_per_um"]:
            raise ValueError(f"{c}delta_beta_end_per_um: must differ from delta_beta_start_per_um")
        decay = config.get("decay_per_um")
        if decay is not None and not finite(f"{c}decay_per_um", decay) > 0:
            raise ValueError(f"{c}decay_per_um: must be > 0 or null, got {decay!r}")
        if not package["pwg"]["n_clad"] >= finite(f"{c}n_gap", config["n_gap"]) > 0:
            raise ValueError(
                f"{c}n_gap: must be in (0, package.pwg.n_clad] for an evanescent tail, got {config['n_gap']!r}"
            )
        finite(f"{c}yaw_pivot_um", config["yaw_pivot_um"])

    def nominal_values(self, params) -> dict:
        """The nominal vertical gap ``package.coupler.gap_um`` (g0, the reference of κ0)."""
        return {"gap_um": params["package.coupler.gap_um"]}

    def efficiency(self, *, dx_um, dy_um, x_um, yaw_rad, w_x_um, w_y_um, core, wavelength_um,
                   params, values, static: AdiabaticStatic):
        """η of the taper at the sampled gap, offsets, yaw and PWG core (DESIGN §2.3).

        - vertical: κ = κ0·exp(−γ·(g − g0)) with g = gap + dy, γ configured or
          k0·sqrt(n_eff,PWG² − n_gap²) of the nominal PWG;
        - lateral: κ ← κ·exp(−dx_eff²/w_x²), dx_eff = dx + yaw·(z_c − z_pivot), z_c the
          phase-matching point clipped to the taper, z_pivot = L/2 + yaw_pivot_um;
        - stack and temperature: Δβ shifted by (2π/λ)·(n_eff − n_eff0).
        """
        wl = wavelength_um
        # The taper's Δβ sweep (and γ) are specified for the nominal PWG at the index
        # reference temperature; any change of n_eff from there — core geometry, core
        # index, operating temperature — shifts the sweep.
        n_eff0 = physics.pwg_effective_index(
            core_width_um=params["package.pwg.core_width_um"],
            core_thickness_um=params["package.pwg.core_thickness_um"],
            n_core=params["package.pwg.n_core"], n_clad=params["package.pwg.n_clad"], wavelength_um=wl,
        )
        n_eff = physics.pwg_effective_index(**core)
        shift = physics.delta_beta_shift_per_um(delta_n_eff=n_eff - n_eff0, wavelength_um=wl)
        db0 = params["package.coupler.delta_beta_start_per_um"] + shift
        db1 = params["package.coupler.delta_beta_end_per_um"] + shift
        length = params["package.coupler.taper_length_um"]
        if static.derive_decay:
            decay = physics.evanescent_decay_per_um(
                n_eff=n_eff0, n_gap=params["package.coupler.n_gap"], wavelength_um=wl
            )
        else:
            decay = params["package.coupler.decay_per_um"]
        kappa = physics.vertical_kappa_per_um(
            kappa0_per_um=params["package.coupler.kappa_per_um"],
            gap_um=values["gap_um"] + dy_um,
            gap0_um=params["package.coupler.gap_um"],
            decay_per_um=decay,
        )
        z_c = jnp.clip(
            physics.phase_matching_point_um(
                delta_beta_start_per_um=db0, delta_beta_end_per_um=db1, taper_length_um=length
            ),
            0.0,
            length,
        )
        dx_eff = physics.yaw_offset_um(
            dx_um=dx_um, yaw_rad=yaw_rad, z_um=z_c,
            pivot_um=0.5 * length + params["package.coupler.yaw_pivot_um"],
        )
        kappa = physics.lateral_kappa_per_um(kappa_per_um=kappa, dx_um=dx_eff, mode_radius_x_um=w_x_um)
        return physics.adiabatic_transfer(
            kappa_per_um=kappa, delta_beta_start_per_um=db0, delta_beta_end_per_um=db1,
            taper_length_um=length, model=static.model, segments=static.segments,
        )


register_coupler(AdiabaticCoupler())
