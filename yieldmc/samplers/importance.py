"""``sampler=is``: importance sampling of the module failure probability 1 − yield (pure JAX/numpy).

1. **Design points** (FORM): in the standard-normal space u of one module (every active
   draw, D dimensions) the module fails when g(u) = S − L_(m+1)(u) < 0, L_(m+1) the
   (m+1)-th largest channel loss over every condition. HLRF iterations
   u ← [(∇g·u − g)/|∇g|²]·∇g (Hasofer & Lind, J. Eng. Mech. 100:111 (1974); Rackwitz &
   Fiessler, Comput. Struct. 9:489 (1978)) find the most probable failure points. With no
   failed channel allowed (m = 0) the failure region is the union of the channel events
   e = (condition, layer, channel), and the events are enumerated from the problem's
   structure: each gets its own search on g_e(u) = S − L_e(u), from two opposite starts
   (the two sides of an offset) — random starts alone found only part of the 2C points of
   a C-channel module and biased the estimate low (scripts/is_coverage.py). Random starts on g are kept
   as well. Distinct points within 2 of the smallest reliability index β = |u*| are kept.
2. **Sampling**: u = z + u*_k with z ~ N(0, I) and k drawn with probability
   α_k ∝ Φ(−β_k) (the FORM probability of each point's half-space), i.e. from the mixture
   q(u) = Σ_k α_k·φ(u − u*_k); weight w = φ(u)/q(u) = 1/Σ_k α_k·exp(u·u*_k − |u*_k|²/2),
   the balance heuristic (Owen & Zhou, JASA 95:135 (2000)), unbiased for the union
   (Owen, Maximov & Chertkov, Electron. J. Stat. 13:1 (2019)).
3. **Estimates** per block (float sums; the host adds them in a fixed block order, so
   the result is bit-identical however blocks are grouped): P̂_f = Σ w·1{fail}/N with
   SE² = (Σ(w·1{fail})²/N − P̂_f²)/N, the effective sample size of the failure weights
   (Σ w·1{fail})²/Σ(w·1{fail})² (Kish), per-channel fail probabilities (the per-event
   estimates: union bounds max_e P_e ≤ P_f ≤ Σ_e P_e) and the weighted mean loss;
   :func:`union_diagnostics` turns missed events and inconsistent bounds into warnings,
   stored in the dataset's ``warnings`` attribute.
If no design point is found, or the weights degenerate (failure ESS < 50), the run falls
back, with a warning, to subset simulation (:mod:`yieldmc.samplers.subset`), which needs
no design point; ``is.method=subset`` uses it directly. One sweep point only (the design
points are per point); its statistics are float sums, not counts
(:attr:`Sampler.counts` false).
"""

from __future__ import annotations

import dataclasses
import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from yieldmc.engine.conditions import condition_variables
from yieldmc.engine.blocks import module_losses, split_draws
from yieldmc.engine.statistics import envelope_outcomes
from yieldmc.engine.rng import block_key, standard_normals
from yieldmc.engine.problem import Problem, Static, random_dimension
from yieldmc.parts import Key
from yieldmc.samplers.base import Estimate, Sampler
from yieldmc.engine.stats import _Z95
from yieldmc.samplers import mc
from yieldmc.samplers.subset import replicated_subset_simulation

#: HLRF settings: random starts, iterations, acceptance of a converged point.
STARTS, ITERATIONS, BETA_WINDOW = 24, 60, 2.0
#: Distance of the two opposite starts of a per-event search from the origin, and the
#: largest HLRF step (standard-normal units).
EVENT_START, MAX_STEP = 0.5, 1.0
#: Fewer effective failing samples than this → fall back to plain MC.
MIN_ESS = 50.0


