"""Chapter 3's explorer, its kernel-free stand-ins, and the "shortcut at work" animation.

:class:`GradientFlowExplorer` probes an MLP stack at initialization whenever a
control changes and draws the gradient norm and the activation std layer by
layer. It uses only what ipywidgets 7.7.1 (Colab) and 8.x share (IntText,
Dropdown, ToggleButtons, FloatSlider, HTML, Output, HBox/VBox), draws into an
``Output`` cleared before each redraw, and shows bad input as a message.

On the static web page no kernel answers the controls, so
:func:`depth_sweep_scrubber` and :func:`init_sweep_scrubber` export
precomputed sweeps with ``to_jshtml()``; :func:`shortcut_animation` does the
same for the chapter's animation. Every curve comes from
:func:`book.ch3_gradient_highway.gradient_flow`, i.e. from gradients computed on real
networks.
"""

from __future__ import annotations

import math
import time

import ipywidgets as W
import numpy as np

from .ch3_gradient_highway import (CH3_DEPTHS, INIT_ZOO, MAX_DEPTH, GradFlow, first_to_last_ratio, gradient_flow,
                                   init_zoo_spec)
from .errors import ConfigError
from .nets.mlp import ACTIVATIONS, INITS, NORMS
from .probes import LayerStats
from .widgets import Explorer

__all__ = ["GradientFlowExplorer", "plot_profiles", "depth_sweep_scrubber", "init_sweep_scrubber",
           "shortcut_animation", "bench_cases", "FLOOR"]

FLOOR = 1e-40  # gradients below float32's range (they underflow to 0) are drawn on this floor


def _floored(values) -> np.ndarray:
    return np.maximum(np.asarray(values, dtype=float), FLOOR)


def plot_profiles(axes, stats: LayerStats, residual: bool, label: str | None = None, **kwargs) -> None:
    """Draw gradient norm (``axes[0]``) and activation std (``axes[1]``) against layer index, log scale."""
    from .plots import style_for

    style = {**style_for(residual), **kwargs}
    layers = np.arange(len(stats.grad_norm))
    axes[0].plot(layers, _floored(stats.grad_norm), label=label, **style)
    axes[1].plot(layers, _floored(stats.activation_std), label=label, **style)
    axes[0].set(yscale="log", xlabel="layer (0 = input layer)", ylabel="‖∂loss/∂h‖", title="gradient norm")
    axes[1].set(yscale="log", xlabel="layer (0 = input layer)", ylabel="std of h", title="activation std")


