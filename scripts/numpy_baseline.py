"""Independent plain-NumPy implementation of the yieldmc Monte-Carlo yield model.

It serves two purposes:

* a **speed baseline** for the JAX engine (a straightforward, vectorised NumPy code
  path on the CPU, processed in chunks of modules so that memory stays bounded), and
* a **second implementation** to cross-check the engine statistically: the formulas
  below were written from the specification (docs/physics.md and the YAML files in
  ``conf/``), not taken from ``yieldmc``. The random numbers differ from
  the engine's (NumPy's PCG64 instead of JAX's threefry), so only statistics are
  compared.

Nothing from ``yieldmc`` is used by :func:`simulate`; ``yieldmc.compose`` and
``yieldmc.io.config.to_container`` are imported only by :func:`load_config` (the helper
that turns Hydra overrides into the plain configuration dict), and ``yieldmc.run`` only
by the comparison in ``__main__``.

Usage::

    python scripts/numpy_baseline.py                      # the cross-check table
    python scripts/numpy_baseline.py --samples 50000      # quicker
    python scripts/numpy_baseline.py --time-only          # only the baseline timings
    python scripts/numpy_baseline.py --engine-dtype float64   # engine in float64 (x64)

    >>> cfg = load_config(["package/coupler=butt"])
    >>> out = simulate(cfg, samples=100_000, seed=1)
    >>> out["n_pass"] / out["n_samples"]

Ambiguities of the specification and how they are resolved here (each is also noted
where it is used):

* A1  "skip levels whose draw is identically 0": normal with mean = sigma = 0, uniform
      with low = high = 0, truncnormal with sigma = 0 and its mean clipped to [low, high]
      equal to 0. A lognormal draw is never 0 (it is exp(mean) > 0 even at sigma = 0).
* A2  truncnormal with sigma = 0 is taken as the point mass at clip(mean, low, high)
      (the inverse-CDF formula of docs/physics.md is 0/0 there).
* A3  The phase-matching point z_c = L·Δβ0/(Δβ0 − Δβ1) is undefined for a zero sweep;
      it is then taken as the taper centre (only the yaw walk-off uses it).
* A4  The Fresnel factors of the butt coupler use the *nominal* indices
      (package.pwg.n_core, n_gap, n_chip) — docs/physics.md "at normal incidence with
      the nominal indices" — not the temperature-shifted core index.
* A5  The engine keeps its loss sums clipped to [0, 100] dB per sample
      (docs/physics.md "Statistics"); ``loss_sum`` here is the raw sum, and
      ``loss_clip_db=100`` reproduces the engine's convention for the comparison.
* A6  Only passive assembly (alignment.mode = passive) and a single point (sweep =
      null) are modelled; anything else raises.
* A7  With decay_per_um = null, γ = k0·sqrt(n_eff0² − n_gap²) (n_eff0 at the index
      reference temperature) is undefined if n_eff0 <= n_gap; this baseline
      raises a ValueError there (and counts any NaN loss as a failed channel).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np
from scipy.special import ndtr, ndtri

# ----------------------------------------------------------------------------------------
# Variation model (docs/physics.md, "3. Variation model")
# ----------------------------------------------------------------------------------------

#: Quantity order (also the order in which this baseline draws its normals per chunk).
QUANTITY_NAMES = (
    "dx_um", "dy_um", "gap_um", "yaw_mrad", "roll_mrad", "pitch_ppm",
    "core_thickness_um", "core_width_um", "dn_core", "temperature_c", "layer_thickness_um",
)
LEVEL_NAMES = ("module", "layer", "channel")
KNOWN_DISTRIBUTIONS = ("normal", "truncnormal", "uniform", "lognormal", "shiftedlognormal")


def _level_spec(process: dict, quantity: str, level: str) -> dict:
    spec = dict(process.get(quantity, {}).get(level) or {})
    spec.setdefault("distribution", "normal")
    spec.setdefault("mean", 0.0)
    spec.setdefault("sigma", 0.0)
    spec.setdefault("low", -math.inf)
    spec.setdefault("high", math.inf)
    key = f"process.{quantity}.{level}"
    if spec["distribution"] not in KNOWN_DISTRIBUTIONS:
        raise ValueError(f"{key}.distribution: unknown {spec['distribution']!r}")
    for p in ("mean", "sigma", "low", "high"):
        spec[p] = float(spec[p])
    if spec["sigma"] < 0:
        raise ValueError(f"{key}.sigma: negative ({spec['sigma']})")
    if spec["low"] > spec["high"]:
        raise ValueError(f"{key}: low > high")
    if spec["distribution"] == "uniform" and not (
        math.isfinite(spec["low"]) and math.isfinite(spec["high"])
    ):
        raise ValueError(f"{key}: uniform needs finite low and high")
    if spec["distribution"] == "shiftedlognormal" and not (math.isfinite(spec["low"]) and spec["mean"] > spec["low"]):
        raise ValueError(f"{key}: shiftedlognormal needs a finite low below the mean")
    return spec


def _draw_is_zero(spec: dict) -> bool:
    """A1: True when the level's draw is the constant 0 for every z."""
    d = spec["distribution"]
    if d == "normal":
        return spec["mean"] == 0.0 and spec["sigma"] == 0.0
    if d == "uniform":
        return spec["low"] == 0.0 and spec["high"] == 0.0
    if d == "truncnormal":
        return spec["sigma"] == 0.0 and min(max(spec["mean"], spec["low"]), spec["high"]) == 0.0
    if d == "shiftedlognormal":  # sigma = 0 draws the mean
        return spec["sigma"] == 0.0 and spec["mean"] == 0.0
    return False  # lognormal: exp(.) > 0


