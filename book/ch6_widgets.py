"""Chapter 6's explorer: norm placement, depth, warm-up and learning rate of a small transformer.

:class:`ResidualStreamExplorer` redraws the per-block gradient norms at
initialization live (one forward and backward pass) whenever the depth or the
placement changes; its *Train* button trains the chosen setting on the sort
task with a progress bar (results are cached, so revisiting is instant) and
draws the loss curve next to the *logit lens* of the trained model (how readable the
correct next number is in the stream after every block) — or says that the run diverged.

Runs on ipywidgets 7.7.1 and 8: only IntText, IntSlider, Dropdown, Button,
Output, HTML and HBox/VBox. Bad input is reported in ``.message``, never as a
traceback. :func:`bench_cases` gives ``make bench`` one live update per case.
"""

from __future__ import annotations

from .errors import ConfigError, validate_whole_number
from .nets.transformer import NORM_PLACEMENTS
from .widgets import Explorer
from .ch6_residual_stream import (CHAPTER_LR, CHAPTER_STEPS, InitGradients, LensSpec, TrainSpec, gradients_at_init,
                                  logit_lens, run_training)

__all__ = ["ResidualStreamExplorer", "bench_cases", "MAX_INIT_DEPTH", "MAX_TRAIN_DEPTH", "LEARNING_RATES"]

MAX_INIT_DEPTH = 100   # the at-init measurement stays well under a second up to here
MAX_TRAIN_DEPTH = 24    # training deeper stacks takes minutes on a CPU
LEARNING_RATES = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
INIT_BATCH = 8         # sequences in the widget's at-init batch: enough for the shape, fast at depth 100


def _plot_colors():
    from .plots import PALETTE

    return {"post-ln": PALETTE["vermillion"], "pre-ln": PALETTE["blue"], "pre-ln-scaled": PALETTE["sky"],
            "deepnorm": PALETTE["green"], "rezero": PALETTE["orange"], "none": PALETTE["purple"],
            "no-residual": PALETTE["black"]}


class ResidualStreamExplorer(Explorer):
    """Gradient norms at init (live) and training on click, for one transformer setting.

    Args:
        depth: blocks (1 … 100 for the gradients at init, ≤ 24 to train).
        norm: a placement from :data:`book.nets.transformer.NORM_PLACEMENTS`.
        warmup_steps: linear learning-rate warm-up steps (0 … training steps).
        lr: Adam's peak learning rate, one of :data:`LEARNING_RATES`.
        cache: reuse cached measurements and runs (``False`` recomputes the gradients at init, for timing).
    """

    def __init__(self, depth: int = 6, norm: str = "post-ln", warmup_steps: int = 0, lr: float = CHAPTER_LR,
                 cache: bool = True):
        import ipywidgets as w

        self.cache = cache
        self.depth = w.IntText(value=depth, description="depth")
        self.norm = w.Dropdown(options=list(NORM_PLACEMENTS), value=norm if norm in NORM_PLACEMENTS else "post-ln",
                               description="norm")
        self.warmup = w.IntSlider(value=min(max(warmup_steps, 0), CHAPTER_STEPS), min=0, max=CHAPTER_STEPS, step=10,
                                  description="warm-up")
        self.lr = w.Dropdown(options=[(f"{v:g}", v) for v in LEARNING_RATES],
                             value=lr if lr in LEARNING_RATES else CHAPTER_LR, description="lr")
        self.train_button = w.Button(description="Train")
        self.message = w.HTML(value="")
        self.output = w.Output()        # the at-init plot
        self.train_output = w.Output()  # progress bar and loss curve
        self.widget = w.VBox([w.HBox([self.depth, self.norm]), w.HBox([self.warmup, self.lr, self.train_button]),
                              self.message, self.output, self.train_output])
        self.last_measurement: dict | None = None  # what the plot shows now (None: nothing drawn)
        self.last_run = None                  # the last run trained or fetched by Train
        self.last_lens: dict | None = None    # the logit lens of that run's trained model
        self.curve_drawn = False              # whether that run's loss curve is drawn (never for a diverged run)
        self.watch(self.depth, self.norm)
        self.train_button.on_click(lambda button: self.train())
        self.redraw()

    # -------------------------------------------------------------- helpers
    def _depth(self, limit: int) -> int:
        return validate_whole_number("depth", self.depth.value, minimum=1, maximum=limit)

    def set(self, **values) -> None:
        """Set controls by name (``depth``, ``norm``, ``warmup``, ``lr``), then redraw once.

        A value a control cannot take (a placement or learning rate not on the
        list) is reported in ``.message`` and leaves that control unchanged.
        """
        try:
            with self.batch():
                for name, value in values.items():
                    if name not in ("depth", "norm", "warmup", "lr"):
                        raise ConfigError(f"no control named {name!r}; use depth, norm, warmup or lr.")
                    getattr(self, name).value = value
        except Exception as err:  # ipywidgets raises TraitError for values outside a control's options
            self.say(f"cannot set {name} to {value!r}: {err}", "error")
            return
        self.redraw()

    # -------------------------------------------------------------- live redraw
    def measure(self) -> dict:
        """The at-init measurement behind the plot (raises ConfigError on bad settings)."""
        spec = InitGradients(norm=self.norm.value, n_layer=self._depth(MAX_INIT_DEPTH), batch_size=INIT_BATCH)
        if self.cache:
            return gradients_at_init(spec)
        from .ch6_residual_stream import _gradients_at_init
        from .training import single_thread

        with single_thread():
            return _gradients_at_init(spec)

    def redraw(self) -> None:
        """Recompute the per-block gradient norms at init and redraw them."""
        import matplotlib.pyplot as plt

        try:
            result = self.measure()
        except (ConfigError, ValueError, TypeError) as err:
            self.say(str(err), "error")
            self.last_measurement = None
            self.clear(self.output)
            return
        self.say("")
        self.last_measurement = result
        norm, depth = self.norm.value, len(result["grad_norms"])
        fig, (ax_grad, ax_stream) = plt.subplots(1, 2, figsize=(8.5, 3))
        layers = range(1, depth + 1)
        grads = result["grad_norms"]
        ax_grad.plot(layers, grads, marker="o" if depth <= 30 else None, color=_plot_colors()[norm])
        # ReZero's closed gates (α = 0) give exactly zero gradients to the branches at init: no log scale then
        closed = min(grads) <= 0
        ax_grad.set(xlabel="block", ylabel="‖∂loss/∂W_ffn‖ at init", yscale="linear" if closed else "log",
                    title=f"{norm}, {depth} blocks: gradients" + (" (all 0: gates closed)" if max(grads) == 0 else ""))
        ax_stream.plot(range(depth + 1), result["stream_rms"], color=_plot_colors()[norm])
        ax_stream.set(xlabel="stream after block (0 = embedding)", ylabel="RMS of the stream",
                      title="the residual stream's size")
        fig.subplots_adjust(left=0.09, right=0.98, bottom=0.17, top=0.88, wspace=0.3)  # cheaper than tight_layout
        self.show(self.output, fig)

    # -------------------------------------------------------------- training on click
    def spec(self) -> TrainSpec:
        """The training run the controls describe."""
        return TrainSpec(norm=self.norm.value, n_layer=self._depth(MAX_TRAIN_DEPTH), lr=self.lr.value,
                         warmup_steps=self.warmup.value)

    def train(self):
        """Train the current setting (cached) and draw its loss curve; returns the run, or None on bad input."""
        try:
            spec = self.spec()
        except (ConfigError, ValueError, TypeError) as err:
            self.say(f"{err} (training is limited to {MAX_TRAIN_DEPTH} blocks on a CPU)", "error")
            return None
        self.say("")
        self.curve_drawn = False
        with self.train_output:
            self.train_output.clear_output(wait=True)
            run = run_training(spec, progress=True)   # the progress bar shows here while it trains
        self.last_run = run
        if run.diverged:
            self.say(f"{spec.label}: {run.message}", "error")
            return run
        self.last_lens = logit_lens(LensSpec(train=spec), progress=False)
        self.show(self.train_output, draw_run(spec, run, self.last_lens))   # the curve replaces the bar
        self.curve_drawn = True
        return run


