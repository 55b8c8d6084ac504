"""Self-checks for the exercise notebooks, and where their sources and hidden tests are.

For learners: every task ends with a check cell such as ``check_basic_block(BasicBlock)``. A check
runs your code on small inputs and answers in words: what it expected, what your code did, and,
for the usual mistakes, what to change. It never raises; it returns a :class:`Feedback` that the
notebook shows as a green or red box.

For instructors (see ``instructors.md``): each exercise has one source,
``exercises/source/exNN_name.md``, a MyST notebook whose cells carry tags:

- ``solution`` on a code cell: the lines between ``### BEGIN SOLUTION`` and ``### END SOLUTION``
  are replaced by ``raise NotImplementedError(...)`` in the student notebook; the book page shows
  the whole cell behind a toggle.
- ``solution`` on a markdown cell: notes shown in a dropdown on the book page, dropped for students.
- ``hidden-test`` on a code cell, with metadata ``task``, ``points`` and ``title``: run by
  ``python -m book.grade`` after the submission, left out of the student notebook and the book page.

``python -m book.authoring.exercise_pages build`` writes ``exercises/exNN_name.md`` (the book page,
with solutions) and ``exercises/exNN_name.ipynb`` (the student notebook for Colab);
``python -m book.authoring.exercise_pages check`` exits 1 when either is missing or stale.
"""

from __future__ import annotations

import copy
import html
import itertools
import json
import math
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIR = ROOT / "exercises" / "source"

__all__ = [
    "Feedback", "TaskFailed", "grade_task",
    "check_weighted_layers", "check_add_identity_blocks",
    "check_residual", "check_zero_init_branch",
    "check_layer_grad_norms", "check_init_linear", "predicted_activation_stds",
    "check_basic_block", "check_cifar_resnet_parameters",
    "check_count_paths", "check_unrolled_output",
    "check_pre_norm_block", "check_post_norm_block", "check_deepnorm_constants",
    "SOURCE_DIR", "sources", "read_source", "cell_tags", "hidden_tests", "hidden_test_request", "probe", "judge",
]


# =========================================================================== feedback

class Feedback:
    """The answer of a check: ``bool(feedback)`` says whether the task passed; ``.message`` says why."""

    def __init__(self, task: str, passed: bool, message: str):
        self.task, self.passed, self.message = task, passed, message

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        mark = "✓ passed" if self.passed else "✗ not yet"
        return f"{self.task} — {mark}: {self.message}"

    def _repr_html_(self) -> str:
        # 4.5:1 or more on white and on the light output panels of dark mode (WCAG 2.1 AA).
        colour, mark = ("#13652d", "✓ passed") if self.passed else ("#9c1f18", "✗ not yet")
        return (f'<div style="border-left:4px solid {colour};padding:4px 10px;margin:4px 0">'
                f'<b style="color:{colour}">{html.escape(self.task)} — {mark}</b><br>'
                f'{html.escape(self.message)}</div>')


class TaskFailed(Exception):
    """Raised by :func:`grade_task` (in hidden tests) with the check's plain-words message."""


class _Fail(Exception):
    """A check's verdict, raised inside a check and turned into a failing :class:`Feedback`."""


NOT_DONE = "not done yet: replace the `raise NotImplementedError` in the task's cell with your code, then run that cell and this one again."


def _checker(task: str):
    """Decorate a check body ``f(*args) -> success message`` so that it always returns a Feedback."""

    def decorate(body: Callable[..., str]) -> Callable[..., Feedback]:
        def check(*args, **kwargs) -> Feedback:
            try:
                import torch

                with torch.random.fork_rng(devices=[]):  # leave the learner's random state alone
                    message = body(*args, **kwargs)
                return Feedback(task, True, message)
            except _Fail as fail:
                return Feedback(task, False, str(fail))
            except NotImplementedError:
                return Feedback(task, False, NOT_DONE)
            except RecursionError:
                return Feedback(task, False, "your code calls itself without end (RecursionError).")
            except Exception as err:  # learner code that fails in a way no step below anticipated
                return Feedback(task, False, f"your code raised {type(err).__name__}: {err}")

        check.__name__ = body.__name__
        check.__doc__ = body.__doc__
        return check

    return decorate


def _run(what: str, fn: Callable, *args, **kwargs):
    """Call learner code; turn its exceptions into a sentence that names what was being done."""
    try:
        return fn(*args, **kwargs)
    except (_Fail, NotImplementedError):
        raise
    except Exception as err:
        raise _Fail(f"{what} raised {type(err).__name__}: {err}") from None


def _rng(seed: int):
    """The grader's case generator: the same cases in the learner's sandbox and in the grader."""
    import random

    return random.Random(seed)


def _shape(t) -> str:
    return "(" + ", ".join(str(s) for s in t.shape) + ")"


def _is_tensor(value) -> bool:
    import torch

    return isinstance(value, torch.Tensor)


def _close(a, b, tol: float = 1e-5) -> bool:
    import torch

    return _is_tensor(a) and a.shape == b.shape and bool(torch.allclose(a, b, atol=tol, rtol=tol))


def _as_float(value, what: str) -> float:
    try:
        return float(value)
    except Exception:
        raise _Fail(f"{what} should be a number, but it is {type(value).__name__} {value!r}.") from None


def grade_task(check: Callable[..., Feedback], namespace: dict, *names: str, **kwargs) -> None:
    """Run ``check`` on the objects ``names`` from ``namespace``; raise :class:`TaskFailed` unless it passes.

    Hidden tests call this as ``grade_task(check_basic_block, globals(), "BasicBlock")``.
    """
    missing = [n for n in names if n not in namespace]
    if missing:
        raise TaskFailed(f"`{missing[0]}` is not defined: the cell that defines it was deleted, renamed, "
                         "or did not run.")
    feedback = check(*(namespace[n] for n in names), **kwargs)
    if not feedback:
        raise TaskFailed(feedback.message)
    print(repr(feedback))


# =========================================================================== 1. degradation

@_checker("Task 1 · count the weighted layers")
def check_weighted_layers(count_weighted_layers: Callable, seed: int | None = None) -> str:
    """``count_weighted_layers(model)`` counts convolutions and linear layers (the paper's "depth").

    ``seed`` (the grader's): networks of depths drawn from it instead of the fixed ones.
    """
    from torch import nn

    from .nets.conv1d import plain_net, resnet

    if seed is None:
        cases = [("plain_net(20)", plain_net(20)), ("resnet(56)", resnet(56)),
                 ("a Conv1d → BatchNorm1d → ReLU → Linear stack",
                  nn.Sequential(nn.Conv1d(1, 4, 3), nn.BatchNorm1d(4), nn.ReLU(), nn.Flatten(), nn.Linear(152, 10)))]
    else:
        rng = _rng(seed)
        d1, d2 = (6 * rng.randint(1, 6) + 2 for _ in range(2))
        pool = [lambda: nn.Conv1d(4, 4, 3), lambda: nn.BatchNorm1d(4), nn.ReLU, lambda: nn.Linear(8, 8), nn.Tanh]
        stack = nn.Sequential(*(rng.choice(pool)() for _ in range(rng.randint(3, 12))), nn.Linear(8, 10))
        cases = [(f"plain_net({d1})", plain_net(d1)), (f"resnet({d2})", resnet(d2)), ("a stack of layers", stack)]
    for name, model in cases:
        got = _run(f"count_weighted_layers({name})", count_weighted_layers, model)
        want = sum(isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)) for m in model.modules())
        if isinstance(got, bool) or not isinstance(got, int):
            raise _Fail(f"count_weighted_layers({name}) returned {got!r}; it should return a whole number (an int).")
        if got == want:
            continue
        with_norms = want + sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
        convs_only = sum(isinstance(m, (nn.Conv1d, nn.Conv2d)) for m in model.modules())
        leaves = sum(1 for m in model.modules() if not list(m.children()))
        tensors = len(list(model.parameters()))
        if got == with_norms:
            hint = ("you counted the BatchNorm layers too. The paper's depth counts only layers with a weight "
                    "matrix or kernel: convolutions and the final linear classifier.")
        elif got == convs_only:
            hint = "you counted the convolutions but not the final linear classifier, which the paper's depth includes."
        elif got == tensors:
            hint = "you counted parameter tensors (weights and biases, BatchNorm γ and β), not layers."
        elif got == leaves:
            hint = "you counted every module, ReLUs and BatchNorms included; count only Conv and Linear layers."
        else:
            hint = "count the modules that are nn.Conv1d, nn.Conv2d or nn.Linear (model.modules() visits them all)."
        raise _Fail(f"for {name} your function returns {got}, but the network has {want} weighted layers: {hint}")
    return "plain_net(20) has 20 weighted layers and resnet(56) has 56 — the names count exactly these."