def quantile_transform(z: np.ndarray, spec: dict) -> np.ndarray:
    """Map standard normals z to draws of the level's distribution (docs/physics.md)."""
    d = spec["distribution"]
    mean, sigma, low, high = spec["mean"], spec["sigma"], spec["low"], spec["high"]
    if d == "normal":
        return mean + sigma * z
    if d == "lognormal":
        return np.exp(mean + sigma * z)
    if d == "uniform":
        return low + (high - low) * ndtr(z)
    if d == "shiftedlognormal":
        # low + lognormal with the draw's own mean and standard deviation:
        # s² = ln(1 + sigma²/(mean − low)²), μ = ln(mean − low) − s²/2
        s2 = math.log1p((sigma / (mean - low)) ** 2)
        return (low + np.exp(math.log(mean - low) - 0.5 * s2 + math.sqrt(s2) * z)).astype(z.dtype, copy=False)
    # truncnormal by the inverse CDF: mean + sigma·Φ⁻¹(Φ(α) + Φ(z)(Φ(β) − Φ(α)))
    if sigma == 0.0:  # A2: point mass
        return np.full_like(z, min(max(mean, low), high))
    pa = ndtr((low - mean) / sigma)
    pb = ndtr((high - mean) / sigma)
    u = pa + (pb - pa) * ndtr(z)
    eps = float(np.finfo(z.dtype).eps)
    x = mean + sigma * ndtri(np.clip(u, eps, 1.0 - eps))
    return np.clip(x, low, high).astype(z.dtype, copy=False)


def _copula_cholesky(process: dict) -> tuple[list[str], np.ndarray | None]:
    corr = process.get("correlation") or {}
    names = list(corr.get("quantities") or [])
    if not names:
        return [], None
    for q in names:
        if q not in QUANTITY_NAMES:
            raise ValueError(f"process.correlation.quantities: unknown quantity {q!r}")
    if len(set(names)) != len(names):
        raise ValueError("process.correlation.quantities: duplicate quantity")
    m = np.asarray(corr.get("matrix"), dtype=np.float64)
    if m.shape != (len(names), len(names)):
        raise ValueError(f"process.correlation.matrix: must be {len(names)}x{len(names)}")
    if not (np.all(np.isfinite(m)) and np.allclose(m, m.T) and np.allclose(np.diag(m), 1.0)):
        raise ValueError("process.correlation.matrix: must be symmetric with a unit diagonal")
    try:
        chol = np.linalg.cholesky(m)
    except np.linalg.LinAlgError:
        raise ValueError("process.correlation.matrix: not positive definite") from None
    return names, chol


# ----------------------------------------------------------------------------------------
# Physics (docs/physics.md), written independently
# ----------------------------------------------------------------------------------------

def slab_te0_u(v: np.ndarray) -> np.ndarray:
    """TE0 transverse parameter u of a symmetric slab: u·tan u = sqrt(V² − u²).

    Squaring and using 1 + tan² = 1/cos² gives the equivalent u = V·cos u on (0, π/2)
    (cos u > 0 there, so no spurious root). F(u) = u − V cos u is increasing and convex on
    [0, π/2] with F(0) < 0 < F(π/2), so Newton's method converges from any start in
    [0, π/2] once iterates are kept in that interval (after one step every iterate lies
    at or right of the root and then decreases monotonically). The start is the
    first-order continuation u_ref + (V − V_ref)·du/dV from the root at the median V
    (du/dV = cos u/(1 + V sin u)); Monte-Carlo V's scatter little, so two or three steps
    reach machine precision. (Written independently of the engine, which iterates on
    u − atan(w/u).)
    """
    v = np.asarray(v)
    dt = v.dtype if v.dtype.kind == "f" else np.dtype(np.float64)
    v = v.astype(dt, copy=False)
    half_pi = 0.5 * math.pi
    # reference root at the median V by a scalar Newton from π/2 (monotone, see above)
    v_ref = float(np.median(v)) if v.size > 1 else float(v)
    u_ref = min(v_ref, half_pi)
    for _ in range(60):
        step = (u_ref - v_ref * math.cos(u_ref)) / (1.0 + v_ref * math.sin(u_ref))
        u_ref -= step
        if abs(step) < 1e-16:
            break
    slope = math.cos(u_ref) / (1.0 + v_ref * math.sin(u_ref))
    u = np.clip(u_ref + (v - v_ref) * slope, 0.0, half_pi).astype(dt, copy=False)
    tol = 4.0 * float(np.finfo(dt).eps)
    for _ in range(60):
        step = (u - v * np.cos(u)) / (1.0 + v * np.sin(u))
        u = np.clip(u - step, 0.0, half_pi)
        if not np.max(np.abs(step), initial=0.0) > tol:  # also stops on NaN
            break
    return u


