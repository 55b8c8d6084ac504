"""The instructor bundle: what a course needs to set the exercises for credit, and what learners must not see.

``python -m book.authoring.instructor_bundle --out DIR`` (``make instructor-bundle``) writes, from the exercise
sources, a folder ``DIR`` and beside it ``DIR.zip``:

- ``solutions/exNN_name.ipynb``: each exercise with its solutions, solution notes, model answers and rubrics;
- ``rubrics/exNN_name.md``: each written answer's points, rubric and model answer;
- ``hidden-tests/exNN_name.md``: the exercise sources the grader reads (``python -m book.grade … --hidden-tests
  hidden-tests``; edit them to grade with tests of your own);
- ``marking-guide.md``: the points of every exercise, how to grade a batch, and what to mark by hand;
- ``gradebook/canvas.csv`` and ``gradebook/moodle.csv``: gradebook templates in the two systems' CSV import
  formats, one column per exercise (its points in all: checked automatically plus written);
- ``gradescope/exNN_name.zip``: each exercise's Gradescope autograder (``python -m book.grade --gradescope-zip``).

Keep the bundle private: it holds everything the course edition (``make book EDITION=course``) leaves out.
"""

from __future__ import annotations

import argparse
import copy
import csv
import io
import re
import shutil
import sys
from pathlib import Path

from ..exercises.sources import cell_tags, exercise_sources, hidden_tests, read_source, written_answers
from .exercise_pages import ROOT, SOURCE_DIR, _drop_markers, _install_cell, points_table

__all__ = ["solution_notebook", "rubrics_text", "marking_guide", "exercise_title", "exercise_points",
           "canvas_template", "moodle_template", "build_bundle", "main"]

DEFAULT_OUT = ROOT / "_build" / "instructor-bundle"


def exercise_title(source: Path) -> str:
    """The exercise's heading (``# Exercise 4 · Building ResNets``), as a learner sees it."""
    for cell in read_source(source).cells:
        if cell.cell_type == "markdown":
            match = re.search(r"^# (.+)$", cell.source, re.MULTILINE)
            if match:
                return match.group(1).strip()
    return source.stem


def exercise_points(source: Path) -> tuple[float, float]:
    """(points checked automatically, points for written answers, marked by hand)."""
    return (sum(t["points"] for t in hidden_tests(source)), sum(a["points"] for a in written_answers(source)))


def solution_notebook(source: Path, root: Path = ROOT):
    """The exercise as an instructor's notebook: solutions in place, solution notes, model answers and rubrics shown
    as Markdown cells; hidden tests left out (they are in ``hidden-tests/``)."""
    import nbformat
    from nbformat.v4 import new_markdown_cell, new_notebook

    src = read_source(source)
    cells = [_install_cell(root)]
    for cell in src.cells:
        tags = cell_tags(cell)
        if "hidden-test" in tags or "book-only" in tags:
            continue
        cell = copy.deepcopy(cell)
        if "rubric" in tags:
            cells.append(new_markdown_cell(f"**Rubric ({cell.metadata.get('answer')})**\n\n{cell.source}"))
            continue
        if cell.cell_type == "markdown" and "solution" in tags:
            label = f"Model answer ({cell.metadata['answer']})" if cell.metadata.get("answer") else "Solution notes"
            cells.append(new_markdown_cell(f"**{label}**\n\n{cell.source}"))
            continue
        if cell.cell_type == "code":
            cell.source = _drop_markers(cell.source)
            cell.outputs, cell.execution_count = [], None
        cell.metadata = {k: v for k, v in cell.metadata.items() if k == "tags"}
        cells.append(cell)
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}, "residual_course": {"exercise": source.stem, "edition": "solutions"}})
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{source.stem[:4]}-sol-{i:02d}"
    nbformat.validate(nb)
    return nb


def _model_answers(source: Path) -> dict[str, str]:
    return {str(c.metadata["answer"]): c.source.strip() for c in read_source(source).cells
            if c.cell_type == "markdown" and "solution" in cell_tags(c) and c.metadata.get("answer")}


def rubrics_text(source: Path) -> str:
    """Each written answer of one exercise: its points, its rubric, and the model answer (as the book shows it)."""
    models = _model_answers(source)
    lines = [f"## {exercise_title(source)}", ""]
    for spec in written_answers(source):
        lines += [f"### Answer {spec['answer']} (task {spec['task']}) · {spec['title']}: {spec['points']:g} points", "",
                  "Rubric:", "", spec["rubric"] or "(no rubric)", ""]
        if spec["answer"] in models:
            lines += ["Model answer (its numbers are from the book's run; judge against the learner's own):", "",
                      models[spec["answer"]], ""]
    return "\n".join(lines)


