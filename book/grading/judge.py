"""Judging one submission: from its file and the runner's report to a row of points, verdicts and notes.

:func:`grade_submission` reads the notebook's file (never a link, never past the size limit), finds which
exercise it answers, collects its written answers from the file (they are never run), runs it in its sandbox
(:func:`book.grading.exchange.run_in_sandbox`) and judges each hidden test's answer outside it, in a child
process of the grader with its own memory and time limits (:mod:`book.grading.verdicts`, which calls
:func:`book.exercises.protocol.judge`): the expected values never leave the grader, and no score, verdict or
feedback text comes from where the learner's code ran. The runner's report can only label the row.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from ..exercises.sources import collect_answers
from .collect import Submission, exercise_of, read_regular
from .exchange import run_in_sandbox
from .results import GradeConfig, SubmissionResult, TaskResult, WrittenAnswer, _learner_text, _md
from .verdicts import GraderFilesChanged, judge_all

__all__ = ["grade_submission"]


def _written(nb, specs: list[dict]) -> list[WrittenAnswer]:
    """The written answers of ``specs`` as found in ``nb`` (``None``: the notebook could not be read)."""
    try:
        texts = collect_answers(nb, specs) if nb is not None else {}
    except Exception:  # an odd notebook: its answers count as not written; the row's status says why
        texts = {}
    return [WrittenAnswer(s["task"], s["answer"], s["title"], s["points"], texts.get(s["answer"]), s["rubric"])
            for s in specs]


def _place(nb, index: int) -> str:
    """Where code cell ``index`` (counted as the runner counts: code cells with text) is, in words a learner can
    follow in Colab or Jupyter, which show no cell numbers: the heading above it, and its place under that heading."""
    heading, nth, seen = None, 0, -1
    for cell in nb.cells if nb is not None else ():
        if cell.get("cell_type") == "markdown" and isinstance(cell.get("source"), str):
            found = [m.group(1).strip() for m in re.finditer(r"^#{1,4} +(.+)$", cell.source, re.MULTILINE)]
            if found:
                heading, nth = found[-1], 0
        elif cell.get("cell_type") == "code" and isinstance(cell.get("source"), str):
            seen, nth = seen + 1, nth + 1
            if seen == index:
                ordinal = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth"}.get(nth, f"{nth}th")
                where = f"under the heading “{_md(heading, 80)}”" if heading else "before the first heading"
                return f"the {ordinal} code cell {where}"
    return f"code cell {index + 1}"


def grade_submission(sub: Submission, tests_by_exercise: dict[str, list[dict]], known: dict[str, Path],
                     cfg: GradeConfig, answers_by_exercise: dict[str, list[dict]] | None = None) -> SubmissionResult:
    """Grade one submission; never raises for anything the notebook does."""
    import nbformat

    answers_by_exercise = answers_by_exercise or {}

    started = time.monotonic()
    result = SubmissionResult(sub.name, sub.original, cfg.exercise or "", "ok", notes=list(sub.notes))

    def finish(status: str, note: str | None = None) -> SubmissionResult:
        result.status = status
        if note:
            result.notes.append(note)
        result.seconds = time.monotonic() - started
        return result

    def zero_tasks(reason: str):
        for t in tests_by_exercise.get(result.exercise, []):
            result.tasks.append(TaskResult(t["task"], t["title"], 0.0, t["points"], f"not checked: {reason}"))
        result.written = _written(None, answers_by_exercise.get(result.exercise, []))

    path = sub.path
    if sub.refused:
        zero_tasks(sub.refused)
        return finish("refused", f"{sub.original} is {sub.refused}")
    if path is None:
        zero_tasks("no notebook was submitted")
        return finish("no-notebook", "the submission folder holds no .ipynb file")
    try:
        data = read_regular(path, cfg.max_notebook_bytes)
    except OSError as err:
        zero_tasks("the notebook file could not be read")
        return finish("invalid-notebook", f"the file could not be read as a regular file ({type(err).__name__})")
    if data is None:
        zero_tasks("the notebook file is too large to run")
        return finish("too-large", f"the notebook is larger than the limit of {cfg.max_notebook_bytes:,} bytes")
    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    except Exception as err:
        result.exercise = cfg.exercise or exercise_of(None, path, known)[0] or ""
        zero_tasks("the notebook could not be read")
        return finish("invalid-notebook", f"the file is not a readable notebook ({type(err).__name__}: {str(err)[:200]})")
    own, how = exercise_of(nb, path, known)
    result.exercise = cfg.exercise or own or ""
    if result.exercise not in tests_by_exercise:
        return finish("unknown-exercise", "cannot tell which exercise this notebook answers: pass --exercise")
    if cfg.exercise and own and own != cfg.exercise and how == "metadata":
        zero_tasks(f"this notebook answers {own}, not {cfg.exercise}")
        return finish("wrong-exercise", f"the notebook is exercise {own} (from its {how}); graded was {cfg.exercise}")
    named, _ = exercise_of(None, Path(sub.original), known)
    if not cfg.exercise and how == "metadata" and named and named != own:
        zero_tasks(f"the notebook answers {own}, but its name says {named}")
        return finish("wrong-exercise", f"the notebook is exercise {own} (from its metadata) but was handed in as "
                                        f"{named} (its name): grade it with --exercise")
    tests = tests_by_exercise[result.exercise]
    result.written = _written(nb, answers_by_exercise.get(result.exercise, []))  # read from the file, never run

    try:
        run = run_in_sandbox(data, tests, cfg, started + cfg.timeout)
    except Exception as err:  # the grader's own trouble (e.g. no kernel): report it on this row
        zero_tasks("the grader could not run the notebook (a grader error, not the notebook's)")
        return finish("grader-error", f"grader error: could not run the notebook: {type(err).__name__}: "
                                      f"{str(err)[:300]}")
    result.limits = run.limits

    # Everything below reads the sandbox's report as untrusted data: it can only label the row, never add points.
    for index, ename, evalue in run.errors:
        place = _place(nb, index)
        result.notes.append(f"{place} raised {ename}: [from your code] {_learner_text(evalue)}"
                            if ename != "CellTimeout" else f"{place} raised CellTimeout: "
                            f"it was stopped after {cfg.cell_timeout:.0f} s")
    for index in run.skipped:
        result.notes.append(f"{_place(nb, index)} stopped the kernel; it was left out and the notebook run again")
    if not run.started_up:   # the sandbox ended before it said how the cells ran: show why, labelled
        tail = _learner_text(run.stderr, 600)
        result.notes.append("the sandbox stopped before reporting on the cells (a start-up failure, or the "
                            f"notebook stopped its runner); its last error output: [unchecked] {tail or '(none)'}")
    if run.problems:
        result.notes.append(f"the sandbox's report was malformed ({'; '.join(run.problems[:3])}); what could not "
                            "be read was left out")
    if run.blocked:
        result.notes.append("the sandbox stopped reading the grader's requests; it was killed")
    if run.crashed_in_tests:
        result.notes.append("the kernel died while the tests ran")

    # The answers are judged in a child process with its own memory and time limits (book.grading.verdicts)
    asked = [(t, request, reply) for t, request, reply in zip(tests, run.requests or [None] * len(tests), run.replies)]
    items = [{"request": {**t["request"], **request}, "reply": reply, "title": t["title"]}   # expected values stay here
             for t, request, reply in asked if request is not None and reply is not None]
    try:
        verdicts = iter(judge_all(items, cfg.judge_limits)) if items else iter(())
    except GraderFilesChanged as err:
        zero_tasks("void: the grader's files changed")
        return finish("tampered", f"the grader's files on disk are not the shipped ones ({str(err)[:300]}): nothing "
                                  "was judged; reinstall the course")
    rejected = grader_errors = 0
    for t, request, reply in asked:
        if request is not None and reply is not None:
            verdict = next(verdicts)
            points = t["points"] if verdict.kind == "judged" and verdict.passed else 0.0
            message = verdict.message
            if verdict.kind == "grader-error":
                grader_errors += 1
                message = f"grader error while judging this task, not your notebook's: tell your instructor " \
                          f"({_learner_text(message, 300)})"
            rejected += verdict.kind == "rejected"
        elif run.out_of_time:
            points, message = 0.0, f"not checked: the notebook ran out of its {cfg.timeout:.0f} s"
        else:
            points, message = 0.0, "not checked: the kernel stopped before this test could run"
        result.tasks.append(TaskResult(t["task"], t["title"], points, t["points"], message))
    if grader_errors:
        result.notes.append(f"grader error: {grader_errors} task(s) could not be judged because of the grader's own "
                            "code; they need the instructor")
    if not run.all_gone:
        result.notes.append("some of the notebook's processes outlived its sandbox; they were killed")

    if rejected:
        status = "rejected"
        result.notes.append(f"{rejected} answer(s) could not be judged within the judge's own limits (memory "
                            f"{cfg.judge_limits.memory_bytes // 2**20} MiB, {cfg.judge_limits.wall_seconds:.0f} s): "
                            "rejected, with no points")
    elif run.out_of_time:
        status = "timeout"
        result.notes.append(f"the submission did not finish within {cfg.timeout:.0f} s")
    elif run.skipped or run.crashed_in_tests or run.crashed or not run.started_up:
        status = "kernel-crashed"
    elif run.timeouts:
        status = "cell-timeout"
    elif run.syntax_error:
        status = "syntax-error"
    elif run.errors:
        status = "cell-errors"
    else:
        status = "ok"
    return finish(status)
