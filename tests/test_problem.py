"""Configuration validation before compilation (docs/configuration.md).

Every bad input — whether Hydra rejects it while composing (``yieldmc.compose``) or
``yieldmc.build_problem`` rejects the resolved values — must raise ``ValueError`` whose
message names the offending configuration key, so the CLI can print a one-line error.
Good inputs (every shipped package, the coupler group, ``process=none`` plus a variation
switched on without ``+``, a sweep) must build a :class:`yieldmc.Problem` whose static
fields reflect the configuration.

These tests only compose and validate: nothing is sampled and nothing is compiled.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import yieldmc
from yieldmc.engine.distributions import DISTRIBUTIONS, Normal, TruncNormal, Uniform
from yieldmc.configuration.parse import build_problem
from yieldmc.io.config import problem_from_config, to_container

SWEEP_2D = "sweep={process.dx_um.module.sigma:[0.25,0.5,1.0],process.dy_um.module.sigma:[0.1,0.2]}"


def config_dict(overrides=()) -> dict:
    """The resolved configuration as a plain dict, as the CLI would build it."""
    return to_container(yieldmc.compose(list(overrides)))


# ---------------------------------------------------------------------------------------
# Mutations of the resolved dict, for inputs no Hydra override can express (keys that
# Hydra's struct mode would refuse, values the override grammar cannot type).
# ---------------------------------------------------------------------------------------


def _add_level(cfg: dict) -> None:
    cfg["process"]["dx_um"]["wafer"] = dict(cfg["process"]["dx_um"]["module"], sigma=0.1)


def _add_quantity(cfg: dict) -> None:
    cfg["process"]["dz_um"] = copy.deepcopy(cfg["process"]["dx_um"])


def _add_param(cfg: dict) -> None:
    cfg["process"]["dx_um"]["module"]["sigmaa"] = 1.0


def _drop_level(cfg: dict) -> None:
    del cfg["process"]["dy_um"]["channel"]


def test_a_missing_variation_takes_the_declared_defaults():
    """A plain configuration without ``process.dy_um.channel`` builds the problem of one
    that declares it with the schema's defaults (normal, mean 0, sigma 0: no draw)."""
    full = config_dict(["process=none", "process.dx_um.module.sigma=0.5"])
    cut = config_dict(["process=none", "process.dx_um.module.sigma=0.5"])
    _drop_level(cut)
    a, b = build_problem(full), build_problem(cut)
    assert a.static == b.static and a.params.keys() == b.params.keys()
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)


def _coupler_kind(cfg: dict) -> None:
    cfg["package"]["coupler"]["kind"] = "grating"


def _uniform_infinite(cfg: dict) -> None:
    node = cfg["process"]["dx_um"]["module"]
    node.update(distribution="uniform", low=float("-inf"), high=float("inf"))


def _sigma_inf(cfg: dict) -> None:
    cfg["process"]["dx_um"]["module"]["sigma"] = float("inf")


def _sigma_nan(cfg: dict) -> None:
    cfg["process"]["dx_um"]["module"]["sigma"] = float("nan")


def _samples_bool(cfg: dict) -> None:
    cfg["samples"] = True


