"""The instructor's path, end to end, on one exercise: the course edition's source tree gives the student notebook;
a batch of submissions made from it (solved, wrong, empty, and a learner's folder holding a late draft and the
final) is graded in sandboxes, two at a time; the gradebook, the learners' feedback, the instructor's marking copies
and the LMS gradebook templates agree; and the Gradescope zip grades the final notebook in a simulated /autograder.

Exercise 7 is used: its notebook multiplies 4 × 4 matrices and runs in about a second, so the whole path takes
well under a minute and a half. (The crafted failures of a batch: tests/test_grade.py; attacks:
tests/test_grade_adversarial.py; the editions: tests/test_editions.py.)
"""

from __future__ import annotations

import copy
import csv
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import jupytext
import nbformat
import pytest

from book.authoring.editions import course_tree
from book.authoring.exercise_pages import SOLUTION_BEGIN, _drop_markers
from book.authoring.instructor_bundle import canvas_template, exercise_points, moodle_template
from book.exercises.sources import cell_tags, written_answers
from book.grading.collect import SOURCE_DIR
from book.grading.gradescope import write_gradescope_zip
from book.grading.sandbox import unavailable_reason

ROOT = Path(__file__).resolve().parent.parent
EXERCISE = "ex07_family_of_skips"
LIMITS = ["--cell-timeout", "30", "--test-timeout", "30", "--timeout", "90"]
ANSWER = "The unconstrained gain grew to about 2 × 10⁴ after 256 blocks; Sinkhorn kept it at 1."

pytestmark = pytest.mark.skipif(unavailable_reason() is not None, reason=f"no sandbox: {unavailable_reason()}")


def _solutions() -> list[str]:
    source = jupytext.read(SOURCE_DIR / f"{EXERCISE}.md")
    return [_drop_markers(c.source) for c in source.cells if c.cell_type == "code" and "solution" in cell_tags(c)]


def _task_cells(nb) -> list[int]:
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "NotImplementedError" in c.source]


def _solved(student, wrong_sinkhorn: bool = False):
    """The student notebook with every task's solution pasted in and every written answer written."""
    nb = copy.deepcopy(student)
    for i, solution in zip(_task_cells(nb), _solutions(), strict=True):
        nb.cells[i].source = solution
    if wrong_sinkhorn:   # a usual slip: only the rows are normalized, once
        i = next(i for i in _task_cells(student) if "def sinkhorn(" in student.cells[i].source)
        nb.cells[i].source = nb.cells[i].source.split("    for _ in range(iters):")[0] + \
            "    return M / M.sum(dim=1, keepdim=True)\n"
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.startswith("**Your answer ("):
            cell.source = f"{cell.source.splitlines()[0]}\n\n{ANSWER}"
    return nb


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    base = tmp_path_factory.mktemp("instructor")
    # 1. the course edition: its page holds no solution, its download is the student notebook
    tree = course_tree(base / "course")
    assert SOLUTION_BEGIN not in (tree / "exercises" / f"{EXERCISE}.md").read_text()
    student = nbformat.read(tree / "exercises" / f"{EXERCISE}.ipynb", as_version=4)
    assert _task_cells(student) and not any("### END SOLUTION" in c.source for c in student.cells)
    # 2. a batch, as an LMS export gives it: loose notebooks and one learner's folder with a draft and the final
    subs = base / "submissions"
    (subs / "dana").mkdir(parents=True)
    nbformat.write(_solved(student), subs / "ana.ipynb")
    nbformat.write(_solved(student, wrong_sinkhorn=True), subs / "ben.ipynb")
    nbformat.write(student, subs / "cy.ipynb")                                # handed in untouched
    nbformat.write(student, subs / "dana" / "draft.ipynb")
    nbformat.write(_solved(student), subs / "dana" / "final.ipynb")
    os.utime(subs / "dana" / "draft.ipynb", (time.time() - 3600,) * 2)       # the draft, an hour earlier
    # 3. grade it, two sandboxes at a time
    out = base / "out"
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "book.grade", str(subs), "--out", str(out), "--exercise", "ex07",
                           "--jobs", "2", "--gradescope", "--quiet", *LIMITS],
                          cwd=base, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    with open(out / "gradebook.csv", newline="") as f:
        rows = {row["submission"]: row for row in csv.DictReader(f)}
    return {"base": base, "out": out, "rows": rows, "student": student, "seconds": time.perf_counter() - started}


