"""Exercises 6 and 7: the investigations' checks name the usual mistakes, pass the solutions on many seeds, and
give the same verdict through the grader's answer and judge; the findings the model answers quote hold.

Notebooks run in-process here (their cells are plain Python), as in ``tests/test_exercises.py``.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path

import jupytext
import pytest
import torch

from book import exercises as ex
from book.exercises import protocol
from book.exercises.ex06 import _UPDATE_HINTS, _output_change
from book.training import CLAIM_SEEDS
from conftest import fails_with as _fails_with, graded as _graded

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def one_thread():
    """The notebooks call torch.set_num_threads(1); give the test process its setting back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _solution_namespace(name: str) -> dict:
    """Run the book page's code cells (the solutions) in one namespace, as the learner's kernel would."""
    page = jupytext.reads((ROOT / "exercises" / f"{name}.md").read_text(), fmt="md:myst")
    namespace: dict = {"__name__": "__main__"}
    for cell in page.cells:
        if cell.cell_type == "code":
            exec(compile(ast.parse(cell.source), "<cell>", "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def ex06():
    threads = torch.get_num_threads()
    try:
        yield _solution_namespace("ex06_transformer_residual_stream")
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def ex07():
    threads = torch.get_num_threads()
    try:
        yield _solution_namespace("ex07_family_of_skips")
    finally:
        torch.set_num_threads(threads)


# --------------------------------------------------------------------------- Exercise 6, Task 1 · the output change

def test_output_change_solution_passes_on_many_seeds_and_through_the_grader(ex06):
    right = ex06["output_change"]
    assert ex.check_output_change(right)
    for seed in range(8):
        assert ex.check_output_change(right, thorough=True, seed=seed), seed
    for seed in (3, 11):
        assert _graded("check_output_change", "output_change", right, seed)


def test_output_change_with_torch_adam_is_accepted(ex06):
    from book.sequence_task import masked_cross_entropy

    def with_adam(model, batch, lr=1e-4):
        logits = model(batch.inputs).detach()
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        masked_cross_entropy(model(batch.inputs), batch).backward()
        optimizer.step()
        with torch.no_grad():
            moved = model(batch.inputs)
        return (moved - logits)[batch.mask].norm() / logits[batch.mask].norm()   # a 0-d tensor is fine

    for seed in range(4):
        assert ex.check_output_change(with_adam, thorough=True, seed=seed), seed


@pytest.mark.parametrize("mistake, phrase", [
    ("sgd", "gradient step"),
    ("unmasked loss", "masked_cross_entropy"),
    ("weights only", "every parameter"),
    ("all positions", "logits[batch.mask]"),
    ("absolute", "divide by ‖logits‖"),
    ("per position", "averaged a relative change per position"),
    ("loss change", "change of the loss"),
    ("relative loss change", "relative change of the loss"),
    ("squared", "squared the ratio"),
])
def test_output_change_mistakes_are_named_in_the_notebook_and_by_the_grader(mistake, phrase):
    def wrong(model, batch, lr=1e-4):
        return _output_change(model, batch, lr, mistake)

    _fails_with(ex.check_output_change(wrong), phrase)
    for seed in (0, 5):
        _fails_with(ex.check_output_change(wrong, thorough=True, seed=seed), phrase)
        _fails_with(_graded("check_output_change", "output_change", wrong, seed), phrase)


def test_output_change_stepping_uphill_is_named_where_it_shows():
    def uphill(model, batch, lr=1e-4):
        return _output_change(model, batch, lr, "uphill")

    _fails_with(ex.check_output_change(uphill, thorough=True, seed=1), "stepped up the gradient")
    assert set(_UPDATE_HINTS) >= {"sgd", "unmasked loss", "uphill"}


def test_output_change_bad_returns_and_autograd_errors_are_reported_in_words():
    _fails_with(ex.check_output_change(lambda m, b, lr: [1.0, 2.0]), "return one")
    _fails_with(ex.check_output_change(lambda m, b, lr: "big"), "should be a number")

    def no_guard(model, batch, lr=1e-4):
        from book.sequence_task import masked_cross_entropy

        masked_cross_entropy(model(batch.inputs), batch).backward()
        for p in model.parameters():
            p -= lr * p.grad.sign()

    feedback = ex.check_output_change(no_guard)
    _fails_with(feedback, "torch.no_grad()")
    assert "Traceback" not in feedback.message


def test_deepnorm_ablation_findings_hold_and_the_range_test_has_margin(ex06):
    """What the model answer of 1b says, on the three seeds the notebook runs, and the hidden range test's bounds."""
    sizes = ex06["sizes"]
    for seed in (0, 1, 2):
        post, alpha, beta, both = (sizes[(v, 24, seed)] for v in ("post-ln", "alpha-only", "beta-only", "deepnorm"))
        assert both < beta < alpha < post, seed
        assert 0.08 <= beta / post <= 0.18 and 0.25 <= alpha / post <= 0.65 and both / post <= 0.09, seed

    def growth(v):
        return sum(sizes[(v, 24, s)] for s in (0, 1, 2)) / sum(sizes[(v, 3, s)] for s in (0, 1, 2))

    assert growth("post-ln") > 8 and growth("alpha-only") > 7 and growth("beta-only") < 6 and growth("deepnorm") < 4.5
    # the hidden range test: 0.02 ≤ update_size("beta-only", 24, 0) ≤ 0.12 (0.039–0.082 over 100 seeds when measured)
    assert 0.03 <= ex06["update_size"]("beta-only", 24, 0) <= 0.1


# --------------------------------------------------------------------------- Exercise 7, Task 1 · Sinkhorn–Knopp

def _sinkhorn(M, iters=20, first_rows=True, half_steps=None, keepdim=True):
    steps = 2 * iters if half_steps is None else half_steps
    for i in range(steps):
        dim = 1 if (i % 2 == 0) == first_rows else 0
        M = M / (M.sum(dim=dim, keepdim=True) if keepdim else M.sum(dim=dim))
    return M


def test_sinkhorn_solution_passes_on_many_seeds_and_through_the_grader(ex07):
    right = ex07["sinkhorn"]
    assert ex.check_sinkhorn(right)
    for seed in range(20):
        assert ex.check_sinkhorn(right, thorough=True, seed=seed), seed
    for seed in (2, 13):
        assert _graded("check_sinkhorn", "sinkhorn", right, seed)
    m = torch.rand(4, 4) + 0.1
    out = right(m, 200)
    assert torch.allclose(out.sum(0), torch.ones(4), atol=1e-6) and torch.allclose(out.sum(1), torch.ones(4), atol=1e-5)


@pytest.mark.parametrize("wrong, phrase", [
    (lambda M, iters=20: M / M.sum(dim=1, keepdim=True), "normalizes only the rows"),
    (lambda M, iters=20: _sinkhorn(M, iters - 1), "too few"),
    (lambda M, iters=20: _sinkhorn(M, 1), "1 iteration(s) instead of"),
    (lambda M, iters=20: _sinkhorn(M, half_steps=iters), "one iteration is one row step and one column step"),
    (lambda M, iters=20: _sinkhorn(M, iters, first_rows=False), "columns first"),
    (lambda M, iters=20: _sinkhorn(M, iters, keepdim=False), "keepdim=True"),
    (lambda M, iters=20: _sinkhorn(torch.exp(M), iters), "exponentiates M"),
    (lambda M, iters=20: M / M.sum(), "sum of all its entries"),
    (lambda M, iters=20: M, "unchanged"),
])
def test_sinkhorn_mistakes_are_named_in_the_notebook_and_by_the_grader(wrong, phrase):
    _fails_with(ex.check_sinkhorn(wrong), phrase)
    for seed in (1, 7):
        _fails_with(ex.check_sinkhorn(wrong, thorough=True, seed=seed), phrase)
        _fails_with(_graded("check_sinkhorn", "sinkhorn", wrong, seed), phrase)


def test_sinkhorn_bad_returns_are_reported_in_words():
    _fails_with(ex.check_sinkhorn(lambda M, iters: 3), "should return a tensor")
    _fails_with(ex.check_sinkhorn(lambda M, iters: M[0]), "keep M's shape")
    _fails_with(ex.check_sinkhorn(lambda M, iters: M * float("nan")), "NaN")


# --------------------------------------------------------------------------- Exercise 7, Task 2 · the composite gain

def _product(mats, reverse=False):
    p = torch.eye(mats[0].shape[0])
    for b in (mats[::-1] if reverse else mats):
        p = b @ p
    return p


def _row_col(p):
    return p.abs().sum(dim=1).max().item(), p.abs().sum(dim=0).max().item()


def test_composite_gain_solution_passes_on_many_seeds_and_through_the_grader(ex07):
    right = ex07["composite_gain"]
    assert ex.check_composite_gain(right)
    for seed in range(20):
        assert ex.check_composite_gain(right, thorough=True, seed=seed), seed
    for seed in (4, 9):
        assert _graded("check_composite_gain", "composite_gain", right, seed)
    as_tensor = lambda mats: torch.tensor(right(mats))          # noqa: E731 - a pair as a tensor is accepted
    assert ex.check_composite_gain(as_tensor, thorough=True, seed=3)


@pytest.mark.parametrize("wrong, phrase", [
    (lambda m: _row_col(_product(m, reverse=True)), "wrong order"),
    (lambda m: (torch.linalg.matrix_norm(_product(m), 2).item(),) * 2, "operator (spectral) norm"),
    (lambda m: (_row_col(_product(m))[0], torch.linalg.matrix_norm(_product(m), 2).item()), "spectral"),
    (lambda m: (torch.linalg.matrix_norm(_product(m)).item(),) * 2, "Frobenius"),
    (lambda m: _row_col(_product(m))[::-1], "swapped"),
    (lambda m: (_product(m).abs().max().item(),) * 2, "largest absolute *entry*"),
    (lambda m: (_product(m).sum(1).abs().max().item(), _product(m).sum(0).abs().max().item()), "each row's (column's) sum"),
    (lambda m: (math.prod(_row_col(b)[0] for b in m), math.prod(_row_col(b)[1] for b in m)), "upper bound"),
    (lambda m: _row_col(m[-1]), "last matrix alone"),
    (lambda m: _row_col(sum(m)), "added the matrices"),
])
def test_composite_gain_mistakes_are_named_in_the_notebook_and_by_the_grader(wrong, phrase):
    _fails_with(ex.check_composite_gain(wrong), phrase)
    for seed in (0, 6):
        _fails_with(ex.check_composite_gain(wrong, thorough=True, seed=seed), phrase)
        _fails_with(_graded("check_composite_gain", "composite_gain", wrong, seed), phrase)


def test_composite_gain_bad_returns_are_reported_in_words():
    _fails_with(ex.check_composite_gain(lambda m: 1.0), "return two numbers")
    _fails_with(ex.check_composite_gain(lambda m: ("a", "b")), "should be a number")


def test_mixing_findings_hold_and_the_range_tests_have_margin(ex07):
    """What the model answer of 1b says, on the seeds the notebook runs, and the hidden range tests' bounds."""
    gain = ex07["random_product_gain"]
    for seed in range(5):
        raw = gain(256, 0.2, "none", seed)
        assert 1e3 <= raw <= 1e8 and gain(16, 0.2, "none", seed) < gain(256, 0.2, "none", seed), seed
        for direction in ("forward", "backward"):
            assert abs(gain(256, 0.2, "sinkhorn", seed, direction) - 1) < 1e-3, (seed, direction)
        assert gain(64, 0.2, "rows", seed) == pytest.approx(1.0, abs=1e-6)
        assert 1.05 <= gain(64, 0.2, "rows", seed, "backward") <= 2.0, seed
    # the hidden range tests, with margin. 1e3 ≤ gain(256, 0.2, "none", seed) ≤ 1e8 holds on 284 of 300 seeds
    # measured (median 1.5e5) and on each claim seed, where the grader asks again: 23414 (seed 0), 5976 (1),
    # 2.96e6 (2), at least 5× inside either bound. It shuts out a product of too few blocks (64 blocks: 10-111 on
    # those seeds; one matrix: under 2) and any projected product (1). And 0.99 ≤ the Sinkhorn backward gain ≤ 1.01.
    low, high = 1e3, 1e8
    for seed in CLAIM_SEEDS:
        assert 5 * low <= gain(256, 0.2, "none", seed) <= high / 5, seed
        assert not low <= gain(64, 0.2, "none", seed) <= high, seed
        assert not low <= gain(256, 0.2, "rows", seed) <= high, seed
    assert abs(gain(256, 0.2, "sinkhorn", 0, "backward") - 1) < 1e-4


def test_trained_gain_solution_passes_and_its_mistakes_are_named(ex07):
    right = ex07["trained_gain"]
    assert ex.check_trained_gain(right, thorough=True)
    assert _graded("check_trained_gain", "trained_gain", right, 12345)
    backward = ex07["composite_gain"]

    def column_sums(depth, constrained, seed):
        from book.ch7_family_of_skips import HyperSpec, hyper_run

        return backward([torch.tensor(hyper_run(HyperSpec(depth=depth, constrained=constrained, seed=seed))["product"])])[1]

    for wrong, phrase in ((column_sums, "the backward gain"), (lambda d, c, s: 1.0, "the gain before training")):
        _fails_with(ex.check_trained_gain(wrong), phrase)
        _fails_with(_graded("check_trained_gain", "trained_gain", wrong, 12345), phrase)


def test_trained_gain_findings_hold_and_the_range_test_has_margin(ex07):
    """What the model answer of 3b says, on five seeds (the notebook runs three), and the hidden range test's bounds.

    Measured on seeds 0-7: the unconstrained gain after training is 2.0-3.7 at 8 blocks, 3.6-9.3 at 16 and 9.2-84 at
    32; the 32-block gain is 4.7-23 times the 8-block one and 1.56-11 times the 16-block one on every seed, while
    16 blocks fell just below 8 on seed 7
    (3.60 against 3.65), so the chapter claims no order for 16. The per-block factor G^(1/L) at 32 blocks is
    0.954-0.995 times the one at 8. mHC's trained gain is within 2e-3 of 1.
    """
    from book.ch7_family_of_skips import HyperSpec, hyper_run

    gain = ex07["trained_gain"]
    for seed in range(5):
        g8, g16, g32 = (gain(L, False, seed) for L in (8, 16, 32))
        assert 1.5 < g8 and 1.5 < g16 and g32 > 2.5 * g8 and g32 > 1.2 * g16, (seed, g8, g16, g32)   # more with depth
        assert 1.04 < g8 ** (1 / 8) < 1.25 and 0.9 < g32 ** (1 / 32) / g8 ** (1 / 8) < 1.05, seed   # λ^L
    for seed in CLAIM_SEEDS:
        assert abs(gain(8, True, seed) - 1) < 5e-3 and abs(gain(32, True, seed) - 1) < 5e-3, seed
        hc, mhc = (hyper_run(HyperSpec(depth=32, constrained=c, seed=seed))["test_error"] for c in (False, True))
        assert 0.45 < hc < 0.65 and hc < mhc + 0.02, (seed, hc, mhc)   # close, the unconstrained one no worse
    # the hidden range test: 4 ≤ trained_gain(32, False, seed) ≤ 3000 holds at least 2× inside its bounds on each
    # claim seed (9.2 to 84), and shuts out mHC (1.00) and an untrained net (1)
    for seed in CLAIM_SEEDS:
        assert 8 <= gain(32, False, seed) <= 1500, seed
        assert not 4 <= gain(32, True, seed) <= 3000, seed
