"""The package's shape: layered imports, no circles, a complete module list, every subpackage installed.

The import rule (read from the code with :func:`book.cache.import_graph`):

- a foundation (``errors``, ``cache``, ``data``, ``training``, …) imports only foundations;
- a network (``nets.*``) imports foundations and networks;
- a chapter's experiments (``chN_*``) import foundations, networks and earlier chapters' experiments, the
  trained nets that several chapters share (``trained_nets``) counting as a chapter 0;
- a chapter's widgets (``chN_widgets``) and scripts (``reproduce``, Chapter 4's; ``fingerprint``, Chapter 1's) import the same plus
  their own chapter's experiments and earlier chapters' widgets;
- the exercises' self-checks import foundations, networks and chapters; the grader (``grade``, ``grading.*``)
  imports foundations, the exercises and its own modules;
- ``authoring.*`` may import anything, and nothing outside ``authoring`` imports it;
- the package's ``__init__`` imports nothing; there is no circle anywhere.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import book
from book.cache import import_graph

ROOT = Path(__file__).resolve().parent.parent

FOUNDATION, NETS, CHAPTER, WIDGETS, EXERCISES, GRADER, AUTHORING, PACKAGE = range(8)
SCRIPTS = {"reproduce": 4, "fingerprint": 1}  # command-line scripts that belong to a chapter
SHARED = {"trained_nets"}  # results several chapters share: a chapter 0, before the first


def layer(module: str, package: str = "book") -> tuple[int, int]:
    """``(kind, chapter)`` of a module: chapter is 0 for modules that belong to none."""
    if module == package:
        return PACKAGE, 0
    rel = module[len(package) + 1:]
    if rel == "authoring" or rel.startswith("authoring."):
        return AUTHORING, 0
    if rel == "nets" or rel.startswith("nets."):
        return NETS, 0
    if rel == "exercises" or rel.startswith("exercises."):
        return EXERCISES, 0
    if rel in ("grade", "grading") or rel.startswith("grading."):
        return GRADER, 0
    if rel in SCRIPTS:
        return WIDGETS, SCRIPTS[rel]
    if rel in SHARED:
        return CHAPTER, 0
    match = re.fullmatch(r"ch(\d+)_\w+", rel)
    if match:
        return (WIDGETS if rel.endswith("_widgets") else CHAPTER), int(match.group(1))
    return FOUNDATION, 0


def allowed(source: str, target: str, package: str = "book") -> bool:
    (kind, chapter), (target_kind, target_chapter) = layer(source, package), layer(target, package)
    if kind == AUTHORING:
        return True
    if target_kind == AUTHORING or kind == PACKAGE:
        return False
    if target_kind == FOUNDATION:
        return True
    if kind == FOUNDATION:
        return False
    if kind == NETS:
        return target_kind == NETS
    if kind == CHAPTER:
        return target_kind == NETS or (target_kind == CHAPTER and target_chapter < chapter)
    if kind == WIDGETS:
        return target_kind == NETS or (target_kind == CHAPTER and target_chapter <= chapter) or \
            (target_kind == WIDGETS and target_chapter < chapter)
    if kind == EXERCISES:
        return target_kind in (NETS, CHAPTER, EXERCISES)
    if kind == GRADER:
        return target_kind in (EXERCISES, GRADER)
    return False


def _circles(graph: dict[str, frozenset[str]]) -> list[list[str]]:
    circles, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                circles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return circles


def layout_violations(root: Path, package: str) -> list[str]:
    """Every import edge the rule forbids, and every circle, in the package at ``root``."""
    graph = import_graph(root, package)
    problems = [f"{a} imports {b}" for a in sorted(graph) for b in sorted(graph[a]) if not allowed(a, b, package)]
    problems += ["circle: " + " → ".join(c) for c in _circles(graph)]
    return problems


def test_the_package_follows_the_import_rule_and_has_no_circle():
    assert layout_violations(ROOT / "book", "book") == []


def test_the_rule_catches_forbidden_edges_and_circles_on_a_crafted_package(tmp_path):
    files = {
        "__init__.py": "",
        "errors.py": "from .ch1_runs import x\n",                  # a foundation reaching up into a chapter
        "data.py": "def load():\n    from .training import t\n",   # foundation ↔ foundation: a circle
        "training.py": "from .data import load\n",
        "nets/__init__.py": "",
        "nets/mlp.py": "from ..ch2_fit import y\n",                 # a network importing a chapter
        "ch1_runs.py": "from .ch2_fit import y\nx = 1\n",           # a chapter importing a later one
        "ch2_fit.py": "from .authoring.pages import z\ny = 2\n",    # a chapter importing build tooling
        "ch3_flow.py": "from .ch3_widgets import w\n",              # experiments importing their own widgets
        "ch3_widgets.py": "from .ch1_runs import x\nfrom .ch3_flow import q\nw = 3\n",  # allowed
        "grade.py": "from .ch1_runs import x\n",                    # the grader reaching past the exercises
        "exercises/__init__.py": "",
        "exercises/checks.py": "from ..grading.judge import j\n",  # a self-check importing the grader
        "grading/__init__.py": "",
        "grading/judge.py": "from ..exercises.checks import c\nfrom ..ch2_fit import y\nj = 5\n",  # one allowed, one not
        "authoring/__init__.py": "",
        "authoring/pages.py": "from ..ch3_widgets import w\nz = 4\n",  # allowed: authoring may import anything
    }
    for name, text in files.items():
        path = tmp_path / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    problems = layout_violations(tmp_path / "pkg", "pkg")
    for expected in ("pkg.errors imports pkg.ch1_runs", "pkg.nets.mlp imports pkg.ch2_fit",
                     "pkg.ch1_runs imports pkg.ch2_fit", "pkg.ch2_fit imports pkg.authoring.pages",
                     "pkg.ch3_flow imports pkg.ch3_widgets", "pkg.grade imports pkg.ch1_runs",
                     "pkg.exercises.checks imports pkg.grading.judge", "pkg.grading.judge imports pkg.ch2_fit"):
        assert expected in problems
    assert any(p.startswith("circle:") and "pkg.data" in p and "pkg.training" in p for p in problems)
    assert any(p.startswith("circle:") and "pkg.ch3_flow" in p and "pkg.ch3_widgets" in p for p in problems)
    assert not any(p.startswith("pkg.ch3_widgets imports pkg.ch1_runs") or p.startswith("pkg.authoring") for p in problems)
    assert "pkg.grading.judge imports pkg.exercises.checks" not in problems


def _all_modules() -> set[str]:
    return {m.name for m in pkgutil.walk_packages(book.__path__, "book.")} | {"book"}


def docstring_problems(doc: str, modules: set[str]) -> list[str]:
    """Modules the docstring does not list, and listed names that are no module."""
    listed = set(re.findall(r":mod:`(book(?:\.\w+)*)`", doc))
    return [f"not listed: {m}" for m in sorted(modules - {"book"} - listed)] + \
           [f"listed but absent: {m}" for m in sorted(listed - modules)]


def test_the_package_docstring_lists_every_module():
    assert docstring_problems(book.__doc__, _all_modules()) == []


def test_the_docstring_check_catches_a_missing_and_a_stale_entry():
    modules = _all_modules() | {"book.ch7_new_chapter"}
    doc = book.__doc__ + "\n- :mod:`book.gradflow` a module that was renamed\n"
    assert docstring_problems(doc, modules) == ["not listed: book.ch7_new_chapter", "listed but absent: book.gradflow"]


# --------------------------------------------------------------------------- a non-editable install carries every module

IMPORT_ALL = """
import importlib, json, sys
names = json.loads(sys.argv[1])
missing = []
for name in names:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as err:
        missing.append(name)
