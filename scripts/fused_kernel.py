"""A fused Numba kernel of the engine's butt and Si-strip landau_zener couplers: the CPU bound.

    python scripts/fused_kernel.py [--samples 1048576] [--cases butt adiabatic_landau_zener]
                                   [--threads N] [--seed 1] [--json fused.json]

A second, stronger speed baseline for the JAX engine (docs/benchmarks.md), beside the plain NumPy one
(``scripts/numpy_baseline.py``): everything a module needs happens in one pass over a tile
of :data:`TILE` modules whose arrays stay in L1/L2 — counter-based normals, the variation
model, the coupler physics and the statistics — with ``prange`` over chunks of tiles, one
chunk's statistics per iteration, summed on the host. Every inner loop
runs over the tile's modules and LLVM vectorises it (AVX2/AVX-512; the Si-strip table lookups
as gathers, the table being a compile-time constant of the coupler's function).

* **Random numbers**: Threefry-2x32, 20 rounds (Salmon et al., "Parallel random numbers: as
  easy as 1, 2, 3", SC'11), in counter mode on (module index, pair index), both output words
  used, Box–Muller (Box & Muller, Ann. Math. Stat. 29:610 (1958)) as in
  ``yieldmc.engine.rng.threefry_normals``. Independent draws of the same distributions,
  not the engine's stream (the hash itself is checked bit for bit against
  ``jax.extend.random.threefry_2x32`` on every run of this script).
* **Variation model**: the engine's resolved problem (``problem_from_config``): every
  active (quantity, level) with its mean and sigma, rows laid out as
  ``yieldmc.engine.blocks.split_draws`` lays them out; module, layer and channel draws
  summed on the nominal; layer thicknesses accumulated upward.
* **Physics**: ``yieldmc.engine.model.channel_loss_parts`` with the butt coupler
  (``yieldmc.couplers.butt``) or the adiabatic Si-strip taper with
  ``landau_zener`` (``yieldmc.couplers.adiabatic``, TE and TM, the worse one counts). The PWG
  mode fits take their Chebyshev coefficients from ``yieldmc.physics.slab`` and the Si-strip
  index its cubic-Hermite table from ``yieldmc.physics.si_taper`` (combined on the host for
  the job's fixed wavelength and material state), so nothing is re-derived.
* **Statistics**: as ``yieldmc.engine.statistics.STATISTICS``: passing modules with
  ``spec.max_loss_db`` and ``spec.max_failed_channels``, per-channel fail counts, sums of the
  loss clipped to [0, 100] dB (float64 here, fixed point in the engine), the per-channel
  loss histogram (``engine.hist_bins`` bins up to ``engine.hist_max_db`` plus overflow) and,
  where the engine keeps one (``statistics.SPEC_STEPS``), the yield-versus-spec histogram of each
  module's (m+1)-th worst channel loss.
* **Arithmetic**: float32 like the engine; exp, log and sin/cos are Cephes single-precision
  polynomials (S. L. Moshier, *Methods and Programs for Mathematical Functions*, 1989) so
  that LLVM vectorises the loops over the tile's modules; fast-math without ``nnan``/``ninf``
  (a NaN loss must still fail, as in the engine).

Left out (``FusedModel.from_problem`` refuses them with a reason): varied environment
quantities (temperature, humidity, wavelength, bend radius: fixed at their nominal, which
fixes the Si-strip material shifts per run), conditions, WDM lanes, a bent flex, the
crosstalk spec, distributions other than normal and shiftedlognormal, the Gaussian copula, active alignment,
sweeps, samplers other than mc, the linear taper and the cmt model; and as outputs, the
PDL sums and the per-condition counts. ``1 − exp(−x)`` in the Landau–Zener rate uses exp,
not expm1 (relative error ~1e-7/x, only where η is tiny and the channel fails anyway).
numba is an optional extra (``pip install -e '.[fused]'``), not a runtime dependency.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

# GNU OpenMP (numba's default threading layer) spins at its barriers before sleeping; on a
# loaded machine that cost ~12 ms per parallel call here (0.2 ms with threads that sleep).
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import numba  # noqa: E402
import numpy as np  # noqa: E402
from llvmlite import ir  # noqa: E402
from numba import njit, prange, types  # noqa: E402
from numba.core import cgutils  # noqa: E402
from numba.extending import intrinsic  # noqa: E402

#: Modules per tile: the unit of every inner loop (its draws, values and losses fit in L1/L2).
TILE = 128
#: LLVM fast-math flags: all of ``fastmath=True`` but ``nnan``/``ninf`` (NaN/inf losses keep their meaning).
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
#: numba options of every kernel function: the numpy error model (no zero-division checks,
#: which would keep LLVM from vectorising a loop with a division in it).
_OPTS = {"fastmath": FASTMATH, "error_model": "numpy"}
_INLINE = dict(_OPTS, inline="always")
F = np.float32
KIND_BUTT, KIND_LZ = 0, 1

# ----------------------------------------------------------------------------------------
# float32 math that vectorises (bit casts + Cephes polynomials)
# ----------------------------------------------------------------------------------------


@intrinsic
def _f2i(typingctx, x):
    """Bit pattern of a float32 as int32."""
    if x != types.float32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return types.int32(types.float32), codegen


@intrinsic
def _i2f(typingctx, x):
    """float32 from the low 32 bits of an integer."""
    if not isinstance(x, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        v = args[0]
        if v.type.width > 32:
            v = builder.trunc(v, ir.IntType(32))
        return builder.bitcast(v, ir.FloatType())

    return types.float32(x), codegen


@intrinsic
def sqrt32(typingctx, x):
    """√x as ``llvm.sqrt.f32`` (``np.sqrt`` lowers to the libm call, which may set errno and
    so keeps LLVM from vectorising a loop around it when it cannot prove x ≥ 0)."""
    if x != types.float32:
        return None

    def codegen(context, builder, signature, args):
        f32 = ir.FloatType()
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(f32, [f32]), "llvm.sqrt.f32")
        return builder.call(fn, [args[0]])

    return types.float32(types.float32), codegen


@njit(**_INLINE)
def exp32(x):
    """e^x, float32, |rel. error| ~1 ulp (Cephes expf); x clipped to [−87, 88]."""
    x = min(max(x, F(-87.0)), F(88.0))
    k = np.floor(x * F(1.44269504088896341) + F(0.5))
    r = x - k * F(0.693359375) - k * F(-2.12194440e-4)
    z = r * r
    p = (((((F(1.9875691500e-4) * r + F(1.3981999507e-3)) * r + F(8.3334519073e-3)) * r
           + F(4.1665795894e-2)) * r + F(1.6666665459e-1)) * r + F(5.0000001201e-1)) * z + r + F(1.0)
    return p * _i2f((np.int32(k) + 127) << 23)


@njit(**_INLINE)
def log32(x):
    """ln x for a positive normal float32 (Cephes logf, ~1 ulp)."""
    bits = _f2i(x)
    e = F(((bits >> 23) & 0xFF) - 126)
    m = _i2f((bits & 0x007FFFFF) | 0x3F000000)  # in [0.5, 1)
    small = m < F(0.707106781186547524)
    e = e - F(1.0) if small else e
    m = (m + m - F(1.0)) if small else (m - F(1.0))
    z = m * m
    y = ((((((((F(7.0376836292e-2) * m - F(1.1514610310e-1)) * m + F(1.1676998740e-1)) * m
              - F(1.2420140846e-1)) * m + F(1.4249322787e-1)) * m - F(1.6668057665e-1)) * m
           + F(2.0000714765e-1)) * m - F(2.4999993993e-1)) * m + F(3.3333331174e-1)) * m * z
    y = y + F(-2.12194440e-4) * e - F(0.5) * z
    return m + y + F(0.693359375) * e


@njit(**_INLINE)
def sincos32(x):
    """(sin x, cos x), float32: Cody–Waite reduction and the Cephes polynomials of
    ``yieldmc.physics._fastmath``."""
    k = np.rint(x * F(0.636619772367581343))
    r = ((x - k * F(1.5703125)) - k * F(4.837512969970703125e-4)) - k * F(7.54978995489188216e-8)
    z = r * r
    s = r + r * z * (F(-1.6666654611e-1) + z * (F(8.3321608736e-3) + z * F(-1.9515295891e-4)))
    c = F(1.0) - F(0.5) * z + z * z * (F(4.166664568298827e-2) + z * (F(-1.388731625493765e-3)
                                                                        + z * F(2.443315711809948e-5)))
    q = np.int32(k)
    odd = F(q & 1)  # quadrants 1, 3 swap sin and cos; 2, 3 negate sin; 1, 2 negate cos
    sin = (s + odd * (c - s)) * F(1 - 2 * ((q >> 1) & 1))
    cos = (c + odd * (s - c)) * F(1 - 2 * (((q + 1) >> 1) & 1))
    return sin, cos


# ----------------------------------------------------------------------------------------
# Threefry-2x32 (20 rounds) and Box–Muller
# ----------------------------------------------------------------------------------------

_U32 = np.uint32


@intrinsic
def _add32(typingctx, a, b):
    """a + b mod 2^32 on uint32 (numba would widen it to uint64, which LLVM vectorises at half width)."""
    if a != types.uint32 or b != types.uint32:
        return None

    def codegen(context, builder, signature, args):
        return builder.add(args[0], args[1])

    return types.uint32(types.uint32, types.uint32), codegen


@intrinsic
def _rotl_xor32(typingctx, x, r, y):
    """rotl(x, r) ^ y on uint32 (``llvm.fshl.i32``; one vprold with AVX-512)."""
    if x != types.uint32 or y != types.uint32 or not isinstance(r, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        fshl = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i32, [i32] * 3), "llvm.fshl.i32")
        amount = builder.trunc(args[1], i32) if args[1].type.width > 32 else args[1]
        return builder.xor(builder.call(fshl, [args[0], args[0], amount]), args[2])

    return types.uint32(x, r, y), codegen


@njit(**_INLINE)
def _mix(x0, x1, r):
    """One Threefry round: x0 += x1; x1 = rotl(x1, r) ^ x0."""
    x0 = _add32(x0, x1)
    return x0, _rotl_xor32(x1, r, x0)


@njit(**_INLINE)
def threefry2x32(k0, k1, c0, c1):
    """Threefry-2x32 with 20 rounds of the counter (c0, c1) under the key (k0, k1); the
    Random123 schedule, as ``jax.extend.random.threefry_2x32``. All arguments uint32."""
    k2 = k0 ^ k1 ^ _U32(0x1BD11BDA)
    k2 = _U32(k2)
    x0, x1 = _add32(c0, k0), _add32(c1, k1)
    x0, x1 = _mix(x0, x1, 13); x0, x1 = _mix(x0, x1, 15); x0, x1 = _mix(x0, x1, 26); x0, x1 = _mix(x0, x1, 6)  # noqa: E702
    x0, x1 = _add32(x0, k1), _add32(x1, _add32(k2, _U32(1)))
    x0, x1 = _mix(x0, x1, 17); x0, x1 = _mix(x0, x1, 29); x0, x1 = _mix(x0, x1, 16); x0, x1 = _mix(x0, x1, 24)  # noqa: E702
    x0, x1 = _add32(x0, k2), _add32(x1, _add32(k0, _U32(2)))
    x0, x1 = _mix(x0, x1, 13); x0, x1 = _mix(x0, x1, 15); x0, x1 = _mix(x0, x1, 26); x0, x1 = _mix(x0, x1, 6)  # noqa: E702
    x0, x1 = _add32(x0, k0), _add32(x1, _add32(k1, _U32(3)))
    x0, x1 = _mix(x0, x1, 17); x0, x1 = _mix(x0, x1, 29); x0, x1 = _mix(x0, x1, 16); x0, x1 = _mix(x0, x1, 24)  # noqa: E702
    x0, x1 = _add32(x0, k1), _add32(x1, _add32(k2, _U32(4)))
    x0, x1 = _mix(x0, x1, 13); x0, x1 = _mix(x0, x1, 15); x0, x1 = _mix(x0, x1, 26); x0, x1 = _mix(x0, x1, 6)  # noqa: E702
    return _add32(x0, k2), _add32(x1, _add32(k0, _U32(5)))


@njit(**_OPTS)
def _tile_normals(k0, k1, first_module, z):
    """Standard normals of one tile: row pair (2p, 2p + 1) of module i from the hash of
    (first_module + i, p); u1 = (top 24 bits + 1)/2^24 ∈ (0, 1], θ uniform in [−π, π)."""
    for p in range(z.shape[0] // 2):
        for i in range(z.shape[1]):
            b0, b1 = threefry2x32(k0, k1, _U32(first_module + i), _U32(p))
            u1 = (F(b0 >> _U32(8)) + F(1.0)) * F(2.0**-24)
            theta = F(b1 >> _U32(8)) * F(2.0 * np.pi * 2.0**-24) - F(np.pi)
            r = sqrt32(F(-2.0) * log32(u1))
            s, c = sincos32(theta)
            z[2 * p, i] = r * c
            z[2 * p + 1, i] = r * s


# ----------------------------------------------------------------------------------------
# PWG mode fits (coefficients from yieldmc.physics.slab, unrolled into straight-line code)
# ----------------------------------------------------------------------------------------


def _series_source(name: str, coef) -> str:
    """Source of ``name(a0..a6, b0..b6) = Σ_ij coef[i][j]·a_i·b_j`` (zero terms dropped), the
    engine's ``slab._cseries`` with float32 literals."""
    rows = []
    for i, row in enumerate(coef):
        terms = [f"F({c!r}) * b{j}" for j, c in enumerate(row) if c != 0.0]
        if terms:
            rows.append(f"a{i} * ({' + '.join(terms)})")
    args = ", ".join([f"a{i}" for i in range(7)] + [f"b{j}" for j in range(7)])
    return f"def {name}({args}):\n    return {' + '.join(rows)}\n"


