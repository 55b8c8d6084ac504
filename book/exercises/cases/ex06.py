"""Exercise 6's cases, drawn from a seed: the small untrained transformers, batches and learning rates
``output_change`` is called on."""

from __future__ import annotations

import copy

from ..feedback import _rng
from ..protocol import answers_on

SELF_CHECKS = ("check_output_change",)


# --------------------------------------------------------------------------- Task 1 · how far one update moves the output

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
    "check_output_change": answers_on(output_change_cases),
}