# (id, overrides, mutation of the resolved dict or None, key the message must name)
BAD_INPUTS: list[tuple[str, list[str], Callable[[dict], None] | None, str]] = [
    # --- wrong keys (rejected by Hydra while composing) ---
    ("misspelt-param", ["process.dx_um.module.sigmaa=1"], None, "sigmaa"),
    ("misspelt-package-key", ["package.pich_um=3"], None, "pich_um"),
    ("unknown-top-level", ["samplez=10"], None, "samplez"),
    # --- wrong keys in a plain dict (build_problem alone) ---
    ("dict-unknown-param", [], _add_param, "process.dx_um.module.sigmaa"),
    ("dict-unknown-level", [], _add_level, "process.dx_um.wafer"),
    ("dict-unknown-quantity", [], _add_quantity, "process.dz_um"),
    # --- variation parameters ---
    ("negative-sigma", ["process.dx_um.module.sigma=-0.1"], None, "process.dx_um.module.sigma"),
    ("negative-sigma-lognormal",
     ["process.dn_core.module.distribution=lognormal", "process.dn_core.module.sigma=-1"],
     None, "process.dn_core.module.sigma"),
    ("infinite-sigma", [], _sigma_inf, "process.dx_um.module.sigma"),
    ("nan-sigma", [], _sigma_nan, "process.dx_um.module.sigma"),
    ("low-above-high", ["process.gap_um.layer.low=2", "process.gap_um.layer.high=1"], None,
     "process.gap_um.layer.low"),
    ("unknown-distribution", ["process.yaw_mrad.module.distribution=cauchy"], None,
     "process.yaw_mrad.module.distribution"),
    ("uniform-infinite-bounds", [], _uniform_infinite, "process.dx_um.module"),
    ("uniform-default-bounds", ["process.dy_um.channel.distribution=uniform"], None,
     "process.dy_um.channel"),
    # Only `high` is infinite here, so `high` is the key to name.
    ("uniform-infinite-high",
     ["process.dx_um.module.distribution=uniform", "process.dx_um.module.low=-1"], None,
     "process.dx_um.module.high"),
    # --- correlation (Gaussian copula) ---
    ("corr-not-positive-definite",
     ["process.correlation.quantities=[dx_um,dy_um,gap_um]",
      "process.correlation.matrix=[[1,0.9,-0.9],[0.9,1,0.9],[-0.9,0.9,1]]"],
     None, "process.correlation.matrix"),
    ("corr-singular",
     ["process.correlation.quantities=[dx_um,dy_um]", "process.correlation.matrix=[[1,1],[1,1]]"],
     None, "process.correlation.matrix"),
    ("corr-not-symmetric",
     ["process.correlation.quantities=[dx_um,dy_um]", "process.correlation.matrix=[[1,0.5],[0.2,1]]"],
     None, "process.correlation.matrix"),
    ("corr-wrong-size",
     ["process.correlation.quantities=[dx_um,dy_um]",
      "process.correlation.matrix=[[1,0,0],[0,1,0],[0,0,1]]"],
     None, "process.correlation.matrix"),
    ("corr-non-unit-diagonal",
     ["process.correlation.quantities=[dx_um,dy_um]", "process.correlation.matrix=[[2,0.5],[0.5,1]]"],
     None, "process.correlation.matrix"),
    ("corr-unknown-quantity",
     ["process.correlation.quantities=[dx_um,dz_um]", "process.correlation.matrix=[[1,0.5],[0.5,1]]"],
     None, "process.correlation.quantities"),
    ("corr-duplicate-quantity",
     ["process.correlation.quantities=[dx_um,dx_um]", "process.correlation.matrix=[[1,0],[0,1]]"],
     None, "process.correlation.quantities"),
    # --- run size and seed ---
    ("zero-samples", ["samples=0"], None, "samples"),
    ("negative-samples", ["samples=-5"], None, "samples"),
    ("non-integer-samples", ["samples=1.5"], None, "samples"),
    ("string-samples", ["samples=many"], None, "samples"),
    ("bool-samples", [], _samples_bool, "samples"),
    ("negative-seed", ["seed=-1"], None, "seed"),
    ("non-integer-seed", ["seed=0.5"], None, "seed"),
    # --- sweep ---
    ("sweep-unknown-key", ["sweep={process.dx_um.module.sigmo:[1,2]}"], None,
     "process.dx_um.module.sigmo"),
    ("sweep-not-sweepable", ["sweep={package.channels:[12,32]}"], None, "package.channels"),
    ("sweep-model-not-sweepable", ["sweep={package.coupler.model:[cmt,landau_zener]}"], None,
     "package.coupler.model"),
    ("sweep-negative-sigma-at-one-point", ["sweep={process.dx_um.module.sigma:[0.5,-1]}"], None,
     "process.dx_um.module.sigma"),
    ("sweep-low-above-high-at-one-point",
     ["process.gap_um.layer.high=1", "sweep={process.gap_um.layer.low:[0,2]}"], None,
     "process.gap_um.layer.low"),
    ("sweep-empty-values", ["sweep={process.dx_um.module.sigma:[]}"], None,
     "process.dx_um.module.sigma"),
    ("sweep-non-numeric-values", ["sweep={process.dx_um.module.sigma:[a,b]}"], None,
     "process.dx_um.module.sigma"),
    ("sweep-not-a-mapping", ["sweep=[1,2]"], None, "sweep"),
    # --- package ---
    ("dict-unknown-coupler-kind", [], _coupler_kind, "package.coupler.kind"),
    ("n-core-below-n-clad", ["package.pwg.n_core=1.5"], None, "package.pwg.n_core"),
    ("n-core-equal-n-clad", ["package.pwg.n_core=1.55"], None, "package.pwg.n_core"),
    ("zero-core-width", ["package.pwg.core_width_um=0"], None, "package.pwg.core_width_um"),
    ("negative-core-thickness", ["package.pwg.core_thickness_um=-1"], None,
     "package.pwg.core_thickness_um"),
    ("zero-wavelength", ["package.wavelength_um=0"], None, "package.wavelength_um"),
    ("zero-pitch", ["package.pitch_um=0"], None, "package.pitch_um"),
    ("negative-pwg-loss", ["package.pwg.loss_db_per_cm=-1"], None, "package.pwg.loss_db_per_cm"),
    ("zero-channels", ["package.channels=0"], None, "package.channels"),
    ("zero-layers", ["package.layers=0"], None, "package.layers"),
    ("non-integer-channels", ["package.channels=1.5"], None, "package.channels"),
    ("negative-taper-length", ["package.coupler.taper_length_um=-100"], None,
     "package.coupler.taper_length_um"),
    ("negative-kappa", ["package.coupler.kappa_per_um=-0.001"], None, "package.coupler.kappa_per_um"),
    ("unknown-adiabatic-model", ["package.coupler.model=magic"], None, "package.coupler.model"),
    ("zero-segments", ["package.coupler.segments=0"], None, "package.coupler.segments"),
    ("n-gap-above-cladding", ["package.coupler.n_gap=1.6"], None, "package.coupler.n_gap"),
    ("butt-zero-mode-radius", ["package/coupler=butt", "package.coupler.mode_radius_x_um=0"], None,
     "package.coupler.mode_radius_x_um"),
    ("butt-negative-gap", ["package/coupler=butt", "package.coupler.gap_um=-1"], None,
     "package.coupler.gap_um"),
    ("butt-zero-n-chip", ["package/coupler=butt", "package.coupler.n_chip=0"], None,
     "package.coupler.n_chip"),
    # --- engine and spec ---
    ("bogus-dtype", ["engine.dtype=float16x"], None, "engine.dtype"),
    ("bogus-rng", ["engine.rng_impl=mersenne"], None, "engine.rng_impl"),
    ("block-beyond-the-rng-counter",  # 16 395 random dimensions x 2^21 modules >= 2^32
     ["package=pwg18_4x32ch", "package.channels=1024", "engine.block_size=2097152",
      "engine.blocks_per_call=1"], None, "engine.block_size"),
    ("block-beyond-int32-sums", ["engine.block_size=1000000000000"], None, "engine.block_size"),
    ("blocks-per-call-times-block", ["engine.block_size=1000000"], None, "8 x 1000000"),
    ("quantile-out-of-range", ["engine.quantiles=[0.5,1.0]"], None, "engine.quantiles"),
    ("negative-max-failed", ["spec.max_failed_channels=-1"], None, "spec.max_failed_channels"),
    ("non-integer-max-failed", ["spec.max_failed_channels=0.5"], None, "spec.max_failed_channels"),
    ("string-max-loss", ["spec.max_loss_db=high"], None, "spec.max_loss_db"),
]


