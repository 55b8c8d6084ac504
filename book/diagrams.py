"""Block diagrams, drawn from a description: one style for every block the course discusses.

A block is drawn bottom to top, as the data flows: the input ``x`` at the bottom, the layers of the branch
stacked above it, the shortcut as a line to the right that rejoins the branch at a ``+`` node, and the
layers after the sum on top. Every box carries its layer's name in text, so no meaning rests on colour;
the figure's background is white, so it reads the same in the book's light and dark themes.

>>> fig = draw_blocks([BLOCKS["plain"], BLOCKS["basic"]])   # two blocks side by side
>>> alt_text([BLOCKS["plain"], BLOCKS["basic"]])            # a sentence per block, for the figure's alt text
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Block", "BLOCKS", "draw_blocks", "alt_text"]


@dataclass(frozen=True)
class Block:
    """What a diagram shows: the layers before the split, on the branch, on the shortcut and after the sum."""

    title: str
    branch: tuple[str, ...]               # bottom to top
    shortcut: str | None = "identity"     # the shortcut's label; None: a plain block (no shortcut, no sum)
    after: tuple[str, ...] = ()           # layers after the sum (or after the branch, for a plain block)
    note: str = ""                        # one line under the title


# Box colours by the kind of layer (the name is always written in the box as well).
_FILL = {"conv": "#D6EAF8", "norm": "#FCF3CF", "act": "#D5F5E3", "mix": "#E8DAEF", "other": "#EAEDED"}


def _kind(label: str) -> str:
    low = label.lower()
    if "conv" in low or "linear" in low or "w " in low:
        return "conv"
    if "norm" in low or low.startswith("bn") or "layernorm" in low:
        return "norm"
    if "relu" in low or "gelu" in low:
        return "act"
    if "attention" in low or "mlp" in low or "f(" in low:
        return "mix"
    return "other"


BLOCKS: dict[str, Block] = {
    # Chapter 1's 1-D blocks: each convolution has 3 taps along the sequence
    "plain": Block("plain block", ("3-tap conv", "BN", "ReLU", "3-tap conv", "BN"), None, ("ReLU",),
                   "y = ReLU(F(x))"),
    "residual": Block("residual block", ("3-tap conv", "BN", "ReLU", "3-tap conv", "BN"), "identity", ("ReLU",),
                      "y = ReLU(F(x) + x)"),
    "basic": Block("basic block", ("3×3 conv", "BN", "ReLU", "3×3 conv", "BN"), "identity", ("ReLU",),
                   "ResNet-18/34, CIFAR nets"),
    "bottleneck": Block("bottleneck block", ("1×1 conv (reduce)", "BN", "ReLU", "3×3 conv", "BN", "ReLU",
                                             "1×1 conv (expand)", "BN"), "identity", ("ReLU",),
                        "ResNet-50/101/152"),
    "option-a": Block("option A", ("3×3 conv, stride 2", "BN", "ReLU", "3×3 conv", "BN"),
                      "subsample,\nzero-pad channels", ("ReLU",), "no parameters"),
    "option-b": Block("option B", ("3×3 conv, stride 2", "BN", "ReLU", "3×3 conv", "BN"),
                      "1×1 conv, stride 2\n+ BN", ("ReLU",), "projection where the shape changes"),
    "option-c": Block("option C", ("3×3 conv", "BN", "ReLU", "3×3 conv", "BN"), "1×1 conv + BN",
                      ("ReLU",), "projection on every shortcut"),
    "post-activation": Block("post-activation (2015)", ("3×3 conv", "BN", "ReLU", "3×3 conv", "BN"), "identity",
                             ("ReLU",), "ReLU after the sum"),
    "pre-activation": Block("pre-activation (2016)", ("BN", "ReLU", "3×3 conv", "BN", "ReLU", "3×3 conv"),
                            "identity", (), "nothing after the sum"),
    "post-ln": Block("post-LN sublayer", ("attention or MLP",), "identity", ("LayerNorm",),
                     "x ← LN(x + F(x))"),
    "pre-ln": Block("pre-LN sublayer", ("LayerNorm", "attention or MLP"), "identity", (),
                    "x ← x + F(LN(x))"),
}


def _box(ax, x: float, y: float, label: str, width: float = 2.0, height: float = 0.62) -> None:
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.03",
                                facecolor=_FILL[_kind(label)], edgecolor="#333333", linewidth=1.0))
    ax.text(x, y, label, ha="center", va="center", fontsize=8.5, color="#000000")


def _arrow(ax, start: tuple[float, float], end: tuple[float, float], colour: str = "#333333",
           width: float = 1.2) -> None:
    ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle="-|>", color=colour, lw=width,
                                                          shrinkA=0, shrinkB=0))


def _draw(ax, block: Block) -> None:
    from matplotlib.patches import Circle

    from .plots import COLORS

    step = 0.9
    y = 0.0
    ax.text(0, y, "x", ha="center", va="center", fontsize=11, style="italic")
    split = y + 0.45
    y, top = split, split
    for label in block.branch:
        _arrow(ax, (0, top), (0, y + step - 0.31))
        y += step
        _box(ax, 0, y, label)
        top = y + 0.31
    if block.shortcut is not None:
        plus = y + step
        _arrow(ax, (0, top), (0, plus - 0.2))
        ax.add_patch(Circle(
            (0, plus), 0.2, facecolor="white", edgecolor="#333333", linewidth=1.2))
        ax.text(0, plus, "+", ha="center", va="center", fontsize=12, fontweight="bold")
        # the shortcut: right from the split, up, and back into the sum
        side = 1.55
        colour = COLORS["residual"]
        ax.plot([0, side, side], [split, split, plus], color=colour, lw=2.2, solid_capstyle="round")
        _arrow(ax, (side, plus), (0.2, plus), colour=colour, width=2.2)
        ax.text(side + 0.08, (split + plus) / 2, block.shortcut, ha="left", va="center", fontsize=8.5,
                color="#00456B", rotation=0)
        y = plus
        top = plus + 0.2
    for label in block.after:
        _arrow(ax, (0, top), (0, y + step - 0.31))
        y += step
        _box(ax, 0, y, label)
        top = y + 0.31
    _arrow(ax, (0, top), (0, top + 0.5))
    ax.text(0, top + 0.72, "y", ha="center", va="center", fontsize=11, style="italic")
    ax.set_title(block.title + (f"\n{block.note}" if block.note else ""), fontsize=10)
    ax.set_xlim(-1.3, 3.5)
    ax.set_ylim(-0.4, top + 1.0)
    ax.set_aspect("equal")
    ax.axis("off")


def draw_blocks(blocks, height: float = 5.0):
    """A figure with one panel per :class:`Block` (or name in :data:`BLOCKS`), side by side, same scale."""
    import matplotlib.pyplot as plt

    blocks = [BLOCKS[b] if isinstance(b, str) else b for b in blocks]
    fig, axes = plt.subplots(1, len(blocks), figsize=(3.0 * len(blocks), height), squeeze=False)
    for ax, block in zip(axes[0], blocks):
        _draw(ax, block)
    tallest = max(ax.get_ylim()[1] for ax in axes[0])
    for ax in axes[0]:
        ax.set_ylim(-0.4, tallest)
    fig.patch.set_facecolor("white")
    fig.tight_layout()
    return fig


def alt_text(blocks) -> str:
    """A description of the diagram for screen readers: every block's layers, shortcut and sum, in order."""
    blocks = [BLOCKS[b] if isinstance(b, str) else b for b in blocks]
    parts = []
    for block in blocks:
        text = f"{block.title}: from the input x up through {', '.join(block.branch)}"
        if block.shortcut is None:
            text += ", with no shortcut"
        else:
            text += f"; a shortcut ({block.shortcut.replace(chr(10), ' ')}) carries x around them to a sum"
        if block.after:
            text += f"; then {', '.join(block.after)}"
        parts.append(text + ", to the output y.")
    return " ".join(parts)
