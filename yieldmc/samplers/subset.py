"""Subset simulation of the module failure probability, on the device (pure JAX/numpy).

The method that needs no design point: ``sampler=is`` falls back to it when its search
finds none or its weights degenerate, and ``is.method=subset`` asks for it directly.

With g(u) = S − max_k L_(m+1),k(u) the module's margin in the standard-normal space u
(L_(m+1),k the (m+1)-th largest channel loss under condition k; the module fails when
g < 0), subset simulation (Au & Beck, Prob. Eng. Mech. 16:263 (2001)) writes

    P_f = P(g ≤ b_1) · Π_i P(g ≤ b_{i+1} | g ≤ b_i),   b_1 > b_2 > … > b_L = 0,

each threshold b_i the p0-quantile of the current level's N samples, so that every factor
but the last is p0 = 0.1. Level 0 is plain Monte Carlo; the N·p0 samples below a
threshold seed N·p0 Markov chains of length 1/p0 that sample φ(u) restricted to
{g ≤ b_i}: conditional sampling u'_j = ρ_j·u_j + σ_j·ξ_j, ξ ~ N(0, I), ρ_j = √(1−σ_j²),
accepted when g(u') ≤ b_i (Papaioannou, Betz, Zwirglmaier & Straub, Prob. Eng. Mech.
41:89 (2015); the proposal is reversible with respect to φ, so no density ratio enters,
whatever the dimension), with one σ = min(1, λ) for all j, λ adapted from level to level
toward their acceptance rate 0.44. All chains advance together: one step is one batch of N·p0 modules through
the same model as the engine's blocks.

The coefficient of variation is Au & Beck's: δ² = Σ_i (1 − p_i)/(N·p_i)·(1 + γ_i), γ_i
from the correlation of the indicator along the chains (their Eq. 29; γ_0 = 0), which
neglects the correlation between levels (a slight underestimate; the coverage is
measured in ``scripts/is_coverage.py``). The estimator's bias is O(1/N).
When the thresholds stop before 0 (no failure within ``MAX_LEVELS`` levels, or the
thresholds no longer fall) the estimate is 0 and the interval's upper end is
Π p_i · (Clopper–Pearson upper end for 0 failures of N).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from yieldmc.engine.blocks import module_losses, split_draws
from yieldmc.engine.problem import Problem, Static, random_dimension
from yieldmc.samplers import mc

#: Conditional probability per level, the most levels (p0^MAX_LEVELS = 1e-16: below any
#: failure probability a module yield can resolve), the most samples per level (the
#: level's states, D × N floats, stay on the device), the proposal's first scale λ and the
#: acceptance rate it is adapted to, level by level (Papaioannou et al. 2015: 0.44).
P0, MAX_LEVELS, MAX_PER_LEVEL = 0.1, 16, 2**17
LAMBDA0, TARGET_ACCEPTANCE = 0.6, 0.44
#: Independent repetitions whose spread is the reported error
#: (:func:`replicated_subset_simulation`).
REPLICAS = 8


@dataclasses.dataclass(frozen=True)
class SubsetResult:
    """What one subset simulation found.

    Attributes:
      failure_probability: the estimate P̂_f (0 when no level reached the failure region).
      cov: Au & Beck's coefficient of variation δ of P̂_f (NaN when P̂_f = 0).
      upper: with P̂_f = 0, a 95 % upper bound (else NaN).
      thresholds: b_1 … b_L, dB (the last is 0 when the failure region was reached).
      level_probabilities: p_0 … p_L.
      gammas: the chain-correlation factors γ_i.
      acceptance: mean acceptance rate of the chains of each level ≥ 1.
      samples_per_level: N.
      evaluations: modules evaluated in all (N per level).
    """

    failure_probability: float
    cov: float
    upper: float
    thresholds: tuple
    level_probabilities: tuple
    gammas: tuple
    acceptance: tuple
    samples_per_level: int
    evaluations: int

    @property
    def se(self) -> float:
        return self.failure_probability * self.cov if self.failure_probability > 0 else 0.0


def _margin(u, p, static: Static, max_failed: int):
    """g(u) of a batch of modules u (D, n): S minus the largest over conditions of the
    (m+1)-th largest channel loss (the pass figure, crosstalk spec included)."""
    loss = module_losses(split_draws(u, static), p, static)  # (K, L, C, n)
    flat = loss.reshape(loss.shape[0], -1, loss.shape[-1])
    if max_failed == 0:
        kth = jnp.max(flat, axis=1)
    else:
        kth = jax.lax.top_k(jnp.swapaxes(flat, 1, 2), max_failed + 1)[0][..., max_failed]
    return (p["spec.max_loss_db"] - jnp.max(kth, axis=0)).astype(u.dtype)


@functools.lru_cache(maxsize=None)
def _programs(static: Static, max_failed: int, chain: int):
    """(draw-and-evaluate a batch, advance every chain ``chain`` − 1 steps), compiled for
    batches of ``static.block_size`` modules."""
    dim = random_dimension(static)
    dtype = jnp.dtype(static.dtype)

    def first(key, p):
        u = jax.random.normal(key, (dim, static.block_size), dtype)
        return u, _margin(u, p, static, max_failed)

    def chains(key, u, g, threshold, lam, p):
        # conditional sampling with one scale σ = min(1, λ) for every dimension. (aCS's
        # per-dimension σ_j = λ·s_j, s_j the seeds' spread, fails when the seeds sit in
        # two opposite regions — the two sides of an offset — where s_j is large exactly
        # along the direction that matters, and the chains stop moving.)
        sig = jnp.minimum(1.0, lam)
        rho = jnp.sqrt(1.0 - sig * sig)

        def step(carry, k):
            u, g = carry
            v = rho * u + sig * jax.random.normal(k, u.shape, dtype)
            gv = _margin(v, p, static, max_failed)
            accept = gv <= threshold
            u = jnp.where(accept[None], v, u)
            g = jnp.where(accept, gv, g)
            return (u, g), (u, g, accept)

        _, (us, gs, accepted) = jax.lax.scan(step, (u, g), jax.random.split(key, chain - 1))
        return us, gs, jnp.mean(accepted.astype(dtype))

    return jax.jit(first), jax.jit(chains)


def chain_correlation_factor(indicator: np.ndarray, p: float) -> float:
    """γ of Au & Beck (2001), Eq. 29, from the indicators (M steps, N_c chains) of one level.

    γ = 2 Σ_{k=1}^{M−1} (1 − k/M)·ρ(k), ρ(k) = R(k)/R(0), R(k) the lag-k covariance of the
    indicator along the chains pooled over the chains, R(0) = p(1 − p).
    """
    ind = np.asarray(indicator, dtype=np.float64)
    m, n_c = ind.shape
    r0 = p * (1.0 - p)
    if r0 <= 0 or m < 2:
        return 0.0
    gamma = 0.0
    for k in range(1, m):
        rk = np.sum(ind[:-k] * ind[k:]) / (n_c * (m - k)) - p * p
        gamma += 2.0 * (1.0 - k / m) * rk / r0
    return float(gamma)


def subset_simulation(problem: Problem, *, samples_per_level: int | None = None,
                      seed: int | None = None, replica: int = 0) -> SubsetResult:
    """Subset simulation of 1 − yield of a single-point problem (module docstring).

    Args:
      problem: the problem (one sweep point; its conditions, spec and failed-channel
        allowance define failure).
      samples_per_level: N (default: ``problem.samples``, at most ``MAX_PER_LEVEL``);
        rounded down to a multiple of 1/p0.
      seed: the random seed (default ``problem.seed``); the draws depend on it and
        ``replica`` alone.
      replica: index of an independent repetition (:func:`replicated_subset_simulation`).

    Returns:
      :class:`SubsetResult`.
    """
    chain = round(1.0 / P0)
    n = min(int(samples_per_level or problem.samples), MAX_PER_LEVEL)
    n_seeds = max(n // chain, 1)
    n = n_seeds * chain
    static = dataclasses.replace(problem.static, block_size=n_seeds, sampler=mc.PLAIN)
    max_failed = int(problem.params["spec.max_failed_channels"][0])
    p = {k: jnp.asarray(np.asarray(v)[0].astype(static.dtype)) for k, v in problem.params.items()}
    first, advance = _programs(static, max_failed, chain)
    key = jax.random.fold_in(jax.random.key(problem.seed if seed is None else seed, impl=static.rng_impl), 0x5B5)
    key = jax.random.fold_in(key, replica)

    parts = [first(jax.random.fold_in(jax.random.fold_in(key, 0), j), p) for j in range(chain)]
    u = jnp.stack([a for a, _ in parts])  # (M, D, n_seeds): chain step × module
    g = np.stack([np.asarray(b, np.float64) for _, b in parts])  # (M, n_seeds)
    thresholds, probs, gammas, acceptance = [], [], [], []
    product, cov2, lam = 1.0, 0.0, LAMBDA0
    for level in range(MAX_LEVELS + 1):
        flat = g.reshape(-1)
        order = np.argsort(flat, kind="stable")
        b = 0.5 * (flat[order[n_seeds - 1]] + flat[order[n_seeds]])
        stalled = bool(thresholds) and not b < thresholds[-1]
        if b <= 0.0 or level == MAX_LEVELS or stalled:  # the last level: count the failures
            ind = g <= 0.0
            p_last = float(ind.mean())
            gamma = 0.0 if level == 0 else chain_correlation_factor(ind, p_last)
            probs.append(p_last)
            gammas.append(gamma)
            if p_last > 0:
                cov2 += (1.0 - p_last) / (n * p_last) * (1.0 + gamma)
                pf, cov, upper = product * p_last, math.sqrt(cov2), float("nan")
            else:
                pf, cov = 0.0, float("nan")
                upper = product * (1.0 - 0.025 ** (1.0 / n))  # Clopper–Pearson, 0 of n
            thresholds.append(0.0 if p_last > 0 else float(b))
            return SubsetResult(pf, cov, upper, tuple(thresholds), tuple(probs), tuple(gammas),
                                tuple(acceptance), n, n * (level + 1))
        ind = g <= b
        p_level = float(ind.mean())  # P0 unless there are ties at b
        gamma = 0.0 if level == 0 else chain_correlation_factor(ind, p_level)
        cov2 += (1.0 - p_level) / (n * p_level) * (1.0 + gamma)
        product *= p_level
        thresholds.append(float(b))
        probs.append(p_level)
        gammas.append(gamma)
        seeds = order[:n_seeds]  # flat index = step·n_seeds + module
        u0 = u.reshape(chain, -1, n_seeds)[seeds // n_seeds, :, seeds % n_seeds].T  # (D, n_seeds)
        g0 = jnp.asarray(flat[seeds].astype(static.dtype))
        us, gs, acc = advance(jax.random.fold_in(key, level + 1), u0, g0, jnp.asarray(b, static.dtype),
                              jnp.asarray(lam, static.dtype), p)
        lam = float(np.clip(lam * math.exp(float(acc) - TARGET_ACCEPTANCE), 0.05, 10.0))
        u = jnp.concatenate([u0[None], us])
        g = np.concatenate([np.asarray(g0, np.float64)[None], np.asarray(gs, np.float64)])
        acceptance.append(float(acc))
    raise AssertionError("unreachable")


@dataclasses.dataclass(frozen=True)
class ReplicatedSubset:
    """R independent subset simulations and their combination.

    Attributes:
      failure_probability: the mean of the R estimates.
      se: their standard deviation / √R (NaN when every estimate is 0).
      t95: the Student-t quantile for a 95 % interval with R − 1 degrees of freedom.
      upper: with every estimate 0, the largest of the replicas' upper bounds (else NaN).
      runs: the R :class:`SubsetResult`.
    """

    failure_probability: float
    se: float
    t95: float
    upper: float
    runs: tuple

    @property
    def evaluations(self) -> int:
        return sum(r.evaluations for r in self.runs)


def replicated_subset_simulation(problem: Problem, *, samples_per_level: int | None = None,
                                 replicas: int = REPLICAS) -> ReplicatedSubset:
    """``replicas`` independent subset simulations of N/R samples per level each.

    Au & Beck's δ neglects the correlation between levels (the seeds of a level are the
    previous level's samples), and the chains' γ is estimated from chains of 1/p0 steps: on
    the unions of ``scripts/is_coverage.py`` the spread of P̂ was 1.1–1.5× the δ-based
    error and the 95 % coverage 0.80–0.92. The spread of independent replicas has no such
    assumption: the interval P̄ ± t_{R−1}·s/√R is exact for normal estimates, and the mean
    of R estimates is close to normal. The cost is the same as one run of N per level; the
    O(1/N) bias grows to O(R/N), small against the error at the N used here.

    Args:
      problem: as :func:`subset_simulation`.
      samples_per_level: N in all (default ``problem.samples``, at most
        ``MAX_PER_LEVEL``); each replica runs N/R.
      replicas: R ≥ 2.
    """
    from scipy.stats import t as student_t

    n = min(int(samples_per_level or problem.samples), MAX_PER_LEVEL)
    per = max(n // replicas, round(1.0 / P0) * 2)
    runs = tuple(subset_simulation(problem, samples_per_level=per, replica=r) for r in range(replicas))
    est = np.array([r.failure_probability for r in runs])
    mean = float(est.mean())
    if mean > 0:
        se, upper = float(est.std(ddof=1) / math.sqrt(replicas)), float("nan")
    else:
        se, upper = float("nan"), float(max(r.upper for r in runs))
    return ReplicatedSubset(mean, se, float(student_t.ppf(0.975, replicas - 1)), upper, runs)