def draw_run(spec: TrainSpec, run, lens: dict):
    """Loss curve (left) and logit lens (right) of one trained run: the explorer's view after *Train*."""
    import matplotlib.pyplot as plt

    colour = _plot_colors()[spec.norm]
    fig, (ax, ax_lens) = plt.subplots(1, 2, figsize=(8.5, 3))
    ax.plot(range(1, len(run.train_loss) + 1), run.train_loss, color=colour, lw=1)
    ax.axhline(_chance_loss(), color="grey", ls=":", lw=1, label="chance")
    ax.set(xlabel="Adam step", ylabel="training loss (nats)", title=f"{spec.label}\nheld-out loss {run.eval_loss:.3f}")
    ax.legend()
    blocks = range(len(lens["accuracy"]))
    ax_lens.plot(blocks, lens["accuracy"], color=colour, marker="o")
    ax_lens.set(xlabel="stream after block (0 = embedding)", ylabel="correct next number is the top guess",
                ylim=(0, 1), xticks=list(blocks), title="logit lens: readability per block")
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.17, top=0.84, wspace=0.3)
    return fig


def _chance_loss() -> float:
    from .ch6_residual_stream import TASK

    return TASK.chance_loss


def bench_cases() -> list[tuple[str, callable]]:
    """One live widget update per case, uncached (what ``make bench`` times)."""
    explorer = ResidualStreamExplorer(depth=6, cache=False)

    def update(depth: int, norm: str):
        def case():
            explorer.set(depth=depth, norm=norm)  # one redraw
        return case

    lens_explorer = ResidualStreamExplorer(depth=6, norm="pre-ln")
    lens_explorer.train()  # trains (or loads) once; each timed case redraws the curve and the lens from the cache

    return [("ch6 lens view after Train, pre-ln depth 6 (cached run)", lens_explorer.train),
            ("ch6 gradients at init, post-ln depth 6", update(6, "post-ln")),
            ("ch6 gradients at init, pre-ln depth 100", update(100, "pre-ln")),
            ("ch6 gradients at init, deepnorm depth 100", update(100, "deepnorm"))]