class GradientFlowExplorer(Explorer):
    """Depth, initialization, activation, plain/residual and branch scale α → live per-layer plots.

    Every change of a control re-probes the network at initialization (one
    forward and backward pass on a batch of MNIST-1D) and redraws. Depth runs
    from 1 to :data:`book.ch3_gradient_highway.MAX_DEPTH`.

    Args:
        depth, init, activation, residual, branch_scale, norm: starting values.
    """

    def __init__(self, depth: int = 50, init: str = "default", activation: str = "relu", residual: bool = False,
                 branch_scale: float = 1.0, norm: str = "none"):
        self.depth = W.IntText(value=depth, description="depth")
        self.init = W.Dropdown(options=list(INITS), value=init, description="init")
        self.activation = W.Dropdown(options=list(ACTIVATIONS), value=activation, description="activation")
        self.norm = W.Dropdown(options=list(NORMS), value=norm, description="norm")
        self.kind = W.ToggleButtons(options=[("plain", False), ("residual", True)], value=residual,
                                    description="network")
        self.branch_scale = W.FloatSlider(value=branch_scale, min=0.0, max=2.0, step=0.05, description="α")
        self.message = W.HTML()
        self.plot_area = W.Output()
        self.last_stats: LayerStats | None = None
        self._fig = self._axes = self._lines = None
        self.last_seconds = float("nan")
        self.watch(self.depth, self.init, self.activation, self.norm, self.kind, self.branch_scale)
        self.widget = W.VBox([
            W.HBox([self.depth, self.init, self.activation]),
            W.HBox([self.kind, self.norm, self.branch_scale]),
            self.message, self.plot_area,
        ])
        self.redraw()

    def spec(self) -> GradFlow:
        """The probe the controls describe; raises ConfigError for a setting that cannot run."""
        depth = self.depth.value
        if depth < 1 or depth > MAX_DEPTH:
            raise ConfigError(f"depth {depth} is outside the supported range: choose 1 to {MAX_DEPTH} "
                              "layers (plain) or blocks (residual).")
        init = self.init.value
        spec = GradFlow(
            depth=depth, residual=self.kind.value, init=init, activation=self.activation.value,
            norm=self.norm.value, branch_scale=float(self.branch_scale.value),
            # Goyal et al.'s trick needs a norm at the end of each branch; Fixup needs two layers per branch.
            norm_position="post" if init == "zero_gamma" else "pre",
            branch_layers=2 if init == "fixup" else 1,
        )
        from .nets.mlp import validate_mlp_config
        validate_mlp_config(spec.mlp_config())
        return spec

    def figure(self, stats: LayerStats, spec: GradFlow):
        """The explorer's figure, updated in place for ``stats`` (built once: redraws stay fast)."""
        import matplotlib.pyplot as plt

        from .plots import style_for

        if self._fig is None:
            fig, axes = plt.subplots(1, 2, figsize=(8.5, 3), dpi=72)
            fig.subplots_adjust(left=0.09, right=0.98, bottom=0.17, top=0.86, wspace=0.3)
            self._lines = [ax.plot([], [])[0] for ax in axes]
            self._floor_note = axes[0].text(0.02, 0.04, "", transform=axes[0].transAxes, fontsize=8, color="0.4")
            axes[0].set(yscale="log", xlabel="layer (0 = input layer)", ylabel="‖∂loss/∂h‖", title="gradient norm")
            axes[1].set(yscale="log", xlabel="layer (0 = input layer)", ylabel="std of h", title="activation std")
            plt.close(fig)  # displayed explicitly into the Output, never by pyplot
            self._fig, self._axes = fig, axes
        layers = np.arange(len(stats.grad_norm))
        for line, ax, values in zip(self._lines, self._axes, (stats.grad_norm, stats.activation_std)):
            line.set_data(layers, _floored(values))
            line.set(**style_for(spec.residual))
            ax.relim()
            ax.autoscale_view()
        underflow = any(g == 0 for g in stats.grad_norm[1:])
        self._floor_note.set_text(f"0 in float32 drawn at {FLOOR:.0e}" if underflow else "")
        self._fig.suptitle(spec.label, fontsize=10)
        return self._fig

    def redraw(self) -> LayerStats | None:
        """Probe the current setting and redraw; ``None`` (and a message) on bad input."""
        start = time.perf_counter()
        try:
            spec = self.spec()
        except ConfigError as err:
            self.say(str(err), "error")
            self.clear(self.plot_area)
            self.last_stats = None
            return None
        stats = gradient_flow(spec)
        fig = self.figure(stats, spec)
        self.show(self.plot_area, fig, close=False)  # the figure is kept and updated in place
        self.last_stats = stats
        self.last_seconds = time.perf_counter() - start
        ratio = first_to_last_ratio(stats)
        if not math.isfinite(ratio) or ratio == 0:
            text = "the gradient after the first layer is 0 in float32: it vanished completely."
        else:
            text = f"gradient after the first layer ÷ after the last: {ratio:.2g}"
        if not math.isfinite(stats.loss):
            self.say(f"{spec.label}: the forward pass overflowed (loss {stats.loss}).", "error")
        else:
            self.say(f"{spec.label}: {text}  (drawn in {1000 * self.last_seconds:.0f} ms)", "ok")
        return stats


# --------------------------------------------------------------------------- kernel-free stand-ins

