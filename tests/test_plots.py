"""Plots (yieldmc.io.plots) on small synthetic result Datasets and small stores: no engine run."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
import yaml  # noqa: E402

from yieldmc.io import plots  # noqa: E402

N = 4096


def make_ds(sweep: dict | None = None, *, fail: float | None = None, layers=2, channels=6,
            package="pwg50_12ch", seed=0) -> xr.Dataset:
    """A §5 Dataset: yield rises with the index of the (unsorted) sweep values."""
    sweep = sweep or {}
    shape = tuple(len(v) for v in sweep.values())
    rng = np.random.default_rng(seed)
    if fail is None:
        cf = rng.uniform(0, 0.2, shape + (layers, channels))
        cf[..., 0, 0] = 0.0
    else:
        cf = np.full(shape + (layers, channels), fail)
    y = 1.0 - cf.max(axis=(-2, -1)) if fail is None else np.full(shape, 1.0 - fail)
    n_pass = np.round(y * N).astype(np.int64)
    y = n_pass / N
    half = 1.96 * np.sqrt(np.maximum(y * (1 - y), 1e-4) / N)
    dims = list(sweep)
    ch = ["layer", "channel"]
    config = {"package": {"name": package, "channels": channels, "layers": layers},
              "samples": N, "spec": {"max_loss_db": 1.5, "max_failed_channels": 0},
              "sweep": {k: list(v) for k, v in sweep.items()} or None}
    data = {
        "yield": (dims, y, {"units": "1", "long_name": "yield"}),
        "yield_ci_low": (dims, np.clip(y - half, 0, 1), {"units": "1", "long_name": "low"}),
        "yield_ci_high": (dims, np.clip(y + half, 0, 1), {"units": "1", "long_name": "high"}),
        "n_pass": (dims, n_pass, {"units": "1", "long_name": "passing"}),
        "n_samples": (dims, np.full(shape, N, dtype=np.int64), {"units": "1", "long_name": "N"}),
        "channel_fail_fraction": (dims + ch, cf, {"units": "1", "long_name": "fail"}),
        "loss_db_mean": (dims + ch, np.ones(shape + (layers, channels)), {"units": "dB", "long_name": "m"}),
        "loss_db_quantile": (dims + ["quantile"] + ch, np.ones(shape + (1, layers, channels)),
                             {"units": "dB", "long_name": "q"}),
    }
    coords = {k: (k, np.asarray(v, float), {"long_name": k}) for k, v in sweep.items()}
    coords.update(quantile=[0.5], layer=np.arange(layers), channel=np.arange(channels))
    return xr.Dataset(data, coords=coords, attrs={"config_yaml": yaml.safe_dump(config, sort_keys=False),
                                                  "sampler": "mc"})


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _panels(fig):
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts] + [t.get_text() for t in fig.texts]


def _all_labels(fig):
    out = [fig._suptitle.get_text()]
    for ax in fig.axes:
        out += [ax.get_xlabel(), ax.get_ylabel(), ax.get_title()]
    return out


def with_spec(ds, curve):
    """Add ``yield_vs_spec`` (spec_db 0 … 3.5 dB in 0.05 dB steps) given by ``curve(spec_db)``."""
    x = np.round(np.arange(-0.5, 3.5001, 0.05), 6)
    y = curve(x)
    ds = ds.assign_coords(spec_db=("spec_db", x, {"units": "dB"}))
    for name, v in (("yield_vs_spec", y), ("yield_vs_spec_ci_low", np.clip(y - 0.01, 0, 1)),
                    ("yield_vs_spec_ci_high", np.clip(y + 0.01, 0, 1))):
        ds[name] = (("spec_db",), v, {"units": "1", "long_name": name})
    return ds


# --- fail fractions ------------------------------------------------------------------------------


def test_single_layer_fail_fractions_on_a_fitted_scale_with_the_wilson_interval():
    from scipy.stats import binomtest

    ds = make_ds(layers=1, channels=12)
    f = np.linspace(0.116, 0.136, 12)
    ds["channel_fail_fraction"][...] = f[None, :]
    fig = plots.fail_figure(ds)
    ax = _panels(fig)[0]
    line = [ln for ln in ax.lines if ln.get_marker() == "o"][0]
    assert np.allclose(line.get_ydata(), f) and np.array_equal(line.get_xdata(), np.arange(12))
    lo, hi = ax.get_ylim()
    assert 0.09 < lo < 0.116 and 0.136 < hi < 0.16  # the scale follows the values, not 0…1 or 1e-6…1
    assert ax.get_yscale() == "linear"
    band = ax.collections[0].get_paths()[0].vertices  # fill_between: the Wilson band
    for k, fk in enumerate(f):  # reference: scipy's Wilson interval of round(f·N) of N
        ci = binomtest(int(round(fk * N)), N).proportion_ci(method="wilson")
        at = band[np.isclose(band[:, 0], k), 1]
        assert np.isclose(at.min(), ci.low, atol=2 / N) and np.isclose(at.max(), ci.high, atol=2 / N)
    assert ax.get_xlabel() == "channel index" and "fraction" in ax.get_ylabel()


def test_fail_fractions_spanning_decades_use_a_log_scale_and_mark_zero():
    ds = make_ds(layers=1, channels=6)
    ds["channel_fail_fraction"][...] = np.array([0.0, 1e-5, 1e-4, 1e-3, 1e-2, 0.1])[None, :]
    fig = plots.fail_figure(ds)
    ax = _panels(fig)[0]
    assert ax.get_yscale() == "log"
    zero = [ln for ln in ax.lines if ln.get_marker() == "v"]
    assert len(zero) == 1 and np.array_equal(zero[0].get_xdata(), [0])


def test_not_estimated_fail_fractions_are_never_drawn_as_zero():
    ds = make_ds(layers=1, channels=6)
    ds.attrs["sampler"] = "is"
    ds["channel_fail_fraction"][...] = np.nan
    fig = plots.fail_figure(ds)  # every value NaN: a panel that says so, no data drawn
    assert any("not estimated" in t for t in _texts(fig))
    assert not any(ax.lines or ax.images for ax in fig.axes)
    # a stack with some cells NaN: masked (hatched), not coloured like 0
    ds = make_ds(layers=3, channels=6)
    cf = ds["channel_fail_fraction"].values
    cf[1, 2] = np.nan
    cf[0, 0] = 0.0
    fig = plots.fail_figure(ds)
    im = _panels(fig)[0].images[0]
    arr = im.get_array()
    assert arr.mask[1, 2] and not arr.mask[0, 0]
    hatched = [p for p in _panels(fig)[0].patches if p.get_hatch()]
    assert [(p.get_x() + 0.5, p.get_y() + 0.5) for p in hatched] == [(2.0, 1.0)]
    # a single-layer channel NaN: a gap in the line, hatched and labelled, never at 0
    ds = make_ds(layers=1, channels=6)
    ds["channel_fail_fraction"][0, 3] = np.nan
    ax = _panels(plots.fail_figure(ds))[0]
    line = [ln for ln in ax.lines if ln.get_marker() == "o"][0]
    assert np.isnan(line.get_ydata()[3])
    assert "not estimated" in [t.get_text() for t in ax.texts]


def test_stack_heat_map_scale_follows_the_values_and_prints_them():
    ds = make_ds(layers=2, channels=6)
    cf = np.linspace(0.116, 0.136, 12).reshape(2, 6)
    ds["channel_fail_fraction"][...] = cf
    fig = plots.fail_figure(ds)
    im = _panels(fig)[0].images[0]
    assert (im.norm.vmin, im.norm.vmax) == (cf.min(), cf.max())
    rgba = im.to_rgba(im.get_array())
    assert np.abs(rgba[0, 0, :3] - rgba[1, 5, :3]).sum() > 0.5  # 0.116 and 0.136 look different
    printed = sorted(float(t) for t in [t.get_text() for t in _panels(fig)[0].texts])
    assert np.allclose(printed, np.round(np.sort(cf.ravel()), 3))


@pytest.mark.parametrize("fail", [0.0, 1.0])
def test_single_layer_all_pass_and_all_fail(fail):
    ax = _panels(plots.fail_figure(make_ds(fail=fail, layers=1)))[0]
    line = [ln for ln in ax.lines if ln.get_marker() == "o"][0]
    assert np.array_equal(line.get_ydata(), np.full(6, fail))
    lo, hi = ax.get_ylim()
    assert lo < fail < hi


def test_all_pass_and_all_fail_maps_are_told_apart_by_their_numbers():
    a, b = plots.fail_figure(make_ds(fail=0.0, layers=2)), plots.fail_figure(make_ds(fail=1.0, layers=2))
    assert set(_texts(a)) >= {"0"} and set(_texts(b)) >= {"1.000"}


def test_conditions_are_readable_small_multiples():
    ds = make_ds(layers=1, channels=12)
    cf = ds.channel_fail_fraction
    names = ["cold", "hot", "damp_heat", "after_cycling", "bent"]
    ds["channel_fail_fraction"] = xr.concat([cf * (k + 1) / 5 for k in range(5)],
                                            dim=xr.DataArray(names, dims="condition"))
    fig = plots.fail_figure(ds)
    panels = _panels(fig)
    assert [ax.get_title() for ax in panels] == [f"condition {n}" for n in names]
    width_px, height_px = fig.get_size_inches() * plots.DPI
    assert width_px <= 2100 and height_px <= 1500
    # a stack under 7 conditions: panels on one shared colour scale
    ds = make_ds(layers=4, channels=32)
    cf = ds.channel_fail_fraction
    ds["channel_fail_fraction"] = xr.concat([cf * (k + 1) for k in range(7)],
                                            dim=xr.DataArray([f"c{k}" for k in range(7)], dims="condition"))
    fig = plots.fail_figure(ds)
    ims = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(ims) == 7 and len({(im.norm.vmin, im.norm.vmax) for im in ims}) == 1
    assert fig.get_size_inches()[0] * plots.DPI <= 2100


# --- yield maps, yield vs spec -------------------------------------------------------------------


def test_yield_heat_map_prints_each_value_on_a_fitted_scale():
    kx, ky = "process.dx_um.module.sigma", "process.dy_um.module.sigma"
    ds = make_ds({kx: [1.0, 0.25, 0.5], ky: [0.1, 0.2]})
    y = np.array([[0.76, 0.74], [0.70, 0.69], [0.61, 0.65]])  # (dx sorted, dy)
    ds["yield"] = ((kx, ky), y[[2, 0, 1]])  # stored in the sweep's (unsorted) order
    fig = plots.yield_figure(ds)
    ax = _panels(fig)[0]
    mesh = ax.collections[0]
    assert (mesh.norm.vmin, mesh.norm.vmax) == (0.61, 0.76)
    cells = {(t.get_position(), t.get_text()) for t in ax.texts}
    want = {((x, yv), f"{y[i, j]:.3f}") for i, x in enumerate([0.25, 0.5, 1.0]) for j, yv in enumerate([0.1, 0.2])}
    assert cells == want
    c61, c76 = mesh.cmap(mesh.norm(0.61)), mesh.cmap(mesh.norm(0.76))
    assert np.abs(np.subtract(c61[:3], c76[:3])).sum() > 1.0  # clearly different colours


def test_yield_heat_map_nan_cell_is_not_estimated():
    kx, ky = "process.dx_um.module.sigma", "process.dy_um.module.sigma"
    ds = make_ds({kx: [0.25, 0.5], ky: [0.1, 0.2]})
    ds["yield"][0, 1] = np.nan
    ax = _panels(plots.yield_figure(ds))[0]
    assert np.ma.getmaskarray(ax.collections[0].get_array()).sum() == 1
    assert "n/e" in [t.get_text() for t in ax.texts] and any(p.get_hatch() for p in ax.patches)


def test_unsorted_sweep_line_is_drawn_at_sorted_positions():
    key = "process.dx_um.module.sigma"
    ds = make_ds({key: [1.5, 0.5, 1.0]})
    line = plots.yield_figure(ds).axes[0].lines[0]
    assert np.array_equal(line.get_xdata(), [0.5, 1.0, 1.5])
    want = ds["yield"].sel({key: [0.5, 1.0, 1.5]}).values
    assert np.array_equal(line.get_ydata(), want)


def test_yield_vs_spec_from_zero_db_with_the_spec_at_the_target_marked():
    ds = with_spec(make_ds(), lambda s: np.clip(s - 1.0, 0.0, 1.0))  # Y(s) = s − 1: 0.9 at 1.9 dB
    fig = plots.spec_figure(ds, target_yield=0.9)
    ax = fig.axes[0]
    assert ax.get_xlim()[0] == 0.0 and min(ln.get_xdata().min() for ln in ax.lines if len(ln.get_xdata()) > 2) >= 0
    dots = [ln for ln in ax.lines if ln.get_marker() == "o"]
    assert len(dots) == 1 and np.allclose(dots[0].get_xydata(), [[1.9, 0.9]])
    assert "1.90 dB" in fig._suptitle.get_text()
    assert any("spec for yield 0.9: 1.90 dB (1.89–1.91 dB)" in t.get_text() for t in fig.legends[0].texts)
    assert plots.spec_at_yield([0, 1, 2], [0.0, 0.5, 1.0], 0.9) == pytest.approx(1.8)
    assert plots.spec_at_yield([0, 1], [0.1, 0.2], 0.9) is None


# --- titles, units, files ------------------------------------------------------------------------


def _every_kind():
    sweep = {"process.dx_um.module.sigma": [1.0, 0.5], "process.yaw_mrad.layer.sigma": [0.2, 0.4],
             "package.temperature_c": [85.0, 25.0, -40.0]}
    figs = [plots.fail_figure(make_ds(sweep)), plots.yield_figure(make_ds(sweep)),
            plots.yield_figure(make_ds({"process.dx_um.module.sigma": [0.5, 1.0]})),
            plots.fail_figure(make_ds(layers=1)),
            plots.spec_figure(with_spec(make_ds(), lambda s: np.clip(s / 3, 0, 1))),
            plots.sensitivity_figure(make_sensitivity()), plots.optimize_figure(make_optimize())]
    return figs


def test_titles_have_at_most_two_lines_that_fit_and_units_are_words():
    for fig in _every_kind():
        fig.canvas.draw()
        title = fig._suptitle
        assert len(title.get_text().split("\n")) <= 2
        box = title.get_window_extent(fig.canvas.get_renderer())
        assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1 and box.y1 <= fig.bbox.y1
        labels = " ".join(_all_labels(fig))
        assert "[1]" not in labels and "[index]" not in labels
        assert getattr(fig, "yieldmc_caption", "")  # the details go to the caption


@pytest.mark.parametrize("sweep", [None, {"process.dx_um.module.sigma": [0.5, 1.0]}])
def test_titles_state_package_spec_n_and_yield(sweep):
    ds = make_ds(sweep, package="pwg18_4x32ch")
    figs = [plots.fail_figure(ds)] + ([plots.yield_figure(ds)] if sweep else [])
    y = ds["yield"].values.ravel()
    i = int(np.argmin(y))
    lo, hi = (float(ds[v].values.ravel()[i]) for v in ("yield_ci_low", "yield_ci_high"))
    for fig in figs:
        title = fig._suptitle.get_text()
        assert "pwg18_4x32ch" in title and "loss ≤ 1.5 dB" in title and "0 failed ch. allowed" in title
        assert f"N = {N:,}" in title
        at_point = y.size == 1 or fig is figs[0]  # the fail map is drawn at the lowest point
        assert (plots.format_yield(y[i], lo, hi) if at_point else f"{y.min():.3f} … {y.max():.3f}") in title
        assert plots.format_yield(y[i], lo, hi) in fig.yieldmc_caption


def test_format_yield_resolves_the_interval():
    assert plots.format_yield(0.853, 0.831, 0.872) == "0.853 [0.831, 0.872]"
    assert plots.format_yield(0.999993, 0.99999, 0.999996) == "0.9999930 [0.9999900, 0.9999960]"


def test_three_swept_keys_faceted():
    sweep = {"process.dx_um.module.sigma": [1.0, 0.5], "process.yaw_mrad.layer.sigma": [0.2, 0.4],
             "package.temperature_c": [85.0, 25.0, -40.0]}
    fig = plots.yield_figure(make_ds(sweep))
    panels = [ax for ax in _panels(fig) if ax.collections]
    assert len(panels) == 3  # one per value of the third key
    assert [ax.get_title().split("=")[1].strip() for ax in panels] == ["-40 °C", "25 °C", "85 °C"]
    assert len({(ax.collections[0].norm.vmin, ax.collections[0].norm.vmax) for ax in panels}) == 1


def test_axis_labels_carry_units():
    fig = plots.yield_figure(make_ds({"process.dx_um.module.sigma": [0.5, 1.0], "spec.max_loss_db": [1, 2]}))
    ax = fig.axes[0]
    assert ax.get_xlabel() == "process.dx_um.module.sigma [µm]"
    assert ax.get_ylabel() == "spec.max_loss_db [dB]"
    cbar = [a for a in fig.axes if a.get_label() == "<colorbar>"][0]
    assert cbar.get_ylabel() == "yield (fraction of modules passing)"
    line = plots.yield_figure(make_ds({"process.yaw_mrad.module.sigma": [0.5, 1.0]})).axes[0]
    assert line.get_xlabel().endswith("[mrad]") and line.get_ylabel() == "yield (fraction of modules passing)"
    assert plots.axis_label(make_ds({"package.pwg.n_core": [1.5, 1.6]}), "package.pwg.n_core") == \
        "package.pwg.n_core (dimensionless)"


def test_a_coordinate_units_attribute_wins_over_the_name():
    ds = make_ds({"process.dx_um.module.sigma": [0.5, 1.0]})
    assert plots.coord_unit(ds, "process.dx_um.module.sigma") == "µm"  # from the name
    ds["process.dx_um.module.sigma"].attrs["units"] = "degC"  # a CF spelling, stored
    assert plots.axis_label(ds, "process.dx_um.module.sigma") == "process.dx_um.module.sigma [°C]"


@pytest.mark.parametrize("key, unit", [
    ("process.dx_um.module.sigma", "µm"), ("spec.max_loss_db", "dB"), ("package.temperature_c", "°C"),
    ("process.humidity_rh.module.mean", "%RH"), ("package.coupler.kappa_per_um", "1/µm"),
    ("package.pwg.loss_db_per_cm", "dB/cm"), ("process.taper_tip_width_nm.channel.sigma", "nm"),
    ("package.bend_radius_mm", "mm"), ("process.pitch_ppm.module.sigma", "ppm"),
    ("package.cte_mismatch_ppm_per_k", "ppm/K"), ("package.pwg.n_core", "1"),
    ("spec.max_failed_channels", "channels"), ("process.dx_um.module.distribution", None),
])
def test_key_unit(key, unit):
    assert plots.key_unit(key) == unit


def test_lognormal_sigma_is_dimensionless():
    cfg = {"process": {"gap_um": {"module": {"distribution": "lognormal", "sigma": 0.1}}}}
    assert plots.key_unit("process.gap_um.module.sigma", cfg) == "1"
    assert plots.key_unit("process.gap_um.module.mean", cfg) == "µm"


def test_plot_all_writes_pngs_at_150_dpi_with_the_caption(tmp_path):
    from PIL import Image

    ds = make_ds({"process.dx_um.module.sigma": [1.5, 0.5, 1.0]})
    paths = plots.plot_all(ds, tmp_path / "s.zarr", target_yield=0.9)
    assert [p.name for p in paths] == ["s_yield.png", "s_fail.png"]
    for p in paths:
        with Image.open(p) as im:
            assert im.info["dpi"] == pytest.approx((150, 150), abs=0.02)  # PNG stores px/m
            assert im.text["Description"].startswith(("Yield map", "Channel fail fraction"))
    assert [p.name for p in plots.plot_all(make_ds(), tmp_path / "t.zarr")] == ["t_fail.png"]
    assert not list(tmp_path.glob("*.svg"))


def test_svg_on_request_is_marked_and_a_foreign_svg_is_left_untouched(tmp_path, capsys):
    (tmp_path / "s_fail.svg").write_text("<svg>mine</svg>")
    assert [p.name for p in plots.plot_all(make_ds(), tmp_path / "s.zarr", svg=True)] == ["s_fail.png"]
    mine = tmp_path / "s_fail.svg"
    assert mine.read_text() == "<svg>mine</svg>" and not plots.is_yieldmc_svg(mine)
    assert capsys.readouterr().err == f"plot: {mine} exists and was not written by yieldmc; left untouched\n"
    assert [p.name for p in plots.plot_all(make_ds(), tmp_path / "t.zarr", svg=True)] == ["t_fail.png"]
    assert plots.is_yieldmc_svg(tmp_path / "t_fail.svg") and plots._replaceable(tmp_path / "t_fail.svg")


# --- sensitivity, optimize -----------------------------------------------------------------------


def make_sensitivity():
    names = ["process.dx_um.module.sigma", "package.pitch_um", "process.dy_um.module.sigma", "package.n_gap",
             "spec.max_loss_db"]
    grad = np.array([-0.30, 0.001, -0.05, 0.0, 0.4])
    value = np.array([0.5, 50.0, 0.2, 1.0, 1.5])
    y = 0.8
    cfg = {"package": {"name": "pwg50_12ch"}}
    return xr.Dataset({
        "yield_gradient": ("parameter", grad), "yield_gradient_se": ("parameter", np.full(5, 0.01)),
        "elasticity": ("parameter", value * grad / y), "value": ("parameter", value),
        "yield": ((), y), "n_samples": ((), np.int64(N))},
        coords={"parameter": names}, attrs={"estimator": "pathwise", "config_yaml": yaml.safe_dump(cfg)})


def test_tornado_sorts_tolerances_and_nominals_by_magnitude_with_the_interval():
    ds = make_sensitivity()
    fig = plots.sensitivity_figure(ds)
    e, g, names = ds.elasticity.values, ds.yield_gradient.values, [str(p) for p in ds.parameter.values]
    tol = lambda i: names[i].endswith((".sigma", ".low", ".high"))  # noqa: E731
    ranked = [i for i in np.argsort(-np.abs(e)) if g[i] != 0]
    want = [[i for i in ranked if tol(i)][::-1], [i for i in ranked if not tol(i)][::-1]]  # top = largest
    axes = fig.axes
    assert [ax.get_title(loc="left") for ax in axes] == ["tolerances: tighten from the top", "nominals and spec"]
    for ax, order in zip(axes, want):
        bars = [c for c in ax.containers if isinstance(c, matplotlib.container.BarContainer)][0]
        assert np.allclose([b.get_width() for b in bars], e[order])
        assert [t.get_text() for t in ax.get_yticklabels()] == [names[i] for i in order]
        err = [c for c in ax.containers if isinstance(c, matplotlib.container.ErrorbarContainer)][0]
        half = [(s[1][0] - s[0][0]) / 2 for s in err.lines[2][0].get_segments()]  # ± 1.96 se·|θ/Y|
        assert np.allclose(half, 1.96 * 0.01 * np.abs(ds.value.values[order] / 0.8))
    assert "package.n_gap" not in [t.get_text() for ax in axes for t in ax.get_yticklabels()]
    assert "1 parameters with a zero or undefined gradient" in fig.yieldmc_caption


def make_optimize(verdict=None):
    steps = 20
    names = ["process.dx_um.module.sigma", "process.dy_um.module.sigma"]
    attrs = {"kind": "tolerance", "target_yield": 0.95, "config_yaml": yaml.safe_dump({"package": {"name": "p"}})}
    if verdict:
        attrs.update(verdict=verdict, verdict_text=f"target {verdict}: re-checked yield vs 0.95")
    return xr.Dataset({
        "history_yield": ("step", np.linspace(0.99, 0.95, steps)), "history_cost": ("step", np.linspace(5, 3, steps)),
        "history_value": (("step", "parameter"), np.linspace([0.2, 0.1], [0.5, 0.3], steps)),
        "history_tau_db": ("step", np.full(steps, 0.02)), "optimum": ("parameter", [0.5, 0.3]),
        "yield": ((), 0.951), "yield_ci_low": ((), 0.947), "yield_ci_high": ((), 0.955),
        "n_samples": ((), np.int64(N)), "cost": ((), 3.0)},
        coords={"step": np.arange(steps), "parameter": names}, attrs=attrs)


@pytest.mark.parametrize("verdict", [None, "reached", "unreachable"])
def test_optimize_history_and_verdict(verdict):
    ds = make_optimize(verdict)
    fig = plots.optimize_figure(ds)
    ax = fig.axes[0]
    assert np.allclose(ax.lines[0].get_ydata(), ds.history_yield.values)
    shown = [t for t in _texts(fig) + [ax.get_title(loc="left")] if t.startswith("verdict")]
    if verdict is None:
        assert shown == [] and "verdict" not in fig._suptitle.get_text()
    else:
        assert shown == [f"verdict: {ds.attrs['verdict_text']}"] and f"verdict: {verdict}" in fig._suptitle.get_text()
    assert len(fig.axes) == 3  # yield, cost, parameters


def test_plot_all_picks_the_figures_of_each_store_kind(tmp_path):
    assert [p.name for p in plots.plot_all(make_sensitivity(), tmp_path / "sensitivity_x.zarr")] == \
        ["sensitivity_x_tornado.png"]
    assert [p.name for p in plots.plot_all(make_optimize("reached"), tmp_path / "optimize_x.zarr")] == \
        ["optimize_x_history.png"]


# --- the command line ------------------------------------------------------------------------------


def _store(path, ds):
    from yieldmc.io.store import write_small_store

    write_small_store(ds, path, overwrite=False, identity_="test")
    return path


def test_yieldmc_plot_takes_a_store_a_directory_or_latest(tmp_path, monkeypatch, capsys):
    import os

    results = tmp_path / "results"
    old = _store(results / "yield_a.zarr", make_ds(fail=0.0, layers=1))
    _store(results / "yield_b.zarr", make_ds(layers=1))
    os.utime(old, (1e9, 1e9))
    assert plots.main([str(results)]) == 0  # a directory: its newest store
    assert capsys.readouterr().out.split() == [str(results / "yield_b_fail.png")]
    assert plots.main([str(old)]) == 0 and capsys.readouterr().out.split() == [str(results / "yield_a_fail.png")]
    monkeypatch.chdir(tmp_path)
    assert plots.main(["--latest", "--svg"]) == 0
    assert capsys.readouterr().out.split() == ["results/yield_b_fail.png", "results/yield_b_fail.svg"]
    assert plots.main([str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a yieldmc store or a directory of stores" in err
    (tmp_path / "empty").mkdir()
    assert plots.main([str(tmp_path / "empty")]) == 2
    assert "no complete yieldmc store in" in capsys.readouterr().err


def test_a_conditions_store_reopens(tmp_path):
    """String coordinates (conditions) read back as numpy's StringDType still verify."""
    from yieldmc.io.store import open_result

    ds = make_ds()
    ds = ds.expand_dims(condition=["cold", "hot"]).transpose(..., "layer", "channel")
    ds["yield"] = ds["yield"].isel(condition=0)
    back = open_result(_store(tmp_path / "c.zarr", ds))
    assert [str(c) for c in back.condition.values] == ["cold", "hot"]


