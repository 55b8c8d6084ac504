"""The self-checks of Exercise 2, learn the change: what the notebook's check cells run, and, for each, the grader's judge.

The cases each check draws from the seed, and the sandbox's answers on them, are in :mod:`book.exercises.cases.ex02`;
what the judges compare with (F(x) + x, the blocks' relative changes and their usual wrong versions) stays here.
"""

from __future__ import annotations

from typing import Callable

import math

from .cases.ex02 import _residual_branch, _residual_cases, _zero_init_block, _zero_init_cases, block_changes_cases
from .feedback import _Fail, _as_float, _checker, _close, _is_tensor, _run, _shape
from .protocol import _Replay, _load_state, _replay_judge

__all__ = ['check_residual', 'check_zero_init_branch', 'check_block_changes']


def _residual_instance(Residual, branch):
    block = _run("Residual(branch)", Residual, branch)
    import torch

    if not isinstance(block, torch.nn.Module):
        raise _Fail("Residual(branch) should create an nn.Module (subclass nn.Module and call super().__init__()).")
    return block


_RESIDUAL_PASSED = "your block computes F(x) + x: the branch only has to learn the change from x to the target."
_NO_SHORTCUT = ("give the block a shortcut module, self.shortcut = nn.Identity(), and use it in forward: "
                "the course keeps every shortcut a module so probes can hook it.")
_IN_PLACE = ("forward changed its input tensor in place (e.g. x += ...). Write the sum out of place, "
             "x = x + self.branch(x), so the input that hooks and probes saved stays intact.")


def _residual_verdict(y, x, branch) -> None:
    """Nothing when ``y`` is ``branch(x) + x``; otherwise the failure, naming the usual mistake (self-check and judge)."""
    import torch

    with torch.no_grad():
        f = branch(x)
        want = f + x
    if _close(y, want):
        return
    if _close(y, f):
        raise _Fail("your block returns F(x) alone: it forgot the shortcut. Return self.branch(x) + self.shortcut(x).")
    if _close(y, x):
        raise _Fail("your block returns its input unchanged: the branch F(x) is missing from the sum.")
    if _close(y, torch.relu(want)):
        raise _Fail("your block applies a ReLU after the sum. This task asks for exactly y = F(x) + x, "
                    "with nothing after the addition.")
    if _close(y, 2 * x) or _close(y, 2 * f):
        raise _Fail("your block adds a term to itself; add the branch's output and the input: F(x) + x.")
    raise _Fail(f"for an input of shape {_shape(x)} your block's output differs from F(x) + x "
                f"by up to {(y - want).abs().max().item():.3g}.")


@_checker("Task 1 · step 1, your block")
def check_residual(Residual, thorough: bool = False) -> str:
    """``Residual(branch)`` computes ``branch(x) + x`` with ``self.shortcut = nn.Identity()``."""
    import torch
    from torch import nn

    widths = [8, 32] if thorough else [8]
    for width in widths:
        torch.manual_seed(width)
        branch = nn.Sequential(nn.Linear(width, width), nn.Tanh(), nn.Linear(width, width))
        block = _residual_instance(Residual, branch)
        shortcut = getattr(block, "shortcut", None)
        if not isinstance(shortcut, nn.Module):
            raise _Fail(_NO_SHORTCUT)
        x = torch.randn(5, width) * 2 - 1
        x_before = x.clone()
        y = _run("your block's forward", block, x)
        if not _is_tensor(y):
            raise _Fail(f"forward returned {type(y).__name__}; it should return a tensor.")
        if not torch.equal(x, x_before):
            raise _Fail(_IN_PLACE)
        _residual_verdict(y.detach(), x, branch)
    return _RESIDUAL_PASSED


