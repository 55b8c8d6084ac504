"""Exercise 7's cases, drawn from a seed: the matrices that ``sinkhorn`` and ``composite_gain`` are called on, and the
small hyper-connected nets that ``trained_gain`` trains."""

from __future__ import annotations

import math

from ..feedback import _rng
from ..protocol import answers_on

SELF_CHECKS = ("check_sinkhorn", "check_composite_gain", "check_trained_gain")


def _positive_matrix(rng, n: int):
    """An n × n matrix of positive entries spread over e^±1.5: far from doubly stochastic, so iterations show."""
    import torch

    return torch.tensor([[math.exp(rng.gauss(0.0, 0.75)) for _ in range(n)] for _ in range(n)], dtype=torch.float64)


def sinkhorn_cases(seed: int, thorough: bool):
    """``(M, iters)``: a 3 × 3 to 5 × 5 positive matrix and 2 to 4 iterations, two cases (three when thorough)."""
    rng = _rng(seed)
    for _ in range(3 if thorough else 2):
        n, iterations = rng.randint(3, 5), rng.choice([2, 3, 4])
        yield _positive_matrix(rng, n), iterations


def _mixing_matrices(rng, n: int, depth: int):
    """``depth`` signed n × n matrices I + s·G (float32, as the learner's experiment makes them)."""
    import torch

    s = rng.uniform(0.25, 0.6)
    return [torch.tensor([[(1.0 if i == j else 0.0) + s * rng.gauss(0.0, 1.0) for j in range(n)] for i in range(n)],
                         dtype=torch.float32) for _ in range(depth)]


def composite_gain_cases(seed: int, thorough: bool):
    """``(mixings,)``: one matrix first, then 2 to 6 of them, of size 2 × 2 to 5 × 5; three cases (four when thorough)."""
    rng = _rng(seed)
    for case in range(4 if thorough else 3):
        n, depth = rng.randint(2, 5), (1 if case == 0 else rng.randint(2, 6))
        yield (_mixing_matrices(rng, n, depth),)


def trained_gain_cases(seed: int, thorough: bool):
    """``(depth, constrained, seed)``: nets of 2 or 3 blocks (a second each), unconstrained and mHC, seeds drawn."""
    rng = _rng(seed)
    for constrained in ((False, True, False) if thorough else (False, True)):
        yield rng.choice([2, 3]), constrained, rng.randrange(1000)


ANSWERS = {
    "check_sinkhorn": answers_on(sinkhorn_cases),
    "check_composite_gain": answers_on(composite_gain_cases),
    "check_trained_gain": answers_on(trained_gain_cases),
}
