"""Chapter 1's claims, at the chapter's own settings (book.trained_nets.DepthRun), over three seeds."""

import statistics

import pytest

from book.numerics import pinned

from book.trained_nets import DepthRun, run_depth
from book.training import CLAIM_SEEDS
from conftest import record_margins



@pytest.fixture(scope="module")
def runs():
    return {(depth, residual, seed): run_depth(DepthRun(depth=depth, residual=residual, seed=seed), progress=False)
            for depth, residual in ((20, False), (56, False), (56, True)) for seed in CLAIM_SEEDS}


def test_plain56_trains_worse_than_plain20_for_every_seed(runs):
    gaps = [runs[(56, False, s)].final_train_error - runs[(20, False, s)].final_train_error for s in CLAIM_SEEDS]
    record_margins("ch1: plain-56 minus plain-20 final training error", per_seed=gaps, mean=statistics.mean(gaps))
    assert all(not runs[k].diverged for k in runs)
    assert min(gaps) > 0.05, f"plain-56 should end with a clearly higher training error than plain-20: gaps {gaps}"


def test_resnet56_trains_better_than_plain56_for_every_seed(runs):
    gaps = [runs[(56, False, s)].final_train_error - runs[(56, True, s)].final_train_error for s in CLAIM_SEEDS]
    record_margins("ch1: plain-56 minus ResNet-56 final training error", per_seed=gaps, mean=statistics.mean(gaps))
    assert min(gaps) > 0.2, f"ResNet-56 should end with a far lower training error than plain-56: gaps {gaps}"


def test_the_deeper_plain_net_is_not_overfitting(runs):
    # Its error is high on the training set itself, and the test error is not far below or above it.
    for s in CLAIM_SEEDS:
        r = runs[(56, False, s)]
        assert r.final_train_error > runs[(20, False, s)].final_train_error
        assert abs(r.final_test_error - r.final_train_error) < 0.1


# --------------------------------------------------------------------------- "is it just slower?": the recorded long runs

import json  # noqa: E402

from book.ch1_degradation import (LONG_EPOCHS, LONG_NETS, LONG_SEEDS, RECORDED_LONG, long_run_problems,  # noqa: E402
                                  recorded_long)


@pytest.mark.skipif(not pinned(), reason="native kernels (RESIDUAL_COURSE_NATIVE_KERNELS=1): recordings are bit-exact only on the pinned path")
def test_the_recorded_long_runs_still_match_the_code():
    record = json.loads(RECORDED_LONG.read_text())
    assert record["provenance"]["seeds"] == list(LONG_SEEDS)
    assert [tuple(n) for n in record["provenance"]["nets"]] == list(LONG_NETS)
    assert all(len(r["train_error"]) == LONG_EPOCHS for r in record["runs"])
    assert long_run_problems(record) == []


def test_the_prefix_check_catches_a_tampered_or_stale_long_run():
    record = json.loads(RECORDED_LONG.read_text())
    tampered = json.loads(json.dumps(record))
    tampered["runs"][0]["train_error"][0] += 0.05                 # one hand-edited number
    assert any("epoch 1" in p for p in long_run_problems(tampered, cases=1))
    stale = json.loads(json.dumps(record))
    stale["provenance"]["spec"]["width"] = 16
    assert any("record it again" in p for p in long_run_problems(stale, cases=0))


@pytest.mark.parametrize("seed", LONG_SEEDS)
def test_plain56_is_not_just_slower(seed):
    runs = recorded_long()["runs"]
    plain20, plain56 = runs[(20, False, seed)], runs[(56, False, seed)]
    res20, res56 = runs[(20, True, seed)], runs[(56, True, seed)]
    assert plain56.final_train_error > plain20.final_train_error + 0.1     # four times the training: still worse
    quarter = plain56.train_error[-LONG_EPOCHS // 4]
    assert quarter - plain56.final_train_error < 0.05                         # and its curve has flattened
    assert res56.final_train_error < plain20.final_train_error                # the residual nets end below both
    assert res20.final_train_error < plain20.final_train_error


# --------------------------------------------------------------------------- slowness against degradation

@pytest.mark.parametrize("seed", LONG_SEEDS)
def test_plain8_against_plain20_is_slowness_plain20_against_plain56_is_degradation(seed):
    runs = recorded_long()["runs"]
    plain20, plain56 = runs[(20, False, seed)], runs[(56, False, seed)]
    plain8 = run_depth(DepthRun(depth=8, residual=False, seed=seed), progress=False)
    # four times the epochs take plain-20 below what plain-8 reached in the chapter's ten
    record_margins("ch1: plain-8 (10 epochs) minus plain-20 (long run) training error", per_seed=[
        plain8.final_train_error - plain20.final_train_error])
    assert plain20.final_train_error < plain8.final_train_error - 0.01     # measured margins 0.028 to 0.074
    # plain-56 after the whole long run stays far behind plain-20 after ten epochs
    assert plain56.final_train_error - plain20.train_error[9] > 0.3
    # the constant-rate half of the run (epochs 10 to 20, full rate): plain-56 is still improving, and far behind
    assert plain56.train_error[9] - plain56.train_error[LONG_EPOCHS // 2 - 1] > 0.02
    assert plain56.train_error[LONG_EPOCHS // 2 - 1] > plain20.train_error[LONG_EPOCHS // 2 - 1] + 0.4


# --------------------------------------------------------------------------- the recorded runs at the paper's widths

from book.ch1_degradation import (PAPER_WIDTH, RECORDED_WIDTH, WIDTH_NETS, recorded_width,  # noqa: E402
                                  width_run_problems)


@pytest.mark.skipif(not pinned(), reason="native kernels (RESIDUAL_COURSE_NATIVE_KERNELS=1): recordings are bit-exact only on the pinned path")
def test_the_recorded_width_runs_still_match_the_code():
    record = json.loads(RECORDED_WIDTH.read_text())
    assert record["provenance"]["seeds"] == list(LONG_SEEDS)
    assert [tuple(n) for n in record["provenance"]["nets"]] == list(WIDTH_NETS)
    assert record["provenance"]["spec"]["width"] == PAPER_WIDTH
    assert width_run_problems(record) == []


def test_the_width_prefix_check_catches_a_tampered_run():
    record = json.loads(RECORDED_WIDTH.read_text())
    record["runs"][0]["train_loss"][0] += 1e-3
    assert width_run_problems(record) != []


@pytest.mark.parametrize("seed", LONG_SEEDS)
def test_at_the_papers_width_plain56_still_degrades(seed):
    wide = recorded_width()["runs"]
    narrow20 = run_depth(DepthRun(depth=20, residual=False, seed=seed), progress=False)
    gap = wide[(56, False, seed)].final_train_error - wide[(20, False, seed)].final_train_error
    record_margins("ch1: paper's width, plain-56 minus plain-20 training error", seed=seed, gap=gap)
    assert gap > 0.4                                                          # measured 0.53 to 0.83
    assert wide[(20, False, seed)].final_train_error < narrow20.final_train_error - 0.05   # wider plain-20 is faster
    assert wide[(56, True, seed)].final_train_error < wide[(56, False, seed)].final_train_error - 0.25  # ≥ 0.33
    assert wide[(20, True, seed)].final_train_error < wide[(20, False, seed)].final_train_error
