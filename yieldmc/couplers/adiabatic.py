"""Adiabatic (evanescent) Si-taper → PWG coupler (docs/physics.md, "2.3a The Si-taper coupler
from geometry" and "2.3 The linear-sweep adiabatic coupler").

Coupled-mode theory of the transfer from the Si strip's mode to the PWG mode along the
taper (model ``cmt``: exact piecewise-constant transfer matrices; ``landau_zener``: the
infinite-sweep limit). Two descriptions of the phase mismatch Δβ(z) = β_Si − β_PWG:

* ``taper: si_strip`` (default): from geometry. The Si strip narrows linearly from
  ``start_width_nm`` to the tip (``tip_width_nm`` plus the sampled
  ``taper_tip_width_nm`` error); its index n_eff,Si(w, λ, polarisation) comes from the
  full-vector solver table ``yieldmc/data/si_strip_modes.json``
  (:func:`yieldmc.physics.silicon.si_strip_effective_index`), shifted by the sampled
  temperature and humidity through every material (Si, SiO₂ box, the polymer cladding
  above the strip; first-order sensitivities from the same table). The PWG index is that
  of the sampled core (:func:`yieldmc.physics.pwg_effective_index`). Phase matching sits
  where n_eff,Si(w_c) = n_eff,PWG: a tip too wide for it (lithography, temperature, a
  high-index PWG) moves it off the taper and the transfer collapses.
* ``taper: linear``: Δβ specified directly, linear from ``delta_beta_start_per_um``
  to ``delta_beta_end_per_um``, shifted by (2π/λ)·Δn_eff,PWG.

Misalignment enters through κ: the vertical gap g = max(gap + dy, 0) (the PWG cannot
sink into the chip: contact clips it) through κ = κ0·exp(−γ(g − g0)), γ the decay of the
PWG field below its core (:func:`yieldmc.physics.pwg_vertical_decay_per_um`); the lateral
offset through κ·exp(−dx_eff²/w_x²) (the narrow Si mode samples the PWG field), with the
yaw walk-off at the phase-matching point. What coupled-mode theory leaves out — tip
scattering, mode mismatch at the taper ends, substrate leakage — is an excess loss per
polarisation, a calibration (docs/physics.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import jax
import jax.numpy as jnp

from yieldmc import physics
from yieldmc.couplers import PREFIX, Coupler, physics_check, register_coupler
from yieldmc.parts import Key

if TYPE_CHECKING:
    from yieldmc.engine.model import CouplerInputs

_ANY = "(-inf, inf)"
TAPERS = ("si_strip", "linear")
#: Dense-segment scale of the si_strip cmt, in units of κ/|dΔβ/dz| at phase matching.
FOCUS_WIDTH = 5.0
#: Newton steps (after a secant start) for the phase-matching width.
_NEWTON_STEPS = 3


class AdiabaticStatic(NamedTuple):
    """The adiabatic coupler's static settings (its :attr:`~yieldmc.couplers.Coupler.settings`)."""

    model: str  # cmt | landau_zener
    segments: int  # cmt segments
    derive_decay: bool  # decay_per_um is null: γ derived
    taper: str = "si_strip"  # si_strip | linear
    tm_kappa: bool = False  # kappa_tm_per_um is set (else TM uses kappa_per_um)


_SI = ("start_width_nm", "tip_width_nm")
_LIN = ("delta_beta_start_per_um", "delta_beta_end_per_um")