@_checker("Task 2 · a deeper network that computes the same function")
def check_add_identity_blocks(add_identity_blocks: Callable, thorough: bool = False) -> str:
    """``add_identity_blocks(model, extra)`` returns a deeper copy of a residual net with the same outputs."""
    import torch

    from .nets.conv1d import BasicBlock1d, PlainBlock1d, resnet

    for depth, extra in ([(8, 2), (14, 3)] if thorough else [(8, 2)]):
        torch.manual_seed(depth)
        base = resnet(depth)
        x = torch.randn(6, 1, 40)
        base.eval()
        before = base(x).detach()
        n_blocks = len(base.blocks)
        deeper = _run(f"add_identity_blocks(resnet({depth}), {extra})", add_identity_blocks, base, extra)
        if not isinstance(deeper, torch.nn.Module):
            raise _Fail(f"add_identity_blocks returned {type(deeper).__name__}; it should return the deeper network (an nn.Module).")
        if deeper is base or len(base.blocks) != n_blocks or not _close(base.eval()(x).detach(), before):
            raise _Fail("your function changed the network it was given. Work on a copy (copy.deepcopy(model)) "
                        "so the shallow network stays as it was.")
        blocks = getattr(deeper, "blocks", None)
        if blocks is None or len(blocks) != n_blocks + extra:
            have = len(blocks) if blocks is not None else "no"
            raise _Fail(f"the deeper network should have {n_blocks + extra} blocks in .blocks "
                        f"({n_blocks} + {extra}), but it has {have}.")
        new = list(blocks)[n_blocks:]
        if any(isinstance(b, PlainBlock1d) for b in new):
            raise _Fail("you added plain blocks. A plain block computes relu(F(x)) and cannot start as the "
                        "identity; add residual blocks (BasicBlock1d) whose branch starts at zero.")
        deeper.eval()
        after = _run("the deeper network", deeper, x)
        if not _close(after.detach(), before, 1e-4):
            gap = (after.detach() - before).abs().max().item()
            zero = all(isinstance(b, BasicBlock1d) and b.branch[-1].weight.detach().abs().sum().item() == 0 for b in new)
            hint = ("" if zero else " Start each new block's branch at zero: call block.zero_init_last(), "
                    "which zeroes the last BatchNorm's γ.")
            raise _Fail(f"the deeper network's outputs differ from the shallow one's by up to {gap:.3g}.{hint}")
    return ("the deeper network computes exactly what the shallow one does, so depth alone cannot make "
            "its best training error worse — yet plain deep nets do train worse: that is the degradation problem.")


# =========================================================================== 2. learn the change

def _residual_instance(Residual, branch):
    block = _run("Residual(branch)", Residual, branch)
    import torch

    if not isinstance(block, torch.nn.Module):
        raise _Fail("Residual(branch) should create an nn.Module (subclass nn.Module and call super().__init__()).")
    return block


@_checker("Task 1 · y = F(x) + x")
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
            raise _Fail("give the block a shortcut module, self.shortcut = nn.Identity(), and use it in forward: "
                        "the course keeps every shortcut a module so probes can hook it.")
        x = torch.randn(5, width) * 2 - 1
        x_before = x.clone()
        y = _run("your block's forward", block, x)
        if not _is_tensor(y):
            raise _Fail(f"forward returned {type(y).__name__}; it should return a tensor.")
        if not torch.equal(x, x_before):
            raise _Fail("forward changed its input tensor in place (e.g. x += ...). Write the sum out of place, "
                        "x = x + self.branch(x), so the input that hooks and probes saved stays intact.")
        with torch.no_grad():
            f = branch(x)
            want = f + x
        y = y.detach()
        if _close(y, want):
            continue
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
    return "your block computes F(x) + x: the branch only has to learn the change from x to the target."


@_checker("Task 2 · start the block as the identity")
def check_zero_init_branch(zero_init_branch: Callable, thorough: bool = False) -> str:
    """``zero_init_branch(block)`` zeroes the branch's last layer (weight and bias) and nothing else."""
    import torch
    from torch import nn

    shapes = [(16, 32), (8, 24, 12)] if thorough else [(16, 32)]
    for dims in shapes:
        torch.manual_seed(len(dims))
        layers: list[nn.Module] = []
        width = dims[0]
        for hidden in dims[1:]:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, dims[0]))
        branch = nn.Sequential(*layers)
        block = _ReferenceResidual(branch)  # the course's y = F(x) + x, so this task does not depend on task 1
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


def _ReferenceResidual(branch):
    """The residual block of task 1, built by the course: ``y = branch(x) + x``."""
    from torch import nn

    class Residual(nn.Module):
        def __init__(self, branch: nn.Module):
            super().__init__()
            self.branch = branch
            self.shortcut = nn.Identity()

        def forward(self, x):
            return self.branch(x) + self.shortcut(x)

    return Residual(branch)


# =========================================================================== 3. gradient flow

def _grad_reference(model, x, y):
    """Per-layer ‖∂L/∂(output of layer l)‖ over ``model.layers``, and the weight-gradient norms."""
    import torch
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
    import torch

    from .nets.mlp import MLPConfig, MLPStack

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


@_checker("Task 2 · an initialization for 100 plain ReLU layers")
def check_init_linear(init_linear: Callable, thorough: bool = False) -> str:
    """``init_linear(layer)``: the predicted activation std of a 100-layer plain ReLU stack stays in [0.5, 2]."""
    import torch
    from torch import nn

    depth, width = 100, 128
    for seed in ([0, 1, 2] if thorough else [0]):
        torch.manual_seed(seed)
        layers = [nn.Linear(width, width) for _ in range(depth)]
        before = [m.weight.detach().clone() for m in layers]
        for m in layers:
            _run("init_linear(layer)", init_linear, m)
        if all(torch.equal(m.weight.detach(), b) for m, b in zip(layers, before)):
            raise _Fail("init_linear left the weights as PyTorch created them. Re-initialize layer.weight "
                        "(e.g. with a function from torch.nn.init).")
        w = layers[0].weight.detach()
        if not torch.isfinite(w).all():
            raise _Fail("init_linear put infinite or NaN values in the weights.")
        if abs(w.mean().item()) > 0.1 * math.sqrt(w.pow(2).mean().item()):
            raise _Fail(f"your weights are not centred on zero (their mean is {w.mean().item():.3g}). The variance "
                        "argument, and a healthy network, need weights drawn symmetrically around 0.")
        stds = predicted_activation_stds(layers)
        bad = next((i for i, s in enumerate(stds) if not (0.5 <= s <= 2)), None)
        if bad is None:
            continue
        per_layer = (stds[bad] / stds[0]) ** (1 / bad) if bad and 0 < stds[0] < float("inf") and stds[bad] > 0 else float("nan")
        direction = "shrinks" if stds[bad] < 0.5 else "grows"
        hint = ("Your weights are too small: ReLU zeroes about half of each layer's input, so the weight variance "
                "must be 2 / fan_in to keep the signal's size (He et al. 2015)." if direction == "shrinks" else
                "Your weights are too large: aim for a weight variance of 2 / fan_in (He et al. 2015).")
        factor = f" (×{per_layer:.3g} per layer)" if math.isfinite(per_layer) and per_layer > 0 else ""
        raise _Fail(f"with your initialization the activations' standard deviation {direction} to {stds[bad]:.3g} "
                    f"by layer {bad + 1}{factor}, outside [0.5, 2]. {hint}")
    return f"the activation std stays within [0.5, 2] through all {depth} layers (predicted {stds[-1]:.2f} at the last)."


# =========================================================================== 4. building ResNets

