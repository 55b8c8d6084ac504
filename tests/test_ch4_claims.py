"""Chapter 4's claims at the chapter's own settings, over several seeds."""

from __future__ import annotations

import pytest

from book.numerics import pinned
import torch

from book.nets.resnets import cifar_resnet
from book.ch4_building_resnets import SCALED_SHORTCUT
from book.trained_nets import STUDY_DEPTH, TrainedNet, trained_net
from book.training import CLAIM_SEEDS


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


# --------------------------------------------------------------------------- good data: the recorded noisy-label runs

import json  # noqa: E402

from book.ch4_building_resnets import (NOISE, NOISE_SEEDS, RECORDED_NOISE, noisy_label_problems,  # noqa: E402
                                       recorded_noisy_labels)


@pytest.mark.skipif(not pinned(), reason="native kernels (RESIDUAL_COURSE_NATIVE_KERNELS=1): recordings are bit-exact only on the pinned path")
def test_the_recorded_noisy_label_runs_still_match_the_code():
    record = json.loads(RECORDED_NOISE.read_text())
    assert record["provenance"]["seeds"] == list(NOISE_SEEDS) and record["provenance"]["noise"] == NOISE
    assert noisy_label_problems(record) == []
    tampered = json.loads(json.dumps(record))
    tampered["runs"][0]["train_error"][1] += 0.05
    assert any("epoch 2" in p for p in noisy_label_problems(tampered, cases=1))


@pytest.mark.parametrize("seed", NOISE_SEEDS)
def test_residual_nets_memorize_random_labels_more_readily_and_both_pay_on_clean_test_data(seed):
    runs = recorded_noisy_labels()["runs"]
    assert runs[(True, NOISE, seed)]["memorized"] > 2 * runs[(False, NOISE, seed)]["memorized"]
    for residual in (False, True):
        assert runs[(residual, NOISE, seed)]["test_error"][-1] > runs[(residual, 0.0, seed)]["test_error"][-1] + 0.05


@pytest.mark.parametrize("seed", NOISE_SEEDS)
def test_with_random_labels_the_residual_nets_best_test_error_is_lower_and_memorizing_then_raises_it(seed):
    # the recorded seeds: best test error ResNet-20 0.125, 0.133, 0.090 against plain-20 0.198, 0.268, 0.115;
    # ResNet-20 then rises by 0.082, 0.048, 0.052 to its final epoch
    runs = recorded_noisy_labels()["runs"]
    res, plain = (runs[(r, NOISE, seed)]["test_error"] for r in (True, False))
    assert min(res) < min(plain) - 0.01, (min(res), min(plain))
    assert res[-1] > min(res) + 0.025, (res[-1], min(res))


# --------------------------------------------------------------------------- which learning rates work (recorded)

from book.ch4_building_resnets import (RECORDED_LR_SWEEP, SWEEP_DEPTHS, SWEEP_LRS, SWEEP_SEEDS,  # noqa: E402
                                       lr_sweep_problems, recorded_lr_sweep)


def _final(runs, depth, residual, lr, seed):
    run = runs[(depth, residual, lr, seed)]
    return 1.0 if run["diverged"] else run["train_error"][-1]


@pytest.mark.skipif(not pinned(), reason="native kernels (RESIDUAL_COURSE_NATIVE_KERNELS=1): recordings are bit-exact only on the pinned path")
def test_the_recorded_lr_sweep_still_matches_the_code():
    record = json.loads(RECORDED_LR_SWEEP.read_text())
    assert len(record["runs"]) == len(SWEEP_DEPTHS) * 2 * len(SWEEP_LRS) * len(SWEEP_SEEDS)
    assert lr_sweep_problems(record) == []


@pytest.mark.parametrize("seed", SWEEP_SEEDS)
def test_no_rate_rescues_plain56_and_resnet56_trains_in_a_band(seed):
    runs = recorded_lr_sweep()["runs"]
    assert all(_final(runs, 56, False, lr, seed) > 0.6 for lr in SWEEP_LRS)       # measured 0.70 at best
    assert _final(runs, 56, True, 0.03, seed) < 0.1 and _final(runs, 56, True, 0.1, seed) < 0.1
    assert _final(runs, 56, True, max(SWEEP_LRS), seed) > 0.5                     # a bad rate still fails a ResNet


