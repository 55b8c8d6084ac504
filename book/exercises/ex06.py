"""The self-checks of Exercise 6, the transformer's residual stream: what the notebook's check cells run, and, for each, the grader's judge.

The cases and the sandbox's answers are in :mod:`book.exercises.cases.ex06`; the references (the relative change of
the logits and its usual wrong variants) stay here, with the grader.
"""

from __future__ import annotations

import copy
import math
from typing import Callable

from .cases.ex06 import update_cases
from .feedback import _Fail, _checker, _one_number, _run
from .protocol import _replay_judge

__all__ = ['check_output_change']


# --------------------------------------------------------------------------- Task 1 · how far one update moves the output

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


@_checker("Task 1 · which of DeepNorm's constants keeps the output still?")
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


# The grader's judge of each check (the sandbox's answers are in book.exercises.cases.ex06).
JUDGED = {
    "check_output_change": _replay_judge(check_output_change),
}