def slab_solution(*, thickness_um, n_core, n_clad, wavelength_um):
    """Symmetric-slab TE0: (V, n_eff). n_eff² = n_cl² + (1 − u²/V²)(n_co² − n_cl²)."""
    k0 = 2.0 * np.pi / wavelength_um
    na2 = n_core * n_core - n_clad * n_clad
    v = k0 * (0.5 * thickness_um) * np.sqrt(na2)
    u = slab_te0_u(v)
    b = 1.0 - (u / v) ** 2
    n_eff = np.sqrt(n_clad * n_clad + b * na2)
    return v, n_eff


def gaussian_fit_radius_um(*, thickness_um, v):
    """Best-fit Gaussian radius of the TE0 slab mode (the slab fit of docs/physics.md)."""
    return 0.5 * thickness_um * (0.6450 + 1.0439 / v + 0.5458 / v**3)


def pwg_modes(*, width_um, thickness_um, n_core, n_clad, wavelength_um):
    """(w_x, w_y, n_eff) of the rectangular PWG core.

    The engine's PWG modes are a correction fitted to a full-vector
    mode-solver table (yieldmc.physics.slab, tested against that table on its own); the
    baseline takes them from there — shared, not re-implemented — so that it stays a
    second implementation of everything downstream (draws, geometry, couplers,
    statistics). The plain effective-index method is :func:`eim_pwg_modes`.
    """
    from yieldmc.physics import slab

    args = dict(core_width_um=np.asarray(width_um, np.float64), core_thickness_um=np.asarray(thickness_um, np.float64),
                n_core=np.asarray(n_core, np.float64), n_clad=np.asarray(n_clad, np.float64),
                wavelength_um=np.asarray(wavelength_um, np.float64))
    w_x, w_y = (np.asarray(w) for w in slab.pwg_mode_radii_um(**args))
    return w_x, w_y, np.asarray(slab.pwg_effective_index(**args))


def eim_pwg_modes(*, width_um, thickness_um, n_core, n_clad, wavelength_um):
    """Effective-index method: (w_x, w_y, n_eff) of the rectangular PWG core.

    Thickness slab first (gives n1 and w_y); its n_eff is the core index of the width
    slab (gives w_x and the PWG n_eff).
    """
    v_t, n1 = slab_solution(thickness_um=thickness_um, n_core=n_core, n_clad=n_clad,
                            wavelength_um=wavelength_um)
    w_y = gaussian_fit_radius_um(thickness_um=thickness_um, v=v_t)
    v_w, n_eff = slab_solution(thickness_um=width_um, n_core=n1, n_clad=n_clad,
                               wavelength_um=wavelength_um)
    w_x = gaussian_fit_radius_um(thickness_um=width_um, v=v_w)
    return w_x, w_y, n_eff


def fresnel(n1: float, n2: float) -> float:
    r = (n1 - n2) / (n1 + n2)
    return 1.0 - r * r


def butt_axis_efficiency(*, w1, w2, d, gap, theta, k):
    """One axis of the Gaussian overlap (docs/physics.md, "2.1 Gaussian butt coupling"), in real arithmetic.

    a = 1/(w1²(1 + i·gap/z_R)), b = 1/w2², z_R = k w1²/2,
    η = 2 sqrt(Re a · b)/|a + b| · exp(2 Re[(2bd − ikθ)²/(4(a + b))] − 2bd²).
    With τ = gap/z_R: a = (1 − iτ)/(w1²(1 + τ²)); a + b = p + iq;
    (2bd − ikθ)² = N_r + i N_i with N_r = 4b²d² − k²θ², N_i = −4bdkθ;
    Re[N/(4(p + iq))] = (N_r p + N_i q)/(4(p² + q²)).
    """
    w1sq = w1 * w1
    tau = gap / (0.5 * k * w1sq)
    den = 1.0 / (w1sq * (1.0 + tau * tau))
    re_a = den
    im_a = -tau * den
    b = 1.0 / (w2 * w2)
    p = re_a + b
    q = im_a
    mod2 = p * p + q * q
    bd = b * d
    kt = k * theta
    n_r = 4.0 * bd * bd - kt * kt
    n_i = -4.0 * bd * kt
    expo = (n_r * p + n_i * q) / (2.0 * mod2) - 2.0 * bd * d
    return 2.0 * np.sqrt(re_a * b / mod2) * np.exp(expo)