# --- data safety: a plot path yieldmc did not write is never replaced (B2, B3) ----------------


def _leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".") or p.suffix == ".tmp")


def test_written_pngs_carry_the_yieldmc_marker(tmp_path):
    from yieldmc._version import __version__

    paths = plots.plot_all(make_ds({"process.dx_um.module.sigma": [0.5, 1.0]}), tmp_path / "s.zarr")
    assert len(paths) == 2
    for p in paths:
        data = p.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        assert b"tEXtSoftware\0yieldmc " + __version__.encode() in data
        assert plots.is_yieldmc_png(p)
    assert _leftovers(tmp_path) == []


def test_a_foreign_file_at_a_plot_path_is_left_untouched(tmp_path, capsys):
    ds = make_ds({"process.dx_um.module.sigma": [0.5, 1.0]})
    mine = tmp_path / "s_fail.png"
    mine.write_text("thesis draft")
    fake = tmp_path / "s_yield.png"  # a real PNG, but not one of yieldmc's
    plt.figure().savefig(fake)
    before = fake.read_bytes()
    assert plots.plot_all(ds, tmp_path / "s.zarr") == []
    assert mine.read_text() == "thesis draft" and fake.read_bytes() == before
    err = capsys.readouterr().err.splitlines()
    assert err == [f"plot: {fake} exists and was not written by yieldmc; left untouched",
                   f"plot: {mine} exists and was not written by yieldmc; left untouched"]
    assert _leftovers(tmp_path) == []


