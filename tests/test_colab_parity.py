"""Colab parity: the package installs into Colab's versions without changing them, and every
notebook and widget test runs there (ipywidgets 7.7.1, IPython 7.34, matplotlib 3.10.0, numpy 2.1.3).

The environment is `.venv-colab` (``make colab-env``, from requirements-colab.txt).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from book.authoring.jupyter_markdown import myst_leftovers

ROOT = Path(__file__).resolve().parent.parent
COLAB_PYTHON = ROOT / ".venv-colab" / "bin" / "python"
PROTECTED = ("torch", "numpy", "matplotlib", "ipython", "ipywidgets", "ipykernel")
EXPECTED = {"numpy": "2.1.3", "matplotlib": "3.10.0", "ipython": "7.34.0", "ipywidgets": "7.7.1"}


def _freeze(python: Path) -> dict[str, str]:
    out = subprocess.run([str(python), "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
                         capture_output=True, text=True, check=True).stdout
    return {p["name"].lower(): p["version"] for p in json.loads(out)}


@pytest.fixture(scope="module")
def colab(tmp_path_factory):
    """Create the environment if needed, dry-run the install, then install the package for real."""
    if not COLAB_PYTHON.exists():
        subprocess.run(["make", "colab-env"], cwd=ROOT, check=True)
    subprocess.run([str(COLAB_PYTHON), "-m", "pip", "uninstall", "-y", "-q", "residual-course"],
                   capture_output=True)
    before = _freeze(COLAB_PYTHON)
    report_path = tmp_path_factory.mktemp("colab") / "report.json"
    subprocess.run([str(COLAB_PYTHON), "-m", "pip", "install", "--dry-run", "--quiet", "--disable-pip-version-check",
                    "--report", str(report_path), str(ROOT)], check=True, cwd=ROOT)
    report = json.loads(report_path.read_text())
    subprocess.run([str(COLAB_PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e",
                    str(ROOT)], check=True, cwd=ROOT)
    return {"before": before, "after": _freeze(COLAB_PYTHON), "report": report}


def test_the_environment_has_colabs_versions(colab):
    for name, version in EXPECTED.items():
        assert colab["before"][name] == version


def test_a_dry_run_install_would_change_none_of_colabs_packages(colab):
    would_install = {item["metadata"]["name"].lower(): item["metadata"]["version"] for item in colab["report"]["install"]}
    assert "residual-course" in would_install
    touched = sorted(set(would_install) & set(PROTECTED))
    assert not touched, f"installing the package would change {touched}: {would_install}"


def test_the_real_install_changed_none_of_them(colab):
    for name in PROTECTED:
        assert colab["after"][name] == colab["before"][name], name


RUNNER = r"""
import sys, time, json
import importlib.util
import ipywidgets, IPython
assert ipywidgets.__version__ == "7.7.1", ipywidgets.__version__
assert importlib.util.find_spec("myst_nb") is None, "myst_nb is installed: Colab has none"
import nbformat
from nbclient import NotebookClient
path, cwd, out = sys.argv[1:4]
if path.endswith(".md"):
    import jupytext
    nb = jupytext.read(path)
else:
    nb = nbformat.read(path, as_version=4)
start = time.perf_counter()
NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": cwd}}).execute()
nbformat.write(nb, out)
print(json.dumps({"seconds": time.perf_counter() - start, "ipywidgets": ipywidgets.__version__,
                  "ipython": IPython.__version__}))