def cmt_transfer(*, kappa, db0, db1, length, segments, tile_elements=1 << 15):
    """|b(L)|² of the linear-sweep coupled-mode equations, S exact 2×2 segments.

    Segment j (h = L/S) uses Δβ at its midpoint; its transfer matrix is
    [[c − i s δ, −i s κ], [−i s κ, c + i s δ]], δ = Δβ/2, Ω = sqrt(δ² + κ²),
    c = cos Ωh, s = sin(Ωh)/Ω. Start (a, b) = (1, 0). Carried in real arithmetic
    (a = ar + i·ai, b = br + i·bi) over flat tiles of ``tile_elements`` waveguides, so the
    64-step loop works in cache.
    """
    shape = np.broadcast_shapes(np.shape(kappa), np.shape(db0), np.shape(db1))
    dt = np.result_type(kappa, db0, db1)
    kap = np.broadcast_to(kappa, shape).reshape(-1)
    d0 = np.broadcast_to(db0, shape).reshape(-1)
    sw = np.broadcast_to(np.asarray(db1) - np.asarray(db0), shape).reshape(-1)
    out = np.empty(kap.shape, dtype=dt)
    h = length / segments
    for lo in range(0, kap.size, tile_elements):
        sl = slice(lo, lo + tile_elements)
        k_t, d0_t, sw_t = kap[sl], d0[sl], sw[sl]
        k2 = k_t * k_t
        ar = np.ones_like(k_t)
        ai = np.zeros_like(k_t)
        br = np.zeros_like(k_t)
        bi = np.zeros_like(k_t)
        for j in range(segments):
            delta = 0.5 * (d0_t + sw_t * ((j + 0.5) / segments))
            omega = np.sqrt(delta * delta + k2)
            phase = omega * h
            c = np.cos(phase)
            # s = sin(Ωh)/Ω, → h as Ω → 0
            nz = omega > 0
            s = np.where(nz, np.sin(phase) / np.where(nz, omega, 1.0), h)
            sd = s * delta
            sk = s * k_t
            ar, ai, br, bi = (c * ar + sd * ai + sk * bi,
                              c * ai - sd * ar - sk * br,
                              c * br - sd * bi + sk * ai,
                              c * bi + sd * br - sk * ar)
        out[sl] = br * br + bi * bi
    return out.reshape(shape)


def landau_zener(*, kappa, db0, db1, length):
    """η = 1 − exp(−2π κ² L / |Δβ1 − Δβ0|)."""
    return -np.expm1(-2.0 * np.pi * kappa * kappa * length / np.abs(db1 - db0))


# ----------------------------------------------------------------------------------------
# The model on one chunk of modules
# ----------------------------------------------------------------------------------------