def depth_sweep_scrubber(seed: int = 0, activation: str = "relu"):
    """A ``to_jshtml`` slider over depth (default init): plain and residual profiles per frame."""
    import matplotlib.pyplot as plt

    from .plots import scrubber

    runs = [(d, gradient_flow(GradFlow(depth=d, residual=False, seed=seed, activation=activation)),
             gradient_flow(GradFlow(depth=d, residual=True, seed=seed, activation=activation))) for d in CH3_DEPTHS]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3), dpi=70)

    def draw(i):
        depth, plain, residual = runs[i]
        for ax in axes:
            ax.clear()
        plot_profiles(axes, plain, False, label="plain")
        plot_profiles(axes, residual, True, label="residual")
        axes[0].set_ylim(1e-42, 1e12)
        axes[1].set_ylim(1e-3, 1e8)
        axes[0].legend(loc="lower right")
        fig.suptitle(f"depth {depth}, PyTorch default init, {activation}", fontsize=10)
        fig.tight_layout()

    return scrubber(fig, draw, len(runs))


def init_sweep_scrubber(depth: int = 100, seed: int = 0):
    """A ``to_jshtml`` slider over :data:`book.ch3_gradient_highway.INIT_ZOO` at one depth."""
    import matplotlib.pyplot as plt

    from .plots import scrubber

    frames = []
    for label, _ in INIT_ZOO:
        plain = init_zoo_spec(label, False, depth, seed)
        frames.append((label, gradient_flow(plain) if plain else None,
                       gradient_flow(init_zoo_spec(label, True, depth, seed))))
    fig, axes = plt.subplots(1, 2, figsize=(8, 3), dpi=70)

    def draw(i):
        label, plain, residual = frames[i]
        for ax in axes:
            ax.clear()
        if plain is not None:
            plot_profiles(axes, plain, False, label="plain")
        plot_profiles(axes, residual, True, label="residual")
        axes[0].set_ylim(1e-42, 1e34)
        axes[1].set_ylim(1e-3, 1e32)
        axes[0].legend(loc="lower right")
        note = "" if plain is not None else " (residual only)"
        fig.suptitle(f"{label}{note}, depth {depth}, ReLU", fontsize=10)
        fig.tight_layout()

    return scrubber(fig, draw, len(frames))


# --------------------------------------------------------------------------- the animation

