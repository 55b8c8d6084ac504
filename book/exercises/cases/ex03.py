"""Exercise 3's cases, drawn from a seed: the stacks and batches ``layer_grad_norms`` probes, the 100 layers
``init_linear`` initializes (and their raw numbers, which the grader reads), and the stacks ``gradient_ratio`` builds;
with the sandbox's answers on them. Also :func:`predicted_activation_stds`, a helper the notebook uses."""

from __future__ import annotations

import math

from ..feedback import _is_tensor, _rng
from ..protocol import _record, _seeded, answers_on

SELF_CHECKS = ("check_layer_grad_norms", "check_init_linear", "check_gradient_ratio")


def predicted_activation_stds(layers, input_var: float = 1.0) -> list[float]:
    """He et al.'s variance recursion for a plain ``Linear → ReLU`` stack, from the layers' actual weights.

    For zero-mean weights drawn independently, the variance of layer ``l``'s output, averaged over the
    draw of the weights, is ``q_l = n·E[w²]·E[relu(h_{l-1})²] + E[b²]`` with ``E[relu(h)²] = q_{l-1}/2``
    (the first layer sees the raw input, variance ``input_var``). Returns ``sqrt(q_l)`` per layer.
    """
    q, stds = input_var, []
    for i, layer in enumerate(layers):
        w = layer.weight.detach()
        gain = w.shape[1] * w.pow(2).mean().item()
        bias = layer.bias.detach().pow(2).mean().item() if layer.bias is not None else 0.0
        q = gain * (q if i == 0 else q / 2) + bias
        stds.append(math.sqrt(q) if math.isfinite(q) else float("inf"))
    return stds


# --------------------------------------------------------------------------- Task 1 · per-layer gradient norms

def layer_grad_norms_cases(seed: int | None, thorough: bool):
    """``(model, x, y)``: MLP stacks and a batch of 32 random inputs and labels for each.

    Without a seed (the notebook's check): a plain stack 6 deep and 16 wide (and, when thorough, a residual one 9 deep
    and 12 wide). With one (the grader's): a plain and a residual stack of depths and widths drawn from it.
    """
    import torch

    from ...nets.mlp import MLPConfig, MLPStack

    configs = [MLPConfig(depth=6, width=16, residual=False)]
    if thorough:
        configs += [MLPConfig(depth=9, width=12, residual=True)]
    if seed is not None:
        rng = _rng(seed)
        configs = [MLPConfig(depth=rng.randint(4, 10), width=rng.randint(8, 20), residual=residual)
                   for residual in (False, True)]
    for cfg in configs:
        torch.manual_seed(cfg.depth if seed is None else seed % 2**31 + cfg.depth)
        model = MLPStack(cfg)
        x, y = torch.randn(32, 40), torch.randint(0, 10, (32,))
        yield model, x, y


# --------------------------------------------------------------------------- Task 2 · an initialization for 100 layers

INIT_DEPTH, INIT_WIDTH = 100, 128      # Task 2's plain stack


def _init_layers(seed: int):
    """Task 2's 100 layers as PyTorch creates them, right after torch.manual_seed(seed) (in the sandbox and the grader)."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    return [nn.Linear(INIT_WIDTH, INIT_WIDTH) for _ in range(INIT_DEPTH)]


def _raw_bytes(t, dtype) -> bytes:
    """The numbers a tensor holds, as little-endian bytes of ``dtype``: read through torch.Tensor's own methods with
    __torch_function__ off, so that neither a subclass's overrides nor its __torch_function__ can change them."""
    import torch

    with torch._C.DisableTorchFunctionSubclass():
        plain = torch.Tensor.contiguous(torch.Tensor.to(torch.Tensor.detach(t), "cpu", dtype))
        return bytes(torch.Tensor.numpy(plain).tobytes())


def _encoded(tensors, dtype) -> str:
    import base64

    return base64.b64encode(b"".join(_raw_bytes(t, dtype) for t in tensors)).decode("ascii")


def _init_report(layers, seed: int) -> dict:
    """What the grader needs to judge Task 2: the raw numbers (every weight in half precision, every bias); the
    grader computes every statistic itself."""
    import torch

    weights = [getattr(m, "weight", None) for m in layers]
    biases = [getattr(m, "bias", None) for m in layers]
    if not all(_is_tensor(w) and tuple(w.shape) == (INIT_WIDTH, INIT_WIDTH) for w in weights) or \
            not all(b is None or (_is_tensor(b) and tuple(b.shape) == (INIT_WIDTH,)) for b in biases):
        return {"shapes": False}
    return {"shapes": True, "weights": _encoded(weights, torch.float16),
            "biases": _encoded([torch.zeros(INIT_WIDTH) if b is None else b for b in biases], torch.float32)}


def _init_cases(seed, thorough):
    """The torch seed of each stack: one (three when thorough)."""
    return [_seeded(seed, i) for i in range(3 if thorough else 1)]


def _answer_init_linear(init_linear, seed, thorough, answers):
    """The learner's ``init_linear`` on each of the 100 layers of each case, then the layers' raw numbers."""
    for s in _init_cases(seed, thorough):
        layers = _init_layers(s)
        for m in layers:
            _record(answers, init_linear, m)
        answers.append({"report": _init_report(layers, s)})


# --------------------------------------------------------------------------- Task 3 · how small must the branches be?

def gradient_ratio_cases(seed: int | None, thorough: bool):
    """``(depth, alpha, seed)``: stacks 4 to 12 deep with branch scales 0.2 to 0.7, two cases (three when thorough)."""
    rng = _rng(0 if seed is None else seed)
    for _ in range(3 if thorough else 2):
        yield rng.randint(4, 12), rng.choice([0.2, 0.3, 0.4, 0.5, 0.7]), rng.randrange(10_000)


ANSWERS = {
    "check_layer_grad_norms": answers_on(layer_grad_norms_cases),
    "check_init_linear": _answer_init_linear,
    "check_gradient_ratio": answers_on(gradient_ratio_cases),
}
