"""Cell outputs on the built pages: a progress bar that tqdm hid when it finished leaves no gap and no slab.

tqdm's notebook bar with ``leave=False`` ends with its widget's ``layout.visibility = "hidden"``, which keeps
the widget's box: before ``_assets/outputs.css``, each finished bar left a blank (360 px under Chapter 1's
depth sweep) and, in dark mode, the theme's light-grey widget background.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from book.authoring.site_check import chromium_path, launch_chromium

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "_assets"

MEASURE = """() => {
    const hidden = [...document.querySelectorAll('.widget-subarea')]
        .filter(s => s.querySelector('.jupyter-widgets[style*="visibility: hidden"]'));
    const visible = [...document.querySelectorAll('.widget-subarea')].filter(s => !hidden.includes(s));
    return {hidden: hidden.length, hiddenHeight: hidden.reduce((h, s) => h + s.getBoundingClientRect().height, 0),
            outputs: [...document.querySelectorAll('.cell_output')].map(o => o.getBoundingClientRect().height),
            visible: visible.map(s => s.getBoundingClientRect().height)};
}"""


@pytest.fixture(scope="module")
def chromium():
    if chromium_path() is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("headless Chromium not installed — CI must run the browser tests")
        pytest.skip("headless Chromium not installed (/usr/bin/chromium; apt-get install chromium)")
    with launch_chromium() as browser:
        yield browser


def _page(tmp_path: Path) -> Path:
    """Two outputs as myst-nb writes them: three finished tqdm bars, then the bars and a live slider."""
    import ipywidgets as widgets
    from ipywidgets.embed import embed_data

    def bar():
        return widgets.HBox([widgets.HTML("run"), widgets.FloatProgress(value=50, max=50), widgets.HTML("50/50")],
                            layout=widgets.Layout(visibility="hidden"))

    bars = [bar() for _ in range(3)]
    slider = widgets.IntSlider(3, 0, 10, description="depth")
    data = embed_data(views=bars + [slider])
    views = [f'<script type="application/vnd.jupyter.widget-view+json">{json.dumps(v)}</script>'
             for v in data["view_specs"]]
    static = tmp_path / "_static"
    for folder in ("requirejs", "html-manager"):
        shutil.copytree(ASSETS / "vendor" / folder, static / "vendor" / folder)
    for name in ("widgets-setup.js", "outputs.css"):
        shutil.copy(ASSETS / name, static)
    page = tmp_path / "page.html"
    page.write_text(
        '<html><head><link rel="stylesheet" href="_static/outputs.css">'
        '<script src="_static/widgets-setup.js"></script><script src="_static/vendor/requirejs/require.js"></script>'
        '<script src="_static/vendor/html-manager/embed-amd.js"></script>'
        f'<script type="application/vnd.jupyter.widget-state+json">{json.dumps(data["manager_state"])}</script>'
        '</head><body><p>before</p>'
        f'<div class="cell_output docutils container">{"".join(views[:3])}</div>'
        f'<div class="cell_output docutils container">{"".join(views[:1])}{views[3]}</div>'
        '<p>after</p></body></html>')
    return page


def test_finished_bars_take_no_space_and_a_live_widget_still_shows(chromium, tmp_path):
    tab = chromium.new_page()
    tab.goto(_page(tmp_path).as_uri())
    tab.wait_for_selector(".widget-slider", timeout=20000)
    facts = tab.evaluate(MEASURE)
    assert facts["hidden"] == 4 and facts["hiddenHeight"] == 0, facts
    assert facts["outputs"][0] == 0, facts                 # only finished bars: no margin left either
    assert facts["outputs"][1] > 20 and facts["visible"] and min(facts["visible"]) > 20, facts



@pytest.mark.parametrize("mode", ["light", "dark"])
@pytest.mark.parametrize("page", ["chapters/01_degradation", "chapters/06_residual_stream"])
def test_no_gap_where_a_chapter_hid_its_progress_bars(chromium, site, page, mode):
    tab = chromium.new_page(viewport={"width": 1200, "height": 900})
    tab.goto((site / f"{page}.html").as_uri())
    tab.evaluate(f"document.documentElement.dataset.theme = '{mode}'")
    tab.wait_for_timeout(4000)                              # the widget manager renders the saved state
    facts = tab.evaluate(MEASURE)
    assert facts["hiddenHeight"] == 0, facts
