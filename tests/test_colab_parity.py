"""Colab parity: the package installs into Colab's versions without changing them, and every
notebook and widget test runs there (ipywidgets 7.7.1, IPython 7.34, matplotlib 3.10.0, numpy 2.1.3).

The environment is `.venv-colab` (``make colab-env``, from requirements-colab.txt).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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
import ipywidgets, IPython
assert ipywidgets.__version__ == "7.7.1", ipywidgets.__version__
import nbformat
from nbclient import NotebookClient
path = sys.argv[1]
if path.endswith(".md"):
    import jupytext
    nb = jupytext.read(path)
else:
    nb = nbformat.read(path, as_version=4)
start = time.perf_counter()
NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": sys.argv[2]}}).execute()
print(json.dumps({"seconds": time.perf_counter() - start, "ipywidgets": ipywidgets.__version__,
                  "ipython": IPython.__version__}))
"""

# Chapters as Colab opens them (the paired .ipynb); exercises as the book runs them (with solutions).
NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb")) + sorted((ROOT / "exercises").glob("ex*.md"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_runs_with_colabs_versions(colab, notebook):
    proc = subprocess.run([str(COLAB_PYTHON), "-c", RUNNER, str(notebook), str(notebook.parent)],
                          capture_output=True, text=True, cwd=ROOT, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["ipywidgets"] == "7.7.1" and info["ipython"].startswith("7.34")


def test_widget_tests_pass_with_colabs_versions(colab):
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_*widgets*.py"))
    assert files
    proc = subprocess.run([str(COLAB_PYTHON), "-m", "pytest", "-q", "-p", "no:cacheprovider", *files],
                          capture_output=True, text=True, cwd=ROOT, env=dict(os.environ))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]


STUDENT_RUNNER = r"""
import sys, json
import nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
               resources={"metadata": {"path": sys.argv[2]}}).execute()
checks = []
for cell in nb.cells:
    if cell.cell_type == "code" and cell.source.startswith("check_"):
        texts = [o.get("data", {}).get("text/plain", "") for o in cell.outputs if o.get("output_type") == "execute_result"]
        errors = [o.get("ename") for o in cell.outputs if o.get("output_type") == "error"]
        checks.append({"source": cell.source, "text": "".join(texts), "errors": errors})
print(json.dumps(checks))
"""

STUDENT_NOTEBOOKS = sorted((ROOT / "exercises").glob("ex*.ipynb"))


@pytest.mark.parametrize("notebook", STUDENT_NOTEBOOKS, ids=lambda p: p.name)
def test_student_notebook_opens_with_colabs_versions_and_its_checks_answer(colab, notebook):
    """The notebook a learner opens on Colab: unsolved, every check cell answers 'not done yet' instead of failing."""
    proc = subprocess.run([str(COLAB_PYTHON), "-c", STUDENT_RUNNER, str(notebook), str(notebook.parent)],
                          capture_output=True, text=True, cwd=ROOT, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr[-3000:]
    checks = json.loads(proc.stdout.strip().splitlines()[-1])
    assert checks, notebook.name
    for check in checks:
        assert not check["errors"] and "not done yet" in check["text"], check
