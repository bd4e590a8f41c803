"""Validation problems with closed-form yields, shared by tests, benchmarks and docs.

Each problem is a butt-coupled package whose every constant loss is switched off
(no gap, no propagation loss, no Fresnel step, no thermal run-out) and whose chip mode
equals the PWG mode, so that a channel's loss is exactly the offset term of the Gaussian
overlap (docs/physics.md, "2.1 Gaussian butt coupling") at gap 0:

    loss = (10/ln 10)·(dx²/w_x² + dy²/w_y²)        (identical modes: 2d²/(w1²+w2²) = d²/w²)

A channel passes when that is <= ``spec.max_loss_db``; the yields below follow from the
distribution of the offsets alone (derivations in each docstring).
"""

from __future__ import annotations

import dataclasses
import math

from scipy import stats

DB_PER_NEPER_POWER = 10.0 / math.log(10.0)

# Nominal PWG of the default package (conf/package/pwg50_12ch.yaml).
_CORE_UM, _N_CORE, _N_CLAD, _WL_UM = 5.5, 1.5586, 1.55, 1.31


@dataclasses.dataclass(frozen=True)
class ValidationProblem:
    """A configuration (as Hydra overrides) with its closed-form yield."""

    name: str
    overrides: tuple[str, ...]
    expected_yield: float
    description: str


def pwg_mode_radii_um() -> tuple[float, float]:
    """Mode radii of the default PWG, from the package's own physics (setup, not answer)."""
    from yieldmc import physics

    w_x, w_y = physics.pwg_mode_radii_um(
        core_width_um=_CORE_UM, core_thickness_um=_CORE_UM, n_core=_N_CORE, n_clad=_N_CLAD,
        wavelength_um=_WL_UM,
    )
    return float(w_x), float(w_y)


def _base(channels: int, max_loss_db: float, max_failed: int) -> list[str]:
    w_x, w_y = pwg_mode_radii_um()
    return [
        "process=none",
        "package/coupler=butt",
        f"package.channels={channels}",
        "package.coupler.gap_um=0.0",
        f"package.coupler.mode_radius_x_um={w_x!r}",
        f"package.coupler.mode_radius_y_um={w_y!r}",
        f"package.coupler.n_gap={_N_CORE!r}",
        f"package.coupler.n_chip={_N_CORE!r}",
        "package.pwg.loss_db_per_cm=0.0",
        "package.cte_mismatch_ppm_per_k=0.0",
        "package.gap_thermal_um_per_k=0.0",
        f"spec.max_loss_db={float(max_loss_db)!r}",
        f"spec.max_failed_channels={max_failed}",
    ]


def _binomial_module_yield(p_channel: float, channels: int, max_failed: int) -> float:
    """P(at most ``max_failed`` of ``channels`` independent channels fail)."""
    return float(stats.binom.cdf(max_failed, channels, 1.0 - p_channel))


def channel_offset(*, sigma_um: float = 0.5, channels: int = 12, max_loss_db: float = 0.3,
                   max_failed: int = 0) -> ValidationProblem:
    """Independent lateral offsets per channel: dx ~ N(0, σ²) at the channel level.

    A channel passes iff |dx| <= r, r = w_x·sqrt(max_loss_db/(10/ln 10)), so
    p = erf(r/(σ√2)); channels are independent, hence a binomial module yield
    (p^C for ``max_failed = 0``).
    """
    w_x, _ = pwg_mode_radii_um()
    r = w_x * math.sqrt(max_loss_db / DB_PER_NEPER_POWER)
    p = math.erf(r / (sigma_um * math.sqrt(2.0)))
    return ValidationProblem(
        "channel_offset",
        tuple(_base(channels, max_loss_db, max_failed) + [f"process.dx_um.channel.sigma={float(sigma_um)!r}"]),
        _binomial_module_yield(p, channels, max_failed),
        "per-channel Gaussian lateral offset: binomial of erf",
    )


