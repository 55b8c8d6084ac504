"""The self-checks of Exercise 5, the unrolled view: what the notebook's check cells run, and the grader's probe and judge for each."""

from __future__ import annotations

import itertools
import math
from typing import Callable

from .core import _Fail, _checker, _close, _is_tensor, _replay_judge, _replay_probe, _rng, _run

__all__ = ['check_count_paths', 'check_unrolled_output']


@_checker("Task 1 · count the paths")
def check_count_paths(count_paths: Callable, thorough: bool = False, seed: int | None = None) -> str:
    """``count_paths(n, k)``: paths through ``k`` residual branches in an ``n``-block ResNet = C(n, k)."""
    cases = [(3, 0), (3, 1), (3, 2), (3, 3), (10, 4), (54, 27)]
    if thorough:
        cases += [(1, 0), (1, 1), (5, 6), (110, 55)]
    if seed is not None:
        rng = _rng(seed)
        cases = [(n, k) for n in (rng.randint(2, 9), rng.randint(10, 40), rng.randint(41, 150))
                 for k in (0, rng.randint(1, n - 1), n)] + [(rng.randint(1, 9), 10)]
    for n, k in cases:
        got = _run(f"count_paths({n}, {k})", count_paths, n, k)
        want = math.comb(n, k)
        if got == want and isinstance(got, int) and not isinstance(got, bool):
            continue
        wrong = {
            "n ** k (ordered choices with repeats)": n ** k,
            "2 ** n (every path, of every length)": 2 ** n,
            "C(n, k - 1)": math.comb(n, k - 1) if k >= 1 else -1,
            "C(n + 1, k)": math.comb(n + 1, k),
            "n! / (n - k)! (ordered choices)": math.perm(n, k) if k <= n else 0,
        }
        slip = next((name for name, v in wrong.items() if v == got), None)
        hint = (f"your answer equals {slip}. " if slip else "") + (
            "A path chooses, block by block, the branch or the shortcut; a path of length k takes the branch "
            "in exactly k of the n blocks, in their fixed order: choose which k.")
        if isinstance(got, float) and got == want:
            hint = "return an exact whole number (int), e.g. math.comb(n, k); floats lose digits for large n."
        raise _Fail(f"count_paths({n}, {k}) returned {got!r}, expected {want}. {hint}")
    return f"C(n, k) paths of length k; summed over k that is 2ⁿ, e.g. {2 ** 54:.3g} paths through 54 blocks."


@_checker("Task 2 · the network as a sum of paths")
def check_unrolled_output(unrolled_output: Callable, thorough: bool = False, seed: int | None = None) -> str:
    """``unrolled_output(branches, x)`` sums, over every subset of blocks, the branches applied in order."""
    import torch

    ns = [3, 4] if thorough else [3]
    if seed is not None:
        rng = _rng(seed)
        ns = [rng.randint(2, 5) for _ in range(2)]
    for i, n in enumerate(ns):
        torch.manual_seed(n if seed is None else seed % 2**31 + i)
        branches = [torch.nn.Linear(5, 5, bias=False).requires_grad_(False) for _ in range(n)]
        x = torch.randn(2, 5)
        with torch.no_grad():
            want = x
            for b in branches:
                want = want + b(want)
        got = _run("unrolled_output(branches, x)", unrolled_output, branches, x)
        if not _is_tensor(got):
            raise _Fail(f"unrolled_output returned {type(got).__name__}; return a tensor shaped like x.")
        got = got.detach()
        if _close(got, want, 1e-4):
            continue
        if _close(got, want - x, 1e-4):
            raise _Fail("you left out the path that skips every block (the pure shortcut, length 0): it contributes x itself.")
        with torch.no_grad():
            reversed_sum = sum(_compose([branches[i] for i in reversed(s)], x)
                               for k in range(n + 1) for s in itertools.combinations(range(n), k))
            singles = x + sum(b(x) for b in branches)
        if _close(got, reversed_sum, 1e-4):
            raise _Fail("on each path you applied the branches last-to-first. A path visits blocks in network order: "
                        "for blocks (i, j) with i < j it computes branch_j(branch_i(x)).")
        if _close(got, singles, 1e-4):
            raise _Fail("you summed only the paths of length 0 and 1; the paths through two or more branches "
                        "(compositions like branch_2(branch_1(x))) are missing.")
        raise _Fail(f"for {n} linear blocks the sum over all 2^{n} paths should equal the network's output, but yours "
                    f"differs by up to {(got - want).abs().max().item():.3g}.")
    return "the 2ⁿ paths add up exactly to the network's output: a ResNet is a sum of paths of different lengths."


def _compose(branches, x):
    for b in branches:
        x = b(x)
    return x


# The grader's probe (inside the learner's sandbox) and judge (in the grader) for each check.
JUDGED = {
    "check_count_paths": (_replay_probe(check_count_paths), _replay_judge(check_count_paths)),
    "check_unrolled_output": (_replay_probe(check_unrolled_output), _replay_judge(check_unrolled_output)),
}
