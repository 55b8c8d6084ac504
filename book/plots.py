"""An opt-in house style and the course's fixed, colourblind-safe colours.

Nothing here runs on import: a notebook calls :func:`use_style` once. Plain
networks are always vermillion, residual ones always blue (Okabe & Ito's
palette, distinguishable with every common colour-vision deficiency), and the
two also differ in line style, so a figure reads in greyscale too.
"""

from __future__ import annotations

__all__ = ["COLORS", "LINESTYLES", "PALETTE", "use_style", "style_for", "scrubber"]

# Okabe & Ito (2008), "Color Universal Design".
PALETTE = {
    "black": "#000000", "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7",
}
COLORS = {"plain": PALETTE["vermillion"], "residual": PALETTE["blue"],
          "post-ln": PALETTE["vermillion"], "pre-ln": PALETTE["blue"],
          "train": PALETTE["black"], "test": PALETTE["sky"]}
LINESTYLES = {"plain": "--", "residual": "-", "train": "-", "test": ":"}

_STYLE = {
    "figure.facecolor": "white",         # opaque, so figures read in a dark theme too
    "axes.facecolor": "white",
    "savefig.facecolor": "white",
    "figure.dpi": 90,
    "savefig.dpi": 90,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "font.size": 10,
    "axes.prop_cycle": None,  # filled in use_style
}


def use_style() -> None:
    """Apply the course's matplotlib style (opt-in; nothing changes on import)."""
    import matplotlib as mpl
    from cycler import cycler

    style = dict(_STYLE)
    style["axes.prop_cycle"] = cycler(color=[PALETTE[k] for k in
                                             ("blue", "vermillion", "green", "orange", "purple", "sky", "black")])
    mpl.rcParams.update(style)


def style_for(residual: bool) -> dict:
    """Keyword arguments for ``ax.plot``: colour and line style of plain vs residual."""
    kind = "residual" if residual else "plain"
    return {"color": COLORS[kind], "linestyle": LINESTYLES[kind]}


def scrubber(fig, draw_frame, n_frames: int, interval: int = 900, alt: str | None = None):
    """A kernel-free explorer for the static web book.

    Returns an ``IPython.display.HTML`` holding a matplotlib animation exported
    with ``to_jshtml()``: its slider scrubs through ``n_frames`` precomputed
    frames, so a reader without a kernel can still explore a sweep.

    Args:
        fig: the figure to animate.
        draw_frame: ``draw_frame(i)`` redraws the figure for frame ``i``.
        n_frames: how many frames.
        interval: milliseconds between frames when playing.
        alt: alt text of the frames; by default the figure's titles and axis labels.
    """
    import matplotlib.pyplot as plt
    from IPython.display import HTML
    from matplotlib.animation import FuncAnimation

    anim = FuncAnimation(fig, lambda i: draw_frame(i) or [], frames=n_frames, interval=interval, blit=False)
    html = _without_icon_font(anim.to_jshtml(default_mode="once"))
    html = _accessible_player(html, alt or _describe(fig))
    plt.close(fig)
    return HTML(html)


def _describe(fig) -> str:
    """A figure's titles and axis labels, as alt text for its animation frames."""
    parts = [fig._suptitle.get_text()] if getattr(fig, "_suptitle", None) else []
    for ax in fig.axes:
        label = ", ".join(t for t in (ax.get_title(), ax.get_ylabel() and f"{ax.get_ylabel()} against "
                                      f"{ax.get_xlabel() or 'x'}") if t)
        if label:
            parts.append(label)
    return "Animation: " + ("; ".join(parts) or "a sweep") + ". Move the frame slider to step through it."


def _accessible_player(html: str, alt: str) -> str:
    """Alt text on the frame image and a name on the frame slider of a ``to_jshtml`` player."""
    import html as html_lib
    import re

    alt = html_lib.escape(alt, quote=True)
    html = re.sub(r'<img id="(_anim_img\w+)"', rf'<img id="\1" alt="{alt}"', html, count=1)
    return re.sub(r'<input id="(_anim_slider\w+)" type="range"',
                  rf'<input id="\1" type="range" aria-label="animation frame"', html, count=1)


# matplotlib's player loads Font Awesome from a CDN for its button icons; the book works
# offline, so the icons become plain Unicode symbols and the stylesheet link goes.
_ICONS = {
    "fa fa-play fa-flip-horizontal": "&#9664;", "fa fa-fast-backward": "&#9664;&#9664;", "fa fa-fast-forward": "&#9654;&#9654;",
    "fa fa-step-backward": "&#9664;&#9646;", "fa fa-step-forward": "&#9646;&#9654;", "fa fa-pause": "&#9646;&#9646;",
    "fa fa-play": "&#9654;", "fa fa-minus": "&minus;", "fa fa-plus": "+",
}


def _without_icon_font(html: str) -> str:
    import re

    html = re.sub(r'<link rel="stylesheet"\s+href="[^"]*font-awesome[^"]*">', "", html)
    for cls, symbol in _ICONS.items():
        html = html.replace(f'<i class="{cls}"></i>', f'<span aria-hidden="true">{symbol}</span>')
    return html