@pytest.mark.parametrize(
    "overrides, mutate, key",
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
def test_bad_input_raises_value_error_naming_the_key(overrides, mutate, key):
    with pytest.raises(ValueError) as info:
        cfg = config_dict(overrides)
        if mutate is not None:
            mutate(cfg)
        yieldmc.build_problem(cfg)
    message = str(info.value)
    assert key in message, f"message does not name {key!r}: {message!r}"
    assert "\n" not in message, f"not a one-line message: {message!r}"


def test_build_problem_does_not_modify_its_input():
    cfg = config_dict([SWEEP_2D])
    before = copy.deepcopy(cfg)
    yieldmc.build_problem(cfg)
    assert cfg == before


# ---------------------------------------------------------------------------------------
# Good inputs
# ---------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides, layers, channels, kind",
    [
        ([], 1, 12, "adiabatic"),
        (["package=pwg50_12ch"], 1, 12, "adiabatic"),
        (["package=pwg18_32ch"], 1, 32, "adiabatic"),
        (["package=pwg18_4x32ch"], 4, 32, "butt"),
        (["package/coupler=butt"], 1, 12, "butt"),
        (["package=pwg18_32ch", "package/coupler=butt"], 1, 32, "butt"),
    ],
    ids=["default", "pwg50_12ch", "pwg18_32ch", "pwg18_4x32ch", "coupler=butt", "pwg18_32ch+butt"],
)
def test_shipped_configurations_build(overrides, layers, channels, kind):
    problem = problem_from_config(yieldmc.compose(overrides))
    assert isinstance(problem, yieldmc.Problem)
    static = problem.static
    assert (static.layers, static.channels, static.coupler.name) == (layers, channels, kind)
    assert static.coupler.settings == (("cmt", 64, True, "si_strip", "piecewise", ((0.1, 0.17),))
                                       if kind == "adiabatic" else ())
    assert problem.sweep_keys == () and problem.n_points == 1
    # No sweep: every traced parameter is an array over one grid point.
    assert all(v.shape[0] == 1 for v in problem.params.values())
    # The nominal process varies things.
    assert static.active