class _Model:
    """Everything fixed for a configuration (parsed once), plus the chunk evaluation."""

    def __init__(self, config: dict, dtype):
        if config.get("sweep"):
            raise NotImplementedError("numpy_baseline: sweeps are not supported (A6)")
        mode = (config.get("alignment") or {}).get("mode", "passive")
        if mode != "passive":
            raise NotImplementedError("numpy_baseline: only alignment.mode=passive (A6)")
        self.dtype = np.dtype(dtype)
        pkg = config["package"]
        self.pkg = pkg
        self.pwg = pkg["pwg"]
        self.cpl = pkg["coupler"]
        self.L = int(pkg["layers"])
        self.C = int(pkg["channels"])
        self.max_loss = float(config["spec"]["max_loss_db"])
        self.max_failed = int(config["spec"]["max_failed_channels"])
        self.wl = float(pkg["wavelength_um"])
        self.k0 = 2.0 * math.pi / self.wl
        self.propagation_db = float(self.pwg["loss_db_per_cm"]) * float(self.pwg["length_cm"])

        process = config["process"]
        self.copula, self.chol = _copula_cholesky(process)
        self.specs = {(q, lv): _level_spec(process, q, lv)
                      for q in QUANTITY_NAMES for lv in LEVEL_NAMES}
        self.active = [(q, lv) for (q, lv), s in self.specs.items() if not _draw_is_zero(s)]
        # Nominal values; every other quantity is an error with nominal 0.
        self.nominal = {q: 0.0 for q in QUANTITY_NAMES}
        self.nominal["gap_um"] = float(self.cpl["gap_um"])
        self.nominal["core_thickness_um"] = float(self.pwg["core_thickness_um"])
        self.nominal["core_width_um"] = float(self.pwg["core_width_um"])
        self.nominal["temperature_c"] = float(pkg["temperature_c"])

        c = np.arange(self.C, dtype=np.float64)
        self.x_c = ((c - 0.5 * (self.C - 1)) * float(pkg["pitch_um"])).astype(self.dtype)
        self.y_l = (np.arange(self.L, dtype=np.float64) * float(pkg["layer_pitch_um"])
                    ).astype(self.dtype)[:, None]

        self.kind = self.cpl["kind"]
        if self.kind not in ("butt", "adiabatic"):
            raise ValueError(f"package.coupler.kind: unknown {self.kind!r}")
        if self.kind == "adiabatic" and self.cpl.get("taper", "linear") != "linear":
            raise NotImplementedError(f"numpy_baseline: only the linear Δβ taper (package.coupler.taper=linear), "
                                      f"not {self.cpl.get('taper')!r}")
        if self.kind == "adiabatic":
            self.model = self.cpl.get("model", "cmt")
            if self.model not in ("cmt", "landau_zener"):
                raise ValueError(f"package.coupler.model: unknown {self.model!r}")
            self.segments = int(self.cpl.get("segments") or 64)
            # Nominal PWG n_eff: nominal core, dn_core = 0, at pwg.index_temperature_c (the
            # temperature the taper's Δβ sweep and n_gap are specified at; docs/physics.md)
            n_core0, n_clad0 = self._indices(0.0, float(self.pwg["index_temperature_c"]))
            _, _, n_eff0 = pwg_modes(
                width_um=np.float64(self.nominal["core_width_um"]),
                thickness_um=np.float64(self.nominal["core_thickness_um"]),
                n_core=np.float64(n_core0), n_clad=np.float64(n_clad0), wavelength_um=self.wl)
            self.n_eff0 = float(n_eff0)
            decay = self.cpl.get("decay_per_um")
            n_gap = float(self.cpl["n_gap"])
            if decay is not None:
                self.gamma = float(decay)
            elif self.n_eff0 > n_gap:
                self.gamma = self.k0 * math.sqrt(self.n_eff0**2 - n_gap**2)
            else:
                # A7: the spec's γ = k0·sqrt(n_eff0² − n_gap²) is undefined (NaN) when the
                # nominal PWG n_eff at package.temperature_c falls to n_gap or below
                # (dn/dT lowers it; with the defaults above ≈ 71.6 °C). Refuse clearly.
                raise ValueError(
                    f"package.coupler.decay_per_um: the nominal PWG n_eff {self.n_eff0:.6f} at "
                    f"package.temperature_c={self.nominal['temperature_c']} is not above "
                    f"package.coupler.n_gap={n_gap}; γ cannot be derived, set decay_per_um")

    def _indices(self, dn_core, temperature):
        """n_core(T) = n_core + dn_core + dn/dT·(T − T_index), n_clad(T) = n_clad + dn/dT·(…)."""
        dt = temperature - float(self.pwg["index_temperature_c"])
        thermo = float(self.pwg["dn_dt_per_k"]) * dt
        return float(self.pwg["n_core"]) + dn_core + thermo, float(self.pwg["n_clad"]) + thermo

    # -- sampling ---------------------------------------------------------------------
    def sample_values(self, rng: np.random.Generator, n: int) -> dict:
        """Quantity values, nominal + level draws, broadcastable to (n, L, C)."""
        dt = self.dtype
        shapes = {"module": (n, 1, 1), "layer": (n, self.L, 1), "channel": (n, self.L, self.C)}
        z = {}
        if self.copula:
            zc = rng.standard_normal((n, len(self.copula)), dtype=dt)
            zc = zc @ self.chol.T.astype(dt)  # z ← L z per module
            for i, q in enumerate(self.copula):
                z[(q, "module")] = zc[:, i].reshape(n, 1, 1)
        values = {q: self.nominal[q] for q in QUANTITY_NAMES}
        for q, lv in self.active:
            zz = z.get((q, lv))
            if zz is None:
                zz = rng.standard_normal(shapes[lv], dtype=dt)
            values[q] = values[q] + quantile_transform(zz, self.specs[(q, lv)]).astype(dt, copy=False)
        for q in QUANTITY_NAMES:  # scalars stay Python floats (weak dtype)
            if isinstance(values[q], np.ndarray):
                values[q] = values[q].astype(dt, copy=False)
        return values

    # -- losses -----------------------------------------------------------------------
    def losses(self, v: dict, n: int) -> np.ndarray:
        L, C = self.L, self.C
        x, y = self.x_c, self.y_l
        roll = v["roll_mrad"] * 1e-3
        phi = v["yaw_mrad"] * 1e-3
        temp = v["temperature_c"]
        cte = float(self.pkg["cte_mismatch_ppm_per_k"]) * 1e-6
        t_lock = float(self.pkg["lock_temperature_c"])
        dx = v["dx_um"] + x * v["pitch_ppm"] * 1e-6 + x * cte * (temp - t_lock) - y * roll
        lt = v["layer_thickness_um"]
        if isinstance(lt, np.ndarray) and L > 1:
            lt = np.broadcast_to(lt, np.broadcast_shapes(lt.shape, (1, L, C)))
            below = np.zeros(lt.shape, dtype=lt.dtype)
            below[:, 1:, :] = np.cumsum(lt[:, :-1, :], axis=1)  # exclusive sum over layers below
        else:
            below = 0.0  # no draw (nominal 0) or a single layer: nothing lies below
        # the bond line's thermal change from the lock temperature (docs/physics.md,
        # "Thermo-mechanics of the gap"); humidity stays at its bonding value here
        dy = v["dy_um"] + x * roll + below + float(self.pkg["gap_thermal_um_per_k"]) * (temp - t_lock)

        n_core, n_clad = self._indices(v["dn_core"], temp)
        as_arr = lambda a: np.asarray(a, dtype=self.dtype)  # noqa: E731
        w_x, w_y, n_eff = pwg_modes(width_um=as_arr(v["core_width_um"]),
                                    thickness_um=as_arr(v["core_thickness_um"]),
                                    n_core=as_arr(n_core), n_clad=as_arr(n_clad),
                                    wavelength_um=self.wl)
        cpl = self.cpl
        if self.kind == "butt":
            n_gap = float(cpl["n_gap"])
            k = 2.0 * math.pi * n_gap / self.wl
            gap = np.maximum(v["gap_um"] + x * phi, 0.0)  # array turns about its centre
            eta = butt_axis_efficiency(w1=w_x, w2=float(cpl["mode_radius_x_um"]), d=dx,
                                       gap=gap, theta=phi, k=k)
            eta = eta * butt_axis_efficiency(w1=w_y, w2=float(cpl["mode_radius_y_um"]), d=dy,
                                             gap=gap, theta=0.0, k=k)
            # A4: nominal indices for the two facets
            eta = eta * (fresnel(float(self.pwg["n_core"]), n_gap)
                         * fresnel(n_gap, float(cpl["n_chip"])))
        else:
            length = float(cpl["taper_length_um"])
            shift = -self.k0 * (n_eff - self.n_eff0)  # higher PWG n_eff lowers Δβ
            db0 = float(cpl["delta_beta_start_per_um"]) + shift
            db1 = float(cpl["delta_beta_end_per_um"]) + shift
            g = np.maximum(v["gap_um"] + dy, 0.0)  # contact: the PWG rests on the chip (docs/physics.md)
            kappa = float(cpl["kappa_per_um"]) * np.exp(-self.gamma * (g - float(cpl["gap_um"])))
            den = db0 - db1
            ok = den != 0
            # A3: a zero sweep has no phase-matching point; use the taper centre
            z_c = np.where(ok, length * db0 / np.where(ok, den, 1.0), 0.5 * length)
            z_c = np.clip(z_c, 0.0, length)
            pivot = 0.5 * length + float(cpl.get("yaw_pivot_um") or 0.0)
            dx_eff = dx + phi * (z_c - pivot)
            kappa = kappa * np.exp(-(dx_eff * dx_eff) / (w_x * w_x))
            if self.model == "cmt":
                eta = cmt_transfer(kappa=kappa, db0=db0, db1=db1, length=length,
                                   segments=self.segments)
            else:
                eta = landau_zener(kappa=kappa, db0=db0, db1=db1, length=length)
        eta = np.maximum(eta, 1e-30)
        loss = -10.0 * np.log10(eta) + self.propagation_db
        return np.broadcast_to(loss, (n, L, C))


