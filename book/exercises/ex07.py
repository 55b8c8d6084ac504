"""The self-checks of Exercise 7, the family of skip connections: what the notebook's check cells run, and, for each, the grader's answer and judge.

Both checks are *replayed*: their cases are drawn from the seed (:mod:`book.exercises.cases.ex07`), the learner's
function only returns tensors and numbers, and the grader recomputes the reference (and the usual wrong variants, to
name the mistake) itself.
"""

from __future__ import annotations

import math
from typing import Callable

from .cases.ex07 import composite_gain_cases, sinkhorn_cases, trained_gain_cases
from .feedback import _Fail, _as_float, _checker, _is_tensor, _one_number, _run
from .protocol import _replay_judge

__all__ = ["check_sinkhorn", "check_composite_gain", "check_trained_gain"]


# --------------------------------------------------------------------------- Task 1 · Sinkhorn–Knopp

def _alternate(m, half_steps: int, rows_first: bool = True, keepdim: bool = True):
    """``half_steps`` normalizations, alternately of the rows (dim 1) and of the columns (dim 0)."""
    for step in range(half_steps):
        rows = (step % 2 == 0) == rows_first
        dim = 1 if rows else 0          # rows: divide each row by its sum over the columns (dim 1)
        if keepdim:
            m = m / m.sum(dim=dim, keepdim=True)
        else:
            m = m / m.sum(dim=dim)      # without keepdim the row sums line up with the columns
    return m


def _reference_sinkhorn(m, iterations: int):
    return _alternate(m, 2 * iterations)


def _sinkhorn_slip(got, m, iterations: int, close) -> str | None:
    """The usual mistake that turns ``m`` into ``got``, in words (None when none matches)."""
    import torch

    if close(got, m):
        return "your function returns M unchanged: normalize its rows, then its columns, `iters` times."
    if close(got, _reference_sinkhorn(torch.exp(m), iterations)):
        return ("your function exponentiates M first. This `sinkhorn` takes a positive matrix as it is; the "
                "chapter's version takes logits, which is why it starts with exp.")
    if close(got, _alternate(m, 2 * iterations, keepdim=False)):
        return ("your function divides by `M.sum(dim=1)` without `keepdim=True`: the row sums then broadcast along "
                "the wrong axis (column j is divided by row j's sum), and only the column steps do anything. "
                "Write M / M.sum(dim=1, keepdim=True).")
    if close(got, _alternate(m, 1)):
        return ("your function normalizes only the rows: every row sums to 1 but the columns do not, so the matrix "
                "is row-stochastic, not doubly stochastic. Alternate: rows, then columns, `iters` times.")
    if close(got, _alternate(m, 1, rows_first=False)):
        return "your function normalizes only the columns; alternate rows and columns, `iters` times."
    if close(got, _alternate(m, 2 * iterations, rows_first=False)):
        return ("your function normalizes the columns first and the rows second. Each iteration normalizes the "
                "rows, then the columns, so that after the last step the columns sum to exactly 1.")
    if close(got, m / m.sum()):
        return ("your function divides M by the sum of all its entries; normalize each row, then each column, by "
                "its own sum.")
    for half in range(1, 2 * iterations + 8):
        if half != 2 * iterations and close(got, _alternate(m, half)):
            if half % 2:
                return (f"your function's last step normalizes the rows ({half} half-steps): one iteration is one "
                        "row step and one column step, so the columns come last.")
            return (f"your function runs {half // 2} iteration(s) instead of {iterations}, too "
                    f"{'few' if half < 2 * iterations else 'many'}: one iteration is one row step and one column "
                    "step; loop `for _ in range(iters)`.")
    return None


@_checker("Task 1 · Sinkhorn–Knopp")
def check_sinkhorn(sinkhorn: Callable, thorough: bool = False, seed: int | None = None) -> str:
    """``sinkhorn(M, iters)``: ``iters`` times, normalize the rows of the positive matrix M, then its columns."""
    import torch

    worst_rows = 0.0
    for m, iterations in sinkhorn_cases(0 if seed is None else seed, thorough):
        n = m.shape[0]
        given = m.clone()
        call = f"sinkhorn(M, {iterations}) for a {n}×{n} positive M"
        got = _run(call, sinkhorn, given, iterations)
        if not _is_tensor(got):
            raise _Fail(f"{call} returned {type(got).__name__}; it should return a tensor (the n × n matrix).")
        if tuple(got.shape) != (n, n):
            raise _Fail(f"{call} returned a tensor of shape {tuple(got.shape)}; it should keep M's shape ({n}, {n}).")
        got = got.detach().to(torch.float64)
        if not bool(torch.isfinite(got).all()):
            raise _Fail(f"{call} returned NaN or infinite entries; divide by row and column sums of a positive matrix.")
        want = _reference_sinkhorn(m, iterations)

        def close(a, b):
            return a.shape == b.shape and bool(torch.allclose(a, b, rtol=1e-5, atol=1e-7))

        if close(got, want):
            worst_rows = max(worst_rows, (want.sum(dim=1) - 1).abs().max().item())
            continue
        slip = _sinkhorn_slip(got, m, iterations, close)
        gap = (got - want).abs().max().item()
        raise _Fail(f"{call} differs from the expected matrix by up to {gap:.3g}"
                    + (f": {slip}" if slip else
                       ": each iteration divides every row by its sum, then every column by its sum."))
    return (f"after the last column step every column sums to exactly 1, and after a few iterations the rows are "
            f"within {worst_rows:.1g} of 1: the limit is doubly stochastic.")


