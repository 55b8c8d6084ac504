"""Exercise 4's cases, drawn from a seed: the blocks ``BasicBlock`` is asked for, the depths ``cifar_resnet_parameters``
is called on and the nets and data sets ``early_training_loss`` trains, with the sandbox's answer of Task 1 (what the
learner's block computed, and the modules it computed it with)."""

from __future__ import annotations

import copy

from ..feedback import _is_tensor, _rng
from ..protocol import _plain, _record, _seeded, answers_on

SELF_CHECKS = ("check_basic_block", "check_cifar_resnet_parameters", "check_early_training_loss")


# --------------------------------------------------------------------------- Task 1 · a basic block

def _block_cases(seed, thorough):
    """``(in_channels, out_channels, stride, seed)``: a block that keeps the shape, two that change it (five when thorough)."""
    rng = _rng(seed)
    c = rng.choice([4, 8, 12, 16])
    wide = c * rng.choice([2, 3])
    cases = [(c, c, 1), (c, wide, 2), (c, wide, 1)]
    if thorough:
        cases += [(wide, wide, 1), (wide, c, 2)]
    return [(c_in, c_out, stride, _seeded(seed, i)) for i, (c_in, c_out, stride) in enumerate(cases)]


def _block_input(c_in, s):
    import torch

    return torch.randn(8, c_in, 40, generator=torch.Generator().manual_seed(s))


def _describe_leaf(m) -> dict:
    """One leaf module, with what the grader needs to recompute it (in the sandbox, or in the self-check)."""
    from torch import nn

    if isinstance(m, nn.Conv1d):
        return {"type": "Conv1d", "weight": _plain(m.weight.detach()),
                "bias": None if m.bias is None else _plain(m.bias.detach()),
                "stride": list(m.stride), "padding": list(m.padding) if not isinstance(m.padding, str) else m.padding}
    if isinstance(m, nn.BatchNorm1d):
        return {"type": "BatchNorm1d", "eps": float(m.eps),
                "weight": None if m.weight is None else _plain(m.weight.detach()),
                "bias": None if m.bias is None else _plain(m.bias.detach())}
    return {"type": type(m).__name__[:60]}


def _describe(module) -> list:
    """The leaf modules of a shortcut, with what the grader needs to recompute it (in the sandbox)."""
    return [_describe_leaf(m) for m in module.modules() if not list(m.children())]


def _traced_forward(block, shortcut, x, run) -> tuple:
    """``run()`` (the block's forward on ``x``) with hooks: ``(y, shortcut outputs, shortcut as called, branch leaves)``.

    The branch leaves are the block's leaf modules outside the shortcut, in the order the forward called them,
    each described as it was before the forward (a forward that zeroes or rescales its own weights shows): the
    grader recomputes ``relu(F(x) + shortcut(x))`` from them and compares it with the block's real output.
    """
    in_shortcut = {id(m) for m in shortcut.modules()}
    outputs, called, leaves = [], [], []
    as_built = _describe(shortcut)          # weights as they were before the forward could change them
    handles = [shortcut.register_forward_hook(lambda m, i, o: outputs.append(o)),
               shortcut.register_forward_pre_hook(lambda m, i: None if called else called.append(as_built))]
    for m in block.modules():
        if id(m) not in in_shortcut and not list(m.children()):
            before = _describe_leaf(m)
            handles.append(m.register_forward_pre_hook(
                lambda mod, i, before=before: leaves.append(before) if len(leaves) < 12 else None))
    try:
        y = run()
    finally:
        for handle in handles:
            handle.remove()
    return y, outputs, (called[0] if called else None), leaves


