"""An explorer for Chapter 7's ODE view; runs on ipywidgets 7.7.1 and 8.

:class:`EulerExplorer` integrates the 2-D linear flow dx/dt = A x (a spiral with eigenvalues −a ± 3i) from
t = 0 to 1 with L forward-Euler steps, x ← x + (1/L)·A x, and draws the Euler polygon over the exact path.
Two sliders: the number of steps L and the decay rate a (how stiff the flow is). Every redraw is a few
matrix-vector products.
"""

from __future__ import annotations

from .widgets import Explorer

__all__ = ["EulerExplorer", "MAX_STEPS", "MAX_DECAY", "bench_cases"]

MAX_STEPS = 64
MAX_DECAY = 40.0


class EulerExplorer(Explorer):
    """Move the sliders, see forward Euler converge (small steps) or explode (a step beyond its stability limit).

    Attributes:
        widget: the VBox to display.
        steps: IntSlider, the number of Euler steps L (h = 1/L).
        decay: FloatSlider, the decay rate a.
        message: the per-step factor |1 + hλ| and whether the pass explodes, as text.
        result: the latest :func:`book.ch7_family_of_skips.euler_spiral` result.
    """

    def __init__(self, steps: int = 8, decay: float = 2.0):
        import ipywidgets as w

        self.steps = w.IntSlider(value=steps, min=1, max=MAX_STEPS, description="steps L", continuous_update=False)
        self.decay = w.FloatSlider(value=decay, min=0.0, max=MAX_DECAY, step=0.5, description="decay a",
                                   continuous_update=False)
        self.message = w.HTML("")
        self.output = w.Output()
        self.result: dict = {}
        self.watch(self.steps, self.decay)
        self.widget = w.VBox([w.HBox([self.steps, self.decay]), self.message, self.output])
        self.redraw()

    def set(self, steps: int | None = None, decay: float | None = None) -> None:
        """Set the sliders (tests, the benchmark) and redraw once; values outside the sliders' range show a message."""
        from .errors import ConfigError, validate_whole_number

        try:
            if steps is not None:
                validate_whole_number("the number of steps", steps, minimum=1, maximum=MAX_STEPS)
            if decay is not None and not (isinstance(decay, (int, float)) and 0 <= decay <= MAX_DECAY):
                raise ConfigError(f"the decay rate must be a number from 0 to {MAX_DECAY:g}, got {decay!r}.")
        except ConfigError as err:
            self.say(str(err), "error")
            return
        with self.batch():                    # one redraw for both sliders, not one per slider
            if steps is not None:
                self.steps.value = steps
            if decay is not None:
                self.decay.value = float(decay)
        self.redraw()

    def redraw(self) -> None:
        import matplotlib.pyplot as plt
        import numpy as np

        from .ch7_family_of_skips import euler_spiral
        from .plots import PALETTE

        r = euler_spiral(self.decay.value, self.steps.value)
        self.result = r
        if r["step_factor"] > 1:
            text = (f"h = {r['h']:.3g}: each step multiplies the distance from 0 by {r['step_factor']:.3g} > 1, "
                    f"so the forward pass explodes ({r['growth']:.3g} times its start after {self.steps.value} steps) "
                    f"while the true flow decays.")
            kind = "error"
        else:
            text = (f"h = {r['h']:.3g}: each step multiplies the distance from 0 by {r['step_factor']:.3g} ≤ 1; "
                    f"the Euler end point is {r['error']:.3g} away from the exact one.")
            kind = "ok"
        self.say(text, kind)
        fig, ax = plt.subplots(figsize=(4.6, 4.0))
        ax.plot(r["exact"][:, 0], r["exact"][:, 1], color="grey", lw=2, label="exact flow")
        path = np.clip(r["euler"], -3, 3)       # an exploding path leaves the frame; clip it to the edge
        ax.plot(path[:, 0], path[:, 1], color=PALETTE["vermillion"], ls="--", marker="o", ms=4,
                label=f"{self.steps.value} Euler steps")
        ax.plot(1, 0, "ks", ms=6)
        ax.set(xlim=(-1.6, 1.6), ylim=(-1.6, 1.6), xlabel="x₁", ylabel="x₂", aspect="equal",
               title=f"dx/dt = A x, eigenvalues −{self.decay.value:g} ± 3i")
        ax.legend(loc="lower left", fontsize=8)
        fig.tight_layout()
        self.show(self.output, fig)


def bench_cases():
    """``(name, callable)`` pairs, each performing one widget update (for ``make bench``)."""
    explorer = EulerExplorer()
    return [
        ("Euler explorer: 64 steps", lambda: explorer.set(steps=64)),
        ("Euler explorer: stiff, 4 steps", lambda: explorer.set(steps=4, decay=30.0)),
    ]
