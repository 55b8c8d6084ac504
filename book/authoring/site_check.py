"""Check the built web book the way a reader's browser sees it.

Used by ``tests/test_browser.py``: serve ``_build/html`` on 127.0.0.1, open every
page in headless Chromium (Playwright, Debian's ``/usr/bin/chromium``) and report
what a reader would notice — JavaScript errors, images that did not load, TeX that
MathJax did not typeset, widgets that did not render, links to pages that do not
exist, a Colab button that opens the wrong notebook — and any request to a host
other than the local server (such requests are blocked, so the check runs offline).
With ``audit=True`` it also runs an axe-core accessibility audit of the page against
WCAG 2.1 A and AA (axe-core ships inside the ``axe-playwright-python`` package, so
this too runs offline) and reports every serious or critical violation.

Nothing here runs on import; the browser is started only by :func:`open_site`.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import re
import shutil
import threading
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

__all__ = [
    "AXE_FAILING_IMPACTS",
    "AXE_RULE_TAGS",
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "PageReport",
    "Site",
    "chromium_path",
    "external_loads",
    "axe_problems",
    "launch_chromium",
    "open_site",
    "redirect_target",
    "repeated_scripts",
    "serve",
    "site_pages",
]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-quic", "--disable-sync",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
# Generated pages with no content of their own; the search page needs no check of its own.
SKIPPED_PAGES = {"search.html", "genindex.html", "py-modindex.html"}
SKIPPED_FOLDERS = {"_static", "_sources", "_images", "reports", "_panels_static"}
# The axe-core rules of WCAG 2.0 and 2.1, levels A and AA, plus axe's best practices (heading order,
# landmarks); a page fails the audit on a violation of serious or critical impact.
AXE_RULE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
AXE_FAILING_IMPACTS = ("serious", "critical")
# TeX delimiters that must not survive typesetting in a page's prose.
RAW_TEX = re.compile(r"\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{")


def chromium_path() -> str | None:
    """Debian's Chromium, or ``None`` when it is not installed."""
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")


# --------------------------------------------------------------------------- static checks


def redirect_target(html: str) -> str | None:
    """The target of a page that is only a ``<meta http-equiv="refresh">`` redirect."""
    match = re.search(r'<meta[^>]+http-equiv="refresh"[^>]+url=([^"\'>]+)', html, re.I)
    return match[1].strip() if match else None


def site_pages(html_root: Path) -> list[str]:
    """Every content page of the built site, as paths relative to ``html_root``."""
    pages = []
    for path in sorted(html_root.rglob("*.html")):
        rel = path.relative_to(html_root).as_posix()
        if rel in SKIPPED_PAGES or rel.split("/", 1)[0] in SKIPPED_FOLDERS:
            continue
        pages.append(rel)
    return pages


class _LoadFinder(HTMLParser):
    """Collects the URLs a page *loads* (scripts, stylesheets, images, frames…), not plain links."""

    def __init__(self):
        super().__init__()
        self.loads: list[str] = []
        # the <head>'s JavaScript: each script's src, or its inline code (page outputs in the
        # body, such as several matplotlib animations, may repeat theirs harmlessly)
        self.scripts: list[str] = []
        self._in_script = False
        self._in_head = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in {"head", "body"}:
            self._in_head = tag == "head"
        if (tag == "script" and self._in_head
                and (attrs.get("type") or "text/javascript") in {"text/javascript", "module"}):
            if attrs.get("src"):
                self.scripts.append(attrs["src"])
            else:
                self._in_script = True
        rel = (attrs.get("rel") or "").lower().split()
        if tag == "script" and attrs.get("src"):
            self.loads.append(attrs["src"])
        elif tag == "link" and attrs.get("href") and {"stylesheet", "preload", "modulepreload",
                                                      "icon", "prefetch", "manifest"} & set(rel):
            self.loads.append(attrs["href"])
        elif tag in {"img", "iframe", "source", "audio", "video", "embed"} and attrs.get("src"):
            self.loads.append(attrs["src"])

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False
        elif tag == "head":
            self._in_head = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.scripts.append(data.strip())
        # @import or url() inside inline <style>
        self.loads += re.findall(r"""(?:@import\s+|url\()\s*["']?(https?://[^"')\s]+)""", data)


