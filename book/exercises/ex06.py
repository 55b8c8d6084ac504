"""The self-checks of Exercise 6, the transformer's residual stream: what the notebook's check cells run, and, for each, the grader's judge.

The cases and the sandbox's answers are in :mod:`book.exercises.cases.ex06`; the references (the placements of the
norm, the relative change of the logits and its usual wrong variants) stay here, with the grader.
"""

from __future__ import annotations

import copy
import math
from typing import Callable

from .cases.ex06 import _stream_cases, _stream_inputs, update_cases
from .feedback import NOT_DONE, _Fail, _checker, _close, _is_tensor, _one_number, _run
from .protocol import _Replay, _Unreadable, _replay_judge

__all__ = ['check_pre_norm_block', 'check_post_norm_block', 'check_norm_blocks', 'check_output_change']


def _stream_case(cls, d_model: int, seed: int):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    sublayer = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))
    given = copy.deepcopy(sublayer)   # the weights the block is given: a forward that changes them is judged by these
    block = _run(f"{cls.__name__}({d_model}, sublayer)", cls, d_model, sublayer)
    if not isinstance(block, nn.Module):
        raise _Fail(f"{cls.__name__}(d_model, sublayer) should create an nn.Module.")
    norm = getattr(block, "norm", None)
    if not isinstance(norm, nn.LayerNorm):
        raise _Fail("store the block's nn.LayerNorm(d_model) as self.norm (and the sublayer as self.sublayer).")
    with torch.no_grad():  # a learned γ, β that are not 1 and 0, so a missing norm shows
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.5, 0.5)
    norm = copy.deepcopy(norm)   # γ and β as set here, whatever the forward does to the block's own
    x = 3 * torch.randn(2, 5, d_model) + 1
    x_before = x.clone()
    y = _run(f"{cls.__name__}'s forward", block, x)
    if not _is_tensor(y):
        raise _Fail(f"forward returned {type(y).__name__}; it should return a tensor.")
    if not torch.equal(x, x_before):
        raise _Fail("forward changed its input in place (x += ...); write x = x + ... so the stream's earlier values stay intact.")
    with torch.no_grad():
        f = given
        variants = {
            "pre": x + f(norm(x)),
            "post": norm(x + f(x)),
            "pre+final": norm(x + f(norm(x))),
            "no-residual-pre": f(norm(x)),
            "no-residual-post": norm(f(x)),
            "no-norm": x + f(x),
        }
    found = next((k for k, v in variants.items() if _close(y.detach(), v, 1e-4)), None)
    return found, (y.detach() - variants["pre"]).abs().max().item()


_PRE_NORM_PASSED = "x + F(norm(x)): the stream x passes from block to block untouched, and each block adds its update."
_POST_NORM_PASSED = "norm(x + F(x)): every block rescales the stream, which is why deep post-norm stacks need care."


def _pre_norm_hint(found, gap: float) -> str:
    return {
        "post": "your PreNormBlock computes norm(x + F(x)): that is post-norm. Pre-norm normalizes only the "
                "branch's input and leaves the stream untouched: x = x + self.sublayer(self.norm(x)).",
        "pre+final": "your block normalizes the sum as well: norm(x + F(norm(x))). In a pre-norm block the "
                     "residual stream is never normalized; return x + F(norm(x)).",
        "no-residual-pre": "your block returns F(norm(x)): the residual connection is missing. Add x back.",
        "no-residual-post": "your block returns norm(F(x)): the residual connection is missing, and the norm "
                            "belongs before the sublayer.",
        "no-norm": "your block returns x + F(x): the LayerNorm is missing. Apply self.norm to the sublayer's input.",
        None: f"your PreNormBlock's output differs from x + F(norm(x)) by up to {gap:.3g}.",
    }[found]


def _post_norm_hint(found, gap: float) -> str:
    return {
        "pre": "your PostNormBlock computes x + F(norm(x)): that is pre-norm. The original Transformer "
               "normalizes after the sum: x = self.norm(x + self.sublayer(x)).",
        "pre+final": "your block normalizes both the sublayer's input and the sum. Post-norm applies the norm "
                     "once, after the sum: norm(x + F(x)).",
        "no-residual-pre": "your block returns F(norm(x)): the residual connection is missing and the norm is "
                           "in the wrong place. Return norm(x + F(x)).",
        "no-residual-post": "your block returns norm(F(x)): the residual connection is missing. Add x before the norm.",
        "no-norm": "your block returns x + F(x): the LayerNorm after the sum is missing.",
        None: "your PostNormBlock's output differs from norm(x + F(x)).",
    }[found]


def _norm_placement_verdict(results, want: str, hint, passed: str) -> str:
    """``results`` yields ``(placement found, gap)`` per case, lazily: the first wrong placement fails with its hint."""
    for found, gap in results:
        if found != want:
            raise _Fail(hint(found, gap))
    return passed


