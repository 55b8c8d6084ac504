"""Block diagrams, drawn from a description: one style for every block the course discusses.

A block is drawn bottom to top, as the data flows: the input ``x`` at the bottom, the layers of the branch
stacked above it, the shortcut as a line to the right that rejoins the branch at a ``+`` node, and the
layers after the sum on top. Every box carries its layer's name in text, so no meaning rests on colour;
the figure's background is white, so it reads the same in the book's light and dark themes.

>>> fig = draw_blocks([BLOCKS["plain"], BLOCKS["basic"]])   # two blocks side by side
>>> alt_text([BLOCKS["plain"], BLOCKS["basic"]])            # a sentence per block, for the figure's alt text

Two pictures are not single blocks: :func:`draw_unrolled` draws a residual net beside its unrolled view, one lane
per path (Veit et al. 2016, Fig. 1), and :func:`draw_stream` draws a transformer's residual stream as a bus that
the sublayers read from and write to, in the variants of :data:`STREAMS`. Each has its alt-text function.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Block", "BLOCKS", "draw_blocks", "alt_text", "draw_unrolled", "unrolled_alt_text", "StreamVariant",
           "STREAMS", "draw_stream", "stream_alt_text"]


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
    # He et al. 2016's Fig. 4 and Table 2: where BN and ReLU sit relative to the sum
    "post-activation": Block("original (2015)", ("3×3 conv", "BN", "ReLU", "3×3 conv", "BN"), "identity",
                             ("ReLU",), "ReLU after the sum"),
    "bn-after-add": Block("BN after addition", ("3×3 conv", "BN", "ReLU", "3×3 conv"), "identity",
                          ("BN", "ReLU"), "BN and ReLU after the sum"),
    "relu-before-add": Block("ReLU before addition", ("3×3 conv", "BN", "ReLU", "3×3 conv", "BN", "ReLU"),
                             "identity", (), "branch output ≥ 0"),
    "pre-activation": Block("pre-activation (2016)", ("BN", "ReLU", "3×3 conv", "BN", "ReLU", "3×3 conv"),
                            "identity", (), "nothing after the sum"),
    # Chapters 2–3's MLP layer (book/nets/mlp.py: ResidualLayer, one-layer branch): pre-activation, nothing after
    # the sum; the norm is LayerNorm, BatchNorm or none, and α·g is the branch scale (g = 0 for SkipInit)
    "mlp-residual": Block("residual layer (MLP)", ("norm (optional)", "ReLU", "linear W", "× α·g"), "identity", (),
                          "y = x + α·g·W·ReLU(norm(x))"),
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
    return _panels([BLOCKS[b] if isinstance(b, str) else b for b in blocks], _draw, 3.0, height, bottom=-0.4)


def _panels(items, draw, panel_width: float, height: float, bottom: float):
    """One panel per item, drawn by ``draw(ax, item)`` side by side, all at the tallest panel's scale."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(items), figsize=(panel_width * len(items), height), squeeze=False)
    for ax, item in zip(axes[0], items):
        draw(ax, item)
    tallest = max(ax.get_ylim()[1] for ax in axes[0])
    for ax in axes[0]:
        ax.set_ylim(bottom, tallest)
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


# --------------------------------------------------------------------------- the unrolled view (Veit et al. 2016, Fig. 1)

def _paths(n: int) -> list[tuple[int, ...]]:
    """Every path through n residual blocks, as the blocks whose branch it takes, shortest first."""
    from itertools import combinations

    return [tuple(c) for k in range(n + 1) for c in combinations(range(1, n + 1), k)]


