"""The self-checks of Exercise 1, the degradation problem: what the notebook's check cells run, and, for each, the grader's judge.

The cases each check draws from the seed, and the sandbox's answers on them, are in :mod:`book.exercises.cases.ex01`;
the references the judges compare with (the right counts, the identity's outputs, the mean final errors, the
trainings as the task asks) stay here.
"""

from __future__ import annotations

from typing import Callable

from .cases.ex01 import _identity_cases, fewer_data_cases, final_error_cases, named_weighted_layers_cases
from .feedback import _Fail, _as_float, _checker, _close, _is_tensor, _one_number, _run
from .protocol import _Replay, _Unreadable, _load_state, _replay_judge, _same_state

__all__ = ['check_weighted_layers', 'check_add_identity_blocks', 'check_final_error', 'check_fewer_data_errors']


@_checker("Task 1 · count the weighted layers")
def check_weighted_layers(count_weighted_layers: Callable, seed: int | None = None) -> str:
    """``count_weighted_layers(model)`` counts convolutions and linear layers (the paper's "depth").

    ``seed`` (the grader's): networks of depths drawn from it instead of the fixed ones.
    """
    from torch import nn

    for name, model in named_weighted_layers_cases(seed):
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


def _identity_hint(new_blocks) -> str:
    """What to look at in the appended plain blocks when the deeper net's outputs differ (no target values)."""
    import torch
    from torch import nn

    for i, block in enumerate(new_blocks, 1):
        for layer in getattr(block, "branch", []):
            if isinstance(layer, nn.Conv1d):
                w = layer.weight.detach()
                centre = torch.zeros_like(w)
                if w.shape[0] == w.shape[1] and w.shape[2] == 3:
                    centre[:, :, 1] = torch.eye(w.shape[0])
                if not torch.equal(w, centre):
                    return (f" In added block {i}, a convolution does not pass every channel through unchanged: "
                            "look at its kernel, tap by tap (which tap leaves the sequence unshifted?), and at "
                            "which input channel feeds which output channel.")
            elif isinstance(layer, nn.BatchNorm1d):
                changes = (layer.weight.detach() - 1).abs().max() > 1e-6 or layer.bias.detach().abs().max() > 1e-6 \
                    or layer.running_mean.abs().max() > 1e-6 or (layer.running_var - 1).abs().max() > 1e-3
                if changes:
                    return (f" In added block {i}, a BatchNorm changes its input in evaluation mode: look at its "
                            "running statistics (running_mean, running_var) and its γ (weight) and β (bias).")
    return (" Compare each added block's output with its input in evaluation mode (block.eval()), layer by layer, "
            "to find the one that changes it.")


@_checker("Task 2 · a deeper network that computes the same function")
def check_add_identity_blocks(add_identity_blocks: Callable, thorough: bool = False) -> str:
    """``add_identity_blocks(model, extra)`` returns a deeper copy of a plain net with the same outputs (eval mode)."""
    import torch

    from ..nets.conv1d import BasicBlock1d, plain_net

    for depth, extra in ([(8, 2), (14, 3)] if thorough else [(8, 2)]):
        torch.manual_seed(depth)
        base = plain_net(depth)
        x = torch.randn(6, 1, 40)
        base.eval()
        before = base(x).detach()
        n_blocks = len(base.blocks)
        deeper = _run(f"add_identity_blocks(plain_net({depth}), {extra})", add_identity_blocks, base, extra)
        if not isinstance(deeper, torch.nn.Module):
            raise _Fail(f"add_identity_blocks returned {type(deeper).__name__}; it should return the deeper network (an nn.Module).")
        if deeper is base or len(base.blocks) != n_blocks or not _close(base.eval()(x).detach(), before):
            raise _Fail("your function changed the network it was given. Work on a copy (copy.deepcopy(model)) "
                        "so the shallow network stays as it was.")
        blocks = getattr(deeper, "blocks", None)
        if blocks is None or len(blocks) != n_blocks + extra:
            have = len(blocks) if blocks is not None else "no"
            raise _Fail(f"the deeper network should have {n_blocks} + {extra} blocks in .blocks, but it has {have}.")
        new = list(blocks)[n_blocks:]
        if any(isinstance(b, BasicBlock1d) for b in new):
            raise _Fail("you added residual blocks. The puzzle is about plain networks: a plain net that is deeper "
                        "but can copy the shallow one. Add plain blocks (PlainBlock1d) and make each compute the "
                        "identity through its own weights.")
        deeper.eval()
        after = _run("the deeper network", deeper, x)
        if not _close(after.detach(), before, 1e-4):
            gap = (after.detach() - before).abs().max().item()
            raise _Fail(f"the deeper network's outputs differ from the shallow one's by up to {gap:.3g}."
                        + _identity_hint(new))
    return ("the deeper plain network computes exactly what the shallow one does, so depth alone cannot make "
            "its best training error worse — yet plain deep nets do train worse: that is the degradation problem.")


