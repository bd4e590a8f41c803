"""Active alignment: per-module re-optimisation of the rigid placement (pure JAX).

An actively aligned assembly moves the whole PWG array (a common shift s = (s_x, s_y)
of every waveguide) to the best position before it is fixed. Per module, this finds

    s* = argmin_s J(s),  J = τ·log Σ_c exp(loss_c(s)/τ)   (objective "worst": a smooth
                                                         maximum of the channel losses)
                         J = Σ_c loss_c(s)                (objective "sum_log": the summed
                                                         −10·log10 η, i.e. Σ log-efficiency)

by damped Newton steps on the 2×2 problem of every module at once. Modules are
independent, so a tangent e_j applied to every module's shift gives each module's ∂J/∂s_j:
the value, gradient and Hessian of all modules come from one forward-over-forward pass
along the three pairs (e_0, e_0), (e_0, e_1), (e_1, e_1) — forward mode only, so nothing
of the model's coupled-mode scan is stored or recomputed for a reverse pass.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

#: Temperature of the smooth maximum, dB.
SMOOTH_MAX_TAU_DB = 0.01
#: Largest shift per Newton step, µm (a trust region for non-convex losses).
MAX_STEP_UM = 2.0


def objective(loss_db, kind: str):
    """Per-module objective of channel losses (L, C, B) → (B,)."""
    flat = loss_db.reshape(-1, loss_db.shape[-1])
    if kind == "worst":
        return SMOOTH_MAX_TAU_DB * jax.nn.logsumexp(flat / SMOOTH_MAX_TAU_DB, axis=0)
    return jnp.sum(flat, axis=0)  # sum_log


def align(loss_fn, batch: int, *, kind: str, steps: int, dtype):
    """The per-module shift s* (2, B) minimising the objective, by damped Newton.

    Args:
      loss_fn: s (2, B) → channel losses (L, C, B) with every waveguide of module b
        shifted by (s[0, b], s[1, b]).
      batch: B.
      kind: ``worst`` or ``sum_log``.
      steps: Newton iterations (static).
      dtype: float dtype of s.
    """
    def per_module(s):  # s (B, 2) inside the Newton iteration
        return objective(loss_fn(s.T), kind)

    e = jnp.eye(2, dtype=dtype)
    pairs = jnp.array([[0, 0], [0, 1], [1, 1]])

    def derivatives(s):
        """J (B,), ∇J (B, 2) and the Hessian (B, 2, 2) of every module's objective."""
        def second(ij):
            u = jnp.broadcast_to(e[ij[0]], s.shape)
            v = jnp.broadcast_to(e[ij[1]], s.shape)
            (value, du), (dv, duv) = jax.jvp(lambda x: jax.jvp(per_module, (x,), (u,)), (s,), (v,))
            return value, du, dv, duv

        value, du, dv, duv = jax.vmap(second)(pairs)
        g = jnp.stack([du[0], dv[2]], axis=-1)
        h = jnp.stack([jnp.stack([duv[0], duv[1]], -1), jnp.stack([duv[1], duv[2]], -1)], -2)
        return value[0].astype(dtype), g.astype(dtype), h.astype(dtype)  # as s, whatever the model promotes to

    def step(s, _):
        value, g, h = derivatives(s)
        # Levenberg damping keeps the step a descent direction where H is not positive
        lam = jnp.maximum(0.0, -jnp.min(jnp.linalg.eigvalsh(h), axis=-1)) + 1e-6
        h = h + (lam + 1e-3 * jnp.abs(jnp.trace(h, axis1=1, axis2=2)))[:, None, None] * e
        d = -jnp.linalg.solve(h, g[..., None])[..., 0]
        norm = jnp.linalg.norm(d, axis=-1, keepdims=True)
        d = d * jnp.minimum(1.0, MAX_STEP_UM / jnp.maximum(norm, 1e-30))
        # accept the step only where it lowers the objective
        new = s + d
        better = per_module(new) < value
        return jnp.where(better[:, None], new, s), None

    s0 = jnp.zeros((batch, 2), dtype)
    s, _ = jax.lax.scan(step, s0, None, length=steps)
    return s.T