def _compile_series():
    from yieldmc.physics import slab

    sets = {"_s_b": slab._PWG_LN_B, "_s_beps": slab._PWG_LN_B_EPS, "_s_w": slab._PWG_LN_W,
            "_s_weps": slab._PWG_LN_W_EPS, "_s_wpol": slab._PWG_LN_W_POL,
            "_s_geps": slab._PWG_LN_GAMMA_EPS, "_s_g0": slab._PWG_LN_GAMMA[0],
            "_s_g1": slab._PWG_LN_GAMMA[1], "_s_g2": slab._PWG_LN_GAMMA[2]}
    if len(slab._PWG_LN_GAMMA) != 3 or slab._PWG_DEGREE != 6:
        raise RuntimeError("fused_kernel: yieldmc.physics.slab's fit changed shape; update _pwg_core")
    out = {}
    for name, coef in sets.items():
        scope = {"F": F}
        exec(_series_source(name, coef), scope)  # noqa: S102 - our own generated source
        out[name] = njit(**_INLINE)(scope[name])
    lo, hi = math.log(slab._PWG_V_RANGE[0]), math.log(slab._PWG_V_RANGE[1])
    consts = (F(lo + hi), F(1.0 / (hi - lo)), F(slab._PWG_V_RANGE[1]), F(slab._PWG_B_DECAY),
              F(slab._PWG_DELTA_RANGE[0]), F(slab._PWG_DELTA_RANGE[1]))
    return out, consts


_S, (_T_SUM, _T_SCALE, _V_HI, _B_DECAY, _DELTA_LO, _DELTA_HI) = _compile_series()
_s_b, _s_beps, _s_w, _s_weps, _s_wpol = _S["_s_b"], _S["_s_beps"], _S["_s_w"], _S["_s_weps"], _S["_s_wpol"]
_s_geps, _s_g0, _s_g1, _s_g2 = _S["_s_geps"], _S["_s_g0"], _S["_s_g1"], _S["_s_g2"]
_SLAB_W_C = F(np.pi**2 / 8.0 * 0.2413)


