"""Plots (yieldmc.io.plots) on small synthetic DESIGN §5 Datasets: no engine run."""

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
    return xr.Dataset(data, coords=coords, attrs={"config_yaml": yaml.safe_dump(config, sort_keys=False)})


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def image(fig):
    return fig.axes[0].images[0]


def test_fail_map_fixed_scale_all_pass_differs_from_all_fail():
    im_pass, im_fail = image(plots.fail_figure(make_ds(fail=0.0))), image(plots.fail_figure(make_ds(fail=1.0)))
    for im in (im_pass, im_fail):  # fixed, identical normalisation, not auto-ranged
        assert (im.norm.vmin, im.norm.vmax) == (plots.FAIL_MIN, 1.0)
    rgba_pass, rgba_fail = im_pass.to_rgba(im_pass.get_array()), im_fail.to_rgba(im_fail.get_array())
    zero = matplotlib.colors.to_rgba(plots.ZERO_COLOUR)
    assert np.allclose(rgba_pass, zero)  # exact 0 has its own colour
    assert np.allclose(rgba_fail, im_fail.cmap(1.0)) and not np.allclose(rgba_fail, zero)
    # a tiny positive fraction is neither the zero colour nor auto-stretched to the top
    im_tiny = image(plots.fail_figure(make_ds(fail=1e-4)))
    rgba = im_tiny.to_rgba(im_tiny.get_array())[0, 0]
    assert not np.allclose(rgba, zero) and not np.allclose(rgba, im_tiny.cmap(1.0))
    assert np.allclose(rgba, im_tiny.cmap(plots.LogNorm(plots.FAIL_MIN, 1)(1e-4)))


def test_fail_map_png_bytes_differ(tmp_path):
    a = plots.plot_fail_map(make_ds(fail=0.0), tmp_path / "a.png").read_bytes()
    b = plots.plot_fail_map(make_ds(fail=1.0), tmp_path / "b.png").read_bytes()
    assert a != b


def test_yield_heat_map_fixed_scale():
    ds = make_ds({"process.dx_um.module.sigma": [0.5, 1.0], "spec.max_loss_db": [1.0, 1.5]}, fail=0.0)
    mesh = plots.yield_figure(ds).axes[0].collections[0]
    assert (mesh.norm.vmin, mesh.norm.vmax) == (0.0, 1.0)


def test_unsorted_sweep_line_is_drawn_at_sorted_positions():
    key = "process.dx_um.module.sigma"
    ds = make_ds({key: [1.5, 0.5, 1.0]})
    line = plots.yield_figure(ds).axes[0].lines[0]
    assert np.array_equal(line.get_xdata(), [0.5, 1.0, 1.5])
    want = ds["yield"].sel({key: [0.5, 1.0, 1.5]}).values
    assert np.array_equal(line.get_ydata(), want)


def test_unsorted_sweep_heat_map_cells_at_sorted_positions():
    kx, ky = "process.dx_um.module.sigma", "package.pitch_um"
    ds = make_ds({kx: [1.5, 0.5, 1.0], ky: [50.0, 18.0]})
    mesh = plots.yield_figure(ds).axes[0].collections[0]
    xy = mesh.get_coordinates()  # cell corners (rows = y, cols = x)
    assert np.all(np.diff(xy[0, :, 0]) > 0) and np.all(np.diff(xy[:, 0, 1]) > 0)
    centres_x = (xy[0, 1:, 0] + xy[0, :-1, 0]) / 2
    assert np.allclose(centres_x, [0.5, 1.0, 1.5])
    want = ds["yield"].sortby([kx, ky]).transpose(ky, kx).values
    assert np.array_equal(np.asarray(mesh.get_array()).reshape(want.shape), want)


@pytest.mark.parametrize("sweep", [None, {"process.dx_um.module.sigma": [0.5, 1.0]}])
def test_titles_state_package_spec_n_and_yield_interval(sweep):
    ds = make_ds(sweep, package="pwg18_4x32ch")
    figs = [plots.fail_figure(ds)] + ([plots.yield_figure(ds)] if sweep else [])
    i = int(np.argmin(ds["yield"].values))
    y, lo, hi = (float(ds[v].values.ravel()[i]) for v in ("yield", "yield_ci_low", "yield_ci_high"))
    for fig in figs:
        title = fig._suptitle.get_text().replace("\n", " ")
        assert "pwg18_4x32ch" in title
        assert "channel loss ≤ 1.5 dB" in title and "failed channels per module ≤ 0" in title
        assert f"N = {N:,}" in title
        assert plots.format_yield(y, lo, hi) in title and "95 %" in title


