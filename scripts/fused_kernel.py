"""A fused Numba kernel of the engine's butt coupler and adiabatic Si-strip coupler: the CPU bound.

    python scripts/fused_kernel.py [--samples 1048576] [--cases butt adiabatic_cmt adiabatic_landau_zener]
                                   [--threads N] [--repeats 3] [--seed 1] [--check] [--json fused.json]

A second, stronger speed baseline for the JAX engine (docs/benchmarks.md), beside the plain NumPy one
(``scripts/numpy_baseline.py``): everything a module needs happens in one pass over a tile
of :data:`TILE` modules whose arrays stay in L1/L2 — counter-based normals, the variation
model, the coupler physics and the statistics — with ``prange`` over chunks of tiles, one
chunk's statistics per iteration, summed on the host. Every inner loop
runs over the tile's modules and LLVM vectorises it (AVX2/AVX-512; the supermode shape table's
lookups as gathers, the table being a compile-time constant of the coupler's function).

* **Random numbers**: Threefry-2x32, 20 rounds (Salmon et al., "Parallel random numbers: as
  easy as 1, 2, 3", SC'11), in counter mode on (module index, pair index), both output words
  used, Box–Muller (Box & Muller, Ann. Math. Stat. 29:610 (1958)) as in
  ``yieldmc.engine.rng.threefry_normals``. Independent draws of the same distributions,
  not the engine's stream (the hash itself is checked bit for bit against
  ``jax.extend.random.threefry_2x32`` on every run of this script).
* **Variation model**: the engine's resolved problem (``problem_from_config``): every
  active (quantity, level) with its mean and sigma, normal or shiftedlognormal, rows laid out
  as ``yieldmc.engine.blocks.split_draws`` lays them out; module, layer and channel draws
  summed on the nominal; layer thicknesses accumulated upward.
* **Physics**: ``yieldmc.engine.model.channel_loss_parts`` with

  - the butt coupler (``yieldmc.couplers.butt``), the PWG mode fits' Chebyshev coefficients
    from ``yieldmc.physics.slab``;
  - the adiabatic Si-strip taper from its supermodes (``taper: si_strip``, the default
    package's coupler; ``yieldmc.couplers.adiabatic.supermode_crossing`` and
    ``supermode_transfer``), TE and TM, the worse one counts, each with its residual loss
    (``excess_loss_{te,tm}_db``), + propagation. Per module and polarisation: κ, w* and the
    slope s = dδ/dw from ``yieldmc.physics.supermodes.tables()`` — the nominal crossing plus
    the wavelength and temperature terms (fixed per job, evaluated on the host by the engine's
    own ``supermodes._axis``) plus the per-sample gap term (piecewise linear in the vertical
    gap max(gap + dy, 0), ln κ continued linearly beyond the widest gap) and offset term
    (piecewise linear in dx², ln κ continued beyond the largest offset); the first-order polymer
    shift of w* (``supermodes.polymer_shift_per_um``); the taper's width profile
    (``yieldmc.physics.taper``: linear, piecewise or exponential) shifted by the sampled tip
    width, which places the crossing z_c and the sweep rate; the yaw walk-off at z_c for κ.
    Model ``cmt``: ``yieldmc.physics.adiabatic.adiabatic_transfer_profile`` — the problem's
    ``segments`` pieces with sinh-graded edges z_f + H·sinh(A + (B − A)·j/S) around z_c
    (H = ``couplers.adiabatic.FOCUS_WIDTH``·κ/rate), δ at each piece's midpoint from the
    tabulated shape δ(u) = s·ĝ(u) (``supermodes.shape_table``), the exact SU(2) matrix of each
    constant piece (Yariv, IEEE JQE 9:919 (1973)); model ``landau_zener``:
    ``physics.adiabatic.landau_zener_with_ends`` with δ at both ends. The tables, nodes,
    knots and constants are compiled in as float32 literals, so nothing is re-derived.
* **Statistics**: as ``yieldmc.engine.statistics.STATISTICS``: passing modules with
  ``spec.max_loss_db`` and ``spec.max_failed_channels``, per-channel fail counts, sums of the
  loss clipped to [0, 100] dB (float64 here, fixed point in the engine), the per-channel loss
  histogram (``engine.hist_bins`` bins up to ``engine.hist_max_db`` plus overflow) and,
  where the engine keeps one (``statistics.SPEC_STEPS``), the yield-versus-spec histogram of each
  module's (m+1)-th worst channel loss.
* **Arithmetic**: float32 like the engine; exp, log and sin/cos are Cephes single-precision
  polynomials (S. L. Moshier, *Methods and Programs for Mathematical Functions*, 1989), and
  asinh and expm1 are built from them and a Taylor series (keeping their relative accuracy
  near 0), so that LLVM vectorises the loops over the tile's modules; fast-math without
  ``nnan``/``ninf`` (a NaN loss must still fail, as in the engine), and for the Si-strip
  coupler also without ``reassoc`` (its Cody–Waite reduction, log1p correction and
  Landau–Zener sums depend on their order of operations).

Checks (every run; ``--check`` runs only these): the kernel's channel losses against the
engine's ``channel_loss_parts`` in float32 on fixed draws, at the process spreads and at three
times them, within :data:`CHECK_TOLERANCE_DB` (its comment derives it) where the engine's loss
is below ``engine.hist_max_db``, with no pass/fail difference beyond it; on a run, the yield
and every channel's fail fraction against the engine's within 4.5 combined binomial
standard errors.

Left out (``FusedModel.from_problem`` refuses them with the reason, :func:`unsupported`):
varied environment quantities (temperature, humidity, wavelength, bend radius: fixed at
their nominal, which fixes the supermode tables' wavelength and temperature terms and the
PWG indices' environment shift per run), conditions, WDM lanes, a bent flex, the crosstalk
spec, ``spec.scope: coupler``, distributions other than normal and shiftedlognormal, the
Gaussian copula, active alignment, sweeps, samplers other than mc, the adiabatic coupler's
linear Δβ taper (``taper: linear``), a single polarisation (``package.polarization`` te or
tm; the default ``worst`` evaluates both, as the kernel does), couplers other than butt and
adiabatic; and as outputs, the PDL sums, the loss parts and the per-condition counts.
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
#: The Si-strip coupler's physics without ``reassoc``: its formulas rely on the order of their
#: operations (the Cody–Waite reduction, Goldberg's log1p correction, the Landau–Zener
#: p₀·P + (1 − p₀)·(1 − P) at p₀ → 1), which reassociation would cancel; it has no reductions.
_OPTS_ORDERED = {"fastmath": FASTMATH - {"reassoc"}, "error_model": "numpy"}
_INLINE_ORDERED = dict(_OPTS_ORDERED, inline="always")
F = np.float32
KIND_BUTT, KIND_SUPERMODE = 0, 1
_INF = F(np.inf)

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
)
_P = {name: i for i, name in enumerate(PAR_NAMES)}
_PROP, _RUNOUT, _DY_ENV, _DN_ENV, _NCORE0, _NCLAD0, _PI_WL = (_P[k] for k in PAR_NAMES[:7])
_MAX_LOSS, _HIST_SCALE = _P["max_loss_db"], _P["hist_scale"]
_KGAP, _W2X, _W2Y, _LNFRES = _P["k_gap"], _P["w2_x_um"], _P["w2_y_um"], _P["ln_fresnel"]

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


@njit(**_INLINE)
def _offsets(v, i, x_um, y_um, stack, runout, dy_env):
    """(dx, dy) of module i's waveguide at (x_um, y_um) (``engine.model.waveguide_offsets``;
    ``runout`` = x_um·(thermal + hygroscopic run-out per µm), ``dy_env`` the bond-line change)."""
    roll = v[Q_ROLL, i] * F(1e-3)
    dx = v[Q_DX, i] + x_um * v[Q_PITCH, i] * F(1e-6) + runout - y_um * roll
    dy = v[Q_DY, i] + x_um * roll + stack[i] + dy_env
    return dx, dy


@njit(**_OPTS)
def _butt_channel(v, x_um, y_um, stack, par, out, work):
    """Loss (dB) of one channel of every module of a tile: the butt coupler
    (``couplers.butt.ButtCoupler.efficiency``) + propagation. ``work`` is not used."""
    runout, dy_env, dn_env = par[_RUNOUT] * x_um, par[_DY_ENV], par[_DN_ENV]
    n_core0, n_clad0, pi_wl, prop = par[_NCORE0], par[_NCLAD0], par[_PI_WL], par[_PROP]
    k, w2x, w2y, ln_fres = par[_KGAP], par[_W2X], par[_W2Y], par[_LNFRES]
    n_clad = n_clad0 + dn_env
    for i in range(out.shape[0]):
        yaw = v[Q_YAW, i] * F(1e-3)
        dx, dy = _offsets(v, i, x_um, y_um, stack, runout, dy_env)
        w_x, w_y, _, _ = _pwg_core(v[Q_CW, i], v[Q_CT, i], n_core0 + v[Q_DN, i] + dn_env, n_clad, pi_wl, False)
        gap = max(v[Q_GAP, i] + x_um * yaw, F(0.0))
        px, ex = _axis_terms(w_x, w2x, dx, gap, yaw, k)
        py, ey = _axis_terms(w_y, w2y, dy, gap, F(0.0), k)
        ln_eta = F(0.5) * log32(F(16.0) * px * py) + ex + ey + ln_fres
        loss = -_DB_PER_NEPER * max(ln_eta, _LN_ETA_FLOOR) + prop
        out[i] = loss if loss == loss else np.inf  # outside the model's domain: fails


# ----------------------------------------------------------------------------------------
# The adiabatic Si-strip taper from its supermodes (couplers.adiabatic, taper: si_strip)
# ----------------------------------------------------------------------------------------


@njit(**_INLINE_ORDERED)
def expm1_32(x):
    """e^x − 1, float32, accurate relative to the result near 0 (where exp(x) − 1 cancels):
    the Taylor series to x⁸/8! for |x| ≤ 0.5 (truncation < 1.1e-8 relative), else exp32(x) − 1
    (|e^x − 1| ≥ 0.39 there)."""
    p = x * (F(1.0) + x * (F(1.0 / 2) + x * (F(1.0 / 6) + x * (F(1.0 / 24) + x * (
        F(1.0 / 120) + x * (F(1.0 / 720) + x * (F(1.0 / 5040) + x * F(1.0 / 40320))))))))
    return p if abs(x) <= F(0.5) else exp32(x) - F(1.0)


@njit(**_INLINE_ORDERED)
def asinh32(x):
    """asinh x, float32: sign(x)·log1p(|x| + x²/(1 + sqrt(1 + x²))) (no cancellation near 0;
    log1p as log(u) − ((u − 1) − y)/u, u = 1 + y, Goldberg's correction: D. Goldberg, ACM
    Comput. Surv. 23:5 (1991), theorem 4); log(2|x|) beyond 1e9, where x² would lose 1 + x²."""
    ax = abs(x)
    y = ax + ax * ax / (F(1.0) + sqrt32(F(1.0) + ax * ax))
    u = F(1.0) + y
    small = log32(u) - ((u - F(1.0)) - y) / u
    r = (log32(ax) + F(0.693147180559945309)) if ax > F(1e9) else small
    return r if x >= F(0.0) else -r


@njit(**_INLINE_ORDERED)
def _cos_and_sinc(x):
    """(cos x, sin(x)/x) as ``yieldmc.physics._fastmath.cos_and_sinc`` (1 − x²/6 for |x| < 1e-3)."""
    s, c = sincos32(x)
    return c, (F(1.0) - x * x / F(6.0)) if abs(x) < F(1e-3) else s / x


@njit(**_INLINE_ORDERED)
def _fractions(db, kappa):
    """(cos²θ, sin²θ) of ``physics.adiabatic.supermode_fractions`` (ratio 0 = sign(0) where
    κ = Δβ = 0)."""
    half = F(0.5) * db
    ratio = half / max(sqrt32(half * half + kappa * kappa), F(1e-30))
    return F(0.5) * (F(1.0) + ratio), F(0.5) * (F(1.0) - ratio)


def _f32(x) -> str:
    """A float32 literal of the generated source."""
    return f"F({float(np.float32(x))!r})"


def _ramps(x: str, nodes, vals, extend_slope=None) -> str:
    """Expression of the piecewise-linear interpolation of ``vals`` over ``nodes`` at ``x``,
    held at the end values (``jnp.interp``), as v0 + Σ_j (v_j+1 − v_j)·clip((x − n_j)/(n_j+1 − n_j), 0, 1);
    ``extend_slope``: plus slope·max(x − n_last, 0) (``supermodes._axis(extend_last=True)``)."""
    nodes, vals = np.asarray(nodes, float), np.asarray(vals, float)
    terms = [_f32(vals[0])]
    for j in range(len(nodes) - 1):
        terms.append(f"{_f32(vals[j + 1] - vals[j])} * min(max(({x} - {_f32(nodes[j])}) * "
                     f"{_f32(1.0 / (nodes[j + 1] - nodes[j]))}, F(0.0)), F(1.0))")
    if extend_slope is not None:
        terms.append(f"{_f32(extend_slope)} * max({x} - {_f32(nodes[-1])}, F(0.0))")
    return " + ".join(terms)


def _compile(source: str, names, scope=None):
    """njit-inline functions from generated source (constants as float32 literals)."""
    scope = dict(scope or {}, F=F, np=np, exp32=exp32, log32=log32)
    exec(source, scope)  # noqa: S102 - our own generated source
    return [njit(**_INLINE_ORDERED)(scope[n]) for n in names]


def _profile_source(c) -> str:
    """``width(z)``, ``position(w)``, ``rate(w)`` of ``yieldmc.physics.taper.width_profile``
    for the coupler's shape, with its constants (the engine's float32 arithmetic on the job's
    fixed L, w0, w1, knots, exponent)."""
    L, w0, w1 = np.float32(c.length_um), np.float32(c.w0_um), np.float32(c.w1_um)
    if c.profile == "linear":
        return (f"def width(z):\n    return {_f32(w0)} + {_f32(w1 - w0)} * (z * {_f32(1.0 / L)})\n"
                f"def position(w):\n    return {_f32(L / (w0 - w1))} * ({_f32(w0)} - min(max(w, {_f32(w1)}), "
                f"{_f32(w0)}))\n"
                f"def rate(w):\n    return {_f32((w0 - w1) / L)}\n")
    if c.profile == "piecewise":
        fr = [0.0] + [f for f, _ in c.knots] + [1.0]
        ws = [w0] + [np.float32(w) for _, w in c.knots] + [w1]
        wid = [_f32(ws[0])] + [f"{_f32(ws[j + 1] - ws[j])} * min(max((x - {_f32(fr[j])}) * "
                               f"{_f32(1.0 / (fr[j + 1] - fr[j]))}, F(0.0)), F(1.0))" for j in range(len(fr) - 1)]
        pos = [f"{_f32(fr[j + 1] - fr[j])} * min(max(({_f32(ws[j])} - w) * {_f32(1.0 / (ws[j] - ws[j + 1]))}, "
               f"F(0.0)), F(1.0))" for j in range(len(fr) - 1)]
        rate = [f"    out = {_f32((ws[0] - ws[1]) / (fr[1] * L))}\n"]
        rate += [f"    out = {_f32((ws[j] - ws[j + 1]) / ((fr[j + 1] - fr[j]) * L))} if w < {_f32(ws[j])} else out\n"
                 for j in range(1, len(fr) - 1)]
        return (f"def width(z):\n    x = z * {_f32(1.0 / L)}\n    return {' + '.join(wid)}\n"
                f"def position(w):\n    return {_f32(L)} * ({' + '.join(pos)})\n"
                f"def rate(w):\n{''.join(rate)}    return out\n")
    a = np.float32(c.exponent)
    tail = np.float32(np.exp(-a))
    span = np.float32((w0 - w1) / (np.float32(1.0) - tail))
    return (f"def width(z):\n    return {_f32(w1)} + {_f32(span)} * (exp32(z * {_f32(-a / L)}) - {_f32(tail)})\n"
            f"def position(w):\n    wc = min(max(w, {_f32(w1)}), {_f32(w0)})\n"
            f"    return {_f32(-L / a)} * log32((wc - {_f32(w1)}) * {_f32(1.0 / span)} + {_f32(tail)})\n"
            f"def rate(w):\n    wc = min(max(w, {_f32(w1)}), {_f32(w0)})\n"
            f"    return {_f32(a / L)} * ((wc - {_f32(w1)}) + {_f32(span * tail)})\n")


#: Rows of the per-tile work array of the Si-strip coupler: shared inputs, then per
#: polarisation the crossing, the coupled-mode amplitudes and η.
(W_DX, W_GAP, W_YAW, W_BIAS, W_NCORE, W_KAPPA, W_WC, W_SLOPE, W_ZF, W_HW, W_A, W_SPAN,
 W_AR, W_AI, W_BR, W_BI, W_Z0, W_ETA) = range(18)
N_WORK = W_ETA + 2  # η of TE and TM


def _make_polarization(c, p: int, width, position, rate):
    """η·(residual loss) of polarisation ``p`` of the Si-strip coupler over a tile:
    ``couplers.adiabatic.supermode_crossing`` then ``supermode_transfer`` (``cmt``:
    ``physics.adiabatic_transfer_profile``; ``landau_zener``: ``physics.landau_zener_with_ends``)."""
    t = c.pols[p]
    axes = "def gap_terms(x):\n    return " + ", ".join(
        f"({_ramps('x', t['gap_nodes'], t['gap_vals'][:, i], t['gap_slope'] if i == 0 else None)})" for i in range(3))
    axes += "\ndef offset_terms(x):\n    return " + ", ".join(
        f"({_ramps('x', t['offset_nodes2'], t['offset_vals'][:, i], t['offset_slope'] if i == 0 else None)})"
        for i in range(3))
    gap_terms, offset_terms = _compile(axes, ("gap_terms", "offset_terms"))
    g = np.asarray(t["shape_g"], np.float32)
    n_g = g.shape[0]
    # ĝ(u) as (ĝ_j, ĝ_j+1 − ĝ_j) float32 pairs in one 64-bit word each: one gather per lookup;
    # a compile-time constant
    g_pairs = (g[:-1].view(np.uint32).astype(np.uint64)
               | ((g[1:] - g[:-1]).view(np.uint32).astype(np.uint64) << np.uint64(32)))
    g0, inv_step = F(t["shape_u0"]), F(1.0 / t["shape_step"])
    q_k, q_w, q_s = (F(x) for x in t["q_const"])
    k0, d_common, d_core = F(c.k0), F(t["d_common"]), F(t["d_core"])
    d_clad, contrast = F(c.n_clad - t["clad_table"]), F(t["contrast"])
    excess = F(t["excess"])
    length, w0, w1, pivot, focus = F(c.length_um), F(c.w0_um), F(c.w1_um), F(c.pivot_um), F(c.focus_width)
    n_clad = F(c.n_clad)
    cmt = c.model == "cmt"
    segments = c.segments
    s_next = np.arange(1, segments + 1, dtype=np.float32) / np.float32(segments)  # as the engine's scan
    row_eta = W_ETA + p

    @njit(**_INLINE_ORDERED)
    def shape(u):
        """ĝ(u) of ``supermodes.delta_per_um`` (linear on its uniform grid, held at the ends)."""
        x = min(max((u - g0) * inv_step, F(0.0)), F(n_g - 1))
        j = min(np.uint32(x), np.uint32(n_g - 2))  # unsigned: no negative-index wraparound
        pair = g_pairs[j]
        return _i2f(pair) + (x - F(j)) * _i2f(pair >> np.uint64(32))

    @njit(**_OPTS_ORDERED)
    def polarization(work):
        for i in range(TILE):  # the crossing (supermodes.crossing, taper profile, yaw walk-off)
            dx, gap, yaw, bias = work[W_DX, i], work[W_GAP, i], work[W_YAW, i], work[W_BIAS, i]
            gk, gw, gs = gap_terms(gap)
            _, o_w, o_s = offset_terms(dx * dx)
            w_star = q_w + gw + o_w
            slope = exp32(q_s + gs + o_s)
            shift = k0 * (d_common * d_clad + d_core * (work[W_NCORE, i] - n_clad - contrast))
            w_c = w_star - shift / slope
            z_c = position(w_c - bias)
            dx_eff = dx + yaw * (z_c - pivot)
            ek, _, _ = offset_terms(dx_eff * dx_eff)
            kappa = exp32(q_k + gk + ek)  # κ(dx)·exp(ln κ offset term(dx_eff) − that at dx)
            r = slope * rate(w_c - bias)
            if cmt:
                hw = focus * kappa / r
                a = asinh32(-z_c / hw)
                work[W_KAPPA, i], work[W_WC, i], work[W_SLOPE, i] = kappa, w_c, slope
                work[W_ZF, i], work[W_HW, i], work[W_A, i] = z_c, hw, a
                work[W_SPAN, i] = asinh32((length - z_c) / hw) - a
                work[W_AR, i], work[W_AI, i], work[W_BR, i], work[W_BI, i], work[W_Z0, i] = 1.0, 0.0, 0.0, 0.0, 0.0
            else:  # landau_zener_with_ends
                adiabatic = -expm1_32(F(-2.0 * np.pi) * kappa * kappa / r)
                p0, _ = _fractions(slope * shape(w0 + bias - w_c), kappa)
                inside = (w_c > w1 + bias) & (w_c < w0 + bias)
                plus = p0 * adiabatic + (F(1.0) - p0) * (F(1.0) - adiabatic) if inside else p0
                c_end, s_end = _fractions(slope * shape(w1 + bias - w_c), kappa)
                work[row_eta, i] = (plus * s_end + (F(1.0) - plus) * c_end) * excess
        if cmt:  # sinh-graded segments around z_c, exact SU(2) matrices (Yariv, IEEE JQE 9:919 (1973))
            for j in range(segments):
                s1 = s_next[j]
                last = j == segments - 1
                for i in range(TILE):
                    e = exp32(work[W_A, i] + work[W_SPAN, i] * s1)
                    z1 = length if last else work[W_ZF, i] + work[W_HW, i] * (F(0.5) * (e - F(1.0) / e))
                    z0 = work[W_Z0, i]
                    h = z1 - z0
                    u = width(F(0.5) * (z0 + z1)) + work[W_BIAS, i] - work[W_WC, i]
                    dh = F(0.5) * (work[W_SLOPE, i] * shape(u)) * h  # δ·h
                    kh = work[W_KAPPA, i] * h
                    cs, sinc = _cos_and_sinc(sqrt32(dh * dh + kh * kh))
                    sd, sk = sinc * dh, sinc * kh
                    ar, ai, br, bi = work[W_AR, i], work[W_AI, i], work[W_BR, i], work[W_BI, i]
                    work[W_AR, i] = cs * ar + sd * ai + sk * bi
                    work[W_AI, i] = cs * ai - sd * ar - sk * br
                    work[W_BR, i] = cs * br - sd * bi + sk * ai
                    work[W_BI, i] = cs * bi + sd * br - sk * ar
                    work[W_Z0, i] = z1
            for i in range(TILE):
                br, bi = work[W_BR, i], work[W_BI, i]
                work[row_eta, i] = (br * br + bi * bi) * excess

    return polarization


@njit(**_INLINE_ORDERED)
def _loss_db(eta):
    """−10·log10 max(η, 1e-30) (``engine.model._as_loss_db``); NaN (outside the model's domain): +inf."""
    loss = -_DB_PER_NEPER * log32(eta if eta > F(1e-30) else F(1e-30))
    return loss if eta == eta else _INF


def _make_supermode_physics(c):
    """The per-channel physics function of the Si-strip coupler ``c`` (:class:`SupermodeCoupler`):
    TE and TM, the worse counts, + propagation (``engine.model.channel_loss_parts``)."""
    width, position, rate = _compile(_profile_source(c), ("width", "position", "rate"))
    te = _make_polarization(c, 0, width, position, rate)
    tm = _make_polarization(c, 1, width, position, rate)
    w1 = F(c.w1_um)

    @njit(**_OPTS_ORDERED)
    def physics(v, x_um, y_um, stack, par, out, work):
        runout, dy_env, dn_env = par[_RUNOUT] * x_um, par[_DY_ENV], par[_DN_ENV]
        n_core0, prop = par[_NCORE0], par[_PROP]
        for i in range(TILE):
            dx, dy = _offsets(v, i, x_um, y_um, stack, runout, dy_env)
            work[W_DX, i] = dx
            work[W_GAP, i] = max(v[Q_GAP, i] + dy, F(0.0))  # contact: the PWG rests on the chip
            work[W_YAW, i] = v[Q_YAW, i] * F(1e-3)
            work[W_BIAS, i] = F(1e-3) * v[Q_TIP, i] - w1  # a CD error shifts every width of the taper
            work[W_NCORE, i] = n_core0 + v[Q_DN, i] + dn_env
        te(work)
        tm(work)
        for i in range(TILE):
            out[i] = max(_loss_db(work[W_ETA, i]), _loss_db(work[W_ETA + 1, i])) + prop

    return physics


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
    work = np.empty((N_WORK, TILE), np.float32)
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
                physics(v, x_um[c], y_um[lyr], stack, par, loss[lyr * channels + c], work)
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
    stack, par, out, work)`` fills one channel's losses of a tile (:func:`make_physics`;
    ``work`` is its (N_WORK, TILE) scratch)."""
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


def make_physics(kind: int, coupler=None):
    """The per-channel physics function of a coupler kind: the butt coupler, or the Si-strip
    coupler ``coupler`` (:class:`SupermodeCoupler`) compiled for its job: the shape table ĝ(u),
    the interpolation nodes and the profile are compile-time constants, so LLVM folds them and
    vectorises the module loops with the table lookups as gathers (a table passed as an argument
    might alias the loss stores, which keeps the loop scalar)."""
    if kind == KIND_BUTT:
        return _butt_channel
    return _make_supermode_physics(coupler)


@njit(**_OPTS)
def channel_losses(physics, values, x_um, y_um, stack, par):
    """Loss (dB) of one channel position for given quantity values (Q, n), n a multiple of
    :data:`TILE` — the kernel's physics on chosen inputs (:func:`check_physics`)."""
    out = np.empty(values.shape[1], np.float32)
    work = np.empty((N_WORK, TILE), np.float32)
    for t in range(values.shape[1] // TILE):
        sl = slice(t * TILE, (t + 1) * TILE)
        physics(np.ascontiguousarray(values[:, sl]), x_um, y_um, stack[sl], par, out[sl], work)
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
        (s.scope != "channel", f"spec.scope={s.scope}"),
    ]
    if s.coupler.name == "adiabatic":
        cs = s.coupler.settings
        checks += [(cs.taper != "si_strip", f"taper={cs.taper} (the linear Δβ sweep)"),
                   (cs.model not in ("cmt", "landau_zener"), f"model={cs.model}"),
                   (tuple(s.polarizations) != ("te", "tm"), f"polarization {s.polarizations} (only worst)")]
    elif s.coupler.name != "butt":
        checks.append((True, f"coupler {s.coupler.name}"))
    for q, lv, dist in s.active:
        checks += [(dist.name not in DRAW_KINDS, f"{dist} draws ({q}.{lv})"), (q in FIXED, f"a varied {q}")]
    bad = [why for cond, why in checks if cond]
    return ("not in the fused kernel: " + ", ".join(bad)) if bad else None