# --------------------------------------------------------------------------- Task 2 · the composite gain

def _product(mats, reverse: bool = False):
    import torch

    p = torch.eye(mats[0].shape[0], dtype=torch.float64)
    for b in (reversed(mats) if reverse else mats):
        p = b.to(torch.float64) @ p      # the later block on the left: P = B_L ⋯ B_2 B_1
    return p


def _gains(p) -> tuple[float, float]:
    """(forward, backward): the largest absolute row sum ‖P‖∞ and the largest absolute column sum ‖P‖₁."""
    return p.abs().sum(dim=1).max().item(), p.abs().sum(dim=0).max().item()


def _gain_slips(mats) -> dict[str, tuple[float, float]]:
    """The usual wrong measurements of the composite gain, as (forward, backward) pairs, keyed by what went wrong."""
    import torch

    p = _product(mats).to(torch.float64)
    fwd, bwd = _gains(p)
    spectral = torch.linalg.matrix_norm(p, ord=2).item()
    frobenius = torch.linalg.matrix_norm(p).item()
    singles = [_gains(b.to(torch.float64)) for b in mats]
    return {
        "reversed": _gains(_product(mats, reverse=True)),
        "swapped": (bwd, fwd),
        "spectral": (spectral, spectral),
        "frobenius": (frobenius, frobenius),
        "amax": (p.abs().max().item(),) * 2,
        "signed sums": (p.sum(dim=1).abs().max().item(), p.sum(dim=0).abs().max().item()),
        "no abs": (p.sum(dim=1).max().item(), p.sum(dim=0).max().item()),
        "product of gains": (math.prod(g[0] for g in singles), math.prod(g[1] for g in singles)),
        "last": singles[-1],
        "first": singles[0],
        "sum": _gains(sum(b.to(torch.float64) for b in mats)),
    }


_GAIN_HINTS = {
    "reversed": "you multiplied in the wrong order, B_1 B_2 ⋯ B_L. The streams meet B_1 first, so the composite "
                "mapping is B_L ⋯ B_2 B_1: put each later matrix on the left (P = B @ P).",
    "swapped": "your forward and backward gains are swapped. The forward signal is amplified by at most the largest "
               "absolute row sum, ‖P‖∞; the gradient, which flows back through Pᵀ, by the largest absolute column sum.",
    "spectral": "that is the operator (spectral) norm, the largest singular value. The mHC paper's gain is the largest "
                "absolute row sum (forward) and column sum (backward): P.abs().sum(dim=1).max() and "
                "P.abs().sum(dim=0).max().",
    "frobenius": "that is the Frobenius norm (the square root of the sum of squared entries). The mHC paper's gain is "
                 "the largest absolute row sum (forward) and column sum (backward).",
    "amax": "that is the largest absolute *entry* of P. The paper's 'Amax' gain is the largest absolute row sum "
            "(forward) and column sum (backward): sum |P_ij| along each row (column), then take the largest.",
    "signed sums": "you took the absolute value of each row's (column's) sum. Sum the absolute values of the entries "
                   "instead, as ‖P‖∞ does: a row (2, −2) sums to 0 yet amplifies a signal by up to 4.",
    "no abs": "the product has negative entries: take their absolute values before summing each row (column).",
    "product of gains": "you multiplied the gains of the single matrices. That is only an upper bound "
                        "(‖AB‖ ≤ ‖A‖‖B‖); multiply the matrices first, then measure the product.",
    "last": "you measured the last matrix alone; measure the product of all of them, B_L ⋯ B_1.",
    "first": "you measured the first matrix alone; measure the product of all of them, B_L ⋯ B_1.",
    "sum": "you added the matrices; the streams pass through them one after the other, so multiply them.",
}


