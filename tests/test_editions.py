"""The course edition holds no solution text; the instructor bundle holds everything it leaves out.

The course edition is rendered by Jupyter Book from the tree ``make book EDITION=course`` builds, with execution
off (the exercise pages of the course edition are never executed; the chapters are the public ones, which
``make book`` executes and tests elsewhere), so this takes seconds, not the full build's minutes.
"""

from __future__ import annotations

import csv
import html
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from book.authoring.editions import course_tree
from book.authoring.exercise_pages import ROOT, SOLUTION_BEGIN, SOLUTION_END, SOURCE_DIR, book_page, student_notebook
from book.authoring.instructor_bundle import build_bundle
from book.exercises.sources import cell_tags, exercise_sources, read_source, written_answers

N = 8   # words in a row that make a passage "the same text"


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9_]+", text.lower())


def _grams(words: list[str], n: int = N) -> set[tuple[str, ...]]:
    if len(words) < n:
        return {tuple(words)} if words else set()
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def _text_of_html(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def _solution_passages(source: Path) -> list[tuple[str, set]]:
    """Every solution region, solution note, model answer and rubric of a source, as the word runs a learner's copy
    does not hold (a region may repeat a line that the task shows anyway)."""
    nb = student_notebook(source)
    student = set()
    for cell in nb.cells:
        student |= _grams(_words(cell.source))
    passages = []
    for cell in read_source(source).cells:
        tags = cell_tags(cell)
        if "solution" in tags and cell.cell_type == "code":
            region, inside = [], False
            for line in cell.source.splitlines():
                if line.strip() == SOLUTION_BEGIN:
                    inside, region = True, []
                elif line.strip() == SOLUTION_END:
                    inside = False
                    grams = _grams(_words("\n".join(region)), min(N, max(4, len(_words("\n".join(region)))))) - student
                    if grams:
                        passages.append(("solution code", grams))
                elif inside:
                    region.append(line)
        elif ("solution" in tags and cell.cell_type == "markdown") or "rubric" in tags:
            grams = _grams(_words(cell.source)) - student
            if grams:
                passages.append(("rubric" if "rubric" in tags else "solution notes or model answer", grams))
    return passages


def _leaks(text: str, passages) -> list[str]:
    found = _grams(_words(text)) | {g for g in (_grams(_words(text), n) for n in range(4, N)) for g in g}
    return [f"{kind}: {' '.join(next(iter(grams & found)))}" for kind, grams in passages if grams & found]


def test_the_detector_finds_solutions_in_the_public_page():
    source = ROOT / "exercises" / "source" / "ex04_building_resnets.md"
    passages = _solution_passages(source)
    assert {kind for kind, _ in passages} >= {"solution code", "solution notes or model answer", "rubric"}
    assert _leaks(book_page(source), passages)                                  # the public page shows them
    assert not _leaks(book_page(source, edition="course"), passages)


@pytest.fixture(scope="module")
def course_site(tmp_path_factory):
    """The course edition's tree, rendered to HTML without executing a page."""
    tree = course_tree(tmp_path_factory.mktemp("course") / "src")
    (tree / "_config.yml").unlink()
    config = (ROOT / "_config.yml").read_text().replace("execute_notebooks: cache", 'execute_notebooks: "off"')
    (tree / "_config.yml").write_text(config)
    out = tree.parent / "out"
    done = subprocess.run(["nice", "-n", "15", str(Path(sys.executable).parent / "jupyter-book"), "build",
                           "--keep-going", str(tree), "--path-output", str(out)],
                          capture_output=True, text=True, timeout=600)
    html_dir = out / "_build" / "html"
    assert (html_dir / "index.html").exists(), done.stdout[-3000:] + done.stderr[-3000:]
    return tree, html_dir


def test_course_edition_pages_hold_no_solution_text(course_site):
    tree, html_dir = course_site
    for source in exercise_sources(SOURCE_DIR):
        passages = _solution_passages(source)
        page = (tree / "exercises" / f"{source.stem}.md").read_text()
        assert 'execution_mode: "off"' in page and "{glue" not in page and SOLUTION_BEGIN not in page
        assert not _leaks(page, passages), f"{source.stem}: the course page shows {_leaks(page, passages)[0]}"
        built = _text_of_html((html_dir / "exercises" / f"{source.stem}.html").read_text())
        assert "Task 1" in built and "Your answer" in built                        # the tasks are there
        assert "A model answer" not in built and "Solution notes" not in built
        assert not _leaks(built, passages), f"{source.stem}: the built page shows {_leaks(built, passages)[0]}"
        for rubric in (a["rubric"] for a in written_answers(source)):
            assert rubric.splitlines()[0][:60] not in page
        # the download button gives the student notebook, the same as the Colab button
        download = html_dir / "_sources" / "exercises" / f"{source.stem}.ipynb"
        assert nbformat.read(download, 4) == student_notebook(source)
        assert not _leaks("\n".join(c.source for c in nbformat.read(download, 4).cells), passages)
        page_source = (html_dir / "_sources" / "exercises" / f"{source.stem}.md").read_text()
        assert not _leaks(page_source, passages)


def test_public_edition_is_unchanged_and_in_sync():
    from book.authoring.exercise_pages import check

    assert check() == []       # the committed public pages are the default edition's output
    with pytest.raises(ValueError):
        book_page(exercise_sources(SOURCE_DIR)[0], edition="draft")


def test_instructor_bundle_holds_solutions_rubrics_tests_guide_gradebooks_and_gradescope(tmp_path):
    zip_path = build_bundle(tmp_path / "bundle")
    bundle = tmp_path / "bundle"
    with zipfile.ZipFile(zip_path) as z:
        names = set(z.namelist())
    guide = (bundle / "marking-guide.md").read_text()
    for source in exercise_sources(SOURCE_DIR):
        for folder, suffix in (("solutions", "ipynb"), ("rubrics", "md"), ("hidden-tests", "md"), ("gradescope", "zip")):
            assert f"bundle/{folder}/{source.stem}.{suffix}" in names
        solutions = "\n".join(c.source for c in nbformat.read(bundle / "solutions" / f"{source.stem}.ipynb", 4).cells)
        passages = _solution_passages(source)
        assert len(_leaks(solutions, passages)) == len(passages)         # every solution and rubric is in it
        assert (bundle / "hidden-tests" / source.name).read_bytes() == source.read_bytes()
        with zipfile.ZipFile(bundle / "gradescope" / f"{source.stem}.zip") as z:
            assert f"hidden-tests/{source.stem}.md" in z.namelist() and "run_autograder" in z.namelist()
        rubrics = (bundle / "rubrics" / f"{source.stem}.md").read_text()
        for answer in written_answers(source):
            assert answer["rubric"] in rubrics and answer["rubric"] in guide
    with open(bundle / "gradebook" / "canvas.csv", newline="") as f:
        canvas = list(csv.reader(f))
    assert canvas[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert canvas[1][0].strip() == "Points Possible" and len(canvas[0]) == 5 + len(exercise_sources(SOURCE_DIR))
    assert all(float(p) > 0 for p in canvas[1][5:])
    with open(bundle / "gradebook" / "moodle.csv", newline="") as f:
        moodle = list(csv.reader(f))
    assert "Email address" in moodle[0] and moodle[0][4:] == canvas[0][5:]
