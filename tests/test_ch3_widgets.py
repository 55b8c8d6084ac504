"""Chapter 3's widget, driven from Python: every control, bad input, bench cases, the static stand-ins."""

from __future__ import annotations

import matplotlib
import pytest

matplotlib.use("Agg")

from book.ch3_gradient_highway import MAX_DEPTH  # noqa: E402
from book.ch3_widgets import (GradientFlowExplorer, bench_cases, depth_sweep_scrubber,  # noqa: E402
                                   shortcut_animation)
from book.nets.mlp import ACTIVATIONS, INITS, NORMS  # noqa: E402


def _ok(explorer):
    return "#006B3C" in explorer.message.value and explorer.last_stats is not None


@pytest.fixture
def explorer():
    return GradientFlowExplorer(depth=12)


def test_every_control_redraws(explorer):
    assert _ok(explorer)
    explorer.kind.value = True
    assert _ok(explorer) and "residual-12" in explorer.message.value
    for activation in ACTIVATIONS:
        explorer.activation.value = activation
        assert _ok(explorer), explorer.message.value
    for norm in NORMS:
        explorer.norm.value = norm
        assert _ok(explorer), explorer.message.value
    explorer.branch_scale.value = 0.1
    assert _ok(explorer)
    explorer.depth.value = 1
    assert _ok(explorer) and len(explorer.last_stats.grad_norm) == 2
    explorer.depth.value = MAX_DEPTH
    assert _ok(explorer) and len(explorer.last_stats.grad_norm) == MAX_DEPTH + 1


def test_every_init_gives_a_plot_or_a_clear_message(explorer):
    explorer.kind.value = True
    explorer.norm.value = "batch"
    for init in INITS:
        explorer.init.value = init
        assert _ok(explorer), (init, explorer.message.value)
    explorer.norm.value = "none"
    explorer.init.value = "zero_gamma"
    assert "needs norm" in explorer.message.value and explorer.last_stats is None
    explorer.kind.value = False
    explorer.init.value = "skipinit"
    assert "plain stack" in explorer.message.value and explorer.last_stats is None


@pytest.mark.parametrize("depth", [0, -5, MAX_DEPTH + 1, 10_000])
def test_bad_depth_shows_a_message_not_a_traceback(explorer, depth):
    explorer.depth.value = depth
    assert "#B00020" in explorer.message.value
    assert "supported range" in explorer.message.value and str(MAX_DEPTH) in explorer.message.value
    assert explorer.last_stats is None
    explorer.depth.value = 5  # recovers
    assert _ok(explorer)


def test_bench_cases_each_perform_an_update():
    cases = bench_cases()
    assert len(cases) >= 2
    for name, update in cases:
        assert isinstance(name, str) and name.startswith("ch3")
        update()


def test_static_stand_ins_are_kernel_free_html():
    html = shortcut_animation(depth=6, steps_per_phase=2).data
    assert "<script" in html and "animation" in html.lower()
    html = depth_sweep_scrubber().data
    assert "<script" in html
