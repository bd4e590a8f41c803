"""The result variables of model uncertainty (README.md, "Model uncertainty").

A run with ``uncertain`` inputs has a leading ``realization`` dimension (one yield per
outer realisation of the uncertain values, all on the same module draws). From it, per
sweep point (and per condition, as ``condition_…`` variables, where conditions are given):
the band over ``band_quantile`` with its distribution-free interval, the expected
(predictive) yield, the inner Monte-Carlo error beside the band, and each uncertain input's
first-order variance share (:mod:`yieldmc.engine.uncertainty`).
"""

from __future__ import annotations

import numpy as np

from yieldmc.engine import uncertainty as est
from yieldmc.engine.problem import REALIZATION, Problem

#: z of the two-sided 95 % interval: a yield interval's half-width / Z95 is its standard error.
Z95 = 1.959963984540054
#: The warning threshold: the inner Monte-Carlo error against the band's 5–95 % width.
INNER_SHARE = 0.1


def coords(problem: Problem, config: dict) -> dict:
    """``realization``, ``band_quantile`` and ``uncertain`` (labelled by config key, with
    each key's unit as ``uncertain_units``); empty without uncertain inputs."""
    if not problem.uncertain:
        return {}
    from yieldmc.io.units import key_units

    n = len(problem.uncertain_values)
    return {
        REALIZATION: (REALIZATION, np.arange(n, dtype=np.int64), {"long_name": "outer realisation of the uncertain values"}),
        "band_quantile": ("band_quantile", np.asarray(est.BAND_QUANTILES),
                          {"units": "1", "long_name": "probability over the uncertain values"}),
        "uncertain": ("uncertain", np.array(problem.uncertain, dtype=object), {"long_name": "uncertain config key"}),
        "uncertain_units": ("uncertain", np.array([key_units(config, k) or "" for k in problem.uncertain], dtype=object),
                            {"long_name": "unit of the uncertain value"}),
    }


def variables(problem: Problem, data: dict) -> tuple[dict, list[str]]:
    """The uncertainty variables from the count variables ``data`` (name → (dims, values,
    attrs), ``realization`` the first dimension) and the warnings, one line each."""
    if not problem.uncertain:
        return {}, []
    x = problem.uncertain_values
    out = {"uncertain_value": ((REALIZATION, "uncertain"), x, {
        "long_name": "the uncertain values of each realisation (units: uncertain_units)"})}
    warnings = []
    dims, y, _ = data["yield"]
    rest = list(dims[1:])
    low, high = np.asarray(data["yield_ci_low"][1]), np.asarray(data["yield_ci_high"][1])
    inner = (high - low) / (2 * Z95)  # each realisation's inner standard error
    out["yield_realization"] = (list(dims), y, {
        "units": "1", "long_name": "yield of each realisation of the uncertain values (same modules)"})
    out.update(_summaries("", "yield", np.asarray(y, dtype=np.float64), inner, x, rest))
    band = out["yield_band"][1]
    inner_rms = out["yield_inner_se"][1]
    width = band[-1] - band[0]
    noisy = np.asarray(inner_rms > INNER_SHARE * width)
    if noisy.any():
        warnings.append(f"the inner Monte-Carlo error of the yield (up to {float(np.nanmax(inner_rms)):.2g}) is not "
                        f"small against the band's 5-95 % width (down to {float(np.nanmin(width)):.2g}) at "
                        f"{int(noisy.sum())} of {noisy.size} points: raise samples")
    warnings += aliased(problem)
    if "condition_yield" in data:
        cdims, cy, _ = data["condition_yield"]
        n = np.asarray(data["n_samples"][1], dtype=np.float64)[..., None]
        cy = np.asarray(cy, dtype=np.float64)
        cinner = np.sqrt(np.clip(cy * (1 - cy), 0, None) / n)  # binomial standard error
        out.update(_summaries("condition_", "condition_yield", cy, cinner, x, list(cdims[1:])))
    return out, warnings


def aliased(problem: Problem) -> list[str]:
    """A warning per pair of uncertain inputs paired rigidly in the realisations: in the
    bins of the importance estimator (M per input), each bin of one meets at most two bins
    of the other (2M of the M² cells occupied, where independent pairing occupies about
    M²(1 − e^(−R/M²)), 40 of 64 at R = 64): their shares cannot be told apart (a Sobol' set
    of few points pairs some dimensions so)."""
    x = problem.uncertain_values
    n, m = x.shape[0], est.bins(x.shape[0])
    if m * m * -np.expm1(-n / (m * m)) < 3 * m:  # too few realisations for independent pairs
        return []  # to occupy clearly more cells than a rigid pairing: nothing can be told
    bins = (np.argsort(np.argsort(x, axis=0, kind="stable"), axis=0) * m) // n
    out = []
    for j in range(x.shape[1]):
        for k in range(j + 1, x.shape[1]):
            if len(set(zip(bins[:, j], bins[:, k]))) <= 2 * m:
                out.append(f"uncertain inputs {problem.uncertain[j]} and {problem.uncertain[k]} are aliased in the "
                           f"{n} realisations (paired rigidly): their uncertain_importance cannot be told apart; use "
                           "more realisations (with uncertainty.sampling=sobol: lhs)")
    return out


def _summaries(prefix: str, what: str, y, inner, x, rest: list) -> dict:
    """Band, its interval, expected value, inner error and importance of yields ``y``
    (R, …) with inner standard errors ``inner`` (R, …)."""
    r = y.shape[0]
    band = est.band(y)
    low, high = est.band_interval(y)
    expected = y.mean(axis=0)
    inner_rms = np.sqrt((inner ** 2).mean(axis=0))
    outer_se = y.std(axis=0, ddof=1) / np.sqrt(r)
    s, se = est.first_order(x, y)
    bq = ["band_quantile", *rest]
    return {
        f"{prefix}yield_band": (bq, band, {
            "units": "1", "long_name": f"quantile of {what} over the uncertain values (realisations)"}),
        f"{prefix}yield_band_ci_low": (bq, low, {
            "units": "1", "long_name": f"{prefix}yield_band, lower end of its 95 % order-statistic interval"}),
        f"{prefix}yield_band_ci_high": (bq, high, {
            "units": "1", "long_name": f"{prefix}yield_band, upper end of its 95 % order-statistic interval"}),
        f"{prefix}yield_expected": (rest, expected, {
            "units": "1", "long_name": f"{what} averaged over the uncertain values (predictive yield)"}),
        f"{prefix}yield_expected_se": (rest, np.sqrt(outer_se ** 2 + inner_rms ** 2), {
            "units": "1", "long_name": f"standard error of {prefix}yield_expected (outer spread / sqrt(R), "
                                       "with the inner Monte-Carlo error)"}),
        f"{prefix}yield_inner_se": (rest, inner_rms, {
            "units": "1", "long_name": f"inner Monte-Carlo standard error of {what} (rms over the realisations)"}),
        f"{prefix}uncertain_importance": (["uncertain", *rest], s, {
            "units": "1", "long_name": f"first-order variance share of {what} due to the uncertain value "
                                       "(given-data correlation ratio)"}),
        f"{prefix}uncertain_importance_se": (["uncertain", *rest], se, {
            "units": "1", "long_name": f"{prefix}uncertain_importance, bootstrap standard error"}),
    }
