"""The self-checks of Exercise 3, gradient flow: what the notebook's check cells run, and, for each, the grader's judge.

The cases each check draws from the seed, the sandbox's answers on them, and :func:`predicted_activation_stds` (a
helper the notebook uses) are in :mod:`book.exercises.cases.ex03`; what the judges compare with (autograd's gradient
norms, the statistics of the learner's weights, the stacks' gradient ratios and their usual wrong versions) stays here.
"""

from __future__ import annotations

import math
from typing import Callable

from .cases.ex03 import (
    INIT_DEPTH, INIT_WIDTH, _init_cases, _init_layers, _init_report, gradient_ratio_cases, layer_grad_norms_cases,
    predicted_activation_stds,
)
from .feedback import _Fail, _checker, _one_number, _run
from .protocol import _Replay, _Unreadable, _replay_judge

__all__ = ['check_layer_grad_norms', 'check_init_linear', 'predicted_activation_stds', 'check_gradient_ratio']


def _grad_reference(model, x, y):
    """Per-layer ‖∂L/∂(output of layer l)‖ over ``model.layers``, and the weight-gradient norms."""
    import torch.nn.functional as F

    outputs = []
    def keep(module, inputs, output):
        output.retain_grad()
        outputs.append(output)

    handles = [layer.register_forward_hook(keep) for layer in model.layers]
    try:
        model.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
    finally:
        for h in handles:
            h.remove()
    act = [o.grad.norm().item() for o in outputs]
    weights = [next(p for p in layer.parameters() if p.dim() == 2).grad.norm().item() for layer in model.layers]
    model.zero_grad()
    return act, weights


def _hook_count(model) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               + len(getattr(m, "_backward_pre_hooks", {})) for m in model.modules())


@_checker("Task 1 · per-layer gradient norms with hooks")
def check_layer_grad_norms(layer_grad_norms: Callable, thorough: bool = False, seed: int | None = None) -> str:
    """``layer_grad_norms(model, x, y)`` → one ‖∂L/∂h_l‖ per layer of ``model.layers``, first layer first."""
    for model, x, y in layer_grad_norms_cases(seed, thorough):
        cfg = model.config
        want, weight_norms = _grad_reference(model, x, y)
        hooks = _hook_count(model)
        got = _run("layer_grad_norms(model, x, y)", layer_grad_norms, model, x, y)
        if _hook_count(model) != hooks:
            raise _Fail(f"your function left {_hook_count(model) - hooks} hook(s) on the model. Keep the handle "
                        "that register_..._hook returns and call handle.remove() before returning.")
        try:
            got = [float(v) for v in got]
        except Exception:
            raise _Fail(f"layer_grad_norms should return a list of numbers, one per layer; it returned {type(got).__name__}.") from None
        kind = "residual" if cfg.residual else "plain"
        if len(got) != len(want):
            raise _Fail(f"for a {kind} stack with {len(want)} layers in model.layers your function returns "
                        f"{len(got)} values; return one per layer of model.layers.")
        if all(math.isclose(g, w, rel_tol=1e-3, abs_tol=1e-9) for g, w in zip(got, want)):
            continue
        if all(math.isclose(g, w, rel_tol=1e-3, abs_tol=1e-9) for g, w in zip(got, want[::-1])):
            raise _Fail("your list runs from the last layer to the first (the order backward visits them); "
                        "return it in forward order, first layer first.")
        if all(math.isclose(g, w, rel_tol=1e-3, abs_tol=1e-9) for g, w in zip(got, weight_norms)):
            raise _Fail("these are the gradient norms of each layer's weight matrix. The task asks for the gradient "
                        "of the loss with respect to each layer's output (the signal that flows backward).")
        ratios = [g / w for g, w in zip(got, want) if w > 0]
        if ratios and all(math.isclose(r, len(x), rel_tol=1e-3) for r in ratios):
            raise _Fail("your values are the batch size times too large: use the mean loss, "
                        "F.cross_entropy(model(x), y), not a summed one.")
        i = next(i for i, (g, w) in enumerate(zip(got, want)) if not math.isclose(g, w, rel_tol=1e-3, abs_tol=1e-9))
        raise _Fail(f"for a {kind} stack, layer {i}'s gradient norm should be {want[i]:.4g}, your function "
                    f"returns {got[i]:.4g}. Hook each layer's output, call .retain_grad() on it (or hook its "
                    "gradient), then run the loss backward once.")
    return "your probe agrees with autograd on every layer."


def _decoded(text, dtype, shape):
    """The tensor ``_encoded`` (:mod:`book.exercises.cases.ex03`) wrote, of exactly ``shape`` (in the grader: untrusted
    text)."""
    import base64
    import binascii

    import torch

    size = math.prod(shape) * torch.empty(0, dtype=dtype).element_size()
    if type(text) is not str or len(text) > 4 * size // 3 + 8:
        raise _Unreadable("a malformed answer")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _Unreadable("a malformed answer") from None
    if len(data) != size:
        raise _Unreadable("a malformed answer")
    return torch.frombuffer(bytearray(data), dtype=dtype).reshape(shape).double()


