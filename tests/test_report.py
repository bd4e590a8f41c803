"""yieldmc-report: the HTML page of a store, rendered by a real headless Chromium.

Chromium is a service this test needs: without it (``.ci/setup_chromium.sh`` installs
Debian's package) the test fails, it never skips.
"""

import base64
import html
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
import xarray as xr
from test_plots import N, make_ds, make_optimize, make_sensitivity, with_spec

from yieldmc.io import plots, report
from yieldmc.io.store import write_small_store

pytestmark = pytest.mark.slow  # the quick tier (pytest -m "not slow") leaves these out

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--virtual-time-budget=10000"]

# Appended to a copy of the page: after loading, what the browser shows (the rendered text,
# each image's decoded size, the table cells) is written into the DOM that --dump-dom prints.
PROBE = """<script>window.addEventListener('load', () => {
  const pre = document.createElement('pre'); pre.id = 'probe';
  pre.textContent = JSON.stringify({
    text: document.body.innerText,
    images: [...document.images].map(i => [i.naturalWidth, i.naturalHeight, i.complete, i.src.slice(0, 22)]),
    tables: Object.fromEntries([...document.querySelectorAll('table')].map(
      t => [t.id, [...t.rows].map(r => [...r.cells].map(c => c.innerText.trim()))]))});
  document.body.appendChild(pre);
});</script>"""


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("no Chromium on the PATH: run .ci/setup_chromium.sh (this test needs a real browser)")


def run_chromium(args, tmp_path) -> str:
    profile = tmp_path / f"profile{len(list(tmp_path.glob('profile*')))}"
    profile.mkdir()
    cmd = [chromium(), *FLAGS, f"--user-data-dir={profile}", *args]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    except subprocess.TimeoutExpired:
        pytest.fail("Chromium did not finish within 180 s")
    if r.returncode != 0:
        pytest.fail(f"Chromium failed (exit {r.returncode}): {r.stderr[-2000:]}")
    return r.stdout


def conditions_store(tmp_path):
    """A complete store (single layer, three conditions, yield vs spec) as the engine writes it."""
    ds = with_spec(make_ds(layers=1, channels=12), lambda s: np.clip(s - 1.0, 0.0, 1.0))
    names = ["cold", "hot", "bent"]
    cf = ds.channel_fail_fraction
    ds["channel_fail_fraction"] = xr.concat([cf * (k + 1) / 3 for k in range(3)], dim=xr.DataArray(names,
                                                                                                 dims="condition"))
    ds["condition_yield"] = ("condition", np.array([0.91, 0.62, 0.83]))
    ds["condition_fail_only"] = ("condition", np.array([0.01, 0.2, 0.05]))
    ds["yield_without_condition"] = ("condition", np.array([0.6, 0.8, 0.61]))
    path = tmp_path / "results" / "yield_pwg50_12ch_test.zarr"
    write_small_store(ds, path, overwrite=False, identity_="test")
    return path, ds


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_report_page_shows_summary_tables_and_plots_in_chromium(tmp_path, capsys):
    store, ds = conditions_store(tmp_path)
    assert report.main([str(store.parent)]) == 0  # a directory: its newest store
    page = report.report_path(store)
    assert capsys.readouterr().out.split() == [str(page)]
    text = page.read_text(encoding="utf-8")
    assert plots.is_yieldmc_html(page)
    assert not re.search(r"""(src|href)=["'](?!data:)""", text)  # self-contained: nothing fetched
    embedded = [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', text)]

    probe_page = tmp_path / "probe.html"
    probe_page.write_text(text.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = run_chromium(["--dump-dom", probe_page.as_uri()], tmp_path)
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert found, "the page did not finish loading in Chromium"
    shown = json.loads(html.unescape(found.group(1)))

    y, lo, hi = float(ds["yield"]), float(ds.yield_ci_low), float(ds.yield_ci_high)
    # the interval is ~0.024 wide at this N: four decimals tell its ends apart
    assert f"yield {y:.4f} (95 % CI {lo:.4f} – {hi:.4f}), {N} modules, sampler mc" in shown["text"]
    assert shown["tables"]["yield-table"][1] == [f"{y:.4f}", f"{lo:.4f}", f"{hi:.4f}", f"{N:,}"]
    rows = shown["tables"]["condition-table"]
    assert rows[0] == ["condition", "yield", "fails only here", "envelope yield without it"]
    for row, k in zip(rows[1:], range(3)):
        assert row == [str(ds.condition.values[k])] + [f"{float(ds[v][k]):.4f}" for v in
                                                       ("condition_yield", "condition_fail_only",
                                                        "yield_without_condition")]
    assert rows[-1][:2] == ["envelope (every condition)", f"{y:.4f}"]
    # every plot of the store, decoded by the browser at the size of the embedded PNG
    assert len(shown["images"]) == len(embedded) == 3  # yield per condition, fail fractions, yield vs spec
    for (w, h, complete, src), data in zip(shown["images"], embedded):
        assert complete and src == "data:image/png;base64," and (w, h) == png_size(data) and w > 600
    for caption in ("Yield per condition and envelope", "Channel fail fraction per channel",
                    "Yield versus the loss spec"):
        assert caption in shown["text"]
    assert "spec for yield" not in shown["text"] or "1.90 dB" in shown["text"]
    assert "package:\n  name: pwg50_12ch" in shown["text"]  # the configuration
    assert ["sampler", "mc"] in shown["tables"]["provenance-table"]

    shot = tmp_path / "report.png"
    run_chromium([f"--screenshot={shot}", "--window-size=1200,2400", page.as_uri()], tmp_path)
    from PIL import Image

    with Image.open(shot) as im:
        assert im.size == (1200, 2400)
        grey = np.asarray(im.convert("L"))
    assert (grey < 200).mean() > 0.02  # text and plots painted, not a blank page


def test_not_estimated_values_read_as_such():
    ds = make_ds(layers=1)
    ds.attrs["sampler"] = "is"
    ds["channel_fail_fraction"][...] = np.nan
    ds["yield_ci_low"][...] = np.nan
    page = report.report_html(ds, "x.zarr")
    assert '<td class="nan">not estimated</td>' in page and ">nan<" not in page.lower()
    assert "worst channel: not estimated by this sampler" in page


def test_sensitivity_and_optimize_reports():
    ds = make_sensitivity()
    page = report.report_html(ds, "sensitivity_x.zarr")
    table = page[page.index('id="sensitivity-table"'):]
    table = table[:table.index("</table>")]
    order = [m for m in re.findall(r"<tr><td>([^<]+)</td>", table)]
    e = ds.elasticity.values
    assert order == [str(ds.parameter.values[i]) for i in sorted(range(e.size), key=lambda i: -abs(e[i]))]
    assert 'id="plot-tornado"' in page
    page = report.report_html(make_optimize("unreachable"), "optimize_x.zarr")
    assert '<p id="verdict" class="verdict unreachable">verdict: <b>unreachable</b>' in page
    assert 'id="plot-history"' in page and 'id="optimum-table"' in page


def test_a_foreign_file_at_the_report_path_is_left_untouched(tmp_path, capsys):
    store, _ = conditions_store(tmp_path)
    mine = report.report_path(store)
    mine.write_text("<!DOCTYPE html><p>my notes</p>")
    assert report.main([str(store)]) == 1
    assert mine.read_text() == "<!DOCTYPE html><p>my notes</p>"
    assert capsys.readouterr().err == f"report: {mine} exists and was not written by yieldmc; left untouched\n"
    assert report.main([str(tmp_path / "nothing")]) == 2
