"""Float32 polynomial sin/cos/atan2 vs numpy in float64 (and the float64 fallback)."""

import jax
import jax.numpy as jnp
import numpy as np

from yieldmc.physics._fastmath import atan2_nonneg, cos_and_sinc, sincos


def test_sincos_float32_accuracy():
    x = np.linspace(-200.0, 200.0, 400_001).astype(np.float32)
    s, c = sincos(jnp.asarray(x))
    assert s.dtype == jnp.float32
    xd = x.astype(np.float64)
    assert np.max(np.abs(np.asarray(s, np.float64) - np.sin(xd))) < 4e-7
    assert np.max(np.abs(np.asarray(c, np.float64) - np.cos(xd))) < 4e-7


def test_cos_and_sinc_near_zero_and_gradient():
    x = np.concatenate([np.linspace(0, 1e-2, 1001), np.linspace(0.01, 4, 1001)]).astype(np.float32)
    c, s = cos_and_sinc(jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(s), np.sinc(x.astype(np.float64) / np.pi), atol=3e-7)
    np.testing.assert_allclose(np.asarray(c), np.cos(x.astype(np.float64)), atol=3e-7)
    g = jax.vmap(jax.grad(lambda t: cos_and_sinc(t)[1]))(jnp.asarray([0.0, 0.5, 2.0], jnp.float32))
    exact = [0.0, (0.5 * np.cos(0.5) - np.sin(0.5)) / 0.25, (2 * np.cos(2.0) - np.sin(2.0)) / 4]
    np.testing.assert_allclose(np.asarray(g), exact, atol=2e-6)


def test_atan2_nonneg_float32_accuracy():
    rng = np.random.default_rng(0)
    y = rng.uniform(0, 10, 200_000).astype(np.float32)
    x = rng.uniform(0, 10, 200_000).astype(np.float32)
    y[:10], x[:10] = 0.0, 1.0  # on the axis
    a = np.asarray(atan2_nonneg(jnp.asarray(y), jnp.asarray(x)), np.float64)
    ref = np.arctan2(y.astype(np.float64), x.astype(np.float64))
    assert np.max(np.abs(a - ref)) < 3e-7
    assert float(atan2_nonneg(jnp.float32(1.0), jnp.float32(0.0))) == np.float32(np.pi / 2)


def test_float64_uses_exact_functions():
    x = jnp.asarray(np.linspace(-5, 5, 11), jnp.float64)
    s, c = sincos(x)
    np.testing.assert_array_equal(np.asarray(s), np.sin(np.asarray(x)))
    np.testing.assert_array_equal(np.asarray(atan2_nonneg(jnp.abs(x), jnp.abs(x) + 1)),
                                  np.arctan2(np.abs(np.asarray(x)), np.abs(np.asarray(x)) + 1))