def shortcut_animation(depth: int = 30, seed: int = 0, steps_per_phase: int = 10):
    """"Watch the shortcut at work", as a ``to_jshtml`` animation.

    Phase 1: the backward pass walks down a plain stack and the measured
    gradient norm fades layer by layer. Phase 2: the same walk through the
    residual stack (same init), skip connections drawn, the gradient riding
    the identity path. Phase 3: the residual stack drawn as one stream that
    every block reads from and writes to, coloured by the measured gradient.
    """
    import matplotlib
    import matplotlib.pyplot as plt
    from matplotlib import cm, colors
    from matplotlib.patches import FancyArrowPatch, Rectangle

    from .plots import COLORS, scrubber

    plain = gradient_flow(GradFlow(depth=depth, residual=False, seed=seed))
    residual = gradient_flow(GradFlow(depth=depth, residual=True, seed=seed))
    logs = {k: np.log10(_floored(s.grad_norm)) for k, s in (("plain", plain), ("residual", residual))}
    lo = min(v.min() for v in logs.values())
    hi = max(v.max() for v in logs.values())
    norm = colors.Normalize(vmin=lo, vmax=hi)
    cmap = matplotlib.colormaps["viridis"]
    n = depth + 1
    frames = [("plain", k) for k in np.linspace(1, n, steps_per_phase).round().astype(int)]
    frames += [("residual", k) for k in np.linspace(1, n, steps_per_phase).round().astype(int)]
    frames += [("stream", n)] * 2

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 4.2), dpi=70, gridspec_kw={"height_ratios": [1, 1.4]})
    sm = cm.ScalarMappable(norm=norm, cmap=cmap)
    cbar = fig.colorbar(sm, ax=[top, bottom], shrink=0.8, pad=0.02)
    cbar.set_label("log₁₀ ‖∂loss/∂h‖")

    def draw(i):
        phase, revealed = frames[i]
        kind = "plain" if phase == "plain" else "residual"
        values = logs[kind]
        shown = np.arange(n) >= n - revealed  # the backward pass starts at the output end
        top.clear()
        bottom.clear()
        top.set_xlim(-1, n + 1)
        top.set_ylim(-0.6, 1.6)
        top.axis("off")
        if phase == "stream":
            top.add_patch(Rectangle((-0.5, 0.35), n, 0.3, color="0.85"))
            for l in range(n):
                top.add_patch(Rectangle((l - 0.5, 0.35), 1, 0.3, color=cmap(norm(values[l]))))
                if l > 0 and l % max(1, n // 15) == 0:
                    top.add_patch(Rectangle((l - 0.35, 1.0), 0.7, 0.45, facecolor="white", edgecolor="0.3"))
                    top.add_patch(FancyArrowPatch((l - 0.2, 0.65), (l - 0.2, 1.0), arrowstyle="-|>", mutation_scale=6))
                    top.add_patch(FancyArrowPatch((l + 0.2, 1.0), (l + 0.2, 0.65), arrowstyle="-|>", mutation_scale=6))
            top.set_title("the residual stream: every block reads from it and adds its change back", fontsize=10)
        else:
            for l in range(n):
                face = cmap(norm(values[l])) if shown[l] else "0.9"
                top.add_patch(Rectangle((l - 0.4, 0.0), 0.8, 0.8, facecolor=face, edgecolor="0.4", linewidth=0.5))
                if kind == "residual" and l > 0:
                    top.add_patch(FancyArrowPatch((l - 1, 0.85), (l, 0.85), connectionstyle="arc3,rad=-0.6",
                                                  arrowstyle="-", color=COLORS["residual"], linewidth=0.8))
            title = ("a plain stack: the backward pass fades layer by layer" if kind == "plain"
                     else "add the shortcut: part of the gradient rides the identity path")
            top.set_title(title, fontsize=10)
        layers = np.arange(n)
        for other in ("plain", "residual"):
            if other == "residual" and phase == "plain":
                continue
            mask = shown if other == kind and phase != "stream" else np.ones(n, bool)
            faded = other != kind
            bottom.plot(layers[mask], 10 ** logs[other][mask], color=COLORS[other],
                        linestyle="--" if other == "plain" else "-", alpha=0.35 if faded else 1.0, label=other)
        bottom.set(yscale="log", xlim=(-1, n + 1), ylim=(10 ** (lo - 1), 10 ** (hi + 1)),
                   xlabel="layer (0 = input layer, the backward pass runs right to left)", ylabel="‖∂loss/∂h‖")
        bottom.legend(loc="lower right")

    return scrubber(fig, draw, len(frames), interval=400)


# --------------------------------------------------------------------------- make bench

def bench_cases():
    """``(name, callable)`` pairs that each perform one widget update, for ``make bench``."""
    from .ch3_gradient_highway import _probe_gradient_flow
    from .training import single_thread

    explorer = GradientFlowExplorer(depth=100)
    toggle = {"value": False}

    def flip_kind():  # depth 100: plain ↔ residual (a cache hit after the first two calls), rendered as in a notebook
        import io

        toggle["value"] = not toggle["value"]
        explorer.kind.value = toggle["value"]
        explorer._fig.savefig(io.BytesIO(), format="png")

    def fresh_probe_and_draw():  # depth 100, residual, probed from scratch (no cache) and rendered
        import io

        spec = GradFlow(depth=100, residual=True)
        with single_thread():
            stats = LayerStats.from_dict(_probe_gradient_flow(spec))
        explorer.figure(stats, spec).savefig(io.BytesIO(), format="png")

    def bad_depth():
        explorer.depth.value = 0 if explorer.depth.value != 0 else MAX_DEPTH + 1

    return [("ch3 GradientFlowExplorer: depth 100, plain ↔ residual", flip_kind),
            ("ch3 GradientFlowExplorer: depth 100 probe from scratch + draw", fresh_probe_and_draw),
            ("ch3 GradientFlowExplorer: bad depth (message only)", bad_depth)]