def draw_unrolled(n: int = 3, height: float = 4.6):
    """Left: n residual blocks in a chain, ``x_i = x_{i-1} + f_i(x_{i-1})``. Right: the same net unrolled into its
    2^n paths, one lane each, a box ``f_i`` where the path takes block i's branch and a bare line where it takes the
    shortcut, all lanes summed at the output (Veit et al. 2016, Fig. 1; the ReLU after each sum is left out, as in
    their figure)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle

    from .plots import COLORS

    paths = _paths(n)
    fig, (left, right) = plt.subplots(1, 2, figsize=(3.0 + 1.2 * n, height),
                                      gridspec_kw={"width_ratios": [1.0, 1.2 + 0.35 * n]})
    # the chain, bottom to top, as draw_blocks draws one block
    left.text(0, 0, "x₀", ha="center", va="center", fontsize=11, style="italic")
    y = 0.3
    for i in range(1, n + 1):
        split, box, plus = y + 0.15, y + 0.55, y + 1.2
        _arrow(left, (0, y), (0, box - 0.31))
        _box(left, 0, box, f"f{i}", width=1.0)
        _arrow(left, (0, box + 0.31), (0, plus - 0.2))
        left.add_patch(Circle((0, plus), 0.2, facecolor="white", edgecolor="#333333", linewidth=1.2))
        left.text(0, plus, "+", ha="center", va="center", fontsize=12, fontweight="bold")
        left.plot([0, 0.9, 0.9], [split, split, plus], color=COLORS["residual"], lw=2.0)
        _arrow(left, (0.9, plus), (0.2, plus), colour=COLORS["residual"], width=2.0)
        y = plus + 0.2
    _arrow(left, (0, y), (0, y + 0.35))
    left.text(0, y + 0.55, f"x{chr(0x2080 + n)}", ha="center", va="center", fontsize=11, style="italic")
    left.set_title(f"{n} residual blocks", fontsize=10)
    left.set_xlim(-1.0, 1.6)
    left.set_ylim(-0.4, y + 0.9)
    left.set_aspect("equal")
    left.axis("off")
    # the unrolled view: one lane per path, input on the left, the sum of all lanes on the right
    lanes = len(paths)
    gap = 0.62
    top = (lanes - 1) * gap
    right.text(-0.55, top / 2, "x₀", ha="center", va="center", fontsize=11, style="italic")
    end = 1.3 * (n + 1)
    plus_y = top / 2
    for lane, path in enumerate(paths):
        yl = top - lane * gap
        right.plot([-0.3, 0, 0], [top / 2, top / 2, yl], color="#333333", lw=0.8)
        x = 0.0
        for i in range(1, n + 1):
            centre = 1.3 * i
            if i in path:
                right.plot([x, centre - 0.45], [yl, yl], color="#333333", lw=1.0)
                _box(right, centre, yl, f"f{i}", width=0.9, height=0.44)
                x = centre + 0.45
            else:
                right.plot([x, centre + 0.45], [yl, yl], color=COLORS["residual"], lw=1.8)
                x = centre + 0.45
        right.plot([x, end - 0.2], [yl, yl], color="#333333", lw=0.8)
        right.plot([end - 0.2, end - 0.2], [yl, plus_y], color="#333333", lw=0.8)
        right.text(end + 0.95, yl, f"length {len(path)}", ha="left", va="center", fontsize=7.5, color="#333333")
    right.add_patch(Circle((end, plus_y), 0.22, facecolor="white", edgecolor="#333333", linewidth=1.2))
    right.text(end, plus_y, "+", ha="center", va="center", fontsize=12, fontweight="bold")
    _arrow(right, (end + 0.22, plus_y), (end + 0.7, plus_y))
    right.text(end + 0.45, plus_y - 0.12, f"x{chr(0x2080 + n)}", ha="center", va="top", fontsize=11,
               style="italic")
    right.set_title(f"unrolled: {lanes} paths (thick: the shortcut)", fontsize=10)
    right.set_xlim(-0.9, end + 2.3)
    right.set_ylim(-0.6, top + 0.6)
    right.set_aspect("equal")
    right.axis("off")
    fig.patch.set_facecolor("white")
    fig.tight_layout()
    return fig


def unrolled_alt_text(n: int = 3) -> str:
    """The alt text of :func:`draw_unrolled`: the chain, then every path of the unrolled view."""
    paths = _paths(n)
    names = ", ".join(f"f{i}" for i in range(1, n + 1))
    lanes = "; ".join("the shortcut of every block (length 0)" if not p else
                      f"{', '.join(f'f{i}' for i in p)} (length {len(p)})" for p in paths)
    return (f"Left: {n} residual blocks in a chain from x₀ to x{chr(0x2080 + n)}, each adding its branch ({names}) "
            f"to a shortcut at a sum. Right: the same net unrolled into {len(paths)} paths from x₀, one lane each, "
            f"all added at one sum to give x{chr(0x2080 + n)}; the lanes pass through: {lanes}.")


# --------------------------------------------------------------------------- the residual stream (Chapter 6)

@dataclass(frozen=True)
class StreamVariant:
    """A transformer block drawn on its residual stream: what a sublayer reads, writes, and what sits on the bus."""

    title: str
    read: tuple[str, ...]                 # between the stream and the sublayer, bottom to top
    write: tuple[str, ...] = ()           # between the sublayer and the sum
    on_bus: tuple[str, ...] = ()          # on the stream after the sum (post-LN's LayerNorm)
    bus_scale: str | None = None          # what multiplies the stream before the sum (DeepNorm's α)
    note: str = ""


STREAMS: dict[str, StreamVariant] = {
    "pre-ln": StreamVariant("pre-LN", ("LayerNorm",), note="x ← x + F(LN(x))"),
    "post-ln": StreamVariant("post-LN", (), on_bus=("LayerNorm",), note="x ← LN(x + F(x))"),
    "deepnorm": StreamVariant("DeepNorm", (), on_bus=("LayerNorm",), bus_scale="× α", note="x ← LN(α·x + F(x)), α > 1"),
    "rezero": StreamVariant("ReZero", (), write=("× α_l (0 at init)",), note="x ← x + α_l·F(x), no LayerNorm"),
    "pre-ln-scaled": StreamVariant("LayerNorm Scaling", ("LayerNorm", "× 1/√l"), note="x ← x + F(LN(x)/√l)"),
}

_SUBLAYERS = ("attention", "MLP")


def _draw_stream(ax, variant: StreamVariant) -> None:
    from matplotlib.patches import Circle

    from .plots import COLORS

    colour = COLORS["residual"]
    step, arm = 0.8, 1.7
    _box(ax, 0, 0, "embedding", width=1.7)
    y = 0.31
    for name in _SUBLAYERS:
        split = y + 0.35
        # the read arm: off the bus to the right, up through the read layers and the sublayer
        ax.plot([0, arm], [split, split], color="#333333", lw=1.0)
        yb, top = split, split
        for label in (*variant.read, name, *variant.write):
            _arrow(ax, (arm, top), (arm, yb + step - 0.31))
            yb += step
            _box(ax, arm, yb, label, width=1.9)
            top = yb + 0.31
        plus = yb + step * 0.8
        ax.plot([arm, arm], [top, plus], color="#333333", lw=1.0)
        _arrow(ax, (arm, plus), (0.2, plus))
        # the bus: straight up to the sum (scaled first where the variant scales it)
        if variant.bus_scale:
            ax.plot([0, 0], [y, split], color=colour, lw=3.0)
            ax.text(0.15, split + 0.45, variant.bus_scale, ha="left", va="center", fontsize=8.5, color="#00456B")
        ax.plot([0, 0], [y, plus - 0.2], color=colour, lw=3.0)
        ax.add_patch(Circle((0, plus), 0.2, facecolor="white", edgecolor="#333333", linewidth=1.2, zorder=3))
        ax.text(0, plus, "+", ha="center", va="center", fontsize=12, fontweight="bold", zorder=4)
        y = plus + 0.2
        for label in variant.on_bus:
            ax.plot([0, 0], [y, y + step - 0.31], color=colour, lw=3.0)
            y += step
            _box(ax, 0, y, label, width=1.5)
            y += 0.31
    ax.plot([0, 0], [y, y + 0.5], color=colour, lw=3.0)
    _box(ax, 0, y + 0.81, "unembedding", width=1.7)
    ax.text(-0.2, 0.9, "residual stream", rotation=90, ha="right", va="bottom", fontsize=8, color="#00456B")
    ax.set_title(variant.title + (f"\n{variant.note}" if variant.note else ""), fontsize=10)
    ax.set_xlim(-1.3, 3.0)
    ax.set_ylim(-0.5, y + 1.3)
    ax.set_aspect("equal")
    ax.axis("off")


def draw_stream(variants, height: float = 6.4):
    """One panel per :class:`StreamVariant` (or name in :data:`STREAMS`): one transformer block on its residual
    stream, embedding at the bottom, unembedding on top, the attention and MLP sublayers reading from the stream
    on the right and writing back into it at a sum."""
    return _panels([STREAMS[v] if isinstance(v, str) else v for v in variants], _draw_stream, 2.6, height, bottom=-0.5)


def stream_alt_text(variants) -> str:
    """The alt text of :func:`draw_stream`: for each variant, what each sublayer reads and writes."""
    variants = [STREAMS[v] if isinstance(v, str) else v for v in variants]
    parts = []
    for v in variants:
        arm = ", ".join((*v.read, "the sublayer", *v.write))
        text = (f"{v.title}: the residual stream runs up from the embedding to the unembedding; the attention and "
                f"then the MLP sublayer each read it through {arm} and add the result back into it at a sum")
        if v.bus_scale:
            text += f", the stream multiplied {v.bus_scale} before the sum"
        if v.on_bus:
            text += f", with {', '.join(v.on_bus)} on the stream after each sum"
        parts.append(text + ".")
    return " ".join(parts)
