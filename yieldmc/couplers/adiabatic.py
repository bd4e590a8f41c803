"""Adiabatic (evanescent) Si-taper → PWG coupler (docs/physics.md, "2.3a The Si-taper coupler
from its supermodes" and "2.3 The linear-sweep adiabatic coupler").

Two descriptions of the taper:

* ``taper: si_strip`` (default): from the local supermodes of the coupler's own
  cross-section (220 nm Si strip on oxide under the PWG; full-vector solves in
  ``yieldmc/data/si_pwg_supermodes.json``, :mod:`yieldmc.physics.supermodes`). For each
  sampled module and polarisation: κ, the phase-matching width w* and the slope
  s = dδ/dw there, interpolated in wavelength, vertical gap g = max(gap + dy, 0) (contact
  clips it), lateral offset (with the yaw walk-off at the phase-matching point) and
  temperature, plus the first-order shift of the other polymer-index changes; the Si
  strip's width profile w(z) (``profile``: linear, piecewise, exponential;
  :mod:`yieldmc.physics.taper`), shifted as a whole by the sampled tip-width error (a
  lithographic CD bias), places the crossing at z_c with sweep rate s·|dw/dz|. Model
  ``landau_zener``: the Landau–Zener transfer at the crossing with the supermode
  projections at both ends, δ at the ends from the tabulated shape δ(u) = s·ĝ(w − w*)
  (:func:`yieldmc.physics.landau_zener_with_ends`); ``cmt``: the coupled-mode equations
  along the taper with that δ(z). No fitted κ; what the two-mode picture leaves out (tip
  scattering, sidewall roughness, substrate leakage) is a residual loss per polarisation,
  an estimate.
* ``taper: linear``: Δβ specified directly, linear from ``delta_beta_start_per_um``
  to ``delta_beta_end_per_um``, shifted by (2π/λ)·Δn_eff,PWG; κ = κ0·exp(−γ(g − g0)) with
  γ the decay of the PWG field below its core, times exp(−dx_eff²/w_x²) laterally.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import jax.numpy as jnp

from yieldmc import physics
from yieldmc.couplers import PREFIX, Coupler, physics_check, register_coupler
from yieldmc.physics import taper as _taper
from yieldmc.parts import Key

if TYPE_CHECKING:
    from yieldmc.engine.model import CouplerInputs

_ANY = "(-inf, inf)"
TAPERS = ("si_strip", "linear")
#: Dense-segment scale of the cmt models, in units of κ/|dΔβ/dz| at phase matching.
FOCUS_WIDTH = 5.0


class AdiabaticStatic(NamedTuple):
    """The adiabatic coupler's static settings (its :attr:`~yieldmc.couplers.Coupler.settings`)."""

    model: str  # cmt | landau_zener
    segments: int  # cmt segments
    derive_decay: bool  # decay_per_um is null: γ derived (linear taper)
    taper: str = "si_strip"  # si_strip | linear
    profile: str = "linear"  # si_strip: linear | piecewise | exponential
    knots: tuple = ()  # si_strip piecewise: ((fraction of L, width µm), ...)


_SI = ("start_width_nm", "tip_width_nm")
_LIN = ("delta_beta_start_per_um", "delta_beta_end_per_um", "kappa_per_um")