@_checker("Task 1 · a pre-norm block")
def check_pre_norm_block(PreNormBlock, thorough: bool = False) -> str:
    """``PreNormBlock(d_model, sublayer)`` computes ``x + sublayer(norm(x))``."""
    cases = [(16, 0), (24, 1)] if thorough else [(16, 0)]
    return _norm_placement_verdict((_stream_case(PreNormBlock, d, seed) for d, seed in cases), "pre",
                                   _pre_norm_hint, _PRE_NORM_PASSED)


@_checker("Task 1 · a post-norm block")
def check_post_norm_block(PostNormBlock, thorough: bool = False) -> str:
    """``PostNormBlock(d_model, sublayer)`` computes ``norm(x + sublayer(x))``."""
    cases = [(16, 2), (24, 3)] if thorough else [(16, 2)]
    return _norm_placement_verdict((_stream_case(PostNormBlock, d, seed) for d, seed in cases), "post",
                                   _post_norm_hint, _POST_NORM_PASSED)


def _judge_stream(answers, seed, thorough, cls_name):
    import torch
    import torch.nn.functional as F

    replay = _Replay(answers)
    for d, s in _stream_cases(seed, thorough):
        sublayer, gamma, beta, x = _stream_inputs(d, s)
        _run(f"{cls_name}({d}, sublayer)", replay.next)
        r = answers[replay.used - 1].get("report") or {}
        if r.get("is_module") is not True:
            raise _Fail(f"{cls_name}(d_model, sublayer) should create an nn.Module.")
        if r.get("norm") is not True:
            raise _Fail("store the block's nn.LayerNorm(d_model) as self.norm (and the sublayer as self.sublayer).")
        if r.get("sublayer") is not True:
            raise _Fail("store the sublayer the block is given as self.sublayer, and use it in forward.")
        eps = r.get("eps")
        y = _run(f"{cls_name}'s forward", replay.next)
        r2 = answers[replay.used - 1].get("report") or {}
        if not _is_tensor(y):
            raise _Fail(f"forward returned {type(y).__name__}; it should return a tensor.")
        if r2.get("input_changed") is not False:
            raise _Fail("forward changed its input in place (x += ...); write x = x + ... so the stream's earlier "
                        "values stay intact.")
        # The sublayer is the grader's own, drawn from the seed as the sandbox drew it before the block existed:
        # a forward that zeroes or rescales its sublayer is judged against the weights it was given.
        if type(eps) is not float or not 0 < eps < 1:
            raise _Unreadable("a malformed answer")
        with torch.no_grad():
            def norm(t):
                return F.layer_norm(t, (d,), gamma, beta, eps)
            f = sublayer
            variants = {"pre": x + f(norm(x)), "post": norm(x + f(x)), "pre+final": norm(x + f(norm(x))),
                        "no-residual-pre": f(norm(x)), "no-residual-post": norm(f(x)), "no-norm": x + f(x)}
        found = next((k for k, v in variants.items() if _close(y, v, 1e-4)), None)
        yield found, (y - variants["pre"]).abs().max().item() if y.shape == x.shape else float("inf")


@_checker("Task 1 · a pre-norm block")
def _judge_pre_norm(answers, seed, thorough) -> str:
    return _norm_placement_verdict(_judge_stream(answers, seed, thorough, "PreNormBlock"), "pre",
                                   _pre_norm_hint, _PRE_NORM_PASSED)


@_checker("Task 1 · a post-norm block")
def _judge_post_norm(answers, seed, thorough) -> str:
    return _norm_placement_verdict(_judge_stream(answers, seed, thorough, "PostNormBlock"), "post",
                                   _post_norm_hint, _POST_NORM_PASSED)


@_checker("Task 1 · the two blocks")
def check_norm_blocks(PreNormBlock, PostNormBlock, thorough: bool = False) -> str:
    """Both blocks at once, for the notebook's one check cell: :func:`check_pre_norm_block`, then :func:`check_post_norm_block`.

    The hidden tests grade the two blocks with those two checks (one point each), so this one needs no answer and judge of its own.
    """
    for name, check, cls in (("PreNormBlock", check_pre_norm_block, PreNormBlock),
                             ("PostNormBlock", check_post_norm_block, PostNormBlock)):
        feedback = check(cls, thorough=thorough)
        if feedback.message == NOT_DONE:
            raise NotImplementedError
        if not feedback:
            raise _Fail(f"{name}: {feedback.message}")
    return f"PreNormBlock: {_PRE_NORM_PASSED} PostNormBlock: {_POST_NORM_PASSED}"


# --------------------------------------------------------------------------- Task 2 · how far one update moves the output

