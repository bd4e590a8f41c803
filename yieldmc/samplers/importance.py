"""``sampler=is``: importance sampling of the module failure probability 1 − yield (pure JAX/numpy).

1. **Design points** (FORM): in the standard-normal space u of one module (every active
   draw, D dimensions) the module fails when g(u) = S − L_(m+1)(u) < 0, L_(m+1) the
   (m+1)-th largest channel loss. HLRF iterations u ← [(∇g·u − g)/|∇g|²]·∇g (Hasofer &
   Lind, J. Eng. Mech. 100:111 (1974); Rackwitz & Fiessler, Comput. Struct. 9:489
   (1978)) from several random starts find the most probable failure points; distinct
   ones within 2 of the smallest reliability index β = |u*| are kept (a union of
   failure regions — channels, sides — gets one each).
2. **Sampling**: u = z + u*_k with z ~ N(0, I) and k drawn uniformly, i.e. from the
   mixture q(u) = (1/K)·Σ_k φ(u − u*_k); weight w = φ(u)/q(u) =
   1/((1/K)·Σ_k exp(u·u*_k − |u*_k|²/2)).
3. **Estimates** per block (float sums; the host adds them in a fixed block order, so
   the result is bit-identical however blocks are grouped): P̂_f = Σ w·1{fail}/N with
   SE² = (Σ(w·1{fail})²/N − P̂_f²)/N, the effective sample size of the failure weights
   (Σ w·1{fail})²/Σ(w·1{fail})² (Kish), per-channel fail probabilities and the weighted
   mean loss.
If no design point is found, or the weights degenerate (failure ESS < 50), the run falls
back to plain Monte Carlo with a warning. One sweep point only (the design points are
per point); its statistics are float sums, not counts (:attr:`Sampler.counts` false).
"""

from __future__ import annotations

import dataclasses
import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from yieldmc.engine.blocks import accumulate, block_key, module_losses, split_draws, standard_normals
from yieldmc.engine.problem import Problem, Static, as_plain_mc, random_dimension
from yieldmc.samplers.base import Estimate, Sampler
from yieldmc.engine.stats import _Z95

#: HLRF settings: random starts, iterations, acceptance of a converged point.
STARTS, ITERATIONS, BETA_WINDOW = 24, 60, 2.0
#: Fewer effective failing samples than this → fall back to plain MC.
MIN_ESS = 50.0


@dataclasses.dataclass(frozen=True)
class DesignPoints:
    points: np.ndarray  # (K, D)
    beta: np.ndarray  # (K,)

    @property
    def tables(self):
        """The device table (K, D); without a design point the origin alone (the proposal
        is then p itself, weights 1), so that the blocks of a run that falls back to
        plain Monte Carlo can still be computed and stored."""
        points = self.points if len(self.points) else np.zeros((1, self.points.shape[1]))
        return (points.astype(np.float32),)


def _one_module_static(static: Static) -> Static:
    return dataclasses.replace(static, block_size=1, sampler="mc", sampling=None)


def limit_state(u, params, static1: Static, max_failed: int):
    """g(u) = S − L_(m+1)(u) for one module (u of shape (D,)); < 0 means failure."""
    loss = module_losses(split_draws(u[:, None], static1), params, static1).reshape(-1)
    kth = jax.lax.top_k(loss, max_failed + 1)[0][max_failed]
    return params["spec.max_loss_db"] - kth


@functools.lru_cache(maxsize=None)
def _hlrf(static1: Static, max_failed: int):
    g_and_grad = jax.value_and_grad(lambda u, p: limit_state(u, p, static1, max_failed))

    def step(u, p):
        g, dg = g_and_grad(u, p)
        n2 = jnp.maximum(jnp.sum(dg * dg), 1e-30)
        return (jnp.dot(dg, u) - g) / n2 * dg, g

    vstep = jax.jit(jax.vmap(step, in_axes=(0, None)))
    vg = jax.jit(jax.vmap(lambda u, p: limit_state(u, p, static1, max_failed), in_axes=(0, None)))
    return vstep, vg


def design_points(problem: Problem) -> DesignPoints:
    """Most probable failure points of the problem's (single) sweep point (memoised)."""
    key = (problem.static, problem.seed,
           tuple((k, np.asarray(v).tobytes()) for k, v in sorted(problem.params.items())))
    return _design_points_cached(key, problem)


_CACHE: dict = {}


def _design_points_cached(key, problem):
    if key not in _CACHE:
        _CACHE[key] = _search(problem)
    return _CACHE[key]