class AdiabaticCoupler(Coupler):
    """``package.coupler.kind: adiabatic`` (``conf/package/coupler/adiabatic.yaml``)."""

    kind = "adiabatic"
    keys = (
        Key("taper", "str", "", "", "si_strip: from the cross-section's supermodes | linear: Δβ swept linearly",
            choices=TAPERS),
        Key("model", "str", "", "", "adiabatic transfer model", choices=physics.adiabatic.MODELS),
        Key("segments", "int", "", "[1, inf)", f"cmt segments (null: {physics.DEFAULT_SEGMENTS})",
            nullable=True),
        Key("kappa_per_um", "float", "1/µm", "[0, inf)",
            "linear: coupling κ0 at the nominal gap (si_strip: null, κ from the supermode table)", nullable=True),
        Key("taper_length_um", "float", "µm", "(0, inf)", "taper length"),
        Key("start_width_nm", "float", "nm", "(0, inf)", "si_strip: Si strip width where the taper starts",
            nullable=True),
        Key("tip_width_nm", "float", "nm", "(0, inf)", "si_strip: nominal Si tip width", nullable=True),
        Key("profile", "str", "", "", "si_strip: width profile w(z)", choices=_taper.SHAPES),
        Key("profile_knots_fraction", "list[float]", "", "(0, 1)",
            "si_strip piecewise: knot positions as fractions of the taper length", nullable=True),
        Key("profile_knots_width_nm", "list[float]", "nm", "(0, inf)",
            "si_strip piecewise: strip widths at the knots (decreasing)", nullable=True),
        Key("profile_exponent", "float", "", "(0, inf)",
            "si_strip exponential: a in w1 + (w0 − w1)(e^(−a z/L) − e^(−a))/(1 − e^(−a))", nullable=True),
        Key("delta_beta_start_per_um", "float", "1/µm", _ANY, "linear: Δβ at the taper start", nullable=True),
        Key("delta_beta_end_per_um", "float", "1/µm", _ANY, "linear: Δβ at the taper end", nullable=True),
        Key("gap_um", "float", "µm", _ANY, "nominal Si-top to PWG-core gap"),
        Key("n_gap", "float", "", "(0, inf)", "linear: index between Si and PWG core (<= n_clad)"),
        Key("decay_per_um", "float", "1/µm", "(0, inf)", "linear: evanescent decay γ (null: derived)",
            nullable=True),
        Key("yaw_pivot_um", "float", "µm", _ANY, "yaw pivot along the taper, from its centre"),
        Key("excess_loss_te_db", "float", "dB", "[0, inf)",
            "residual TE loss the mode model leaves out (tip scattering, roughness, leakage): an estimate"),
        Key("excess_loss_tm_db", "float", "dB", "[0, inf)",
            "residual TM loss the mode model leaves out (tip scattering, roughness, leakage): an estimate"),
    )

    def static(self, config) -> AdiabaticStatic:
        """Model, segment count (null: the default), taper kind, whether γ is derived, the
        width profile and its knots."""
        fr = config.get("profile_knots_fraction") or ()
        ws = config.get("profile_knots_width_nm") or ()
        return AdiabaticStatic(
            model=config.get("model", "none"),
            segments=int(config.get("segments") or physics.DEFAULT_SEGMENTS),
            derive_decay=config.get("decay_per_um") is None,
            taper=config.get("taper", "si_strip"),
            profile=config.get("profile", "linear"),
            knots=tuple((float(f), 1e-3 * float(w)) for f, w in zip(fr, ws)),
        )

    def float_keys(self, config) -> tuple[str, ...]:
        """The float keys, without ``profile_exponent`` unless the profile is exponential."""
        keys = super().float_keys(config)
        if config.get("profile", "linear") != "exponential":
            keys = tuple(k for k in keys if k != "profile_exponent")
        return keys

    def polarization_dependent(self, config) -> bool:
        """The supermodes of TE and TM differ (κ, phase matching, slope); the linear sweep
        has one."""
        return config.get("taper", "si_strip") == "si_strip"

    def validate(self, config, package) -> None:
        """The transfer model's domain; for ``si_strip`` κ0 null, start width > tip width
        inside the strip table and a valid profile; for ``linear`` κ0 set and Δβ_start ≠
        Δβ_end; γ > 0 or null; 0 < n_gap <= n_clad."""
        c = PREFIX
        taper = config["taper"]
        for name in _SI if taper == "si_strip" else _LIN:
            if config.get(name) is None:
                raise ValueError(f"{c}{name}: needed by taper={taper}, got null")
        physics_check(
            physics.validate_adiabatic,
            {k: c + k for k in ("kappa_per_um", "taper_length_um", "model", "segments")},
            kappa_per_um=config.get("kappa_per_um") or 0.0, taper_length_um=config["taper_length_um"],
            delta_beta_start_per_um=1.0, delta_beta_end_per_um=-1.0,
            model=config["model"], segments=config.get("segments"),
        )
        if taper == "si_strip":
            from yieldmc.physics import silicon

            if config.get("kappa_per_um") is not None:
                raise ValueError(f"{c}kappa_per_um: taper=si_strip takes κ from the supermode table "
                                 f"(yieldmc/data/si_pwg_supermodes.json); set it null, got {config['kappa_per_um']!r}")
            fr = config.get("profile_knots_fraction") or []
            ws = config.get("profile_knots_width_nm") or []
            if len(fr) != len(ws):
                raise ValueError(f"{c}profile_knots_width_nm: one width per knot fraction ({len(fr)}), got {len(ws)}")
            exponent = config.get("profile_exponent")
            names = {"shape": c + "profile", "tip_width_um": c + "tip_width_nm", "knots": c + "profile_knots_width_nm",
                     "exponent": c + "profile_exponent"}
            physics_check(_taper.validate_profile, names, shape=config.get("profile", "linear"),
                          start_width_um=config["start_width_nm"], tip_width_um=config["tip_width_nm"],
                          knots=tuple(zip(fr, ws)), exponent=exponent)
            physics_check(silicon.validate_si_strip, {"width_um": c + "start_width_nm",
                                                      "wavelength_um": "package.wavelength_um"},
                          width_um=1e-3 * config["start_width_nm"], wavelength_um=package["wavelength_um"])
        elif config["delta_beta_start_per_um"] == config["delta_beta_end_per_um"]:
            raise ValueError(f"{c}delta_beta_end_per_um: must differ from delta_beta_start_per_um")
        if not package["pwg"]["n_clad"] >= config["n_gap"]:
            raise ValueError(
                f"{c}n_gap: must be in (0, package.pwg.n_clad] for an evanescent tail, got {config['n_gap']!r}"
            )

    def nominal_values(self, params) -> dict:
        """The nominal vertical gap (``package.coupler.gap_um``) and, for the Si strip, the
        nominal tip width."""
        out = {"gap_um": params["package.coupler.gap_um"]}
        if "package.coupler.tip_width_nm" in params:
            out["taper_tip_width_nm"] = params["package.coupler.tip_width_nm"]
        return out

    def efficiency(self, inputs: CouplerInputs, *, polarization="te"):
        """η of the taper at the sampled gap, offsets, yaw, PWG core and environment, times
        the residual loss of the polarisation (``si_strip``: :func:`supermode_transfer`;
        ``linear``: the κ0 mapping and the linear sweep)."""
        static: AdiabaticStatic = self.settings
        params = inputs.params
        if static.taper == "si_strip":
            eta = supermode_transfer(inputs, static=static, polarization=polarization)
        else:
            eta = _linear_transfer(inputs, static=static)
        excess = params["package.coupler.excess_loss_tm_db"] if polarization == "tm" else \
            params["package.coupler.excess_loss_te_db"]
        return eta * 10.0 ** (-0.1 * excess)


