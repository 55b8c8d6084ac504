"""A class in minutes: ``--jobs N`` grades submissions in parallel, each in its own sandbox, and writes the same
gradebook as a serial run.

The batch is 20 tiny notebooks of a stripped exercise (one quick task, ``count_paths``, and one written answer):
correct, wrong, empty, broken, and a late draft with its final in one learner's folder. Each still runs in a fresh
kernel in its own bubblewrap sandbox, so the test measures the grader's own overhead per submission.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from book.grading import cli
from book.grading.results import GradeConfig, SubmissionResult
from book.grading.sandbox import unavailable_reason
from conftest import record_margins

pytestmark = pytest.mark.skipif(unavailable_reason() is not None, reason=f"no sandbox: {unavailable_reason()}")

EXERCISE = "ex05_unrolled_view"

SOURCE = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
    format_version: 0.13
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# Exercises 5 · paths only

## Task 1 · Count the paths

```{code-cell} ipython3
:tags: [solution]

import math


def count_paths(n: int, k: int) -> int:
    ### BEGIN SOLUTION
    return math.comb(n, k)
    ### END SOLUTION
```

```{code-cell} ipython3
:tags: [hidden-test]
:task: 1
:points: 2
:title: count the paths

from book.exercises import grade_task, check_count_paths
grade_task(check_count_paths, globals(), "count_paths", thorough=True)
```

+++ {"tags": ["answer"], "task": 1, "answer": "1a", "points": 2, "title": "why binomial"}

**Your answer (1a)**

*Replace this line with your explanation.*

+++ {"tags": ["rubric"], "answer": "1a"}

- 2 points: a path picks k of the n blocks.
"""

BODIES = {
    "correct": "import math\n\ndef count_paths(n, k):\n    return math.comb(n, k)",
    "power": "def count_paths(n, k):\n    return n ** k",
    "float": "import math\n\ndef count_paths(n, k):\n    return float(math.comb(n, k))",
    "empty": "def count_paths(n, k):\n    raise NotImplementedError('not done yet')",
    "syntax": "def count_paths(n, k)\n    return 1",
    "name_error": "def count_paths(n, k):\n    return undefined_name",
}


def _notebook(body: str, answer: str | None = None):
    cells = [new_markdown_cell("## Task 1 · Count the paths"), new_code_cell(body),
             new_markdown_cell("**Your answer (1a)**\n\n" + (answer or "*Replace this line with your explanation.*"))]
    return new_notebook(cells=cells, metadata={"residual_course": {"exercise": EXERCISE}})


def _batch(folder: Path) -> int:
    """20 submissions: loose notebooks of each kind, and one learner's folder with a draft and a later final."""
    kinds = list(BODIES)
    for i in range(19):
        kind = kinds[i % len(kinds)]
        nbformat.write(_notebook(BODIES[kind], "a path picks k of n" if i % 2 else None), folder / f"s{i:02d}_{kind}.ipynb")
    learner = folder / "late_learner"
    learner.mkdir()
    nbformat.write(_notebook(BODIES["power"]), learner / "draft.ipynb")
    time.sleep(0.05)
    nbformat.write(_notebook(BODIES["correct"], "k of n blocks"), learner / "final.ipynb")   # modified last: graded
    return 20


def _grade(submissions: Path, out: Path, tests: Path, jobs: int) -> tuple[float, list[SubmissionResult]]:
    cfg = GradeConfig(out=out, hidden_tests=tests, exercise=EXERCISE, timeout=120, cell_timeout=30,
                              test_timeout=30, progress=False, jobs=jobs)
    started = time.monotonic()
    results = cli.grade_folder(submissions, cfg)
    return time.monotonic() - started, results


def test_jobs_2_writes_the_same_gradebook_as_jobs_1_in_less_time(tmp_path):
    submissions, tests = tmp_path / "submissions", tmp_path / "tests"
    submissions.mkdir()
    tests.mkdir()
    (tests / f"{EXERCISE}.md").write_text(SOURCE)
    count = _batch(submissions)
    serial_s, serial = _grade(submissions, tmp_path / "out1", tests, jobs=1)
    parallel_s, parallel = _grade(submissions, tmp_path / "out2", tests, jobs=2)
    print(f"\n{count} submissions: --jobs 1 {serial_s:.1f} s ({serial_s / count:.2f} s each, "
          f"{serial_s / count * 100 / 60:.1f} min per 100); --jobs 2 {parallel_s:.1f} s ({parallel_s / count:.2f} s "
          f"each, {parallel_s / count * 100 / 60:.1f} min per 100)")
    record_margins("grading seconds, --jobs 1 against --jobs 2", submissions=count, jobs1_s=round(serial_s, 1),
                   jobs2_s=round(parallel_s, 1))
    assert len(serial) == count
    book1 = (tmp_path / "out1" / "gradebook.csv").read_text()
    assert book1 == (tmp_path / "out2" / "gradebook.csv").read_text()
    assert (tmp_path / "out1" / "collection.csv").read_text() == (tmp_path / "out2" / "collection.csv").read_text()
    for r in serial:   # the same verdicts (the cases differ: each run draws its own seeds)
        heads = [[line for line in (out / "feedback" / f"{r.name}.md").read_text().splitlines() if line[:2] in ("##", "- ")]
                 for out in (tmp_path / "out1", tmp_path / "out2")]
        assert heads[0] == heads[1]
    rows = {r.name: r for r in parallel}
    assert rows["late_learner"].total == 2 and "draft.ipynb" in " ".join(rows["late_learner"].notes)
    assert rows["s00_correct"].total == 2 and rows["s01_power"].total == 0 and rows["s03_empty"].total == 0
    assert rows["s04_syntax"].status == "syntax-error" and rows["s05_name_error"].status in ("ok", "cell-errors")
    assert {r.status for r in parallel} <= {"ok", "cell-errors", "syntax-error"}
    # every row ran in its own sandbox, under the same limits
    assert all(r.limits and r.limits == serial[0].limits for r in parallel)
    if os.cpu_count() and os.cpu_count() >= 2:
        assert parallel_s < serial_s


def test_jobs_must_be_at_least_one(tmp_path):
    with pytest.raises(ValueError, match="--jobs"):
        cli.grade_folder(tmp_path, GradeConfig(out=tmp_path / "out", jobs=0))
