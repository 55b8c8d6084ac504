"""The runner's report: what the sandbox says about one notebook, read as untrusted data into one typed object.

The runner (:mod:`book.grading.runner`) writes two JSON lines: ``{"cells": {...}}`` once the learner's cells
have run, and ``{"answers": [...], ...}`` once it has answered the grader's requests. :func:`read_report` is
the one place that reads them: whatever does not have the expected shape is left out, never trusted, and
:attr:`RunnerReport.problems` says in words what was left out. Nothing here raises for anything the sandbox
wrote, and nothing the sandbox wrote can add points: the report only labels the row and carries the answers to
the judges (:mod:`book.grading.judge`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["RunnerReport", "read_report", "MAX_ERRORS", "MAX_SKIPPED"]

MAX_ERRORS = 50           # cell errors read from a report
MAX_SKIPPED = 10          # cells that stopped the kernel, read from a report
SYNTAX_ERRORS = ("SyntaxError", "IndentationError", "TabError")


@dataclass
class RunnerReport:
    """How one notebook ran in its sandbox: the runner's two messages, and what the grader saw itself."""

    # from the runner's first message, {"cells": {...}}
    cells_reported: bool = False                 # the runner said how the cells ran
    finished: bool = False                       # the cells ran to their end: the grader sends its requests
    errors: list[tuple[int, str, str]] = field(default_factory=list)   # (code cell, exception name, message)
    skipped: list[int] = field(default_factory=list)   # code cells that stopped the kernel, left out
    timeouts: int = 0                            # cells stopped at the cell time limit
    crashed: bool = False                        # the kernel died while the cells ran
    # from the runner's last message, {"answers": [...], "out_of_time": ..., "crashed": ...}
    replies: list[str | None] = field(default_factory=list)   # one per request: the kernel's answer, or None
    answered: bool = False                       # the last message arrived and held a list of answers
    crashed_in_tests: bool = False               # the kernel died while it answered the requests
    runner_out_of_time: bool = False             # the runner said the submission ran out of time
    problems: list[str] = field(default_factory=list)   # what could not be read, in words
    # what the grader saw itself
    requests: list[dict] = field(default_factory=list)  # what was sent, seeds included
    blocked: bool = False                        # the sandbox stopped reading the requests
    timed_out: bool = False                      # the grader's own deadline passed
    all_gone: bool = True                        # no process of the sandbox outlived it
    stderr: str = ""                             # the last of the sandbox's error output
    limits: list[str] = field(default_factory=list)     # the sandbox and the limits in force

    @property
    def out_of_time(self) -> bool:
        return self.timed_out or self.runner_out_of_time

    @property
    def started_up(self) -> bool:
        """The sandbox reported on the cells, or ran until the grader's deadline."""
        return self.cells_reported or self.timed_out

    @property
    def syntax_error(self) -> bool:
        return any(name in SYNTAX_ERRORS for _, name, _ in self.errors)


def read_report(first: dict | None, last: dict | None, n_requests: int) -> RunnerReport:
    """The runner's messages (``None`` when one never came) as a :class:`RunnerReport` with ``n_requests`` replies."""
    report = RunnerReport(replies=[None] * n_requests)
    problems = report.problems
    if first is not None:
        cells = first.get("cells") if type(first) is dict else None
        if type(cells) is dict:
            _read_cells(cells, report)
        else:
            problems.append("its first message holds no report on the cells")
    if last is not None:
        answers = last.get("answers") if type(last) is dict else None
        if type(answers) is list:
            replies = answers[:n_requests]
            if not all(type(r) is str or r is None for r in replies):
                problems.append("an answer is neither text nor null")
            report.replies = [r if type(r) is str else None for r in replies] + [None] * (n_requests - len(replies))
            report.answered = True
            report.crashed_in_tests = last.get("crashed") is True
            report.runner_out_of_time = report.runner_out_of_time or bool(last.get("out_of_time"))
        else:
            problems.append("its last message holds no list of answers")
    return report


def _read_cells(cells: dict, report: RunnerReport) -> None:
    problems = report.problems
    report.cells_reported = bool(cells)
    report.finished = not cells.get("final")
    errors = cells.get("errors", [])
    if type(errors) is list:
        for entry in errors:
            if len(report.errors) == MAX_ERRORS:
                break
            if type(entry) is list and len(entry) == 3 and type(entry[0]) is int:
                index, name, message = entry
                report.errors.append((index, re.sub(r"[^\w.]", "", str(name))[:60] or "Error", str(message)))
            elif "a cell error is not [cell, name, message]" not in problems:
                problems.append("a cell error is not [cell, name, message]")
    else:
        problems.append("its cell errors are not a list")
    skipped = cells.get("skipped", [])
    if type(skipped) is list:
        report.skipped = [i for i in skipped if type(i) is int][:MAX_SKIPPED]
        if len(report.skipped) < min(len(skipped), MAX_SKIPPED):
            problems.append("a skipped cell is not a cell number")
    else:
        problems.append("its skipped cells are not a list")
    timeouts = cells.get("timeouts", 0)
    report.timeouts = timeouts if type(timeouts) is int else 0
    if type(timeouts) is not int:
        problems.append("its count of cell timeouts is not a whole number")
    report.crashed = cells.get("crashed") is True
    report.runner_out_of_time = bool(cells.get("out_of_time"))
