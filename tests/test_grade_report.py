"""What comes back from a sandbox is read in one place, and nothing malformed gets past it or raises.

The runner's report (:func:`book.grading.report.read_report`) and a kernel's answers to the grader's requests
(:func:`book.exercises.protocol.judge`) are untrusted data: a malformed one is left out with a message in words,
never a traceback, and never a point. No sandbox is needed here.
"""

from __future__ import annotations

from book.exercises import protocol
from book.grading.report import MAX_ERRORS, RunnerReport, read_report

GOOD_CELLS = {"cells": {"errors": [[2, "ValueError", "bad"], [4, "SyntaxError", "x"]], "timeouts": 1, "skipped": [3],
                        "crashes": []}}
GOOD_END = {"answers": ['{"answers": []}', None], "out_of_time": False, "crashed": False}


def test_a_well_formed_report_is_read_whole():
    report = read_report(GOOD_CELLS, GOOD_END, 2)
    assert report.problems == []
    assert report.cells_reported and report.finished and report.started_up and report.answered
    assert report.errors == [(2, "ValueError", "bad"), (4, "SyntaxError", "x")] and report.syntax_error
    assert (report.skipped, report.timeouts, report.crashed, report.out_of_time) == ([3], 1, False, False)
    assert report.replies == ['{"answers": []}', None]


def test_a_report_that_never_came_is_no_problem_but_says_nothing():
    report = read_report(None, None, 3)
    assert report == RunnerReport(replies=[None, None, None])
    assert not report.started_up and not report.problems


def test_malformed_reports_are_rejected_with_a_message_in_words():
    cases = {
        "no report on the cells": ({"cells": "ran fine"}, None),
        "cell errors are not a list": ({"cells": {"errors": "none"}}, None),
        "a cell error is not [cell, name, message]": ({"cells": {"errors": [["2", "E", "m"], [1, "E"], 7]}}, None),
        "skipped cells are not a list": ({"cells": {"skipped": 3}}, None),
        "a skipped cell is not a cell number": ({"cells": {"skipped": ["1"]}}, None),
        "cell timeouts is not a whole number": ({"cells": {"timeouts": "many"}}, None),
        "no list of answers": (GOOD_CELLS, {"answers": {"1": "x"}}),
        "neither text nor null": (GOOD_CELLS, {"answers": [{"value": 1}, 7]}),
    }
    for words, (first, last) in cases.items():
        report = read_report(first, last, 2)
        assert any(words in p for p in report.problems), (words, report.problems)
        assert all(type(p) is str and "Traceback" not in p for p in report.problems)
        assert all(type(e[0]) is int for e in report.errors) and len(report.replies) == 2
        assert all(r is None or type(r) is str for r in report.replies)


def test_a_flood_of_errors_is_cut_and_one_message_says_so_once():
    errors = [[i, "E", "m"] for i in range(500)] + [["x"]] * 500
    report = read_report({"cells": {"errors": [["x"]] * 500 + errors}}, None, 0)
    assert len(report.errors) == MAX_ERRORS
    assert report.problems == ["a cell error is not [cell, name, message]"]


def test_forged_and_malformed_answers_fail_without_raising():
    request = {"check": "check_basic_block", "names": ["BasicBlock"], "seed": 7, "thorough": True}
    for reply in (None, "", "[]", "{}", '{"answers": 3}', '{"answers": [{"value": {"tensor": {"shape": [2], '
                  '"data": [1]}}}]}', '{"answers": [{"value": {"tensor": 1}}]}', "x" * 100, '{"missing": "<b>"}',
                  '{"answers": [' * 5000 + ']' * 5000 + '}'):
        feedback = protocol.judge(request, reply, "t")
        assert not feedback and isinstance(feedback.message, str)