def test_format_yield_resolves_the_interval():
    assert plots.format_yield(0.853, 0.831, 0.872) == "0.853 [0.831, 0.872]"
    assert plots.format_yield(0.999993, 0.99999, 0.999996) == "0.9999930 [0.9999900, 0.9999960]"


def test_three_swept_keys_faceted_and_title_fits():
    sweep = {"process.dx_um.module.sigma": [1.0, 0.5], "process.yaw_mrad.layer.sigma": [0.2, 0.4],
             "package.temperature_c": [85.0, 25.0, -40.0]}
    fig = plots.yield_figure(make_ds(sweep))
    panels = [ax for ax in fig.axes if ax.collections and ax.get_visible() and ax.get_label() != "<colorbar>"]
    assert len(panels) == 3  # one per value of the third key
    assert [ax.get_title().split("=")[1].strip() for ax in panels] == ["-40 °C", "25 °C", "85 °C"]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    title, fig_box = fig._suptitle.get_window_extent(renderer), fig.bbox
    assert title.x0 >= fig_box.x0 and title.x1 <= fig_box.x1
    assert title.y0 >= fig_box.y0 and title.y1 <= fig_box.y1
    for ax in panels:  # the title does not overlap the panels
        assert ax.get_window_extent(renderer).y1 <= title.y0


def test_fail_map_title_fits_with_three_keys():
    sweep = {"process.dx_um.module.sigma": [1.0, 0.5], "process.yaw_mrad.layer.sigma": [0.2, 0.4],
             "package.temperature_c": [85.0, 25.0]}
    fig = plots.fail_figure(make_ds(sweep))
    fig.canvas.draw()
    title = fig._suptitle.get_window_extent(fig.canvas.get_renderer())
    assert fig.bbox.x0 <= title.x0 and title.x1 <= fig.bbox.x1 and title.y1 <= fig.bbox.y1


def test_axis_labels_carry_units():
    fig = plots.yield_figure(make_ds({"process.dx_um.module.sigma": [0.5, 1.0], "spec.max_loss_db": [1, 2]}))
    ax = fig.axes[0]
    assert ax.get_xlabel() == "process.dx_um.module.sigma [µm]"
    assert ax.get_ylabel() == "spec.max_loss_db [dB]"
    cbar = [a for a in fig.axes if a.get_label() == "<colorbar>"][0]
    assert "yield [1]" in cbar.get_ylabel()
    line = plots.yield_figure(make_ds({"process.yaw_mrad.module.sigma": [0.5, 1.0]})).axes[0]
    assert line.get_xlabel().endswith("[mrad]") and line.get_ylabel() == "yield [1]"
    fail = plots.fail_figure(make_ds())
    assert "[1]" in [a for a in fail.axes if a.get_label() == "<colorbar>"][0].get_ylabel()


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


def test_plot_all_writes_pngs(tmp_path):
    ds = make_ds({"process.dx_um.module.sigma": [1.5, 0.5, 1.0]})
    paths = plots.plot_all(ds, tmp_path / "s.zarr", target_yield=0.9)
    assert [p.name for p in paths] == ["s_yield.png", "s_fail.png"]
    assert all(p.stat().st_size > 5000 for p in paths)
    assert [p.name for p in plots.plot_all(make_ds(), tmp_path / "t.zarr")] == ["t_fail.png"]


def test_fail_map_facets_conditions():
    ds = make_ds({"process.dx_um.module.sigma": [0.5, 1.0]})
    cf = ds.channel_fail_fraction
    ds["channel_fail_fraction"] = xr.concat([cf, cf * 0], dim=xr.DataArray(["cold", "hot"], dims="condition"))
    fig = plots.fail_figure(ds)
    assert len([ax for ax in fig.axes if ax.images]) == 2


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