@pytest.mark.parametrize("depth", SWEEP_DEPTHS)
def test_below_the_largest_rate_the_residual_net_trains_better_than_the_plain_one(depth):
    """Mean final training error, plain minus residual, at each rate below the largest: measured 0.21-0.38 at 20
    layers and 0.60-0.78 at 56, on this recording (pinned kernels) and on one made on an Intel CPU's native kernels.
    At the largest rate ResNet-56 fails too, and whether it still beats plain-56 there depends on the run
    (0.18 on the Intel recording, 0.08 on this one): the chapter does not claim it."""
    runs = recorded_lr_sweep()["runs"]
    for lr in SWEEP_LRS[:-1] if depth == 56 else SWEEP_LRS:         # ResNet-20 still trains at the largest rate
        plain = sum(_final(runs, depth, False, lr, s) for s in SWEEP_SEEDS) / len(SWEEP_SEEDS)
        residual = sum(_final(runs, depth, True, lr, s) for s in SWEEP_SEEDS) / len(SWEEP_SEEDS)
        assert residual < plain - 0.1, lr


# --------------------------------------------------------------------------- the original block against pre-activation

import math  # noqa: E402

from book.ch4_building_resnets import (PREACT_DEPTHS, PREACT_SEEDS, RECORDED_PREACT, preact_specs,  # noqa: E402
                                       preactivation_problems, recorded_preactivation)
from book.data import load_mnist1d  # noqa: E402
from book.training import seeded  # noqa: E402


@pytest.mark.skipif(not pinned(), reason="native kernels (RESIDUAL_COURSE_NATIVE_KERNELS=1): recordings are bit-exact only on the pinned path")
def test_the_recorded_preactivation_runs_still_match_the_code_and_a_tampered_one_is_caught():
    record = json.loads(RECORDED_PREACT.read_text())
    assert record["provenance"]["seeds"] == list(PREACT_SEEDS) and record["provenance"]["depths"] == list(PREACT_DEPTHS)
    assert len(record["runs"]) == 2 * len(PREACT_DEPTHS) * len(PREACT_SEEDS)
    assert preactivation_problems(record) == []                 # ResNet-110, both blocks, seed 0: the first epoch
    tampered = json.loads(json.dumps(record))
    tampered["runs"][1]["train_loss"][0] *= 1.001
    assert any("epoch 1" in p for p in preactivation_problems(tampered, cases=2))


def test_the_preactivation_block_builds_the_papers_layout():
    original, pre = (spec.build() for spec in preact_specs(110, 0))
    assert sum(p.numel() for p in pre.parameters()) > sum(p.numel() for p in original.parameters())  # the final BN
    block = pre.blocks[1]
    assert [type(m).__name__ for m in block.branch] == ["BatchNorm1d", "ReLU", "Conv1d", "BatchNorm1d", "ReLU", "Conv1d"]
    x = torch.randn(3, 8, 40)
    assert torch.equal(block(x), block.branch(x) + x)                   # nothing after the sum


@pytest.mark.parametrize("seed", PREACT_SEEDS)
def test_at_218_layers_the_preactivation_net_is_ahead_and_the_original_net_is_worse_than_at_110(seed):
    """Final training error (ten epochs, the recording, pinned kernels). At 218 layers, original minus
    pre-activation: measured 0.40-0.65 over seeds 0-4. The original block from 110 to 218 layers: it rises by
    0.12-0.58. (At 110 layers the chapter claims no winner: see the next test.)"""
    runs = recorded_preactivation()["runs"]
    final = {(d, pre): runs[(d, pre, seed)]["train_error"][-1] for d in PREACT_DEPTHS for pre in (False, True)}
    assert final[(218, False)] - final[(218, True)] > 0.25, final
    assert final[(218, False)] - final[(110, False)] > 0.06, final


def test_at_110_layers_the_seeds_disagree_as_the_chapter_says():
    """The chapter reports 110 layers as unsettled: the pre-activation net ahead on most seeds (by 0.10-0.33) and
    behind on at least one (seed 3: 0.43 against 0.12, stalled from the fourth epoch). A recording where one block
    won on every seed would make that sentence wrong."""
    runs = recorded_preactivation()["runs"]
    gaps = [runs[(110, False, s)]["train_error"][-1] - runs[(110, True, s)]["train_error"][-1] for s in PREACT_SEEDS]
    assert sum(g > 0 for g in gaps) >= 3 and min(gaps) < -0.1, gaps


def test_the_original_nets_start_far_above_chance_and_the_preactivation_nets_at_it():
    """The loss before any step on 256 training sequences, 110 and 218 layers, seeds 0-4: the original nets'
    unnormalized stream makes them start above chance (measured 2.79-5.56, each 0.49-3.24 above its pre-activation
    twin), the pre-activation nets at ln 10 (2.30-2.37)."""
    data = load_mnist1d()
    for depth in PREACT_DEPTHS:
        for seed in PREACT_SEEDS:
            losses = []
            for spec in preact_specs(depth, seed):
                with seeded(seed):
                    model = spec.build()
                with torch.no_grad():
                    losses.append(torch.nn.functional.cross_entropy(model(data.x_train[:256]), data.y_train[:256]).item())
            original, pre = losses
            assert abs(pre - math.log(10)) < 0.15 and original > pre + 0.25, (depth, seed, losses)


