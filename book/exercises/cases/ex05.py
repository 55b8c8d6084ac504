"""Exercise 5's cases, drawn from a seed: the ``(n, k)`` that ``count_paths`` is called on, the linear branches and
inputs of ``unrolled_output``, and the small trained nets whose blocks ``swapped_error`` swaps."""

from __future__ import annotations

import copy

from ..feedback import _rng
from ..protocol import answers_on
from .ex04 import _tiny_data

SELF_CHECKS = ("check_count_paths", "check_unrolled_output", "check_swapped_error")


# --------------------------------------------------------------------------- Task 1 · count the paths

def count_paths_cases(seed: int | None, thorough: bool):
    """``(n, k)``: small and large nets, paths of every length (ten cases when thorough); with a seed, three nets of
    2 to 150 blocks with k = 0, some k between and k = n, and one k larger than n."""
    cases = [(3, 0), (3, 1), (3, 2), (3, 3), (10, 4), (54, 27)]
    if thorough:
        cases += [(1, 0), (1, 1), (5, 6), (110, 55)]
    if seed is not None:
        rng = _rng(seed)
        cases = [(n, k) for n in (rng.randint(2, 9), rng.randint(10, 40), rng.randint(41, 150))
                 for k in (0, rng.randint(1, n - 1), n)] + [(rng.randint(1, 9), 10)]
    yield from cases


# --------------------------------------------------------------------------- Task 2 · the network as a sum of paths

def unrolled_output_cases(seed: int | None, thorough: bool):
    """``(branches, x)``: n bias-free 5 × 5 linear branches (n = 3, and 4 when thorough; with a seed, two nets of 2 to 5
    branches) and an input of shape (2, 5). The learner's random state is left alone."""
    import torch

    ns = [3, 4] if thorough else [3]
    if seed is not None:
        rng = _rng(seed)
        ns = [rng.randint(2, 5) for _ in range(2)]
    for i, n in enumerate(ns):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(n if seed is None else seed % 2**31 + i)
            branches = [torch.nn.Linear(5, 5, bias=False).requires_grad_(False) for _ in range(n)]
            x = torch.randn(2, 5)
        yield branches, x


# --------------------------------------------------------------------------- Task 3 · reordering blocks

# Neighbouring blocks of a 20-layer net (three stages of three blocks; blocks 3 and 6 halve the length and widen
# the channels) that have the same input and output shapes, so that they can trade places.
SWAP_PAIRS = ((0, 1), (1, 2), (4, 5), (7, 8))


def _swap_setup(residual: bool, seed: int):
    """A small 20-layer net trained for two short epochs on a stand-in for MNIST-1D, and 2000 test examples.

    Trained, not random: a random net predicts nearly one class whatever its blocks, so that every variant of a
    swap would score the same error. Training runs on one thread (``book.training.train``): the same bits in
    the learner's sandbox and in the grader.
    """
    import torch

    from ...nets.conv1d import conv_net
    from ...training import TrainConfig, train

    data = _tiny_data(seed, n_train=768, n_test=2000)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = conv_net(20, residual, widths=(4, 8, 16))
        train(model, data, TrainConfig(epochs=2, lr=0.1, milestones=()), seed=seed, progress=False)
    return model.eval(), data.x_test, data.y_test


def _swap_cases(seed: int, thorough: bool):
    """``(residual, seed, [pairs swapped one after the other on the same net], whether the net comes in training mode)``."""
    rng = _rng(seed)
    first, second = rng.sample(list(SWAP_PAIRS), 2)
    cases = [(True, rng.randint(0, 10**6), [first, second], False),
             (False, rng.randint(0, 10**6), [rng.choice(SWAP_PAIRS)], True)]
    if thorough:
        i = rng.choice([0, 4, 7])
        cases.append((True, rng.randint(0, 10**6), [(i, i + 1 if i else 2)], True))
    return cases


def swap_nets(seed: int, thorough: bool):
    """Per case of :func:`_swap_cases`: ``(residual, train_mode, original, calls)``.

    ``original`` is the trained net, for the check's own use (the learner's function may change the net it is given);
    ``calls`` holds the argument tuples ``(model, i, j, x, y)`` of the case's calls, one per pair, all on the same
    copy of ``original`` in the case's mode.
    """
    for residual, net_seed, pairs, train_mode in _swap_cases(seed, thorough):
        original, x, y = _swap_setup(residual, net_seed)
        model = copy.deepcopy(original).train(train_mode)
        yield residual, train_mode, original, [(model, i, j, x, y) for i, j in pairs]


def swapped_error_cases(seed: int, thorough: bool):
    """``(model, i, j, x, y)``: every call of :func:`swap_nets`, in order."""
    for *_, calls in swap_nets(seed, thorough):
        yield from calls


ANSWERS = {
    "check_count_paths": answers_on(count_paths_cases),
    "check_unrolled_output": answers_on(unrolled_output_cases),
    "check_swapped_error": answers_on(swapped_error_cases),
}