def test_a_symlink_at_a_plot_path_is_left_untouched(tmp_path, capsys):
    outside = tmp_path / "thesis.txt"
    outside.write_text("thesis draft")
    results = tmp_path / "results"
    results.mkdir()
    link = results / "n_fail.png"
    link.symlink_to("../thesis.txt")
    assert plots.plot_all(make_ds(), results / "n.zarr") == []
    assert outside.read_text() == "thesis draft"
    assert link.is_symlink() and link.readlink().as_posix() == "../thesis.txt"
    assert capsys.readouterr().err == f"plot: {link} exists and was not written by yieldmc; left untouched\n"
    # a symlink to a yieldmc PNG is not replaced either (nor is the PNG it points at)
    png = plots.plot_all(make_ds(), tmp_path / "a.zarr")[0]
    before = png.read_bytes()
    (results / "b_fail.png").symlink_to(png)
    assert plots.plot_all(make_ds(fail=1.0), results / "b.zarr") == []
    assert png.read_bytes() == before and (results / "b_fail.png").is_symlink()
    assert _leftovers(results) == [] and _leftovers(tmp_path) == []


def test_a_directory_at_a_plot_path_is_skipped(tmp_path, capsys):
    ds = make_ds({"process.dx_um.module.sigma": [0.5, 1.0]})
    (tmp_path / "x_fail.png").mkdir()
    (tmp_path / "x_fail.png" / "keep").write_text("x")
    paths = plots.plot_all(ds, tmp_path / "x.zarr")
    assert [p.name for p in paths] == ["x_yield.png"]  # the other plot is still written
    assert (tmp_path / "x_fail.png").is_dir() and (tmp_path / "x_fail.png" / "keep").read_text() == "x"
    assert "x_fail.png exists and was not written by yieldmc; left untouched" in capsys.readouterr().err
    assert _leftovers(tmp_path) == []