def _search(problem: Problem) -> DesignPoints:
    static1 = _one_module_static(problem.static)
    dim = random_dimension(problem.static)
    max_failed = int(problem.params["spec.max_failed_channels"][0])
    params = {k: jnp.asarray(v[0].astype(problem.static.dtype)) for k, v in problem.params.items()}
    vstep, vg = _hlrf(static1, max_failed)
    rng = np.random.default_rng([problem.seed, 0x15])
    u = jnp.asarray(rng.standard_normal((STARTS, dim)).astype(problem.static.dtype))
    for _ in range(ITERATIONS):
        new, _ = vstep(u, params)
        u = jnp.where(jnp.all(jnp.isfinite(new), axis=1, keepdims=True), new, u)
    u = np.asarray(u, dtype=np.float64)
    g = np.asarray(vg(jnp.asarray(u.astype(problem.static.dtype)), params), dtype=np.float64)
    tol = 1e-3 * max(1.0, abs(float(problem.params["spec.max_loss_db"][0])))
    beta = np.linalg.norm(u, axis=1)
    ok = np.isfinite(beta) & (np.abs(g) < tol) & (beta > 0)
    u, beta = u[ok], beta[ok]
    if len(u) == 0:
        return DesignPoints(np.zeros((0, dim)), np.zeros(0))
    order = np.argsort(beta)
    keep: list[int] = []
    for i in order:
        if beta[i] > beta[order[0]] + BETA_WINDOW:
            break
        if all(np.linalg.norm(u[i] - u[j]) > 0.1 * beta[i] for j in keep):
            keep.append(i)
    return DesignPoints(u[keep], beta[keep])


def proposal_draws(seed, block, static: Static, points):
    """u = z + u*_k of one block, (D, B): z the block's standard normals, k uniform over
    the design points ``points`` (K, D)."""
    key = block_key(seed, block, static)
    z = standard_normals(key, static)  # (D, B)
    k = jax.random.randint(jax.random.fold_in(key, 0x1A5), (static.block_size,), 0, points.shape[0])
    return z + points[k].T


def is_block_stats(seed, block, n_valid, params, tables, static: Static):
    """Weighted sums of one block under the mixture proposal (single sweep point)."""
    (points,) = tables  # (K, D)
    u = proposal_draws(seed, block, static, points)
    log_q = jax.nn.logsumexp(points @ u - 0.5 * jnp.sum(points * points, axis=1)[:, None], axis=0) - jnp.log(points.shape[0])
    valid = jnp.arange(static.block_size, dtype=jnp.int32) < n_valid
    w = jnp.where(valid, jnp.exp(-log_q), 0.0)
    p = jax.tree.map(lambda a: a[0], params)
    loss = module_losses(split_draws(u, static), p, static)  # (L, C, B)
    fail_c = loss > p["spec.max_loss_db"]
    fail = jnp.sum(fail_c, axis=(0, 1)) > p["spec.max_failed_channels"]
    wf = w * fail
    scalars = jnp.stack([jnp.sum(w), jnp.sum(w * w), jnp.sum(wf), jnp.sum(wf * wf)])
    return {
        "n_pass": jnp.sum(~fail & valid, dtype=jnp.int32)[None],
        "is_scalars": scalars[None],
        "is_channel_fail": jnp.sum(w * fail_c, axis=-1)[None],
        "is_loss": jnp.sum(w * jnp.clip(loss, 0.0, 100.0), axis=-1)[None],
    }


def block_shapes(problem: Problem) -> dict:
    s = problem.static
    lc = (s.layers, s.channels)
    return {"n_pass": ((1,), "int32"), "is_scalars": ((1, 4), "float32"),
            "is_channel_fail": ((1, *lc), "float32"), "is_loss": ((1, *lc), "float32")}


def canonical_sum(per_block: np.ndarray, batch: int = 64) -> np.ndarray:
    """Float64 sum over a (n_blocks, ...) array in block order, in fixed batches of 64
    blocks — the same association whoever computed the blocks and however grouped."""
    total = np.zeros(per_block.shape[1:], np.float64)
    for start in range(0, per_block.shape[0], batch):
        total = total + per_block[start:start + batch].astype(np.float64).sum(axis=0)
    return total


@dataclasses.dataclass
class ImportanceEstimate:
    n_samples: int
    n_pass_proposal: int
    failure_probability: float
    failure_probability_se: float
    effective_sample_size: float
    channel_fail: np.ndarray  # (L, C)
    loss_mean: np.ndarray  # (L, C)
    design: DesignPoints


def importance_estimate(per_block: dict, n_samples: int, design: DesignPoints) -> ImportanceEstimate:
    """Estimates from per-block sums ordered by block index."""
    sc = canonical_sum(per_block["is_scalars"][:, 0])
    n = float(n_samples)
    pf = sc[2] / n
    var = max(sc[3] / n - pf * pf, 0.0) / n
    # Kish ESS of the weights that carry the estimate (the failing samples'): the whole
    # weight vector's ESS is always tiny in rare-event IS (q is far from p by design)
    ess = sc[2] ** 2 / sc[3] if sc[3] > 0 else 0.0
    return ImportanceEstimate(
        n_samples=int(n_samples),
        n_pass_proposal=int(np.asarray(per_block["n_pass"], np.int64).sum()),
        failure_probability=float(pf), failure_probability_se=float(np.sqrt(var)),
        effective_sample_size=float(ess),
        channel_fail=canonical_sum(per_block["is_channel_fail"][:, 0]) / n,
        loss_mean=canonical_sum(per_block["is_loss"][:, 0]) / n,
        design=design,
    )