def _linear_transfer(inputs, *, static):
    """The linear Δβ sweep: κ = κ0·exp(−γ(g − g0))·exp(−dx_eff²/w_x²), Δβ shifted by the PWG
    index change, dx_eff with the yaw walk-off at the phase-matching point."""
    params, values, wl, core = inputs.params, inputs.values, inputs.wavelength_um, inputs.core
    p = lambda name: params["package.coupler." + name]  # noqa: E731
    length = p("taper_length_um")
    n_pwg = physics.pwg_effective_index(**core)
    n_eff0 = physics.pwg_effective_index(
        core_width_um=params["package.pwg.core_width_um"],
        core_thickness_um=params["package.pwg.core_thickness_um"],
        n_core=params["package.pwg.n_core"], n_clad=params["package.pwg.n_clad"], wavelength_um=wl,
    )  # the nominal PWG at the index reference state: the sweep's reference
    if static.derive_decay:  # the effective-index γ of the nominal PWG (never NaN at high temperature)
        decay = physics.evanescent_decay_per_um(n_eff=n_eff0, n_gap=p("n_gap"), wavelength_um=wl)
    else:
        decay = p("decay_per_um")
    gap = jnp.maximum(values["gap_um"] + inputs.dy_um, 0.0)  # contact: the PWG rests on the chip
    kappa = p("kappa_per_um") * jnp.exp(-decay * (gap - p("gap_um")))
    shift = physics.delta_beta_shift_per_um(delta_n_eff=n_pwg - n_eff0, wavelength_um=wl)
    db0 = p("delta_beta_start_per_um") + shift
    db1 = p("delta_beta_end_per_um") + shift
    z_c = physics.phase_matching_point_um(delta_beta_start_per_um=db0, delta_beta_end_per_um=db1,
                                          taper_length_um=length)
    z_in = jnp.clip(z_c, 0.0, length)
    dx_eff = physics.yaw_offset_um(dx_um=inputs.dx_um, yaw_rad=inputs.yaw_rad, z_um=z_in,
                                   pivot_um=0.5 * length + p("yaw_pivot_um"))
    kappa = physics.lateral_kappa_per_um(kappa_per_um=kappa, dx_um=dx_eff, mode_radius_x_um=inputs.w_x_um)
    return physics.adiabatic_transfer(
        kappa_per_um=kappa, delta_beta_start_per_um=db0, delta_beta_end_per_um=db1,
        taper_length_um=length, model=static.model, segments=static.segments,
    )


