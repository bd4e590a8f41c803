"""Empirical distributions (docs/physics.md): ``distribution: empirical`` with
``values`` or ``values_file``, sampled by the Hazen quantile of Φ(z) inside the engine.

* the quantile transform against numpy's ``quantile(method="hazen")`` in float64;
* the table is part of the static settings: equal tables share a compiled program, a
  different table does not;
* runs against closed forms: a table of normal quantiles at the channel level (the
  binomial of erf), an equally spaced table at the module level (the exact measure of
  |x| <= r under the piecewise-linear quantile function, ends included);
* the Gaussian copula still ties a module-level empirical quantity to a normal one (the
  rank correlation of the engine's draws is Moran's E r_s);
* bad input: one line naming the key (build_problem), exit code 2 from the command.
"""

from __future__ import annotations

import math
import os
import pickle
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

import warm_process
import yieldmc
from yieldmc import validation
from yieldmc.configuration.parse import build_problem
from yieldmc.engine.distributions import DISTRIBUTIONS, Empirical, Normal, empirical_quantile
from yieldmc.io.config import compose, to_container

ENGINE = ["engine.block_size=2048", "engine.blocks_per_call=4"]


def config_dict(overrides=()) -> dict:
    return to_container(compose(list(overrides)))


def empirical(level: str, quantity: str = "dx_um", **table) -> list[str]:
    """Overrides making ``process.<quantity>.<level>`` empirical with ``values``/``values_file``."""
    base = f"process.{quantity}.{level}"
    out = [f"{base}.distribution=empirical"]
    if "values" in table:
        out.append(f"{base}.values=[{','.join(repr(float(v)) for v in table['values'])}]")
    if "values_file" in table:
        out.append(f"{base}.values_file={table['values_file']}")
    return out


def offset_radius_um(max_loss_db: float = 0.3) -> float:
    """|dx| <= r passes (validation problems: loss = (10/ln 10)·dx²/w_x²)."""
    w_x, _ = validation.pwg_mode_radii_um()
    return w_x * math.sqrt(max_loss_db / validation.DB_PER_NEPER_POWER)


def piecewise_cdf(x, table) -> float:
    """P(Q(U) <= x) under the Hazen quantile function of ``table`` (sorted; atoms of 1/(2n)
    at both ends): the inverse of the piecewise-linear Q, interpolated."""
    table = np.sort(np.asarray(table, dtype=float))
    n = table.size
    if x < table[0]:
        return 0.0
    if x >= table[-1]:
        return 1.0
    p = (np.arange(1, n + 1) - 0.5) / n
    return float(np.interp(x, table, p))


# ---------------------------------------------------------------------------------------
# The quantile transform
# ---------------------------------------------------------------------------------------

def test_quantile_is_numpys_hazen_in_float64():
    rng = np.random.default_rng(3)
    sample = np.concatenate([rng.lognormal(0.0, 0.7, 57), [1.0, 1.0, 1.0]])  # skewed, with ties
    table = Empirical(sample)
    assert table.values == tuple(np.sort(sample))
    z = np.concatenate([np.linspace(-6.0, 6.0, 2001), [-0.0, 0.0, 1e-9, -1e-9]])
    u = special.ndtr(z)
    got = np.asarray(empirical_quantile(jnp.asarray(z, jnp.float64), table.values))
    want = np.quantile(sample, u, method="hazen")
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    also = stats.mstats.mquantiles(sample, prob=u[(u > 0.5 / 60) & (u < 1 - 0.5 / 60)], alphap=0.5, betap=0.5)
    np.testing.assert_allclose(got[(u > 0.5 / 60) & (u < 1 - 0.5 / 60)], also, rtol=1e-12)
    # through the distribution's transform, mean/sigma/low/high not read
    via = table.transform(jnp.asarray(z), mean=5.0, sigma=7.0, low=-1.0, high=1.0)
    np.testing.assert_array_equal(np.asarray(via), got)


@pytest.mark.slow
def test_quantile_ends_mean_float32_and_slope():
    values = np.array([-1.0, 0.0, 0.5, 2.0])
    table = Empirical(values).values
    n = len(values)
    # flat beyond the Hazen ends p_1 = 1/8, p_n = 7/8; linear between
    z_end = special.ndtri(0.5 / n)
    z, want = zip((-8.0, -1.0), (z_end - 0.3, -1.0), (8.0, 2.0), (-z_end + 0.3, 2.0),
                  (special.ndtri(0.25), -0.5), (0.0, 0.25))
    np.testing.assert_allclose(np.asarray(empirical_quantile(jnp.asarray(z), table)), want, atol=1e-12)
    # the mean of the draw is the sample mean (1/n per value, spread half-way to its
    # neighbours): the midpoint rule is exact on each linear piece, O(1/N²) at the kinks
    u = (np.arange(40_000) + 0.5) / 40_000
    q = np.asarray(empirical_quantile(jnp.asarray(special.ndtri(u)), table))
    assert q.mean() == pytest.approx(values.mean(), abs=1e-8)
    # float32: same values to float32 precision, also in the upper tail
    z = np.linspace(-3.0, 3.0, 601)
    got32 = np.asarray(empirical_quantile(jnp.asarray(z, jnp.float32), table))
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, np.quantile(values, special.ndtr(z), method="hazen"), atol=2e-6)
    # slope dQ/dz = n·φ(z)·Δx inside a segment, 0 beyond the ends
    grad = jax.grad(lambda s: empirical_quantile(s, table))
    assert float(grad(jnp.float64(0.0))) == pytest.approx(n * stats.norm.pdf(0.0) * 0.5, rel=1e-12)
    assert float(grad(jnp.float64(-8.0))) == 0.0