"""

# Chapters as Colab opens them (the generated .ipynb); exercises as the book runs them (with solutions).
NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb")) + sorted((ROOT / "exercises").glob("ex*.md"))
_EXECUTED: dict[Path, Path] = {}


def _kernel_env() -> dict:
    """The test's environment, less the book build's mark: the kernels run as on Colab."""
    return {k: v for k, v in os.environ.items() if k != "RESIDUAL_COURSE_BOOK_BUILD"}


def _execute(notebook: Path, folder: Path) -> Path:
    """Run ``notebook`` once per session in the Colab environment; the executed copy's path."""
    if notebook not in _EXECUTED:
        out = folder / f"{notebook.stem}.executed.ipynb"
        proc = subprocess.run([str(COLAB_PYTHON), "-c", RUNNER, str(notebook), str(notebook.parent), str(out)],
                              capture_output=True, text=True, cwd=ROOT, env=_kernel_env())
        assert proc.returncode == 0, proc.stderr[-3000:]
        info = json.loads(proc.stdout.strip().splitlines()[-1])
        assert info["ipywidgets"] == "7.7.1" and info["ipython"].startswith("7.34")
        _EXECUTED[notebook] = out
    return _EXECUTED[notebook]


@pytest.fixture(scope="module")
def executed_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("colab-executed")


def _figure_outputs(cell) -> int:
    """Outputs that show a picture: a PNG or SVG, or HTML with images (a to_jshtml scrubber)."""
    n = 0
    for out in cell.get("outputs", []):
        data = out.get("data", {})
        if "image/png" in data or "image/svg+xml" in data or "<img" in str(data.get("text/html", "")):
            n += 1
    return n


def _web_figures(md: Path) -> dict[str, int]:
    """The page's glued figures, ``{glue name: 1}``, from its ``glue:figure`` directives."""
    return {name: 1 for name in re.findall(r"^[`:]{3,}\{glue:figure\}\s+(\S+)", md.read_text(), re.M)}


def _last_line(source: str) -> str:
    lines = [l for l in source.splitlines() if l.strip() and not l.lstrip().startswith("#")]
    return lines[-1] if lines else ""


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_runs_with_colabs_versions(colab, notebook, executed_dir):
    executed = nbformat.read(_execute(notebook, executed_dir), as_version=4)
    if notebook.suffix != ".ipynb":
        return
    # What a learner who clicks the chapter's Colab badge sees, without myst-nb:
    problems = []
    web = _web_figures(notebook.with_suffix(".md"))
    shown = 0
    for cell in executed.cells:
        if cell.cell_type == "markdown":
            problems += [f"MyST left in the Markdown: {m}" for m in myst_leftovers(cell.source)]
            continue
        n = _figure_outputs(cell)
        shown += n
        glued_here = [name for name in re.findall(r"\bglue\(\s*[\"']([^\"']+)[\"']", cell.source) if name in web]
        if n < len(glued_here):
            problems.append(f"the cell that draws {glued_here} shows {n} figure(s)")
        for out in cell.outputs:
            if out.get("output_type") == "execute_result" and (
                    _last_line(cell.source).startswith("book.glue(") or out["data"].get("text/plain") == "None"):
                problems.append(f"a stray value {out['data'].get('text/plain')!r} under {_last_line(cell.source)!r}")
    assert shown >= len(web), f"{shown} figures shown, the web page has {len(web)} glued figures"
    assert not problems, problems[:10]


def test_widget_tests_pass_with_colabs_versions(colab):
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_*widgets*.py"))
    assert files
    proc = subprocess.run([str(COLAB_PYTHON), "-m", "pytest", "-q", "-p", "no:cacheprovider", *files],
                          capture_output=True, text=True, cwd=ROOT, env=_kernel_env())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]


STUDENT_RUNNER = r"""
import sys, json
import nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
               resources={"metadata": {"path": sys.argv[2]}}).execute()
checks, stray = [], []
for cell in nb.cells:
    if cell.cell_type == "code":
        stray += [o["data"].get("text/plain") for o in cell.outputs
                  if o.get("output_type") == "execute_result" and o["data"].get("text/plain") == "None"]
    if cell.cell_type == "code" and cell.source.startswith("check_"):
        texts = [o.get("data", {}).get("text/plain", "") for o in cell.outputs if o.get("output_type") == "execute_result"]
        errors = [o.get("ename") for o in cell.outputs if o.get("output_type") == "error"]
        checks.append({"source": cell.source, "text": "".join(texts), "errors": errors})
print(json.dumps({"checks": checks, "stray": stray,
                  "markdown": [c.source for c in nb.cells if c.cell_type == "markdown"]}))
"""