@njit(**_INLINE)
def _cheb_t(v):
    return min(max((F(2.0) * log32(v) - _T_SUM) * _T_SCALE, F(-1.0)), F(1.0))


@njit(**_INLINE)
def _slab_w(v):
    n = v * (F(1.0) + v * (F(1.4276) + F(0.2413) * v))
    return v * n / (n + F(1.0) + _SLAB_W_C * v)


@njit(**_INLINE)
def _ln_ratio(v, eps, a0, a1, a2, a3, a4, a5, a6, b0, b1, b2, b3, b4, b5, b6):
    """F(V, V') of ``slab.pwg_mode_radii_um``."""
    iv = F(1.0) / v
    return (log32(F(0.6450) + F(1.0439) * iv + F(0.5458) * iv * iv * iv)
            + _s_w(a0, a1, a2, a3, a4, a5, a6, b0, b1, b2, b3, b4, b5, b6)
            + eps * _s_weps(a0, a1, a2, a3, a4, a5, a6, b0, b1, b2, b3, b4, b5, b6))


@njit(**_INLINE)
def _pwg_core(width_um, thickness_um, n_core, n_clad, pi_over_wl, want_index):
    """(w_x, w_y, n_eff, γ) of the rectangular PWG core: ``slab.pwg_mode_radii_um``,
    ``slab.pwg_effective_index`` and ``slab.pwg_vertical_decay_per_um`` (the last two only
    when ``want_index``; else 0)."""
    na2 = (n_core - n_clad) * (n_core + n_clad)
    k_na = pi_over_wl * sqrt32(na2)
    eps = na2 / (n_core * n_core)
    v_x, v_y = k_na * width_um, k_na * thickness_um
    t_x, t_y = _cheb_t(v_x), _cheb_t(v_y)
    x0, x1 = F(1.0), t_x
    x2 = F(2.0) * t_x * x1 - x0; x3 = F(2.0) * t_x * x2 - x1; x4 = F(2.0) * t_x * x3 - x2  # noqa: E702
    x5 = F(2.0) * t_x * x4 - x3; x6 = F(2.0) * t_x * x5 - x4  # noqa: E702
    y0, y1 = F(1.0), t_y
    y2 = F(2.0) * t_y * y1 - y0; y3 = F(2.0) * t_y * y2 - y1; y4 = F(2.0) * t_y * y3 - y2  # noqa: E702
    y5 = F(2.0) * t_y * y4 - y3; y6 = F(2.0) * t_y * y5 - y4  # noqa: E702
    pol = eps * (t_y - t_x) * _s_wpol(y0, y1, y2, y3, y4, y5, y6, x0, x1, x2, x3, x4, x5, x6)
    w_x = F(0.5) * width_um * exp32(_ln_ratio(v_x, eps, x0, x1, x2, x3, x4, x5, x6, y0, y1, y2, y3, y4, y5, y6))
    w_y = F(0.5) * thickness_um * exp32(
        _ln_ratio(v_y, eps, y0, y1, y2, y3, y4, y5, y6, x0, x1, x2, x3, x4, x5, x6) + pol)
    n_eff = F(0.0)
    gamma = F(0.0)
    if want_index:
        rx, ry = min(v_x, _V_HI) / v_x, min(v_y, _V_HI) / v_y
        fade = exp32(_B_DECAY * log32(rx * ry)) if ((rx < F(1.0)) | (ry < F(1.0))) else F(1.0)
        ln_b = (F(2.0) * log32(_slab_w(v_x) / v_x * (_slab_w(v_y) / v_y))
                + fade * (_s_b(x0, x1, x2, x3, x4, x5, x6, y0, y1, y2, y3, y4, y5, y6)
                          + eps * _s_beps(x0, x1, x2, x3, x4, x5, x6, y0, y1, y2, y3, y4, y5, y6)))
        n_eff = sqrt32(n_clad * n_clad + exp32(ln_b) * na2)
        half_t = F(0.5) * thickness_um
        delta = min(max(F(1.0) / half_t, _DELTA_LO), _DELTA_HI)
        ln_g = (log32(_slab_w(v_y))
                + eps * _s_geps(y0, y1, y2, y3, y4, y5, y6, x0, x1, x2, x3, x4, x5, x6)
                + _s_g0(y0, y1, y2, y3, y4, y5, y6, x0, x1, x2, x3, x4, x5, x6)
                + delta * (_s_g1(y0, y1, y2, y3, y4, y5, y6, x0, x1, x2, x3, x4, x5, x6)
                           + delta * _s_g2(y0, y1, y2, y3, y4, y5, y6, x0, x1, x2, x3, x4, x5, x6)))
        gamma = exp32(ln_g) / half_t
    return w_x, w_y, n_eff, gamma


# ----------------------------------------------------------------------------------------
# Parameters (one float32 vector) and quantity indices
# ----------------------------------------------------------------------------------------

PAR_NAMES = (
    "prop_db", "runout_per_um", "dy_env_um", "dn_env", "n_core0", "n_clad0", "pi_over_wl",
    "max_loss_db", "hist_scale",
    # butt
    "k_gap", "w2_x_um", "w2_y_um", "ln_fresnel",
    # adiabatic si_strip landau_zener
    "k0", "length_um", "g0_um", "pivot_um", "w_start_um", "w_lo_um", "w_hi_um", "ds", "n_top",
    "kappa_te", "eta_excess_te", "tw0_te", "ta_te", "tb_te", "nf0_te", "nr0_te",
    "kappa_tm", "eta_excess_tm", "tw0_tm", "ta_tm", "tb_tm", "nf0_tm", "nr0_tm",
)
_P = {name: i for i, name in enumerate(PAR_NAMES)}
_PROP, _RUNOUT, _DY_ENV, _DN_ENV, _NCORE0, _NCLAD0, _PI_WL = (_P[k] for k in PAR_NAMES[:7])
_MAX_LOSS, _HIST_SCALE = _P["max_loss_db"], _P["hist_scale"]
_KGAP, _W2X, _W2Y, _LNFRES = _P["k_gap"], _P["w2_x_um"], _P["w2_y_um"], _P["ln_fresnel"]
_K0, _LEN, _G0, _PIVOT = _P["k0"], _P["length_um"], _P["g0_um"], _P["pivot_um"]
_WSTART, _WLO, _WHI, _DS, _NTOP = _P["w_start_um"], _P["w_lo_um"], _P["w_hi_um"], _P["ds"], _P["n_top"]
_POL0 = _P["kappa_te"]  # per polarisation: kappa, eta_excess, tw0, ta, tb, nf0, nr0 (7 entries)
_POL_STRIDE = 7

#: The engine's quantity order (yieldmc.engine.quantities); FusedModel.from_problem checks it.
QUANTITIES = ("dx_um", "dy_um", "gap_um", "yaw_mrad", "roll_mrad", "pitch_ppm", "core_thickness_um",
              "core_width_um", "dn_core", "temperature_c", "layer_thickness_um", "humidity_rh",
              "bend_radius_mm", "wavelength_um", "taper_tip_width_nm")
(Q_DX, Q_DY, Q_GAP, Q_YAW, Q_ROLL, Q_PITCH, Q_CT, Q_CW, Q_DN, Q_TEMP, Q_LT, Q_RH, Q_BEND, Q_WL,
 Q_TIP) = range(len(QUANTITIES))
#: Environment quantities the kernel keeps at their nominal (see the module docstring).
FIXED = ("temperature_c", "humidity_rh", "bend_radius_mm", "wavelength_um")
_LN_ETA_FLOOR = F(math.log(1e-30))
_DB_PER_NEPER = F(10.0 / math.log(10.0))

# ----------------------------------------------------------------------------------------
# Coupler physics of one channel over a tile
# ----------------------------------------------------------------------------------------


