"""Exercise 1's cases, drawn from a seed: the networks ``count_weighted_layers`` counts, the plain nets that
``add_identity_blocks`` deepens (and what the learner's deeper net holds), the made-up runs ``final_error`` averages,
and the small trainings ``fewer_data_errors`` runs."""

from __future__ import annotations

from ..feedback import _rng
from ..protocol import _plain, _record, _seeded, answers_on

SELF_CHECKS = ("check_weighted_layers", "check_add_identity_blocks", "check_final_error", "check_fewer_data_errors")


# --------------------------------------------------------------------------- Task 1 · count the weighted layers

def named_weighted_layers_cases(seed: int | None) -> list:
    """``(name, model)``: the networks ``count_weighted_layers`` is called on, with the words a message uses for each.

    Without a seed (the notebook's check): plain_net(20), resnet(56) and a small Conv1d stack. With one (the grader's):
    nets of depths drawn from it and a random stack of layers.
    """
    from torch import nn

    from ...nets.conv1d import plain_net, resnet

    if seed is None:
        return [("plain_net(20)", plain_net(20)), ("resnet(56)", resnet(56)),
                ("a Conv1d → BatchNorm1d → ReLU → Linear stack",
                 nn.Sequential(nn.Conv1d(1, 4, 3), nn.BatchNorm1d(4), nn.ReLU(), nn.Flatten(), nn.Linear(152, 10)))]
    rng = _rng(seed)
    d1, d2 = (6 * rng.randint(1, 6) + 2 for _ in range(2))
    pool = [lambda: nn.Conv1d(4, 4, 3), lambda: nn.BatchNorm1d(4), nn.ReLU, lambda: nn.Linear(8, 8), nn.Tanh]
    stack = nn.Sequential(*(rng.choice(pool)() for _ in range(rng.randint(3, 12))), nn.Linear(8, 10))
    return [(f"plain_net({d1})", plain_net(d1)), (f"resnet({d2})", resnet(d2)), ("a stack of layers", stack)]


def weighted_layers_cases(seed: int | None, thorough: bool = False):
    """``(model,)``: the networks of :func:`named_weighted_layers_cases`, in order (``thorough`` changes nothing)."""
    for _, model in named_weighted_layers_cases(seed):
        yield (model,)


# --------------------------------------------------------------------------- Task 2 · a deeper plain net, same function

def _identity_cases(seed):
    """``(depth, extra, torch seed)``: two plain nets of depth 8 or 14, to deepen by 1 to 3 blocks."""
    rng = _rng(seed)
    return [(rng.choice([8, 14]), rng.randint(1, 3), _seeded(seed, i)) for i in range(2)]


def _answer_identity_blocks(add_identity_blocks, seed, thorough, answers):
    """The learner's deeper nets, as plain data: whether each is a module, a new object, its blocks' class names
    and its parameters, and the given net's parameters after the call (the grader runs the nets itself)."""
    import torch

    from ...nets.conv1d import plain_net

    for depth, extra, s in _identity_cases(seed):
        torch.manual_seed(s)
        base = plain_net(depth).eval()
        deeper = _record(answers, add_identity_blocks, base, extra)
        report = {"is_module": isinstance(deeper, torch.nn.Module), "same_object": deeper is base,
                  "base_state": {k: _plain(v) for k, v in base.state_dict().items()}}
        if report["is_module"] and not report["same_object"]:
            report["blocks"] = [type(b).__name__ for b in getattr(deeper, "blocks", [])]
            report["state"] = {k: _plain(v) for k, v in deeper.state_dict().items()}
        answers[-1]["report"] = report


# --------------------------------------------------------------------------- Task 3 · overfitting, or failing to fit?

def _synthetic_runs(rng, epochs: int) -> dict:
    """Runs shaped like Chapter 1's ``recorded_long()["runs"]``, with made-up curves (the checks' cases)."""
    from types import SimpleNamespace

    runs = {}
    for depth, residual in ((20, False), (56, False), (20, True), (56, True)):
        for seed in range(rng.randint(2, 4)):
            train = [round(rng.uniform(0.0, 0.9), 4) for _ in range(epochs)]
            test = [round(min(1.0, t + rng.uniform(-0.05, 0.2)), 4) for t in train]
            runs[(depth, residual, seed)] = SimpleNamespace(train_error=train, test_error=test)
    return runs


def final_error_cases(seed: int, thorough: bool):
    """``(depth, residual, split, runs)``: two calls (one on "train", one on "test") on each of two sets of made-up
    runs (three when thorough); then ``(depth, residual, split)``, twice, on the recorded runs (no ``runs`` given)."""
    rng = _rng(seed)
    for _ in range(3 if thorough else 2):
        runs = _synthetic_runs(rng, rng.randint(3, 8))
        for depth, residual, split in ((rng.choice([20, 56]), rng.random() < 0.5, "train"),
                                       (rng.choice([20, 56]), rng.random() < 0.5, "test")):
            yield depth, residual, split, runs
    yield 56, False, "train"
    yield 20, True, "test"


# --------------------------------------------------------------------------- Task 4 · less training data

def fewer_data_cases(seed: int, thorough: bool):
    """``(depth, seed, n_train, epochs)``: plain-8 nets on 120 to 280 sequences for 2 or 3 epochs, one case (two when
    thorough). The call passes ``n_train`` and ``epochs`` by name: ``fewer_data_errors(depth, seed, n_train=…,
    epochs=…)``."""
    rng = _rng(seed)
    for _ in range(2 if thorough else 1):
        yield 8, rng.randint(1, 50), rng.choice([120, 200, 280]), rng.randint(2, 3)


def _answer_fewer_data(fewer_data_errors, seed, thorough, answers):
    for depth, s, n_train, epochs in fewer_data_cases(seed, bool(thorough)):
        _record(answers, fewer_data_errors, depth, s, n_train=n_train, epochs=epochs)


ANSWERS = {
    "check_final_error": answers_on(final_error_cases),
    "check_weighted_layers": answers_on(weighted_layers_cases),
    "check_add_identity_blocks": _answer_identity_blocks,
    "check_fewer_data_errors": _answer_fewer_data,
}