@_checker("Task 1 · a basic block with a projection shortcut")
def check_basic_block(BasicBlock, thorough: bool = False) -> str:
    """``BasicBlock(in_channels, out_channels, stride)`` for 1-D inputs, projection shortcut only when shapes change."""
    import torch
    from torch import nn

    cases = [(16, 16, 1), (16, 32, 2), (16, 32, 1)]
    if thorough:
        cases += [(8, 8, 1), (8, 24, 2)]
    for c_in, c_out, stride in cases:
        torch.manual_seed(c_in + c_out + stride)
        block = _run(f"BasicBlock({c_in}, {c_out}, stride={stride})", BasicBlock, c_in, c_out, stride)
        if not isinstance(block, nn.Module):
            raise _Fail("BasicBlock(...) should create an nn.Module (subclass nn.Module and call super().__init__()).")
        shortcut = getattr(block, "shortcut", None)
        if not isinstance(shortcut, nn.Module):
            raise _Fail("give the block a shortcut module, self.shortcut: nn.Identity() when the shape stays, "
                        "a projection (1×1 convolution + BatchNorm) when it changes.")
        x = torch.randn(8, c_in, 40)
        changes = stride != 1 or c_in != c_out
        has_params = any(p.requires_grad for p in shortcut.parameters())
        calls: list = []
        handle = shortcut.register_forward_hook(lambda m, i, o: calls.append(o))
        try:
            y = _run(f"BasicBlock({c_in}, {c_out}, stride={stride}) on an input of shape {_shape(x)}", block, x)
        except _Fail as fail:
            if changes and not has_params:  # the usual cause: an identity shortcut where the shape changes
                raise _Fail(f"{fail}. When the {'channels' if c_in != c_out else 'length'} change, the shortcut "
                            f"needs a projection: a 1×1 nn.Conv1d with stride={stride}, followed by nn.BatchNorm1d, "
                            "so that shortcut(x) has the branch's shape.") from None
            raise
        finally:
            handle.remove()
        if not _is_tensor(y):
            raise _Fail(f"forward returned {type(y).__name__}; it should return a tensor.")
        want = (8, c_out, 40 // stride)
        if tuple(y.shape) != want:
            raise _Fail(f"BasicBlock({c_in}, {c_out}, stride={stride}) returns shape {_shape(y)} for an input of "
                        f"shape {_shape(x)}; it should return ({', '.join(map(str, want))}): the first convolution "
                        "takes the stride and maps in_channels to out_channels.")
        if not calls:
            raise _Fail(f"your block never calls self.shortcut, so it has no shortcut: for BasicBlock({c_in}, {c_out}, "
                        f"stride={stride}) it computes relu(F(x)) — a plain block. Return relu(F(x) + self.shortcut(x)).")
        if not changes and not isinstance(shortcut, nn.Identity):
            raise _Fail(f"BasicBlock({c_in}, {c_out}, stride=1) keeps the shape, so its shortcut should be nn.Identity(); "
                        f"yours is {type(shortcut).__name__}{' with parameters' if has_params else ''}. A projection "
                        "where none is needed adds parameters and stops the block from passing x through unchanged.")
        if changes and not has_params:
            raise _Fail(f"when the {'channels' if c_in != c_out else 'length'} change (BasicBlock({c_in}, {c_out}, "
                        f"stride={stride})), the shortcut needs a projection: a 1×1 nn.Conv1d with the block's stride, "
                        "followed by nn.BatchNorm1d.")
        if changes and tuple(calls[0].shape) != want:
            raise _Fail(f"the projection shortcut returns shape {_shape(calls[0])}; it must match the branch's output "
                        f"({', '.join(map(str, want))}): give its 1×1 convolution stride={stride}.")
        # With every BatchNorm outside the shortcut set to γ = β = 0 the branch outputs 0, so the block must
        # return relu(shortcut(x)) exactly: this checks the sum and where the final ReLU sits.
        probe = copy.deepcopy(block).train()
        in_shortcut = {id(m) for m in probe.shortcut.modules()}
        norms = [m for m in probe.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and id(m) not in in_shortcut]
        if not norms:
            raise _Fail("the branch has no BatchNorm: use conv → BatchNorm1d → ReLU → conv → BatchNorm1d.")
        with torch.no_grad():
            for m in norms:
                m.weight.zero_()
                m.bias.zero_()
            y0 = probe(x)
            s = probe.shortcut(x)
        if _close(y0, s) and not _close(s, torch.relu(s)):
            raise _Fail("the block returns F(x) + shortcut(x) with no ReLU after the sum; the basic block "
                        "ends with relu(F(x) + shortcut(x)).")
        if not _close(y0, torch.relu(s)):
            raise _Fail("with the branch set to zero the block should return relu(shortcut(x)), but it does not: "
                        "add the shortcut to the branch's output and apply the ReLU after the sum.")
    return "identity shortcut when the shape stays, a 1×1 projection when it changes, and relu(F(x) + shortcut(x))."


def _cifar_counts(depth: int, num_classes: int = 10) -> dict[str, int]:
    """Parameter counts of He et al.'s CIFAR ResNet-depth, correct and with the usual slips."""
    n = (depth - 2) // 6
    widths = (16, 32, 64)
    conv = bn = 0
    conv += 3 * 9 * widths[0]
    bn += 2 * widths[0]
    c_in = widths[0]
    convs = 1
    for w in widths:
        for _ in range(n):
            conv += 9 * c_in * w + 9 * w * w
            bn += 4 * w
            convs += 2
            c_in = w
    fc_w, fc_b = widths[-1] * num_classes, num_classes
    correct = conv + bn + fc_w + fc_b
    projection = sum(a * b + 2 * b for a, b in zip(widths, widths[1:]))
    return {
        "correct": correct,
        "no_bn": conv + fc_w + fc_b,
        "option_b": correct + projection,
        "no_fc_bias": correct - fc_b,
        "no_fc": conv + bn,
        "conv_bias": correct + sum(w * 2 * n for w in widths) + widths[0],
        "bn_running": correct + bn,
    }


@_checker("Task 2 · the parameter count of a CIFAR ResNet")
def check_cifar_resnet_parameters(cifar_resnet_parameters: Callable, thorough: bool = False,
                                  seed: int | None = None) -> str:
    """``cifar_resnet_parameters(depth)``: He et al.'s CIFAR ResNet-depth (option A) has how many parameters?"""
    depths = [20, 56, 110] if not thorough else [20, 32, 44, 56, 110]
    if seed is not None:
        rng = _rng(seed)
        depths = [rng.choice([20, 56])] + [6 * rng.randint(1, 60) + 2 for _ in range(4)]
    messages = {
        "no_bn": "you left out the BatchNorm layers' parameters (γ and β: 2 per channel).",
        "option_b": "you added projection shortcuts where the stage changes (option B). Option A shortcuts "
                    "subsample and pad with zeros: they have no parameters.",
        "no_fc_bias": "you left out the classifier's bias (one per class).",
        "no_fc": "you left out the final linear classifier (64 × 10 weights + 10 biases).",
        "conv_bias": "you gave the convolutions biases; they have none, because a BatchNorm follows each one.",
        "bn_running": "you counted BatchNorm's running mean and variance; those are buffers, not parameters.",
    }
    for depth in depths:
        counts = _cifar_counts(depth)
        got = _run(f"cifar_resnet_parameters({depth})", cifar_resnet_parameters, depth)
        if isinstance(got, bool) or not isinstance(got, int):
            try:
                if isinstance(got, float) and got == int(got):
                    got = int(got)
                else:
                    raise TypeError
            except Exception:
                raise _Fail(f"cifar_resnet_parameters({depth}) returned {got!r}; return a whole number (int).") from None
        if got == counts["correct"]:
            continue
        slip = next((k for k, v in counts.items() if k != "correct" and v == got), None)
        hint = messages[slip] if slip else "count stem conv + 2 convs per block + BatchNorms + classifier."
        raise _Fail(f"cifar_resnet_parameters({depth}) returned {got:,}, not the {counts['correct']:,} of ResNet-{depth}: {hint}")
    return (f"ResNet-56 has {_cifar_counts(56)['correct']:,} parameters (the paper's 0.85M); "
            "most of them sit in the last stage, where a 3×3 conv has 64×64×9 weights.")


# =========================================================================== 5. unrolled view

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


# =========================================================================== 6. transformer residual stream

def _stream_case(cls, d_model: int, seed: int):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    sublayer = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))
    block = _run(f"{cls.__name__}({d_model}, sublayer)", cls, d_model, sublayer)
    if not isinstance(block, nn.Module):
        raise _Fail(f"{cls.__name__}(d_model, sublayer) should create an nn.Module.")
    norm = getattr(block, "norm", None)
    if not isinstance(norm, nn.LayerNorm):
        raise _Fail("store the block's nn.LayerNorm(d_model) as self.norm (and the sublayer as self.sublayer).")
    with torch.no_grad():  # a learned γ, β that are not 1 and 0, so a missing norm shows
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.5, 0.5)
    x = 3 * torch.randn(2, 5, d_model) + 1
    x_before = x.clone()
    y = _run(f"{cls.__name__}'s forward", block, x)
    if not _is_tensor(y):
        raise _Fail(f"forward returned {type(y).__name__}; it should return a tensor.")
    if not torch.equal(x, x_before):
        raise _Fail("forward changed its input in place (x += ...); write x = x + ... so the stream's earlier values stay intact.")
    with torch.no_grad():
        f = block.sublayer if isinstance(getattr(block, "sublayer", None), nn.Module) else sublayer
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


