"""The executed build and the notebooks that Colab badges open: same numbers, and the right downloads.

``make book`` renders the chapters' notebooks after building (``python -m book.authoring.notebooks colab``);
these tests take the test session's own build (the ``built_site`` fixture) and fail when a committed
notebook's numbers differ from it. They write nothing into the repository: the notebooks this build would
give go to ``test-artifacts/colab-notebooks/`` for a look.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from book.authoring.notebooks import VARYING, _text, check, glue_from_build, render, sources, stale_numbers

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "colab-notebooks"



def test_every_chapter_notebook_has_the_numbers_of_this_build(site):
    build = site.parent
    assert check() == []
    stale = stale_numbers(build=build)
    assert not stale, ("run `make book` (or `python -m book.authoring.notebooks colab` after this build) and commit "
                       f"the notebooks; {len(stale)} number(s) differ: {stale[:10]}")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for md in sources():     # what `colab` would write from this build, for a look (the repository is not touched)
        (ARTIFACTS / md.with_suffix(".ipynb").name).write_text(_text(render(md, glue_from_build(md, build=build))))


def test_timings_are_the_only_values_left_out_of_the_comparison(site):
    build = site.parent
    varying = sorted(n for md in sources() for n in glue_from_build(md, build=build) if VARYING.search(n))
    assert all(any(w in n for w in ("seconds", "slowdown")) for n in varying), varying


def test_a_page_downloads_the_notebook_its_colab_button_opens(site):
    html = site
    pages = [md for md in sorted((ROOT / "exercises").glob("ex*.md"))] + sources()
    for md in pages:
        rel = md.relative_to(ROOT).with_suffix(".ipynb")
        page = (html / rel.with_suffix(".html")).read_text()
        assert f"_sources/{rel.as_posix()}" in page, f"{rel}: no download link to the notebook"
        assert (html / "_sources" / rel).read_bytes() == (ROOT / rel).read_bytes(), \
            f"{rel}: the download differs from the notebook the Colab button opens"