@dataclasses.dataclass(frozen=True)
class SupermodeCoupler:
    """The Si-strip coupler of one job, as the kernel compiles it (:func:`_make_supermode_physics`).

    ``pols`` (TE, TM), each a dict: ``q_const`` — (ln κ, w*, ln s) of the nominal crossing plus
    the wavelength and temperature terms at the job's fixed λ and T (evaluated in float64 by
    ``supermodes._axis`` itself); ``gap_nodes``/``gap_vals`` and ``offset_nodes2``/``offset_vals``
    — the per-sample axes of ``supermodes.tables()`` (offset in dx²), with ``gap_slope`` and
    ``offset_slope`` the linear continuation of ln κ beyond the last node; ``shape_u0``,
    ``shape_step``, ``shape_g`` — ĝ(u) of ``supermodes.shape_table``; ``d_common``, ``d_core``,
    ``contrast``, ``clad_table`` — the first-order polymer shift
    (``supermodes.polymer_shift_per_um``); ``excess`` — the residual-loss factor."""

    model: str
    segments: int
    profile: str
    knots: tuple
    exponent: float | None
    length_um: float
    w0_um: float
    w1_um: float
    pivot_um: float
    focus_width: float
    k0: float
    n_clad: float
    pols: tuple

    @classmethod
    def from_problem(cls, problem, p: dict, nominal: dict, dn_env: float) -> "SupermodeCoupler":
        """From the engine's problem: its static settings (model, segments, profile, knots),
        parameters ``p`` and the fixed environment (``nominal``, ``dn_env`` of ``model.pwg_indices``)."""
        import jax
        import jax.numpy as jnp

        from yieldmc.couplers.adiabatic import FOCUS_WIDTH
        from yieldmc.physics import materials, supermodes

        cs = problem.static.coupler.settings
        pk = lambda k: p["package.coupler." + k]  # noqa: E731
        wl, temp = nominal["wavelength_um"], nominal["temperature_c"]
        tables = supermodes.tables()
        pols = []
        with jax.enable_x64(True):
            clad_table = float(materials.pwg_cladding_index(wavelength_um=wl, temperature_c=temp))
            for pol in ("te", "tm"):
                t = tables[pol]
                q = []
                for i in range(3):  # supermodes.crossing: reference + λ term + T term (+ gap + offset per sample)
                    x = float(t["reference"][i])
                    for axis, at in (("wavelength", wl), ("temperature", temp)):
                        nodes, vals = t["axes"][axis]
                        x += float(supermodes._axis(jnp.asarray(at, jnp.float64), nodes, vals[:, i], lagrange=True))
                    q.append(x)
                gn, gv = (np.asarray(a, float) for a in t["axes"]["gap"])
                on, ov = (np.asarray(a, float) for a in t["axes"]["offset"])
                grid, g = supermodes.shape_table(pol)
                step = supermodes.SHAPE_STEP_UM
                if not np.allclose(np.diff(grid), step, rtol=0, atol=1e-12):
                    raise RuntimeError("fused_kernel: supermodes.shape_table's grid is not uniform; update _make_polarization")
                if len(gn) < 2 or len(on) < 2:
                    raise RuntimeError("fused_kernel: a supermode axis with one node; update _make_polarization")
                on2 = on**2
                pols.append({
                    "q_const": tuple(q), "gap_nodes": gn, "gap_vals": gv,
                    "gap_slope": (gv[-1, 0] - gv[-2, 0]) / (gn[-1] - gn[-2]),
                    "offset_nodes2": on2, "offset_vals": ov,
                    "offset_slope": (ov[-1, 0] - ov[-2, 0]) / (on2[-1] - on2[-2]),
                    "shape_u0": float(grid[0]), "shape_step": step, "shape_g": np.asarray(g, float),
                    "d_common": float(t["d_common"]), "d_core": float(t["d_core"]),
                    "contrast": supermodes.TABLE_CORE_CONTRAST, "clad_table": clad_table,
                    "excess": 10.0 ** (-0.1 * pk(f"excess_loss_{pol}_db")),
                })
        length = pk("taper_length_um")
        return cls(model=cs.model, segments=int(cs.segments), profile=cs.profile, knots=tuple(cs.knots),
                   exponent=pk("profile_exponent") if cs.profile == "exponential" else None,
                   length_um=length, w0_um=1e-3 * pk("start_width_nm"), w1_um=1e-3 * pk("tip_width_nm"),
                   pivot_um=0.5 * length + pk("yaw_pivot_um"), focus_width=FOCUS_WIDTH,
                   k0=2 * math.pi / wl, n_clad=p["package.pwg.n_clad"] + dn_env, pols=tuple(pols))


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
    max_failed: int
    hist_bins: int
    hist_max_db: float
    spec_steps: int = 0  # J of the engine's yield-versus-spec histogram (0: the engine has none)
    coupler: SupermodeCoupler | None = None  # the Si-strip coupler's constants (None: butt)
    physics: object = None  # make_physics(kind, coupler), set by from_problem

    @classmethod
    def from_problem(cls, problem) -> "FusedModel":
        """Everything the kernel reads, from the engine's :class:`~yieldmc.engine.problem.Problem`.

        Raises:
          NotImplementedError: a feature the kernel leaves out (:func:`unsupported`).
        """
        from yieldmc.engine import quantities
        from yieldmc.engine.statistics import SPEC_STEPS
        from yieldmc.engine.model import nominal_values
        from yieldmc.physics import coupling

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
        coupler = None
        if s.coupler.name == "butt":
            n_gap = pk("coupler.n_gap")
            fres = float(coupling.fresnel_transmission(pk("pwg.n_core"), n_gap)
                         * coupling.fresnel_transmission(n_gap, pk("coupler.n_chip")))
            par.update(k_gap=2 * math.pi * n_gap / wl, w2_x_um=pk("coupler.mode_radius_x_um"),
                       w2_y_um=pk("coupler.mode_radius_y_um"), ln_fresnel=math.log(fres))
            kind = KIND_BUTT
        else:
            kind = KIND_SUPERMODE
            coupler = SupermodeCoupler.from_problem(problem, p, nominal, dn_env)
        model = cls(
            kind=kind, layers=s.layers, channels=s.channels,
            x_um=((c - 0.5 * (s.channels - 1)) * pk("pitch_um")).astype(np.float32),
            y_um=(np.arange(s.layers) * pk("layer_pitch_um")).astype(np.float32),
            nominal=np.array([nominal[q] for q in QUANTITIES], np.float32),
            var_q=np.array(cols[0], np.int64), var_level=np.array(cols[1], np.int64),
            var_mean=np.array(cols[2], np.float32), var_sigma=np.array(cols[3], np.float32),
            var_row=np.array(cols[4], np.int64), var_kind=np.array(cols[5], np.int64),
            var_low=np.array(cols[6], np.float32), n_rows=row,
            par=np.array([par[k] for k in PAR_NAMES], np.float32),
            max_failed=int(p["spec.max_failed_channels"]), hist_bins=s.hist_bins, hist_max_db=s.hist_max_db,
            spec_steps=SPEC_STEPS, coupler=coupler,
        )
        model.physics = make_physics(kind, coupler)
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


