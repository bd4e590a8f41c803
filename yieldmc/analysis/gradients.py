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
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from yieldmc.engine.blocks import draw_block, module_losses, split_draws
from yieldmc.engine.problem import Static
from yieldmc.engine.variation import transform_normal

#: Distributions whose (mean, sigma) have a score (a differentiable density of x).
SCORE_DISTRIBUTIONS = ("normal", "lognormal", "truncnormal")


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


def pathwise_block(seed, block, n_valid, params, *, static: Static, tau_db, max_failed: int):
    """One block: (Σ hard pass, Σ soft pass, ∂(Σ soft pass)/∂params)."""
    return pathwise_from_draws(draw_block(seed, block, static), n_valid, params, static=static,
                               tau_db=tau_db, max_failed=max_failed)


def pathwise_from_draws(u, n_valid, params, *, static: Static, tau_db, max_failed: int):
    """:func:`pathwise_block` given the block's draws (D, B) (from ``engine.draw_block``)."""
    z = split_draws(u, static)
    valid = (jnp.arange(static.block_size) < n_valid).astype(jnp.dtype(static.dtype))

    def soft_sum(p):
        loss = _losses(z, p, static)
        soft = soft_module_pass(loss, max_loss_db=p["spec.max_loss_db"],
                                max_failed=max_failed, tau_db=tau_db)
        return jnp.sum(soft * valid), loss

    (soft, loss), grad = jax.value_and_grad(soft_sum, has_aux=True)(params)
    hard = jnp.sum(_hard_pass(loss, params) * valid)
    return hard, soft, grad


def _log_density(x, dist, mean, sigma, low, high):
    """log p(x) of one level's draw, up to a θ-independent constant."""
    if dist == "normal":
        return -jnp.log(sigma) - 0.5 * ((x - mean) / sigma) ** 2
    if dist == "lognormal":
        lx = jnp.log(x)
        return -jnp.log(sigma) - 0.5 * ((lx - mean) / sigma) ** 2
    if dist == "truncnormal":
        norm = jax.scipy.special.ndtr((high - mean) / sigma) - jax.scipy.special.ndtr((low - mean) / sigma)
        return -jnp.log(sigma) - 0.5 * ((x - mean) / sigma) ** 2 - jnp.log(norm)
    raise ValueError(f"no score for distribution {dist!r}")


def score_variations(static: Static):
    """(quantity, level, distribution) whose mean/sigma get a score-function gradient."""
    return tuple(
        (q, lv, d) for q, lv, d in static.active
        if d in SCORE_DISTRIBUTIONS and not (lv == "module" and q in static.copula)
    )


def score_block(seed, block, n_valid, params, baseline, *, static: Static):
    """One block: (Σ hard pass, Σ (pass − b)·∂ log p/∂θ) for the score variations."""
    z = split_draws(draw_block(seed, block, static), static)
    valid = jnp.arange(static.block_size) < n_valid
    passed = _hard_pass(_losses(z, params, static), params) & valid
    weight = jnp.where(valid, passed.astype(baseline.dtype) - baseline, 0.0)

    def weighted_logp(p):
        total = 0.0
        for q, lv, dist in score_variations(static):
            base = f"process.{q}.{lv}"
            x = jax.lax.stop_gradient(transform_normal(
                z[(q, lv)], distribution=dist, mean=params[f"{base}.mean"],
                sigma=params[f"{base}.sigma"], low=params[f"{base}.low"], high=params[f"{base}.high"]))
            lp = _log_density(x, dist, p[f"{base}.mean"], p[f"{base}.sigma"], p[f"{base}.low"], p[f"{base}.high"])
            lp = lp if lv == "module" else jnp.sum(lp, axis=(0, 1))  # (L, 1|C, B) → (B,)
            total = total + jnp.sum(weight * lp)
        return total

    grad = jax.grad(weighted_logp)(params)
    return jnp.sum(passed), grad


@functools.lru_cache(maxsize=None)
def compiled_pathwise(static: Static, tau_db: float, max_failed: int):
    """pathwise_block as two compiled programs (draws; model and gradient): on XLA's CPU
    backend that runs markedly faster than one fused program."""
    draw = jax.jit(functools.partial(draw_block, static=static))
    grad = jax.jit(functools.partial(pathwise_from_draws, static=static, tau_db=tau_db,
                                     max_failed=max_failed))
    return lambda seed, block, n_valid, params: grad(draw(seed, block), n_valid, params)


@functools.lru_cache(maxsize=None)
def compiled_score(static: Static):
    return jax.jit(functools.partial(score_block, static=static))
