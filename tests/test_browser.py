"""The built web book in a real browser: every page loads offline and reads as intended.

The first group of tests runs the page checker (``book.authoring.site_check``) on tiny crafted
pages, so it is known to catch a JavaScript error, a broken image, untypeset TeX, a
Colab button that opens a missing notebook, a dead link, a third-party script, and the
accessibility violations its axe-core audit must report (low contrast, in light or only in
dark mode, an image without alt text, an unlabelled control).
The second group runs it on every page of the executed build (``built_site``), and audits
every page against WCAG 2.1 AA in light and dark mode.

Needs Debian's Chromium (``apt-get install chromium``). Without it these tests are
skipped on a developer's machine and fail in CI (``CI=true``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from book.authoring import colab
from book.authoring.site_check import (chromium_path, external_loads, launch_chromium, open_site,
                             redirect_target, repeated_scripts, site_pages)

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "_assets" / "vendor"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"


def _need_chromium() -> None:
    if chromium_path() is None:
        reason = "headless Chromium not installed (/usr/bin/chromium; apt-get install chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + " — CI must run the browser tests")
        pytest.skip(reason)


def _toc_pages() -> list[str]:
    """Every page the table of contents lists, as built .html paths."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return [f"{Path(f).with_suffix('').as_posix()}.html" for f in files]


# --------------------------------------------------------------------------- the checker can fail

MATHJAX = '<script defer src="_static/vendor/mathjax/tex-mml-chtml.js"></script>'
JUPYTEXT_MD = "---\njupytext:\n  text_representation:\n    format_name: myst\n---\n# A notebook\n"
CRAFTED = {
    "good.html": f"<html><head>{MATHJAX}</head><body><p>Fine: "
                 '<span class="math notranslate nohighlight">\\(x^2 + \\boldsymbol{{y}}\\)</span></p>'
                 '<img src="pixel.gif" alt="a pixel"><a href="js_error.html">next</a></body></html>',
    "js_error.html": "<html><body><p>Hello</p><script>undefinedFunction();</script></body></html>",
    "broken_image.html": '<html><body><img src="missing.png" alt="gone"></body></html>',
    "raw_math.html": '<html><body><p>Math: <span class="math notranslate nohighlight">'
                     "\\(e^{i\\pi} + 1 = 0\\)</span></p></body></html>",
    "dead_link.html": '<html><body><a href="chapters/nowhere.html">gone</a></body></html>',
    "cdn_script.html": '<html><head><script src="https://cdn.example.org/lib.js"></script>'
                       "</head><body>text</body></html>",
    "chapters/nb_missing.html": '<html><body><a class="btn" href="https://colab.research.google.com'
                                '/github/org/repo/blob/main/chapters/nb_missing.ipynb">Colab</a>'
                                "</body></html>",
    "chapters/nb_present.html": '<html><body><a class="btn" href="https://colab.research.google.com'
                                '/github/org/repo/blob/main/chapters/nb_present.ipynb">Colab</a>'
                                "</body></html>",
    "chapters/nb_no_button.html": "<html><body><p>No launch button here.</p></body></html>",
    "twice.html": "<html><head><script>const SETTING = 1;</script><script>const SETTING = 1;</script>"
                  "</head><body>text</body></html>",
    "index.html": '<html><head><meta http-equiv="Refresh" content="0; url=good.html" /></head></html>',
}
# Accessibility: one accessible page, and one page per violation the audit must report.
_THEMED = ("<!DOCTYPE html><html lang=\"en\"><head><title>{title}</title>"
           "<script>document.documentElement.dataset.theme = localStorage.getItem('theme') || 'light';</script>"
           "<style>html[data-theme=dark] body {{ background: #111; color: {dark_text}; }}</style></head>"
           "<body><main><h1>{title}</h1>{body}</main></body></html>")
A11Y = {
    "a11y/accessible.html": _THEMED.format(
        title="Accessible", dark_text="#eee",
        body='<p>Text.</p><img src="../pixel.gif" alt="a pixel">'
             '<label for="depth">depth</label><input id="depth" type="range" min="0" max="10">'),
    "a11y/low_contrast.html": _THEMED.format(
        title="Low contrast", dark_text="#eee", body='<p style="color: #bbb">Pale grey on white.</p>'),
    "a11y/dark_low_contrast.html": _THEMED.format(
        title="Dark only", dark_text="#333", body="<p>Dark grey on near-black, in dark mode only.</p>"),
    "a11y/no_alt.html": _THEMED.format(title="No alt", dark_text="#eee", body='<img src="../pixel.gif">'),
    "a11y/unlabelled_slider.html": _THEMED.format(
        title="No label", dark_text="#eee", body='<input type="range" min="0" max="10">'),
}
CRAFTED.update(A11Y)
GIF = bytes.fromhex("47494638396101000100800000ffffff00000021f90401000000002c00000000010001000002024401003b")


