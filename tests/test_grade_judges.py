"""Judges that cannot be talked round: each weak spot of issue 25 tried by a tiny submission, in process.

Each test runs the learner's code as the sandbox would (``protocol.answer``, then the answer through JSON) and judges it
as the grader does (``judge``), and runs the learner-side self-check on the same code: the attack earns nothing
from either, and a correct answer still passes both. No kernel and no sandbox: a few seconds in all.
"""

from __future__ import annotations

import json
import secrets

import torch
from torch import nn

import book.exercises as ex
from book.exercises import protocol


def _graded(check: str, namespace: dict, *names: str, thorough: bool = True, seed: int | None = None):
    """The grader's verdict on ``namespace``'s ``names`` for ``check``, with a freshly drawn seed."""
    request = {"check": check, "names": list(names), "thorough": thorough,
               "seed": secrets.randbits(62) if seed is None else seed}
    reply = protocol.answer(json.loads(json.dumps(request)), namespace)
    return protocol.judge(request, reply, "t")


# --------------------------------------------------------------------------- Exercise 4, Task 1

class BasicBlock(nn.Module):
    def __init__(self, c_in, c_out, stride=1):
        super().__init__()
        self.branch = nn.Sequential(nn.Conv1d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
                                    nn.BatchNorm1d(c_out), nn.ReLU(),
                                    nn.Conv1d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm1d(c_out))
        self.shortcut = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv1d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm1d(c_out))

    def forward(self, x):
        return torch.relu(self.branch(x) + self.shortcut(x))


class NoBranch(BasicBlock):
    """The attack: a branch that exists (so that zeroing its norms changes nothing) but never reaches the output."""

    def forward(self, x):
        return torch.relu(self.shortcut(x))


class HalfBranch(BasicBlock):
    def forward(self, x):
        return torch.relu(0.5 * self.branch(x) + self.shortcut(x))


class ZeroesItsBranch(BasicBlock):
    def forward(self, x):
        with torch.no_grad():
            self.branch[1].weight.zero_()
        return torch.relu(self.branch(x) + self.shortcut(x))


def test_basic_block_judge_recomputes_the_real_output():
    assert ex.check_basic_block(BasicBlock, thorough=True)
    assert _graded("check_basic_block", {"BasicBlock": BasicBlock}, "BasicBlock")
    for attack, phrase in ((NoBranch, "never reaches the output"), (HalfBranch, "differs by up to"),
                           (ZeroesItsBranch, "")):
        own, graded = ex.check_basic_block(attack), _graded("check_basic_block", {"BasicBlock": attack}, "BasicBlock")
        assert not own and not graded, (attack.__name__, own, graded)
        assert phrase in own.message and phrase in graded.message, (own.message, graded.message)


# --------------------------------------------------------------------------- Exercise 3, Task 2

class Liar(torch.Tensor):
    """A tensor whose statistics lie: its square is 300 times too large, and it equals nothing."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in (torch.equal, torch.Tensor.equal):
            return False
        out = super().__torch_function__(func, types, args, kwargs or {})
        return out * 300 if func in (torch.Tensor.pow, torch.pow) else out


def _lying_init(layer):
    """The attack: the weights stay as PyTorch made them; only what their statistics say changes."""
    layer.weight = nn.Parameter(layer.weight.detach().as_subclass(Liar))
    layer.bias = nn.Parameter(layer.bias.detach().as_subclass(Liar))


def test_init_judge_computes_statistics_from_raw_weights():
    def kaiming(layer):
        nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
        nn.init.zeros_(layer.bias)

    def graded(init_linear):   # one case of three (each reads back 5 MB of raw weights)
        return _graded("check_init_linear", {"init_linear": init_linear}, "init_linear", thorough=False)

    assert ex.check_init_linear(kaiming) and graded(kaiming)
    for attack in (_lying_init, lambda layer: None):
        own, graded_attack = ex.check_init_linear(attack), graded(attack)
        assert not own and not graded_attack, (own, graded_attack)
        assert "left the weights" in own.message and "left the weights" in graded_attack.message


# --------------------------------------------------------------------------- the judge's data

def test_a_poisoned_data_cache_does_not_reach_the_judge(tmp_path, monkeypatch):
    """A cache file with other numbers (as a submission run without the sandbox could write) is not used."""
    import numpy as np

    from book import data as datasets
    from book.exercises import ex03

    monkeypatch.setattr(ex03, "_VERIFIED", [])
    monkeypatch.setenv("RESIDUAL_COURSE_CACHE", str(tmp_path))
    monkeypatch.setattr(datasets, "_MEMORY", {})
    datasets.load_mnist1d()                                     # writes the cache file under tmp_path
    (path,) = tmp_path.rglob("mnist1d-*.npz")
    with np.load(path) as f:
        raw = {k: f[k] for k in f.files}
    raw["x"] = raw["x"][::-1].copy()                            # the same numbers, other sequences first
    np.savez(path, **raw)
    datasets._MEMORY.clear()
    x, y = ex03._ratio_batch()
    assert ex03._batch_digest(x, y) == ex03.RATIO_BATCH_SHA256
