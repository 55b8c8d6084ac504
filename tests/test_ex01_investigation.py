"""Exercise 1: the plain-identity construction of Task 2 and the investigation of Task 4 (does degradation survive
on a quarter of the data?). The checks name the usual mistakes and agree with the grader's answer and judge; the
range test and the model answer's claims hold over the claim seeds.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import jupytext
import pytest
import torch
from torch import nn

from book import exercises as ex
from book.exercises import protocol, sources
from book.grading.collect import SOURCE_DIR
from book.training import CLAIM_SEEDS
from conftest import fails_with as _fails_with, graded as _graded

ROOT = Path(__file__).resolve().parent.parent
NAME = "ex01_degradation"


@pytest.fixture(autouse=True)
def one_thread():
    """The exercise's setup cell calls torch.set_num_threads(1); give the test process its setting back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _solution(*functions: str) -> dict:
    """The setup cell and the solution cells defining ``functions`` of the book page, run in one namespace."""
    page = jupytext.reads((ROOT / "exercises" / f"{NAME}.md").read_text(), fmt="md:myst")
    code = [c.source for c in page.cells if c.cell_type == "code" and "remove-cell" not in c.metadata.get("tags", [])]
    namespace: dict = {"__name__": "__main__"}
    exec(code[0], namespace)
    for function in functions:
        exec(next(c for c in code if f"def {function}(" in c), namespace)
    return namespace


# --------------------------------------------------------------------------- Task 2 · plain blocks as the identity

def _appended(model, extra, block="plain", tap=1, running_var=None, copy_first=True):
    """``add_identity_blocks`` as a learner might write it, with one slip."""
    from book.nets.conv1d import BasicBlock1d, PlainBlock1d

    deeper = copy.deepcopy(model) if copy_first else model
    width = model.head.in_features
    new = []
    for _ in range(extra):
        b = (PlainBlock1d if block in ("plain", "random") else BasicBlock1d)(width, width)
        if block == "plain":
            with torch.no_grad():
                for layer in b.branch:
                    if isinstance(layer, nn.Conv1d):
                        layer.weight.zero_()
                        layer.weight[:, :, tap] = torch.eye(width)
                    elif isinstance(layer, nn.BatchNorm1d) and running_var is not None:
                        layer.running_var.fill_(running_var)
        new.append(b)
    deeper.blocks = nn.Sequential(*deeper.blocks, *new)
    return deeper


def test_the_identity_is_built_from_plain_blocks_and_each_slip_is_named():
    right = _solution("add_identity_blocks")["add_identity_blocks"]
    assert ex.check_add_identity_blocks(right, thorough=True)
    assert ex.check_add_identity_blocks(lambda m, e: _appended(m, e, running_var=1 - 1e-5))
    _fails_with(ex.check_add_identity_blocks(lambda m, e: _appended(m, e, block="residual")), "residual blocks",
                "PlainBlock1d")
    _fails_with(ex.check_add_identity_blocks(lambda m, e: _appended(m, e, block="random")), "a convolution")
    _fails_with(ex.check_add_identity_blocks(lambda m, e: _appended(m, e, tap=0)), "which tap")
    _fails_with(ex.check_add_identity_blocks(lambda m, e: _appended(m, e, running_var=4.0)), "a BatchNorm",
                "running statistics")
    _fails_with(ex.check_add_identity_blocks(lambda m, e: _appended(m, e, copy_first=False)), "copy")


@pytest.mark.parametrize("seed", [0, 3])
def test_the_grader_judges_task_2_as_the_notebook_does(seed):
    right = _solution("add_identity_blocks")["add_identity_blocks"]
    assert _graded("check_add_identity_blocks", "add_identity_blocks", right, seed)
    _fails_with(_graded("check_add_identity_blocks", "add_identity_blocks",
                        lambda m, e: _appended(m, e, block="residual"), seed), "residual blocks")
    _fails_with(_graded("check_add_identity_blocks", "add_identity_blocks",
                        lambda m, e: _appended(m, e, tap=2), seed), "a convolution")


def test_no_exercise_1_text_says_a_plain_block_cannot_be_the_identity():
    """Chapter 1 builds a plain block that computes the identity exactly (``make_identity_``)."""
    for path in (SOURCE_DIR / f"{NAME}.md", ROOT / "book" / "exercises" / "ex01.py"):
        assert "cannot start as the" not in path.read_text(), path


# --------------------------------------------------------------------------- Task 4 · fewer training sequences