def _widget_page(with_setup: bool) -> str:
    """A page that embeds a labelled slider the way the book does (vendored manager, MathJax 3)."""
    import json

    import ipywidgets as widgets
    from ipywidgets.embed import embed_data

    data = embed_data(views=[widgets.VBox([widgets.IntSlider(3, 0, 10, description="depth $d$"),
                                           widgets.HTML("<b>a label</b>"), widgets.Output()])])
    scripts = [MATHJAX]
    if with_setup:
        scripts.append('<script src="../_static/widgets-setup.js"></script>')
    scripts += ['<script src="../_static/vendor/requirejs/require.js"></script>',
                '<script src="../_static/vendor/html-manager/embed-amd.js"></script>',
                '<script type="application/vnd.jupyter.widget-state+json">'
                f"{json.dumps(data['manager_state'])}</script>"]
    view = json.dumps(data["view_specs"][0])
    return ("<html><head>" + "".join(scripts).replace('src="_static', 'src="../_static') + "</head><body>"
            '<p><span class="math notranslate nohighlight">\\(x\\)</span></p>'
            f'<div><script type="application/vnd.jupyter.widget-view+json">{view}</script></div>'
            "</body></html>")


@pytest.fixture(scope="module")
def chromium():
    """One headless Chromium for every test in this module."""
    _need_chromium()
    with launch_chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def crafted_site(tmp_path_factory, chromium):
    """A tiny site with one known problem per page, and the repository it claims to come from."""
    base = tmp_path_factory.mktemp("crafted")
    html, repo = base / "html", base / "repo"
    for name, text in CRAFTED.items():
        (html / name).parent.mkdir(parents=True, exist_ok=True)
        (html / name).write_text(text)
    (html / "pixel.gif").write_bytes(GIF)
    shutil.copytree(VENDOR, html / "_static" / "vendor")
    shutil.copy(VENDOR.parent / "widgets-setup.js", html / "_static")
    (html / "widgets").mkdir()
    (html / "widgets" / "with_setup.html").write_text(_widget_page(with_setup=True))
    (html / "widgets" / "without_setup.html").write_text(_widget_page(with_setup=False))
    (repo / "chapters").mkdir(parents=True)
    for name in ("nb_missing", "nb_present", "nb_no_button"):
        (repo / "chapters" / f"{name}.md").write_text(JUPYTEXT_MD)
    (repo / "chapters" / "nb_present.ipynb").write_text("{}")
    colab_url = lambda path: f"https://colab.research.google.com/github/org/repo/blob/main/{path}"  # noqa: E731
    with open_site(html, repo_root=repo, colab_url=colab_url, browser=chromium) as site:
        yield site


def _problems(site, page) -> str:
    return " | ".join(site.check_page(page, screenshot=False).problems)


def test_checker_passes_a_good_page_with_vendored_mathjax(crafted_site):
    report = crafted_site.check_page("good.html", screenshot=False)
    assert report.problems == []
    assert report.facts["mjx"] == 1 and report.facts["images"] == 1


@pytest.mark.parametrize("page, expected", [
    ("js_error.html", "JavaScript error: ReferenceError: undefinedFunction is not defined"),
    ("broken_image.html", "image did not load: missing.png"),
    ("raw_math.html", "math not rendered"),
    ("raw_math.html", "raw TeX left in the text"),
    ("dead_link.html", "link to a missing page: chapters/nowhere.html"),
    ("cdn_script.html", "loads from another host: https://cdn.example.org/lib.js"),
    ("cdn_script.html", "request to another host: https://cdn.example.org/lib.js"),
    ("chapters/nb_missing.html", "chapters/nb_missing.ipynb, which is not in the repository"),
    ("chapters/nb_no_button.html", "no Colab launch button"),
    ("twice.html", "script included twice: const SETTING = 1;"),
    ("twice.html", "JavaScript error: SyntaxError: Identifier 'SETTING' has already been declared"),
])
def test_checker_reports_the_problem(crafted_site, page, expected):
    assert expected in _problems(crafted_site, page)


def test_vendored_widget_manager_renders_offline(crafted_site):
    report = crafted_site.check_page("widgets/with_setup.html", screenshot=False)
    assert report.problems == []
    assert report.facts["widgetViews"] == report.facts["widgetsRendered"] == 1