def simulate(config: dict, *, samples: int, seed: int, chunk: int = 65536,
             dtype=np.float64, loss_clip_db: float | None = None,
             tile_elements: int = 1 << 15) -> dict:
    """Monte-Carlo yield of one configuration with plain NumPy.

    Args:
      config: the resolved configuration as a plain dict
        (``to_container(yieldmc.compose(overrides))``), without a sweep.
      samples: number of modules.
      seed: seed of ``numpy.random.default_rng``; the normals are drawn chunk by chunk,
        quantity by quantity, level by level (results depend on ``chunk``).
      chunk: modules per chunk (memory ∝ chunk × layers × channels).
      dtype: float64 (default) or float32 for the arithmetic; sums are float64.
      loss_clip_db: if given, each loss is clipped to [0, loss_clip_db] before it enters
        ``loss_sum``/``loss_sq_sum`` (the engine clips at 100 dB; A5).
      tile_elements: waveguides per slice of a chunk in the physics (speed only; the
        random numbers and results do not depend on it).

    Returns:
      ``{"n_pass", "n_samples", "channel_fail" (L, C) int64, "loss_sum" (L, C) float64,
      "loss_sq_sum" (L, C) float64}``.
    """
    model = _Model(config, dtype)
    rng = np.random.default_rng(seed)
    L, C = model.L, model.C
    n_pass = 0
    fail = np.zeros((L, C), dtype=np.int64)
    loss_sum = np.zeros((L, C), dtype=np.float64)
    loss_sq = np.zeros((L, C), dtype=np.float64)
    sub = max(1, int(tile_elements) // (L * C))
    done = 0
    while done < samples:
        n = min(chunk, samples - done)
        values = model.sample_values(rng, n)
        # The physics runs on cache-sized slices of the chunk (same numbers, faster).
        for lo in range(0, n, sub):
            hi = min(lo + sub, n)
            part = {q: (a[lo:hi] if isinstance(a, np.ndarray) else a) for q, a in values.items()}
            loss = model.losses(part, hi - lo)
            # a NaN loss (invalid physics) counts as a failure, never as a pass
            failed = ~(loss <= model.max_loss)
            n_pass += int(np.count_nonzero(failed.sum(axis=(1, 2)) <= model.max_failed))
            fail += failed.sum(axis=0)
            lc = loss if loss_clip_db is None else np.clip(loss, 0.0, loss_clip_db)
            loss_sum += lc.sum(axis=0, dtype=np.float64)
            loss_sq += np.square(lc, dtype=np.float64).sum(axis=0)
        done += n
    return {"n_pass": n_pass, "n_samples": int(samples), "channel_fail": fail,
            "loss_sum": loss_sum, "loss_sq_sum": loss_sq}


# ----------------------------------------------------------------------------------------
# Config loading (the only use of yieldmc outside the cross-check) and the cross-check
# ----------------------------------------------------------------------------------------

def load_config(overrides=()) -> dict:
    """Plain resolved configuration dict for Hydra overrides (uses yieldmc's composer)."""
    import yieldmc
    from yieldmc.io.config import to_container

    return to_container(yieldmc.compose(list(overrides)))


CASES = {
    "default (adiabatic cmt)": [],
    "butt": ["package/coupler=butt"],
    "landau_zener": ["package.coupler.model=landau_zener"],
    "pwg18_4x32ch": ["package=pwg18_4x32ch"],
    "4x32ch roll3 layer1": ["package=pwg18_4x32ch", "process.roll_mrad.module.sigma=3",
                            "process.layer_thickness_um.layer.sigma=1"],
    # Correlation matters here: with ρ(dx, pitch) = 0.9 the module shift and the pitch
    # run-out add on the +x side and cancel on the −x side (yield 0.904 → 0.887 and a
    # strongly asymmetric per-channel fail fraction); T is a uniform marginal.
    "copula dx/pitch/T (uniform T)": [
        "process.correlation.quantities=[dx_um,pitch_ppm,temperature_c]",
        "process.correlation.matrix=[[1,0.9,-0.5],[0.9,1,-0.3],[-0.5,-0.3,1]]",
        "process.pitch_ppm.module.sigma=2000",
        "process.temperature_c.module.distribution=uniform",
        "process.temperature_c.module.low=-20", "process.temperature_c.module.high=70",
    ],
    "butt: truncnormal gap, lognormal dx, yaw 2": [
        "package/coupler=butt",
        "process.gap_um.module.distribution=truncnormal", "process.gap_um.module.sigma=2",
        "process.gap_um.module.low=-1.5", "process.gap_um.module.high=3",
        "process.dx_um.layer.distribution=lognormal", "process.dx_um.layer.mean=-1.5",
        "process.dx_um.layer.sigma=0.5", "process.yaw_mrad.module.sigma=2",
    ],
    "adiabatic warm (T=65, T sigma 5)": ["package.temperature_c=65",
                                         "process.temperature_c.module.sigma=5"],
    "adiabatic hot (T=120, T sig 5, decay 0.5)": [
        "package.temperature_c=120", "process.temperature_c.module.sigma=5",
        "package.coupler.decay_per_um=0.5"],
}


def _cross_check(args) -> None:
    if args.engine_dtype == "float64":
        os.environ["JAX_ENABLE_X64"] = "1"
    import yieldmc

    n = args.samples
    rows = []
    for name, ov in CASES.items():
        if args.cases and not any(c in name for c in args.cases):
            continue
        cfg = load_config(ov)
        t0 = time.perf_counter()
        ours = simulate(cfg, samples=n, seed=args.seed, chunk=args.chunk, loss_clip_db=100.0)
        t_np = time.perf_counter() - t0
        eng_ov = ov + [f"samples={n}", f"engine.dtype={args.engine_dtype}"]
        t0 = time.perf_counter()
        ds = yieldmc.run(yieldmc.compose(eng_ov))
        t_jax = time.perf_counter() - t0
        n1, k1 = int(ds["n_samples"].values), int(ds["n_pass"].values)
        p1, p2 = k1 / n1, ours["n_pass"] / ours["n_samples"]
        se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n)
        z = (p2 - p1) / se if se > 0 else (0.0 if p1 == p2 else math.inf)
        # per-channel mean loss: difference in units of its standard error
        m_np = ours["loss_sum"] / n
        var_np = np.maximum(ours["loss_sq_sum"] / n - m_np**2, 0.0)
        m_jx = np.asarray(ds["loss_db_mean"].values, dtype=np.float64)
        se_m = np.sqrt(2.0 * var_np / n)  # both estimators have about the same variance
        dm = m_np - m_jx
        zm = np.where(se_m > 0, dm / np.where(se_m > 0, se_m, 1.0), np.where(dm == 0, 0.0, np.inf))
        f_np = ours["channel_fail"] / n
        f_jx = np.asarray(ds["channel_fail_fraction"].values, dtype=np.float64)
        se_f = np.sqrt(f_np * (1 - f_np) / n + f_jx * (1 - f_jx) / n1)
        df = f_np - f_jx
        zf = np.where(se_f > 0, df / np.where(se_f > 0, se_f, 1.0), np.where(df == 0, 0.0, np.inf))
        rows.append((name, p1, p2, se, z, float(np.max(np.abs(dm))), float(np.max(np.abs(zm))),
                     float(np.max(np.abs(df))), float(np.max(np.abs(zf))), t_np, t_jax,
                     float(np.mean(m_np))))
        r = rows[-1]
        print(f"{name:44s} jax={r[1]:.5f} np={r[2]:.5f} se={r[3]:.5f} z={r[4]:+.2f}",
              flush=True)
    print()
    print(f"N = {n} per implementation; engine dtype {args.engine_dtype}, baseline float64;"
          " z = (np - jax)/sqrt(p1(1-p1)/n1 + p2(1-p2)/n2); mean-loss z uses the baseline's"
          " per-channel SD (losses clipped to [0, 100] dB as in the engine)")
    hdr = (f"| {'case':44s} | yield JAX | yield NumPy | SE      | z     | mean loss dB | "
           f"max abs Δmean dB | max abs z mean | max abs Δfail | max abs z fail | NumPy s | JAX s |")
    print(hdr)
    print("|" + "|".join("-" * (len(c)) for c in hdr.split("|")[1:-1]) + "|")
    for r in rows:
        print(f"| {r[0]:44s} | {r[1]:.5f}   | {r[2]:.5f}     | {r[3]:.5f} | {r[4]:+.2f} | "
              f"{r[11]:12.4f} | {r[5]:16.5f} | {r[6]:14.2f} | {r[7]:13.5f} | {r[8]:14.2f} | "
              f"{r[9]:7.1f} | {r[10]:5.1f} |")
    bad = [r[0] for r in rows if abs(r[4]) > 4.5]
    print("\nall yields agree within 4.5 SE" if not bad else f"\nDISAGREE (>4.5 SE): {bad}")