def _fewer(cut_test=False, last=False, seed_used=True, swap=False, eval_train=False, ignore_n=False):
    """``fewer_data_errors`` as a learner might write it, with one slip."""
    from book.data import load_mnist1d
    from book.trained_nets import DepthRun, train_net
    from book.training import evaluate

    def fewer_data_errors(depth, seed, n_train=1000, epochs=40):
        data = load_mnist1d()
        n = len(data.x_train) if ignore_n else n_train
        part = slice(-n, None) if last else slice(0, n)
        fewer = dataclasses.replace(data, x_train=data.x_train[part], y_train=data.y_train[part])
        if cut_test:
            fewer = dataclasses.replace(fewer, x_test=fewer.x_test[:n], y_test=fewer.y_test[:n])
        model, result = train_net(DepthRun(depth=depth, seed=seed if seed_used else 0, epochs=epochs), data=fewer)
        train = evaluate(model, fewer.x_train, fewer.y_train)[1] if eval_train else result.final_train_error
        return (result.final_test_error, train) if swap else (train, result.final_test_error)

    return fewer_data_errors


def test_the_fewer_data_check_names_the_usual_mistakes():
    right = _solution("fewer_data_errors")["fewer_data_errors"]
    assert ex.check_fewer_data_errors(right) and ex.check_fewer_data_errors(right, thorough=True, seed=11)
    _fails_with(ex.check_fewer_data_errors(_fewer(seed_used=False)), "drawn from `seed`")
    _fails_with(ex.check_fewer_data_errors(_fewer(cut_test=True)), "test set was cut")
    _fails_with(ex.check_fewer_data_errors(_fewer(last=True)), "the last n_train")
    _fails_with(ex.check_fewer_data_errors(_fewer(swap=True)), "wrong order")
    _fails_with(ex.check_fewer_data_errors(_fewer(eval_train=True)), "evaluation mode")
    _fails_with(ex.check_fewer_data_errors(_fewer(ignore_n=True)), "every training sequence")
    _fails_with(ex.check_fewer_data_errors(lambda depth, seed, n_train=1000, epochs=40: 0.5), "two numbers")


@pytest.mark.parametrize("seed", [0, 5])
def test_the_grader_judges_task_4_as_the_notebook_does(seed):
    right = _solution("fewer_data_errors")["fewer_data_errors"]
    assert _graded("check_fewer_data_errors", "fewer_data_errors", right, seed)
    _fails_with(_graded("check_fewer_data_errors", "fewer_data_errors", _fewer(cut_test=True), seed),
                "test set was cut")


def _hidden_range(call: str) -> tuple[float, float]:
    for test in sources.hidden_tests(SOURCE_DIR / f"{NAME}.md"):
        if test["request"].get("call") == call:
            return tuple(test["request"]["range"])
    raise AssertionError(f"{NAME} has no range test on {call}")


@pytest.fixture(scope="module")
def fewer_runs():
    """(depth, seed) → (final training error, final test error) on the first 1000 sequences, at the task's settings."""
    fewer_data_errors = _solution("fewer_data_errors")["fewer_data_errors"]
    threads = torch.get_num_threads()
    try:
        return {(depth, seed): fewer_data_errors(depth, seed) for depth in (20, 56) for seed in CLAIM_SEEDS}
    finally:
        torch.set_num_threads(threads)


def test_degradation_survives_on_a_quarter_of_the_data_over_the_claim_seeds(fewer_runs):
    """The model answer of 4b, seed by seed; the hidden range test 0.2 ≤ training_error_gap(seed) ≤ 0.7, which
    the grader asks again on another claim seed. Measured per seed (seeds 0-2 pinned, 0-5 native): plain-56 −
    plain-20 training error 0.35-0.67, inside the range by at least 0.18; plain-56's training error 0.58-0.78,
    plain-20's test error at most 0.41, 0.28 apart at the closest (seed 0, pinned)."""
    low, high = _hidden_range("training_error_gap")
    for seed in CLAIM_SEEDS:
        (train20, test20), (train56, _) = fewer_runs[(20, seed)], fewer_runs[(56, seed)]
        assert low + 0.1 <= train56 - train20 <= high - 0.1, (seed, train20, train56)    # the range test, per seed
        assert train56 > test20 + 0.15, (seed, test20, train56)     # fits worse than the other generalizes


def test_plain_20_overfits_a_little_on_fewer_sequences(fewer_runs):
    """4b: plain-20's test − training gap on 1000 sequences is several times its gap in Task 3's long run."""
    from book.ch1_degradation import recorded_long

    runs = recorded_long()["runs"]
    long_gaps = [r.test_error[-1] - r.train_error[-1] for (d, res, _), r in runs.items() if d == 20 and not res]
    long_gap = sum(long_gaps) / len(long_gaps)
    gaps = [fewer_runs[(20, s)][1] - fewer_runs[(20, s)][0] for s in CLAIM_SEEDS]
    assert sum(gaps) / len(gaps) >= 2.5 * long_gap, (gaps, long_gap)