def marking_guide(source_dir: Path = SOURCE_DIR) -> str:
    rows = ["| exercise | checked automatically | written, marked by hand | total | written share |",
            "|---|---:|---:|---:|---:|"]
    for source in exercise_sources(source_dir):
        auto, written = exercise_points(source)
        rows.append(f"| {exercise_title(source)} (`{source.stem}`) | {auto:g} | {written:g} | {auto + written:g} | "
                    f"{written / (auto + written):.0%} |")
    parts = [
        "# Marking guide", "",
        "Keep this bundle private: it holds the solutions, model answers, rubrics and hidden tests that the course "
        "edition of the book (`make book EDITION=course`) and the student notebooks leave out.", "",
        "## Points", "", *rows, "",
        "## Grading a batch", "",
        "1. Collect the submitted notebooks in one folder (one `.ipynb` per learner, or one folder per learner).",
        "2. Grade them, in parallel on a machine with several cores:", "",
        "   ```bash",
        "   python -m book.grade submissions/ --out graded/ --exercise ex04 --hidden-tests hidden-tests --jobs 4",
        "   ```", "",
        "3. `graded/gradebook.csv` holds the points checked automatically (`total`) and, per written answer, "
        "`review` or `missing`; `review_max` is what is left to mark by hand.",
        "4. Mark the written answers in `graded/marking/<name>.md`, which holds each learner's text with its rubric "
        "(below, with the model answers). Add your points to the row's `total`.",
        "5. Send each learner `graded/feedback/<name>.md`: the same report without the rubrics.",
        "6. Enter the totals in `gradebook/canvas.csv` (Canvas: *Grades → Import*) or `gradebook/moodle.csv` "
        "(Moodle: *Grades → Import → CSV file*, matching on the email address). Each exercise's column holds its "
        "points in all; Canvas reads the maximum from the *Points Possible* row.", "",
        "On Gradescope, upload `gradescope/exNN_name.zip` as the assignment's autograder (Ubuntu base image): it "
        "grades the automatic part; mark the written answers with the rubrics below.", "",
        "## Rubrics and model answers", "",
    ]
    for source in exercise_sources(source_dir):
        auto, written = exercise_points(source)
        parts += [rubrics_text(source), "", points_table(source), ""]
    return "\n".join(parts)


def _column(source: Path) -> str:
    return f"{exercise_title(source)} ({source.stem[:4]})"


def canvas_template(source_dir: Path = SOURCE_DIR) -> str:
    """Canvas's gradebook import: its five identifying columns, a column per exercise (a new assignment), and the
    optional *Points Possible* row. Export the course's gradebook from Canvas for the learners' rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    exercises = exercise_sources(source_dir)
    writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", *map(_column, exercises)])
    writer.writerow(["    Points Possible", "", "", "", "", *(f"{sum(exercise_points(s)):g}" for s in exercises)])
    return buffer.getvalue()


def moodle_template(source_dir: Path = SOURCE_DIR) -> str:
    """Moodle's gradebook CSV import: a column that identifies the user (matched on *Email address*) and a column per
    grade item (mapped to *new grade item* or an existing one on import)."""
    buffer = io.StringIO()
    csv.writer(buffer).writerow(["First name", "Last name", "ID number", "Email address",
                                 *map(_column, exercise_sources(source_dir))])
    return buffer.getvalue()


def build_bundle(out: Path = DEFAULT_OUT, source_dir: Path = SOURCE_DIR, root: Path = ROOT,
                 gradescope: bool = True) -> Path:
    """Write the bundle folder ``out`` (replacing it) and ``out.zip``; return the zip's path."""
    import nbformat

    from ..grading.gradescope import write_gradescope_zip

    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    for folder in ("solutions", "rubrics", "hidden-tests", "gradebook", "gradescope"):
        (out / folder).mkdir(parents=True)
    for source in exercise_sources(source_dir):
        (out / "solutions" / f"{source.stem}.ipynb").write_text(
            nbformat.writes(solution_notebook(source, root), version=4) + "\n")
        (out / "rubrics" / f"{source.stem}.md").write_text(rubrics_text(source) + "\n")
        shutil.copyfile(source, out / "hidden-tests" / source.name)
        if gradescope:
            write_gradescope_zip(out / "gradescope" / f"{source.stem}.zip", source.stem, source_dir)
    (out / "marking-guide.md").write_text(marking_guide(source_dir) + "\n")
    (out / "gradebook" / "canvas.csv").write_text(canvas_template(source_dir))
    (out / "gradebook" / "moodle.csv").write_text(moodle_template(source_dir))
    return Path(shutil.make_archive(str(out), "zip", out.parent, out.name))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m book.authoring.instructor_bundle", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"bundle folder (default {DEFAULT_OUT})")
    parser.add_argument("--hidden-tests", type=Path, default=SOURCE_DIR, help="folder of exercise sources")
    args = parser.parse_args(argv)
    path = build_bundle(args.out, args.hidden_tests)
    print(f"wrote {args.out} and {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
