"""An explorer for Chapter 5's lesion study; runs on ipywidgets 7.7.1 and 8.

:class:`LesionExplorer` shows the test error of the trained plain and residual
nets after deleting the blocks a reader ticks. Evaluating a lesioned net is two
forward passes over the test set, so every redraw is instant once the nets are
trained (the chapter trains and caches them).
"""

from __future__ import annotations

from .widgets import Explorer

__all__ = ["LesionExplorer", "lesion_errors", "bench_cases"]


def lesion_errors(deleted, depth: int | None = None, seed: int = 0) -> dict[str, float]:
    """Test error of the trained plain and residual nets with ``deleted`` blocks removed.

    Raises:
        ConfigError: a block that cannot be deleted (it changes the shape) or does not exist.
    """
    from .ch5_unrolled_view import deletable_blocks, delete_blocks
    from .trained_nets import STUDY_DEPTH, TrainedNet, trained_net
    from .data import load_mnist1d
    from .errors import ConfigError
    from .training import evaluate

    depth = depth or STUDY_DEPTH
    data = load_mnist1d()
    out = {}
    for residual in (True, False):
        model, _ = trained_net(TrainedNet(depth=depth, residual=residual, seed=seed), progress=False)
        allowed = deletable_blocks(model)
        bad = [i for i in deleted if i not in allowed]
        if bad:
            raise ConfigError(f"block(s) {bad} cannot be deleted: choose among {allowed} "
                             f"(the others change the length or the channels).")
        out["residual" if residual else "plain"] = evaluate(delete_blocks(model, deleted), data.x_test,
                                                            data.y_test)[1]
    return out


class LesionExplorer(Explorer):
    """Tick blocks, press the button, see both nets' test error without them.

    Attributes:
        widget: the VBox to display.
        boxes: one Checkbox per deletable block, keyed by block index.
        button: redraws with the ticked blocks deleted.
        message: errors, as text.
    """

    def __init__(self, depth: int | None = None, seed: int = 0):
        import ipywidgets as w

        from .ch5_unrolled_view import deletable_blocks
        from .trained_nets import STUDY_DEPTH, TrainedNet, trained_net

        self.depth, self.seed = depth or STUDY_DEPTH, seed
        model, _ = trained_net(TrainedNet(depth=self.depth, residual=True, seed=seed), progress=False)
        self.allowed = deletable_blocks(model)
        self.boxes = {i: w.Checkbox(value=False, description=f"block {i}", indent=False,
                                    layout=w.Layout(width="90px")) for i in self.allowed}
        self.button = w.Button(description="delete ticked blocks")
        self.button.on_click(lambda _: self.redraw())
        self.message = w.HTML("")
        self.output = w.Output()
        self.errors: dict[str, float] = {}
        self.widget = w.VBox([w.HBox(list(self.boxes.values())), self.button, self.message, self.output])
        self.redraw()

    @property
    def deleted(self) -> list[int]:
        return [i for i, box in self.boxes.items() if box.value]

    def set_deleted(self, indices) -> None:
        """Tick exactly ``indices`` and redraw; a block that cannot be deleted shows a message."""
        indices = list(indices)
        bad = [i for i in indices if i not in self.boxes]
        if bad:
            self.say(f"Cannot delete block(s) {bad}: choose among {self.allowed} "
                     f"(the others change the length or the channels).", "error")
            return
        for i, box in self.boxes.items():
            box.value = i in indices
        self.redraw()

    def redraw(self) -> None:
        import matplotlib.pyplot as plt

        from .plots import COLORS

        try:
            self.errors = lesion_errors(self.deleted, self.depth, self.seed)
        except ValueError as err:
            self.say(str(err), "error")
            return
        self.say("")
        fig, ax = plt.subplots(figsize=(4.5, 2.6))
        names = ["plain", "residual"]
        ax.barh([f"plain-{self.depth}", f"ResNet-{self.depth}"], [100 * self.errors[n] for n in names],
                color=[COLORS[n] for n in names])
        ax.axvline(90, color="grey", linestyle="--", lw=1)
        ax.set(xlim=(0, 100), xlabel="test error (%)",
               title=f"deleted: {self.deleted or 'nothing'}")
        fig.tight_layout()
        self.show(self.output, fig)


def bench_cases():
    """``(name, callable)`` pairs, each performing one widget update (for ``make bench``)."""
    explorer = LesionExplorer()
    blocks = explorer.allowed
    return [
        ("lesion explorer: delete three blocks", lambda: explorer.set_deleted(blocks[-3:])),
        ("lesion explorer: delete none", lambda: explorer.set_deleted([])),
    ]