def degenerate(est: ImportanceEstimate) -> bool:
    return len(est.design.beta) == 0 or est.effective_sample_size < MIN_ESS


def warn_fallback(reason: str) -> None:
    warnings.warn(f"sampler=is: {reason}; falling back to plain Monte Carlo", RuntimeWarning, stacklevel=3)


def _in_block_order(blocks) -> dict:
    """Per-block statistics of (indices, values) slices, concatenated in block order."""
    parts, index = [], []
    for indices, values in blocks:
        parts.append(values)
        index.append(np.asarray(indices))
    order = np.argsort(np.concatenate(index), kind="stable")
    return {k: np.concatenate([p[k] for p in parts])[order] for k in parts[0]}


def importance_variables(problem: Problem, est: ImportanceEstimate) -> dict:
    """The DESIGN §5 (and §8 rare-event) variables of an IS estimate: name → (dims, values, attrs)."""
    s = problem.static
    pf, se = est.failure_probability, est.failure_probability_se
    lc = (s.layers, s.channels)
    ch = ("layer", "channel")
    return {
        "yield": ((), 1.0 - pf, {"units": "1", "long_name": "fraction of modules that meet the loss spec"}),
        "yield_ci_low": ((), max(0.0, 1.0 - (pf + _Z95 * se)), {
            "units": "1", "long_name": "yield, lower end of the 95 % normal interval of the IS estimate"}),
        "yield_ci_high": ((), min(1.0, 1.0 - (pf - _Z95 * se)), {
            "units": "1", "long_name": "yield, upper end of the 95 % normal interval of the IS estimate"}),
        "n_pass": ((), np.int64(est.n_pass_proposal), {
            "units": "1", "long_name": "passing modules among the proposal samples (unweighted)"}),
        "n_samples": ((), np.int64(est.n_samples), {"units": "1", "long_name": "number of module samples"}),
        "channel_fail_fraction": (ch, est.channel_fail.reshape(lc), {
            "units": "1", "long_name": "probability that the channel fails (IS estimate)"}),
        "loss_db_mean": (ch, est.loss_mean.reshape(lc), {
            "units": "dB", "long_name": "mean channel loss (IS estimate, losses clipped at 100 dB)"}),
        "loss_db_quantile": (("quantile", *ch), np.full((len(problem.quantiles), *lc), np.nan), {
            "units": "dB", "long_name": "channel loss quantile (not estimated by sampler=is)"}),
        "failure_probability": ((), pf, {"units": "1", "long_name": "module failure probability 1 - yield"}),
        "failure_probability_se": ((), se, {"units": "1", "long_name": "standard error of failure_probability"}),
        "effective_sample_size": ((), est.effective_sample_size, {
            "units": "1", "long_name": "Kish effective sample size of the failing samples' IS weights"}),
    }


class ImportanceSampler(Sampler):
    """Mixture proposal around the FORM design points; IS estimate of 1 − yield with its
    normal interval, or plain Monte Carlo (with a warning) when it degenerates."""

    description = "is (importance sampling)"
    supports_sweep = False
    counts = False

    def tables(self, problem: Problem):
        return design_points(problem).tables

    def draws(self, seed, block, static: Static, tables=None):
        return proposal_draws(seed, block, static, tables[0])

    def program(self, static: Static):
        return jax.jit(functools.partial(is_block_stats, static=static))

    def block_shapes(self, problem: Problem) -> dict:
        return block_shapes(problem)

    def estimate(self, problem: Problem, blocks, *, n_devices=None) -> Estimate:
        design = design_points(problem)
        if len(design.beta) == 0:
            warn_fallback("no design point found")
            return self._fallback(problem, n_devices)
        est = importance_estimate(_in_block_order(blocks), problem.samples, design)
        if degenerate(est):
            warn_fallback(f"effective sample size of the failures {est.effective_sample_size:.3g} < {MIN_ESS:g}")
            return self._fallback(problem, n_devices)
        return Estimate(problem, variables=importance_variables(problem, est), attrs={
            "is_design_points": int(len(est.design.beta)),
            "is_beta": [float(b) for b in est.design.beta],
        })

    @staticmethod
    def _fallback(problem: Problem, n_devices) -> Estimate:
        """Plain Monte Carlo over the same blocks (recorded in the ``sampler`` attribute)."""
        mc = as_plain_mc(problem)
        stats = accumulate(mc, range(mc.n_blocks), n_devices=n_devices)
        return Estimate(mc, stats, attrs={"sampler": "mc (fallback from is)"})

    def interval_method(self, problem: Problem) -> str:
        return "normal, 95 %, from the IS standard error"


SAMPLER = ImportanceSampler()