@_checker("Task 1 · step 1, the zero start")
def check_zero_init_branch(zero_init_branch: Callable, thorough: bool = False) -> str:
    """``zero_init_branch(block)`` zeroes the branch's last layer (weight and bias) and nothing else."""
    import torch
    from torch import nn

    shapes = [(16, 32), (8, 24, 12)] if thorough else [(16, 32)]
    for dims in shapes:
        block = _zero_init_block(dims, len(dims))  # the course's y = F(x) + x, so this task does not depend on task 1
        branch = block.branch
        _run("zero_init_branch(block)", zero_init_branch, block)
        x = torch.randn(4, dims[0])
        y = _run("the block after zero_init_branch", block, x).detach()
        linears = [m for m in branch if isinstance(m, nn.Linear)]
        last = linears[-1]
        if not torch.allclose(y, x, atol=1e-6):
            if last.weight.detach().abs().sum().item() == 0 and last.bias.detach().abs().sum().item() != 0:
                raise _Fail("the last layer's weights are zero but its bias is not, so the block adds a constant "
                            "to its input. Zero the bias too (nn.init.zeros_(layer.bias)).")
            raise _Fail("after zero_init_branch the block should return its input unchanged, but the output differs "
                        f"by up to {(y - x).abs().max().item():.3g}. Zero the weight and bias of the branch's last "
                        "nn.Linear.")
        if any(m.weight.detach().abs().sum().item() == 0 for m in linears[:-1]):
            raise _Fail("you zeroed every layer of the branch. The block is the identity, but with the earlier "
                        "layers at zero the gradient of the last layer is zero too, so nothing ever trains. "
                        "Zero only the last layer.")
    return "the block starts as the identity, and its last layer still gets a gradient, so it learns the change from there."


@_checker("Task 1 · step 1, your block")
def _judge_residual(answers, seed, thorough) -> str:
    replay = _Replay(answers)
    for width, s in _residual_cases(seed, thorough):
        branch, x = _residual_branch(width, s)
        _run("Residual(branch)", replay.next)
        report = answers[replay.used - 1].get("report") or {}
        if report.get("is_module") is not True:
            raise _Fail("Residual(branch) should create an nn.Module (subclass nn.Module and call super().__init__()).")
        if report.get("shortcut") is not True:
            raise _Fail(_NO_SHORTCUT)
        y = _run("your block's forward", replay.next)
        if not _is_tensor(y):
            raise _Fail(f"forward returned {type(y).__name__}; it should return a tensor.")
        if (answers[replay.used - 1].get("report") or {}).get("input_changed") is not False:
            raise _Fail(_IN_PLACE)
        _residual_verdict(y, x, branch)
    return _RESIDUAL_PASSED


@_checker("Task 1 · step 1, the zero start")
def _judge_zero_init(answers, seed, thorough) -> str:
    from torch import nn

    replay = _Replay(answers)
    for dims, s in _zero_init_cases(seed, thorough):
        branch = _zero_init_block(dims, s).branch
        _run("zero_init_branch(block)", replay.next)
        if not _load_state(branch, (answers[replay.used - 1].get("report") or {}).get("state")):
            raise _Fail("after zero_init_branch the branch no longer has the layers it was given; change their "
                        "values only.")
        linears = [m for m in branch if isinstance(m, nn.Linear)]
        last = linears[-1]
        if last.weight.abs().sum().item() != 0 or last.bias.abs().sum().item() != 0:
            if last.weight.abs().sum().item() == 0:
                raise _Fail("the last layer's weights are zero but its bias is not, so the block adds a constant "
                            "to its input. Zero the bias too (nn.init.zeros_(layer.bias)).")
            raise _Fail("after zero_init_branch the block should return its input unchanged, but it does not. "
                        "Zero the weight and bias of the branch's last nn.Linear.")
        if any(m.weight.abs().sum().item() == 0 for m in linears[:-1]):
            raise _Fail("you zeroed every layer of the branch. The block is the identity, but with the earlier "
                        "layers at zero the gradient of the last layer is zero too, so nothing ever trains. "
                        "Zero only the last layer.")
    return "the block starts as the identity, and its last layer still gets a gradient, so it learns the change from there."


# --------------------------------------------------------------------------- Task 3: how big is each block's change?

