"""Drive Chapter 1's explorer from Python, as a learner would with the mouse."""

import matplotlib
import pytest

matplotlib.use("Agg")

from book.trained_nets import DepthRun, forget_trained, run_depth  # noqa: E402
from book.ch1_widgets import MAX_EXPLORER_DEPTH, DepthExplorer, bench_cases  # noqa: E402


def test_click_trains_caches_and_redraws():
    forget_trained(DepthRun(depth=8, residual=True, seed=5))  # a cold start, even when an earlier run cached it
    explorer = DepthExplorer(progress=False)
    explorer.depth.value, explorer.kind.value, explorer.seed.value = 8, True, 5
    drawn = explorer.redraws
    explorer.button.click()
    assert explorer.trainings == 1 and explorer.last_from_cache is False
    assert DepthRun(depth=8, residual=True, seed=5) in explorer.runs
    assert "final training error" in explorer.message.value and explorer.redraws == drawn + 1
    # the new run is in the figure, highlighted, against the earlier runs
    labels = [line.get_label() for line in explorer.last_figure.axes[1].lines]
    assert "ResNet-8 (seed 5)" in labels
    # never a stack of old figures (ipywidgets 8 records outputs outside a kernel; 7.7.1 does not)
    assert len(explorer.plot_area.outputs) <= 1
    explorer.button.click()  # the same setting again: no retraining
    assert explorer.trainings == 1 and explorer.last_from_cache is True
    assert "from the cache" in explorer.message.value and explorer.redraws == drawn + 2
    assert len(explorer.plot_area.outputs) <= 1
    assert not explorer.button.disabled


def test_initial_runs_are_drawn_and_reused():
    result = run_depth(DepthRun(depth=8, residual=False, seed=0), progress=False)
    explorer = DepthExplorer(initial={(8, False, 0): result}, progress=False)
    explorer.depth.value, explorer.kind.value = 8, False
    assert explorer.train() is result and explorer.trainings == 0


@pytest.mark.parametrize("field, value, words", [
    ("depth", 0, "6n+2"), ("depth", -8, "6n+2"), ("depth", 21, "nearest allowed depths are 20 and 26"),
    ("depth", MAX_EXPLORER_DEPTH + 6, "beyond this explorer"), ("width", -4, "width"), ("width", 0, "width"),
    ("seed", -1, "seed"),
])
def test_bad_input_shows_a_message_not_a_traceback(field, value, words):
    explorer = DepthExplorer(progress=False)
    getattr(explorer, field).value = value
    explorer.button.click()  # must not raise
    assert words in explorer.message.value.replace("&#x27;", "'")
    assert explorer.trainings == 0 and not explorer.button.disabled


def test_bench_cases_are_callable():
    cases = bench_cases()
    assert cases and all(callable(f) for _, f in cases)
    for _, f in cases:
        f()
