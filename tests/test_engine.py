"""Streaming engine vs closed-form yields, reproducibility, CRN, compile-once, geometry."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import yieldmc
from yieldmc import validation
from yieldmc.io.config import problem_from_config, to_container
from yieldmc.engine.blocks import accumulate, compile_count, iterate_blocks, sync_slices

# Small blocks keep the padding of small-N runs cheap; the same Static (and so the same
# compiled function) is shared by every run of a problem.
ENGINE = ["engine.block_size=2048", "engine.blocks_per_call=4"]


def run(overrides, samples, seed=0):
    return yieldmc.run(yieldmc.compose(list(overrides) + ENGINE + [f"samples={samples}", f"seed={seed}"]))


@pytest.mark.slow
@pytest.mark.parametrize("problem", validation.all_problems(), ids=lambda p: p.name)
def test_closed_form_yield(problem):
    n = 30_000
    ds = run(problem.overrides, n)
    se = validation.binomial_standard_error(problem.expected_yield, n)
    assert int(ds.n_samples) == n
    assert abs(float(ds["yield"]) - problem.expected_yield) <= 4.5 * se
    assert float(ds.yield_ci_low) <= float(ds["yield"]) <= float(ds.yield_ci_high)


@pytest.mark.slow
def test_error_shrinks_as_inverse_sqrt_n():
    """RMS error over seeds, in units of sqrt(p(1-p)/N), stays O(1) as N grows 16x.

    With K = 8 seeds the normalised RMS is sqrt(chi2_8/8): below 0.25 or above 2.1 with
    probability < 1e-4 each, so both bounds hold at every N only if the error ~ N^-1/2.
    """
    problem = validation.module_offset()
    p = problem.expected_yield
    for n in (1_000, 4_000, 16_000):
        errors = [float(run(problem.overrides, n, seed)["yield"]) - p for seed in range(8)]
        rms = math.sqrt(np.mean(np.square(errors))) / validation.binomial_standard_error(p, n)
        assert 0.25 < rms < 2.1, (n, rms)


def test_shared_offset_gives_p_not_p_to_the_n():
    shared, independent = validation.module_offset(sigma_um=0.5), validation.channel_offset(sigma_um=0.5)
    n = 20_000
    y_shared = float(run(shared.overrides, n)["yield"])
    y_indep = float(run(independent.overrides, n)["yield"])
    p = shared.expected_yield
    assert abs(y_shared - p) < 4.5 * validation.binomial_standard_error(p, n)
    assert abs(y_indep - p**12) < 4.5 * validation.binomial_standard_error(p**12, n)
    assert y_shared > y_indep + 0.3


def _all_stats(ds):
    return {k: ds[k].values for k in ("n_pass", "channel_fail_fraction", "loss_db_mean", "loss_db_quantile")}


@pytest.mark.slow
def test_bit_identical_across_blocks_per_call():
    overrides = ["samples=20000", "seed=3", "engine.block_size=2048"]
    a = _all_stats(yieldmc.run(yieldmc.compose(overrides + ["engine.blocks_per_call=1"])))
    b = _all_stats(yieldmc.run(yieldmc.compose(overrides + ["engine.blocks_per_call=3"])))
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_the_first_two_syncs_take_one_block_each():
    """A first estimate of the run time comes after two blocks, not two groups of blocks."""
    assert [(s.start, s.stop) for s in sync_slices(20, 8)] == [(0, 1), (1, 2), (2, 10), (10, 18), (18, 20)]
    assert [(s.start, s.stop) for s in sync_slices(1, 8)] == [(0, 1)]
    assert [(s.start, s.stop) for s in sync_slices(5, 2, first=2)] == [(0, 2), (2, 4), (4, 5)]
    problem = problem_from_config(to_container(yieldmc.compose(["samples=20000", "engine.block_size=2048"])))
    sizes = [len(chunk) for chunk, _ in iterate_blocks(problem, range(problem.n_blocks), n_devices=1)]
    assert problem.n_blocks == 10 and problem.blocks_per_call == 8 and sizes == [1, 1, 8]


@pytest.mark.slow
def test_bit_identical_one_vs_four_devices():
    script = textwrap.dedent("""
        import json, yieldmc
        cfg = yieldmc.compose(["samples=20000", "seed=5", "engine.block_size=2048",
                               "engine.blocks_per_call=2"])
        out = {}
        for n in (1, 4):
            ds = yieldmc.run(cfg, n_devices=n)
            out[n] = {"n_pass": int(ds.n_pass), "fail": ds.channel_fail_fraction.values.tolist(),
                      "mean": ds.loss_db_mean.values.tolist(), "devices": ds.attrs["device_count"]}
        print(json.dumps(out))
    """)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["1"]["devices"] == 4
    assert out["1"]["n_pass"] == out["4"]["n_pass"]
    assert out["1"]["fail"] == out["4"]["fail"]
    assert out["1"]["mean"] == out["4"]["mean"]


def test_common_random_numbers_make_the_map_monotone():
    """Same draws at every sweep point: a larger sigma scales the same z, so the passing
    set can only shrink — n_pass is exactly non-increasing, not just on average."""
    problem = validation.module_offset()
    sigmas = [0.3, 0.4, 0.5, 0.6, 0.8]
    sweep = "sweep={process.dx_um.module.sigma:[" + ",".join(map(str, sigmas)) + "]}"
    ds = run(list(problem.overrides) + [sweep], 10_000)
    n_pass = ds.n_pass.values
    assert ds.n_pass.dims == ("process.dx_um.module.sigma",)
    np.testing.assert_array_equal(ds["process.dx_um.module.sigma"].values, sigmas)
    assert np.all(np.diff(n_pass) <= 0) and n_pass[0] > n_pass[-1]


def test_sweep_compiles_once():
    base = list(validation.radial_offset().overrides) + ENGINE + ["samples=4096"]
    sweep = "sweep={{process.dx_um.channel.sigma:[{},{}],spec.max_loss_db:[{},{},{}]}}"
    first = problem_from_config(yieldmc.compose(base + [sweep.format(0.5, 0.7, 0.2, 0.3, 0.4)]))
    second = problem_from_config(yieldmc.compose(base + [sweep.format(0.6, 0.9, 0.25, 0.35, 0.5)]))
    assert first.static == second.static
    a = accumulate(first, range(first.n_blocks))
    compiled = compile_count(first)
    b = accumulate(second, range(second.n_blocks))
    assert compile_count(second) == compiled  # new swept values, no new executable
    assert a.n_pass.shape == b.n_pass.shape == (6,)
    assert not np.array_equal(a.n_pass, b.n_pass)


def test_two_dimensional_sweep_layout():
    base = list(validation.radial_offset().overrides)
    ds = run(base + ["sweep={process.dx_um.channel.sigma:[0.5,0.7],spec.max_loss_db:[0.2,0.3,0.4]}"], 4096)
    assert ds["yield"].dims == ("process.dx_um.channel.sigma", "spec.max_loss_db")
    assert ds.channel_fail_fraction.dims == ("process.dx_um.channel.sigma", "spec.max_loss_db", "layer", "channel")
    y = ds["yield"].values
    assert np.all(np.diff(y, axis=1) >= 0)  # looser spec, same draws: never fewer passes
    assert np.all(np.diff(y, axis=0) <= 0)


# ---- array geometry -------------------------------------------------------------------
GEOMETRY = list(validation.module_offset().overrides)


def fail_map(extra, n=8000):
    ds = run(GEOMETRY + ["process.dx_um.module.sigma=0.0"] + extra, n)
    return ds.channel_fail_fraction.values


@pytest.mark.parametrize("extra", [
    ["process.pitch_ppm.module.sigma=3000"],
    ["package.cte_mismatch_ppm_per_k=50", "process.temperature_c.module.distribution=uniform",
     "process.temperature_c.module.low=-65", "process.temperature_c.module.high=100"],
], ids=["pitch_ppm", "thermal"])
def test_scale_errors_fail_outer_channels_symmetrically(extra):
    fail = fail_map(extra)[0]
    np.testing.assert_array_equal(fail, fail[::-1])  # dx -> -dx mirror: identical losses
    half = fail[len(fail) // 2:]
    assert np.all(np.diff(half) >= 0) and half[-1] > half[0] + 0.05


def test_roll_fails_upper_layers_and_outer_channels():
    fail = fail_map(["package.layers=4", "package.layer_pitch_um=20", "process.roll_mrad.module.sigma=8"])
    layer_mean = fail.mean(axis=1)
    assert np.all(np.diff(layer_mean) > 0)  # dx = -y_l·roll grows with the layer
    assert np.all(fail[:, 0] > fail[:, 5]) and np.all(fail[:, -1] > fail[:, 6])  # dy = x_c·roll


@pytest.mark.slow
def test_layer_thickness_accumulates_upward():
    fail = fail_map(["package.layers=4", "process.layer_thickness_um.layer.sigma=0.6"])
    # layer 0 never moves; layer l moves by a sum of l draws (variance grows with l)
    assert np.all(fail[0] == 0)
    assert np.all(np.diff(fail.mean(axis=1)) > 0)


def test_correlated_module_offsets_follow_the_copula():
    """dx, dy module offsets with correlation rho: compare with a 2-D Gaussian integral."""
    from scipy import integrate

    w_x, w_y = validation.pwg_mode_radii_um()
    sigma, rho, spec = 0.8, 0.8, 0.3
    corr = "process.correlation.matrix=[[1,{r}],[{r},1]]".format(r=rho)
    ds = run(GEOMETRY + [f"process.dx_um.module.sigma={sigma}", f"process.dy_um.module.sigma={sigma}",
                         "process.correlation.quantities=[dx_um,dy_um]", corr], 30_000)
    r2 = spec / validation.DB_PER_NEPER_POWER

    def density(y, x):
        q = (x * x - 2 * rho * x * y + y * y) / (sigma**2 * (1 - rho**2))
        return math.exp(-q / 2) / (2 * math.pi * sigma**2 * math.sqrt(1 - rho**2))

    # pass region: x²/w_x² + y²/w_y² <= r2
    xmax = w_x * math.sqrt(r2)
    expected, _ = integrate.dblquad(
        density, -xmax, xmax,
        lambda x: -w_y * math.sqrt(max(r2 - (x / w_x) ** 2, 0.0)),
        lambda x: w_y * math.sqrt(max(r2 - (x / w_x) ** 2, 0.0)),
        epsabs=1e-10,
    )
    se = validation.binomial_standard_error(expected, 30_000)
    assert abs(float(ds["yield"]) - expected) < 4.5 * se


@pytest.mark.slow
def test_adiabatic_nominal_loss_matches_physics():
    """process=none, no run-out: every channel has the nominal coupler + propagation loss."""
    from yieldmc import physics

    ds = yieldmc.run(yieldmc.compose(["process=none", "package/coupler=adiabatic_linear", "samples=1000",
                                      "engine.dtype=float64", "package.cte_mismatch_ppm_per_k=0",
                                      "package.gap_thermal_um_per_k=0"] + ENGINE))
    eta = physics.adiabatic_transfer(kappa_per_um=0.005, delta_beta_start_per_um=0.05,
                                     delta_beta_end_per_um=-0.05, taper_length_um=2500.0)
    expected = float(physics.loss_db(eta)) + 0.28
    # mean of fixed-point losses: each rounded to the 1e-4 dB unit
    np.testing.assert_allclose(ds.loss_db_mean.values, expected, atol=0.6e-4)
    assert float(ds["yield"]) == 1.0


def test_dataset_contract():
    ds = run(validation.module_offset().overrides, 2048)
    for name in ("yield", "yield_ci_low", "yield_ci_high", "n_pass", "n_samples",
                 "channel_fail_fraction", "loss_db_mean", "loss_db_quantile"):
        assert "units" in ds[name].attrs and "long_name" in ds[name].attrs, name
    assert ds.n_pass.dtype == np.int64 and ds.n_samples.dtype == np.int64
    assert ds.loss_db_quantile.dims == ("quantile", "layer", "channel")
    for key in ("config_yaml", "seed", "yieldmc_version", "jax_version", "jaxlib_version",
                "backend", "device_kind", "rng_impl"):
        assert key in ds.attrs, key
    assert "samples: 2048" in ds.attrs["config_yaml"]
    cfg = to_container(yieldmc.compose(["samples=10"]))
    assert cfg["package"]["name"] == "pwg50_12ch"


@pytest.mark.slow
def test_threefry2x32_is_jax_threefry_bit_for_bit():
    """The engine's written-out Threefry-2x32 against ``jax.extend.random.threefry_2x32`` (a
    second implementation) and the Random123 known-answer vectors (Salmon et al. 2011,
    kat_vectors: threefry2x32_20)."""
    import jax
    import jax.numpy as jnp
    from jax.extend.random import threefry_2x32

    from yieldmc.engine.rng import threefry2x32

    rng = np.random.default_rng(0)
    for k0, k1 in ((0, 0), (0xFFFFFFFF, 0xFFFFFFFF), *rng.integers(0, 2**32, (4, 2), dtype=np.uint64)):
        key = jnp.asarray([k0, k1], jnp.uint32)
        c = jnp.asarray(rng.integers(0, 2**32, 2 * 4099, dtype=np.uint64), jnp.uint32)
        ours = jax.jit(threefry2x32)(key[0], key[1], c[:4099], c[4099:])
        np.testing.assert_array_equal(np.concatenate([np.asarray(o) for o in ours]),
                                      np.asarray(threefry_2x32(key, c)))
    kat = [((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
           ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
           ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0))]
    for (k0, k1), (x0, x1), want in kat:
        u = lambda v: jnp.asarray([v], jnp.uint32)  # noqa: E731
        got = threefry2x32(jnp.uint32(k0), jnp.uint32(k1), u(x0), u(x1))
        assert (int(got[0][0]), int(got[1][0])) == want
    # the normals' pairing and order: words (i, i + n/2) of jax's hash → Box–Muller elements
    # i and i + n/2 (float32 polynomial sin/cos against numpy's float64)
    from yieldmc.engine.rng import threefry_normals

    for shape in ((3, 5), (69, 16), (1, 2)):
        size = int(np.prod(shape))
        n = size + size % 2
        key = jax.random.key(11)
        bits = np.asarray(threefry_2x32(jax.random.key_data(key), jnp.arange(n, dtype=jnp.uint32)))
        u1 = ((bits[: n // 2] >> 8).astype(np.float64) + 1.0) * 2.0**-24
        theta = (bits[n // 2:] >> 8).astype(np.float64) * 2.0 * np.pi * 2.0**-24 - np.pi
        r = np.sqrt(-2.0 * np.log(u1))
        want = np.concatenate([r * np.cos(theta), r * np.sin(theta)])[:size].reshape(shape)
        np.testing.assert_allclose(np.asarray(jax.jit(lambda k: threefry_normals(k, shape))(key)), want,
                                   rtol=0, atol=2e-6)
    # the stream of a plain implementation (jax's hash, the same float32 steps in one
    # kernel), bit for bit: the engine's faster kernels change no draw
    from yieldmc.physics._fastmath import sincos

    def plain_stream(k, shape):
        n = int(np.prod(shape))
        bits = threefry_2x32(jax.random.key_data(k), jax.lax.iota(jnp.uint32, n))
        u1 = ((bits[: n // 2] >> 8).astype(jnp.float32) + 1.0) * np.float32(2.0**-24)
        theta = (bits[n // 2:] >> 8).astype(jnp.float32) * np.float32(2.0 * np.pi * 2.0**-24) - np.float32(np.pi)
        r = jnp.sqrt(-2.0 * jnp.log(u1))
        sin, cos = sincos(theta)
        return jnp.concatenate([r * cos, r * sin]).reshape(shape)

    for seed in (0, 5):
        key = jax.random.key(seed)
        np.testing.assert_array_equal(np.asarray(jax.jit(lambda k: threefry_normals(k, (69, 4096)))(key)),
                                      np.asarray(jax.jit(lambda k: plain_stream(k, (69, 4096)))(key)))


def test_threefry_normals_are_independent_standard_normals():
    """The engine's float32 generator vs Φ: CDF at fixed points within 4.5 binomial SEs,
    the two members of each Box–Muller pair (elements i and i + n/2) and neighbouring rows
    uncorrelated within 4.5 SEs of 0, bounded tails, deterministic in the key."""
    import jax
    from scipy.special import ndtr

    from yieldmc.engine.rng import threefry_normals

    shape = (64, 16384)
    draw = jax.jit(lambda k: threefry_normals(k, shape))
    z32 = np.asarray(draw(jax.random.key(3)))
    assert z32.dtype == np.float32 and z32.shape == shape
    z = z32.astype(np.float64)
    assert np.all(np.isfinite(z))
    assert np.abs(z).max() <= math.sqrt(2 * 24 * math.log(2)) + 1e-5
    flat, n = z.ravel(), z.size
    for t in (-3.0, -2.0, -1.0, 0.0, 0.5, 1.0, 2.0, 3.0):
        p = float(ndtr(t))
        assert abs(np.mean(flat <= t) - p) <= 4.5 * math.sqrt(p * (1 - p) / n), t
    a, b = flat[: n // 2], flat[n // 2:]
    for x, y in ((a, b), (a**2, b**2), (z[:-1].ravel(), z[1:].ravel())):
        r = np.corrcoef(x, y)[0, 1]
        assert abs(r) <= 4.5 / math.sqrt(len(x)), r
    np.testing.assert_array_equal(np.asarray(draw(jax.random.key(3))), z32)
    assert not np.array_equal(np.asarray(draw(jax.random.key(4))), z32)