def test_the_gradebook_scores_each_submission(path):
    rows = path["rows"]
    auto, written = exercise_points(SOURCE_DIR / f"{EXERCISE}.md")
    assert set(rows) == {"ana", "ben", "cy", "dana"}
    assert float(rows["ana"]["total"]) == float(rows["dana"]["total"]) == auto
    assert 0 < float(rows["ben"]["total"]) < auto                      # Task 1 lost, the rest still scored
    assert float(rows["cy"]["total"]) == 0
    labels = [a["answer"] for a in written_answers(SOURCE_DIR / f"{EXERCISE}.md")]
    for name in ("ana", "dana"):
        assert all(rows[name][f"written{label}"] == "review" for label in labels)
    assert all(rows["cy"][f"written{label}"] == "missing" for label in labels)
    assert {row["review_max"] for row in rows.values()} == {f"{written:g}"}
    assert rows["dana"]["original_path"].endswith("final.ipynb")
    log = (path["out"] / "collection.csv").read_text()
    assert "dana/final.ipynb" in log and "dana/draft.ipynb" in log and "modified last" in log


def test_feedback_for_learners_and_marking_copies_for_the_instructor(path):
    feedback, marking = path["out"] / "feedback", path["out"] / "marking"
    assert {p.stem for p in feedback.glob("*.md")} == {"ana", "ben", "cy", "dana"}
    for name in ("ana", "ben", "cy", "dana"):
        learner, instructor = (feedback / f"{name}.md").read_text(), (marking / f"{name}.md").read_text()
        assert "Rubric:" not in learner and "Rubric:" in instructor
    assert ANSWER in (feedback / "ana.md").read_text() and ANSWER in (marking / "dana.md").read_text()
    assert "not done yet" in (feedback / "cy.md").read_text()
    assert "Task 1" in (feedback / "ben.md").read_text() and "✗" in (feedback / "ben.md").read_text()
    assert "draft.ipynb" in (feedback / "dana.md").read_text()          # the learner is told what was left out


def test_the_lms_templates_take_the_gradebook_totals(path):
    """The instructor enters each total in the Canvas or Moodle template: one column for the exercise, whose
    maximum is the exercise's points (checked automatically and written)."""
    canvas = list(csv.reader(canvas_template().splitlines()))
    moodle = list(csv.reader(moodle_template().splitlines()))
    column = next(i for i, name in enumerate(canvas[0]) if name.endswith(f"({EXERCISE[:4]})"))
    assert canvas[0][column] in moodle[0]
    possible = float(canvas[1][column])
    assert possible == sum(exercise_points(SOURCE_DIR / f"{EXERCISE}.md"))
    for row in path["rows"].values():
        assert 0 <= float(row["total"]) + float(row["review_max"]) <= possible


def test_gradescope_results_and_the_zip_in_a_simulated_autograder(path):
    out, base = path["out"], path["base"]
    auto, _ = exercise_points(SOURCE_DIR / f"{EXERCISE}.md")
    results = {p.parent.name if p.name == "results.json" else p.stem: json.loads(p.read_text())
               for p in out.rglob("*.json")}
    assert results, sorted(p.name for p in out.iterdir())
    # the zip, unpacked as Gradescope lays it out, grades the learner's final notebook
    root = base / "autograder"
    with zipfile.ZipFile(write_gradescope_zip(base / "autograder.zip", "ex07")) as z:
        z.extractall(root / "source")
    (root / "source" / "run_autograder").chmod(0o755)
    (root / "submission").mkdir()
    nbformat.write(_solved(path["student"]), root / "submission" / f"{EXERCISE}.ipynb")
    done = subprocess.run(["bash", str(root / "source" / "run_autograder")],
                          env={**os.environ, "AUTOGRADER_ROOT": str(root), "AUTOGRADER_PYTHON": sys.executable},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads((root / "results" / "results.json").read_text())
    assert data["score"] == auto, data.get("output", "")[-2000:]
    assert "Rubric:" not in json.dumps(data)
