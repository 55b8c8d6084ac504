"""The self-checks of Exercise 4, building ResNets: what the notebook's check cells run, and, for each, the grader's judge.

The cases and the sandbox's answers are in :mod:`book.exercises.cases.ex04`; the references (the parameter counts,
the training loss, the block recomputed from its own modules) stay here, with the grader.
"""

from __future__ import annotations

import copy
from typing import Callable

from .cases.ex04 import (_block_cases, _block_input, _traced_forward, cifar_resnet_parameters_cases,
                        early_training_loss_cases)
from .feedback import _Fail, _checker, _close, _one_number, _is_tensor, _run, _shape
from .protocol import _Replay, _Unreadable, _exact, _replay_judge

__all__ = ['check_basic_block', 'check_cifar_resnet_parameters', 'check_early_training_loss']


def _needs_projection(fail, c_in: int, c_out: int, stride: int) -> str:
    if "size of tensor" not in str(fail) and "must match" not in str(fail):
        return f"{fail}."
    return (f"BasicBlock({c_in}, {c_out}, stride={stride}): F(x) + shortcut(x) fails, because an identity shortcut keeps "
            f"x's shape and the branch changes its {'channels' if c_in != c_out else 'length'}. Where the shape "
            f"changes, the shortcut needs a projection: a 1×1 nn.Conv1d with stride={stride}, followed by "
            "nn.BatchNorm1d, so that shortcut(x) has the branch's shape.")


def _explain_shape_error(fail, c_in: int, c_out: int, stride: int) -> "_Fail":
    """A forward that failed on a sum of mismatched shapes, in the task's words (the raw tensor-size error names
    neither the branch nor the shortcut)."""
    text = str(fail)
    if "size of tensor" not in text and "must match" not in text:
        return fail
    if stride != 1:
        return _Fail(f"BasicBlock({c_in}, {c_out}, stride={stride}): the branch F(x) and your projection shortcut "
                     f"return different shapes, so F(x) + shortcut(x) fails. The branch's first convolution has "
                     f"stride {stride} and shortens the sequence; a projection without that stride keeps its length. "
                     f"Give the shortcut's 1×1 convolution stride={stride}.")
    return _Fail(f"BasicBlock({c_in}, {c_out}, stride=1): the branch F(x) and your shortcut return different shapes, "
                 f"so F(x) + shortcut(x) fails: the shortcut must map {c_in} channels to {c_out}, as the branch does.")


def _check_relu_after_sum(zero_branch_output, shortcut) -> None:
    """With its branch at zero a basic block returns relu(shortcut(x)): say what is missing if it does not."""
    import torch

    if _close(zero_branch_output, shortcut) and not _close(shortcut, torch.relu(shortcut)):
        raise _Fail("the block returns F(x) + shortcut(x) with no ReLU after the sum; the basic block "
                    "ends with relu(F(x) + shortcut(x)).")
    if not _close(zero_branch_output, torch.relu(shortcut)):
        raise _Fail("with the branch set to zero the block should return relu(shortcut(x)), but it does not: "
                    "add the shortcut to the branch's output and apply the ReLU after the sum.")