@_checker("Task 1 · a pre-norm block")
def check_pre_norm_block(PreNormBlock, thorough: bool = False) -> str:
    """``PreNormBlock(d_model, sublayer)`` computes ``x + sublayer(norm(x))``."""
    for d, seed in ([(16, 0), (24, 1)] if thorough else [(16, 0)]):
        found, gap = _stream_case(PreNormBlock, d, seed)
        if found == "pre":
            continue
        raise _Fail(_pre_norm_hint(found, gap))
    return _PRE_NORM_PASSED


@_checker("Task 2 · a post-norm block")
def check_post_norm_block(PostNormBlock, thorough: bool = False) -> str:
    """``PostNormBlock(d_model, sublayer)`` computes ``norm(x + sublayer(x))``."""
    for d, seed in ([(16, 2), (24, 3)] if thorough else [(16, 2)]):
        found, gap = _stream_case(PostNormBlock, d, seed)
        if found == "post":
            continue
        raise _Fail(_post_norm_hint(found, gap))
    return _POST_NORM_PASSED


@_checker("Task 3 · DeepNorm's constants")
def check_deepnorm_constants(deepnorm_constants: Callable, thorough: bool = False, seed: int | None = None) -> str:
    """``deepnorm_constants(n_layers)`` → ``(alpha, beta)`` for an encoder-only DeepNet: ((2N)^¼, (8N)^-¼)."""
    layers = [6, 12, 100] if not thorough else [1, 6, 12, 100, 1000]
    if seed is not None:
        rng = _rng(seed)
        layers = [rng.randint(1, 20), rng.randint(21, 200), rng.randint(201, 5000)]
    for n in layers:
        got = _run(f"deepnorm_constants({n})", deepnorm_constants, n)
        try:
            alpha, beta = (float(v) for v in got)
        except Exception:
            raise _Fail(f"deepnorm_constants({n}) returned {got!r}; return a pair of numbers (alpha, beta).") from None
        want = ((2 * n) ** 0.25, (8 * n) ** -0.25)

        def same(a, b):
            return math.isclose(a, b, rel_tol=1e-6)

        if same(alpha, want[0]) and same(beta, want[1]):
            continue
        if same(alpha, want[1]) and same(beta, want[0]):
            hint = "you swapped them: alpha (> 1) scales the shortcut x, beta (< 1) scales the initial weights."
        elif same(alpha, (3 * n) ** 0.25) and same(beta, (12 * n) ** -0.25):
            hint = "those are the decoder-only constants, (3M)^¼ and (12M)^-¼; the encoder-only ones are (2N)^¼ and (8N)^-¼."
        elif same(alpha, (2 * n) ** 0.5) or same(beta, (8 * n) ** -0.5):
            hint = "you used a square root; DeepNorm uses the fourth root."
        elif same(alpha, want[0]):
            hint = f"alpha is right; beta should be (8N)^(-1/4) = {want[1]:.4g}, got {beta:.4g}."
        elif same(beta, want[1]):
            hint = f"beta is right; alpha should be (2N)^(1/4) = {want[0]:.4g}, got {alpha:.4g}."
        else:
            hint = f"expected alpha = (2N)^(1/4) = {want[0]:.4g} and beta = (8N)^(-1/4) = {want[1]:.4g}."
        raise _Fail(f"for N = {n} layers your function returns ({alpha:.4g}, {beta:.4g}): {hint}")
    a, b = (2 * 100) ** 0.25, (8 * 100) ** -0.25
    return f"for a 100-layer encoder, alpha = {a:.3f} and beta = {b:.3f}: up-weight the shortcut, shrink the branch."


# =========================================================================== judging outside the learner's kernel
#
# The grader (``python -m book.grade``) never decides anything where a learner's code runs. For each hidden
# test it sends the learner's sandboxed kernel one request, after the learner's cells ran: "call your
# definitions on the cases of this seed". :func:`probe` runs there and answers with plain data (numbers,
# strings, nested lists; JSON). :func:`judge` runs in the grader's own process: it rebuilds the same cases
# from the seed, reads the answer into exact built-in types and decides with the same words as the self-check.
# A learner's code can change what :func:`probe` answers, but not what :func:`judge` expects.

MAX_ANSWER_CHARS = 30_000_000     # the largest answer the grader reads
ERROR_CHARS = 200                 # a learner's exception message is cut to this length in the feedback


class _Stop(Exception):
    """Raised inside :func:`probe` when the learner's code raised: the answer so far is sent."""


def _plain(value, depth: int = 0):
    """A learner's return value as JSON-ready plain data (inside the sandbox; the grader trusts none of it)."""
    import numbers

    if depth > 20:
        return {"object": "too deeply nested"}
    if value is None or type(value) in (bool, str):
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int.__int__(value) if isinstance(value, int) else int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (list, tuple)):
        items = [_plain(v, depth + 1) for v in list(value)[:100_000]]
        return {"tuple": items} if isinstance(value, tuple) else items
    try:
        import torch

        if isinstance(value, torch.Tensor):
            t = value.detach().to("cpu")
            kind = "float" if t.is_floating_point() else ("bool" if t.dtype == torch.bool else "int")
            return {"tensor": {"kind": kind, "shape": list(t.shape), "data": t.reshape(-1).tolist()}}
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return {"object": type(value).__name__[:60]}


class _Unreadable(_Fail, ValueError):
    """The sandbox's answer is not what the grader asked for (a cell changed the printing or the imports)."""

    def __init__(self, what: str):
        super().__init__(f"the grader could not read your notebook's answer ({what}); did a cell change how the "
                         "notebook prints, or replace parts of torch or of the course package?")


def _exact(value, depth: int = 0):
    """Read plain data from the sandbox into exact built-in types and fresh tensors (in the grader).

    Only JSON's own types arrive (``json.loads`` makes no subclass), and only these shapes are accepted;
    anything else raises ``ValueError``.
    """
    if depth > 20:
        raise _Unreadable("nested too deeply")
    kind = type(value)
    if value is None or kind in (bool, int, float, str):
        return kind(value) if value is not None else None
    if kind is list:
        return [_exact(v, depth + 1) for v in value]
    if kind is dict and len(value) == 1:
        (tag, body), = value.items()
        if tag == "tuple" and type(body) is list:
            return tuple(_exact(v, depth + 1) for v in body)
        if tag == "object" and type(body) is str:
            return _Opaque(body[:60])
        if tag == "tensor" and type(body) is dict:
            import torch

            shape, data = body.get("shape"), body.get("data")
            if type(shape) is not list or not all(type(s) is int and 0 <= s for s in shape) or type(data) is not list:
                raise _Unreadable("a malformed tensor")
            if math.prod(shape) != len(data) or not all(type(v) in (int, float, bool) for v in data):
                raise _Unreadable("a malformed tensor")
            dtype = {"float": torch.float64, "int": torch.int64, "bool": torch.bool}.get(body.get("kind"))
            if dtype is None:
                raise _Unreadable("a malformed tensor")
            t = torch.tensor(data, dtype=dtype).reshape(shape)
            return t.float() if dtype == torch.float64 else t
    raise _Unreadable(f"unexpected data of type {kind.__name__}")


