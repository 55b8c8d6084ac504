"""The grader's reports: the gradebook, the collection log, a feedback file per learner and a marking file per learner.

All under the run's output folder, each written atomically (:func:`book.cache.atomic_write`) after each
submission and once at the end, so a crash loses no judged row:

- ``gradebook.csv``: one row per submission: its original path, status, points per task, total, a column per
  written answer (``review``: text to mark by hand; ``missing``: none written), the points left to mark, details;
- ``collection.csv``: every file found in the submissions folder and what became of it;
- ``feedback/<name>.md``, for the learner: what each task's tests said, what went wrong while running, and each
  written answer (never a rubric);
- ``marking/<name>.md``, for the instructor: the same with each written answer's rubric, to mark by hand;
- with ``--gradescope``: ``gradescope/<name>/results.json`` (:mod:`book.grading.gradescope`).
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

from ..cache import atomic_write
from .gradescope import results_json
from .results import FIELD_CHARS, GradeConfig, SubmissionResult, _md, _points

__all__ = ["write_reports"]


def _cell(text) -> str:
    """A CSV cell a spreadsheet shows as text: a leading ``= + - @`` (a formula) gets a ``'`` before it."""
    text = str(text)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _feedback_text(r: SubmissionResult, instructor: bool = False) -> str:
    """The feedback file: the learner's copy never holds a rubric; the instructor's (``instructor=True``) does."""
    lines = [f"# Feedback: {r.name}", "", f"- exercise: {r.exercise or 'unknown'}", f"- status: {r.status}",
             f"- score: {_points(r.total)} / {_points(r.max_total)} checked automatically"
             + (f", and {_points(r.review_total)} for written answers, marked by hand" if r.written else ""), ""]
    for t in r.tasks:
        mark = "✓" if t.points == t.max_points and t.max_points > 0 else "✗"
        lines += [f"## Task {t.task} · {t.title}: {_points(t.points)} / {_points(t.max_points)} {mark}", "",
                  _md(t.message), ""]
    for w in r.written:
        lines += [f"## Written answer {w.answer} (task {w.task}) · {w.title}: _ / {_points(w.points)}, marked by hand", ""]
        if w.text is None:
            lines += ["No answer was written: the cell still holds its placeholder, or it was deleted.", ""]
        else:
            text = w.text[:20 * FIELD_CHARS] + (" … [cut]" if len(w.text) > 20 * FIELD_CHARS else "")
            fence = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", text)), default=0))
            lines += ["The learner wrote:", "", f"{fence}text", text, fence, ""]
        if w.rubric and instructor:
            lines += ["Rubric:", "", w.rubric, ""]
    if r.notes:
        lines += ["## While running your notebook", ""] + [f"- {_md(n, 1000)}" for n in r.notes[:60]] + [""]
    return "\n".join(lines)





def write_reports(results: list[SubmissionResult], cfg: GradeConfig, log: list[tuple[str, str]] = (),
                  final: bool = True) -> Path:
    """Write the gradebook, the collection log, the feedback files and (optionally) Gradescope results.

    Called after each submission (``final=False``) and once at the end: a crash loses no judged row.
    """
    tasks = sorted({t.task for r in results for t in r.tasks})
    written = sorted({w.answer for r in results for w in r.written}, key=lambda a: (int(re.match(r"\d+", a)[0]), a))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["submission", "original_path", "exercise", "status", *[f"task{k}" for k in tasks], "total",
                     "max_total", *[f"written{a}" for a in written], "review_max", "details", "limits"])
    for r in results:
        by_task: dict[int, float] = {}
        for t in r.tasks:
            by_task[t.task] = by_task.get(t.task, 0.0) + t.points
        by_answer = {w.answer: ("review" if w.text is not None else "missing") for w in r.written}
        writer.writerow([_cell(r.name), _cell(r.path), _cell(r.exercise), r.status,
                         *[_points(by_task.get(k, 0.0)) for k in tasks], _points(r.total), _points(r.max_total),
                         *[by_answer.get(a, "missing") for a in written], _points(r.review_total),
                         _cell(" ".join("; ".join(r.notes).split())[:1000]), _cell("; ".join(r.limits))])
    gradebook = cfg.out / "gradebook.csv"
    atomic_write(gradebook, buffer.getvalue())
    buffer = io.StringIO()
    csv.writer(buffer).writerows([("path", "what the grader did"), *((_cell(p), _cell(w)) for p, w in log)])
    atomic_write(cfg.out / "collection.csv", buffer.getvalue())
    for r in results:
        atomic_write(cfg.out / "feedback" / f"{r.name}.md", _feedback_text(r))        # for the learner: no rubric
        atomic_write(cfg.out / "marking" / f"{r.name}.md", _feedback_text(r, instructor=True))   # with the rubrics
    if cfg.gradescope:
        for r in results:
            atomic_write(cfg.out / "gradescope" / r.name / "results.json", json.dumps(results_json(r), indent=2))
        if final and len(results) == 1:
            atomic_write(cfg.out / "results.json", json.dumps(results_json(results[0]), indent=2))
    return gradebook
