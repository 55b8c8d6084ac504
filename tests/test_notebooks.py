"""The chapters' notebooks (what a Colab badge opens): rendered from their .md for Jupyter, no outputs,
no MyST left, the install cell first and folded; and stale when their source changed."""

import json
import re
import shutil
from pathlib import Path

import jupytext
import pytest

from book.authoring.jupyter_markdown import myst_leftovers
from book.authoring.notebooks import check, fix_install_cell, install_problems, render, sources, stored_glue
from book.authoring.colab import INSTALL_MARKER, colab_url, install_cell, repository

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "chapters").glob("*.md"))


def test_there_are_chapters_and_every_notebook_is_what_the_generator_writes():
    assert CHAPTERS and sources() == CHAPTERS
    assert install_problems() == []
    assert check() == [], "run `python -m book.authoring.notebooks sync` (prose) or `make book` (numbers)"


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.name)
def test_notebook_reads_like_the_page_in_plain_jupyter(md):
    nb = json.loads(md.with_suffix(".ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    first = "".join(code[0]["source"])
    assert first == install_cell() and first.startswith(INSTALL_MARKER)
    assert code[0]["metadata"]["cellView"] == "form"             # Colab shows the title, the code folded
    url, branch = repository()
    assert f"git+{url}@{branch}" in first and '"google.colab" in sys.modules' in first
    assert "from book.numerics import pin" in first and "pip install -e ." in first
    assert all(not c["outputs"] and c["execution_count"] is None for c in code)
    assert not any("myst_nb" in "".join(c["source"]) for c in code), "use book.glue: myst_nb is not on Colab"
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            assert not myst_leftovers("".join(cell["source"])), "".join(cell["source"])[:300]
    text = md.read_text()
    assert len(stored_glue(md.with_suffix(".ipynb"))) == len({c.split(":")[0] for c in
                                                              re.findall(r"\{glue:text\}`([^`]+)`", text)})
    assert "About this notebook" in "".join(nb["cells"][1]["source"])


def _copy_book(tmp_path, chapter: Path) -> Path:
    (tmp_path / "chapters").mkdir()
    for name in ("_config.yml", "references.bib", "intro.md"):   # intro.md holds the chapters' (how-close)= target
        shutil.copy(ROOT / name, tmp_path / name)
    for suffix in (".md", ".ipynb"):
        shutil.copy(chapter.with_suffix(suffix), tmp_path / "chapters" / chapter.with_suffix(suffix).name)
    return tmp_path / "chapters" / chapter.name


def test_check_notices_a_stale_notebook(tmp_path):
    md = _copy_book(tmp_path, CHAPTERS[1])
    assert check(tmp_path) == []
    md.write_text(md.read_text().replace("## Three promises", "## Three small promises"))
    assert any("out of date" in p for p in check(tmp_path))


def test_a_new_glued_name_needs_a_build(tmp_path):
    md = _copy_book(tmp_path, CHAPTERS[1])
    md.write_text(md.read_text().replace("## Three promises", "## {glue:text}`not_glued_yet` promises"))
    assert any("not_glued_yet" in p and "build the book" in p for p in check(tmp_path))


def test_the_install_cell_is_replaced_and_nothing_else(tmp_path):
    md = _copy_book(tmp_path, CHAPTERS[0])
    text = md.read_text()
    old = text.replace(install_cell(), "# Colab: install the course package (does nothing outside Colab).\nimport sys")
    md.write_text(old)
    assert install_problems(tmp_path)
    assert fix_install_cell(md, tmp_path) and md.read_text() == text
    assert not fix_install_cell(md, tmp_path)


def test_the_repository_url_is_configured_in_one_place():
    url, _ = repository()
    assert url.startswith("https://github.com/")
    owner_repo = url.removeprefix("https://github.com/")
    for path in ROOT.rglob("*"):
        if any(part.startswith((".", "_build")) or part in ("test-artifacts",) for part in path.relative_to(ROOT).parts):
            continue
        if path.suffix not in (".py", ".md", ".yml", ".toml", ".txt", ".ipynb", ".cfg"):
            continue
        for found in re.findall(r"github\.com/([\w.-]+/[\w.-]+)", path.read_text(errors="ignore")):
            found = found.removesuffix(".git")
            if found.startswith(owner_repo.split("/")[0]):
                assert found == owner_repo, f"{path}: {found} differs from _config.yml's {owner_repo}"


def test_colab_url_points_at_the_committed_notebook():
    url = colab_url("chapters/01_degradation.ipynb")
    assert url.startswith("https://colab.research.google.com/github/") and url.endswith("/main/chapters/01_degradation.ipynb")
    assert (ROOT / "chapters" / "01_degradation.ipynb").exists()
    assert INSTALL_MARKER in install_cell()