def test_default_matches_config_yaml():
    """The default run: 1e6 samples, seed 0, the nominal process, float32, no copula."""
    problem = problem_from_config(yieldmc.compose())
    assert problem.samples == 1_000_000 and problem.seed == 0
    assert problem.static.dtype == "float32"
    assert problem.static.copula == ()
    assert problem.quantiles == (0.5, 0.9, 0.99)
    assert float(problem.params["process.dx_um.module.sigma"][0]) == 0.7
    assert float(problem.params["spec.max_loss_db"][0]) == 1.5


def test_distributions_are_value_objects():
    """Families are frozen, value-equal, hashable and ordered (parts of a jit static
    argument and of pytree dict keys); their names and parameters are the configuration's."""
    assert Normal() == Normal() and hash(Normal()) == hash(Normal()) and Normal() != Uniform()
    assert str(TruncNormal()) == "truncnormal" and sorted([Uniform(), Normal()]) == [Normal(), Uniform()]
    assert {name: cls.params for name, cls in DISTRIBUTIONS.items()} == {
        "normal": ("mean", "sigma"), "truncnormal": ("mean", "sigma", "low", "high"),
        "uniform": ("low", "high"), "lognormal": ("mean", "sigma"), "empirical": (),
        "shiftedlognormal": ("mean", "sigma", "low")}
    with pytest.raises(AttributeError):
        Normal().name = "uniform"