def test_an_earlier_yieldmc_plot_is_replaced(tmp_path, capsys):
    first = plots.plot_all(make_ds(fail=0.0), tmp_path / "s.zarr")
    before = first[0].read_bytes()
    again = plots.plot_all(make_ds(fail=1.0), tmp_path / "s.zarr")
    assert again == first == [tmp_path / "s_fail.png"]
    assert again[0].read_bytes() != before and plots.is_yieldmc_png(again[0])
    assert capsys.readouterr().err == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s_fail.png"]  # no temporary file left


def test_a_marker_elsewhere_in_a_file_does_not_count(tmp_path):
    f = tmp_path / "a.png"
    f.write_bytes(b"notes: tEXtSoftware\0yieldmc 0.1.0")
    assert not plots.is_yieldmc_png(f)
    assert plots.plot_fail_map(make_ds(), f) is None and f.read_bytes().startswith(b"notes")


def test_an_unwritable_directory_is_reported_not_raised(tmp_path, capsys):
    missing = tmp_path / "gone" / "s.zarr"  # the directory does not exist
    assert plots.plot_all(make_ds(), missing) == []
    assert capsys.readouterr().err.startswith(f"plot: cannot write {tmp_path / 'gone' / 's_fail.png'}: ")


def test_the_gallery_shows_every_plot_kind():
    """docs/gallery.md: every figure kind, as yieldmc PNGs (made by scripts/make_gallery.py)."""
    import re
    from pathlib import Path

    from PIL import Image

    docs = Path(__file__).resolve().parent.parent / "docs"
    shown = re.findall(r"!\[[^\]]*\]\((gallery/[^)]+\.png)\)", (docs / "gallery.md").read_text(encoding="utf-8"))
    kinds = {p.rsplit("_", 1)[1].removesuffix(".png") for p in shown}
    assert kinds >= {"yield", "fail", "spec", "tornado", "history", "fit"}
    for rel in shown:
        path = docs / rel
        assert plots.is_yieldmc_png(path) and path.stat().st_size < 100_000, rel
        with Image.open(path) as im:
            assert im.info["dpi"] == pytest.approx((150, 150), abs=0.02) and im.text["Description"]
            if rel == "gallery/subset_fail.png":  # a sampler without per-channel estimates
                assert "not estimated" in im.text["Description"]