def module_offset(*, sigma_um: float = 1.0, channels: int = 12,
                  max_loss_db: float = 0.3) -> ValidationProblem:
    """One lateral offset shared by all channels of a module: dx ~ N(0, σ²) at module level.

    Every channel sees the same dx, so the module passes iff one channel does:
    Y = erf(r/(σ√2)) = P, not P^C.
    """
    w_x, _ = pwg_mode_radii_um()
    r = w_x * math.sqrt(max_loss_db / DB_PER_NEPER_POWER)
    return ValidationProblem(
        "module_offset",
        tuple(_base(channels, max_loss_db, 0) + [f"process.dx_um.module.sigma={float(sigma_um)!r}"]),
        math.erf(r / (sigma_um * math.sqrt(2.0))),
        "shared Gaussian module offset: erf, independent of the channel count",
    )


def radial_offset(*, scale: float = 0.25, channels: int = 4, max_loss_db: float = 0.3,
                  max_failed: int = 1) -> ValidationProblem:
    """Offsets in x and y per channel with σ_x = s·w_x/√2, σ_y = s·w_y/√2.

    Then loss/(10/ln 10) = dx²/w_x² + dy²/w_y² = (s²/2)(Z_x² + Z_y²), a scaled χ²₂, so a
    channel passes with p = 1 − exp(−R/s²), R = max_loss_db/(10/ln 10); the module
    yield is the binomial tail with ``max_failed`` allowed failures.
    """
    w_x, w_y = pwg_mode_radii_um()
    r = max_loss_db / DB_PER_NEPER_POWER
    p = -math.expm1(-r / scale**2)
    sx, sy = scale * w_x / math.sqrt(2.0), scale * w_y / math.sqrt(2.0)
    return ValidationProblem(
        "radial_offset",
        tuple(_base(channels, max_loss_db, max_failed) + [
            f"process.dx_um.channel.sigma={float(sx)!r}", f"process.dy_um.channel.sigma={float(sy)!r}",
        ]),
        _binomial_module_yield(p, channels, max_failed),
        "per-channel 2-D Gaussian offset: chi-square with two degrees of freedom",
    )


def adiabatic_lateral_offset(*, sigma_um: float = 1.5, max_loss_db: float = 0.5,
                             channels: int = 12) -> ValidationProblem:
    """Adiabatic coupler (``landau_zener`` model) with a shared lateral module offset.

    With κ = κ0·exp(−dx²/w_x²) and A = 2π·κ0²·L/|Δβ_end − Δβ_start|, the transfer is
    η = 1 − exp(−A·exp(−2dx²/w_x²)). The channel meets ``max_loss_db`` (after the
    propagation loss P) iff η >= η_min = 10^(−(S − P)/10), i.e. iff
    dx² <= (w_x²/2)·ln(A/(−ln(1 − η_min))); dx is shared, so Y = erf(r/(σ√2)).
    """
    w_x, _ = pwg_mode_radii_um()
    kappa, length, db0, db1, prop = 0.005, 2500.0, 0.05, -0.05, 0.28
    a = 2.0 * math.pi * kappa**2 * length / abs(db1 - db0)
    eta_min = 10.0 ** (-(max_loss_db - prop) / 10.0)
    r = w_x * math.sqrt(0.5 * math.log(a / -math.log1p(-eta_min)))
    overrides = (
        "process=none", "package/coupler=adiabatic_linear", "package.coupler.model=landau_zener",
        f"package.channels={channels}", f"package.coupler.kappa_per_um={kappa!r}",
        f"package.coupler.taper_length_um={length!r}",
        f"package.coupler.delta_beta_start_per_um={db0!r}",
        f"package.coupler.delta_beta_end_per_um={db1!r}",
        "package.pwg.loss_db_per_cm=0.28", "package.pwg.length_cm=1.0",
        "package.cte_mismatch_ppm_per_k=0.0", "package.gap_thermal_um_per_k=0.0",
        f"spec.max_loss_db={float(max_loss_db)!r}",
        "spec.max_failed_channels=0", f"process.dx_um.module.sigma={float(sigma_um)!r}",
    )
    return ValidationProblem(
        "adiabatic_lateral_offset", overrides, math.erf(r / (sigma_um * math.sqrt(2.0))),
        "Landau-Zener adiabatic coupler, shared lateral offset: erf",
    )