@dataclasses.dataclass(frozen=True)
class DesignPoints:
    points: np.ndarray  # (K, D)
    beta: np.ndarray  # (K,)
    events: int = 0  # channel events searched one by one (K_cond·L·C; 0: random starts only)
    events_found: int = 0  # of those, events with a converged design point

    @property
    def log_weights(self) -> np.ndarray:
        """Mixture weights α_k ∝ Φ(−β_k), the FORM probability of each point's half-space."""
        from scipy.special import log_ndtr

        la = log_ndtr(-self.beta)
        return la - np.logaddexp.reduce(la)

    @property
    def tables(self):
        """The device tables (points (K, D), log mixture weights (K,)); without a design
        point the origin alone (the proposal is then p itself, weights 1), so that the
        blocks of a run that falls back to plain Monte Carlo can still be computed and
        stored."""
        if not len(self.points):
            return np.zeros((1, self.points.shape[1]), np.float32), np.zeros(1, np.float32)
        return self.points.astype(np.float32), self.log_weights.astype(np.float32)


def _one_module_static(static: Static) -> Static:
    return dataclasses.replace(static, block_size=1, sampler=mc.PLAIN)


def limit_state(u, event, params, static1: Static, max_failed: int):
    """g(u) of one module (u of shape (D,)); < 0 means failure.

    ``event`` < 0: the module, g = S − max over conditions of L_(m+1)(u), the (m+1)-th
    largest channel loss; ``event`` = e ≥ 0: one channel event (flat index over
    conditions × layers × channels), g_e = S − L_e(u).
    """
    loss = module_losses(split_draws(u[:, None], static1), params, static1)
    flat = loss.reshape(loss.shape[0], -1)  # (K conditions, L·C): the union over conditions
    kth = jax.lax.top_k(flat, max_failed + 1)[0][:, max_failed]
    module = params["spec.max_loss_db"] - jnp.max(kth)
    channel = params["spec.max_loss_db"] - flat.reshape(-1)[jnp.maximum(event, 0)]
    return jnp.where(event < 0, module, channel)


@functools.lru_cache(maxsize=None)
def _hlrf(static1: Static, max_failed: int):
    """One compiled program: ITERATIONS HLRF steps of every start (u (S, D), events (S,)),
    then the limit state at the end points."""
    def g(u, e, p):
        return limit_state(u, e, p, static1, max_failed)

    g_and_grad = jax.value_and_grad(g)

    def step(u, e, p):
        value, dg = g_and_grad(u, e, p)
        n2 = jnp.maximum(jnp.sum(dg * dg), 1e-30)
        return (jnp.dot(dg, u) - value) / n2 * dg

    def run(u, e, p):
        def body(_, u):
            new = jax.vmap(step, in_axes=(0, 0, None))(u, e, p).astype(u.dtype)
            # step-length control: at most MAX_STEP per iteration. Far from a design point
            # the gradient of a quadratic loss is tiny and the plain HLRF step huge; the
            # point then lands where the loss saturates and falls back to the origin.
            d = new - u
            size = jnp.sqrt(jnp.sum(d * d, axis=1, keepdims=True))
            new = u + d * jnp.minimum(1.0, MAX_STEP / jnp.maximum(size, 1e-30))
            return jnp.where(jnp.all(jnp.isfinite(new), axis=1, keepdims=True), new, u)

        u = jax.lax.fori_loop(0, ITERATIONS, body, u)
        return u, jax.vmap(g, in_axes=(0, 0, None))(u, e, p)

    return jax.jit(run)


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
    dtype = problem.static.dtype
    rng = np.random.default_rng([problem.seed, 0x15])
    starts = [rng.standard_normal((STARTS, dim))]  # random starts on the module's g
    index = [np.full(STARTS, -1)]
    events = found = 0
    if max_failed == 0:
        # the union's events from the problem's structure: every channel under every
        # condition, each from two opposite starts (the two sides of an offset)
        s = problem.static
        events = s.n_conditions * s.layers * s.channels
        ev = np.repeat(np.arange(events), 2)
        v = rng.standard_normal((events, dim))
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        starts.append(EVENT_START * np.where(np.arange(2 * events)[:, None] % 2 == 0, 1.0, -1.0) * v[ev])
        index.append(ev)
    index = np.concatenate(index)
    u, g = _hlrf(static1, max_failed)(jnp.asarray(np.concatenate(starts).astype(dtype)),
                                      jnp.asarray(index, jnp.int32), params)
    u, g = np.asarray(u, dtype=np.float64), np.asarray(g, dtype=np.float64)
    tol = 1e-3 * max(1.0, abs(float(problem.params["spec.max_loss_db"][0])))
    if events:
        conv = np.isfinite(u).all(axis=1) & (np.abs(g) < tol) & (np.linalg.norm(u, axis=1) > 0)
        found = len(np.unique(index[conv & (index >= 0)]))
    beta = np.linalg.norm(u, axis=1)
    ok = np.isfinite(beta) & (np.abs(g) < tol) & (beta > 0)
    u, beta = u[ok], beta[ok]
    if len(u) == 0:
        return DesignPoints(np.zeros((0, dim)), np.zeros(0), events, found)
    order = np.argsort(beta)
    keep: list[int] = []
    for i in order:
        if beta[i] > beta[order[0]] + BETA_WINDOW:
            break
        if all(np.linalg.norm(u[i] - u[j]) > 0.1 * beta[i] for j in keep):
            keep.append(i)
    return DesignPoints(u[keep], beta[keep], events, found)