def test_table_is_static_and_hashable():
    """Equal tables: equal Static (one compiled program); another table: another Static."""
    a = Empirical([0.3, -0.1, 0.2])
    assert str(a) == "empirical" and DISTRIBUTIONS["empirical"] is Empirical and a.params == ()
    assert a != Normal() and not a.scored and not a.parametric
    assert a == Empirical([-0.1, 0.2, 0.3]) and a != Empirical([-0.1, 0.2, 0.31])
    assert hash(a) == hash(Empirical([-0.1, 0.2, 0.3]))
    assert pickle.loads(pickle.dumps(a)) == a and pickle.loads(pickle.dumps(a)).values == a.values
    base = ["process=none", *empirical("module", values=[0.3, -0.1, 0.2])]
    s1 = build_problem(config_dict(base)).static
    s2 = build_problem(config_dict(base)).static
    s3 = build_problem(config_dict(["process=none", *empirical("module", values=[0.3, -0.1, 0.25])])).static
    assert s1 == s2 and hash(s1) == hash(s2)
    assert s1 != s3
    assert pickle.loads(pickle.dumps(s1)) == s1
    (q, lv, dist), = s1.active
    assert (q, lv) == ("dx_um", "module") and isinstance(dist, Empirical)
    # a table of zeros draws nothing: not active
    assert build_problem(config_dict(["process=none", *empirical("layer", values=[0.0, 0.0])])).static.active == ()


# ---------------------------------------------------------------------------------------
# Runs against closed forms
# ---------------------------------------------------------------------------------------

@pytest.mark.slow
def test_channel_level_normal_quantiles_give_the_closed_form(tmp_path, monkeypatch):
    """A file of n normal quantiles σ·Φ⁻¹((i − ½)/n) (a 'perfect' normal sample, so the
    table adds no sampling error of its own) at the channel level: the yield is the
    binomial p^C of :func:`yieldmc.validation.channel_offset`. The piecewise-linear
    quantile function moves p by < 1e-6 here (checked), far below the binomial error.
    Read by a path relative to the working directory, with a header and a comment."""
    sigma, n_values, samples = 0.5, 4001, 30_000
    table = sigma * special.ndtri((np.arange(1, n_values + 1) - 0.5) / n_values)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "metrology").mkdir()
    (tmp_path / "metrology" / "dx.csv").write_text(
        "# channel placement, µm\ndx_um\n" + "\n".join(repr(float(x)) for x in table) + "\n")
    problem = validation.channel_offset(sigma_um=sigma)
    overrides = [o for o in problem.overrides if not o.startswith("process.dx_um.channel.sigma")]
    r = offset_radius_um()
    p_table = piecewise_cdf(r, table) - piecewise_cdf(-r, table)
    assert abs(p_table ** 12 - problem.expected_yield) < 1e-5
    ds = yieldmc.run(compose(overrides + empirical("channel", values_file="metrology/dx.csv") + ENGINE
                             + [f"samples={samples}", "seed=11"]))
    se = validation.binomial_standard_error(problem.expected_yield, samples)
    assert abs(float(ds["yield"]) - problem.expected_yield) <= 4.5 * se


@pytest.mark.slow
def test_module_level_equally_spaced_table_gives_the_exact_yield():
    """Values −a, …, a equally spaced (n = 5) at the module level. The Hazen quantile
    function is linear from (p_1, −a) to (p_n, a), p_1 = 1/(2n), p_n = 1 − 1/(2n), and flat
    beyond: the draw is uniform on [−a, a] with mass (n − 1)/n, plus atoms of 1/(2n) at
    ±a. A module passes iff |dx| <= r (r < a), so Y = (1 − 1/n)·r/a exactly — 0.48 for
    r/a = 0.6 (numpy's default 'linear' positions would give 0.6, Weibull's 0.4)."""
    r = offset_radius_um()
    n, a, samples = 5, offset_radius_um() / 0.6, 40_000
    values = np.linspace(-a, a, n)
    expected = (1 - 1 / n) * r / a
    assert expected == pytest.approx(piecewise_cdf(r, values) - piecewise_cdf(-r, values), abs=1e-12)
    overrides = [o for o in validation.module_offset().overrides if not o.startswith("process.dx_um.module.sigma")]
    ds = yieldmc.run(compose(overrides + empirical("module", values=values) + ENGINE
                             + [f"samples={samples}", "seed=5"]))
    se = validation.binomial_standard_error(expected, samples)
    assert abs(float(ds["yield"]) - expected) <= 4.5 * se, (float(ds["yield"]), expected, se)