STUDENT_NOTEBOOKS = sorted((ROOT / "exercises").glob("ex*.ipynb"))


@pytest.mark.parametrize("notebook", STUDENT_NOTEBOOKS, ids=lambda p: p.name)
def test_student_notebook_opens_with_colabs_versions_and_its_checks_answer(colab, notebook):
    """The notebook a learner opens on Colab: unsolved, every check cell answers 'not done yet' instead of failing."""
    proc = subprocess.run([str(COLAB_PYTHON), "-c", STUDENT_RUNNER, str(notebook), str(notebook.parent)],
                          capture_output=True, text=True, cwd=ROOT, env=_kernel_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    checks = result["checks"]
    assert checks, notebook.name
    assert not result["stray"]
    assert not [m for text in result["markdown"] for m in myst_leftovers(text)]
    for check in checks:
        assert not check["errors"] and "not done yet" in check["text"], check


# --------------------------------------------------------------------------- one executed notebook, as seen

RENDERED = ROOT / "chapters" / "02_learn_the_change.ipynb"     # two glued figures, about a minute to run
SCREENSHOTS = ROOT / "test-artifacts" / "colab"


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_an_executed_colab_notebook_shows_its_figures_and_numbers(colab, executed_dir, theme):
    """The notebook a Colab badge opens, executed with Colab's versions, rendered by nbconvert's lab
    template (what JupyterLab shows) and looked at in headless Chromium, in light and dark mode."""
    from nbconvert import HTMLExporter

    from book.authoring.notebooks import stored_glue
    from book.authoring.site_check import chromium_path, launch_chromium

    if chromium_path() is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("headless Chromium not installed — CI must run the browser tests")
        pytest.skip("headless Chromium not installed (/usr/bin/chromium; apt-get install chromium)")
    executed = nbformat.read(_execute(RENDERED, executed_dir), as_version=4)
    mathjax = (ROOT / "_assets" / "vendor" / "mathjax" / "tex-mml-chtml.js").as_uri()      # offline, as the site
    html, _ = HTMLExporter(template_name="lab", theme=theme, mathjax_url=mathjax).from_notebook_node(executed)
    page = executed_dir / f"{RENDERED.stem}.{theme}.html"
    page.write_text(html)
    glued_figures = len(_web_figures(RENDERED.with_suffix(".md")))
    # Numbers that the text shows, as it formats them (an integer, a count of steps, a count of seeds).
    held = stored_glue(RENDERED)
    numbers = [held[name] for name in ("params_plain", "params_basic", "fit_steps") if name in held]
    assert numbers
    with launch_chromium() as browser:
        tab = browser.new_page(viewport={"width": 1100, "height": 900})
        tab.goto(page.as_uri())
        facts = tab.evaluate("""() => {
            const imgs = [...document.querySelectorAll('.jp-OutputArea-output img')];
            const body = getComputedStyle(document.body);
            const md = document.querySelector('.jp-RenderedMarkdown p');
            return {images: imgs.length, loaded: imgs.filter(i => i.complete && i.naturalWidth > 100).length,
                    text: document.body.innerText, background: body.backgroundColor,
                    color: md ? getComputedStyle(md).color : ''};
        }""")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(SCREENSHOTS / f"{RENDERED.stem}.{theme}.png"), full_page=False)
    assert facts["images"] >= glued_figures and facts["loaded"] == facts["images"], facts["images"]
    for number in numbers:
        assert number in facts["text"], number
    assert not myst_leftovers(facts["text"]), myst_leftovers(facts["text"])
    dark_background = sum(int(x) for x in re.findall(r"\d+", facts["background"])[:3]) < 200
    light_text = sum(int(x) for x in re.findall(r"\d+", facts["color"])[:3]) > 400
    assert dark_background == (theme == "dark") and light_text == (theme == "dark"), facts