@njit(**_INLINE)
def _axis_terms(w1, w2, d, gap, theta, k):
    """Per-axis Gaussian overlap (``physics.coupling._axis_efficiency``) as
    (Re(a)·b/|a + b|², exponent)."""
    w1sq = w1 * w1
    t = gap / (F(0.5) * k * w1sq)
    inv = F(1.0) / (w1sq * (F(1.0) + t * t))
    b = F(1.0) / (w2 * w2)
    s_r = inv + b
    s_i = -t * inv
    s2 = s_r * s_r + s_i * s_i
    bd = b * d
    kt = k * theta
    expo = ((F(4.0) * bd * bd - kt * kt) * s_r - F(4.0) * bd * kt * s_i) / (F(2.0) * s2) - F(2.0) * bd * d
    return inv * b / s2, expo


@njit(**_OPTS)
def _butt_channel(v, x_um, y_um, stack, par, out):
    """Loss (dB) of one channel of every module of a tile: the butt coupler
    (``couplers.butt.ButtCoupler.efficiency``) + propagation."""
    runout, dy_env, dn_env = par[_RUNOUT] * x_um, par[_DY_ENV], par[_DN_ENV]
    n_core0, n_clad0, pi_wl, prop = par[_NCORE0], par[_NCLAD0], par[_PI_WL], par[_PROP]
    k, w2x, w2y, ln_fres = par[_KGAP], par[_W2X], par[_W2Y], par[_LNFRES]
    n_clad = n_clad0 + dn_env
    for i in range(out.shape[0]):
        roll = v[Q_ROLL, i] * F(1e-3)
        yaw = v[Q_YAW, i] * F(1e-3)
        dx = v[Q_DX, i] + x_um * v[Q_PITCH, i] * F(1e-6) + runout - y_um * roll
        dy = v[Q_DY, i] + x_um * roll + stack[i] + dy_env
        w_x, w_y, _, _ = _pwg_core(v[Q_CW, i], v[Q_CT, i], n_core0 + v[Q_DN, i] + dn_env, n_clad, pi_wl, False)
        gap = max(v[Q_GAP, i] + x_um * yaw, F(0.0))
        px, ex = _axis_terms(w_x, w2x, dx, gap, yaw, k)
        py, ey = _axis_terms(w_y, w2y, dy, gap, F(0.0), k)
        ln_eta = F(0.5) * log32(F(16.0) * px * py) + ex + ey + ln_fres
        loss = -_DB_PER_NEPER * max(ln_eta, _LN_ETA_FLOOR) + prop
        out[i] = loss if loss == loss else np.inf  # outside the model's domain: fails


@njit(**_INLINE)
def _hermite(tab, row, w, tw0, ta, tb, ds):
    """Value and d/dw of the resampled Si-strip table row (``physics.si_taper``): cubic
    Hermite on the uniform grid in the normalised width; rows (value, slope) = (row, row + 1)."""
    t = (w - tw0) * ta - tb
    j = np.int64(min(max(np.floor(t), F(0.0)), F(tab.shape[1] - 2)))
    u = t - F(j)
    v0, v1 = tab[row, j], tab[row, j + 1]
    m0, m1 = tab[row + 1, j] * ds, tab[row + 1, j + 1] * ds
    u2 = u * u
    value = (F(2.0) * u2 * u - F(3.0) * u2 + F(1.0)) * v0 + (u2 - F(2.0) * u + F(1.0)) * u * m0 \
        + (F(3.0) * u2 - F(2.0) * u2 * u) * v1 + (u2 - u) * u * m1
    slope = (F(6.0) * (u2 - u) * (v0 - v1) + (F(3.0) * u2 - F(4.0) * u + F(1.0)) * m0
             + (F(3.0) * u2 - F(2.0) * u) * m1) * ta
    return value, slope


@njit(**_INLINE)
def _supermode_cos2(db, kappa):
    """cos²θ of ``physics.supermode_fractions`` (den = 0 only where Δβ = 0: ratio 0 = sign(0))."""
    half = F(0.5) * db
    return F(0.5) * (F(1.0) + half / max(sqrt32(half * half + kappa * kappa), F(1e-30)))


@njit(**_INLINE)
def _lz_eta(tab, rf, pol, geo, n_pwg, w_tip, kv, dx, yaw, w_x):
    """η of one polarisation of the Si-strip taper with ``landau_zener``:
    ``couplers.adiabatic._si_strip_profile`` (secant start, 3 clipped Newton steps, one
    free step, the rate at w_c) and ``physics.landau_zener_with_ends``, times the excess loss.

    ``tab`` rows ``rf``, ``rf + 1``: the strip's index with the material shifts (value, slope);
    ``rf + 2``, ``rf + 3``: without (:meth:`FusedModel.from_problem`). ``pol`` = (κ0, excess
    factor, w0(λ), 1/((w_max − w0)·ds), s0/ds, n_full(w_start), n_ref(w_start)), ``geo`` =
    (w_start, Newton clip low, high, ds, k0, L, yaw pivot). ``n_pwg`` is relative to the
    table's n_top, as the table is (``si_taper``'s field 0 is n_eff − n_top): its slope,
    which sets the Landau–Zener rate, comes from differences of neighbouring values, 10×
    more precise in float32 there than near n_eff ≈ 2.5."""
    kappa0, excess, tw0, ta, tb, nf0, nr0 = pol
    w0, lo, hi, ds, k0, length, pivot = geo
    r0 = nf0 - n_pwg
    f1, _ = _hermite(tab, rf, w_tip, tw0, ta, tb, ds)
    r1 = f1 - n_pwg
    w = w0 + (w_tip - w0) * r0 / (r0 - r1 if r0 != r1 else F(1.0))
    w = min(max(w, lo), hi)
    f, df = _hermite(tab, rf, w, tw0, ta, tb, ds)  # three Newton steps, unrolled (a loop here
    w = min(max(w - (f - n_pwg) / df, lo), hi)  # would keep LLVM from vectorising the module loop)
    f, df = _hermite(tab, rf, w, tw0, ta, tb, ds)
    w = min(max(w - (f - n_pwg) / df, lo), hi)
    f, df = _hermite(tab, rf, w, tw0, ta, tb, ds)
    w = min(max(w - (f - n_pwg) / df, lo), hi)
    f, df = _hermite(tab, rf, w, tw0, ta, tb, ds)
    w_c = w - (f - n_pwg) / df
    f_c, df_c = _hermite(tab, rf, w_c, tw0, ta, tb, ds)
    n_ref_c, _ = _hermite(tab, rf + 2, w_c, tw0, ta, tb, ds)
    shift = f_c - n_ref_c  # the material shift at w_c, held over the taper
    dwdz = (w_tip - w0) / length
    z_c = (w_c - w0) / dwdz
    rate = max(abs(k0 * df_c * dwdz), F(1e-12))
    n_ref_end, _ = _hermite(tab, rf + 2, w0 + dwdz * length, tw0, ta, tb, ds)
    db_start = k0 * (nr0 + shift - n_pwg)
    db_end = k0 * (n_ref_end + shift - n_pwg)
    z_in = min(max(z_c, F(0.0)), length)
    dx_eff = (dx + yaw * (z_in - pivot)) / w_x
    kappa = kappa0 * kv * exp32(-dx_eff * dx_eff)
    adiabatic = F(1.0) - exp32(F(-2.0 * np.pi) * kappa * kappa / rate)
    p0 = _supermode_cos2(db_start, kappa)
    inside = (z_c > F(0.0)) & (z_c < length)
    plus = p0 * adiabatic + (F(1.0) - p0) * (F(1.0) - adiabatic) if inside else p0
    c_end = _supermode_cos2(db_end, kappa)
    return (plus * (F(1.0) - c_end) + (F(1.0) - plus) * c_end) * excess