def external_loads(html: str) -> list[str]:
    """The http(s) URLs a page would fetch from another host while loading."""
    finder = _LoadFinder()
    finder.feed(html)
    return [u for u in finder.loads
            if urlsplit(u).scheme in {"http", "https", ""} and urlsplit(u).netloc
            and urlsplit(u).hostname not in LOCAL_HOSTS]


def repeated_scripts(html: str) -> list[str]:
    """Scripts a page's ``<head>`` includes more than once (the same src, or the same inline code)."""
    finder = _LoadFinder()
    finder.feed(html)
    seen, repeated = set(), []
    for script in finder.scripts:
        if script in seen and script not in repeated:
            repeated.append(script)
        seen.add(script)
    return repeated


def axe_problems(violations: list[dict], impacts=AXE_FAILING_IMPACTS) -> list[str]:
    """One line per axe-core violation of the given impacts: rule, impact, count and an example element."""
    problems = []
    for v in violations:
        if v.get("impact") not in impacts:
            continue
        nodes = v.get("nodes", [])
        example = nodes[0] if nodes else {}
        target = " ".join(str(t) for t in example.get("target", []))[:120]
        message = next((c["message"] for kind in ("any", "all", "none") for c in example.get(kind, [])), "")
        problems.append(f"accessibility ({v['impact']}) {v['id']}: {v.get('help', '')}; {len(nodes)} "
                        f"element(s), e.g. {target}: {message[:200]}")
    return problems


# --------------------------------------------------------------------------- server


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # the browser closing a connection early
        pass