def test_checker_sees_why_widgets_setup_is_needed(crafted_site):
    """Without widgets-setup.js the manager calls MathJax 2's API (MathJax.Hub), absent in MathJax 3."""
    problems = _problems(crafted_site, "widgets/without_setup.html")
    assert "Cannot read properties of undefined (reading 'Queue')" in problems


def _audit(site, page, dark=False) -> str:
    return " | ".join(site.check_page(page, dark=dark, screenshot=False, audit=True).problems)


def test_audit_passes_an_accessible_page_in_light_and_dark_mode(crafted_site):
    for dark in (False, True):
        report = crafted_site.check_page("a11y/accessible.html", dark=dark, screenshot=False, audit=True)
        assert report.problems == [] and report.facts["axe"] == []


@pytest.mark.parametrize("page, dark, expected", [
    ("a11y/low_contrast.html", False, "accessibility (serious) color-contrast"),
    ("a11y/low_contrast.html", False, "insufficient color contrast of 1.9"),
    ("a11y/dark_low_contrast.html", True, "accessibility (serious) color-contrast"),
    ("a11y/no_alt.html", False, "accessibility (critical) image-alt"),
    ("a11y/unlabelled_slider.html", False, "accessibility (critical) label"),
])
def test_audit_reports_the_violation(crafted_site, page, dark, expected):
    assert expected in _audit(crafted_site, page, dark)


def test_audit_of_dark_mode_sees_what_light_mode_hides(crafted_site):
    assert _audit(crafted_site, "a11y/dark_low_contrast.html", dark=False) == ""
    assert "color-contrast" in _audit(crafted_site, "a11y/dark_low_contrast.html", dark=True)


def test_audit_runs_offline_from_the_installed_axe_core():
    import axe_playwright_python

    axe = Path(axe_playwright_python.__file__).parent / "axe.min.js"
    assert axe.is_file() and axe.read_text()[:40].startswith("/*! axe v4.")


def test_checker_accepts_a_colab_button_whose_notebook_exists(crafted_site):
    assert _problems(crafted_site, "chapters/nb_present.html") == ""


def test_checker_blocks_other_hosts(crafted_site):
    report = crafted_site.check_page("cdn_script.html", screenshot=False)
    assert report.external_requests == ["https://cdn.example.org/lib.js"]


def test_checker_follows_and_checks_redirect_pages(crafted_site):
    assert redirect_target(CRAFTED["index.html"]) == "good.html"
    assert crafted_site.check_page("index.html").problems == []


def test_static_scan_tells_loads_from_links():
    page = ('<a href="https://colab.research.google.com/x.ipynb">Colab</a>'
            '<link rel="stylesheet" href="https://fonts.example.org/a.css">'
            '<link rel="canonical" href="https://example.org/">'
            '<script src="_static/local.js"></script><img src="//img.example.org/p.png">')
    assert external_loads(page) == ["https://fonts.example.org/a.css", "//img.example.org/p.png"]


def test_vendored_assets_are_present_and_small():
    for path in ("mathjax/tex-mml-chtml.js", "mathjax/output/chtml/fonts/woff-v2/MathJax_Main-Regular.woff",
                 "requirejs/require.js", "html-manager/embed-amd.js", "README.md"):
        assert (VENDOR / path).is_file(), f"missing _assets/vendor/{path}: run python tools/vendor_assets.py"
    total = sum(p.stat().st_size for p in VENDOR.rglob("*") if p.is_file())
    assert total < 8 * 2**20, f"vendored assets grew to {total / 2**20:.1f} MiB"
    config = yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]["config"]
    assert "_assets" in config["html_static_path"]
    assert (VENDOR.parent / config["mathjax_path"]).is_file()
    assert list(config["nb_ipywidgets_js"])[0] == "widgets-setup.js"  # before require.js
    for script in config["nb_ipywidgets_js"]:
        assert (VENDOR.parent / script).is_file() and "://" not in script
    # Jupyter Book would add every .js under a root _static/ folder to every page.
    assert not (ROOT / "_static" / "vendor").exists()


# --------------------------------------------------------------------------- the built book


@pytest.fixture(scope="module")
def site_build(request):
    """The executed build; ``RESIDUAL_COURSE_SITE=path/to/html`` checks an existing build instead."""
    existing = os.environ.get("RESIDUAL_COURSE_SITE")
    if existing:
        return {"returncode": 0, "log": "", "html": Path(existing)}
    return request.getfixturevalue("built_site")