# --------------------------------------------------------------------------- the control: the ending without the blocks

from book.ch4_building_resnets import (FINAL_NORM_DEPTH, RECORDED_FINAL_NORM, final_norm_problems,  # noqa: E402
                                       final_norm_spec, recorded_final_norm)
from book.errors import ConfigError  # noqa: E402
from book.nets.conv1d import ConvNet1d, ConvNetConfig, resnet  # noqa: E402


@pytest.mark.skipif(not pinned(), reason="native kernels (RESIDUAL_COURSE_NATIVE_KERNELS=1): recordings are bit-exact only on the pinned path")
def test_the_recorded_control_runs_still_match_the_code_and_a_tampered_one_is_caught():
    record = json.loads(RECORDED_FINAL_NORM.read_text())
    assert record["provenance"]["seeds"] == list(PREACT_SEEDS) and record["provenance"]["threads"] == 1
    assert [r["seed"] for r in record["runs"]] == list(PREACT_SEEDS)
    assert final_norm_problems(record) == []                     # seed 0: the first epoch
    tampered = json.loads(json.dumps(record))
    tampered["runs"][0]["train_loss"][0] *= 1.001
    assert any("epoch 1" in p for p in final_norm_problems(tampered))
    stale = json.loads(json.dumps(record))
    stale["provenance"]["depth"], stale["runs"] = 110, []
    assert any("record it again" in p for p in final_norm_problems(stale))


def test_the_control_is_the_original_net_with_the_preactivation_nets_ending_and_nothing_else():
    original, pre = preact_specs(FINAL_NORM_DEPTH, 0)
    with seeded(0):
        a = original.build()
    with seeded(0):
        c = final_norm_spec(0).build()
    with seeded(0):
        p = pre.build()
    assert [type(m) for m in c.blocks] == [type(m) for m in a.blocks]          # the original blocks
    assert all(torch.equal(x, y) for x, y in zip(a.blocks.state_dict().values(), c.blocks.state_dict().values()))
    assert repr(c.final) == repr(p.final)                                       # BN → ReLU before the pool
    with pytest.raises(ConfigError, match="final_norm"):
        resnet(20, preactivation=True, final_norm=True)
    with pytest.raises(ConfigError, match="final_norm"):
        ConvNet1d(ConvNetConfig(depth=20, residual=False, final_norm=True))


@pytest.mark.parametrize("seed", PREACT_SEEDS)
def test_with_the_preactivation_nets_ending_the_original_block_catches_up_at_218_layers(seed):
    """Final training error at 218 layers (ten epochs, the recordings). Original minus control: measured 0.43-0.64
    over seeds 0-4. Control minus pre-activation: -0.045 to +0.11, never more than 0.26 of the first."""
    runs, control = recorded_preactivation()["runs"], recorded_final_norm()["runs"][seed]
    original, pre = (runs[(FINAL_NORM_DEPTH, p, seed)]["train_error"][-1] for p in (False, True))
    ahead = original - control["train_error"][-1]
    assert ahead > 0.3, (original, control["train_error"][-1])
    assert abs(control["train_error"][-1] - pre) < 0.5 * ahead, (control["train_error"][-1], pre)


def test_the_control_and_the_preactivation_net_have_no_consistent_order():
    """The chapter says neither is ahead on every seed (measured: the control ahead on 3 of 5, behind on 2)."""
    runs, control = recorded_preactivation()["runs"], recorded_final_norm()["runs"]
    gaps = [control[s]["train_error"][-1] - runs[(FINAL_NORM_DEPTH, True, s)]["train_error"][-1] for s in PREACT_SEEDS]
    assert min(gaps) < 0 < max(gaps), gaps


def test_the_control_starts_at_chance():
    """Loss before any step, 256 training sequences: measured 2.30-2.35 over seeds 0-4 (the original net: 3.87-5.56)."""
    data = load_mnist1d()
    for seed in PREACT_SEEDS:
        with seeded(seed):
            model = final_norm_spec(seed).build()
        with torch.no_grad():
            loss = torch.nn.functional.cross_entropy(model(data.x_train[:256]), data.y_train[:256]).item()
        assert abs(loss - math.log(10)) < 0.15, (seed, loss)
