"""Chapter 1's claims, at the chapter's own settings (book.ch1_degradation.DepthRun), over three seeds."""

import statistics

import pytest

from book.ch1_degradation import DepthRun, run_depth
from conftest import record_margins

SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def runs():
    return {(depth, residual, seed): run_depth(DepthRun(depth=depth, residual=residual, seed=seed), progress=False)
            for depth, residual in ((20, False), (56, False), (56, True)) for seed in SEEDS}


def test_plain56_trains_worse_than_plain20_for_every_seed(runs):
    gaps = [runs[(56, False, s)].final_train_error - runs[(20, False, s)].final_train_error for s in SEEDS]
    record_margins("ch1: plain-56 minus plain-20 final training error", per_seed=gaps, mean=statistics.mean(gaps))
    assert all(not runs[k].diverged for k in runs)
    assert min(gaps) > 0.05, f"plain-56 should end with a clearly higher training error than plain-20: gaps {gaps}"


def test_resnet56_trains_better_than_plain56_for_every_seed(runs):
    gaps = [runs[(56, False, s)].final_train_error - runs[(56, True, s)].final_train_error for s in SEEDS]
    record_margins("ch1: plain-56 minus ResNet-56 final training error", per_seed=gaps, mean=statistics.mean(gaps))
    assert min(gaps) > 0.2, f"ResNet-56 should end with a far lower training error than plain-56: gaps {gaps}"


def test_the_deeper_plain_net_is_not_overfitting(runs):
    # Its error is high on the training set itself, and the test error is not far below or above it.
    for s in SEEDS:
        r = runs[(56, False, s)]
        assert r.final_train_error > runs[(20, False, s)].final_train_error
        assert abs(r.final_test_error - r.final_train_error) < 0.1
