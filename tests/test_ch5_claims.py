"""Chapter 5's claims at the chapter's own settings, over several seeds."""

from __future__ import annotations

import math

import pytest
import torch

from book.ch5_unrolled_view import (
    CLAIM_SEEDS, LANDSCAPE_DEPTHS, PATH_SAMPLES, STUDY_DEPTH, LandscapeSpec, TrainedNet, delete_blocks,
    deletable_blocks, gradient_weighted_length, landscape, lesion_single, path_gradient_by_length,
    path_length_distribution, trained_net,
)


def _net(residual: bool, seed: int, depth: int = STUDY_DEPTH):
    return trained_net(TrainedNet(depth=depth, residual=residual, seed=seed), progress=False)[0]


def test_path_lengths_are_binomial():
    for n in (3, 9, 27, 54):
        p = path_length_distribution(n)
        assert math.isclose(sum(p), 1.0) and len(p) == n + 1
        assert math.isclose(sum(k * q for k, q in enumerate(p)), n / 2)


def test_deleting_a_block_keeps_the_other_blocks_weights():
    model = _net(True, CLAIM_SEEDS[0])
    i = deletable_blocks(model)[-1]
    lesioned = delete_blocks(model, [i])
    assert isinstance(lesioned.blocks[i], torch.nn.Identity)
    assert torch.equal(lesioned.head.weight, model.head.weight)
    assert not isinstance(model.blocks[i], torch.nn.Identity)  # the original is untouched


def test_lesion_hurts_the_residual_net_far_less_than_the_plain_net():
    residual = [lesion_single(_net(True, s))["mean_increase"] for s in CLAIM_SEEDS]
    plain = [lesion_single(_net(False, s))["mean_increase"] for s in CLAIM_SEEDS]
    assert all(r < p for r, p in zip(residual, plain)), (residual, plain)
    assert sum(residual) / len(residual) < 0.6 * sum(plain) / len(plain), (residual, plain)


@pytest.mark.parametrize("seed", CLAIM_SEEDS)
def test_short_paths_carry_most_of_the_gradient(seed):
    model = _net(True, seed)
    measured = path_gradient_by_length(model, samples_per_length=PATH_SAMPLES, seed=seed)
    n = len(measured["k"]) - 1
    assert measured["per_path"][-1] < 0.5 * measured["per_path"][0]  # a longer path carries less
    assert gradient_weighted_length(measured) < n / 2                 # shorter than the typical path


def _floor(depth: int, residual: bool, seed: int) -> float:
    surface = landscape(LandscapeSpec(net=TrainedNet(depth=depth, residual=residual, seed=seed)), progress=False)
    c = len(surface["coords"]) // 2
    return surface["loss"][c][c]


def test_landscape_floor_rises_with_depth_for_the_plain_net_only():
    shallow, deep = LANDSCAPE_DEPTHS
    for seed in CLAIM_SEEDS:
        plain_rise = _floor(deep, False, seed) - _floor(shallow, False, seed)
        residual_rise = _floor(deep, True, seed) - _floor(shallow, True, seed)
        assert plain_rise > 0 and plain_rise > residual_rise + 0.1, (seed, plain_rise, residual_rise)
        assert _floor(deep, False, seed) > 2 * _floor(deep, True, seed)


def test_lesion_explorer_draws_and_reports_bad_input():
    from book.ch5_widgets import LesionExplorer, bench_cases

    explorer = LesionExplorer()
    intact = dict(explorer.errors)
    last = explorer.allowed[-1]
    explorer.boxes[last].value = True
    explorer.button.click()
    assert explorer.deleted == [last] and explorer.errors["plain"] > intact["plain"]
    explorer.set_deleted([0, 3])  # block 3 starts a stage: it changes the shape and cannot be deleted
    assert "Cannot delete" in explorer.message.value and explorer.deleted == [last]
    explorer.set_deleted([])
    assert explorer.message.value == "" and explorer.errors == intact
    for name, case in bench_cases():
        case()


# --------------------------------------------------------------------------- stochastic depth

from book.ch5_unrolled_view import StochasticDepthStudy, stochastic_depth_study  # noqa: E402


@pytest.mark.parametrize("seed", CLAIM_SEEDS)
def test_stochastic_depth_makes_single_blocks_less_essential_but_trains_worse_in_ten_epochs(seed):
    sd = stochastic_depth_study(StochasticDepthStudy(seed=seed), progress=False)
    standard, stochastic = sd["standard"], sd["stochastic"]
    assert stochastic["mean_increase"] < 0.85 * standard["mean_increase"]   # measured 0.159 vs 0.281, 0.152 vs 0.196
    assert stochastic["train_error"] > standard["train_error"] + 0.1        # measured 0.23 vs 0.02, 0.27 vs 0.03
