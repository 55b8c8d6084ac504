"""Chapter 1's explorer: train plain and residual nets of any depth, with a cache.

Uses only what ipywidgets 7.7.1 (Colab) and 8.x share: IntText, ToggleButtons,
Button, HTML, Output, HBox/VBox. Plots go into an ``Output`` that is cleared
before each redraw, so Colab never stacks old figures under new ones.

The explorer is a :class:`book.widgets.Explorer`: ``.widget`` to display, controls
as attributes that tests (and :mod:`book.authoring.bench`) can set, and a ``.message``
HTML that shows what went wrong instead of a traceback.
"""

from __future__ import annotations

import time

import ipywidgets as W

from .trained_nets import DepthRun, is_trained, run_depth
from .errors import ConfigError
from .training import TrainResult
from .widgets import Explorer

__all__ = ["DepthExplorer", "MAX_EXPLORER_DEPTH", "bench_cases"]

MAX_EXPLORER_DEPTH = 110  # ResNet-110 is the deepest the paper's CIFAR table goes; deeper takes minutes on a CPU


class DepthExplorer(Explorer):
    """Choose depth, plain or residual, width and seed; *Train* runs it (or takes it from the cache).

    Every finished run is drawn against the earlier ones: final training error
    against depth on the left, training-error curves on the right.

    Args:
        initial: runs to draw from the start, e.g. the chapter's sweep
            ``{(depth, residual, seed): TrainResult}``.
        progress: show a progress bar while training.
    """

    def __init__(self, initial: dict | None = None, progress: bool = True):
        self.progress = progress
        box = dict(layout=W.Layout(width="170px"), style={"description_width": "45px"})
        self.depth = W.IntText(value=20, description="depth", **box)
        self.kind = W.ToggleButtons(options=[("plain", False), ("residual", True)], value=False,
                                    description="network")
        self.width = W.IntText(value=DepthRun().width, description="width", **box)
        self.seed = W.IntText(value=0, description="seed", **box)
        self.button = W.Button(description="▶ Train", button_style="primary")  # no icon: icon fonts would load from a CDN
        self.message = W.HTML()
        self.progress_area = W.Output()
        self.plot_area = W.Output()
        self.runs: dict[DepthRun, TrainResult] = {}
        self.trainings = 0          # how many runs were actually trained (not from the cache)
        self.redraws = 0            # how many figures were drawn
        self.last_figure = None     # the latest figure (closed; kept for tests and notebooks)
        self.last_from_cache = None
        for (depth, residual, seed), result in (initial or {}).items():
            self.runs[DepthRun(depth=depth, residual=residual, seed=seed)] = result
        self.button.on_click(lambda _: self.train())
        self.widget = W.VBox([
            W.HBox([self.depth, self.width, self.seed]),
            W.HBox([self.kind, self.button]),
            self.message, self.progress_area, self.plot_area,
        ])
        self.say(f"Pick a depth (6n+2: 8, 14, 20, … up to {MAX_EXPLORER_DEPTH}) and press Train.")
        self.redraw()

    def spec(self) -> DepthRun:
        """The run the controls describe; raises ConfigError for a setting that cannot run."""
        depth, width, seed = self.depth.value, self.width.value, self.seed.value
        if depth > MAX_EXPLORER_DEPTH:
            raise ConfigError(f"depth {depth} is beyond this explorer's range (8 to {MAX_EXPLORER_DEPTH}): "
                              "deeper nets take minutes per run on a CPU.")
        if width < 1:
            raise ConfigError(f"width {width} is not a number of channels: use a whole number ≥ 1 (the chapter uses 8).")
        if width > 64:
            raise ConfigError(f"width {width} is beyond this explorer's range (1 to 64).")
        if seed < 0:
            raise ConfigError(f"seed {seed} must be ≥ 0.")
        spec = DepthRun(depth=depth, residual=self.kind.value, seed=seed, width=width)
        from .nets.conv1d import validate_conv_config
        validate_conv_config(spec.model_config())
        return spec

    def train(self) -> TrainResult | None:
        """Train the chosen setting (or fetch it from the cache) and redraw. ``None`` on bad input."""
        try:
            spec = self.spec()
        except ConfigError as err:
            self.say(str(err), "error")
            return None
        from_cache = spec in self.runs or is_trained(spec)
        self.button.disabled = True
        self.say(f"{'Loading' if from_cache else 'Training'} {spec.label} (seed {spec.seed})…")
        start = time.perf_counter()
        try:
            self.clear(self.progress_area)
            with self.progress_area:
                result = self.runs.get(spec) or run_depth(spec, progress=self.progress)
            self.clear(self.progress_area)
        finally:
            self.button.disabled = False
        self.last_from_cache = from_cache
        self.trainings += 0 if from_cache else 1
        self.runs[spec] = result
        seconds = time.perf_counter() - start
        if result.diverged:
            self.say(f"{spec.label}: {result.message}", "error")
        else:
            how = "from the cache" if from_cache else f"trained in {seconds:.1f} s"
            self.say(f"{spec.label} (seed {spec.seed}, {how}): final training error "
                     f"{100 * result.final_train_error:.1f} %, test error {100 * result.final_test_error:.1f} %.", "ok")
        self.redraw(highlight=spec)
        return result

    def figure(self, highlight: DepthRun | None = None):
        """The explorer's figure for the runs so far."""
        import matplotlib.pyplot as plt

        from .plots import style_for

        fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
        for residual in (False, True):
            points = sorted((s.depth, r.final_train_error) for s, r in self.runs.items()
                            if s.residual == residual and not r.diverged)
            if points:
                left.plot(*zip(*points), marker="o", label="residual" if residual else "plain", **style_for(residual))
        for spec, result in self.runs.items():
            if result.diverged:
                continue
            bold = spec == highlight
            right.plot(range(1, len(result.train_error) + 1), result.train_error, **style_for(spec.residual),
                       linewidth=2.5 if bold else 1.0, alpha=1.0 if bold or highlight is None else 0.45,
                       label=f"{spec.label} (seed {spec.seed})" if bold else None)
        left.set(xlabel="depth (weighted layers)", ylabel="final training error", title="error vs depth", ylim=(0, None))
        right.set(xlabel="epoch", ylabel="training error", title="training curves", ylim=(0, None))
        for ax in (left, right):
            if ax.get_legend_handles_labels()[0]:
                ax.legend()
        fig.tight_layout()
        return fig

    def redraw(self, highlight: DepthRun | None = None) -> None:
        fig = self.figure(highlight)
        self.show(self.plot_area, fig)
        self.redraws += 1
        self.last_figure = fig


def bench_cases():
    """``(name, callable)`` pairs that each perform one widget update, for ``make bench``."""
    explorer = DepthExplorer(progress=False)
    explorer.depth.value, explorer.kind.value = 8, True

    def cached_click():
        explorer.train()  # after the first call this is a cache hit plus a redraw

    explorer.train()
    return [("ch1 DepthExplorer: click on a cached setting (redraw)", cached_click),
            ("ch1 DepthExplorer: redraw", explorer.redraw)]