class AdiabaticCoupler(Coupler):
    """``package.coupler.kind: adiabatic`` (``conf/package/coupler/adiabatic.yaml``)."""

    kind = "adiabatic"
    keys = (
        Key("taper", "str", "", "", "si_strip: Δβ(z) from the Si strip's width profile | linear: Δβ swept linearly",
            choices=TAPERS),
        Key("model", "str", "", "", "adiabatic transfer model", choices=physics.adiabatic.MODELS),
        Key("segments", "int", "", "[1, inf)", f"cmt segments (null: {physics.DEFAULT_SEGMENTS})",
            nullable=True),
        Key("kappa_per_um", "float", "1/µm", "[0, inf)", "coupling κ0 (TE) at the nominal gap (a calibration)"),
        Key("kappa_tm_per_um", "float", "1/µm", "[0, inf)",
            "si_strip: κ0 of the TM modes (null: kappa_per_um)", nullable=True),
        Key("taper_length_um", "float", "µm", "(0, inf)", "taper length"),
        Key("start_width_nm", "float", "nm", "(0, inf)", "si_strip: Si strip width where the taper starts",
            nullable=True),
        Key("tip_width_nm", "float", "nm", "(0, inf)", "si_strip: nominal Si tip width", nullable=True),
        Key("delta_beta_start_per_um", "float", "1/µm", _ANY, "linear: Δβ at the taper start", nullable=True),
        Key("delta_beta_end_per_um", "float", "1/µm", _ANY, "linear: Δβ at the taper end", nullable=True),
        Key("gap_um", "float", "µm", _ANY, "nominal Si-to-PWG-core vertical gap (reference for κ0)"),
        Key("n_gap", "float", "", "(0, inf)", "linear: index between Si and PWG core (<= n_clad)"),
        Key("decay_per_um", "float", "1/µm", "(0, inf)", "evanescent decay γ (null: derived)", nullable=True),
        Key("yaw_pivot_um", "float", "µm", _ANY, "yaw pivot along the taper, from its centre"),
        Key("excess_loss_te_db", "float", "dB", "[0, inf)", "TE loss coupled-mode theory leaves out (a calibration)"),
        Key("excess_loss_tm_db", "float", "dB", "[0, inf)", "TM loss coupled-mode theory leaves out (a calibration)"),
    )

    def static(self, config) -> AdiabaticStatic:
        """Model, segment count (null: the default), taper kind, whether γ is derived and
        whether TM has its own κ0."""
        return AdiabaticStatic(
            model=config.get("model", "none"),
            segments=int(config.get("segments") or physics.DEFAULT_SEGMENTS),
            derive_decay=config.get("decay_per_um") is None,
            taper=config.get("taper", "si_strip"),
            tm_kappa=config.get("kappa_tm_per_um") is not None,
        )

    def polarization_dependent(self, config) -> bool:
        """The Si strip's TE and TM modes differ (index, κ, excess loss); the linear sweep
        has one."""
        return config.get("taper", "si_strip") == "si_strip"

    def validate(self, config, package) -> None:
        """The transfer model's domain; for ``si_strip`` start width > tip width inside the
        solver table, for ``linear`` Δβ_start ≠ Δβ_end; γ > 0 or null; 0 < n_gap <= n_clad."""
        c = PREFIX
        taper = config["taper"]
        physics_check(
            physics.validate_adiabatic,
            {k: c + k for k in ("kappa_per_um", "taper_length_um", "model", "segments")},
            kappa_per_um=config["kappa_per_um"], taper_length_um=config["taper_length_um"],
            delta_beta_start_per_um=1.0, delta_beta_end_per_um=-1.0,
            model=config["model"], segments=config.get("segments"),
        )
        needed, unused = (_SI, _LIN) if taper == "si_strip" else (_LIN, _SI)
        for name in needed:
            if config.get(name) is None:
                raise ValueError(f"{c}{name}: needed by taper={taper}, got null")
        if taper == "si_strip":
            from yieldmc.physics import silicon

            start, tip = config["start_width_nm"], config["tip_width_nm"]
            if not start > tip > 0:
                raise ValueError(f"{c}tip_width_nm: must be in (0, start_width_nm = {start!r}), got {tip!r}")
            # the start must lie in the solver table; the tip may be narrower than its
            # near-cutoff width (the index is extrapolated: phase matching lies above it)
            physics_check(silicon.validate_si_strip, {"width_um": c + "start_width_nm",
                                                      "wavelength_um": "package.wavelength_um"},
                          width_um=1e-3 * start, wavelength_um=package["wavelength_um"])
        elif config["delta_beta_start_per_um"] == config["delta_beta_end_per_um"]:
            raise ValueError(f"{c}delta_beta_end_per_um: must differ from delta_beta_start_per_um")
        if not package["pwg"]["n_clad"] >= config["n_gap"]:
            raise ValueError(
                f"{c}n_gap: must be in (0, package.pwg.n_clad] for an evanescent tail, got {config['n_gap']!r}"
            )

    def nominal_values(self, params) -> dict:
        """The nominal vertical gap g0 (``package.coupler.gap_um``, the reference of κ0)
        and, for the Si strip, the nominal tip width."""
        out = {"gap_um": params["package.coupler.gap_um"]}
        if "package.coupler.tip_width_nm" in params:
            out["taper_tip_width_nm"] = params["package.coupler.tip_width_nm"]
        return out

    def efficiency(self, inputs: CouplerInputs, *, polarization="te"):
        """η of the taper at the sampled gap, offsets, yaw, PWG core and environment.

        - vertical: κ = κ0·exp(−γ·(g − g0)), g = max(gap + dy, 0) (contact);
        - lateral: κ ← κ·exp(−dx_eff²/w_x²), dx_eff = dx + yaw·(z_c − z_pivot), z_c the
          phase-matching point clipped to the taper, z_pivot = L/2 + yaw_pivot_um;
        - Δβ(z): the Si strip's width profile (``si_strip``) or the linear sweep shifted
          by (2π/λ)·(n_eff − n_eff0) (``linear``);
        - the excess loss of the polarisation.
        """
        static: AdiabaticStatic = self.settings
        dx_um, dy_um, yaw_rad, core = inputs.dx_um, inputs.dy_um, inputs.yaw_rad, inputs.core
        w_x_um = inputs.w_x_um
        params, values, wl = inputs.params, inputs.values, inputs.wavelength_um
        p = lambda name: params["package.coupler." + name]  # noqa: E731
        length = p("taper_length_um")
        n_pwg = physics.pwg_effective_index(**core)
        n_eff0 = None if static.taper == "si_strip" else physics.pwg_effective_index(
            core_width_um=params["package.pwg.core_width_um"],
            core_thickness_um=params["package.pwg.core_thickness_um"],
            n_core=params["package.pwg.n_core"], n_clad=params["package.pwg.n_clad"], wavelength_um=wl,
        )  # the nominal PWG at the index reference state: the linear sweep's reference
        if not static.derive_decay:
            decay = p("decay_per_um")
        elif static.taper == "si_strip":
            decay = physics.pwg_vertical_decay_per_um(**core)
        else:  # the effective-index γ of the nominal PWG (never NaN at high temperature)
            decay = physics.evanescent_decay_per_um(n_eff=n_eff0, n_gap=p("n_gap"), wavelength_um=wl)
        kappa0 = p("kappa_tm_per_um") if (polarization == "tm" and static.tm_kappa) else p("kappa_per_um")
        gap = jnp.maximum(values["gap_um"] + dy_um, 0.0)  # contact: the PWG rests on the chip
        kappa = kappa0 * jnp.exp(-decay * (gap - p("gap_um")))

        if static.taper == "si_strip":
            profile = _si_strip_profile(core=core, wavelength_um=wl, n_pwg=n_pwg, values=values, params=params,
                                        polarization=polarization)
            z_c = profile.z_c_um
        else:
            shift = physics.delta_beta_shift_per_um(delta_n_eff=n_pwg - n_eff0, wavelength_um=wl)
            db0 = p("delta_beta_start_per_um") + shift
            db1 = p("delta_beta_end_per_um") + shift
            z_c = physics.phase_matching_point_um(delta_beta_start_per_um=db0, delta_beta_end_per_um=db1,
                                                  taper_length_um=length)
        z_in = jnp.clip(z_c, 0.0, length)
        dx_eff = physics.yaw_offset_um(dx_um=dx_um, yaw_rad=yaw_rad, z_um=z_in,
                                       pivot_um=0.5 * length + p("yaw_pivot_um"))
        kappa = physics.lateral_kappa_per_um(kappa_per_um=kappa, dx_um=dx_eff, mode_radius_x_um=w_x_um)

        if static.taper == "linear":
            eta = physics.adiabatic_transfer(
                kappa_per_um=kappa, delta_beta_start_per_um=db0, delta_beta_end_per_um=db1,
                taper_length_um=length, model=static.model, segments=static.segments,
            )
        elif static.model == "landau_zener":
            eta = physics.landau_zener_with_ends(
                kappa_per_um=kappa, rate_per_um2=profile.rate_per_um2,
                delta_beta_start_per_um=profile.delta_beta_start_per_um,
                delta_beta_end_per_um=profile.delta_beta_end_per_um,
                crossing_inside=(z_c > 0.0) & (z_c < length))
        else:
            eta = physics.adiabatic_transfer_profile(
                kappa_per_um=kappa, delta_beta_per_um=profile.delta_beta, taper_length_um=length,
                focus_um=z_in, focus_width_um=FOCUS_WIDTH * kappa / profile.rate_per_um2,
                segments=static.segments,
            )
        excess = p("excess_loss_tm_db") if polarization == "tm" else p("excess_loss_te_db")
        return eta * 10.0 ** (-0.1 * excess)


