"""Chapter 4's claims at the chapter's own settings, over several seeds."""

from __future__ import annotations

import pytest
import torch

from book.nets.resnets import cifar_resnet
from book.ch4_building_resnets import BAD_LR, CLAIM_SEEDS, SCALED_SHORTCUT, STUDY_DEPTH, TrainedNet, trained_net


def _train_error(**kwargs) -> float:
    _, result = trained_net(TrainedNet(depth=STUDY_DEPTH, residual=True, **kwargs), progress=False)
    return 1.0 if result.diverged else result.final_train_error


@pytest.mark.parametrize("seed", CLAIM_SEEDS)
def test_scaled_shortcut_trains_worse_than_the_identity(seed):
    identity = _train_error(seed=seed)
    scaled = _train_error(seed=seed, shortcut_scale=SCALED_SHORTCUT)
    assert scaled > identity, (scaled, identity)


def test_scaled_shortcut_is_worse_on_average():
    identity = sum(_train_error(seed=s) for s in CLAIM_SEEDS) / len(CLAIM_SEEDS)
    scaled = sum(_train_error(seed=s, shortcut_scale=SCALED_SHORTCUT) for s in CLAIM_SEEDS) / len(CLAIM_SEEDS)
    assert scaled > 2 * identity, (scaled, identity)


@pytest.mark.parametrize("seed", CLAIM_SEEDS)
def test_a_residual_net_with_a_bad_learning_rate_still_fails(seed):
    good = _train_error(seed=seed)
    bad = _train_error(seed=seed, lr=BAD_LR)
    assert bad > 0.25 and bad > 5 * good, (bad, good)


def test_zero_init_starts_the_cifar_net_as_its_stem_and_head():
    # With every branch at zero, each block passes its input through unchanged
    # (option A pads zeros), so the net computes head(pool(pad(stem(x)))).
    torch.manual_seed(0)
    model = cifar_resnet(20, zero_init_residual=True).eval()
    x = torch.randn(2, 3, 32, 32)
    h = model.stem(x)
    for block in model.blocks:
        h = block.shortcut(h)
    assert torch.allclose(model(x), model.head(h.mean(dim=(2, 3))), atol=1e-6)
