"""The engine driven by a :class:`Static` and parameters built by hand (no Hydra, no parse).

The problem is validation.channel_offset: independent lateral offsets per channel of a
butt-coupled module, yield = erf(r/(σ√2))^C. Its parameters are the package's own
values, read from the shipped YAML files with PyYAML alone, and the test's overrides; the
coupler and the sampler are bound by hand. The same numbers come out of the parse, bit
for bit, and the yield meets the closed form within 4.5 binomial standard errors.
"""

from __future__ import annotations

import math

import numpy as np
import yaml

from yieldmc import validation
from yieldmc.configuration.tree import CONF_DIR
from yieldmc.couplers import get_coupler
from yieldmc.engine.blocks import iterate_blocks
from yieldmc.engine.distributions import Normal
from yieldmc.engine.problem import Problem, Static
from yieldmc.samplers import get_sampler

SIGMA_UM, CHANNELS, SAMPLES = 0.6, 4, 16384


def _flat(node: dict, prefix: str) -> dict:
    out = {}
    for key, value in node.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[f"{prefix}{key}"] = float(value)
    return out


def _hand_built() -> Problem:
    """validation.channel_offset(sigma_um=SIGMA_UM, channels=CHANNELS) without the parse."""
    read = lambda name: yaml.safe_load((CONF_DIR / "package" / name).read_text())  # noqa: E731
    values = _flat({k: v for k, v in read("pwg50_12ch.yaml").items() if k != "defaults"}, "package.")
    values |= _flat(read("pwg/polysiloxane.yaml"), "package.pwg.")
    values |= _flat(read("coupler/butt.yaml"), "package.coupler.")
    for override in validation.channel_offset(sigma_um=SIGMA_UM, channels=CHANNELS).overrides:
        key, _, value = override.partition("=")
        if "." in key and key != "package.channels":
            values[key] = float(value)
    values["package.pwg.bend_radius_mm"] = 0.0  # null: straight
    for key in ("package.layers", "package.channels", "process.dx_um.channel.sigma"):
        values.pop(key, None)
    params = {k: np.array([v]) for k, v in values.items() if not k.startswith("package.coupler.kind")}
    for p, v in (("mean", 0.0), ("sigma", SIGMA_UM), ("low", -math.inf), ("high", math.inf)):
        params[f"process.dx_um.channel.{p}"] = np.array([v])
    static = Static(
        layers=1, channels=CHANNELS, coupler=get_coupler("butt").bind(()),
        sampler=get_sampler("mc").bind("mc"), active=(("dx_um", "channel", Normal()),), copula=(),
        block_size=4096, hist_bins=2000, hist_max_db=20.0, loss_unit_db=1e-4, dtype="float32",
        rng_impl="threefry2x32", alignment="passive", alignment_objective="worst", alignment_steps=0,
    )
    return Problem(static=static, params=params, sweep_keys=(), sweep_values=(), samples=SAMPLES, seed=3,
                   blocks_per_call=1, quantiles=(0.5,))


def _n_pass(problem: Problem) -> int:
    from yieldmc.io.results import dataset

    blocks = iterate_blocks(problem, range(problem.n_blocks))
    return int(dataset(problem.static.sampler.estimate(problem, blocks), "{}\n").n_pass)


def test_a_hand_built_static_runs_the_engine_and_meets_the_closed_form():
    problem = _hand_built()
    truth = validation.channel_offset(sigma_um=SIGMA_UM, channels=CHANNELS).expected_yield
    y = _n_pass(problem) / SAMPLES
    assert abs(y - truth) <= 4.5 * math.sqrt(truth * (1 - truth) / SAMPLES), (y, truth)


def test_the_parse_builds_the_same_static_and_the_same_counts():
    import yieldmc
    from yieldmc.io.config import problem_from_config

    hand = _hand_built()
    overrides = [*validation.channel_offset(sigma_um=SIGMA_UM, channels=CHANNELS).overrides,
                 f"samples={SAMPLES}", "seed=3", "engine.block_size=4096", "engine.blocks_per_call=1",
                 "engine.quantiles=[0.5]"]
    parsed = problem_from_config(yieldmc.compose(overrides))
    assert parsed.static == hand.static
    for key, value in hand.params.items():
        assert np.array_equal(parsed.params[key], value), key
    assert _n_pass(parsed) == _n_pass(hand)