def proposal_draws(seed, block, static: Static, points, log_alpha):
    """u = z + u*_k of one block, (D, B): z the block's standard normals, k drawn from the
    mixture weights α (``log_alpha`` (K,)) over the design points ``points`` (K, D)."""
    key = block_key(seed, block, static)
    z = standard_normals(key, static)  # (D, B)
    k = jax.random.categorical(jax.random.fold_in(key, 0x1A5), log_alpha, shape=(static.block_size,))
    return z + points[k].T


def mixture_weights(u, points, log_alpha):
    """w = p(u)/q(u) (B,) of draws u (D, B) with q the whole mixture — the balance heuristic
    (Owen & Zhou, JASA 95:135 (2000); Owen, Maximov & Chertkov, Electron. J. Stat. 13:1
    (2019)), unbiased for the union."""
    log_q = jax.nn.logsumexp(log_alpha[:, None] + points @ u - 0.5 * jnp.sum(points * points, axis=1)[:, None],
                             axis=0)
    return jnp.exp(-log_q)


def is_block_stats(seed, block, n_valid, params, tables, static: Static):
    """Weighted sums of one block under the mixture proposal (single sweep point)."""
    points, log_alpha = tables  # (K, D), (K,)
    u = proposal_draws(seed, block, static, points, log_alpha)
    valid = jnp.arange(static.block_size, dtype=jnp.int32) < n_valid
    w = jnp.where(valid, mixture_weights(u, points, log_alpha), 0.0)
    p = jax.tree.map(lambda a: a[0], params)
    loss = module_losses(split_draws(u, static), p, static)  # (K, L, C, B)
    fail_c = loss > p["spec.max_loss_db"]
    passed_k = jnp.sum(fail_c, axis=(1, 2)) <= p["spec.max_failed_channels"]  # (K, B)
    envelope, fail_only, others_pass = envelope_outcomes(passed_k)
    fail = ~envelope
    wf = w * fail
    scalars = jnp.stack([jnp.sum(w), jnp.sum(w * w), jnp.sum(wf), jnp.sum(wf * wf)])
    per_condition = jnp.stack([~passed_k, fail_only, ~others_pass], axis=-1)  # (K, B, 3) failures
    return {
        "n_pass": jnp.sum(~fail & valid, dtype=jnp.int32)[None],
        "is_scalars": scalars[None],
        "is_channel_fail": jnp.sum(w * fail_c, axis=-1)[None],
        "is_loss": jnp.sum(w * jnp.clip(loss, 0.0, 100.0), axis=-1)[None],
        "is_conditions": jnp.sum(w[:, None] * per_condition, axis=1)[None],
    }


