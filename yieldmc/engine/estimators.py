"""Yield-gradient estimators, one block at a time (pure JAX: no xarray, zarr or Hydra).

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

Each estimator is a :class:`GradientEstimator` (a frozen, hashable object holding its
settings), registered by name in :data:`ESTIMATORS` (the values of ``gradient.estimator``;
the job builds the configured one with :func:`make_estimator`). It supplies one block's
sums (:meth:`GradientEstimator.block`); :func:`yieldmc.analysis.gradients.block_sums` runs
it over the blocks of a problem for the sensitivities and the optimiser alike. The
Monte-Carlo standard error of every component comes from the spread of the block sums.

**Rare yields** (``sampler=is``): both estimators take the draws of the sampler with their
importance weights w = p/q (:meth:`yieldmc.samplers.Sampler.weighted_draws`); with q fixed
at θ, ∂Y/∂θ = E_q[w·∂(soft pass)/∂θ] (pathwise) and −E_q[w·1{fail}·∂ log p/∂θ] (score: the
baseline b = 1, unbiased because E_q[w·∂ log p/∂θ] = E_p[∂ log p/∂θ] = 0, and the only
choice under which the passing samples — whose weights are the large ones — add no
variance). The failing samples near the design points then carry the estimate, as they
carry P̂_f (Rubinstein & Kroese, *Simulation and the Monte Carlo Method*, §7.3).
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from yieldmc.engine.blocks import module_losses, split_draws
from yieldmc.engine.problem import Static
from yieldmc.engine.variation import process_key, variation_params


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


def _hard_pass(loss, params):
    """Module passes, (B,), from losses (L, C, B) or (K, L, C, B): under every condition."""
    n_fail = jnp.sum(loss > params["spec.max_loss_db"], axis=(-3, -2))
    return jnp.all(n_fail <= params["spec.max_failed_channels"], axis=tuple(range(n_fail.ndim - 1)))


class BlockSums(NamedTuple):
    """One block's sums (a pytree of arrays): ``failed`` Σ w·(1 − hard pass); ``value`` the
    estimator's Σ w·(smoothed pass), or None where it has none; ``gradient`` parameter name →
    the block's gradient sum (NaN for a parameter the estimator does not cover). Over all
    blocks (:func:`yieldmc.analysis.gradients.block_sums`): ``failed`` and ``value``
    summed, ``gradient`` (K, P)."""

    failed: Any
    value: Any
    gradient: dict


class GradientEstimator(abc.ABC):
    """An estimator of ∂Y/∂θ, one block at a time (subclasses are frozen dataclasses: their
    fields are the estimator's settings, read from the ``gradient`` section by name).

    A new estimator is a subclass with a ``name`` and :meth:`block`, entered in
    :data:`ESTIMATORS`; :func:`yieldmc.analysis.gradients.block_sums` runs it over the blocks.
    """

    name: ClassVar[str]

    @abc.abstractmethod
    def block(self, u, weights, n_valid, params, baseline, *, static: Static, max_failed: int) -> BlockSums:
        """The sums of one block (traced; compiled once per estimator and ``static``).

        Args:
          u: the block's standard normals (D, B); weights: their importance weights p/q (B,).
          n_valid: modules of the block that count (the first ``n_valid``).
          params: parameter name → scalar array (the gradient's variables).
          baseline: :meth:`baseline`'s value as an array, or None.
          static: the problem's static part; max_failed: ``spec.max_failed_channels`` (int).
        """

    def baseline(self, *, failed: float, seen: int, weighted: bool) -> float | None:
        """The baseline handed to the next block, from the earlier blocks (``failed`` weighted
        failures among ``seen`` modules; ``weighted``: draws of a proposal q ≠ p). None (the
        default): no baseline, and the blocks run without waiting for each other."""
        return None

    def richardson(self, static: Static) -> tuple[GradientEstimator, float] | None:
        """(This estimator at half its smoothing, factor) where the smoothing biases the
        gradient: bias ≈ factor·(g − g_half) on the same draws. None: unbiased."""
        return None


@dataclasses.dataclass(frozen=True)
class Pathwise(GradientEstimator):
    """Autodiff of Σ w·σ((S − L_(m+1))/τ) (:func:`soft_module_pass`) on the block's draws.

    The smoothing bias is O(τ²) for one condition and O(τ) under several (the smooth
    maximum), so its Richardson factor is 2^p/(2^p − 1) with p = 2 or 1.
    """

    tau_db: float
    name: ClassVar[str] = "pathwise"

    def block(self, u, weights, n_valid, params, baseline, *, static, max_failed):
        z = split_draws(u, static)
        w = (jnp.arange(static.block_size) < n_valid).astype(jnp.dtype(static.dtype)) * weights

        def soft_sum(p):
            loss = module_losses(z, p, static)
            soft = soft_module_pass(loss, max_loss_db=p["spec.max_loss_db"], max_failed=max_failed,
                                    tau_db=self.tau_db)
            return jnp.sum(soft * w), loss

        (soft, loss), grad = jax.value_and_grad(soft_sum, has_aux=True)(params)
        return BlockSums(jnp.sum(jnp.where(_hard_pass(loss, params), 0.0, w)), soft, grad)

    def richardson(self, static):
        p = 1 if static.n_conditions > 1 else 2
        return dataclasses.replace(self, tau_db=0.5 * self.tau_db), 2.0**p / (2.0**p - 1.0)


@dataclasses.dataclass(frozen=True)
class Score(GradientEstimator):
    """Σ w·(1{pass} − b)·∂ log p/∂θ over the means and sigmas of the scored variations
    (NaN for every other parameter). b: the running yield of the earlier blocks (0.5 before
    the first), or 1 for weighted draws (see the module docstring)."""

    name: ClassVar[str] = "score"

    def baseline(self, *, failed, seen, weighted):
        return 1.0 if weighted else 0.5 if seen == 0 else 1.0 - failed / seen

    def block(self, u, weights, n_valid, params, baseline, *, static, max_failed):
        z = split_draws(u, static)
        passed = _hard_pass(module_losses(z, params, static), params)
        w = jnp.where(jnp.arange(static.block_size) < n_valid, weights, 0.0)
        weight = w * (passed.astype(baseline.dtype) - baseline)
        scored = [(q, lv, d) for q, lv, d in static.active if d.scored and not (lv == "module" and q in static.copula)]

        def weighted_logp(p):
            total = 0.0
            for q, lv, dist in scored:
                x = jax.lax.stop_gradient(dist.transform(z[(q, lv)], **variation_params(params, q, lv)))
                lp = dist.log_density(x, **variation_params(p, q, lv))
                lp = lp if lv == "module" else jnp.sum(lp, axis=(0, 1))  # (L, 1|C, B) → (B,)
                total = total + jnp.sum(weight * lp)
            return total

        covered = {process_key(q, lv, k) for q, lv, _ in scored for k in ("mean", "sigma")}
        grad = {k: g if k in covered else jnp.full_like(g, jnp.nan)
                for k, g in jax.grad(weighted_logp)(params).items()}
        return BlockSums(jnp.sum(jnp.where(passed, 0.0, w)), None, grad)


#: The estimators by name (the values of ``gradient.estimator``).
ESTIMATORS: dict[str, type[GradientEstimator]] = {"pathwise": Pathwise, "score": Score}


def make_estimator(name: str, **settings) -> GradientEstimator:
    """The estimator registered as ``name``, given the ``gradient`` settings (those it
    declares as fields; the rest are ignored).

    Raises:
      ValueError: ``name`` is not in :data:`ESTIMATORS` (the schema's ``gradient.estimator``
        row refuses it first, naming the key).
    """
    cls = ESTIMATORS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"no gradient estimator is registered as {name!r} (registered: {', '.join(ESTIMATORS)})")
    return cls(**{f.name: settings[f.name] for f in dataclasses.fields(cls) if f.name in settings})