@njit(**_INLINE)
def _pol_consts(par, p):
    o = _POL0 + _POL_STRIDE * p
    return par[o], par[o + 1], par[o + 2], par[o + 3], par[o + 4], par[o + 5], par[o + 6]


@njit(**_INLINE)
def _lz_channel(v, x_um, y_um, stack, par, tab, out):
    """Loss (dB) of one channel of every module of a tile: the adiabatic Si-strip taper,
    ``landau_zener``, the worse of TE and TM (``couplers.adiabatic.AdiabaticCoupler.efficiency``)
    + propagation. Inlined where ``tab`` is a compile-time constant (:func:`make_physics`)."""
    runout, dy_env, dn_env = par[_RUNOUT] * x_um, par[_DY_ENV], par[_DN_ENV]
    n_core0, n_clad0, pi_wl, prop = par[_NCORE0], par[_NCLAD0], par[_PI_WL], par[_PROP]
    g0, n_top = par[_G0], par[_NTOP]
    n_clad = n_clad0 + dn_env
    te, tm = _pol_consts(par, 0), _pol_consts(par, 1)  # read before the loop: LLVM cannot
    geo = (par[_WSTART], par[_WLO], par[_WHI], par[_DS], par[_K0], par[_LEN], par[_PIVOT])  # hoist them
    for i in range(out.shape[0]):
        roll = v[Q_ROLL, i] * F(1e-3)
        yaw = v[Q_YAW, i] * F(1e-3)
        dx = v[Q_DX, i] + x_um * v[Q_PITCH, i] * F(1e-6) + runout - y_um * roll
        dy = v[Q_DY, i] + x_um * roll + stack[i] + dy_env
        w_x, _, n_pwg, gamma = _pwg_core(v[Q_CW, i], v[Q_CT, i], n_core0 + v[Q_DN, i] + dn_env, n_clad,
                                         pi_wl, True)
        gap = max(v[Q_GAP, i] + dy, F(0.0))  # contact: the PWG rests on the chip
        kv = exp32(-gamma * (gap - g0))
        w_tip = F(1e-3) * v[Q_TIP, i]
        n_rel = n_pwg - n_top
        eta_te = _lz_eta(tab, 0, te, geo, n_rel, w_tip, kv, dx, yaw, w_x)
        eta_tm = _lz_eta(tab, 4, tm, geo, n_rel, w_tip, kv, dx, yaw, w_x)
        eta = min(eta_te, eta_tm)  # the worse polarisation
        loss = -_DB_PER_NEPER * log32(max(eta, F(1e-30))) + prop
        out[i] = loss if loss == loss else np.inf  # outside the model's domain: fails


# ----------------------------------------------------------------------------------------
# The fused kernel: draws → values → losses → statistics, tile by tile
# ----------------------------------------------------------------------------------------


@njit(**_OPTS)
def _chunk(physics, tile_lo, tile_hi, n_modules, k0, k1, layers, channels, x_um, y_um, nominal,
           var_q, var_level, var_mean, var_sigma, var_row, var_kind, var_low, n_rows, par, max_failed, hist_bins,
           spec_steps, fail, loss_sum, hist, spec_hist):
    """Tiles [tile_lo, tile_hi): accumulates fail counts, clipped loss sums and the histogram
    (per channel) into ``fail``, ``loss_sum``, ``hist``, and — when ``spec_steps`` J > 0 —
    the modules' spec figures (the (m+1)-th largest channel loss, m = ``max_failed``) on the
    grid spec.max_loss_db + j·Δ, j = −J … J, into ``spec_hist`` (2J + 2 bins), as the
    engine's yield-versus-spec statistics; returns the passing-module count."""
    nq = nominal.shape[0]
    lc = layers * channels
    z = np.empty((n_rows + n_rows % 2, TILE), np.float32)
    base = np.empty((layers, nq, TILE), np.float32)
    v = np.empty((nq, TILE), np.float32)
    stack = np.empty(TILE, np.float32)
    loss = np.empty((lc, TILE), np.float32)
    n_fail = np.empty(TILE, np.int32)
    figure = np.empty(TILE, np.float32)
    column = np.empty(lc, np.float32)
    max_loss, hist_scale = par[_MAX_LOSS], par[_HIST_SCALE]
    n_pass = 0
    for tile in range(tile_lo, tile_hi):
        first = tile * TILE
        n_valid = min(TILE, n_modules - first)
        _tile_normals(k0, k1, first, z)
        # module and layer levels: base[l, q, i] = nominal + module draws + layer-l draws
        for q in range(nq):
            for i in range(TILE):
                base[0, q, i] = nominal[q]
        for k in range(var_q.shape[0]):
            if var_level[k] == 0:
                q, mu, sd, r = var_q[k], var_mean[k], var_sigma[k], var_row[k]
                if var_kind[k] == 0:
                    for i in range(TILE):
                        base[0, q, i] += mu + sd * z[r, i]
                else:
                    lo = var_low[k]
                    for i in range(TILE):
                        base[0, q, i] += lo + exp32(mu + sd * z[r, i])
        for lyr in range(1, layers):
            base[lyr] = base[0]
        for k in range(var_q.shape[0]):
            if var_level[k] == 1:
                q, mu, sd, lo = var_q[k], var_mean[k], var_sigma[k], var_low[k]
                for lyr in range(layers):
                    r = var_row[k] + lyr
                    if var_kind[k] == 0:
                        for i in range(TILE):
                            base[lyr, q, i] += mu + sd * z[r, i]
                    else:
                        for i in range(TILE):
                            base[lyr, q, i] += lo + exp32(mu + sd * z[r, i])
        # channels: + channel draws; the stack accumulates the layer thicknesses below
        for c in range(channels):
            stack[:] = 0.0
            for lyr in range(layers):
                v[:, :] = base[lyr]
                for k in range(var_q.shape[0]):
                    if var_level[k] == 2:
                        q, mu, sd, lo = var_q[k], var_mean[k], var_sigma[k], var_low[k]
                        r = var_row[k] + lyr * channels + c
                        if var_kind[k] == 0:
                            for i in range(TILE):
                                v[q, i] += mu + sd * z[r, i]
                        else:
                            for i in range(TILE):
                                v[q, i] += lo + exp32(mu + sd * z[r, i])
                physics(v, x_um[c], y_um[lyr], stack, par, loss[lyr * channels + c])
                for i in range(TILE):
                    stack[i] += v[Q_LT, i]
        # statistics (yieldmc.engine.statistics.STATISTICS)
        n_fail[:] = 0
        for j in range(lc):
            row = loss[j]
            n_failed, total = 0, 0.0
            for i in range(n_valid):  # vectorised
                failed = not (row[i] <= max_loss)  # NaN fails
                n_fail[i] += failed
                n_failed += failed
                total += min(max(np.float64(row[i]), 0.0), 100.0)
            fail[j] += n_failed
            loss_sum[j] += total
            for i in range(n_valid):  # a scatter: scalar
                hist[j, np.int64(min(max(np.floor(row[i] * hist_scale), F(0.0)), F(hist_bins)))] += 1
        for i in range(n_valid):
            n_pass += n_fail[i] <= max_failed
        if spec_steps > 0:  # yield versus spec (the engine's statistics._spec_histogram)
            _spec_figures(loss, max_failed, figure, column)
            for i in range(n_valid):
                steps = min(max((figure[i] - max_loss) * hist_scale, F(-spec_steps - 1)), F(spec_steps + 1))
                spec_hist[min(max(np.int64(np.ceil(steps)) + spec_steps, 0), 2 * spec_steps + 1)] += 1
    return n_pass


@njit(**_OPTS)
def _spec_figures(loss, max_failed, figure, column):
    """figure[i] = the (max_failed + 1)-th largest of loss[:, i] (the largest when 0)."""
    figure[:] = loss[0]
    for j in range(1, loss.shape[0]):
        for i in range(figure.shape[0]):  # vectorised
            figure[i] = max(figure[i], loss[j, i])
    if max_failed > 0:
        for i in range(figure.shape[0]):
            column[:] = loss[:, i]
            column.sort()
            figure[i] = column[column.shape[0] - 1 - min(max_failed, column.shape[0] - 1)]