def block_shapes(problem: Problem) -> dict:
    s = problem.static
    lc = (s.n_conditions, s.layers, s.channels)
    return {"n_pass": ((1,), "int32"), "is_scalars": ((1, 4), "float32"),
            "is_channel_fail": ((1, *lc), "float32"), "is_loss": ((1, *lc), "float32"),
            "is_conditions": ((1, s.n_conditions, 3), "float32")}


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
    channel_fail: np.ndarray  # (K, L, C)
    loss_mean: np.ndarray  # (K, L, C)
    design: DesignPoints
    conditions: np.ndarray  # (K, 3): P(fail under k), P(fail under k only), P(fail under another)


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
        conditions=canonical_sum(per_block["is_conditions"][:, 0]) / n,
    )


def degenerate(est: ImportanceEstimate) -> bool:
    return len(est.design.beta) == 0 or est.effective_sample_size < MIN_ESS


def warn_fallback(reason: str) -> None:
    warnings.warn(f"sampler=is: {reason}; falling back to subset simulation", RuntimeWarning, stacklevel=3)


def _in_block_order(blocks) -> dict:
    """Per-block statistics of (indices, values) slices, concatenated in block order."""
    parts, index = [], []
    for indices, values in blocks:
        parts.append(values)
        index.append(np.asarray(indices))
    order = np.argsort(np.concatenate(index), kind="stable")
    return {k: np.concatenate([p[k] for p in parts])[order] for k in parts[0]}


def importance_variables(problem: Problem, est: ImportanceEstimate) -> dict:
    """The result variables (with the rare-event ones) of an IS estimate: name → (dims, values, attrs)."""
    s = problem.static
    pf, se = est.failure_probability, est.failure_probability_se
    conditioned = bool(s.conditions)
    lc = (s.n_conditions, s.layers, s.channels) if conditioned else (s.layers, s.channels)
    ch = (("condition",) if conditioned else ()) + ("layer", "channel")
    q_dims = ("condition", "quantile", "layer", "channel") if conditioned else ("quantile", "layer", "channel")
    q_shape = (s.n_conditions, len(problem.quantiles), s.layers, s.channels) if conditioned else (
        len(problem.quantiles), *lc)
    # per condition: P(pass under it), P(fail under it and no other), P(pass every other)
    fractions = np.stack([1.0 - est.conditions[:, 0], est.conditions[:, 1], 1.0 - est.conditions[:, 2]], axis=-1)
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
        "loss_db_quantile": (q_dims, np.full(q_shape, np.nan), {
            "units": "dB", "long_name": "channel loss quantile (not estimated by sampler=is)"}),
        **condition_variables(s, [], lambda a: np.asarray(a), fractions),
        "failure_probability": ((), pf, {"units": "1", "long_name": "module failure probability 1 - yield"}),
        "failure_probability_se": ((), se, {"units": "1", "long_name": "standard error of failure_probability"}),
        "effective_sample_size": ((), est.effective_sample_size, {
            "units": "1", "long_name": "Kish effective sample size of the failing samples' IS weights"}),
    }


def union_diagnostics(problem: Problem, est: ImportanceEstimate) -> tuple[float, float, list[str]]:
    """Union bounds and warnings of an IS estimate.

    With no failed channel allowed the module fails on the union of its channel events
    (every channel under every condition), so max_e P_e ≤ P_f ≤ Σ_e P_e, P_e the IS
    estimates of the events (``channel_fail_fraction``; NaN bounds when channels may fail).
    Warnings: events whose design-point search did not converge (their regions are then
    sampled only by chance, the failure mode that biased the random-start search low),
    an estimate outside the bounds, and an estimate more than a factor 10 away from the
    FORM union bounds max_k Φ(−β_k) … Σ_k Φ(−β_k) of the design points (a strongly curved
    or missed failure region).
    """
    from scipy.stats import norm

    notes = []
    pf = est.failure_probability
    if int(problem.params["spec.max_failed_channels"][0]) == 0:
        per_event = np.asarray(est.channel_fail, dtype=np.float64).reshape(-1)
        low, high = float(per_event.max()), float(min(1.0, per_event.sum()))
        if not low * (1 - 1e-9) <= pf <= high * (1 + 1e-9):
            notes.append(f"the estimate {pf:.3g} leaves the union bounds [{low:.3g}, {high:.3g}] of its "
                         "per-event estimates")
    else:
        low = high = float("nan")
    d = est.design
    if d.events and d.events_found < d.events:
        notes.append(f"{d.events - d.events_found} of {d.events} channel events have no converged design point; "
                     "their failure regions are sampled only by chance (the estimate may be low)")
    form = norm.sf(d.beta)
    if len(form) and not (form.max() / 10 <= pf <= 10 * form.sum()):
        notes.append(f"the estimate {pf:.3g} is more than a factor 10 from the FORM union bounds "
                     f"[{form.max():.3g}, {form.sum():.3g}] of the design points")
    return low, high, notes