def two_offset_yield(sigma_x_um: float, sigma_y_um: float, *, max_loss_db: float = 0.3) -> float:
    """Yield of shared module offsets dx ~ N(0, σx²), dy ~ N(0, σy²) (channels identical).

    Pass iff dx²/w_x² + dy²/w_y² <= R, R = S/(10/ln 10); for each dx the dy-integral is an
    erf, leaving one numerical quadrature over dx.
    """
    from scipy import integrate

    w_x, w_y = pwg_mode_radii_um()
    r = max_loss_db / DB_PER_NEPER_POWER
    zmax = math.sqrt(r) * w_x / sigma_x_um

    def inner(z):
        half = math.sqrt(max(r - (sigma_x_um * z / w_x) ** 2, 0.0)) * w_y / sigma_y_um
        return math.exp(-z * z / 2) / math.sqrt(2 * math.pi) * math.erf(half / math.sqrt(2))

    return integrate.quad(inner, -zmax, zmax, epsabs=1e-13)[0]


def union_failure_probability(*, channels: int, sigma_module_um: float, sigma_channel_um: float,
                               max_loss_db: float, nodes: int = 160) -> float:
    """Exact P_f of the union problem (:func:`union_offset`).

    Given the module offsets (dx_m, dy_m), channel c passes iff |dx_m + dx_c| <= h(dy_m),
    h = w_x·sqrt(R − dy_m²/w_y²) (R = S/(10/ln 10); h = 0 where negative), with probability
    q = Φ((h − dx_m)/σ_c) − Φ((−h − dx_m)/σ_c); the channels are independent given the
    module, so P_f = E[1 − q^C] over dx_m, dy_m ~ N(0, σ_m²) — a 2-D Gauss–Hermite
    quadrature, with 1 − q^C = −expm1(C·log1p(−(1 − q))) for accuracy at P_f ~ 1e-6.
    """
    import numpy as np
    from scipy import special

    w_x, w_y = pwg_mode_radii_um()
    r = max_loss_db / DB_PER_NEPER_POWER
    x, wt = np.polynomial.hermite_e.hermegauss(nodes)  # ∫ f(z) φ(z) dz ≈ Σ wt f(x) / sqrt(2π)
    wt = wt / math.sqrt(2 * math.pi)
    dxm = sigma_module_um * x[:, None]
    dym = sigma_module_um * x[None, :]
    h = w_x * np.sqrt(np.maximum(r - dym**2 / w_y**2, 0.0))
    fail_c = special.ndtr((-h - dxm) / sigma_channel_um) + special.ndtr((dxm - h) / sigma_channel_um)
    with np.errstate(divide="ignore"):  # a certain channel failure: log1p(−1) = −inf, 1 − q^C = 1
        fail_module = -np.expm1(channels * np.log1p(-np.minimum(fail_c, 1.0)))
    return float(wt @ fail_module @ wt)


def union_offset(*, channels: int = 12, sigma_module_um: float = 0.2, sigma_channel_um: float = 0.5,
                 failure_probability: float = 1e-4) -> ValidationProblem:
    """A rare failure of a union of 2C channel events (the union case of ``sampler=is``,
    scripts/is_coverage.py): shared module offsets dx, dy ~ N(0, σ_m²) and a per-channel
    lateral offset dx_c ~ N(0, σ_c²); a module fails
    when any channel, on either side, exceeds the spec. ``spec.max_loss_db`` is set so
    that P_f (:func:`union_failure_probability`) equals ``failure_probability``.
    """
    from scipy.optimize import brentq

    def pf(s):
        return union_failure_probability(channels=channels, sigma_module_um=sigma_module_um,
                                         sigma_channel_um=sigma_channel_um, max_loss_db=s)

    spec = brentq(lambda s: math.log(pf(s)) - math.log(failure_probability), 0.05, 50.0, xtol=1e-12)
    overrides = _base(channels, spec, 0) + [
        f"process.dx_um.module.sigma={float(sigma_module_um)!r}",
        f"process.dy_um.module.sigma={float(sigma_module_um)!r}",
        f"process.dx_um.channel.sigma={float(sigma_channel_um)!r}",
    ]
    return ValidationProblem("union_offset", tuple(overrides), 1.0 - pf(spec),
                             f"union of {2 * channels} channel events (module dx, dy and channel dx)")


def all_problems() -> list[ValidationProblem]:
    """The validation problems at their default parameters."""
    return [channel_offset(), module_offset(), radial_offset(), adiabatic_lateral_offset()]


