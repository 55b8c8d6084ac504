"""Every claim of chapter 6, at the chapter's own settings, over SEEDS (three seeds).

The settings are imported from book.ch6_residual_stream, the module the
chapter imports them from, so the text and these tests cannot drift apart.
"""

from __future__ import annotations

import pytest
import torch

from book.ch6_residual_stream import (CHAPTER_WARMUP, CLAIM_DEPTH, DEEP_LAYERS, DEEP_LR, PROBE_DEPTHS, SEEDS,
                                          TARGET_LOSS, TASK, InitProbe, TrainSpec, deep_comparison, probe_at_init,
                                          run_training, warmup_comparison)

DEEPEST = max(PROBE_DEPTHS)
SHALLOWEST = min(PROBE_DEPTHS)


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def probe(norm: str, depth: int, seed: int) -> dict:
    return probe_at_init(InitProbe(norm=norm, n_layer=depth, seed=seed))


# --------------------------------------------------------------------------- at initialization

@pytest.mark.parametrize("seed", SEEDS)
def test_post_ln_last_layer_gradient_exceeds_pre_ln(seed):
    post = probe("post-ln", CLAIM_DEPTH, seed)["grad_norms"][-1]
    pre = probe("pre-ln", CLAIM_DEPTH, seed)["grad_norms"][-1]
    assert post > 1.5 * pre


@pytest.mark.parametrize("seed", SEEDS)
def test_the_gap_widens_with_depth_because_pre_ln_shrinks(seed):
    """Pre-LN's last-layer gradient falls with depth; post-LN's does not, so the ratio grows."""
    pre_shallow = probe("pre-ln", SHALLOWEST, seed)["grad_norms"][-1]
    pre_deep = probe("pre-ln", DEEPEST, seed)["grad_norms"][-1]
    assert pre_deep < 0.6 * pre_shallow
    ratio_claim = probe("post-ln", CLAIM_DEPTH, seed)["grad_norms"][-1] / probe("pre-ln", CLAIM_DEPTH, seed)["grad_norms"][-1]
    ratio_deep = probe("post-ln", DEEPEST, seed)["grad_norms"][-1] / pre_deep
    assert ratio_deep > ratio_claim


@pytest.mark.parametrize("seed", SEEDS)
def test_pre_ln_gradients_fall_from_bottom_to_top(seed):
    """The chapter's correction to "even": pre-LN's per-block gradients shrink towards the output."""
    grads = probe("pre-ln", CLAIM_DEPTH, seed)["grad_norms"]
    assert grads[0] > 1.4 * grads[-1]
    grads = probe("pre-ln", DEEPEST, seed)["grad_norms"]
    assert grads[0] > 2 * grads[-1]


@pytest.mark.parametrize("seed", SEEDS)
def test_pre_ln_stream_grows_with_depth(seed):
    rms = probe("pre-ln", DEEPEST, seed)["stream_rms"]
    quarter = len(rms) // 4
    assert rms[0] < rms[quarter] < rms[2 * quarter] < rms[3 * quarter] < rms[-1]
    assert rms[-1] > 3 * rms[0]
    tops = [probe("pre-ln", depth, seed)["stream_rms"][-1] for depth in PROBE_DEPTHS]
    assert tops == sorted(tops)


@pytest.mark.parametrize("seed", SEEDS)
def test_post_ln_stream_stays_unit_size(seed):
    rms = probe("post-ln", DEEPEST, seed)["stream_rms"]
    assert all(abs(r - 1.0) < 0.01 for r in rms[1:])


@pytest.mark.parametrize("seed", SEEDS)
def test_pre_ln_writes_shrink_relative_to_the_stream(seed):
    ratios = probe("pre-ln", DEEPEST, seed)["write_ratio"]
    assert sum(ratios[-4:]) < 0.6 * sum(ratios[:4])
    post = probe("post-ln", DEEPEST, seed)["write_ratio"]
    assert min(post) > max(ratios[-4:])  # every post-LN block rewrites more of its stream than late pre-LN blocks


# --------------------------------------------------------------------------- training

@pytest.mark.parametrize("seed", SEEDS)
def test_warmup_claims(seed):
    runs = warmup_comparison(seed=seed, progress=False)
    pre, post, post_warm = runs["pre-ln, no warm-up"], runs["post-ln, no warm-up"], runs["post-ln, warm-up"]
    assert pre.reached(TARGET_LOSS), pre
    assert not post.reached(TARGET_LOSS)
    assert post_warm.reached(TARGET_LOSS), post_warm
    # without warm-up post-LN ends no better than a uniform guess over the symbols (within 10 %)
    assert post.diverged or post.eval_loss > 0.9 * TASK.chance_loss
    assert CHAPTER_WARMUP > 0


@pytest.mark.parametrize("seed", SEEDS)
def test_deep_post_ln_fails_where_deepnorm_and_rezero_train(seed):
    shallow_post = run_training(TrainSpec(norm="post-ln", lr=DEEP_LR, seed=seed), progress=False)
    assert shallow_post.reached(TARGET_LOSS)  # the learning rate is fine for a shallow post-LN stack ...
    deep = deep_comparison(seed=seed, progress=False)
    assert not deep["post-ln"].reached(TARGET_LOSS)  # ... but not for DEEP_LAYERS blocks
    assert deep["deepnorm"].reached(TARGET_LOSS)
    assert deep["rezero"].reached(TARGET_LOSS)
    assert DEEP_LAYERS >= 2 * CLAIM_DEPTH


@pytest.mark.parametrize("seed", SEEDS)
def test_deepnorm_and_rezero_blocks_write_little_at_init(seed):
    post = sum(probe("post-ln", DEEP_LAYERS, seed)["write_ratio"]) / DEEP_LAYERS
    deepnorm = sum(probe("deepnorm", DEEP_LAYERS, seed)["write_ratio"]) / DEEP_LAYERS
    assert deepnorm < 0.5 * post
    assert probe("rezero", DEEP_LAYERS, seed)["write_ratio"] == [0.0] * DEEP_LAYERS
