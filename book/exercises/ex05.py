"""The self-checks of Exercise 5, the unrolled view: what the notebook's check cells run, and, for each, the grader's judge.

All three checks are *replayed*: their cases are drawn from the seed (:mod:`book.exercises.cases.ex05`), and the
grader recomputes the references (and the usual wrong answers, to name the mistake) itself.
"""

from __future__ import annotations

import copy
import itertools
import math
from typing import Callable

from .cases.ex05 import count_paths_cases, swap_nets, unrolled_output_cases
from .feedback import _Fail, _checker, _close, _is_tensor, _one_number, _run
from .protocol import _replay_judge

__all__ = ['check_count_paths', 'check_unrolled_output', 'check_swapped_error']


@_checker("Task 1 · count the paths")
def check_count_paths(count_paths: Callable, thorough: bool = False, seed: int | None = None) -> str:
    """``count_paths(n, k)``: paths through ``k`` residual branches in an ``n``-block ResNet = C(n, k)."""
    for n, k in count_paths_cases(seed, thorough):
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
        raise _Fail(f"count_paths({n}, {k}) returned {got!r}, which is not the number of paths of length {k}. {hint}")
    return f"C(n, k) paths of length k; summed over k that is 2ⁿ, e.g. {2 ** 54:.3g} paths through 54 blocks."


@_checker("Task 2 · the network as a sum of paths")
def check_unrolled_output(unrolled_output: Callable, thorough: bool = False, seed: int | None = None) -> str:
    """``unrolled_output(branches, x)`` sums, over every subset of blocks, the branches applied in order."""
    import torch

    for branches, x in unrolled_output_cases(seed, thorough):
        n = len(branches)
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


# --------------------------------------------------------------------------- Task 3: reordering blocks

def _swapped(model, i: int, j: int):
    """A copy of ``model`` with blocks ``i`` and ``j`` in each other's place (the reference)."""
    from torch import nn

    out = copy.deepcopy(model)
    blocks = list(out.blocks)
    blocks[i], blocks[j] = blocks[j], blocks[i]
    out.blocks = nn.Sequential(*blocks)
    return out


def _without(model, indices):
    """A copy of ``model`` whose blocks ``indices`` are deleted (a residual block becomes its shortcut)."""
    from torch import nn

    out = copy.deepcopy(model)
    for i in indices:
        block = out.blocks[i]
        out.blocks[i] = block.shortcut if hasattr(block, "shortcut") else nn.Identity()
    return out


def _error(model, x, y, train_mode: bool = False) -> float:
    import torch

    trial = copy.deepcopy(model).train(train_mode)
    with torch.no_grad():
        return (trial(x).argmax(1) != y).sum().item() / len(y)


@_checker("Task 3 · does the order of the blocks matter?")
def check_swapped_error(swapped_error: Callable, thorough: bool = False, seed: int | None = None) -> str:
    """``swapped_error(model, i, j, x, y)``: the error rate of a copy of ``model`` with blocks i and j swapped."""
    # `original` is the check's own copy of each net: the learner's function may change the `model` it is given
    for residual, train_mode, original, calls in swap_nets(0 if seed is None else seed, thorough):
        kind = "residual" if residual else "plain"
        done = []                                   # the swaps an in-place function would have made already
        for model, i, j, x, y in calls:
            call = f"swapped_error(a {kind} net{' in training mode' if train_mode else ''}, {i}, {j}, x, y)"
            got = _run(call, swapped_error, model, i, j, x, y)
            got = _one_number(got, call, "the fraction of the examples the swapped network gets wrong")
            want = _error(_swapped(original, i, j), x, y)
            if abs(got - want) <= 1e-6:
                done.append((i, j))
                continue
            base = _error(original, x, y)
            both_j = copy.deepcopy(original)
            both_j.blocks[i] = copy.deepcopy(original.blocks[j])
            in_place = original
            for a, b in done:
                in_place = _swapped(in_place, a, b)
            slips = {
                "the intact network's error: nothing was swapped. Swap the blocks in a copy: "
                "copy.deepcopy(model), then exchange copy.blocks[i] and copy.blocks[j]": base,
                "the error of a network in which both positions hold block j: assigning blocks[i] = blocks[j] "
                "first overwrites block i. Exchange them in one statement, "
                "blocks[i], blocks[j] = blocks[j], blocks[i]": _error(both_j, x, y),
                "the error with the BatchNorms in training mode (statistics of this batch); evaluate the swapped "
                "copy in eval mode, .eval(), as book.training.evaluate does":
                    _error(_swapped(original, i, j), x, y, True),
                "the accuracy, not the error (the fraction the network gets wrong)": 1 - want,
                "a percentage; return a fraction between 0 and 1": 100 * want,
                "the increase over the intact network's error; return the swapped network's error itself": want - base,
                "the error with both blocks deleted, not swapped": _error(_without(original, [i, j]), x, y),
            }
            if done:
                slips = {"the error of a network that still holds your earlier swap: your function changed the "
                         "model it was given. Swap the blocks in a copy (copy.deepcopy(model))":
                         _error(_swapped(in_place, i, j), x, y), **slips}
            slip = next((name for name, value in slips.items() if abs(value - got) <= 1e-6), None)
            raise _Fail(f"{call} returned {got:.4f}, which is not the swapped network's error"
                        + (f": your number is {slip}." if slip else
                           ": copy the model, exchange blocks i and j of the copy's .blocks, and return the fraction "
                           "of x that the copy, in eval mode, classifies differently from y."))
    return ("the error of the swapped copy, in eval mode, with the original left as it was: ready for the "
            "trained nets.")


# The grader's judge of each check (the sandbox's answers are in book.exercises.cases.ex05).
JUDGED = {
    "check_count_paths": _replay_judge(check_count_paths),
    "check_unrolled_output": _replay_judge(check_unrolled_output),
    "check_swapped_error": _replay_judge(check_swapped_error),
}