@_checker("Task 2 · the composite gain")
def check_composite_gain(composite_gain: Callable, thorough: bool = False, seed: int | None = None) -> str:
    """``composite_gain(mixings)`` → ``(forward, backward)``: the largest absolute row and column sums of B_L ⋯ B_1."""
    for mats, in composite_gain_cases(0 if seed is None else seed, thorough):
        n, depth = mats[0].shape[0], len(mats)
        given = [b.clone() for b in mats]
        call = f"composite_gain(mixings) for {depth} mixing matrices of size {n}×{n}"
        got = _run(call, composite_gain, given)
        if _is_tensor(got) and got.numel() == 2:
            got = tuple(got.reshape(-1).tolist())
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise _Fail(f"{call} returned {got!r:.80}; return two numbers, (forward, backward): the largest absolute "
                        "row sum and the largest absolute column sum of the product.")
        fwd, bwd = (_as_float(v, f"each number {call} returns") for v in got)
        want = _gains(_product(mats))

        def same(a, b):
            return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6)

        if same(fwd, want[0]) and same(bwd, want[1]):
            continue
        slips = _gain_slips(mats)
        name = next((k for k, (f, b) in slips.items() if same(fwd, f) and same(bwd, b)), None)
        if name is None and same(fwd, want[0]):
            name = next((k for k, (f, b) in slips.items() if same(bwd, b)), None)
        elif name is None and same(bwd, want[1]):
            name = next((k for k, (f, b) in slips.items() if same(fwd, f)), None)
        which = ("the forward gain is right, the backward one is not" if same(fwd, want[0]) else
                 "the backward gain is right, the forward one is not" if same(bwd, want[1]) else "neither gain is right")
        raise _Fail(f"{call} returned ({fwd:.5g}, {bwd:.5g}): {which}"
                    + (f": {_GAIN_HINTS[name]}" if name else
                       ": multiply P = B_L ⋯ B_1 (later matrices on the left), then return "
                       "(largest absolute row sum, largest absolute column sum) of P."))
    return ("the gain of B_L ⋯ B_1 in both directions: the largest absolute row sum bounds how much the forward "
            "signal can grow, the largest absolute column sum how much the gradient can.")


# --------------------------------------------------------------------------- Task 3 · trained hyper-connections

def _trained_product(depth: int, constrained: bool, seed: int):
    """The product of the trained mixing matrices of Chapter 7's net, and its gains before training.

    Computed afresh (never read from the cache, which a notebook's process could have written)."""
    import torch

    from ..ch7_family_of_skips import HyperSpec, _hyper

    run = _hyper(HyperSpec(depth=depth, constrained=constrained, seed=seed))
    return torch.tensor(run["product"], dtype=torch.float64), run


@_checker("Task 3 · the gain of trained hyper-connections")
def check_trained_gain(trained_gain: Callable, thorough: bool = False, seed: int | None = None) -> str:
    """``trained_gain(depth, constrained, seed)``: the forward composite gain of the trained net's mixing product."""
    import torch

    for depth, constrained, s in trained_gain_cases(0 if seed is None else seed, thorough):
        call = f"trained_gain({depth}, {constrained}, {s})"
        got = _one_number(_run(call, trained_gain, depth, constrained, s), call,
                          "the forward composite gain, ‖P‖∞, of the trained product P")
        product, run = _trained_product(depth, constrained, s)
        want = product.abs().sum(dim=1).max().item()
        if abs(got - want) <= 1e-4 * max(1.0, abs(want)):
            continue
        slips = {
            "the backward gain (the largest absolute column sum); the task asks for the forward one":
                product.abs().sum(dim=0).max().item(),
            "the gain before training: HyperSpec trains the net, read its run's \"product\"": run["gains_init"][-1],
            "the largest singular value of P; the mHC paper's gain is the largest absolute row sum":
                torch.linalg.matrix_norm(product, ord=2).item(),
            "the largest absolute entry of P, not its largest absolute row sum": product.abs().max().item(),
            "the gain of the other kind of net (unconstrained and mHC swapped)":
                _trained_product(depth, not constrained, s)[0].abs().sum(dim=1).max().item(),
        }
        slip = next((name for name, value in slips.items() if abs(value - got) <= 1e-4 * max(1.0, abs(value))), None)
        raise _Fail(f"{call} returned {got:.4g}, which is not the forward gain of that trained net"
                    + (f": your number is {slip}." if slip else
                       ": train with hyper_run(HyperSpec(depth=depth, constrained=constrained, seed=seed)), then "
                       "measure torch.tensor(run[\"product\"]) with your composite_gain."))
    return ("the forward gain of each trained product, unconstrained and mHC: your measurement can be trusted at "
            "8 and 32 blocks.")


# The grader's judge of each check (the sandbox's answers are in book.exercises.cases.ex07).
JUDGED = {
    "check_sinkhorn": _replay_judge(check_sinkhorn),
    "check_composite_gain": _replay_judge(check_composite_gain),
    "check_trained_gain": _replay_judge(check_trained_gain),
}
