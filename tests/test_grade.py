"""``python -m book.grade`` over a batch of crafted submissions: the expected gradebook, and nothing written elsewhere.

The batch (tests/fixtures/submissions, written by its make_submissions.py) holds exercise 4 solved, partly
solved, with a wrong block, and broken in each way a real batch is: a syntax error, an endless loop, two kernel
crashes, sys.exit with huge output and file writes, deleted cells with a renamed function, reordered cells in a
per-student folder, a file that is not a notebook and a folder with no notebook. Each runs in its own
bubblewrap sandbox. Short limits keep the run bounded: at most (submissions × --timeout) seconds, far less in
practice. (Attacks on the grader: tests/test_grade_adversarial.py; collecting: tests/test_grade_collect.py.)
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from book.grading.cli import main
from book.grading.collect import find_submissions
from book.grading.sandbox import unavailable_reason

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "submissions"
LIMITS = ["--cell-timeout", "20", "--test-timeout", "20", "--timeout", "90"]
needs_sandbox = pytest.mark.skipif(unavailable_reason() is not None, reason=f"no sandbox: {unavailable_reason()}")

# submission -> (status, task1, task2, task3, written3b); exercise 4: tasks worth 2, 1 and 4 points, and Task 3's
# two written answers (5 more points, marked by hand)
EXPECTED = {
    "correct": ("ok", "2", "1", "4", "review"),
    "partial": ("cell-errors", "2", "0", "0", "missing"),
    "forgot_shortcut": ("ok", "0", "1", "4", "review"),
    "syntax_error": ("syntax-error", "2", "0", "4", "review"),
    "infinite_loop": ("cell-timeout", "2", "1", "4", "review"),
    "kernel_crash": ("kernel-crashed", "2", "1", "4", "review"),
    "misbehaving": ("cell-errors", "2", "1", "4", "review"),
    "deleted_cells": ("cell-errors", "0", "0", "4", "review"),
    "student_folder": ("cell-errors", "2", "1", "4", "review"),
    "not_a_notebook": ("invalid-notebook", "0", "0", "0", "missing"),
    "empty_folder": ("no-notebook", "0", "0", "0", "missing"),
}


def _tree(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def test_fixtures_are_what_make_submissions_writes(tmp_path):
    sys.path.insert(0, str(FIXTURES))
    try:
        import make_submissions
    finally:
        sys.path.remove(str(FIXTURES))
    written = make_submissions.write(tmp_path)
    for path in written:
        committed = FIXTURES / path.relative_to(tmp_path)
        assert committed.read_text() == path.read_text(), f"rerun make_submissions.py: {committed.name} is stale"


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade the batch once, from a bare working folder and a bare HOME."""
    if unavailable_reason() is not None:
        pytest.skip(f"no sandbox: {unavailable_reason()}")
    base = tmp_path_factory.mktemp("grading")
    cwd, home, out = base / "cwd", base / "home", base / "out"
    cwd.mkdir(), home.mkdir()
    before = _tree(FIXTURES)
    env = dict(os.environ, HOME=str(home), PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(
        [sys.executable, "-m", "book.grade", str(FIXTURES), "--out", str(out), "--gradescope", *LIMITS],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=11 * 100 + 60,
    )
    rows = {}
    if (out / "gradebook.csv").exists():
        with open(out / "gradebook.csv", newline="") as f:
            rows = {row["submission"]: row for row in csv.DictReader(f)}
    return {"proc": proc, "rows": rows, "out": out, "cwd": cwd, "home": home, "before": before, "after": _tree(FIXTURES)}


def test_batch_completes_with_a_summary_and_progress(graded):
    proc = graded["proc"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"graded {len(EXPECTED)} submission(s)" in proc.stdout
    assert "grading" in proc.stderr and "notebook" in proc.stderr  # the tqdm bar


def test_gradebook_has_the_expected_rows(graded):
    rows = graded["rows"]
    assert set(rows) == set(EXPECTED)
    got = {name: (row["status"], row["task1"], row["task2"], row["task3"], row["written3b"]) for name, row in rows.items()}
    assert got == EXPECTED
    for name, row in rows.items():
        assert float(row["total"]) == float(row["task1"]) + float(row["task2"]) + float(row["task3"])
        assert row["review_max"] == ("5" if row["exercise"] else "0") and row["written3a"] == row["written3b"]
        if row["exercise"]:
            assert row["exercise"] == "ex04_building_resnets" and row["max_total"] == "7"


def test_statuses_are_explained(graded):
    rows = graded["rows"]
    assert "SyntaxError" in rows["syntax_error"]["details"]
    assert "CellTimeout" in rows["infinite_loop"]["details"]
    assert rows["kernel_crash"]["details"].count("stopped the kernel") == 2
    assert "SystemExit" in rows["misbehaving"]["details"]
    assert "not a readable notebook" in rows["not_a_notebook"]["details"]


def test_feedback_names_the_mistake(graded):
    feedback = graded["out"] / "feedback"
    assert {p.stem for p in feedback.glob("*.md")} == set(EXPECTED)
    assert "never calls self.shortcut" in (feedback / "forgot_shortcut.md").read_text()
    deleted = (feedback / "deleted_cells.md").read_text()
    assert "`BasicBlock` is not defined" in deleted and "`cifar_resnet_parameters` is not defined" in deleted
    assert "not done yet" in (feedback / "partial.md").read_text()
    assert "under the heading “Task " in (feedback / "partial.md").read_text()     # where, as the learner sees it
    correct = (feedback / "correct.md").read_text()
    assert "7 / 7" in correct and "✓" in correct
    assert "Zero-init made ResNet-20 slower" in correct and "Rubric:" not in correct   # the learner's copy
    marking = (graded["out"] / "marking" / "correct.md").read_text()
    assert "Zero-init made ResNet-20 slower" in marking and "Rubric:" in marking          # the instructor's, to mark
    assert "No answer was written" in (feedback / "partial.md").read_text()


def test_gradescope_results(graded):
    results = json.loads((graded["out"] / "gradescope" / "partial" / "results.json").read_text())
    assert results["score"] == 2
    assert [(t["score"], t["max_score"]) for t in results["tests"]] == [(2, 2), (0, 1), (0, 3), (0, 1), (0, 0), (0, 0)]
    assert "no answer was written" in results["tests"][-1]["output"]
    assert not (graded["out"] / "results.json").exists()  # only for a single submission


def test_huge_output_is_cut(graded):
    assert graded["rows"]["misbehaving"]["task1"] == "2"
    assert all(p.stat().st_size < 5_000_000 for p in graded["out"].rglob("*") if p.is_file())


def test_nothing_is_written_outside_the_output_folder(graded):
    out = graded["out"]
    assert graded["after"] == graded["before"], "the submissions folder changed"
    assert list(graded["cwd"].iterdir()) == [], "the grader wrote into its working folder"
    assert list(graded["home"].iterdir()) == [], "the grader or a kernel wrote into HOME"
    # the notebooks' own files stayed in their sandboxes' scratch folders, which are gone
    assert sorted(p.name for p in out.iterdir()) == ["collection.csv", "feedback", "gradebook.csv", "gradescope", "marking"]
    rows = list(csv.DictReader(open(out / "collection.csv", newline="")))
    assert {r["path"] for r in rows} >= {"correct.ipynb", "empty_folder/README.txt", "make_submissions.py"}


@needs_sandbox
def test_private_hidden_tests_replace_the_public_ones(tmp_path):
    """An instructor's own hidden tests (``--hidden-tests``) decide the points."""
    private = tmp_path / "private"
    private.mkdir()
    source = (ROOT / "exercises" / "source" / "ex04_building_resnets.md").read_text()
    extra = (
        "\n```{code-cell} ipython3\n:tags: [hidden-test]\n:task: 3\n:points: 5\n:title: ResNet-110 too\n\n"
        "assert cifar_resnet_parameters(110) == 1_727_962, 'ResNet-110 is off'\nprint('ResNet-110 right')\n```\n"
    )
    (private / "ex04_building_resnets.md").write_text(source + extra)
    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.copy(FIXTURES / "correct.ipynb", subs / "alice.ipynb")
    out = tmp_path / "out"
    assert main([str(subs), "--out", str(out), "--hidden-tests", str(private), "--exercise", "ex04",
                         "--gradescope", "--quiet", *LIMITS]) == 0
    with open(out / "gradebook.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert (row["status"], row["task1"], row["task2"], row["task3"], row["total"]) == ("ok", "2", "1", "9", "12")
    single = json.loads((out / "results.json").read_text())  # Gradescope's one-submission layout
    assert single["score"] == 12 and any("ResNet-110 right" in t["output"] for t in single["tests"])


def test_bad_invocations_fail_with_a_message(tmp_path, capsys):
    assert main([str(tmp_path / "missing"), "--out", str(tmp_path / "out")]) == 2
    assert "not a folder" in capsys.readouterr().err
    (tmp_path / "subs").mkdir()
    assert main([str(tmp_path / "subs"), "--out", str(tmp_path / "subs" / "out")]) == 2
    assert "must not be inside" in capsys.readouterr().err
    assert main([str(tmp_path / "subs"), "--out", str(tmp_path / "out"), "--exercise", "ex99"]) == 2
    assert "unknown exercise" in capsys.readouterr().err


def test_find_submissions_names_files_and_folders(tmp_path):
    (tmp_path / "a b.ipynb").write_text("{}")
    (tmp_path / "bob" / "work").mkdir(parents=True)
    (tmp_path / "bob" / "work" / "ex.ipynb").write_text("{}")
    (tmp_path / "bob" / ".ipynb_checkpoints").mkdir()
    (tmp_path / "carol").mkdir()
    (tmp_path / ".hidden.ipynb").write_text("{}")
    found = {s.name: s.path for s in find_submissions(tmp_path)}
    assert found == {"a_b": tmp_path / "a b.ipynb", "bob": tmp_path / "bob" / "work" / "ex.ipynb", "carol": None}


@needs_sandbox
def test_a_loop_that_swallows_interrupts_ends_at_the_submission_limit(tmp_path):
    """When interrupting a cell does not stop it, the kernel is killed at --timeout and the row says so."""
    import nbformat
    from nbformat.v4 import new_code_cell

    nb = nbformat.read(FIXTURES / "correct.ipynb", as_version=4)
    nb.cells.insert(3, new_code_cell(
        "import time\nwhile True:\n    try:\n        time.sleep(0.05)\n    except KeyboardInterrupt:\n        pass"))
    subs, out = tmp_path / "subs", tmp_path / "out"
    subs.mkdir()
    nbformat.write(nb, subs / "stubborn.ipynb")
    assert main([str(subs), "--out", str(out), "--quiet", "--cell-timeout", "2", "--timeout", "12"]) == 0
    with open(out / "gradebook.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert (row["status"], row["total"]) == ("timeout", "0")
    assert "did not finish within 12 s" in row["details"]
    assert "not checked" in (out / "feedback" / "stubborn.md").read_text()
