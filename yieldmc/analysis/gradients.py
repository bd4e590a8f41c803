"""Differentiable yield estimators (pure JAX: no xarray, zarr or Hydra).

Two estimators of ∂Y/∂θ for the module yield Y(θ) = P(module passes):

* **pathwise** (reparameterisation): the same standard-normal draws z are mapped to the
  quantities with θ (x = μ + σ·z and the quantile transforms of variation.py), the hard
  module pass 1{#fails ≤ m} = 1{L_(m+1) ≤ S} (L_(m+1) the (m+1)-th largest channel
  loss) is relaxed to σ((S − L_(m+1))/τ) (:func:`soft_module_pass`); autodiff gives the gradient with respect to every float parameter
  (nominals and distribution parameters). Biased by the smoothing; the bias → 0 as
  τ → 0 while the variance grows (Glasserman, *Monte Carlo Methods in Financial
  Engineering*, §7.2).
* **score function** (likelihood ratio): ∂Y/∂θ = E[(1{pass} − b)·∂ log p(x; θ)/∂θ] for
  the parameters of the sampling densities (normal, lognormal, truncnormal mean and
  sigma), unbiased for the *hard* yield; b is the yield itself (a baseline that lowers
  the variance; the running yield of the earlier blocks, so it stays unbiased). Support parameters
  (uniform bounds, truncation limits) and copula-coupled quantities have no score here.

Both return per-block sums, so the Monte-Carlo standard error of every component comes
from the spread of the block estimates.

**Rare yields** (``sampler=is``): both estimators take the draws of the sampler with their
importance weights w = p/q (:meth:`yieldmc.samplers.Sampler.weighted_draws`); with q fixed
at θ, ∂Y/∂θ = E_q[w·∂(soft pass)/∂θ] (pathwise) and −E_q[w·1{fail}·∂ log p/∂θ] (score: the
baseline b = 1, unbiased because E_q[w·∂ log p/∂θ] = E_p[∂ log p/∂θ] = 0, and the only
choice under which the passing samples — whose weights are the large ones — add no
variance). The failing samples near the design points then carry the estimate, as they
carry P̂_f (Rubinstein & Kroese, *Simulation and the Monte Carlo Method*, §7.3).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from yieldmc.engine.blocks import module_losses, split_draws
from yieldmc.engine.problem import Static
from yieldmc.engine.variation import variation_params

def soft_module_pass(loss_db, *, max_loss_db, max_failed: int, tau_db):
    """Relaxed module pass indicator, consistent with ``max_failed`` failed channels.

    The module passes iff its (m+1)-th largest channel loss is within the spec (m =
    ``max_failed``), so the relaxation is σ((S − L_(m+1))/τ). This keeps the correlation
    between channels (a product of per-channel soft passes would not: with C identical
    channels it shifts the effective threshold by ~τ·ln C) and tends to the hard
    indicator as τ → 0, with an O(τ²) bias for smooth loss densities.

    Under K conditions (the qualification envelope, :mod:`yieldmc.engine.conditions`) the
    module passes iff the largest of the K conditions' (m+1)-th largest losses is within
    the spec; that maximum is relaxed to the smooth maximum τ·log Σ_k exp(L_k/τ), which
    exceeds it by at most τ·ln K (0 for one condition, where it is not applied).

    Args:
      loss_db: channel losses, shape (L, C, B), or (K, L, C, B) under K conditions.
      max_loss_db: spec S, dB.
      max_failed: allowed failed channels m (static int).
      tau_db: smoothing temperature τ, dB.

    Returns:
      Shape (B,) in [0, 1].
    """
    loss = loss_db if loss_db.ndim == 4 else loss_db[None]
    flat = loss.reshape(loss.shape[0], -1, loss.shape[-1])  # (K, L·C, B)
    if max_failed >= flat.shape[1]:
        return jnp.ones(flat.shape[2:], flat.dtype)
    if max_failed == 0:
        kth = jnp.max(flat, axis=1)
    else:
        kth = jax.lax.top_k(jnp.swapaxes(flat, 1, 2), max_failed + 1)[0][..., max_failed]
    worst = kth[0] if kth.shape[0] == 1 else tau_db * jax.nn.logsumexp(kth / tau_db, axis=0)
    return jax.nn.sigmoid((max_loss_db - worst) / tau_db)


def _losses(z, params, static: Static):
    return module_losses(z, params, static)


def _hard_pass(loss, params):
    """Module passes, (B,), from losses (L, C, B) or (K, L, C, B): under every condition."""
    n_fail = jnp.sum(loss > params["spec.max_loss_db"], axis=(-3, -2))
    return jnp.all(n_fail <= params["spec.max_failed_channels"], axis=tuple(range(n_fail.ndim - 1)))


def weighted_block(seed, block, static: Static, tables=None):
    """One block's draws (D, B) and importance weights (B,) (ones unless the sampler's
    proposal is not p)."""
    return static.sampler.weighted_draws(seed, block, static, tables)


def pathwise_from_draws(u, weights, n_valid, params, *, static: Static, tau_db, max_failed: int):
    """One block, given its draws u (D, B) and weights (B,): (Σ w·(1 − hard pass),
    Σ w·soft pass, ∂(Σ w·soft pass)/∂params)."""
    z = split_draws(u, static)
    valid = (jnp.arange(static.block_size) < n_valid).astype(jnp.dtype(static.dtype))
    w = valid * weights

    def soft_sum(p):
        loss = _losses(z, p, static)
        soft = soft_module_pass(loss, max_loss_db=p["spec.max_loss_db"],
                                max_failed=max_failed, tau_db=tau_db)
        return jnp.sum(soft * w), loss

    (soft, loss), grad = jax.value_and_grad(soft_sum, has_aux=True)(params)
    failed = jnp.sum(jnp.where(_hard_pass(loss, params), 0.0, w))
    return failed, soft, grad


def score_variations(static: Static):
    """(quantity, level, distribution) whose mean/sigma get a score-function gradient."""
    return tuple(
        (q, lv, d) for q, lv, d in static.active
        if d.scored and not (lv == "module" and q in static.copula)
    )


def score_from_draws(u, weights, n_valid, params, baseline, *, static: Static):
    """One block, given its draws and weights: (Σ w·(1 − hard pass),
    Σ w·(pass − b)·∂ log p/∂θ) for the score variations."""
    z = split_draws(u, static)
    valid = jnp.arange(static.block_size) < n_valid
    passed = _hard_pass(_losses(z, params, static), params)
    w = jnp.where(valid, weights, 0.0)
    weight = w * (passed.astype(baseline.dtype) - baseline)

    def weighted_logp(p):
        total = 0.0
        for q, lv, dist in score_variations(static):
            x = jax.lax.stop_gradient(dist.transform(z[(q, lv)], **variation_params(params, q, lv)))
            lp = dist.log_density(x, **variation_params(p, q, lv))
            lp = lp if lv == "module" else jnp.sum(lp, axis=(0, 1))  # (L, 1|C, B) → (B,)
            total = total + jnp.sum(weight * lp)
        return total

    grad = jax.grad(weighted_logp)(params)
    return jnp.sum(jnp.where(passed, 0.0, w)), grad


@functools.lru_cache(maxsize=None)
def compiled_pathwise(static: Static, tau_db: float, max_failed: int):
    """The pathwise estimator of one block, ``f(seed, block, n_valid, params, tables=None)``,
    as two compiled programs (draws and weights; model and gradient): on XLA's CPU backend
    that runs markedly faster than one fused program."""
    draw = jax.jit(functools.partial(weighted_block, static=static))
    grad = jax.jit(functools.partial(pathwise_from_draws, static=static, tau_db=tau_db,
                                     max_failed=max_failed))
    return lambda seed, block, n_valid, params, tables=None: grad(*draw(seed, block, tables=tables),
                                                                  n_valid, params)


@functools.lru_cache(maxsize=None)
def compiled_score(static: Static):
    """The score estimator of one block, ``f(seed, block, n_valid, params, baseline, tables=None)``."""
    draw = jax.jit(functools.partial(weighted_block, static=static))
    grad = jax.jit(functools.partial(score_from_draws, static=static))
    return lambda seed, block, n_valid, params, baseline, tables=None: grad(
        *draw(seed, block, tables=tables), n_valid, params, baseline)