class _Opaque:
    """A value the sandbox could not turn into plain data: only its type's name arrived."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name} object>"


def _learner_error(name, message) -> Exception:
    """An exception that stands for one the learner's code raised: its type's name, its message trimmed and labelled."""
    name = str(name)[:60]
    if name == "NotImplementedError":
        return NotImplementedError()
    if name == "RecursionError":
        return RecursionError()
    safe = "".join(ch for ch in name if ch.isalnum() or ch == "_") or "Exception"
    text = " ".join(str(message).split())
    if len(text) > ERROR_CHARS:
        text = text[:ERROR_CHARS] + " …"
    return type(safe, (Exception,), {})(f"[message from your code] {text}" if text else "[no message]")


def _record(answers: list, fn, *args, **kwargs):
    """Call learner code inside the sandbox and write down what came back (or what it raised)."""
    try:
        value = fn(*args, **kwargs)
    except BaseException as err:  # noqa: BLE001 - SystemExit and KeyboardInterrupt from learner code too
        answers.append({"raised": [type(err).__name__, str(err)[:2 * ERROR_CHARS]]})
        raise _Stop from None
    answers.append({"value": _plain(value)})
    return value


class _Replay:
    """In the grader: hand back the sandbox's answers, one per call, as exact built-in values."""

    def __init__(self, answers):
        if type(answers) is not list:
            raise _Unreadable("no list of answers")
        self.answers, self.used = answers, 0

    def next(self):
        if self.used >= len(self.answers):
            raise _Fail("your notebook's kernel sent fewer answers than the test asked for "
                        "(did a cell redirect or replace the grader's request?).")
        item = self.answers[self.used]
        self.used += 1
        if type(item) is dict and type(item.get("raised")) is list and len(item["raised"]) == 2:
            raise _learner_error(*item["raised"])
        if type(item) is not dict or "value" not in item:
            raise _Unreadable("a malformed answer")
        return _exact(item["value"])

    def __call__(self, *args, **kwargs):
        return self.next()


# --------------------------------------------------------------------------- replayed checks
# A check whose learner function takes and returns plain values (numbers, tensors, lists) is run twice with the
# same seed: in the sandbox with the learner's function (only its return values are kept) and in the grader
# with those return values replayed. The learner's code never runs where the verdict is reached.

def _replay_probe(check):
    def run(namespace_fn, seed, thorough, answers):
        def recorder(*args, **kwargs):
            value = _record(answers, namespace_fn, *args, **kwargs)
            return _exact(json.loads(json.dumps(_plain(value))))  # the sandbox goes on with what the grader will see
        kwargs = {"thorough": thorough} if thorough is not None else {}
        check(recorder, seed=seed, **kwargs)
    return run


def _replay_judge(check):
    def run(answers, seed, thorough) -> "Feedback":
        kwargs = {"thorough": thorough} if thorough is not None else {}
        return check(_Replay(answers), seed=seed, **kwargs)
    return run


# --------------------------------------------------------------------------- probes and judges of the class tasks
# Where the learner writes a class or a function that changes a module, the sandbox reports what the learner's
# objects computed on the seed's inputs, and the parameters that the grader needs to recompute them itself.

def _tensor_data(t) -> dict:
    return _plain(t)


def _seeded(seed: int, i: int) -> int:
    return (seed * 1_000_003 + i) % 2**31


def _identity_cases(seed):
    rng = _rng(seed)
    return [(rng.choice([8, 14]), rng.randint(1, 3), _seeded(seed, i)) for i in range(2)]


def _probe_identity_blocks(add_identity_blocks, seed, thorough, answers):
    import torch

    from .nets.conv1d import resnet

    for depth, extra, s in _identity_cases(seed):
        torch.manual_seed(s)
        base = resnet(depth).eval()
        deeper = _record(answers, add_identity_blocks, base, extra)
        report = {"is_module": isinstance(deeper, torch.nn.Module), "same_object": deeper is base,
                  "base_state": {k: _plain(v) for k, v in base.state_dict().items()}}
        if report["is_module"] and not report["same_object"]:
            report["blocks"] = [type(b).__name__ for b in getattr(deeper, "blocks", [])]
            report["state"] = {k: _plain(v) for k, v in deeper.state_dict().items()}
        answers[-1]["report"] = report


@_checker("Task 2 · a deeper network that computes the same function")
def _judge_identity_blocks(answers, seed, thorough) -> str:
    import torch

    from .nets.conv1d import BasicBlock1d, resnet

    replay = _Replay(answers)
    for depth, extra, s in _identity_cases(seed):
        torch.manual_seed(s)
        base = resnet(depth).eval()
        x = torch.randn(6, 1, 40, generator=torch.Generator().manual_seed(s))
        with torch.no_grad():
            before = base(x)
        n_blocks = len(base.blocks)
        _run(f"add_identity_blocks(resnet({depth}), {extra})", replay.next)
        report = answers[replay.used - 1].get("report")
        if type(report) is not dict:
            raise _Unreadable("a malformed answer")
        if not report.get("is_module") is True:
            raise _Fail("add_identity_blocks returned something else than a network; it should return the deeper "
                        "network (an nn.Module).")
        if report.get("same_object") is not False or not _same_state(base, report.get("base_state")):
            raise _Fail("your function changed the network it was given. Work on a copy (copy.deepcopy(model)) "
                        "so the shallow network stays as it was.")
        names = report.get("blocks")
        if type(names) is not list or len(names) != n_blocks + extra:
            raise _Fail(f"the deeper network should have {n_blocks + extra} blocks in .blocks ({n_blocks} + {extra}), "
                        f"but it has {len(names) if type(names) is list else 'no'}.")
        if "PlainBlock1d" in names[n_blocks:]:
            raise _Fail("you added plain blocks. A plain block computes relu(F(x)) and cannot start as the "
                        "identity; add residual blocks (BasicBlock1d) whose branch starts at zero.")
        deeper = resnet(depth)
        width = deeper.head.in_features
        deeper.blocks = torch.nn.Sequential(*deeper.blocks, *(BasicBlock1d(width, width) for _ in range(extra)))
        if not _load_state(deeper, report.get("state")):
            raise _Fail("the grader could not read your deeper network as the shallow one followed by "
                        f"{extra} BasicBlock1d({width}, {width}) blocks: add exactly those, appended to .blocks.")
        with torch.no_grad():
            after = deeper.eval()(x)
        if not _close(after, before, 1e-4):
            raise _Fail(f"the deeper network's outputs differ from the shallow one's by up to "
                        f"{(after - before).abs().max().item():.3g}. Start each new block's branch at zero: call "
                        "block.zero_init_last(), which zeroes the last BatchNorm's γ.")
    return ("the deeper network computes exactly what the shallow one does, so depth alone cannot make "
            "its best training error worse — yet plain deep nets do train worse: that is the degradation problem.")


def _state_tensors(state) -> dict | None:
    if type(state) is not dict or len(state) > 10_000:
        return None
    out = {}
    for key, value in state.items():
        t = _exact(value)
        if type(key) is not str or not _is_tensor(t):
            return None
        out[key] = t
    return out


def _same_state(module, state) -> bool:
    got = _state_tensors(state)
    want = module.state_dict()
    return got is not None and set(got) == set(want) and all(
        got[k].shape == want[k].shape and bool((got[k].double() == want[k].double()).all()) for k in want)


def _load_state(module, state) -> bool:
    got = _state_tensors(state)
    want = module.state_dict()
    if got is None or set(got) != set(want) or any(got[k].shape != want[k].shape for k in want):
        return False
    module.load_state_dict({k: got[k].to(want[k].dtype) for k in want})
    return True


def _residual_cases(seed, thorough):
    rng = _rng(seed)
    return [(rng.randint(4, 40), _seeded(seed, i)) for i in range(2 if thorough else 1)]


def _residual_branch(width, s):
    import torch
    from torch import nn

    torch.manual_seed(s)
    branch = nn.Sequential(nn.Linear(width, width), nn.Tanh(), nn.Linear(width, width))
    x = torch.randn(5, width, generator=torch.Generator().manual_seed(s)) * 2 - 1
    return branch, x


def _probe_residual(Residual, seed, thorough, answers):
    import torch

    for width, s in _residual_cases(seed, thorough):
        branch, x = _residual_branch(width, s)
        block = _record(answers, Residual, branch)
        answers[-1]["report"] = report = {"is_module": isinstance(block, torch.nn.Module),
                                          "shortcut": isinstance(getattr(block, "shortcut", None), torch.nn.Module)}
        if not (report["is_module"] and report["shortcut"]):
            return
        before = x.clone()
        y = _record(answers, block, x)
        answers[-1]["report"] = {"input_changed": not torch.equal(x, before)}