@_checker("Task 2 · a deeper network that computes the same function")
def _judge_identity_blocks(answers, seed, thorough) -> str:
    import torch

    from ..nets.conv1d import PlainBlock1d, plain_net

    replay = _Replay(answers)
    for depth, extra, s in _identity_cases(seed):
        torch.manual_seed(s)
        base = plain_net(depth).eval()
        x = torch.randn(6, 1, 40, generator=torch.Generator().manual_seed(s))
        with torch.no_grad():
            before = base(x)
        n_blocks = len(base.blocks)
        _run(f"add_identity_blocks(plain_net({depth}), {extra})", replay.next)
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
            raise _Fail(f"the deeper network should have {n_blocks} + {extra} blocks in .blocks, "
                        f"but it has {len(names) if type(names) is list else 'no'}.")
        if "BasicBlock1d" in names[n_blocks:]:
            raise _Fail("you added residual blocks. The puzzle is about plain networks: a plain net that is deeper "
                        "but can copy the shallow one. Add plain blocks (PlainBlock1d) and make each compute the "
                        "identity through its own weights.")
        deeper = plain_net(depth)
        width = deeper.head.in_features
        new = [PlainBlock1d(width, width) for _ in range(extra)]
        deeper.blocks = torch.nn.Sequential(*deeper.blocks, *new)
        if not _load_state(deeper, report.get("state")):
            raise _Fail("the grader could not read your deeper network as the shallow one followed by "
                        f"{extra} PlainBlock1d({width}, {width}) blocks: add exactly those, appended to .blocks.")
        with torch.no_grad():
            after = deeper.eval()(x)
        if not _close(after, before, 1e-4):
            raise _Fail(f"the deeper network's outputs differ from the shallow one's by up to "
                        f"{(after - before).abs().max().item():.3g}." + _identity_hint(new))
    return ("the deeper plain network computes exactly what the shallow one does, so depth alone cannot make "
            "its best training error worse — yet plain deep nets do train worse: that is the degradation problem.")


def _errors(runs, depth, residual, split, pick=lambda curve: curve[-1], same_kind=True) -> float:
    values = [pick(getattr(run, f"{split}_error")) for (d, r, _), run in runs.items()
              if d == depth and (r == residual or not same_kind)]
    return sum(values) / len(values)


def _final_error(runs, depth, residual, split):
    return _errors(runs, depth, residual, split)


@_checker("Task 3 · overfitting, or failing to fit?")
def check_final_error(final_error: Callable, thorough: bool = False, seed: int | None = None) -> str:
    """``final_error(depth, residual, split, runs=None)``: the mean over seeds of the last epoch's error."""
    from ..ch1_degradation import recorded_long

    recorded = None
    for depth, residual, split, *given in final_error_cases(0 if seed is None else seed, thorough):
        if given:           # made-up runs, passed as `runs`
            runs, = given
            call = f"final_error({depth}, {residual}, {split!r}, runs)"
            got = _run(call, final_error, depth, residual, split, runs)
            got = _one_number(got, call, "the mean over the seeds")
            want = _final_error(runs, depth, residual, split)
            if abs(got - want) <= 1e-6:
                continue
            other = "test" if split == "train" else "train"
            slips = {
                "the best epoch's error instead of the last one": _errors(runs, depth, residual, split, min),
                "the first epoch's error instead of the last one":
                    _errors(runs, depth, residual, split, lambda c: c[0]),
                "the other split (train and test swapped)": _errors(runs, depth, residual, other),
                "the mean over every epoch, not the last one":
                    _errors(runs, depth, residual, split, lambda c: sum(c) / len(c)),
                "plain and residual runs of that depth mixed together":
                    _errors(runs, depth, residual, split, same_kind=False),
                "only one seed's run": getattr(next(r for (d, res, _), r in runs.items()
                                                    if d == depth and res == residual), f"{split}_error")[-1],
            }
            slip = next((name for name, v in slips.items() if abs(v - got) <= 1e-6), None)
            raise _Fail(f"{call} returned {got:.4f}, which is not the mean final error of those runs"
                        + (f": your number is {slip}." if slip else
                           ": average, over the seeds, the last entry of each matching run's error list."))
        if recorded is None:    # no `runs`: the recorded ones
            recorded = recorded_long()["runs"]
        call = f"final_error({depth}, {residual}, {split!r})"
        got = _as_float(_run(call, final_error, depth, residual, split), f"the value of {call}")
        want = _final_error(recorded, depth, residual, split)
        if abs(got - want) > 1e-6:
            raise _Fail(f"{call} returned {got:.4f}, which is not the recorded runs' mean final error: without "
                        "`runs`, use the recorded runs, recorded_long()[\"runs\"].")
    return "the mean final error over seeds, from any list of runs and from the recorded ones."