#: ``is.method``: the design-point mixture (falling back to subset simulation), or subset
#: simulation alone.
METHODS = ("mixture", "subset")
SUBSET_INTERVAL = "Student t, 95 %, over independent subset-simulation replicas (Au & Beck 2001)"


def subset_estimate(problem: Problem, *, fallback: bool) -> Estimate:
    """The subset-simulation estimate (:func:`yieldmc.samplers.subset.replicated_subset_simulation`)
    as a dataset's variables: yield and P_f with the Student-t interval over the replicas
    (with no failure reached, [1 − upper bound, 1]); the per-channel and per-condition
    figures are not estimated (NaN)."""
    s = problem.static
    r = replicated_subset_simulation(problem)
    lc = (s.n_conditions, s.layers, s.channels)
    pf, se = r.failure_probability, r.se if r.failure_probability > 0 else 0.0
    nan = ImportanceEstimate(
        n_samples=r.evaluations, n_pass_proposal=0, failure_probability=pf,
        failure_probability_se=se, effective_sample_size=float("nan"),
        channel_fail=np.full(lc, np.nan), loss_mean=np.full(lc, np.nan),
        design=DesignPoints(np.zeros((0, random_dimension(s))), np.zeros(0)),
        conditions=np.full((s.n_conditions, 3), np.nan))
    variables = importance_variables(problem, nan)
    del variables["n_pass"]  # the chains' samples are not draws of p: no count to report
    low_attrs, high_attrs = variables["yield_ci_low"][2], variables["yield_ci_high"][2]
    if pf > 0:
        half = r.t95 * se
        variables["yield_ci_low"] = ((), max(0.0, 1.0 - (pf + half)), {
            **low_attrs, "long_name": "yield, lower end of the 95 % Student-t interval over the subset-simulation "
                                      "replicas"})
        variables["yield_ci_high"] = ((), min(1.0, 1.0 - (pf - half)), {
            **high_attrs, "long_name": "yield, upper end of the 95 % Student-t interval over the "
                                       "subset-simulation replicas"})
    else:
        variables["yield_ci_low"] = ((), 1.0 - r.upper, {
            **low_attrs, "long_name": "yield, lower end: no failure reached; Clopper-Pearson 0-of-N "
                                      "bound times the product of the level probabilities"})
        variables["yield_ci_high"] = ((), 1.0, high_attrs)
    for name in ("channel_fail_fraction", "loss_db_mean"):
        dims, values, attrs = variables[name]
        variables[name] = (dims, values, {**attrs, "long_name": f"{name} (not estimated by subset simulation)"})
    # the plain-MC sample count with the same standard error
    ess = pf * (1.0 - pf) / se**2 if se > 0 else float("nan")
    variables["effective_sample_size"] = ((), ess, {
        "units": "1", "long_name": "plain Monte-Carlo samples with the same standard error (subset simulation)"})
    nan_bound = {"units": "1", "long_name": "union bound (not estimated by subset simulation)"}
    variables["failure_probability_bound_low"] = ((), float("nan"), nan_bound)
    variables["failure_probability_bound_high"] = ((), float("nan"), nan_bound)
    notes = []
    acceptance = [a for run in r.runs for a in run.acceptance]
    if pf == 0.0:
        notes.append(f"subset simulation reached no failure in {max(len(x.thresholds) for x in r.runs)} levels; "
                     f"the failure probability is below {r.upper:.3g}")
    elif acceptance and min(acceptance) < 0.05:
        notes.append(f"subset simulation: the chains' acceptance fell to {min(acceptance):.3g}")
    attrs = {
        "is_method": "subset",
        "subset_replicas": len(r.runs),
        "subset_samples_per_level": int(r.runs[0].samples_per_level),
        "subset_levels": [len(x.thresholds) for x in r.runs],
        "subset_estimates": [float(x.failure_probability) for x in r.runs],
        "warnings": " | ".join(notes),
    }
    if fallback:
        attrs["sampler"] = "subset (fallback from is)"
        attrs["interval_method"] = SUBSET_INTERVAL
    return Estimate(problem, variables=variables, attrs=attrs)