@_checker("Task 1 · y = F(x) + x")
def _judge_residual(answers, seed, thorough) -> str:
    import torch

    replay = _Replay(answers)
    for width, s in _residual_cases(seed, thorough):
        branch, x = _residual_branch(width, s)
        _run("Residual(branch)", replay.next)
        report = answers[replay.used - 1].get("report") or {}
        if report.get("is_module") is not True:
            raise _Fail("Residual(branch) should create an nn.Module (subclass nn.Module and call super().__init__()).")
        if report.get("shortcut") is not True:
            raise _Fail("give the block a shortcut module, self.shortcut = nn.Identity(), and use it in forward: "
                        "the course keeps every shortcut a module so probes can hook it.")
        y = _run("your block's forward", replay.next)
        if not _is_tensor(y):
            raise _Fail(f"forward returned {type(y).__name__}; it should return a tensor.")
        if (answers[replay.used - 1].get("report") or {}).get("input_changed") is not False:
            raise _Fail("forward changed its input tensor in place (e.g. x += ...). Write the sum out of place, "
                        "x = x + self.branch(x), so the input that hooks and probes saved stays intact.")
        with torch.no_grad():
            f = branch(x)
            want = f + x
        if _close(y, want):
            continue
        if _close(y, f):
            raise _Fail("your block returns F(x) alone: it forgot the shortcut. Return self.branch(x) + self.shortcut(x).")
        if _close(y, x):
            raise _Fail("your block returns its input unchanged: the branch F(x) is missing from the sum.")
        if _close(y, torch.relu(want)):
            raise _Fail("your block applies a ReLU after the sum. This task asks for exactly y = F(x) + x, "
                        "with nothing after the addition.")
        raise _Fail(f"for an input of shape {_shape(x)} your block's output differs from F(x) + x.")
    return "your block computes F(x) + x: the branch only has to learn the change from x to the target."


def _zero_init_cases(seed, thorough):
    rng = _rng(seed)
    cases = [(rng.randint(4, 24), rng.randint(4, 40))]
    if thorough:
        cases.append((rng.randint(4, 24), rng.randint(4, 40), rng.randint(4, 40)))
    return [(dims, _seeded(seed, i)) for i, dims in enumerate(cases)]


def _zero_init_branch(dims, s):
    import torch
    from torch import nn

    torch.manual_seed(s)
    layers: list = []
    width = dims[0]
    for hidden in dims[1:]:
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    layers.append(nn.Linear(width, dims[0]))
    return nn.Sequential(*layers)


def _probe_zero_init(zero_init_branch, seed, thorough, answers):
    for dims, s in _zero_init_cases(seed, thorough):
        branch = _zero_init_branch(dims, s)
        _record(answers, zero_init_branch, _ReferenceResidual(branch))
        answers[-1]["report"] = {"state": {k: _plain(v) for k, v in branch.state_dict().items()}}


@_checker("Task 2 · start the block as the identity")
def _judge_zero_init(answers, seed, thorough) -> str:
    from torch import nn

    replay = _Replay(answers)
    for dims, s in _zero_init_cases(seed, thorough):
        branch = _zero_init_branch(dims, s)
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


def _init_cases(seed, thorough):
    return [_seeded(seed, i) for i in range(3 if thorough else 1)]


def _probe_init_linear(init_linear, seed, thorough, answers):
    import torch
    from torch import nn

    for s in _init_cases(seed, thorough):
        torch.manual_seed(s)
        layers = [nn.Linear(128, 128) for _ in range(100)]
        before = [m.weight.detach().clone() for m in layers]
        for m in layers:
            _record(answers, init_linear, m)
        answers.append({"report": {
            "unchanged": all(torch.equal(m.weight.detach(), b) for m, b in zip(layers, before)),
            "first": _plain(layers[0].weight.detach()),
            "weight_ms": [m.weight.detach().double().pow(2).mean().item() for m in layers],
            "bias_ms": [m.bias.detach().double().pow(2).mean().item() if m.bias is not None else 0.0 for m in layers],
            "fan_in": [m.weight.shape[1] for m in layers]}})


@_checker("Task 2 · an initialization for 100 plain ReLU layers")
def _judge_init_linear(answers, seed, thorough) -> str:
    import torch

    replay = _Replay(answers)
    for s in _init_cases(seed, thorough):
        for _ in range(100):
            _run("init_linear(layer)", replay.next)
        report = answers[replay.used].get("report") if replay.used < len(answers) else None
        replay.used += 1
        if type(report) is not dict:
            raise _Unreadable("a malformed answer")
        if report.get("unchanged") is not False:
            raise _Fail("init_linear left the weights as PyTorch created them. Re-initialize layer.weight "
                        "(e.g. with a function from torch.nn.init).")
        w = _exact(report.get("first"))
        ms, bias, fan = (_exact(report.get(k)) for k in ("weight_ms", "bias_ms", "fan_in"))
        if not (_is_tensor(w) and w.shape == (128, 128)) or not all(type(v) is list and len(v) == 100 for v in (ms, bias, fan)):
            raise _Unreadable("a malformed answer")
        if not torch.isfinite(w).all():
            raise _Fail("init_linear put infinite or NaN values in the weights.")
        if abs(w.mean().item()) > 0.1 * math.sqrt(w.pow(2).mean().item()):
            raise _Fail(f"your weights are not centred on zero (their mean is {w.mean().item():.3g}). The variance "
                        "argument, and a healthy network, need weights drawn symmetrically around 0.")
        if not math.isclose(float(ms[0]), w.double().pow(2).mean().item(), rel_tol=1e-4):
            raise _Unreadable("inconsistent answers")
        q, stds = 1.0, []
        for i in range(100):
            q = float(fan[i]) * float(ms[i]) * (q if i == 0 else q / 2) + float(bias[i])
            stds.append(math.sqrt(q) if math.isfinite(q) and q >= 0 else float("inf"))
        bad = next((i for i, sd in enumerate(stds) if not (0.5 <= sd <= 2)), None)
        if bad is None:
            continue
        direction = "shrinks" if stds[bad] < 0.5 else "grows"
        hint = ("Your weights are too small: ReLU zeroes about half of each layer's input, so the weight variance "
                "must be 2 / fan_in to keep the signal's size (He et al. 2015)." if direction == "shrinks" else
                "Your weights are too large: aim for a weight variance of 2 / fan_in (He et al. 2015).")
        raise _Fail(f"with your initialization the activations' standard deviation {direction} to {stds[bad]:.3g} "
                    f"by layer {bad + 1}, outside [0.5, 2]. {hint}")
    return f"the activation std stays within [0.5, 2] through all 100 layers (predicted {stds[-1]:.2f} at the last)."


def _block_cases(seed, thorough):
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


def _describe(module) -> list:
    """The leaf modules of a shortcut, with what the grader needs to recompute it (in the sandbox)."""
    from torch import nn

    leaves = []
    for m in module.modules():
        if list(m.children()):
            continue
        if isinstance(m, nn.Conv1d):
            leaves.append({"type": "Conv1d", "weight": _plain(m.weight.detach()),
                           "bias": None if m.bias is None else _plain(m.bias.detach()),
                           "stride": list(m.stride), "padding": list(m.padding) if not isinstance(m.padding, str) else m.padding})
        elif isinstance(m, nn.BatchNorm1d):
            leaves.append({"type": "BatchNorm1d", "eps": float(m.eps),
                           "weight": None if m.weight is None else _plain(m.weight.detach()),
                           "bias": None if m.bias is None else _plain(m.bias.detach())})
        elif isinstance(m, nn.Identity):
            leaves.append({"type": "Identity"})
        else:
            leaves.append({"type": type(m).__name__[:60]})
    return leaves