def _check_block_output(y, x, c_in: int, c_out: int, stride: int) -> tuple:
    """That ``y`` is a tensor of the shape a BasicBlock must return (self-check and judge alike); that shape."""
    if not _is_tensor(y):
        raise _Fail(f"forward returned {type(y).__name__}; it should return a tensor.")
    want = (8, c_out, 40 // stride)
    if tuple(y.shape) != want:
        raise _Fail(f"BasicBlock({c_in}, {c_out}, stride={stride}) returns shape {_shape(y)} for an input of "
                    f"shape {_shape(x)}; it should return ({', '.join(map(str, want))}): the first convolution "
                    "takes the stride and maps in_channels to out_channels.")
    return want


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
        try:
            y, calls, used, leaves = _traced_forward(block, shortcut, x, lambda: _run(
                f"BasicBlock({c_in}, {c_out}, stride={stride}) on an input of shape {_shape(x)}", block, x))
        except _Fail as fail:
            if changes and not has_params:  # the usual cause: an identity shortcut where the shape changes
                raise _Fail(_needs_projection(fail, c_in, c_out, stride)) from None
            raise _explain_shape_error(fail, c_in, c_out, stride) from None
        want = _check_block_output(y, x, c_in, c_out, stride)
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
        trial = copy.deepcopy(block).train()
        in_shortcut = {id(m) for m in trial.shortcut.modules()}
        norms = [m for m in trial.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and id(m) not in in_shortcut]
        if not norms:
            raise _Fail("the branch has no BatchNorm: use conv → BatchNorm1d → ReLU → conv → BatchNorm1d.")
        with torch.no_grad():
            for m in norms:
                m.weight.zero_()
                m.bias.zero_()
            y0 = trial(x)
            s = trial.shortcut(x)
        _check_relu_after_sum(y0, s)
        # The block's real output, recomputed from its modules as the forward called them.
        sc = _rebuild_shortcut(used, x)
        _branch_verdict(y.detach(), x, calls[0].detach() if sc is None else sc, leaves, c_in, c_out, stride)
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
    messages = {
        "no_bn": "you left out the BatchNorm layers' parameters (γ and β: 2 per channel).",
        "option_b": "you added projection shortcuts where the stage changes (option B). Option A shortcuts "
                    "subsample and pad with zeros: they have no parameters.",
        "no_fc_bias": "you left out the classifier's bias (one per class).",
        "no_fc": "you left out the final linear classifier (64 × 10 weights + 10 biases).",
        "conv_bias": "you gave the convolutions biases; they have none, because a BatchNorm follows each one.",
        "bn_running": "you counted BatchNorm's running mean and variance; those are buffers, not parameters.",
    }
    for depth, in cifar_resnet_parameters_cases(seed, thorough):
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
        off = "too many" if got > counts["correct"] else "too few"
        raise _Fail(f"cifar_resnet_parameters({depth}) returned {got:,}, {off} for ResNet-{depth}: {hint}")
    return (f"ResNet-56 has {_cifar_counts(56)['correct']:,} parameters (the paper's 0.85M); "
            "most of them sit in the last stage, where a 3×3 conv has 64×64×9 weights.")


def _rebuild_branch(leaves, x):
    """Recompute the branch conv → BatchNorm1d → ReLU → conv → BatchNorm1d from its leaves as called (in the grader)."""
    import torch

    if type(leaves) is not list or len(leaves) > 12 or any(type(leaf) is not dict for leaf in leaves):
        return None
    layers = [leaf for leaf in leaves if leaf.get("type") != "ReLU"]
    if [leaf.get("type") for leaf in layers] != ["Conv1d", "BatchNorm1d", "Conv1d", "BatchNorm1d"]:
        return None
    h = x
    for i, leaf in enumerate(layers):
        h = _rebuild_shortcut([leaf], h)
        if h is None:
            return None
        if i == 1:
            h = torch.relu(h)
    return h


def _branch_verdict(y, x, sc, leaves, c_in: int, c_out: int, stride: int) -> None:
    """That the block's real output ``y`` is relu(F(x) + shortcut(x)), recomputed from its own modules as called."""
    import torch

    branch = _rebuild_branch(leaves, x)
    kinds = [leaf.get("type") for leaf in leaves if type(leaf) is dict] if type(leaves) is list else []
    if branch is None or branch.shape != sc.shape:
        if _close(y, torch.relu(sc), 1e-4):
            raise _Fail(f"BasicBlock({c_in}, {c_out}, stride={stride}) returns relu(shortcut(x)): its branch F "
                        "never reaches the output. Return relu(F(x) + self.shortcut(x)).")
        raise _Fail(f"outside its shortcut, your block's forward called {', '.join(kinds) or 'no module'}; the "
                    "branch is conv (3, stride) → BatchNorm1d → ReLU → conv (3) → BatchNorm1d, called once each.")
    want = torch.relu(branch + sc)
    if not _close(y, want, 1e-4):
        if _close(y, torch.relu(sc), 1e-4):
            raise _Fail(f"BasicBlock({c_in}, {c_out}, stride={stride}) returns relu(shortcut(x)): its branch F "
                        "never reaches the output. Return relu(F(x) + self.shortcut(x)).")
        gap = (y - want).abs().max().item() if _is_tensor(y) and y.shape == want.shape else float("inf")
        raise _Fail(f"BasicBlock({c_in}, {c_out}, stride={stride})'s output differs by up to {gap:.3g} from "
                    "relu(F(x) + shortcut(x)) computed from its own modules: return relu(self.branch(x) + "
                    "self.shortcut(x)), with nothing else added or scaled.")


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
                # every forged size is checked before it is computed with: the grader's memory and time stay small
                if not _is_tensor(w) or w.dim() != 3 or w.shape[1] != x.shape[1] or not 1 <= w.shape[0] <= 512 \
                        or not 1 <= w.shape[2] <= 9 or type(stride) is not list or len(stride) != 1 \
                        or type(stride[0]) is not int or not 1 <= stride[0] <= 4:
                    return None
                if padding not in ("same", "valid") and not (type(padding) is list and len(padding) == 1 and
                                                             type(padding[0]) is int and 0 <= padding[0] <= 8):
                    return None
                if padding == "same" and stride[0] != 1:
                    return None
                if b is not None and not (_is_tensor(b) and b.shape == (w.shape[0],)):
                    return None
                x = F.conv1d(x, w, b, stride=stride[0], padding=padding if type(padding) is str else padding[0])
            elif kind == "BatchNorm1d":
                w, b, eps = _exact(leaf.get("weight")), _exact(leaf.get("bias")), _exact(leaf.get("eps"))
                if type(eps) is not float or not 0 < eps < 1 or (w is not None and not (_is_tensor(w) and w.shape == (x.shape[1],))):
                    return None
                if b is not None and not (_is_tensor(b) and b.shape == (x.shape[1],)):
                    return None
                x = F.batch_norm(x, None, None, w, b, training=True, eps=eps)
            else:
                return None
    return x


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
            if changes and not has_params:  # the usual cause: an identity shortcut where the shape changes
                raise _Fail(_needs_projection(fail, c_in, c_out, stride)) from None
            raise _explain_shape_error(fail, c_in, c_out, stride) from None
        traced = report()
        calls = traced.get("shortcut_calls")
        want = _check_block_output(y, x, c_in, c_out, stride)
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
        kinds = [leaf.get("type") for leaf in r.get("shortcut")] if sc is not None else []
        if sc is not None and changes and kinds[-1:] != ["BatchNorm1d"]:
            raise _Fail(f"the projection shortcut of BasicBlock({c_in}, {c_out}, stride={stride}) needs a "
                        "BatchNorm1d after its 1×1 convolution, as the task asks.")
        if sc is None:
            raise _Fail("the grader could not recompute your shortcut: build it from nn.Identity(), or from a 1×1 "
                        "nn.Conv1d followed by nn.BatchNorm1d, as the task asks.")
        if tuple(sc.shape) != want:
            raise _Fail(f"the projection shortcut returns shape {_shape(sc)}; it must match the branch's output "
                        f"({', '.join(map(str, want))}): give its 1×1 convolution stride={stride}.")
        y0 = _run("your block with its branch set to zero", replay.next)
        if not _is_tensor(y0) or tuple(y0.shape) != want:
            raise _Fail("with the branch set to zero the block should return relu(shortcut(x)), but it does not.")
        _check_relu_after_sum(y0, sc)
        # The block's real output, recomputed here from its modules as its forward called them: a block whose
        # output ignores its branch, or that changes its modules during the forward, is caught here.
        sc_used = _rebuild_shortcut(traced.get("shortcut_used"), x)
        if sc_used is None or sc_used.shape != sc.shape:
            raise _Fail("the grader could not recompute your shortcut as the forward called it: build it from "
                        "nn.Identity(), or from a 1×1 nn.Conv1d followed by nn.BatchNorm1d, as the task asks.")
        _branch_verdict(y, x, sc_used, traced.get("branch"), c_in, c_out, stride)
    return "identity shortcut when the shape stays, a 1×1 projection when it changes, and relu(F(x) + shortcut(x))."


# --------------------------------------------------------------------------- Task 3: does zero-init speed up the start?

EARLY_WIDTHS = (8, 16, 32)        # Chapter 1's nets (DepthRun.width = 8), not ConvNetConfig's default (16, 32, 64)


def _early_config(epochs: int, **changes):
    """Task 3's recipe: SGD at a constant learning rate 0.1 (momentum 0.9, weight decay 1e-4, batch 128)."""
    from ..training import TrainConfig

    return TrainConfig(**{"epochs": epochs, "lr": 0.1, "warmup_epochs": 0, "milestones": (), **changes})


def _early_loss(depth, zero_init, seed, epochs, data, zero="last", widths=EARLY_WIDTHS, config=None,
                train_seed=None, pick=-1, curve="train_loss") -> float:
    """The reference of ``early_training_loss``, and (through its keywords) its usual slips."""
    import torch
    from torch import nn

    from ..nets.conv1d import resnet
    from ..training import train

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = resnet(depth, widths=widths)
        if zero_init:
            for block in model.blocks:
                if zero == "last":
                    nn.init.zeros_(block.branch[-1].weight)   # what block.zero_init_last() does
                else:
                    nn.init.zeros_(block.branch[1].weight)    # a slip: the first BatchNorm of the branch
        result = train(model, data, config or _early_config(epochs), seed=seed if train_seed is None else train_seed,
                       progress=False)
    return float(getattr(result, curve)[pick])


@_checker("Task 3 · does starting as the identity speed training up?")
def check_early_training_loss(early_training_loss: Callable, thorough: bool = False, seed: int | None = None) -> str:
    """``early_training_loss(depth, zero_init, seed, epochs, data)``: the last epoch's mean training loss."""
    for depth, zero_init, s, epochs, data in early_training_loss_cases(0 if seed is None else seed, thorough):
        call = f"early_training_loss({depth}, {zero_init}, {s}, {epochs}, data)"
        got = _run(call, early_training_loss, depth, zero_init, s, epochs, data)
        got = _one_number(got, call, "the mean training loss of the last epoch (result.train_loss[-1])")
        want = _early_loss(depth, zero_init, s, epochs, data)
        if abs(got - want) <= 1e-5 * max(1.0, abs(want)):   # the same calls give the same bits; slips differ by 1e-4 or more
            continue
        slips = {}
        if zero_init:
            slips["the loss of the net with the default initialization: zero the last BatchNorm's γ of every "
                  "block (block.zero_init_last(), or resnet(..., zero_init_residual=True))"] = \
                lambda: _early_loss(depth, False, s, epochs, data)
            slips["the loss with the *first* BatchNorm of each branch zeroed (or both); Goyal et al. zero only the "
                  "last one, branch[-1], the one just before the sum"] = \
                lambda: _early_loss(depth, True, s, epochs, data, zero="first")
        else:
            slips["the loss of a zero-initialized net, but zero_init is False here: keep the default "
                  "initialization"] = lambda: _early_loss(depth, True, s, epochs, data)
        if epochs > 1:
            slips["the first epoch's loss; return the last one (result.train_loss[-1])"] = \
                lambda: _early_loss(depth, zero_init, s, epochs, data, pick=0)
        slips.update({
            "the training error, not the training loss (result.train_loss)":
                lambda: _early_loss(depth, zero_init, s, epochs, data, curve="train_error"),
            "the test loss; the task asks for the training loss (result.train_loss)":
                lambda: _early_loss(depth, zero_init, s, epochs, data, curve="test_loss"),
            "the loss of a net with resnet()'s default widths (16, 32, 64); Chapter 1's nets have "
            "widths=(8, 16, 32)": lambda: _early_loss(depth, zero_init, s, epochs, data, widths=(16, 32, 64)),
            "the loss under TrainConfig's default schedule, which divides the learning rate by 10 at its "
            "milestones; pass milestones=() and warmup_epochs=0":
                lambda: _early_loss(depth, zero_init, s, epochs, data, config=_early_config(
                    epochs, milestones=(0.5, 0.75))),
            "the loss with a warm-up epoch; pass warmup_epochs=0":
                lambda: _early_loss(depth, zero_init, s, epochs, data, config=_early_config(epochs, warmup_epochs=1)),
            "the loss with the mini-batches shuffled by another seed: pass seed=seed to train()":
                lambda: _early_loss(depth, zero_init, s, epochs, data, train_seed=0),
        })
        slip = next((name for name, value in slips.items() if abs(value() - got) <= 1e-5 * max(1.0, abs(got))), None)
        raise _Fail(f"{call} returned {got:.4f}, which is not the loss these steps give"
                    + (f": your number is {slip}." if slip else
                       ": compare each step with the task's list: where the seed is set, the net's widths, which "
                       "BatchNorm is zeroed, the training schedule and its seed, and which curve you return."))
    return ("the same loss as the reference for each net, with and without zero-init: your measurement can be "
            "trusted on ResNet-20 and ResNet-56.")


# The grader's judge of each check (the sandbox's answers are in book.exercises.cases.ex04).
JUDGED = {
    "check_basic_block": _judge_basic_block,
    "check_cifar_resnet_parameters": _replay_judge(check_cifar_resnet_parameters),
    "check_early_training_loss": _replay_judge(check_early_training_loss),
}