def _init_verdict(report, seed: int) -> str:
    """Task 2's verdict from raw numbers (self-check and grader alike); the success message, or ``_Fail``."""
    import torch

    if type(report) is not dict:
        raise _Unreadable("a malformed answer")
    if report.get("shapes") is not True:
        raise _Fail("init_linear changed the layers' weights or biases into something that is not a tensor of "
                    "their shape; re-initialize layer.weight in place (e.g. with a function from torch.nn.init).")
    weights = _decoded(report.get("weights"), torch.float16, (INIT_DEPTH, INIT_WIDTH, INIT_WIDTH))
    biases = _decoded(report.get("biases"), torch.float32, (INIT_DEPTH, INIT_WIDTH))
    created = _init_layers(seed)     # the weights as PyTorch made them: the grader's own
    if all(torch.equal(w, m.weight.detach().half().double()) for w, m in zip(weights, created)):
        raise _Fail("init_linear left the weights as PyTorch created them. Re-initialize layer.weight "
                    "(e.g. with a function from torch.nn.init).")
    if not torch.isfinite(weights).all():
        raise _Fail("init_linear put infinite or NaN values in the weights (or values beyond half precision).")
    first = weights[0]
    if abs(first.mean().item()) > 0.1 * math.sqrt(first.pow(2).mean().item()):
        raise _Fail(f"your weights are not centred on zero (their mean is {first.mean().item():.3g}). The variance "
                    "argument, and a healthy network, need weights drawn symmetrically around 0.")
    weight_ms, bias_ms = weights.pow(2).mean(dim=(1, 2)).tolist(), biases.pow(2).mean(dim=1).tolist()
    # He et al.'s recursion (predicted_activation_stds), with E[w²] estimated from each layer's sample
    q, stds = 1.0, []
    for i in range(INIT_DEPTH):
        q = INIT_WIDTH * weight_ms[i] * (q if i == 0 else q / 2) + bias_ms[i]
        stds.append(math.sqrt(q) if math.isfinite(q) and q >= 0 else float("inf"))
    bad = next((i for i, sd in enumerate(stds) if not (0.5 <= sd <= 2)), None)
    if bad is None:
        return (f"the activation std stays within [0.5, 2] through all {INIT_DEPTH} layers (predicted "
                f"{stds[-1]:.2f} at the last).")
    per_layer = (stds[bad] / stds[0]) ** (1 / bad) if bad and 0 < stds[0] < float("inf") and stds[bad] > 0 else float("nan")
    direction = "shrinks" if stds[bad] < 0.5 else "grows"
    hint = ("Your weights are too small: ReLU zeroes about half of each layer's input, so the weight variance "
            "must be 2 / fan_in to keep the signal's size (He et al. 2015)." if direction == "shrinks" else
            "Your weights are too large: aim for a weight variance of 2 / fan_in (He et al. 2015).")
    factor = f" (×{per_layer:.3g} per layer)" if math.isfinite(per_layer) and per_layer > 0 else ""
    raise _Fail(f"with your initialization the activations' standard deviation {direction} to {stds[bad]:.3g} "
                f"by layer {bad + 1}{factor}, outside [0.5, 2]. {hint}")


@_checker("Task 2 · an initialization for 100 plain ReLU layers")
def check_init_linear(init_linear: Callable, thorough: bool = False) -> str:
    """``init_linear(layer)``: the predicted activation std of a 100-layer plain ReLU stack stays in [0.5, 2]."""
    for seed in ([0, 1, 2] if thorough else [0]):
        layers = _init_layers(seed)
        for m in layers:
            _run("init_linear(layer)", init_linear, m)
        message = _init_verdict(_init_report(layers, seed), seed)
    return message


@_checker("Task 2 · an initialization for 100 plain ReLU layers")
def _judge_init_linear(answers, seed, thorough) -> str:
    replay = _Replay(answers)
    for s in _init_cases(seed, thorough):
        for _ in range(INIT_DEPTH):
            _run("init_linear(layer)", replay.next)
        report = answers[replay.used].get("report") if replay.used < len(answers) else None
        replay.used += 1
        message = _init_verdict(report, s)
    return message


# --------------------------------------------------------------------------- Task 3: how small must the branches be?

RATIO_WIDTH = 64        # the width of Task 3's stacks
RATIO_BATCH = 128       # the first MNIST-1D training sequences, as in Chapter 3's probes


def _ratio_stack(depth, alpha, s, width=RATIO_WIDTH, init="kaiming", residual=True):
    """Task 3's network: a residual MLPStack, Kaiming init, branch scale α, built right after torch.manual_seed(s)."""
    import torch

    from ..nets.mlp import MLPConfig, MLPStack

    torch.manual_seed(s)
    return MLPStack(MLPConfig(depth=depth, width=width, residual=residual, init=init, branch_scale=alpha))


