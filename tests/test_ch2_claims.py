"""Chapter 2's claims, each over CLAIM_SEEDS, at the chapter's own settings (the specs it imports)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from book.ch2_learn_the_change import FIT_VARIANTS, IdentityFit, InsertBlocks, identity_fit, insert_blocks
from book.training import CLAIM_SEEDS
from book.nets.mlp import ResidualLayer
from book.nets.conv1d import BasicBlock1d, PlainBlock1d

assert len(CLAIM_SEEDS) >= 3


def test_the_shortcut_costs_no_parameters():
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(BasicBlock1d(16, 16)) == count(PlainBlock1d(16, 16))
    assert count(BasicBlock1d(8, 16, stride=2)) == count(PlainBlock1d(8, 16, stride=2))


def test_a_zero_branch_is_an_exact_no_op():
    torch.manual_seed(0)
    layer = ResidualLayer(width=8)
    layer.zero_init_last()
    x = torch.randn(4, 8)
    assert torch.equal(layer(x), x)


@pytest.mark.parametrize("seed", CLAIM_SEEDS)
def test_plain_stacks_fit_the_identity_worse_than_the_residual_stack(seed):
    def final(name):
        return identity_fit(IdentityFit(seed=seed, **FIT_VARIANTS[name]), progress=False)["error"][-1]

    plain_default, plain_ortho = final("plain, PyTorch default init"), final("plain, orthogonal init")
    residual = final("residual, PyTorch default init")
    assert plain_default > 0.95                   # no better than predicting the mean
    assert plain_ortho < plain_default - 0.05     # a sensible init gets the plain stack moving ...
    assert plain_ortho > 0.6                      # ... but not far
    assert residual < plain_ortho / 2.5           # the residual stack fits it several times better


@pytest.mark.parametrize("seed", CLAIM_SEEDS)
def test_a_zero_branch_residual_stack_is_the_identity_at_step_zero(seed):
    errors = identity_fit(IdentityFit(seed=seed, **FIT_VARIANTS["residual, zero branches"]), progress=False)["error"]
    assert errors[0] == 0.0                       # exactly: no rounding, no training
    assert max(errors) < 1e-6


@pytest.mark.parametrize("seed", CLAIM_SEEDS)
def test_zero_initialised_blocks_leave_a_trained_resnet_exactly_unchanged(seed):
    grown = insert_blocks(InsertBlocks(seed=seed), progress=False)
    assert not grown["diverged"]
    assert grown["blocks_added"] == 3
    assert grown["max_logit_change_zero"] == 0.0
    assert grown["max_logit_change_zero_train_mode"] == 0.0
    assert grown["test_error_zero_grown"] == grown["test_error_base"]
    assert grown["test_error_base"] < 0.3                       # the base network did learn
    assert grown["test_error_plain_grown"] > grown["test_error_base"] + 0.3   # plain blocks wreck it
    # (c) as the chapter reports: at this scale the trained branches are not small nudges
    assert np.median(grown["ratios_trained"]) > 0.25