def _timing(args) -> None:
    for name in ("default (adiabatic cmt)", "butt"):
        cfg = load_config(CASES[name])
        for dt in (np.float64, np.float32):
            simulate(cfg, samples=min(args.samples, 2 * args.chunk), seed=0, chunk=args.chunk,
                     dtype=dt)  # warm-up
            t0 = time.perf_counter()
            out = simulate(cfg, samples=args.samples, seed=args.seed, chunk=args.chunk, dtype=dt)
            t = time.perf_counter() - t0
            print(f"{name:26s} {np.dtype(dt).name:8s} samples={args.samples} chunk={args.chunk}"
                  f" wall={t:.2f}s ({args.samples / t:,.0f} modules/s)"
                  f" yield={out['n_pass'] / out['n_samples']:.5f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=20240611)
    ap.add_argument("--chunk", type=int, default=65536)
    ap.add_argument("--engine-dtype", choices=("float32", "float64"), default="float32")
    ap.add_argument("--cases", nargs="*", help="substrings of case names to run")
    ap.add_argument("--time-only", action="store_true", help="only time the baseline")
    ap.add_argument("--no-timing", action="store_true")
    args = ap.parse_args()
    if not args.time_only:
        _cross_check(args)
        print()
    if not args.no_timing:
        _timing(args)


if __name__ == "__main__":
    sys.exit(main())
