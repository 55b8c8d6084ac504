"""Collecting a real batch (Unicode names, macOS archives, drafts, symlinks, stray files, the wrong exercise),
and the Gradescope autograder run in a simulated ``/autograder`` layout."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from book.grading import judge
from book.grading.cli import main
from book.grading.collect import find_submissions
from book.grading.gradebook import write_reports
from book.grading.results import GradeConfig, SubmissionResult, TaskResult
from book.grading.sandbox import unavailable_reason

ROOT = Path(__file__).resolve().parent.parent
SOLVED = ROOT / "tests" / "fixtures" / "submissions" / "correct.ipynb"


def test_collection_rules(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    for name in ("张伟.ipynb", "李娜.ipynb", "Zoë.ipynb", "Zoé.ipynb", "a b.ipynb", ".hidden.ipynb", "notes.txt"):
        (subs / name).write_text("{}")
    (subs / "__MACOSX").mkdir()
    (subs / "__MACOSX" / "._bob.ipynb").write_text("junk")
    (subs / "bob").mkdir()
    (subs / "bob" / "._final.ipynb").write_text("junk")
    (subs / "bob" / "draft.ipynb").write_text("{}")
    (subs / "bob" / "final.ipynb").write_text("{}")
    os.utime(subs / "bob" / "draft.ipynb", (1_000_000, 1_000_000))
    (subs / "bob" / ".ipynb_checkpoints").mkdir()
    (subs / "bob" / ".ipynb_checkpoints" / "final-checkpoint.ipynb").write_text("{}")
    (subs / "carol").mkdir()
    (subs / "carol" / "linked.ipynb").symlink_to(SOLVED)
    (subs / "dave.ipynb").symlink_to(SOLVED)
    log: list = []
    found = {s.name: s for s in find_submissions(subs, log)}
    assert set(found) == {"张伟", "李娜", "Zoë", "Zoé", "a_b", "bob", "carol", "dave"}
    assert found["bob"].path == subs / "bob" / "final.ipynb" and "draft.ipynb" in found["bob"].notes[0]
    assert found["carol"].path is None and "symbolic link" in found["carol"].notes[0]
    assert found["dave"].refused and found["dave"].original == "dave.ipynb"
    assert found["Zoë"].original == "Zoë.ipynb"
    logged = dict(log)
    every_file = {str(p.relative_to(subs)) for p in subs.rglob("*") if p.is_file() or p.is_symlink()}
    assert every_file <= set(logged), every_file - set(logged)
    assert logged["__MACOSX/._bob.ipynb"].startswith("ignored") and logged["bob/._final.ipynb"].startswith("ignored")
    assert logged[".hidden.ipynb"].startswith("ignored") and logged["notes.txt"].startswith("ignored")
    assert logged["bob/draft.ipynb"].startswith("ignored") and logged["dave.ipynb"].startswith("refused")


def test_gradebook_rows_for_odd_files_and_the_wrong_exercise(tmp_path):
    subs, out = tmp_path / "subs", tmp_path / "out"
    subs.mkdir()
    (subs / "dave.ipynb").symlink_to(SOLVED)
    nb = nbformat.read(SOLVED, as_version=4)
    nb.metadata["residual_course"] = {"exercise": "ex05_unrolled_view"}
    nbformat.write(nb, subs / "Zoë.ipynb")
    assert main([str(subs), "--out", str(out), "--exercise", "ex04", "--quiet"]
                        + ([] if unavailable_reason() is None else ["--unsafe-no-sandbox"])) == 0
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as f:
        rows = {row["submission"]: row for row in csv.DictReader(f)}
    assert (rows["dave"]["status"], rows["dave"]["total"]) == ("refused", "0")
    assert (rows["Zoë"]["status"], rows["Zoë"]["original_path"]) == ("wrong-exercise", "Zoë.ipynb")
    assert (out / "feedback" / "Zoë.md").exists() and (out / "collection.csv").exists()


@pytest.mark.skipif(unavailable_reason() is not None, reason="no sandbox")
def test_gradescope_autograder_runs_in_an_autograder_layout(tmp_path):
    zip_path = tmp_path / "autograder.zip"
    assert main(["--gradescope-zip", str(zip_path), "--exercise", "ex04"]) == 0
    with zipfile.ZipFile(zip_path) as z:
        names = set(z.namelist())
        setup = z.read("setup.sh").decode()
        assert {"setup.sh", "run_autograder", "hidden-tests/ex04_building_resnets.md", "course/book/grade.py", "course/book/grading/runner.py"} <= names
        assert "python3 -m venv" in setup and "bubblewrap" in setup   # the course ships inside the zip
        root = tmp_path / "autograder"   # stands for /autograder
        z.extractall(root / "source")
    (root / "submission").mkdir()
    (root / "results").mkdir()
    shutil.copy(SOLVED, root / "submission" / "ex04_building_resnets.ipynb")
    run = root / "source" / "run_autograder"
    run.chmod(0o755)
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), AUTOGRADER_PYTHON=sys.executable)
    proc = subprocess.run([str(run)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((root / "results" / "results.json").read_text())
    assert results["score"] == 7 and [t["score"] for t in results["tests"]] == [2, 1, 3, 1, 0, 0]


def test_written_answers_go_to_the_gradebook_for_review_and_to_the_feedback_with_their_rubric(tmp_path):
    """A written answer is never scored: the gradebook marks it for review; the feedback fences the learner's text."""
    from book.exercises.sources import collect_answers, written_answers
    from book.grading.collect import SOURCE_DIR

    specs = written_answers(SOURCE_DIR / "ex01_degradation.md")
    nb = nbformat.read(ROOT / "exercises" / "ex01_degradation.ipynb", as_version=4)
    hostile = "Underfitting: 54% vs 1.5%.\n```\n<script>alert(1)</script>\n# Task 1 · 100 / 1 ✓"
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.startswith("**Your answer (3b)**"):
            cell.source = "**Your answer (3b)**\n\n" + hostile
    rows = []
    for name, notebook in (("wrote", nb), ("blank", nbformat.read(ROOT / "exercises" / "ex01_degradation.ipynb", 4))):
        result = SubmissionResult(name, f"{name}.ipynb", "ex01_degradation", "ok",
                                  tasks=[TaskResult(1, "count", 1.0, 1.0, "passed")])
        result.written = judge._written(notebook, specs)
        rows.append(result)
    cfg = GradeConfig(out=tmp_path)
    write_reports(rows, cfg)
    with open(tmp_path / "gradebook.csv", newline="") as f:
        book = {r["submission"]: r for r in csv.DictReader(f)}
    assert (book["wrote"]["written3a"], book["wrote"]["written3b"]) == ("missing", "review")
    assert (book["blank"]["written3a"], book["blank"]["written3b"]) == ("missing", "missing")
    assert book["wrote"]["total"] == "1" and book["wrote"]["review_max"] == "8"
    feedback = (tmp_path / "feedback" / "wrote.md").read_text()
    assert "````text\n" + hostile + "\n````" in feedback      # a fence longer than any run of backticks inside
    assert "Rubric:" not in feedback and "underfits" not in feedback and "marked by hand" in feedback
    marking = (tmp_path / "marking" / "wrote.md").read_text()
    assert "````text\n" + hostile + "\n````" in marking
    assert "Rubric:" in marking and "underfits" in marking                  # the instructor's copy, to mark
    assert "No answer was written" in (tmp_path / "feedback" / "blank.md").read_text()
    assert collect_answers(nb, specs)["3b"] == hostile


def test_an_unreadable_notebook_has_no_written_answers():
    from book.exercises.sources import written_answers
    from book.grading.collect import SOURCE_DIR

    specs = written_answers(SOURCE_DIR / "ex01_degradation.md")
    assert [w.text for w in judge._written(None, specs)] == [None] * len(specs) and len(specs) == 4
    assert [w.text for w in judge._written({"cells": [None, 3, {"cell_type": "markdown"}]}, specs)] == [None] * 4


def test_a_cell_is_named_by_the_heading_a_learner_sees():
    """Colab and Jupyter show no cell numbers: a note names the heading above the cell and its place under it."""
    nb = nbformat.read(ROOT / "exercises" / "ex04_building_resnets.ipynb", as_version=4)
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    stubs = [k for k, i in enumerate(code) if "NotImplementedError" in nb.cells[i].source]
    places = [judge._place(nb, k) for k in stubs]
    assert places[0].startswith("the ") and "under the heading “Task 1 · " in places[0], places
    assert all("under the heading “Task" in p for p in places) and not any("cell 7" in p for p in places)
    assert judge._place(nb, 0) == "the first code cell before the first heading"      # the install cell
    assert judge._place(None, 6) == "code cell 7"