def _fewer_data_run(depth, seed, n_train, epochs, train_seed=None, cut_test=False, last=False, eval_train=False):
    """(final training error, final test error) of plain-``depth`` trained on ``n_train`` sequences, as the task
    asks, or with one slip: another seed, the test set cut too, the last sequences, eval-mode training error."""
    import dataclasses

    from ..data import load_mnist1d
    from ..nets.conv1d import plain_net
    from ..training import TrainConfig, evaluate, seeded, train

    data = load_mnist1d()
    part = slice(len(data.x_train) - n_train, None) if last else slice(0, n_train)
    fewer = dataclasses.replace(data, x_train=data.x_train[part], y_train=data.y_train[part])
    if cut_test:
        fewer = dataclasses.replace(fewer, x_test=data.x_test[:n_train], y_test=data.y_test[:n_train])
    seed = seed if train_seed is None else train_seed
    with seeded(seed):   # as book.trained_nets.train_net trains DepthRun(depth=depth, seed=seed, epochs=epochs)
        model = plain_net(depth, widths=(8, 16, 32))
    result = train(model, fewer, TrainConfig(epochs=epochs, warmup_epochs=1, lr=0.1, batch_size=128), seed=seed,
                   progress=False)
    if eval_train:
        return evaluate(model, fewer.x_train, fewer.y_train)[1], result.final_test_error
    return result.final_train_error, result.final_test_error


def _two_errors(value, call: str) -> tuple[float, float]:
    if _is_tensor(value) or not isinstance(value, (list, tuple)) or len(value) != 2:
        raise _Fail(f"{call} returned {type(value).__name__} {value!r}; return two numbers, "
                    "(final training error, final test error).")
    return _as_float(value[0], f"the training error of {call}"), _as_float(value[1], f"the test error of {call}")


@_checker("Task 4 · does degradation survive on less data?")
def check_fewer_data_errors(fewer_data_errors: Callable, thorough: bool = False, seed: int | None = None) -> str:
    """``fewer_data_errors(depth, seed, n_train, epochs)``: plain-depth's final errors after training on the first
    ``n_train`` sequences (Chapter 1's recipe otherwise)."""
    for depth, s, n_train, epochs in fewer_data_cases(7 if seed is None else seed, thorough):
        call = f"fewer_data_errors({depth}, {s}, n_train={n_train}, epochs={epochs})"
        got = _two_errors(_run(call, fewer_data_errors, depth, s, n_train=n_train, epochs=epochs), call)
        want = _fewer_data_run(depth, s, n_train, epochs)
        if all(abs(g - w) <= 1e-9 for g, w in zip(got, want)):
            continue
        if abs(got[0] - want[1]) <= 1e-9 and abs(got[1] - want[0]) <= 1e-9:
            raise _Fail(f"{call}: your two numbers are in the wrong order; return the training error first.")
        slips = {
            "the network or the batch order was not drawn from `seed`":
                lambda: _fewer_data_run(depth, s, n_train, epochs, train_seed=0),
            "the test set was cut to n_train sequences too; keep all of it":
                lambda: _fewer_data_run(depth, s, n_train, epochs, cut_test=True),
            "the training set is the last n_train sequences; take the first":
                lambda: _fewer_data_run(depth, s, n_train, epochs, last=True),
            "the training error was measured after training, in evaluation mode; return the curve's last entry, "
            "as Chapter 1 plots it": lambda: _fewer_data_run(depth, s, n_train, epochs, eval_train=True),
            "the net was trained on every training sequence, not the first n_train":
                lambda: _fewer_data_run(depth, s, 4000, epochs),
        }
        for slip, run in slips.items():
            if all(abs(g - w) <= 1e-9 for g, w in zip(got, run())):
                raise _Fail(f"{call} does not train as the task asks: {slip}.")
        which = "training" if abs(got[0] - want[0]) > 1e-9 else "test"
        raise _Fail(f"{call} returned a {which} error that the task's run does not give. Train "
                    "DepthRun(depth=depth, seed=seed, epochs=epochs) with train_net on data whose training set is "
                    "the first n_train sequences, and return the result's final training and test errors.")
    return "the final errors of a plain net trained on the first n_train sequences, run for run as the task asks."


# The grader's judge of each check (the sandbox's answers are in book.exercises.cases.ex01).
JUDGED = {
    "check_final_error": _replay_judge(check_final_error),
    "check_weighted_layers": _replay_judge(check_weighted_layers),
    "check_add_identity_blocks": _judge_identity_blocks,
    "check_fewer_data_errors": _replay_judge(check_fewer_data_errors),
}