def _rebuild_shortcut(leaves, x):
    """Recompute a shortcut from its description, in the grader: Identity, Conv1d and BatchNorm1d (batch statistics)."""
    import torch
    import torch.nn.functional as F

    if type(leaves) is not list or len(leaves) > 10:
        return None
    with torch.no_grad():
        for leaf in leaves:
            kind = leaf.get("type") if type(leaf) is dict else None
            if kind == "Identity":
                continue
            if kind == "Conv1d":
                w, b = _exact(leaf.get("weight")), _exact(leaf.get("bias"))
                stride, padding = _exact(leaf.get("stride")), _exact(leaf.get("padding"))
                if not _is_tensor(w) or w.dim() != 3 or w.shape[1] != x.shape[1] or type(stride) is not list:
                    return None
                if b is not None and not (_is_tensor(b) and b.shape == (w.shape[0],)):
                    return None
                x = F.conv1d(x, w, b, stride=stride[0], padding=padding if type(padding) is str else padding[0])
            elif kind == "BatchNorm1d":
                w, b, eps = _exact(leaf.get("weight")), _exact(leaf.get("bias")), _exact(leaf.get("eps"))
                if type(eps) is not float or (w is not None and not (_is_tensor(w) and w.shape == (x.shape[1],))):
                    return None
                if b is not None and not (_is_tensor(b) and b.shape == (x.shape[1],)):
                    return None
                x = F.batch_norm(x, None, None, w, b, training=True, eps=eps)
            else:
                return None
    return x


def _probe_basic_block(BasicBlock, seed, thorough, answers):
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
        calls: list = []
        handle = shortcut.register_forward_hook(lambda m, i, o: calls.append(tuple(o.shape)))
        try:
            y = _record(answers, block, x)
        finally:
            handle.remove()
        report = answers[-1]["report"] = {"shortcut_calls": [list(c) for c in calls]}
        if not isinstance(y, torch.Tensor):
            return
        probe = _record(answers, lambda: copy.deepcopy(block).train())
        in_shortcut = {id(m) for m in probe.shortcut.modules()}
        norms = [m for m in probe.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and id(m) not in in_shortcut]
        report = answers[-1]["report"] = {"norms": len(norms), "shortcut": _describe(probe.shortcut)}
        with torch.no_grad():
            for m in norms:
                m.weight.zero_()
                m.bias.zero_()
            _record(answers, probe, x)


@_checker("Task 1 · a basic block with a projection shortcut")
def _judge_basic_block(answers, seed, thorough) -> str:
    import torch

    replay = _Replay(answers)

    def report():
        r = answers[replay.used - 1].get("report")
        if type(r) is not dict:
            raise _Unreadable("a malformed answer")
        return r

    for c_in, c_out, stride, s in _block_cases(seed, thorough):
        _run(f"BasicBlock({c_in}, {c_out}, stride={stride})", replay.next)
        r = report()
        if r.get("is_module") is not True:
            raise _Fail("BasicBlock(...) should create an nn.Module (subclass nn.Module and call super().__init__()).")
        if r.get("shortcut") is not True:
            raise _Fail("give the block a shortcut module, self.shortcut: nn.Identity() when the shape stays, "
                        "a projection (1×1 convolution + BatchNorm) when it changes.")
        changes, has_params = stride != 1 or c_in != c_out, r.get("has_params") is True
        x = _block_input(c_in, s)
        try:
            y = _run(f"BasicBlock({c_in}, {c_out}, stride={stride}) on an input of shape {_shape(x)}", replay.next)
        except _Fail as fail:
            if changes and not has_params:
                raise _Fail(f"{fail}. When the {'channels' if c_in != c_out else 'length'} change, the shortcut "
                            f"needs a projection: a 1×1 nn.Conv1d with stride={stride}, followed by nn.BatchNorm1d, "
                            "so that shortcut(x) has the branch's shape.") from None
            raise
        calls = report().get("shortcut_calls")
        if not _is_tensor(y):
            raise _Fail(f"forward returned {type(y).__name__}; it should return a tensor.")
        want = (8, c_out, 40 // stride)
        if tuple(y.shape) != want:
            raise _Fail(f"BasicBlock({c_in}, {c_out}, stride={stride}) returns shape {_shape(y)} for an input of "
                        f"shape {_shape(x)}; it should return ({', '.join(map(str, want))}): the first convolution "
                        "takes the stride and maps in_channels to out_channels.")
        if type(calls) is not list or not calls:
            raise _Fail(f"your block never calls self.shortcut, so it has no shortcut: for BasicBlock({c_in}, {c_out}, "
                        f"stride={stride}) it computes relu(F(x)) — a plain block. Return relu(F(x) + self.shortcut(x)).")
        if not changes and r.get("identity") is not True:
            raise _Fail(f"BasicBlock({c_in}, {c_out}, stride=1) keeps the shape, so its shortcut should be nn.Identity(). "
                        "A projection where none is needed adds parameters and stops the block from passing x "
                        "through unchanged.")
        if changes and not has_params:
            raise _Fail(f"when the {'channels' if c_in != c_out else 'length'} change (BasicBlock({c_in}, {c_out}, "
                        f"stride={stride})), the shortcut needs a projection: a 1×1 nn.Conv1d with the block's stride, "
                        "followed by nn.BatchNorm1d.")
        _run("copying your block", replay.next)
        r = report()
        if type(r.get("norms")) is not int or r["norms"] < 1:
            raise _Fail("the branch has no BatchNorm: use conv → BatchNorm1d → ReLU → conv → BatchNorm1d.")
        sc = _rebuild_shortcut(r.get("shortcut"), x)
        if sc is None:
            raise _Fail("the grader could not recompute your shortcut: build it from nn.Identity(), or from a 1×1 "
                        "nn.Conv1d followed by nn.BatchNorm1d, as the task asks.")
        if tuple(sc.shape) != want:
            raise _Fail(f"the projection shortcut returns shape {_shape(sc)}; it must match the branch's output "
                        f"({', '.join(map(str, want))}): give its 1×1 convolution stride={stride}.")
        y0 = _run("your block with its branch set to zero", replay.next)
        if not _is_tensor(y0) or tuple(y0.shape) != want:
            raise _Fail("with the branch set to zero the block should return relu(shortcut(x)), but it does not.")
        if _close(y0, sc) and not _close(sc, torch.relu(sc)):
            raise _Fail("the block returns F(x) + shortcut(x) with no ReLU after the sum; the basic block "
                        "ends with relu(F(x) + shortcut(x)).")
        if not _close(y0, torch.relu(sc)):
            raise _Fail("with the branch set to zero the block should return relu(shortcut(x)), but it does not: "
                        "add the shortcut to the branch's output and apply the ReLU after the sum.")
    return "identity shortcut when the shape stays, a 1×1 projection when it changes, and relu(F(x) + shortcut(x))."


def _stream_cases(seed, thorough):
    rng = _rng(seed)
    return [(rng.choice([8, 12, 16, 24]), _seeded(seed, i)) for i in range(2 if thorough else 1)]


def _stream_inputs(d_model, s):
    import torch
    from torch import nn

    torch.manual_seed(s)
    sublayer = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))
    g = torch.Generator().manual_seed(s)
    gamma = torch.rand(d_model, generator=g) + 0.5
    beta = torch.rand(d_model, generator=g) - 0.5
    x = 3 * torch.randn(2, 5, d_model, generator=g) + 1
    return sublayer, gamma, beta, x


def _probe_stream(cls, seed, thorough, answers):
    import torch
    from torch import nn

    for d, s in _stream_cases(seed, thorough):
        sublayer, gamma, beta, x = _stream_inputs(d, s)
        block = _record(answers, cls, d, sublayer)
        norm = getattr(block, "norm", None)
        report = answers[-1]["report"] = {
            "is_module": isinstance(block, nn.Module), "norm": isinstance(norm, nn.LayerNorm),
            "sublayer": getattr(block, "sublayer", None) is sublayer}
        if not (report["is_module"] and report["norm"]):
            return
        report["eps"] = float(norm.eps)
        with torch.no_grad():
            norm.weight.copy_(gamma)
            norm.bias.copy_(beta)
        before = x.clone()
        _record(answers, block, x)
        answers[-1]["report"] = {"input_changed": not torch.equal(x, before),
                                 "sublayer_state": {k: _plain(v) for k, v in sublayer.state_dict().items()}}


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
        if type(eps) is not float or not _load_state(sublayer, r2.get("sublayer_state")):
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
    for found, gap in _judge_stream(answers, seed, thorough, "PreNormBlock"):
        if found != "pre":
            raise _Fail(_pre_norm_hint(found, gap))
    return _PRE_NORM_PASSED


@_checker("Task 2 · a post-norm block")
def _judge_post_norm(answers, seed, thorough) -> str:
    for found, gap in _judge_stream(answers, seed, thorough, "PostNormBlock"):
        if found != "post":
            raise _Fail(_post_norm_hint(found, gap))
    return _POST_NORM_PASSED