class SiStripProfile(NamedTuple):
    """Δβ(z) of a linearly narrowing Si strip and its phase-matching point."""

    delta_beta: object  # callable z_um -> Δβ, 1/µm
    z_c_um: object  # phase-matching point (may lie outside [0, L])
    rate_per_um2: object  # |dΔβ/dz| at phase matching (> 0)
    delta_beta_start_per_um: object  # Δβ(0)
    delta_beta_end_per_um: object  # Δβ(L)


def _si_strip_profile(*, core, wavelength_um, n_pwg, values, params, polarization) -> SiStripProfile:
    """The Si strip's Δβ(z) = (2π/λ)·(n_eff,Si(w(z)) + δn − n_eff,PWG), w(z) linear from the
    start width to the sampled tip width over the taper.

    δn, the shift of the strip's index by temperature and humidity (Si and SiO₂ from
    :mod:`yieldmc.physics.materials` at the sampled temperature; the polymer cladding
    above the strip is the PWG cladding, ``core["n_clad"]``), is evaluated at the
    phase-matching width and held over the taper: it varies with w by a few % across the
    width range that matters (tests/test_couplers.py checks the effect on η).
    The phase-matching width solves n_eff,Si(w_c) + δn = n_eff,PWG (secant start from the
    taper ends, then Newton; the last step carries the implicit gradient).
    """
    from yieldmc.physics import materials, si_taper, silicon

    wl = wavelength_um
    k0 = 2.0 * jnp.pi / wl
    length = params["package.coupler.taper_length_um"]
    w0 = 1e-3 * params["package.coupler.start_width_nm"]
    w1 = 1e-3 * values["taper_tip_width_nm"]
    t = values["temperature_c"]
    ref_si, ref_box, ref_top = silicon.si_strip_reference_indices(wavelength_um=wl)
    deltas = dict(delta_n_si=materials.silicon_index(wavelength_um=wl, temperature_c=t) - ref_si,
                  delta_n_box=materials.silica_index(wavelength_um=wl, temperature_c=t) - ref_box,
                  delta_n_top=core["n_clad"] - ref_top)

    def n_ref(w):
        return si_taper.si_strip_index(width_um=w, wavelength_um=wl, polarization=polarization)

    def n_full(w):
        return si_taper.si_strip_index(width_um=w, wavelength_um=wl, polarization=polarization, **deltas)

    def residual(w):
        value, slope = jax.jvp(n_full, (w,), (jnp.ones_like(w),))
        return value - n_pwg, slope

    # at the start width, a scalar: the table is read once per program, not per element,
    # unless the material shifts vary per element (then n_full(w0) broadcasts with them)
    n_full_start = n_full(w0)
    r0 = n_full_start - n_pwg
    r1 = n_full(w1) - n_pwg
    lo, hi = 0.5 * min(silicon.NEAR_CUTOFF_WIDTH_UM.values()), silicon.WIDTH_MAX_UM
    guess = w0 + (w1 - w0) * r0 / jnp.where(r0 == r1, 1.0, r0 - r1)
    w = jax.lax.stop_gradient(jnp.clip(guess, lo, hi))
    for _ in range(_NEWTON_STEPS):
        f, df = residual(w)
        w = jax.lax.stop_gradient(jnp.clip(w - f / df, lo, hi))
    f, df = residual(w)
    w_c = w - f / df
    # at w_c itself, so that the rate's gradient carries n_eff''(w_c)·∂w_c/∂θ (with df at the
    # stopped w it would not: 3 % off in ∂loss/∂T, tests/test_si_taper.py)
    f_c, df_c = residual(w_c)
    shift = f_c + n_pwg - n_ref(w_c)
    dwdz = (w1 - w0) / length
    z_c = (w_c - w0) / dwdz
    rate = jnp.maximum(jnp.abs(k0 * df_c * dwdz), 1e-12)

    def delta_beta(z):
        return k0 * (n_ref(w0 + dwdz * z) + shift - n_pwg)

    start = k0 * (n_ref(w0) + shift - n_pwg)  # Δβ(0), the strip's start width a scalar
    return SiStripProfile(delta_beta, z_c, rate, start, delta_beta(length))


register_coupler(AdiabaticCoupler())
