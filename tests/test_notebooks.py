"""Paired notebooks: in sync with their .md, no outputs, the Colab install cell first."""

import re
from pathlib import Path

import jupytext
import pytest

from book.colab import INSTALL_MARKER, colab_url, install_cell, repository
from book.authoring.notebooks import check, sources

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "chapters").glob("*.md"))


def test_there_are_chapters_and_all_are_in_sync():
    assert CHAPTERS and sources() == CHAPTERS
    assert check() == []


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.name)
def test_paired_notebook_is_clean_and_starts_with_the_install_cell(md):
    nb = jupytext.read(md.with_suffix(".ipynb"))
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].source == install_cell()
    url, branch = repository()
    assert f"git+{url}@{branch}" in code[0].source and '"google.colab" in sys.modules' in code[0].source
    assert all(not c.outputs and c.execution_count is None for c in code)
    assert not any("myst_nb" in c.source for c in code), "use book.glue: myst_nb is not on Colab"


def test_check_notices_a_stale_pair(tmp_path):
    (tmp_path / "chapters").mkdir()
    (tmp_path / "_config.yml").write_text((ROOT / "_config.yml").read_text())
    src = CHAPTERS[0].read_text()
    (tmp_path / "chapters" / "x.md").write_text(src)
    (tmp_path / "chapters" / "x.ipynb").write_text(CHAPTERS[0].with_suffix(".ipynb").read_text())
    assert check(tmp_path) == []
    (tmp_path / "chapters" / "x.md").write_text(src.replace("import inspect", "import inspect, os"))
    assert any("out of sync" in p for p in check(tmp_path))


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
