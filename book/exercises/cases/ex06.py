"""Exercise 6's cases, drawn from a seed: the sublayers, LayerNorm parameters and inputs the two blocks are built and
called with (with the sandbox's answer of Task 1: what the learner's block returned on them), and the small untrained
transformers, batches and learning rates ``output_change`` is called on."""

from __future__ import annotations

import copy

from ..feedback import _rng
from ..protocol import _record, _seeded, answers_on

SELF_CHECKS = ("check_pre_norm_block", "check_post_norm_block", "check_norm_blocks", "check_output_change")


# --------------------------------------------------------------------------- Task 1 · pre-norm and post-norm blocks

def _stream_cases(seed, thorough):
    """``(d_model, seed)``: one block (two when thorough)."""
    rng = _rng(seed)
    return [(rng.choice([8, 12, 16, 24]), _seeded(seed, i)) for i in range(2 if thorough else 1)]


def _stream_inputs(d_model, s):
    """The sublayer a block is given, the γ and β its LayerNorm is set to, and the stream ``x`` it is called on."""
    import torch
    from torch import nn

    torch.manual_seed(s)
    sublayer = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))
    g = torch.Generator().manual_seed(s)
    gamma = torch.rand(d_model, generator=g) + 0.5
    beta = torch.rand(d_model, generator=g) - 0.5
    x = 3 * torch.randn(2, 5, d_model, generator=g) + 1
    return sublayer, gamma, beta, x


def _answer_stream(cls, seed, thorough, answers):
    """The learner's block on each case: what it is, its LayerNorm's eps and its output; the grader recomputes the
    candidate placements of the norm from the case's own sublayer and judges."""
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
        answers[-1]["report"] = {"input_changed": not torch.equal(x, before)}


# --------------------------------------------------------------------------- Task 2 · how far one update moves the output

def _update_case(rng):
    """One small untrained transformer, a batch of the sort task and a learning rate, drawn from ``rng``."""
    return (rng.choice(["post-ln", "pre-ln", "deepnorm"]), rng.randint(1, 3), rng.choice([4, 8]),
            rng.randint(0, 10**6), rng.randint(0, 10**6), rng.choice([1e-4, 3e-4, 1e-3]))


def _update_model(norm: str, n_layer: int, model_seed: int):
    import torch

    from ...ch6_residual_stream import TASK
    from ...nets.transformer import Transformer, TransformerConfig

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(model_seed)
        return Transformer(TransformerConfig(vocab_size=TASK.vocab_size, block_size=TASK.block_size,
                                             n_layer=n_layer, n_head=2, n_embd=16, norm=norm))


def update_cases(seed: int, thorough: bool):
    """Per case: ``(norm, n_layer, base, (model, batch, lr))``, two cases (three when thorough).

    ``base`` is the untrained model, for the check's own use; ``model`` is a copy of it, the one ``output_change`` is
    given (it changes its weights).
    """
    from ...ch6_residual_stream import TASK

    rng = _rng(seed)
    for _ in range(3 if thorough else 2):
        norm, n_layer, batch_size, batch_seed, model_seed, lr = _update_case(rng)
        base = _update_model(norm, n_layer, model_seed)
        batch = TASK.fixed_batch(batch_size, seed=batch_seed)
        yield norm, n_layer, base, (copy.deepcopy(base), batch, lr)


def output_change_cases(seed: int, thorough: bool):
    """``(model, batch, lr)``: the call of each case of :func:`update_cases`."""
    for *_, args in update_cases(seed, thorough):
        yield args


ANSWERS = {
    "check_pre_norm_block": _answer_stream,
    "check_post_norm_block": _answer_stream,
    "check_output_change": answers_on(output_change_cases),
}