def test_gaussian_copula_still_applies_to_an_empirical_quantity():
    """dx_um (module) empirical from a skewed table, dy_um (module) normal, correlation
    ρ = 0.9: the engine's draws (blocks.draw_block → split_draws → assemble_values) have
    the Gaussian copula's rank correlation. Per block of m modules Moran's
    E r_s = 6/(π(m+1))·(asin ρ + (m − 2)·asin(ρ/2)) (→ 6/π·asin(ρ/2) = 0.891); the mean over
    K independent blocks is compared with it within 4.5 of its standard error estimated
    from the K blocks (t with K − 1 = 15 degrees of freedom: P(|t| > 4.5) < 5e-4). The
    empirical draw is a monotone map of its copula-mixed z, so its ranks are those of z."""
    from yieldmc.engine.blocks import assemble_values, draw_block, split_draws

    rho, m, k = 0.9, 2048, 16
    table = np.random.default_rng(1).lognormal(0.0, 0.8, 500) - 1.0
    cfg = config_dict(["process=none", *empirical("module", values=table), "process.dy_um.module.sigma=1.0",
                       "process.correlation.quantities=[dx_um,dy_um]",
                       f"process.correlation.matrix=[[1,{rho}],[{rho},1]]",
                       f"engine.block_size={m}", "engine.dtype=float64", "samples=100"])
    problem = build_problem(cfg)
    static = problem.static
    params = {key: jnp.asarray(v[0]) for key, v in problem.params.items()}

    @jax.jit
    def draws(block):
        values = assemble_values(split_draws(draw_block(np.uint32(3), block, static), static), params, static)
        return values["dx_um"], values["dy_um"]

    r_s = []
    for b in range(k):
        dx, dy = (np.asarray(v).reshape(-1)[-m:] for v in draws(np.uint32(b)))
        assert dx.min() >= table.min() - 1e-12 and dx.max() <= table.max() + 1e-12  # nominal dx: 0
        r_s.append(stats.spearmanr(dx, dy).statistic)
    r_s = np.asarray(r_s)
    moran = 6 / (math.pi * (m + 1)) * (math.asin(rho) + (m - 2) * math.asin(rho / 2))
    se = r_s.std(ddof=1) / math.sqrt(k)
    assert abs(r_s.mean() - moran) <= 4.5 * se, (r_s.mean(), moran, se)
    assert abs(moran - 6 / math.pi * math.asin(rho / 2)) < 5e-4  # the finite-m correction is small


# ---------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------

def _refused(overrides) -> str:
    with pytest.raises(ValueError) as info:
        build_problem(config_dict(overrides))
    message = str(info.value)
    assert "\n" not in message, message
    return message


@pytest.mark.parametrize("content, fragment", [
    ("dx_um\n0.1\nabc\n0.3\n", "line 3: not a number"),
    ("0.1\nnan\n0.3\n", "must be finite"),
    ("0.1\ninf\n", "must be finite"),
    ("dx_um\n0.1\n", "at least 2 values, got 1"),
    ("", "at least 2 values, got 0"),
    ("0.1,0.2\n0.3,0.4\n", "expected one column"),
    ("0.1\n1e30\n", "line 2: too large for float32"),
])
def test_bad_files_are_refused_naming_the_key(tmp_path, content, fragment):
    path = tmp_path / "v.csv"
    path.write_text(content)
    message = _refused(["process=none", *empirical("channel", values_file=path)])
    assert message.startswith("process.dx_um.channel.values_file:") and fragment in message, message


@pytest.mark.parametrize("value, dtype, accepted", [
    ("1e30", "float32", False), ("-1e30", "float32", False), ("1e18", "float32", True),
    ("1e30", "float64", True), ("1e200", "float64", False),
])
def test_a_file_value_obeys_the_rule_of_the_same_value_in_the_config(tmp_path, value, dtype, accepted):
    """|x| <= sqrt(finfo(engine.dtype).max), in a values_file exactly as in the configuration."""
    path = tmp_path / "v.csv"
    path.write_text(f"0.1\n{value}\n")
    common = ["process=none", f"engine.dtype={dtype}"]
    for table in ({"values_file": path}, {"values": [0.1, float(value)]}):
        overrides = [*common, *empirical("channel", **table)]
        if accepted:
            build_problem(config_dict(overrides))
        else:
            key = "values_file" if "values_file" in table else "values"
            assert "too large" in _refused(overrides) and _refused(overrides).startswith(
                f"process.dx_um.channel.{key}:")


