"""A synthetic sequence task, generated in-process: sort a short list of numbers.

Each example is ``a_1 … a_n | s_1 … s_n`` where the ``a_i`` are random tokens
from ``0 … n_symbols-1``, ``|`` is a separator token and ``s_1 ≤ … ≤ s_n`` is the
same list sorted. A decoder-only transformer reads the sequence left to right
and predicts the next token; the loss counts only the sorted half (the first
half is random and cannot be predicted). Solving the task needs attention: to
write ``s_k`` the model must look back over the whole unsorted list.

Guessing uniformly costs ``ln(n_symbols)`` nats per token; a model that has
learned the task drives the loss towards 0. Nothing is downloaded and batches
are drawn from a seeded generator, so every run is reproducible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .errors import validate_whole_number

__all__ = ["SortTask", "Batch", "masked_cross_entropy"]


@dataclass(frozen=True)
class Batch:
    """Inputs ``(B, T)``, next-token targets ``(B, T)`` and a mask ``(B, T)`` of the positions that count."""

    inputs: torch.Tensor
    targets: torch.Tensor
    mask: torch.Tensor


@dataclass(frozen=True)
class SortTask:
    """Sort ``length`` tokens drawn from ``n_symbols`` symbols."""

    length: int = 8        # numbers to sort
    n_symbols: int = 16    # distinct numbers (tokens 0 … n_symbols-1); the separator is token n_symbols

    def __post_init__(self):
        for name in ("length", "n_symbols"):
            validate_whole_number(name, getattr(self, name), minimum=2)

    @property
    def vocab_size(self) -> int:
        return self.n_symbols + 1  # the symbols and the separator

    @property
    def separator(self) -> int:
        return self.n_symbols

    @property
    def block_size(self) -> int:
        return 2 * self.length  # the model reads all but the last token of 2·length + 1

    @property
    def chance_loss(self) -> float:
        """Cross-entropy of a uniform guess over the symbols: ``ln(n_symbols)`` nats."""
        return math.log(self.n_symbols)

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        """A batch of ``batch_size`` fresh examples."""
        numbers = torch.randint(0, self.n_symbols, (batch_size, self.length), generator=generator)
        separator = torch.full((batch_size, 1), self.separator)
        sequence = torch.cat([numbers, separator, numbers.sort(dim=1).values], dim=1)  # (B, 2n+1)
        inputs, targets = sequence[:, :-1], sequence[:, 1:]
        mask = torch.zeros_like(targets, dtype=torch.bool)
        mask[:, self.length:] = True  # the positions whose next token is s_1 … s_n
        return Batch(inputs, targets, mask)

    def fixed_batch(self, batch_size: int, seed: int) -> Batch:
        """A reproducible batch (for evaluation or a probe at initialization)."""
        return self.sample(batch_size, torch.Generator().manual_seed(seed))


def masked_cross_entropy(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Mean next-token cross-entropy over the positions ``batch.mask`` selects."""
    return torch.nn.functional.cross_entropy(logits[batch.mask], batch.targets[batch.mask])