class Crossing(NamedTuple):
    """The phase-matching crossing of one sampled module along its taper."""

    kappa_per_um: object  # κ
    width_um: object  # w_c, the phase-matching width (tables + polymer shift)
    slope_per_um2: object  # s = dδ/dw at w_c
    z_um: object  # z_c on the taper (clipped to [0, L])
    rate_per_um2: object  # s·|dw/dz| at z_c
    inside: object  # the crossing lies on the taper
    delta: object  # callable z_um → δ(z) = s·ĝ(w(z) − w_c)
    delta_start_per_um: object
    delta_end_per_um: object


def supermode_crossing(inputs, *, static, polarization) -> Crossing:
    """κ, phase matching, sweep rate and end mismatches of the ``si_strip`` taper for the
    sampled module (:mod:`yieldmc.physics.supermodes`, :mod:`yieldmc.physics.taper`).

    The crossing's position (for the yaw walk-off) is taken at the sampled lateral offset;
    κ then at the walked-off offset (w* moves by < 1 nm over 2 µm of offset, the data).
    """
    from yieldmc.physics import supermodes, taper

    params, values, wl, core = inputs.params, inputs.values, inputs.wavelength_um, inputs.core
    p = lambda name: params["package.coupler." + name]  # noqa: E731
    length = p("taper_length_um")
    w0 = 1e-3 * p("start_width_nm")
    w1 = 1e-3 * p("tip_width_nm")
    bias = 1e-3 * values["taper_tip_width_nm"] - w1  # a CD error shifts every width of the taper
    prof = taper.width_profile(static.profile, start_width_um=w0, tip_width_um=w1, length_um=length,
                               knots=static.knots,
                               exponent=p("profile_exponent") if static.profile == "exponential" else None)
    gap = jnp.maximum(values["gap_um"] + inputs.dy_um, 0.0)  # contact: the PWG rests on the chip
    temperature = values["temperature_c"]
    dx = inputs.dx_um
    kappa, w_star, slope = supermodes.crossing(polarization=polarization, wavelength_um=wl, gap_um=gap,
                                               offset_um=dx, temperature_c=temperature)
    shift = supermodes.polymer_shift_per_um(polarization=polarization, wavelength_um=wl,
                                            temperature_c=temperature, n_core=core["n_core"], n_clad=core["n_clad"])
    w_c = w_star - shift / slope
    z_c = prof.position(w_c - bias)
    dx_eff = physics.yaw_offset_um(dx_um=dx, yaw_rad=inputs.yaw_rad, z_um=z_c,
                                   pivot_um=0.5 * length + p("yaw_pivot_um"))
    kappa = kappa * jnp.exp(supermodes.log_kappa_offset(polarization=polarization, offset_um=dx_eff)
                            - supermodes.log_kappa_offset(polarization=polarization, offset_um=dx))
    rate = slope * prof.rate(w_c - bias)
    inside = (w_c > w1 + bias) & (w_c < w0 + bias)

    def delta(z):
        return supermodes.delta_per_um(polarization=polarization, u_um=prof.width(z) + bias - w_c,
                                       slope_per_um2=slope)

    d_start = supermodes.delta_per_um(polarization=polarization, u_um=w0 + bias - w_c, slope_per_um2=slope)
    d_end = supermodes.delta_per_um(polarization=polarization, u_um=w1 + bias - w_c, slope_per_um2=slope)
    return Crossing(kappa, w_c, slope, z_c, rate, inside, delta, d_start, d_end)


def supermode_transfer(inputs, *, static, polarization):
    """η of the ``si_strip`` taper (before the residual loss): ``landau_zener`` —
    :func:`yieldmc.physics.landau_zener_with_ends` with κ, the sweep rate and δ at both
    ends; ``cmt`` — the coupled-mode equations with δ(z) along the taper
    (:func:`yieldmc.physics.adiabatic_transfer_profile`, segments dense around z_c)."""
    x = supermode_crossing(inputs, static=static, polarization=polarization)
    if static.model == "landau_zener":
        return physics.landau_zener_with_ends(
            kappa_per_um=x.kappa_per_um, rate_per_um2=x.rate_per_um2,
            delta_beta_start_per_um=x.delta_start_per_um, delta_beta_end_per_um=x.delta_end_per_um,
            crossing_inside=x.inside)
    return physics.adiabatic_transfer_profile(
        kappa_per_um=x.kappa_per_um, delta_beta_per_um=x.delta,
        taper_length_um=inputs.params["package.coupler.taper_length_um"], focus_um=x.z_um,
        focus_width_um=FOCUS_WIDTH * x.kappa_per_um / x.rate_per_um2, segments=static.segments,
    )


register_coupler(AdiabaticCoupler())