# The judge's batch, as MNIST-1D's generator makes it (seed 42, 5000 sequences): its SHA-256 ships with the
# code, so that a poisoned on-disk cache (``~/.cache/residual-course/mnist1d-….npz``, writable by whoever ran the
# grader before) cannot change what the judge compares with.
RATIO_BATCH_SHA256 = "951b31c7eb223424bc728478ba6f3151f6aa86454cd9dd2b5c57c39e7c210a52"
_VERIFIED: list = []


def _batch_digest(x, y) -> str:
    import hashlib

    return hashlib.sha256(x.contiguous().numpy().tobytes() + y.contiguous().numpy().tobytes()).hexdigest()


def _ratio_batch():
    """The first 128 MNIST-1D training sequences: from the cache when they match the shipped hash, else generated
    afresh (never written back)."""
    from .. import data as datasets

    if _VERIFIED:
        return _VERIFIED[0]
    data = datasets.load_mnist1d().flat()
    batch = data.x_train[:RATIO_BATCH], data.y_train[:RATIO_BATCH]
    if _batch_digest(*batch) != RATIO_BATCH_SHA256:
        datasets._MEMORY.clear()                       # the cached copy is not the generator's: make it again
        data = datasets.load_mnist1d(cache=False).flat()
        batch = data.x_train[:RATIO_BATCH], data.y_train[:RATIO_BATCH]
    _VERIFIED.append(batch)
    return batch


def _ratio(model, x, y) -> float:
    act, _ = _grad_reference(model, x, y)
    return act[0] / act[-1]


def _ratio_slips(depth, alpha, s, x, y, want) -> dict:
    """The usual wrong versions of Task 3's number, for one case (computed only when the learner's differs)."""
    import torch.nn.functional as F

    from ..probes import probe, stack_points

    model = _ratio_stack(depth, alpha, s)
    act, weights = _grad_reference(model, x, y)
    with_embed = probe(model, stack_points(model), x, lambda out: F.cross_entropy(out, y)).grad_norm
    return {
        "the last layer's gradient over the first layer's (the ratio upside down)": 1 / want,
        "a ratio of squared norms": want ** 2,
        "the factor per block, not the ratio over the whole stack": want ** (1 / (depth - 1)),
        "the ratio of a stack built without your α (branch_scale left at 1)": _ratio(_ratio_stack(depth, 1.0, s), x, y),
        "the ratio of a stack with PyTorch's default init, not Kaiming's": _ratio(_ratio_stack(depth, alpha, s, init="default"), x, y),
        "the ratio of a stack 128 wide (Chapter 3's width), not 64": _ratio(_ratio_stack(depth, alpha, s, width=128), x, y),
        "the ratio of a plain stack (residual=False)": _ratio(_ratio_stack(depth, alpha, s, residual=False), x, y),
        "the ratio of the stack built after torch.manual_seed(0), not torch.manual_seed(seed)":
            _ratio(_ratio_stack(depth, alpha, 0), x, y),
        "the ratio of the weights' gradients, not of the layers' outputs": weights[0] / weights[-1],
        "measured from the input layer (model.embed), not from the first layer of model.layers": with_embed[0] / with_embed[-1],
    }


@_checker("Task 3 · how small must the branches be?")
def check_gradient_ratio(gradient_ratio: Callable, thorough: bool = False, seed: int | None = None) -> str:
    """``gradient_ratio(depth, alpha, seed)``: first-layer over last-layer gradient norm of Task 3's residual stack."""
    x, y = _ratio_batch()
    for depth, alpha, s in gradient_ratio_cases(seed, thorough):
        call = f"gradient_ratio({depth}, {alpha}, {s})"
        got = _run(call, gradient_ratio, depth, alpha, s)
        got = _one_number(got, call, "the first layer's gradient norm divided by the last layer's")
        want = _ratio(_ratio_stack(depth, alpha, s), x, y)
        if math.isfinite(got) and math.isclose(got, want, rel_tol=1e-3):
            continue
        slips = _ratio_slips(depth, alpha, s, x, y, want)
        slip = next((name for name, v in slips.items() if math.isfinite(got) and math.isclose(got, v, rel_tol=1e-3)), None)
        raise _Fail(f"{call} returned {got:.4g}, which is not the stack's first-to-last gradient ratio"
                    + (f": your number is {slip}." if slip else
                       ": check that you call torch.manual_seed(seed) right before building the stack, the stack's "
                       "settings (width, residual, initialization, branch scale) and which layers' gradient norms "
                       "you divide."))
    return ("your ratios match the grader's on stacks it drew at random: the gradient's growth through a "
            "residual stack, measured with your own probe.")


# The grader's judge of each check (the sandbox's answers are in book.exercises.cases.ex03).
JUDGED = {
    "check_layer_grad_norms": _replay_judge(check_layer_grad_norms),
    "check_init_linear": _judge_init_linear,
    "check_gradient_ratio": _replay_judge(check_gradient_ratio),
}