@pytest.fixture(scope="module")
def book_site(chromium, site_build):  # chromium first: no build when the browser is missing
    assert site_build["returncode"] == 0, site_build["log"][-4000:]
    html = site_build["html"]
    if SCREENSHOTS.exists():
        shutil.rmtree(SCREENSHOTS)
    with open_site(html, repo_root=ROOT, colab_url=lambda p: colab.colab_url(p, ROOT),
                   screenshot_dir=SCREENSHOTS, browser=chromium) as site:
        yield site


def test_no_page_loads_scripts_or_styles_from_another_host(site_build):
    assert site_build["returncode"] == 0, site_build["log"][-4000:]
    offenders = {}
    for path in site_build["html"].rglob("*.html"):
        text = path.read_text(errors="replace")
        urls = external_loads(text) + [f"repeated script: {s[:60]}" for s in repeated_scripts(text)]
        if urls:
            offenders[path.relative_to(site_build["html"]).as_posix()] = sorted(set(urls))
    assert offenders == {}


def test_every_page_of_the_toc_was_built(site_build):
    assert site_build["returncode"] == 0, site_build["log"][-4000:]
    missing = sorted(set(_toc_pages()) - set(site_pages(site_build["html"])))
    assert not missing, f"pages in _toc.yml that were not built: {missing}"


def test_every_page_works_offline_in_a_browser(book_site):
    pages = site_pages(book_site.html_root)
    assert len(pages) > 1
    reports = [book_site.check_page(page) for page in pages]
    bad = [str(r) for r in reports if r.problems]
    assert not bad, "\n".join(bad)
    # The checks saw real content: typeset math, and every notebook page's Colab button.
    assert sum(r.facts.get("mjx", 0) for r in reports) > 0
    notebook_pages = [p for p in pages if p.startswith(("chapters/", "exercises/"))]
    for report in reports:
        if report.page in notebook_pages:
            assert report.facts["colab"], f"{report.page}: no Colab button"


def test_every_page_passes_the_accessibility_audit_in_light_and_dark_mode(book_site):
    """axe-core, WCAG 2.1 A and AA: no serious or critical violation on any page, in either mode.

    Every violation (moderate and minor ones too) is written to test-artifacts/accessibility.json.
    """
    import json

    pages = site_pages(book_site.html_root)
    counts, bad = {}, []
    for page in pages:
        for mode in ("light", "dark"):
            report = book_site.check_page(page, dark=mode == "dark", screenshot=False, audit=True)
            violations = report.facts.get("axe", [])
            counts[f"{page} ({mode})"] = {v["id"]: [v["impact"], len(v["nodes"])] for v in violations}
            failing = [p for p in report.problems if p.startswith("accessibility")]
            if failing:
                bad.append(f"{page} ({mode}): " + "; ".join(failing))
    SCREENSHOTS.parent.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS.parent / "accessibility.json").write_text(json.dumps(counts, indent=1, sort_keys=True))
    assert not bad, "\n".join(bad)


def test_next_link_from_intro_opens_chapter_one(book_site):
    toc = _toc_pages()
    assert book_site.click_next(toc[0]) == toc[1]


def test_dark_mode_renders_a_chapter(book_site):
    chapter = _toc_pages()[1]
    report = book_site.check_page(chapter, dark=True)
    assert report.problems == []
    assert report.facts["theme"] == "dark"
    red, green, blue = (int(v) for v in report.facts["background"].strip("rgba()").split(",")[:3])
    assert red + green + blue < 3 * 128, f"dark mode background is {report.facts['background']}"
    assert report.screenshot is not None and report.screenshot.stat().st_size > 0


def test_sphinx_assets_drops_the_second_copy_of_a_script():
    """Sphinx 7.4 writes a late-added inline script twice (file name None, then "")."""
    from sphinx.builders.html._assets import _JavaScript

    from book.authoring.sphinx_assets import drop_repeated_scripts

    scripts = [_JavaScript(None, body="const THEBE_JS_URL = 1"), _JavaScript("_static/a.js"),
               _JavaScript("", body="const THEBE_JS_URL = 1"), _JavaScript("_static/a.js", defer="defer")]
    context = {"script_files": scripts}
    drop_repeated_scripts(None, "page", "page.html", context, None)
    assert context["script_files"] is scripts
    assert [(s.filename, s.attributes) for s in scripts] == [
        (None, {"body": "const THEBE_JS_URL = 1"}), ("_static/a.js", {}), ("_static/a.js", {"defer": "defer"})]
