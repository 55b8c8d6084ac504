"""Exercise 2's cases, drawn from a seed: the branches ``Residual`` wraps, the blocks ``zero_init_branch`` starts as
the identity, and the stacks of residual blocks ``block_changes`` measures; with the sandbox's answers on them."""

from __future__ import annotations

from ..feedback import _rng
from ..protocol import _plain, _record, _seeded, answers_on

SELF_CHECKS = ("check_residual", "check_zero_init_branch", "check_block_changes")


def _drawn_block(dims, s=None):
    """A block ``y = F(x) + x`` around a branch F it draws itself: Linear → ReLU → … → Linear through the widths
    ``dims`` and back to ``dims[0]``, drawn right after ``torch.manual_seed(s)`` (``s=None``: from the random state as
    it is). The blocks that Task 2 and Task 3 hand to the learner's code, so that neither depends on Task 1."""
    import torch
    from torch import nn

    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            if s is not None:
                torch.manual_seed(s)
            layers: list = []
            width = dims[0]
            for hidden in dims[1:]:
                layers += [nn.Linear(width, hidden), nn.ReLU()]
                width = hidden
            layers.append(nn.Linear(width, dims[0]))
            self.branch = nn.Sequential(*layers)
            self.shortcut = nn.Identity()

        def forward(self, x):
            return self.branch(x) + self.shortcut(x)

    return Residual()


# --------------------------------------------------------------------------- Task 1 · y = F(x) + x

def _residual_cases(seed, thorough):
    """``(width, torch seed)``: one branch 4 to 40 wide (two when thorough)."""
    rng = _rng(seed)
    return [(rng.randint(4, 40), _seeded(seed, i)) for i in range(2 if thorough else 1)]


def _residual_branch(width, s):
    """The branch Linear → Tanh → Linear of ``width`` features, and an input of 5 rows, both drawn from ``s``."""
    import torch
    from torch import nn

    torch.manual_seed(s)
    branch = nn.Sequential(nn.Linear(width, width), nn.Tanh(), nn.Linear(width, width))
    x = torch.randn(5, width, generator=torch.Generator().manual_seed(s)) * 2 - 1
    return branch, x


def _answer_residual(Residual, seed, thorough, answers):
    """The learner's block on each case: whether it is a module with a shortcut module, its output, and whether its
    forward changed its input in place (the grader computes F(x) + x itself)."""
    import torch

    for width, s in _residual_cases(seed, thorough):
        branch, x = _residual_branch(width, s)
        block = _record(answers, Residual, branch)
        answers[-1]["report"] = report = {"is_module": isinstance(block, torch.nn.Module),
                                          "shortcut": isinstance(getattr(block, "shortcut", None), torch.nn.Module)}
        if not (report["is_module"] and report["shortcut"]):
            return
        before = x.clone()
        _record(answers, block, x)
        answers[-1]["report"] = {"input_changed": not torch.equal(x, before)}


# --------------------------------------------------------------------------- Task 2 · start the block as the identity

def _zero_init_cases(seed, thorough):
    """``(dims, torch seed)``: a branch with one hidden layer; when thorough, a second one with two."""
    rng = _rng(seed)
    cases = [(rng.randint(4, 24), rng.randint(4, 40))]
    if thorough:
        cases.append((rng.randint(4, 24), rng.randint(4, 40), rng.randint(4, 40)))
    return [(dims, _seeded(seed, i)) for i, dims in enumerate(cases)]


def _zero_init_block(dims, s):
    """The block ``zero_init_branch`` is given: y = F(x) + x, its branch drawn from ``s`` (see :func:`_drawn_block`)."""
    return _drawn_block(dims, s)


def _answer_zero_init(zero_init_branch, seed, thorough, answers):
    """The branch's parameters after the learner's ``zero_init_branch(block)`` (the grader reads them)."""
    for dims, s in _zero_init_cases(seed, thorough):
        block = _zero_init_block(dims, s)
        _record(answers, zero_init_branch, block)
        answers[-1]["report"] = {"state": {k: _plain(v) for k, v in block.branch.state_dict().items()}}


# --------------------------------------------------------------------------- Task 3 · how big is each block's change?

def _change_cases(seed, thorough):
    """(width, rows, kinds, scales, torch seed) per case: stacks of the course's residual blocks, drawn from ``seed``.

    Kinds: "residual" (``y = F(x) + x``, F = Linear → ReLU → Linear, its last layer scaled), "zero" (the same with a
    zero branch) and "layer" (the course's :class:`~book.nets.mlp.ResidualLayer`, ``y = x + α·F(x)`` with α the scale,
    whose change is *not* ``block.branch(x)``).
    """
    rng = _rng(0 if seed is None else seed)
    cases = []
    for i in range(3 if thorough else 2):
        kinds = [rng.choice(["residual", "residual", "zero"]) for _ in range(rng.randint(2, 4))]
        kinds.insert(rng.randint(1, len(kinds)), "layer")     # never first, so "every block on x" differs
        scales = [round(rng.uniform(0.2, 0.7) if k == "layer" else rng.uniform(0.3, 2.0), 2) for k in kinds]
        cases.append((rng.randint(4, 12), rng.randint(5, 16), kinds, scales, _seeded(0 if seed is None else seed, i)))
    return cases


def _change_stack(width, rows, kinds, scales, s):
    """One case's stack (an ``nn.Sequential`` of its blocks) and its input x, drawn from ``s``."""
    import torch
    from torch import nn

    from ...nets.mlp import ResidualLayer

    torch.manual_seed(s)
    blocks = []
    for kind, scale in zip(kinds, scales):
        if kind == "layer":
            blocks.append(ResidualLayer(width, branch_scale=scale))
            continue
        block = _drawn_block((width, 2 * width))
        with torch.no_grad():
            last = block.branch[-1]
            last.weight.mul_(0.0 if kind == "zero" else scale)
            last.bias.mul_(0.0 if kind == "zero" else scale)
        blocks.append(block)
    gen = torch.Generator().manual_seed(s)
    x = torch.randn(rows, width, generator=gen) * (0.5 + torch.rand(rows, 1, generator=gen))
    return nn.Sequential(*blocks), x


def block_changes_cases(seed: int | None, thorough: bool):
    """``(blocks, x)``: stacks of 3 to 5 blocks with their inputs, two cases (three when thorough)."""
    for width, rows, kinds, scales, s in _change_cases(seed, thorough):
        yield _change_stack(width, rows, kinds, scales, s)


ANSWERS = {
    "check_residual": _answer_residual,
    "check_zero_init_branch": _answer_zero_init,
    "check_block_changes": answers_on(block_changes_cases),
}