def _answer_basic_block(BasicBlock, seed, thorough, answers):
    """The learner's block on each case: what it is, what its forward returned and called, and its output with the
    branch's BatchNorms zeroed. The grader recomputes the block from these modules and judges it."""
    import torch
    from torch import nn

    for c_in, c_out, stride, s in _block_cases(seed, thorough):
        torch.manual_seed(s)
        block = _record(answers, BasicBlock, c_in, c_out, stride)
        shortcut = getattr(block, "shortcut", None)
        report = answers[-1]["report"] = {
            "is_module": isinstance(block, nn.Module), "shortcut": isinstance(shortcut, nn.Module),
            "identity": isinstance(shortcut, nn.Identity),
            "has_params": isinstance(shortcut, nn.Module) and any(p.requires_grad for p in shortcut.parameters())}
        if not (report["is_module"] and report["shortcut"]):
            return
        x = _block_input(c_in, s)
        y, calls, used, leaves = _traced_forward(block, shortcut, x, lambda: _record(answers, block, x))
        report = answers[-1]["report"] = {"shortcut_calls": [list(c.shape) for c in calls if _is_tensor(c)],
                                          "shortcut_used": used, "branch": leaves}
        if not isinstance(y, torch.Tensor):
            return
        trial = _record(answers, lambda: copy.deepcopy(block).train())
        in_shortcut = {id(m) for m in trial.shortcut.modules()}
        norms = [m for m in trial.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and id(m) not in in_shortcut]
        report = answers[-1]["report"] = {"norms": len(norms), "shortcut": _describe(trial.shortcut)}
        with torch.no_grad():
            for m in norms:
                m.weight.zero_()
                m.bias.zero_()
            _record(answers, trial, x)


# --------------------------------------------------------------------------- Task 2 · the parameter count

def cifar_resnet_parameters_cases(seed: int | None, thorough: bool):
    """``(depth,)``: ResNet-20, -56 and -110 (five depths when thorough); with a seed, 20 or 56 and four depths 6n + 2
    up to 362."""
    depths = [20, 56, 110] if not thorough else [20, 32, 44, 56, 110]
    if seed is not None:
        rng = _rng(seed)
        depths = [rng.choice([20, 56])] + [6 * rng.randint(1, 60) + 2 for _ in range(4)]
    for depth in depths:
        yield (depth,)


# --------------------------------------------------------------------------- Task 3 · does zero-init speed up the start?

def _tiny_data(seed: int, n_train: int = 768, n_test: int = 128):
    """A small stand-in for MNIST-1D: one template per class plus noise, so that a check trains in a fraction of a second."""
    from types import SimpleNamespace

    import torch

    gen = torch.Generator().manual_seed(seed)
    templates = torch.randn(10, 1, 40, generator=gen)
    y = torch.randint(0, 10, (n_train + n_test,), generator=gen)
    x = templates[y] + 0.8 * torch.randn(n_train + n_test, 1, 40, generator=gen)
    return SimpleNamespace(x_train=x[:n_train], y_train=y[:n_train], x_test=x[n_train:], y_test=y[n_train:])


def _early_cases(seed: int, thorough: bool):
    """``(depth, zero_init, seed, epochs, data seed)``: a zero-initialized net and a default one (and a third when thorough)."""
    rng = _rng(seed)
    cases = [(rng.choice([8, 14]), True, rng.randint(0, 999), 2, rng.randint(0, 10**6)),
             (rng.choice([8, 14]), False, rng.randint(0, 999), rng.choice([1, 2]), rng.randint(0, 10**6))]
    if thorough:
        cases.append((14, True, rng.randint(0, 999), 1, rng.randint(0, 10**6)))
    return cases


def early_training_loss_cases(seed: int, thorough: bool):
    """``(depth, zero_init, seed, epochs, data)``: each case of :func:`_early_cases`, with its tiny data set."""
    for depth, zero_init, s, epochs, data_seed in _early_cases(seed, thorough):
        yield depth, zero_init, s, epochs, _tiny_data(data_seed)


ANSWERS = {
    "check_basic_block": _answer_basic_block,
    "check_cifar_resnet_parameters": answers_on(cifar_resnet_parameters_cases),
    "check_early_training_loss": answers_on(early_training_loss_cases),
}
