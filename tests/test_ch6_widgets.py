"""Chapter 6's explorer, driven from Python: live redraw, training on click, bad input."""

from __future__ import annotations

import matplotlib
import pytest

matplotlib.use("Agg")

from book.ch6_widgets import (LEARNING_RATES, MAX_INIT_DEPTH, MAX_TRAIN_DEPTH, ResidualStreamExplorer,
                                      bench_cases)


def test_initial_redraw_draws_a_plot_and_no_message():
    ex = ResidualStreamExplorer(depth=4, norm="pre-ln")
    assert ex.last_measurement is not None and len(ex.last_measurement["grad_norms"]) == 4
    assert ex.message.value == ""


def test_changing_depth_or_norm_redraws_with_the_new_setting():
    ex = ResidualStreamExplorer(depth=3)
    ex.depth.value = 5
    assert len(ex.last_measurement["grad_norms"]) == 5
    ex.norm.value = "rezero"
    assert ex.message.value == ""
    assert ex.last_measurement["write_ratio"] == [0.0] * 5  # ReZero blocks start as the identity
    ex.set(depth=MAX_INIT_DEPTH, norm="deepnorm")
    assert len(ex.last_measurement["grad_norms"]) == MAX_INIT_DEPTH


@pytest.mark.parametrize("depth", [0, -3, MAX_INIT_DEPTH + 1])
def test_bad_depth_is_a_message_not_a_traceback(depth):
    ex = ResidualStreamExplorer(depth=3)
    ex.depth.value = depth
    assert "depth must be" in ex.message.value
    assert ex.last_measurement is None  # the stale plot is cleared, nothing garbage is drawn
    ex.depth.value = 3
    assert ex.message.value == "" and ex.last_measurement is not None


def test_bad_values_through_set_are_messages():
    ex = ResidualStreamExplorer(depth=3)
    ex.set(norm="middle-ln")
    assert "cannot set norm" in ex.message.value
    assert ex.norm.value == "post-ln"
    ex.set(lr=0.5)
    assert "cannot set lr" in ex.message.value
    ex.set(colour="red")
    assert "no control named" in ex.message.value


def test_train_too_deep_is_a_message():
    ex = ResidualStreamExplorer(depth=MAX_TRAIN_DEPTH + 1)
    assert ex.train() is None
    assert "depth must be" in ex.message.value and "limited" in ex.message.value


def test_train_on_click_draws_a_curve(monkeypatch):
    import book.ch6_widgets as tw
    from book.ch6_residual_stream import TrainSpec

    # a short run keeps the test fast; the widget path is the same
    monkeypatch.setattr(tw, "TrainSpec", lambda **kw: TrainSpec(**kw, steps=20))
    ex = ResidualStreamExplorer(depth=2, norm="pre-ln", lr=LEARNING_RATES[1])
    ex.train_button.click()
    assert ex.last_run is not None and not ex.last_run.diverged and len(ex.last_run.train_loss) == 20
    assert ex.curve_drawn and ex.message.value == ""
    # the logit-lens view of the trained model: one readability value per stream position (embedding + 2 blocks)
    assert len(ex.last_lens["accuracy"]) == 3 and all(0 <= a <= 1 for a in ex.last_lens["accuracy"])


def test_a_diverged_run_is_reported_not_drawn(monkeypatch):
    import book.ch6_widgets as tw
    from book.ch6_residual_stream import TrainSpec

    monkeypatch.setattr(tw, "TrainSpec", lambda **kw: TrainSpec(**{**kw, "lr": 10.0}, steps=30))
    ex = ResidualStreamExplorer(depth=6, norm="none")
    run = ex.train()
    assert run.diverged
    assert "diverged" in ex.message.value
    assert not ex.curve_drawn


def test_bench_cases_run():
    cases = bench_cases()
    assert len(cases) >= 2
    for name, update in cases:
        assert isinstance(name, str)
        update()