@njit(parallel=True, **_OPTS)
def fused_run(physics, n_modules, n_chunks, k0, k1, layers, channels, x_um, y_um, nominal, var_q, var_level,
              var_mean, var_sigma, var_row, var_kind, var_low, n_rows, par, max_failed, hist_bins, spec_steps):
    """All modules, ``prange`` over ``n_chunks`` contiguous chunks of tiles; per chunk
    (n_pass, fail (L·C), loss_sum (L·C), hist (L·C, bins + 1), spec_hist (2J + 2)). ``physics(v, x_um, y_um,
    stack, par, out)`` fills one channel's losses of a tile (:func:`make_physics`)."""
    n_tiles = (n_modules + TILE - 1) // TILE
    lc = layers * channels
    n_pass = np.zeros(n_chunks, np.int64)
    fail = np.zeros((n_chunks, lc), np.int64)
    loss_sum = np.zeros((n_chunks, lc), np.float64)
    hist = np.zeros((n_chunks, lc, hist_bins + 1), np.int64)
    spec_hist = np.zeros((n_chunks, 2 * spec_steps + 2), np.int64)
    for ch in prange(n_chunks):
        lo = ch * n_tiles // n_chunks
        hi = (ch + 1) * n_tiles // n_chunks
        n_pass[ch] = _chunk(physics, lo, hi, n_modules, k0, k1, layers, channels, x_um, y_um, nominal, var_q,
                            var_level, var_mean, var_sigma, var_row, var_kind, var_low, n_rows, par, max_failed,
                            hist_bins, spec_steps, fail[ch], loss_sum[ch], hist[ch], spec_hist[ch])
    return n_pass, fail, loss_sum, hist, spec_hist


def make_physics(kind: int, tab: np.ndarray):
    """The per-channel physics function of a coupler kind. The Si-strip table becomes a
    compile-time constant of the landau_zener function (compiled once per table): LLVM then
    knows that the loss stores cannot alias it and vectorises the module loop with gathers
    (with the table an argument it stays scalar, ~5× slower)."""
    if kind == KIND_BUTT:
        return _butt_channel
    table = np.ascontiguousarray(tab, np.float32)

    @njit(**_OPTS)
    def lz_physics(v, x_um, y_um, stack, par, out):
        _lz_channel(v, x_um, y_um, stack, par, table, out)

    return lz_physics


