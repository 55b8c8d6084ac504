"""The grader re-uses the learner's own measurements: a measured range whose call the notebook already made is
answered with the number the notebook computed, not trained again (``--remember``, :func:`remember_calls`).

Exercise 4's experiment trains ResNet-20 with zero-init on seeds 0–4; its range test calls
``early_training_loss(20, True, 1)`` and again on a seed drawn from ``CLAIM_SEEDS``, all calls the notebook made.
"""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from book.exercises import protocol
from book.exercises.sources import hidden_tests
from book.grading.exchange import _call_request
from book.training import CLAIM_SEEDS

from conftest import ROOT


class _Shell:
    """What :func:`remember_calls` uses of IPython: the namespace and the post-run-cell event."""

    def __init__(self):
        self.user_ns, self.hooks = {}, []
        self.events = SimpleNamespace(register=lambda event, hook: self.hooks.append((event, hook)))

    def run(self, code: str) -> None:
        exec(code, self.user_ns)
        for event, hook in self.hooks:
            assert event == "post_run_cell"
            hook(None)


def test_a_remembered_function_answers_a_repeated_plain_call_from_memory_and_nothing_else():
    shell = _Shell()
    protocol.remember_calls(["measure"], shell)
    shell.run("calls = []\n"
              "def measure(depth, zero_init, seed, epochs=2, data=None):\n"
              "    calls.append((depth, zero_init, seed, epochs, data))\n"
              "    return depth + seed / 10 + (0.5 if zero_init else 0.0)")
    measure = shell.user_ns["measure"]
    assert measure.__name__ == "measure" and measure.__grader_remembers__
    assert measure(20, True, 1) == 20.6 and measure(20, True, seed=1, epochs=2) == 20.6   # the same call, spelled two ways
    assert len(shell.user_ns["calls"]) == 1
    assert measure(20, 1, 1) == 20.6 and len(shell.user_ns["calls"]) == 2     # 1 is not True: another call
    data = object()
    measure(20, True, 1, data=data)
    measure(20, True, 1, data=data)
    assert len(shell.user_ns["calls"]) == 4                                   # a data set: never remembered
    # the notebook redefines the function: the new one is wrapped, and remembers on its own
    shell.run("def measure(depth, zero_init, seed, epochs=2, data=None):\n    calls.append('new')\n    return 1.0")
    assert shell.user_ns["measure"](20, True, 1) == 1.0 and shell.user_ns["calls"][-1] == "new"
    # not a function, or a result that is not a number: left alone
    shell.run("measure = 3")
    assert shell.user_ns["measure"] == 3
    shell.run("def measure(seed):\n    calls.append(seed)\n    return [seed]")
    shell.user_ns["measure"](1), shell.user_ns["measure"](1)
    assert shell.user_ns["calls"][-2:] == [1, 1]


def _runner(cells: list[str], requests: list[dict], remember: list[str], tmp_path) -> list:
    path = tmp_path / "submission.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell(c) for c in cells],
                                metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                         "language": "python"}}), path)
    argv = [sys.executable, "-m", "book.grading.runner", str(path), "--timeout", "120"]
    for name in remember:
        argv += ["--remember", name]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, cwd=tmp_path)
    cells_report = json.loads(proc.stdout.readline())
    assert cells_report["cells"]["errors"] == [], cells_report
    proc.stdin.write(json.dumps({"requests": requests}) + "\n")
    proc.stdin.flush()
    answers = json.loads(proc.stdout.readline())["answers"]
    proc.wait(timeout=60)
    return [json.loads(a)["answers"] for a in answers]


def test_the_runner_answers_exercise_4s_range_test_from_the_notebooks_own_runs(tmp_path):
    # the range test as the grader sends it: its call, and the same call on a seed drawn from CLAIM_SEEDS
    test = next(t for t in hidden_tests(ROOT / "exercises/source/ex04_building_resnets.md") if "range" in t["request"])
    request = _call_request(test["request"])
    assert request["call"] == "early_training_loss" and len(request["also"]) == 1
    assert {request["args"][2], request["also"][0][2]} <= set(CLAIM_SEEDS) <= set(range(5))   # the notebook's seeds
    # a stand-in with Exercise 4's signature that counts its trainings; the notebook runs its experiment on 0–4
    cells = ["trainings = []\n"
             "def early_training_loss(depth, zero_init, seed, epochs=2, data=None):\n"
             "    trainings.append((depth, zero_init, seed))\n"
             "    return 1.5 + seed / 100",
             "losses = {(20, z): [early_training_loss(20, z, s) for s in range(5)] for z in (False, True)}",
             "def trainings_so_far():\n    return float(len(trainings))"]
    count = {"call": "trainings_so_far", "args": []}
    remembered = _runner(cells, [request, count], ["early_training_loss"], tmp_path)
    assert [a.get("value") for a in remembered[0]] == [1.5 + request["args"][2] / 100, 1.5 + request["also"][0][2] / 100]
    assert remembered[1][0]["value"] == 10.0                          # the range test trained nothing more
    fresh = _runner(cells, [request, count], [], tmp_path)
    assert [a.get("value") for a in fresh[0]] == [a.get("value") for a in remembered[0]]
    assert fresh[1][0]["value"] == 12.0                               # without it: two more trainings