# --------------------------------------------------------------------------- the registry, and the two entry points

_JUDGED = {
    "check_weighted_layers": (_replay_probe(check_weighted_layers), _replay_judge(check_weighted_layers)),
    "check_add_identity_blocks": (_probe_identity_blocks, _judge_identity_blocks),
    "check_residual": (_probe_residual, _judge_residual),
    "check_zero_init_branch": (_probe_zero_init, _judge_zero_init),
    "check_layer_grad_norms": (_replay_probe(check_layer_grad_norms), _replay_judge(check_layer_grad_norms)),
    "check_init_linear": (_probe_init_linear, _judge_init_linear),
    "check_basic_block": (_probe_basic_block, _judge_basic_block),
    "check_cifar_resnet_parameters": (_replay_probe(check_cifar_resnet_parameters),
                                      _replay_judge(check_cifar_resnet_parameters)),
    "check_count_paths": (_replay_probe(check_count_paths), _replay_judge(check_count_paths)),
    "check_unrolled_output": (_replay_probe(check_unrolled_output), _replay_judge(check_unrolled_output)),
    "check_pre_norm_block": (_probe_stream, _judge_pre_norm),
    "check_post_norm_block": (_probe_stream, _judge_post_norm),
    "check_deepnorm_constants": (_replay_probe(check_deepnorm_constants), _replay_judge(check_deepnorm_constants)),
}


def preload() -> None:
    """Import what the judges use, once, before any submission runs (the grader's code is then in memory)."""
    import torch  # noqa: F401

    from .nets import conv1d, mlp  # noqa: F401


def probe(request: dict, namespace: dict) -> str:
    """Inside the learner's sandboxed kernel: answer one grader request with plain data (a JSON string).

    ``request`` is ``{"check": name, "names": [...], "seed": int, "thorough": bool | None}`` (a course task) or
    ``{"call": name, "args": [...]}`` (an instructor's ``assert name(args) == value``). Never raises.
    """
    answers: list = []
    try:
        names = list(request.get("names") or [request.get("call")])
        missing = [n for n in names if n not in namespace]
        if missing:
            return json.dumps({"missing": str(missing[0])})
        if "call" in request:
            _record(answers, namespace[request["call"]], *request.get("args", []))
        else:
            run = _JUDGED[request["check"]][0]
            run(*(namespace[n] for n in names), request["seed"], request.get("thorough"), answers)
    except _Stop:
        pass
    except BaseException as err:  # noqa: BLE001 - the grader reads whatever came before
        answers.append({"probe-error": f"{type(err).__name__}: {str(err)[:ERROR_CHARS]}"})
    return json.dumps({"answers": answers})


def judge(request: dict, reply: str | None, task: str) -> Feedback:
    """In the grader: the verdict on one request, from the sandbox's ``reply`` (untrusted JSON text)."""
    try:
        if reply is None or len(reply) > MAX_ANSWER_CHARS:
            return Feedback(task, False, "your notebook's kernel sent no answer the grader could read.")
        data = json.loads(reply)
        if type(data) is dict and type(data.get("missing")) is str:
            name = "".join(ch for ch in data["missing"] if ch.isidentifier() or ch.isalnum())[:60]
            return Feedback(task, False, f"`{name}` is not defined: the cell that defines it was deleted, renamed, "
                                         "or did not run.")
        answers = data["answers"] if type(data) is dict else None
        if type(answers) is not list:
            raise ValueError("no answers")
        if "call" in request:
            return _judge_call(request, answers, task)
        return _JUDGED[request["check"]][1](answers, request["seed"], request.get("thorough"))
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError) as err:
        return Feedback(task, False, f"the grader could not read your notebook's answer ({type(err).__name__}); "
                                     "did a cell change how the notebook prints or imports?")


def _judge_call(request, answers, task) -> Feedback:
    replay = _Replay(answers)
    what = f"{request['call']}({', '.join(map(repr, request.get('args', [])))})"
    try:
        got = replay.next()
    except NotImplementedError:
        return Feedback(task, False, NOT_DONE)
    except _Fail as fail:
        return Feedback(task, False, str(fail))
    except Exception as err:
        return Feedback(task, False, f"{what} raised {type(err).__name__}: {err}")
    if _is_tensor(got):
        got = got.tolist()
    if got == request["expected"] and type(got) is type(request["expected"]) or (
            type(got) in (int, float) and type(request["expected"]) in (int, float) and got == request["expected"]):
        return Feedback(task, True, request.get("message_ok") or "passed")
    shown = repr(got)
    return Feedback(task, False, request.get("message") or f"{what} returned {shown[:200]}, which is not the expected value.")


# =========================================================================== the sources

def sources(source_dir: Path = SOURCE_DIR) -> list[Path]:
    """The exercise sources, ``exNN_name.md``, in order."""
    return sorted(Path(source_dir).glob("ex[0-9][0-9]_*.md"))


def read_source(path: Path):
    import jupytext

    return jupytext.read(path)


def cell_tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def hidden_tests(source: Path) -> list[dict]:
    """The hidden tests of one source: ``[{"task", "points", "title", "source"}]`` in order."""
    tests = []
    for cell in read_source(source).cells:
        if cell.cell_type == "code" and "hidden-test" in cell_tags(cell):
            meta = cell.metadata
            try:
                test = {"task": int(meta["task"]), "points": float(meta["points"]),
                        "title": str(meta.get("title", f"Task {meta['task']}")), "source": cell.source}
            except (KeyError, ValueError, TypeError):
                raise ValueError(f"{source}: every hidden-test cell needs numeric `task` and `points` metadata") from None
            try:
                test["request"] = hidden_test_request(cell.source)
            except ValueError as err:
                test["request"], test["problem"] = None, str(err)
            tests.append(test)
    return tests


def hidden_test_request(source: str) -> dict:
    """What the grader asks a learner's sandbox for, read from a hidden-test cell (never executed by the grader).

    Two forms are understood, the course's and a plain one for instructors' own tests:

    - ``grade_task(check_basic_block, globals(), "BasicBlock", thorough=True)`` (imports may precede it):
      the check's cases, drawn from a seed the grader picks after the learner's cells ran;
    - ``assert count_paths(54, 27) == 1946939425648112, "message"`` (literal arguments and value; one
      ``print("...")`` may give the message shown when it passes).

    Raises ``ValueError`` for anything else: such a cell would have to run in the learner's kernel.
    """
    import ast

    try:
        body = [node for node in ast.parse(source).body if not isinstance(node, (ast.Import, ast.ImportFrom))]
    except SyntaxError as err:
        raise ValueError(f"the cell does not parse ({err.msg})") from None
    form = ("the grader judges outside the learner's kernel and understands two forms: "
            "grade_task(check_..., globals(), \"Name\", thorough=True), or assert name(literals) == literal, \"message\"")
    if len(body) == 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Call):
        call = body[0].value
        if isinstance(call.func, ast.Name) and call.func.id == "grade_task" and len(call.args) >= 3 \
                and isinstance(call.args[0], ast.Name) and call.args[0].id in _JUDGED:
            names = [ast.literal_eval(a) for a in call.args[2:]]
            kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
            if all(type(n) is str for n in names) and set(kwargs) <= {"thorough"}:
                return {"check": call.args[0].id, "names": names, "thorough": kwargs.get("thorough")}
        raise ValueError(form)
    asserts = [n for n in body if isinstance(n, ast.Assert)]
    prints = [n for n in body if isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)
              and isinstance(n.value.func, ast.Name) and n.value.func.id == "print"]
    if len(asserts) == 1 and len(asserts) + len(prints) == len(body) and len(prints) <= 1:
        test = asserts[0].test
        if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq) \
                and isinstance(test.left, ast.Call) and isinstance(test.left.func, ast.Name) and not test.left.keywords:
            try:
                request = {"call": test.left.func.id, "args": [ast.literal_eval(a) for a in test.left.args],
                           "expected": ast.literal_eval(test.comparators[0])}
                if asserts[0].msg is not None:
                    request["message"] = str(ast.literal_eval(asserts[0].msg))
                if prints:
                    request["message_ok"] = " ".join(str(ast.literal_eval(a)) for a in prints[0].value.args)
            except ValueError:
                raise ValueError(form + " (the arguments and the value must be literals)") from None
            json.dumps(request["args"])  # arguments travel to the sandbox as JSON
            return request
    raise ValueError(form)