top = importlib.import_module(names[0].split(".")[0])
print(json.dumps({"missing": missing, "file": top.__file__}))
"""


def _install_and_import(project: Path, target: Path, modules: list[str]) -> dict:
    import json

    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", "--target", str(target), str(project)],
                   check=True, capture_output=True, text=True)
    env = {**os.environ, "PYTHONPATH": str(target), "PYTHONSAFEPATH": "1"}
    out = subprocess.run([sys.executable, "-c", IMPORT_ALL, json.dumps(modules)], cwd=target, env=env,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _source_modules(package_dir: Path, package: str) -> list[str]:
    names = []
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir).with_suffix("").parts
        parts = parts[:-1] if parts[-1] == "__init__" else parts
        names.append(".".join((package,) + parts))
    return names


def test_a_non_editable_install_carries_every_module(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        (project / name).write_text((ROOT / name).read_text())
    import shutil

    shutil.copytree(ROOT / "book", project / "book", ignore=shutil.ignore_patterns("__pycache__"))
    result = _install_and_import(project, tmp_path / "site", _source_modules(ROOT / "book", "book"))
    assert result["missing"] == []
    assert Path(result["file"]).is_relative_to(tmp_path / "site")  # the installed copy, not the checkout


def test_the_install_check_catches_a_dropped_subpackage(tmp_path):
    project = tmp_path / "project"
    (project / "pkg" / "sub").mkdir(parents=True)
    (project / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "pkg"
        version = "0"
        [tool.setuptools]
        packages = ["pkg"]
    """))
    (project / "pkg" / "__init__.py").write_text("")
    (project / "pkg" / "sub" / "__init__.py").write_text("")
    (project / "pkg" / "sub" / "mod.py").write_text("x = 1\n")
    result = _install_and_import(project, tmp_path / "site", _source_modules(project / "pkg", "pkg"))
    assert result["missing"] == ["pkg.sub", "pkg.sub.mod"]


def test_importing_every_learner_module_loads_no_build_tooling():
    learner = sorted(m for m in _all_modules() if m != "book.authoring" and not m.startswith("book.authoring."))
    code = ("import importlib, sys\n"
            f"for name in {learner!r}:\n    importlib.import_module(name)\n"
            "print(sorted(m for m in sys.modules if m.startswith('book.authoring')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_a_learners_import_of_the_exercises_loads_neither_the_sources_nor_the_grader():
    """``from book.exercises import check_…`` reaches nothing outside the package: no source parsing (jupytext,
    the repository's exercises/source), no grader."""
    code = ("import sys, book.exercises\n"
            "print(sorted(m for m in sys.modules if m in ('jupytext', 'book.exercises.sources') or m.startswith('book.grad')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip().splitlines()[-1] == "[]"