def _output_change(model, batch, lr: float, how: str = "right") -> float:
    """‖Δ logits‖ / ‖logits‖ on the scored positions after one Adam-sized step, or one of the usual wrong variants."""
    import torch
    import torch.nn.functional as F

    from ..sequence_task import masked_cross_entropy

    logits = model(batch.inputs)
    if how == "unmasked loss":
        loss = F.cross_entropy(logits.flatten(0, 1), batch.targets.flatten())
    else:
        loss = masked_cross_entropy(logits, batch)
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params)
    with torch.no_grad():
        for p, g in zip(params, grads):
            if how == "weights only" and p.dim() < 2:
                continue
            step = lr * (g if how == "sgd" else torch.sign(g))     # Adam's first step: m̂/√v̂ = g/|g|
            p += step if how == "uphill" else -step
        moved = model(batch.inputs)
        if how in ("loss change", "relative loss change"):
            change = abs(masked_cross_entropy(moved, batch).item() - loss.item())
            return change / loss.item() if how == "relative loss change" else change
        mask = torch.ones_like(batch.mask) if how == "all positions" else batch.mask
        before, after = logits.detach()[mask], moved[mask]                  # (N, V): the scored positions
        delta = after - before
        if how == "absolute":
            return delta.norm().item()
        if how == "per position":
            return (delta.norm(dim=-1) / before.norm(dim=-1)).mean().item()
        if how == "squared":
            return ((delta.norm() / before.norm()) ** 2).item()
        return (delta.norm() / before.norm()).item()


_UPDATE_HINTS = {
    "sgd": "you took a gradient step, θ − lr·g. Adam's first step moves every weight by the same amount: "
           "θ − lr·sign(g) (its m̂/√v̂ is g/|g|).",
    "uphill": "you stepped up the gradient, θ + lr·sign(g); an optimizer steps against it, θ − lr·sign(g).",
    "unmasked loss": "your gradient comes from the loss over every position. Only the sorted half is scored: "
                     "use masked_cross_entropy(logits, batch), as training does.",
    "weights only": "you moved only the weight matrices. Adam's step moves every parameter (biases, LayerNorm γ "
                    "and β, embeddings) by lr.",
    "loss change": "that is the change of the loss. Measure how far the logits move: ‖Δ logits‖ / ‖logits‖.",
    "relative loss change": "that is the relative change of the loss. Measure how far the logits move: "
                            "‖Δ logits‖ / ‖logits‖.",
    "all positions": "you measured the logits at every position. Use only the scored ones, logits[batch.mask], "
                     "as the chapter does.",
    "absolute": "that is ‖Δ logits‖ alone; divide by ‖logits‖ before the step, so the change is relative.",
    "per position": "you averaged a relative change per position. Take the norms over all scored positions "
                    "together: ‖Δ logits‖ / ‖logits‖.",
    "squared": "you squared the ratio; return ‖Δ logits‖ / ‖logits‖ itself.",
}


@_checker("Task 2 · how far one update moves the output")
def check_output_change(output_change: Callable, thorough: bool = False, seed: int | None = None) -> str:
    """``output_change(model, batch, lr)``: ‖Δ logits‖ / ‖logits‖ on the scored positions after one Adam-sized step."""
    # `base` is the check's own copy of each model: `output_change` is given another, and changes its weights
    for norm, n_layer, base, (model, batch, lr) in update_cases(0 if seed is None else seed, thorough):
        call = f"output_change(model, batch, lr={lr:g}) for an untrained {n_layer}-block {norm} model"
        try:
            got = _run(call, output_change, model, batch, lr)
        except _Fail as fail:
            if "leaf Variable" in str(fail):  # the weights were changed where autograd records
                raise _Fail(f"{fail} Change the weights inside `with torch.no_grad():`.") from None
            raise
        got = _one_number(got, call, "‖Δ logits‖ / ‖logits‖")
        want = _output_change(copy.deepcopy(base), batch, lr)
        if math.isfinite(got) and math.isclose(got, want, rel_tol=2e-3):
            continue
        slip = next((name for name in _UPDATE_HINTS
                     if math.isclose(got, _output_change(copy.deepcopy(base), batch, lr, name), rel_tol=1e-4)), None)
        raise _Fail(f"{call} returned {got:.4g}, which is not the relative change of the scored logits"
                    + (f": {_UPDATE_HINTS[slip]}" if slip else
                       ": step every parameter by lr·sign(∂L/∂θ) (L the masked loss), then return the norm of the "
                       "change of logits[batch.mask] divided by the norm of logits[batch.mask] before the step."))
    return ("one Adam-sized step, every parameter moved by lr against its gradient's sign, and the relative change "
            "of the scored logits: Liu et al.'s measure of how much depth amplifies an update.")


# The grader's judge of each check (the sandbox's answers are in book.exercises.cases.ex06). check_norm_blocks has
# none: the hidden tests grade the two blocks with check_pre_norm_block and check_post_norm_block.
JUDGED = {
    "check_pre_norm_block": _judge_pre_norm,
    "check_post_norm_block": _judge_post_norm,
    "check_output_change": _replay_judge(check_output_change),
}