@njit(**_OPTS)
def channel_losses(physics, values, x_um, y_um, stack, par):
    """Loss (dB) of one channel position for given quantity values (Q, n), n a multiple of
    :data:`TILE` — the kernel's physics on chosen inputs (:func:`check_physics`)."""
    out = np.empty(values.shape[1], np.float32)
    for t in range(values.shape[1] // TILE):
        sl = slice(t * TILE, (t + 1) * TILE)
        physics(np.ascontiguousarray(values[:, sl]), x_um, y_um, stack[sl], par, out[sl])
    return out


# ----------------------------------------------------------------------------------------
# Host side: from the engine's resolved problem to the kernel's arrays
# ----------------------------------------------------------------------------------------

LEVEL_INDEX = {"module": 0, "layer": 1, "channel": 2}
#: The distributions the kernel draws (its ``var_kind`` codes).
DRAW_KINDS = {"normal": 0, "shiftedlognormal": 1}


def _draw_row(dist: str, mean: float, sigma: float, low: float) -> tuple:
    """(kind, a, b, low): the kernel's draw a + b·z (normal) or low + exp(a + b·z)
    (shiftedlognormal: a = μ, b = s of ``yieldmc.engine.distributions.ShiftedLogNormal``)."""
    if dist == "normal":
        return 0, mean, sigma, 0.0
    s2 = math.log1p((sigma / (mean - low)) ** 2)
    return 1, math.log(mean - low) - 0.5 * s2, math.sqrt(s2), low


def unsupported(problem) -> str | None:
    """Why the fused kernel cannot run ``problem`` (a :class:`yieldmc.engine.problem.Problem`), or None."""
    s = problem.static
    checks = [
        (problem.n_points != 1, "sweeps"), (s.conditions, "conditions"), (s.lanes, "WDM lanes"),
        (s.bend, "a bent flex"), (s.crosstalk, "spec.max_crosstalk_db"), (s.copula, "the copula"),
        (s.alignment != "passive", "active alignment"), (s.sampler.name != "mc", f"sampler={s.sampler.name}"),
    ]
    if s.coupler.name == "adiabatic":
        cs = s.coupler.settings
        checks += [(cs.taper == "si_strip", "the Si-strip coupler from its supermodes (the kernel's Si-strip "
                    "path is the fitted-κ model it replaced)"),
                   (cs.taper != "si_strip", f"taper={cs.taper}"), (cs.model != "landau_zener", f"model={cs.model}"),
                   (not cs.derive_decay, "a fixed decay_per_um"),
                   (tuple(s.polarizations) != ("te", "tm"), f"polarization {s.polarizations} (only worst)")]
    elif s.coupler.name != "butt":
        checks.append((True, f"coupler {s.coupler.name}"))
    for q, lv, dist in s.active:
        checks += [(dist.name not in DRAW_KINDS, f"{dist} draws ({q}.{lv})"), (q in FIXED, f"a varied {q}")]
    bad = [why for cond, why in checks if cond]
    return ("not in the fused kernel: " + ", ".join(bad)) if bad else None


@dataclasses.dataclass
class FusedModel:
    """The kernel's arrays for one resolved problem (see :meth:`from_problem`)."""

    kind: int
    layers: int
    channels: int
    x_um: np.ndarray
    y_um: np.ndarray
    nominal: np.ndarray
    var_q: np.ndarray
    var_level: np.ndarray
    var_mean: np.ndarray
    var_sigma: np.ndarray
    var_row: np.ndarray
    var_kind: np.ndarray  # 0: mean + sigma·z; 1 (shiftedlognormal): low + exp(mean + sigma·z), mean = μ, sigma = s
    var_low: np.ndarray
    n_rows: int
    par: np.ndarray
    tab: np.ndarray
    max_failed: int
    hist_bins: int
    hist_max_db: float
    spec_steps: int = 0  # J of the engine's yield-versus-spec histogram (0: the engine has none)
    physics: object = None  # make_physics(kind, tab), set by from_problem

    @classmethod
    def from_problem(cls, problem) -> "FusedModel":
        """Everything the kernel reads, from the engine's :class:`~yieldmc.engine.problem.Problem`.

        Raises:
          NotImplementedError: a feature the kernel leaves out (:func:`unsupported`).
        """
        from yieldmc.engine import quantities
        from yieldmc.engine.statistics import SPEC_STEPS
        from yieldmc.engine.model import nominal_values
        from yieldmc.physics import coupling, materials, silicon, si_taper

        why = unsupported(problem)
        if why:
            raise NotImplementedError(why)
        if quantities.QUANTITIES != QUANTITIES:
            raise RuntimeError("fused_kernel: the engine's quantity catalogue changed; update QUANTITIES")
        s = problem.static
        p = {k: float(np.asarray(v).reshape(-1)[0]) for k, v in problem.params.items()}
        nominal = {q: float(np.asarray(x).reshape(-1)[0]) for q, x in nominal_values(p, s).items()}
        heights = {"module": 1, "layer": s.layers, "channel": s.layers * s.channels}
        rows, row = [], 0
        for q, lv, dist in s.active:  # yieldmc.engine.blocks.split_draws' layout
            kind_q, a, b, low = _draw_row(dist.name, p[f"process.{q}.{lv}.mean"], p[f"process.{q}.{lv}.sigma"],
                                          p[f"process.{q}.{lv}.low"])
            rows.append((QUANTITIES.index(q), LEVEL_INDEX[lv], a, b, row, kind_q, low))
            row += heights[lv]
        cols = list(zip(*rows)) if rows else [[]] * 7
        c = np.arange(s.channels, dtype=np.float64)
        pk = lambda k: p["package." + k]  # noqa: E731
        wl, temp, rh = nominal["wavelength_um"], nominal["temperature_c"], nominal["humidity_rh"]
        dn_env = (pk("pwg.cauchy_b_um2") * (1 / wl**2 - 1 / pk("pwg.index_wavelength_um") ** 2)
                  + pk("pwg.dn_dt_per_k") * (temp - pk("pwg.index_temperature_c"))
                  + pk("pwg.dn_drh_per_rh") * (rh - pk("pwg.index_humidity_rh")))  # model.pwg_indices
        d_rh = rh - pk("lock_humidity_rh")
        par = dict.fromkeys(PAR_NAMES, 0.0)
        par.update(
            prop_db=max(pk("pwg.loss_db_per_cm") + pk("pwg.water_loss_db_per_cm_per_rh")
                        * (rh - pk("pwg.index_humidity_rh")), 0.0) * pk("pwg.length_cm"),
            runout_per_um=pk("cte_mismatch_ppm_per_k") * 1e-6 * (temp - pk("lock_temperature_c"))
            + pk("chm_mismatch_ppm_per_rh") * 1e-6 * d_rh,
            dy_env_um=pk("gap_swelling_um_per_rh") * d_rh + pk("gap_thermal_um_per_k") * (temp - pk("lock_temperature_c")),
            dn_env=dn_env, n_core0=pk("pwg.n_core"),
            n_clad0=pk("pwg.n_clad"), pi_over_wl=math.pi / wl, max_loss_db=p["spec.max_loss_db"],
            hist_scale=s.hist_bins / s.hist_max_db,
        )
        tab = np.zeros((8, 2), np.float32)
        if s.coupler.name == "butt":
            n_gap = pk("coupler.n_gap")
            fres = float(coupling.fresnel_transmission(pk("pwg.n_core"), n_gap)
                         * coupling.fresnel_transmission(n_gap, pk("coupler.n_chip")))
            par.update(k_gap=2 * math.pi * n_gap / wl, w2_x_um=pk("coupler.mode_radius_x_um"),
                       w2_y_um=pk("coupler.mode_radius_y_um"), ln_fresnel=math.log(fres))
            kind = KIND_BUTT
        else:
            kind = KIND_LZ
            length = pk("coupler.taper_length_um")
            par.update(k0=2 * math.pi / wl, length_um=length, g0_um=pk("coupler.gap_um"),
                       pivot_um=0.5 * length + pk("coupler.yaw_pivot_um"), w_start_um=1e-3 * pk("coupler.start_width_nm"),
                       w_lo_um=0.5 * min(silicon.NEAR_CUTOFF_WIDTH_UM.values()), w_hi_um=silicon.WIDTH_MAX_UM)
            # material shifts of the strip at the (fixed) temperature; the cladding above it is the PWG's
            ref_si, ref_box, ref_top = (float(x) for x in silicon.si_strip_reference_indices(wavelength_um=wl))
            deltas = (float(materials.silicon_index(wavelength_um=wl, temperature_c=temp)) - ref_si,
                      float(materials.silica_index(wavelength_um=wl, temperature_c=temp)) - ref_box,
                      pk("pwg.n_clad") + dn_env - ref_top)
            s0, ds, n, tables = si_taper._build()
            low = wl < silicon.BAND_SPLIT_UM
            band = [0, 1, 2] if low else [3, 4, 5]
            wts = silicon._band_lagrange(wl, [silicon.WAVELENGTHS_UM[j] for j in band])
            n_top = float(materials.pwg_cladding_index(wavelength_um=wl, temperature_c=silicon.TABLE_TEMPERATURE_C))
            tab = np.zeros((8, n), np.float64)
            par.update(ds=ds, n_top=n_top)
            for ip, pol in enumerate(("te", "tm")):
                vals, slopes = tables[pol]  # (fields, nodes, n), in the normalised width s
                v_node = sum(wt * vals[:, j] for wt, j in zip(wts, band))
                m_node = sum(wt * slopes[:, j] for wt, j in zip(wts, band))
                full = v_node[0] + sum(d * v_node[1 + k] for k, d in enumerate(deltas))  # − n_top
                tab[4 * ip:4 * ip + 4] = (full, m_node[0] + sum(d * m_node[1 + k] for k, d in enumerate(deltas)),
                                          v_node[0], m_node[0])
                w0b = sum(wt * float(silicon._W_LO[ip, j]) for wt, j in zip(wts, band))
                ta, tb = 1.0 / ((silicon.WIDTH_MAX_UM - w0b) * ds), s0 / ds
                kappa = pk("coupler.kappa_tm_per_um") if (pol == "tm" and s.coupler.settings.tm_kappa) \
                    else pk("coupler.kappa_per_um")
                par.update({f"kappa_{pol}": kappa, f"eta_excess_{pol}": 10 ** (-0.1 * pk(f"coupler.excess_loss_{pol}_db")),
                            f"tw0_{pol}": w0b, f"ta_{pol}": ta, f"tb_{pol}": tb})
            tab = tab.astype(np.float32)
        model = cls(
            kind=kind, layers=s.layers, channels=s.channels,
            x_um=((c - 0.5 * (s.channels - 1)) * pk("pitch_um")).astype(np.float32),
            y_um=(np.arange(s.layers) * pk("layer_pitch_um")).astype(np.float32),
            nominal=np.array([nominal[q] for q in QUANTITIES], np.float32),
            var_q=np.array(cols[0], np.int64), var_level=np.array(cols[1], np.int64),
            var_mean=np.array(cols[2], np.float32), var_sigma=np.array(cols[3], np.float32),
            var_row=np.array(cols[4], np.int64), var_kind=np.array(cols[5], np.int64),
            var_low=np.array(cols[6], np.float32), n_rows=row,
            par=np.array([par[k] for k in PAR_NAMES], np.float32), tab=tab,
            max_failed=int(p["spec.max_failed_channels"]), hist_bins=s.hist_bins, hist_max_db=s.hist_max_db,
            spec_steps=SPEC_STEPS,
        )
        model.physics = make_physics(kind, tab)
        if kind == KIND_LZ:  # n_full and n_ref at the start width (no sample dependence), with the kernel's Hermite
            for ip in (0, 1):
                o = _POL0 + _POL_STRIDE * ip
                w = np.full(TILE, model.par[_WSTART], np.float32)
                model.par[o + 5] = _table_value(model, ip, 0, w)[0]
                model.par[o + 6] = _table_value(model, ip, 2, w)[0]
        return model

    def run(self, *, samples: int, seed: int = 0, chunks: int | None = None) -> dict:
        """Statistics of ``samples`` modules.

        Args:
          samples: modules (< 2^32: the counter's first word).
          seed: the Threefry key is (seed >> 32, seed & 0xffffffff).
          chunks: ``prange`` iterations (default 8 per thread; each owns its histogram).
            Scheduled statically: ``numba.parallel_chunksize(1)`` (dynamic) cost ~7 ms per
            chunk here.

        Returns:
          ``{"n_pass", "n_samples", "fail" (L, C), "loss_sum" (L, C) dB, "hist" (L, C, bins + 1),
          "spec_hist" (2J + 2; empty when the engine keeps no yield-versus-spec histogram)}``.
        """
        if not 0 < samples < 2**32:
            raise ValueError(f"samples: must be in (0, 2^32), got {samples}")
        n_tiles = -(-samples // TILE)
        chunks = max(1, min(chunks or 8 * numba.get_num_threads(), n_tiles))
        n_pass, fail, loss_sum, hist, spec_hist = fused_run(
            self.physics, samples, chunks, np.uint32((seed >> 32) & 0xFFFFFFFF), np.uint32(seed & 0xFFFFFFFF),
            self.layers, self.channels, self.x_um, self.y_um, self.nominal, self.var_q, self.var_level,
            self.var_mean, self.var_sigma, self.var_row, self.var_kind, self.var_low, self.n_rows, self.par,
            self.max_failed, self.hist_bins, self.spec_steps)
        shape = (self.layers, self.channels)
        return {"n_pass": int(n_pass.sum()), "n_samples": int(samples), "fail": fail.sum(0).reshape(shape),
                "loss_sum": loss_sum.sum(0).reshape(shape), "hist": hist.sum(0).reshape(*shape, -1),
                "spec_hist": spec_hist.sum(0)}


def _table_value(model: FusedModel, pol: int, row: int, w_um: np.ndarray) -> np.ndarray:
    return _table_kernel(model.tab, 4 * pol + row, w_um, model.par, _POL0 + _POL_STRIDE * pol)


@njit(**_OPTS)
def _table_kernel(tab, row, w, par, o):
    out = np.empty(w.shape[0], np.float32)
    for i in range(w.shape[0]):
        out[i], _ = _hermite(tab, row, w[i], par[o + 2], par[o + 3], par[o + 4], par[_DS])
    return out


# ----------------------------------------------------------------------------------------
# Checks against the engine and the command
# ----------------------------------------------------------------------------------------

#: The cases of scripts/bench.py the kernel implements (overrides of the default job).
CASES = {
    "butt": ["package/coupler=butt"],
    "adiabatic_landau_zener": ["package.coupler.model=landau_zener"],
}


def check_threefry(n: int = 4096) -> None:
    """The hash against ``jax.extend.random.threefry_2x32``, bit for bit."""
    from jax.extend.random import threefry_2x32

    rng = np.random.default_rng(0)
    k = rng.integers(0, 2**32, 2, dtype=np.uint32)
    c = rng.integers(0, 2**32, (2, n), dtype=np.uint32)
    ref = np.asarray(threefry_2x32((k[0], k[1]), np.concatenate([c[0], c[1]])))
    ours = _threefry_batch(k[0], k[1], c[0], c[1])
    if not (np.array_equal(ours[0], ref[:n]) and np.array_equal(ours[1], ref[n:])):
        raise AssertionError("threefry2x32 differs from jax.extend.random.threefry_2x32")


@njit
def _threefry_batch(k0, k1, c0, c1):
    out = np.empty((2, c0.shape[0]), np.uint32)
    for i in range(c0.shape[0]):
        out[0, i], out[1, i] = threefry2x32(k0, k1, c0[i], c1[i])
    return out


def check_physics(problem, model: FusedModel, *, n: int = 8 * TILE, seed: int = 3) -> float:
    """Largest |Δ loss| (dB) between the kernel's physics and ``yieldmc.engine.model.channel_loss_db``
    on the same sampled quantity values (every channel position, the engine in float32)."""
    import jax.numpy as jnp

    from yieldmc.engine.model import channel_loss_db

    s = problem.static
    rng = np.random.default_rng(seed)
    values = np.repeat(model.nominal[:, None], n, axis=1).astype(np.float32)
    for q, a, b, kind, low in zip(model.var_q, model.var_mean, model.var_sigma, model.var_kind, model.var_low):
        zz = rng.standard_normal(n).astype(np.float32)
        values[q] += (a + b * zz) if kind == 0 else (low + np.exp(a + b * zz)).astype(np.float32)
    stack = np.zeros(n, np.float32)
    ours = np.stack([channel_losses(model.physics, values, model.x_um[c], model.y_um[0], stack, model.par)
                     for c in range(s.channels)])
    params = {k: jnp.asarray(np.asarray(v).reshape(-1)[0], jnp.float32) for k, v in problem.params.items()}
    vals = {q: jnp.asarray(values[i]) for i, q in enumerate(QUANTITIES)}
    one_layer = dataclasses.replace(s, layers=1)
    ref = np.asarray(channel_loss_db(vals, params, one_layer))[0]  # (C, n)
    return float(np.max(np.abs(ours - ref)))


def compare(engine_stats, fused: dict) -> dict:
    """Yield agreement (combined binomial SE) and per-channel fail fractions and mean losses."""
    n1, n2 = engine_stats.n_samples, fused["n_samples"]
    y1, y2 = engine_stats.n_pass[0] / n1, fused["n_pass"] / n2
    se = math.sqrt(y1 * (1 - y1) / n1 + y2 * (1 - y2) / n2)
    f1 = engine_stats.fail[0, 0] / n1
    f2 = fused["fail"] / n2
    se_f = np.sqrt(f1 * (1 - f1) / n1 + f2 * (1 - f2) / n2)
    z_f = np.where(se_f > 0, (f2 - f1) / np.where(se_f > 0, se_f, 1), 0.0)
    return {"yield_engine": y1, "yield_fused": y2, "se_engine": math.sqrt(y1 * (1 - y1) / n1),
            "se_fused": math.sqrt(y2 * (1 - y2) / n2), "combined_se": se,
            "z": (y2 - y1) / se if se > 0 else 0.0, "agree": bool(abs(y2 - y1) <= 4.5 * max(se, 1e-12)),
            "fail_fraction_engine": f1.tolist(), "fail_fraction_fused": f2.tolist(),
            "max_abs_z_fail_fraction": float(np.max(np.abs(z_f))),
            "mean_loss_db_engine": (engine_stats.loss_sum[0, 0] * 1e-4 / n1).tolist(),
            "mean_loss_db_fused": (fused["loss_sum"] / n2).tolist(),
            # the spec histogram's count up to bin J (spec = spec.max_loss_db) is the passing count
            "spec_hist_consistent": bool(fused["spec_hist"].size == 0 or
                                         fused["spec_hist"][:(fused["spec_hist"].size - 2) // 2 + 1].sum()
                                         == fused["n_pass"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=1 << 20)
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--threads", type=int, default=None, help="numba threads (default: all)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json")
    args = ap.parse_args()
    import yieldmc
    from yieldmc.engine.blocks import accumulate
    from yieldmc.io.config import problem_from_config

    if args.threads:
        numba.set_num_threads(args.threads)
    check_threefry()
    print(f"numba {numba.__version__}, {numba.get_num_threads()} threads; threefry2x32 = jax's, bit for bit")
    report, ok = {}, True
    for name in args.cases:
        problem = problem_from_config(yieldmc.compose(CASES[name] + [f"samples={args.samples}"]))
        model = FusedModel.from_problem(problem)
        t = time.perf_counter()
        model.run(samples=TILE, seed=0)
        t_compile = time.perf_counter() - t
        walls = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            fused = model.run(samples=args.samples, seed=args.seed)
            walls.append(time.perf_counter() - t)
        engine = accumulate(problem, range(problem.n_blocks))
        row = compare(engine, fused)
        evals = args.samples * problem.static.layers * problem.static.channels
        row.update(fused_s=statistics.median(walls), fused_walls_s=walls, compile_s=t_compile,
                   fused_channel_evals_per_s=evals / statistics.median(walls),
                   max_abs_physics_diff_db=check_physics(problem, model))
        report[name] = row
        ok &= row["agree"] and row["spec_hist_consistent"]
        print(f"{name:24s} fused {row['fused_channel_evals_per_s']:.4g} ch/s (compile {t_compile:.1f} s) | "
              f"yield engine {row['yield_engine']:.5f} ± {row['se_engine']:.5f}, fused {row['yield_fused']:.5f} "
              f"± {row['se_fused']:.5f}, z = {row['z']:+.2f} ({'agree' if row['agree'] else 'DISAGREE'}) | "
              f"max |z| per-channel fail fraction {row['max_abs_z_fail_fraction']:.2f} | "
              f"physics vs engine max |Δloss| {row['max_abs_physics_diff_db']:.2e} dB", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    if not ok:
        raise SystemExit("fused kernel: yield disagrees with the engine beyond 4.5 combined standard errors")


if __name__ == "__main__":
    sys.exit(main())