@contextlib.contextmanager
def serve(root: Path):
    """Serve ``root`` on 127.0.0.1 (a free port) in a thread; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


# --------------------------------------------------------------------------- browser checks

# Runs in the page after "load": waits for MathJax and the widget manager, then measures.
_PAGE_PROBE = """
async () => {
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await Promise.race([MathJax.startup.promise, sleep(15000)]);
  } else if (document.querySelector('script[src*="mathjax"]')) {
    for (let i = 0; i < 150 && !(window.MathJax && MathJax.startup && MathJax.startup.promise); i++) await sleep(100);
    if (window.MathJax && MathJax.startup) await Promise.race([MathJax.startup.promise, sleep(15000)]);
  }
  const views = [...document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]')];
  const rendered = () => views.filter(s => {
    const prev = s.previousElementSibling;
    return prev && prev.querySelector('.jupyter-widgets, .widget-output, .lm-Widget, .p-Widget');
  }).length;
  for (let i = 0; i < 150 && rendered() < views.length; i++) await sleep(100);
  const imgs = [...document.images];
  imgs.forEach(img => { img.loading = 'eager'; });
  await Promise.race([
    Promise.all(imgs.map(img => img.complete ? null : new Promise(r => {
      img.addEventListener('load', r); img.addEventListener('error', r); }))),
    sleep(10000)]);
  if (document.fonts) await Promise.race([document.fonts.ready, sleep(10000)]);
  const clone = document.body.cloneNode(true);
  clone.querySelectorAll('pre, code, script, style, textarea, mjx-container, .highlight, .output')
       .forEach(e => e.remove());
  return {
    mathElements: document.querySelectorAll('.math').length,
    untypeset: [...document.querySelectorAll('.math')].filter(e => !e.querySelector('mjx-container'))
                 .map(e => e.textContent.trim().slice(0, 60)),
    mjx: document.querySelectorAll('mjx-container').length,
    mjxErrors: [...document.querySelectorAll('mjx-merror')].map(e => e.getAttribute('data-mjx-error') || e.textContent),
    prose: clone.textContent,
    brokenImages: imgs.filter(img => !(img.complete && img.naturalWidth > 0))
                      .map(img => (img.getAttribute('src') || '(no src)').slice(0, 80)),
    images: imgs.length,
    widgetViews: views.length,
    widgetsRendered: rendered(),
    links: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href')),
    colab: [...document.querySelectorAll('a[href*="colab.research.google.com"]')].map(a => a.href),
    nextHref: (document.querySelector('a.right-next') || {}).href || null,
    theme: document.documentElement.dataset.theme || null,
    background: getComputedStyle(document.body).backgroundColor,
  };
}
"""


@dataclass
class PageReport:
    """What one page showed in the browser; ``problems`` is empty when it is fine."""

    page: str
    problems: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    facts: dict = field(default_factory=dict)
    screenshot: Path | None = None

    def __str__(self):
        return f"{self.page}: " + ("ok" if not self.problems else "; ".join(self.problems))


def _notebook_source(repo_root: Path | None, page: str) -> Path | None:
    """The MyST notebook source of ``page`` in the repository, if it is one."""
    if repo_root is None:
        return None
    source = repo_root / (page[: -len(".html")] + ".md")
    if source.exists() and "jupytext:" in source.read_text(errors="replace")[:2000]:
        return source
    return None


class Site:
    """A served site plus one browser context; use :func:`open_site` to make one."""

    def __init__(self, html_root: Path, base_url: str, context, *, repo_root: Path | None,
                 colab_url, screenshot_dir: Path | None):
        self.html_root = Path(html_root)
        self.base_url = base_url
        self.context = context
        self.repo_root = repo_root
        self.colab_url = colab_url
        self.screenshot_dir = screenshot_dir
        self.external_requests: list[str] = []
        context.route("**/*", self._route)

    # Every request passes here: only the local server is allowed.
    def _route(self, route):
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in {"http", "https", "ws", "wss"} and parts.hostname not in LOCAL_HOSTS:
            self.external_requests.append(url)
            route.abort("blockedbyclient")
        else:
            route.continue_()

    def url(self, page: str) -> str:
        return urljoin(self.base_url, page)

    def _exists(self, url: str) -> bool:
        path = unquote(urlsplit(url).path).lstrip("/")
        target = self.html_root / path
        return target.is_file() or (target / "index.html").is_file()

    def check_page(self, page: str, *, dark: bool = False, screenshot: bool = True,
                   audit: bool = False) -> PageReport:
        """Load ``page`` (relative to the site root) and collect every problem a reader would see.

        ``audit=True`` adds an axe-core audit (WCAG 2.1 AA) of the rendered page: every violation goes
        to ``report.facts["axe"]``, and the serious and critical ones to ``report.problems``.
        """
        report = PageReport(page)
        raw = (self.html_root / page).read_text(errors="replace")
        target = redirect_target(raw)
        if target is not None:  # e.g. index.html → intro.html: nothing to render
            if not self._exists(urljoin(self.url(page), target)):
                report.problems.append(f"redirects to missing page {target}")
            return report
        for url in external_loads(raw):
            report.problems.append(f"loads from another host: {url}")
        for script in repeated_scripts(raw):
            report.problems.append(f"script included twice: {script[:100]}")

        page_obj = self.context.new_page()
        errors: list[str] = []
        failed: list[str] = []
        before = len(self.external_requests)
        page_obj.on("pageerror", lambda exc: errors.append(
            f"JavaScript error: {getattr(exc, 'name', '') or 'Error'}: {getattr(exc, 'message', exc)}"))
        page_obj.on("console", lambda msg: errors.append(f"console error: {msg.text}")
                    if msg.type == "error" else None)
        page_obj.on("response", lambda r: failed.append(f"HTTP {r.status}: {r.url}")
                    if r.status >= 400 else None)
        page_obj.on("requestfailed", lambda r: failed.append(f"request failed: {r.url}")
                    if urlsplit(r.url).hostname in LOCAL_HOSTS else None)
        try:
            # The theme keeps the reader's choice in localStorage, shared by every page of the site.
            mode = "dark" if dark else "light"
            page_obj.add_init_script(
                f"localStorage.setItem('theme', '{mode}'); localStorage.setItem('mode', '{mode}');")
            page_obj.goto(self.url(page), wait_until="load", timeout=30000)
            facts = page_obj.evaluate(_PAGE_PROBE)
            report.facts = facts
            if audit:
                facts["axe"] = _run_axe(page_obj)
            if screenshot and self.screenshot_dir is not None:
                name = page.replace("/", "__").replace(".html", "") + ("-dark" if dark else "") + ".png"
                self.screenshot_dir.mkdir(parents=True, exist_ok=True)
                report.screenshot = self.screenshot_dir / name
                # A viewport as tall as the page: Playwright's full_page capture shifts this
                # theme's layout sideways on long pages.
                height = page_obj.evaluate("document.documentElement.scrollHeight")
                page_obj.set_viewport_size({"width": 1280, "height": max(900, min(height, 16000))})
                page_obj.wait_for_timeout(200)
                page_obj.screenshot(path=str(report.screenshot), timeout=30000)
        finally:
            page_obj.close()

        report.problems += errors + failed
        report.external_requests = self.external_requests[before:]
        report.problems += [f"request to another host: {u}" for u in report.external_requests]
        for src in facts["brokenImages"]:
            report.problems.append(f"image did not load: {src}")
        if facts["untypeset"]:
            report.problems.append(f"math not rendered: {len(facts['untypeset'])} of "
                                   f"{facts['mathElements']} math elements, e.g. {facts['untypeset'][0]!r}")
        raw_tex = RAW_TEX.findall(facts["prose"])
        if raw_tex:
            report.problems.append(f"raw TeX left in the text: {sorted(set(raw_tex))}")
        for err in facts["mjxErrors"]:
            report.problems.append(f"MathJax error: {err}")
        if facts["widgetsRendered"] < facts["widgetViews"]:
            report.problems.append(f"widgets not rendered: {facts['widgetsRendered']} of "
                                   f"{facts['widgetViews']}")
        page_url = self.url(page)
        for href in facts["links"]:
            parts = urlsplit(href)
            if parts.scheme in {"mailto", "javascript", "data"} or href.startswith("#"):
                continue
            absolute = urljoin(page_url, href)
            if urlsplit(absolute).hostname in LOCAL_HOSTS and not self._exists(absolute.split("#")[0]):
                report.problems.append(f"link to a missing page: {href}")
        report.problems += self._colab_problems(page, facts["colab"])
        if dark and facts["theme"] != "dark":
            report.problems.append(f"dark mode not applied (data-theme={facts['theme']!r})")
        if audit:
            report.problems += axe_problems(facts["axe"])
        return report

    def _colab_problems(self, page: str, hrefs: list[str]) -> list[str]:
        source = _notebook_source(self.repo_root, page)
        if source is None:
            return []
        notebook = page[: -len(".html")] + ".ipynb"
        expected = self.colab_url(notebook) if self.colab_url else None
        if not hrefs:
            return ["no Colab launch button"]
        problems = []
        for href in sorted(set(hrefs)):
            if expected is not None and href != expected:
                problems.append(f"Colab button opens {href}, expected {expected}")
            path = re.sub(r"^.*?/blob/[^/]+/", "", href)
            if not path.endswith(".ipynb"):
                problems.append(f"Colab button does not open an .ipynb: {href}")
            elif not (self.repo_root / path).is_file():
                problems.append(f"Colab button opens {path}, which is not in the repository")
        return problems

    def click_next(self, page: str) -> str:
        """Click the page's "next" link; returns the page (relative to the site) it lands on."""
        page_obj = self.context.new_page()
        try:
            page_obj.goto(self.url(page), wait_until="load")
            with page_obj.expect_navigation():
                page_obj.click("a.right-next")
            return page_obj.url[len(self.base_url):].split("#")[0]
        finally:
            page_obj.close()