def binomial_standard_error(p: float, n: int) -> float:
    """Standard error sqrt(p(1−p)/N) of a yield estimate from N modules."""
    return math.sqrt(max(p * (1.0 - p), 0.0) / n)




def synthetic_measurements(overrides, *, modules: int, seed: int):
    """Measured-looking losses of ``modules`` modules built under the composed
    configuration ``overrides`` (the calibration's known-answer data): the
    engine's own model on draws of ``jax.random.key(seed)`` — independent of any run's
    block layout. Returns a pandas DataFrame with columns ``module, layer, channel,
    loss_db`` (+ ``condition`` under conditions), one row per channel."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import pandas as pd

    from yieldmc.engine.blocks import condition_parts, split_draws
    from yieldmc.engine.rng import standard_normals
    from yieldmc.io.config import compose, problem_from_config

    problem = problem_from_config(compose(list(overrides) + ["samples=16"]))
    static = dataclasses.replace(problem.static, block_size=int(modules))
    params = {k: jnp.asarray(np.asarray(v)[0], jnp.dtype(static.dtype)) for k, v in problem.params.items()}
    u = standard_normals(jax.random.key(seed), static)
    loss = np.asarray(condition_parts(split_draws(u, static), params, static)["loss"], np.float64)  # (K, L, C, M)
    k, nl, nc, m = loss.shape
    grid = np.stack(np.meshgrid(np.arange(k), np.arange(nl), np.arange(nc), np.arange(m), indexing="ij"), -1)
    rows = grid.reshape(-1, 4)
    frame = pd.DataFrame({"module": [f"M{i + 1:05d}" for i in rows[:, 3]], "layer": rows[:, 1],
                          "channel": rows[:, 2], "loss_db": loss.reshape(-1)})
    if static.conditions:
        frame["condition"] = [static.conditions[i].name for i in rows[:, 0]]
    return frame


def supermode_coupler_eta(case: dict, geometry: dict, *, dtype=None, model: str = "cmt", segments: int = 64):
    """The runtime supermode coupler's η on one case of the coupled-mode reference
    (``tests/data/coupler_reference.json``, written by ``scripts/coupler_reference.py``):
    the table's own PWG (no polymer shift), no yaw. Shared by that script and the tests.

    Args:
      case: ``wavelength_um``, ``gap_um``, ``offset_um``, ``temperature_c``, ``tip_nm``,
        ``polarization``.
      geometry: ``length_um``, ``start_nm``, ``tip_nm``, ``exponent`` (or None),
        ``profile``, ``knots`` ((fraction, width nm), …).
      dtype: the computation's dtype (default float32, the runtime's).
    """
    import jax.numpy as jnp

    from yieldmc.couplers.adiabatic import AdiabaticStatic, supermode_transfer
    from yieldmc.engine.model import CouplerInputs
    from yieldmc.physics import materials, supermodes

    f = lambda v: jnp.asarray(v, dtype or jnp.float32)  # noqa: E731
    lam = case["wavelength_um"]
    n_clad = materials.pwg_cladding_index(wavelength_um=lam, temperature_c=case["temperature_c"])
    params = {f"package.coupler.{k}": f(v) for k, v in (
        ("taper_length_um", geometry["length_um"]), ("start_width_nm", geometry["start_nm"]),
        ("tip_width_nm", geometry["tip_nm"]), ("yaw_pivot_um", 0.0),
        ("profile_exponent", geometry["exponent"] or 1.0))}
    values = {"gap_um": f(case["gap_um"]), "temperature_c": f(case["temperature_c"]),
              "taper_tip_width_nm": f(case["tip_nm"])}
    core = {"n_core": f(n_clad + supermodes.TABLE_CORE_CONTRAST), "n_clad": f(n_clad)}
    inputs = CouplerInputs(dx_um=f(case["offset_um"]), dy_um=f(0.0), x_um=None, yaw_rad=f(0.0), w_x_um=None,
                           w_y_um=None, core=core, wavelength_um=f(lam), params=params, values=values)
    static = AdiabaticStatic(model=model, segments=segments, derive_decay=True, taper="si_strip",
                             profile=geometry["profile"],
                             knots=tuple((float(a), 1e-3 * float(b)) for a, b in geometry["knots"]))
    return supermode_transfer(inputs, static=static, polarization=case["polarization"])