def _changes(stack, x, how: str = "right") -> list[float]:
    """Each block's change relative to what reaches it (``how="right"``), or one of the usual wrong versions."""
    import torch

    values, h = [], x
    with torch.no_grad():
        for block in stack:
            base = x if how == "on the input" else h
            out = block(base)
            change = (block.branch(base) if how == "branch" and hasattr(block, "branch") else out - base)
            per_row, base_rows, out_rows = change.flatten(1).norm(dim=1), base.flatten(1).norm(dim=1), out.flatten(1).norm(dim=1)
            if how == "batch":
                values.append(float(change.norm() / base.norm()))
            elif how == "ratio of means":
                values.append(float(per_row.mean() / base_rows.mean()))
            elif how == "output":
                values.append(float((out_rows / base_rows).mean()))
            elif how == "by output":
                values.append(float((per_row / out_rows).mean()))
            elif how == "squared":
                values.append(float((per_row ** 2 / base_rows ** 2).mean()))
            elif how == "from x":
                values.append(float(((out - x).flatten(1).norm(dim=1) / x.flatten(1).norm(dim=1)).mean()))
            else:
                values.append(float((per_row / base_rows).mean()))
            h = out
    return values


_CHANGE_SLIPS = {
    "on the input": "every block measured on the stack's input x, not on the h that reaches it (h = block(h) after each block)",
    "batch": "one norm over the whole batch (‖block(h) − h‖ / ‖h‖ over all rows at once), not the mean of each row's ratio",
    "ratio of means": "the mean of ‖block(h) − h‖ over the mean of ‖h‖, not the mean of each row's ratio",
    "output": "‖block(h)‖ / ‖h‖, the size of the block's output; the change is block(h) − h",
    "by output": "the change divided by the block's output ‖block(h)‖, not by its input ‖h‖",
    "squared": "a ratio of squared norms",
    "branch": "block.branch(h), which is not the block's change when the block scales its branch (the course's "
              "ResidualLayer computes h + α·branch(h)); measure block(h) − h",
    "from x": "the stream's distance from the stack's input, ‖h_l − x‖ / ‖x‖, which adds up the changes of every block "
              "so far; measure each block's own change, block(h) − h",
}


def _as_floats(value, call: str, n: int) -> list[float]:
    if _is_tensor(value):
        if value.dim() > 1:
            raise _Fail(f"{call} returned a tensor of shape {_shape(value)}; return one number per block.")
        value = value.flatten().tolist()
    if not isinstance(value, (list, tuple)):
        raise _Fail(f"{call} returned {type(value).__name__}; return a list with one number per block, first block first.")
    values = [_as_float(v, f"each entry of {call}") for v in value]
    if len(values) != n:
        raise _Fail(f"{call} returned {len(values)} numbers for a stack of {n} blocks; return one per block.")
    return values


def _same(got: list[float], want: list[float]) -> bool:
    return all(math.isfinite(g) and math.isclose(g, w, rel_tol=1e-4, abs_tol=1e-7) for g, w in zip(got, want))


@_checker("Task 1 · how big is each block's change?")
def check_block_changes(block_changes: Callable, thorough: bool = False, seed: int | None = None) -> str:
    """``block_changes(blocks, x)``: per block, the mean over rows of ‖block(h) − h‖ / ‖h‖ on the h that reaches it."""
    for stack, x in block_changes_cases(seed, thorough):
        call = f"block_changes(a stack of {len(stack)} blocks, x of shape {_shape(x)})"
        got = _as_floats(_run(call, block_changes, stack, x), call, len(stack))
        want = _changes(stack, x)
        if _same(got, want):
            continue
        shown = ", ".join(f"{v:.4g}" for v in got)
        if _same(got, want[::-1]):
            raise _Fail(f"{call} returned [{shown}]: the right numbers, but your list runs from the last block to the "
                        "first; return it first block first.")
        slip = next((text for how, text in _CHANGE_SLIPS.items() if _same(got, _changes(stack, x, how))), None)
        raise _Fail(f"{call} returned [{shown}], which are not the blocks' relative changes"
                    + (f": your numbers are {slip}." if slip else
                       ": for each block, with h the input that reaches it, take each row's ‖block(h) − h‖ / ‖h‖ and "
                       "average over the rows; then pass h = block(h) on to the next block."))
    return ("your measure agrees with the grader's on stacks it drew at random, zero branches and scaled branches "
            "included: each block's change, relative to what reaches it.")


# The grader's judge of each check (the sandbox's answers are in book.exercises.cases.ex02).
JUDGED = {
    "check_residual": _judge_residual,
    "check_zero_init_branch": _judge_zero_init,
    "check_block_changes": _replay_judge(check_block_changes),
}