def _run_axe(page_obj) -> list[dict]:
    """Run axe-core (the copy inside ``axe-playwright-python``) on a loaded page; its violations."""
    from axe_playwright_python.sync_playwright import Axe

    # No preload: axe would fetch every stylesheet again and resolve their @import against the page.
    options = {"runOnly": {"type": "tag", "values": AXE_RULE_TAGS}, "resultTypes": ["violations"],
               "preload": False}
    return Axe().run(page_obj, options=options).response["violations"]


@contextlib.contextmanager
def launch_chromium(executable_path: str | None = None):
    """Headless Chromium driven by Playwright (sync API); yields the browser."""
    from playwright.sync_api import sync_playwright

    executable = executable_path or chromium_path()
    if executable is None:
        raise FileNotFoundError(f"Chromium not found at {CHROMIUM}")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def open_site(html_root: Path, *, repo_root: Path | None = None, colab_url=None,
              screenshot_dir: Path | None = None, browser=None):
    """Serve ``html_root`` and open it in headless Chromium; yields a :class:`Site`.

    ``colab_url(notebook_path)`` gives the address the Colab button of a notebook page
    must have (``book.authoring.colab.colab_url``); ``repo_root`` is where the notebooks must exist.
    Pass ``browser`` (from :func:`launch_chromium`) to share one browser between sites.
    """
    with contextlib.ExitStack() as stack:
        if browser is None:
            browser = stack.enter_context(launch_chromium())
        base_url = stack.enter_context(serve(Path(html_root)))
        context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
        stack.callback(context.close)
        yield Site(html_root, base_url, context, repo_root=repo_root,
                   colab_url=colab_url, screenshot_dir=screenshot_dir)