def test_shifted_lognormal_has_its_mean_sigma_and_floor():
    """The one-sided family against scipy's three-parameter lognormal: the draw's mean and
    standard deviation are the configured ones (scipy's moments), its quantiles are scipy's
    at Φ(z), the density integrates to 1 and is scipy's, nothing falls below ``low``."""
    from scipy import stats

    dist = DISTRIBUTIONS["shiftedlognormal"]()
    mean, sigma, low = 0.05, 0.15, -0.3
    s = math.sqrt(math.log1p((sigma / (mean - low)) ** 2))
    ref = stats.lognorm(s, loc=low, scale=(mean - low) / math.sqrt(1 + (sigma / (mean - low)) ** 2))
    assert ref.mean() == pytest.approx(mean, abs=1e-12) and ref.std() == pytest.approx(sigma, rel=1e-12)
    z = np.linspace(-6.0, 6.0, 13)
    x = np.asarray(dist.transform(jnp.asarray(z), mean=mean, sigma=sigma, low=low, high=math.inf))
    np.testing.assert_allclose(x, ref.ppf(stats.norm.cdf(z)), rtol=1e-6)
    assert np.all(x > low)
    grid = np.linspace(low + 1e-9, 3.0, 200_001)
    logp = np.asarray(dist.log_density(jnp.asarray(grid), mean=mean, sigma=sigma, low=low, high=math.inf))
    pdf = np.exp(logp) / math.sqrt(2 * math.pi)  # log_density drops the 2π constant
    np.testing.assert_allclose(pdf[1000::20000], ref.pdf(grid[1000::20000]), rtol=1e-6)
    assert np.trapezoid(pdf, grid) == pytest.approx(1.0, abs=1e-6)
    # sigma = 0 draws the mean, with a finite gradient; all-zero parameters (a condition
    # that lacks this drift, masked out) are finite
    f = lambda sg: dist.transform(jnp.asarray(0.7), mean=mean, sigma=sg, low=low, high=math.inf)  # noqa: E731
    assert float(f(0.0)) == pytest.approx(mean, abs=1e-12)
    assert float(jax.grad(f)(0.0)) == pytest.approx(0.7, rel=1e-9)  # d/dσ at 0: z
    assert float(dist.transform(jnp.asarray(1.0), mean=0.0, sigma=0.0, low=0.0, high=0.0)) == 0.0
    for bad in ({"mean": -0.3}, {"low": -math.inf}):
        with pytest.raises(ValueError, match="shiftedlognormal"):
            dist.validate("process.gap_um.module", {**dict(mean=mean, sigma=sigma, low=low, high=math.inf), **bad})


def test_process_none_has_no_active_variation():
    problem = problem_from_config(yieldmc.compose(["process=none"]))
    assert problem.static.active == ()


def test_variation_switched_on_without_plus():
    """`process=none process.dx_um.channel.sigma=0.3` works: every quantity × level exists."""
    problem = problem_from_config(yieldmc.compose(["process=none", "process.dx_um.channel.sigma=0.3"]))
    assert problem.static.active == (("dx_um", "channel", Normal()),)
    assert float(problem.params["process.dx_um.channel.sigma"][0]) == 0.3


def test_valid_uniform_and_copula_build():
    problem = problem_from_config(yieldmc.compose([
        "process=none",
        "process.dx_um.module.distribution=uniform",
        "process.dx_um.module.low=-1",
        "process.dx_um.module.high=1",
        "process.dy_um.module.sigma=0.2",
        "process.correlation.quantities=[dx_um,dy_um]",
        "process.correlation.matrix=[[1,0.5],[0.5,1]]",
    ]))
    assert problem.static.copula == ("dx_um", "dy_um")
    assert ("dx_um", "module", Uniform()) in problem.static.active
    assert ("dy_um", "module", Normal()) in problem.static.active


def test_samples_in_scientific_notation():
    """`samples=1e6` parses as a float; an integral value is accepted."""
    assert problem_from_config(yieldmc.compose(["samples=1e6"])).samples == 1_000_000


def test_two_key_sweep_grid():
    problem = problem_from_config(yieldmc.compose([SWEEP_2D]))
    assert problem.sweep_keys == ("process.dx_um.module.sigma", "process.dy_um.module.sigma")
    assert problem.sweep_values == ((0.25, 0.5, 1.0), (0.1, 0.2))
    assert problem.n_points == 6
    assert problem.sweep_shape == (3, 2)
    # Swept values are traced parameters over the flattened grid (first key slowest).
    dx = problem.params["process.dx_um.module.sigma"]
    dy = problem.params["process.dy_um.module.sigma"]
    assert dx.tolist() == [0.25, 0.25, 0.5, 0.5, 1.0, 1.0]
    assert dy.tolist() == [0.1, 0.2, 0.1, 0.2, 0.1, 0.2]
    # An unswept parameter is repeated at every point.
    assert problem.params["process.gap_um.module.sigma"].tolist() == [0.15] * 6