@pytest.mark.slow
def test_bad_tables_and_keys_are_refused_naming_the_key(tmp_path):
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00\x81garbage")
    good = tmp_path / "good.csv"
    good.write_text("1\n2\n")
    cases = [
        (["process=none", *empirical("module", values_file=tmp_path / "missing.csv")],
         "process.dx_um.module.values_file:", "no such file"),
        (["process=none", *empirical("module", values_file=tmp_path)], "process.dx_um.module.values_file:",
         "not a regular file"),
        (["process=none", *empirical("module", values_file=tmp_path / "bin.csv")],
         "process.dx_um.module.values_file:", "not a UTF-8 text file"),
        (["process=none", "process.dx_um.module.distribution=empirical"], "process.dx_um.module.values_file:",
         "needs its values"),
        (["process=none", *empirical("module", values=[1.0], values_file=good)], "process.dx_um.module.values:",
         "not both"),
        (["process=none", *empirical("module", values=[1.0])], "process.dx_um.module.values:", "at least 2"),
        (["process=none", "process.dx_um.module.values=[1,2,3]"], "process.dx_um.module.values:",
         "only read by distribution empirical"),
        (["process=none", f"process.dy_um.layer.values_file={good}"], "process.dy_um.layer.values_file:",
         "only read by distribution empirical"),
        (["process=none", *empirical("module", values=[1.0, 2.0]), "sweep={process.dx_um.module.sigma:[0.1,0.2]}"],
         "sweep.process.dx_um.module.sigma:", "does not read sigma"),
        (["process=none", *empirical("module", values=[1.0, 2.0]), "sweep={process.dx_um.module.values:[1,2]}"],
         "sweep.process.dx_um.module.values:", "not sweepable"),
        (["process=none", "mode=optimize", *empirical("module", values=[1.0, 2.0]),
          "optimize.costs={process.dx_um.module.sigma:1.0}"], "optimize.costs.process.dx_um.module.sigma:",
         "does not read sigma"),
        (["process=none", "conditions={hot:{temperature_c:85,process:{dx_um:{module:{distribution:empirical}}}}}"],
         "conditions.hot.process.dx_um.module.distribution:", "not available"),
    ]
    for overrides, key, fragment in cases:
        message = _refused(overrides)
        assert message.startswith(key) and fragment in message, (overrides, message)
    # an inline non-finite value is refused by the schema at compose time
    with pytest.raises(ValueError, match=r"^process\.dx_um\.module\.values: must be finite"):
        compose(["process=none", "process.dx_um.module.distribution=empirical", "process.dx_um.module.values=[1,inf]"])


@pytest.mark.slow
def test_command_refuses_bad_tables_with_exit_code_2(tmp_path):
    """The command: exit 2, one line naming the key, nothing created (before compiling)."""
    (tmp_path / "bad.csv").write_text("dx_um\n0.1\nnope\n")
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    for args, key in (
        (empirical("module", values_file="missing.csv"), "process.dx_um.module.values_file"),
        (empirical("channel", values_file="bad.csv"), "process.dx_um.channel.values_file"),
    ):
        before = sorted(p.name for p in tmp_path.iterdir())
        proc = warm_process.run([sys.executable, "-m", "yieldmc", *args], cwd=tmp_path, env=env, timeout=300)
        assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and f"{key}:" in lines[0], proc.stderr
        assert "Traceback" not in proc.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == before  # no results/, no outputs/


def test_an_empirical_temperature_stays_above_absolute_zero():
    message = _refused(["process=none", *empirical("module", quantity="temperature_c", values=[-400.0, 0.0])])
    assert message.startswith("process.temperature_c.module.values:") and "-273.15" in message, message
    build_problem(config_dict(["process=none", *empirical("module", quantity="temperature_c", values=[-40.0, 40.0])]))


def test_the_store_identity_changes_with_the_tables_contents(tmp_path):
    """The configuration names only the file: a store made from other values under the same
    path must not be resumed into (job.identity hashes the table's sha256 too)."""
    from yieldmc.job import parse_job

    path = tmp_path / "dx.csv"
    overrides = ["process.dx_um.module.distribution=empirical", f"process.dx_um.module.values_file={path}"]
    path.write_text("0.1\n0.2\n0.3\n")
    a = parse_job(compose(overrides), check_output=False).identity
    assert parse_job(compose(overrides), check_output=False).identity == a
    path.write_text("0.1\n0.2\n0.4\n")
    assert parse_job(compose(overrides), check_output=False).identity != a