# ----------------------------------------------------------------------------------------
# Checks against the engine and the command
# ----------------------------------------------------------------------------------------

#: The cases of scripts/bench.py the kernel implements (overrides of the default job, whose
#: coupler is the adiabatic Si-strip taper with the cmt model).
CASES = {
    "butt": ["package/coupler=butt"],
    "adiabatic_cmt": ["package.coupler.model=cmt"],
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


def check_values(problem, model: FusedModel, *, n: int = 8 * TILE, seed: int = 3, scale: float = 1.0) -> np.ndarray:
    """Quantity values (Q, n) of ``n`` modules drawn with numpy: the nominal plus one draw per
    active (quantity, level) of the job's distributions, the spreads (σ of a normal, s of a
    shiftedlognormal) times ``scale`` (a wider scale reaches the model's edges: contact, the
    crossing at the taper's ends, large offsets)."""
    rng = np.random.default_rng(seed)
    values = np.repeat(model.nominal[:, None], n, axis=1).astype(np.float32)
    for q, a, b, kind, low in zip(model.var_q, model.var_mean, model.var_sigma, model.var_kind, model.var_low):
        zz = rng.standard_normal(n).astype(np.float32)
        b = np.float32(b * scale)
        values[q] += (a + b * zz) if kind == 0 else (low + np.exp(a + b * zz)).astype(np.float32)
    return values


#: Largest |Δ loss| allowed between the kernel's and the engine's (float32) channel losses, dB,
#: where the engine's loss is below ``engine.hist_max_db``. Both are float32 evaluations of the
#: same formulas in different operation orders and function implementations, so they differ
#: by float32 rounding. The largest rounding is in the Si-strip ``cmt`` transfer: the phases
#: Ω·h of its 64 segments add up to Φ ≈ 250 rad per polarisation at the nominal module, each
#: rounded to ~6e-8 relative, which moves η by ~ε·Φ ≈ 1.5e-5. Measured against the engine in
#: float64 on the check's draws (:func:`check_values`, seed 3), the engine's own float32 error
#: is up to 4.7e-5 dB at the process spreads and 2.1e-4 dB at three times them, the kernel's
#: 4.4e-5 and 2.0e-4 dB. 1e-3 dB bounds the sum of the two (the largest possible kernel −
#: engine difference from rounding alone) with a margin of 2.4, and is a tenth of the
#: statistics' resolution (the default loss
#: histogram's 0.01 dB bins); a modelling difference is far larger (one segment more: 0.27 dB,
#: the dense region 1 % wider: 0.06 dB, the polymer contrast shift left out: 0.19 dB). Beyond
#: ``hist_max_db`` η is below 1 %, where a rounding of η of ~1e-7 is itself ~1e-3 dB or more:
#: those channels fail either way and are compared as pass/fail (:func:`check_physics`).
CHECK_TOLERANCE_DB = 1e-3


def check_physics(problem, model: FusedModel, *, n: int = 8 * TILE, seed: int = 3, scale: float = 1.0) -> dict:
    """The kernel's channel losses against ``yieldmc.engine.model.channel_loss_parts`` (the
    engine in float32, as it runs) on the same quantity values (:func:`check_values`), every
    channel position of one layer.

    Returns:
      ``{"max_abs_db"``: the largest |Δ loss|, ``"max_abs_db_below"``: the largest over the
      channels whose engine loss is below ``engine.hist_max_db`` (the range the statistics
      resolve), ``"max_abs_eta"``: the largest |Δη| with η = 10^(−(loss − propagation)/10)
      (the transfer itself; at a large loss a float32 rounding of η is many dB),
      ``"loss_range_db"``: the engine's (min, max), ``"n"``: channel evaluations compared,
      ``"pass_fail_differ"``: channels that pass ``spec.max_loss_db`` in one and fail in the
      other although the engine's loss is more than :data:`CHECK_TOLERANCE_DB` from it,
      ``"ok"``: ``max_abs_db_below`` ≤ :data:`CHECK_TOLERANCE_DB` and no such channel}.
    """
    import jax.numpy as jnp

    from yieldmc.engine.model import channel_loss_parts, propagation_db

    s = problem.static
    values = check_values(problem, model, n=n, seed=seed, scale=scale)
    stack = np.zeros(n, np.float32)
    ours = np.stack([channel_losses(model.physics, values, model.x_um[c], model.y_um[0], stack, model.par)
                     for c in range(s.channels)])
    params = {k: jnp.asarray(np.asarray(v).reshape(-1)[0], jnp.float32) for k, v in problem.params.items()}
    vals = {q: jnp.asarray(values[i]) for i, q in enumerate(QUANTITIES)}
    one_layer = dataclasses.replace(s, layers=1)
    ref = np.asarray(channel_loss_parts(vals, params, one_layer)["loss"])[0]  # (C, n)
    prop = float(np.asarray(propagation_db(vals, params)).reshape(-1)[0])
    diff = np.abs(ours.astype(np.float64) - ref)
    diff = np.where(ours == ref, 0.0, diff)  # equal infinities
    below = ref < s.hist_max_db
    eta = lambda x: 10.0 ** (-(np.asarray(x, np.float64) - prop) / 10.0)  # noqa: E731
    spec = float(np.asarray(problem.params["spec.max_loss_db"]).reshape(-1)[0])
    differ = int(np.sum(((ours <= spec) != (ref <= spec)) & (np.abs(ref - spec) > CHECK_TOLERANCE_DB)))
    below_max = float(np.max(diff[below], initial=0.0))
    return {"max_abs_db": float(np.max(diff)), "max_abs_db_below": below_max,
            "max_abs_eta": float(np.max(np.abs(eta(ours) - eta(ref)))),
            "loss_range_db": (float(np.min(ref)), float(np.max(ref))), "n": int(ref.size),
            "pass_fail_differ": differ, "ok": bool(below_max <= CHECK_TOLERANCE_DB and differ == 0)}


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
            "fail_fractions_agree": bool(np.all(np.abs(f2 - f1) <= 4.5 * np.maximum(se_f, 1e-12))),
            "mean_loss_db_engine": (engine_stats.loss_sum[0, 0] * 1e-4 / n1).tolist(),
            "mean_loss_db_fused": (fused["loss_sum"] / n2).tolist(),
            # the spec histogram's count up to bin J (spec = spec.max_loss_db) is the passing count
            "spec_hist_consistent": bool(fused["spec_hist"].size == 0 or
                                         fused["spec_hist"][:(fused["spec_hist"].size - 2) // 2 + 1].sum()
                                         == fused["n_pass"])}


def _print_check(name: str, scale: float, res: dict) -> None:
    print(f"{name:24s} channel losses vs engine.model.channel_loss_parts (float32), {res['n']} channel "
          f"evaluations, spreads ×{scale:g}: max |Δ| {res['max_abs_db_below']:.2e} dB below hist_max_db "
          f"(tolerance {CHECK_TOLERANCE_DB:g}), {res['max_abs_db']:.2e} dB overall (engine losses "
          f"{res['loss_range_db'][0]:.2f}–{res['loss_range_db'][1]:.4g} dB), max |Δη| {res['max_abs_eta']:.1e}, "
          f"pass/fail differ: {res['pass_fail_differ']} ({'ok' if res['ok'] else 'FAILED'})", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=1 << 20)
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--threads", type=int, default=None, help="numba threads (default: all)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--check", action="store_true",
                    help="only the per-channel check (the kernel's channel losses against the engine's on "
                         "fixed draws, at the process spreads and at three times them) and the hash; no runs")
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
        checks = {scale: check_physics(problem, model, scale=scale) for scale in (1.0, 3.0)}
        if args.check:
            for scale, res in checks.items():
                _print_check(name, scale, res)
                ok &= res["ok"]
            report[name] = {f"spreads_x{scale:g}": res for scale, res in checks.items()}
            continue
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
                   physics_check={f"spreads_x{scale:g}": res for scale, res in checks.items()})
        report[name] = row
        ok &= (row["agree"] and row["fail_fractions_agree"] and row["spec_hist_consistent"]
               and all(res["ok"] for res in checks.values()))
        print(f"{name:24s} fused {row['fused_channel_evals_per_s']:.4g} ch/s (compile {t_compile:.1f} s) | "
              f"yield engine {row['yield_engine']:.5f} ± {row['se_engine']:.5f}, fused {row['yield_fused']:.5f} "
              f"± {row['se_fused']:.5f}, z = {row['z']:+.2f} ({'agree' if row['agree'] else 'DISAGREE'}) | "
              f"max |z| per-channel fail fraction {row['max_abs_z_fail_fraction']:.2f} "
              f"({'agree' if row['fail_fractions_agree'] else 'DISAGREE'})", flush=True)
        for scale, res in checks.items():
            _print_check(name, scale, res)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=float))
    if not ok:
        raise SystemExit("fused kernel: disagrees with the engine (the yield or a channel's fail fraction beyond "
                         "4.5 combined standard errors, or a channel loss beyond CHECK_TOLERANCE_DB)")


if __name__ == "__main__":
    sys.exit(main())