class ImportanceSampler(Sampler):
    """Mixture proposal around the FORM design points; IS estimate of 1 − yield with its
    normal interval, or subset simulation (with a warning) when it degenerates."""

    description = "is (importance sampling)"
    keys = (Key("method", "str", "", "", "mixture (design-point mixture; subset simulation when none is found) "
                "| subset (subset simulation alone)", choices=tuple(METHODS), default="mixture"),)
    supports_sweep = False
    counts = False
    weighted_gradients = True  # rare-yield sensitivities through the mixture's weights

    def configure(self, config, *, samples, block_size):
        return config["is"]["method"]

    def tables(self, problem: Problem):
        if self.settings == "subset":  # no search: the proposal is p itself (the
            # blocks are not used by the estimate; a sensitivity gets plain draws, weights 1)
            return DesignPoints(np.zeros((0, random_dimension(problem.static))), np.zeros(0)).tables
        return design_points(problem).tables

    def draws(self, seed, block, static: Static, tables=None):
        return proposal_draws(seed, block, static, *tables)

    def weighted_draws(self, seed, block, static: Static, tables=None):
        u = proposal_draws(seed, block, static, *tables)
        return u, mixture_weights(u, *tables)

    def program(self, static: Static):
        return jax.jit(functools.partial(is_block_stats, static=static))

    def block_shapes(self, problem: Problem) -> dict:
        return block_shapes(problem)

    def estimate(self, problem: Problem, blocks, *, n_devices=None) -> Estimate:
        if self.settings == "subset":
            return subset_estimate(problem, fallback=False)
        design = design_points(problem)
        if len(design.beta) == 0:
            warn_fallback("no design point found")
            return subset_estimate(problem, fallback=True)
        est = importance_estimate(_in_block_order(blocks), problem.samples, design)
        if degenerate(est):
            warn_fallback(f"effective sample size of the failures {est.effective_sample_size:.3g} < {MIN_ESS:g}")
            return subset_estimate(problem, fallback=True)
        variables = importance_variables(problem, est)
        low, high, notes = union_diagnostics(problem, est)
        variables["failure_probability_bound_low"] = ((), low, {
            "units": "1", "long_name": "union lower bound max_e P_e over the channel events (IS estimates)"})
        variables["failure_probability_bound_high"] = ((), high, {
            "units": "1", "long_name": "union upper bound sum_e P_e over the channel events (IS estimates)"})
        for note in notes:
            warnings.warn(f"sampler=is: {note}", RuntimeWarning, stacklevel=2)
        return Estimate(problem, variables=variables, attrs={
            "is_method": "mixture",
            "is_design_points": int(len(est.design.beta)),
            "is_beta": [float(b) for b in est.design.beta],
            "is_events": int(est.design.events),
            "is_events_found": int(est.design.events_found),
            "warnings": " | ".join(notes),
        })

    def interval_method(self, problem: Problem) -> str:
        if self.settings == "subset":
            return SUBSET_INTERVAL
        return "normal, 95 %, from the IS standard error"


SAMPLER = ImportanceSampler()
