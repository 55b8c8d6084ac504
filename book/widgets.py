"""What every chapter's explorer shares: the :class:`Explorer` base and messages that say what went wrong, safely.

Every explorer (``book.chN_widgets``) subclasses :class:`Explorer`, so it has
the same shape: ``.widget`` to display, controls as attributes that tests and
the benchmark can set, and a ``.message`` HTML widget that shows a clear
sentence instead of a traceback. The explorers use only what ipywidgets 7.7.1
(Colab) and 8.x share.

A new chapter's explorer:

1. subclasses :class:`Explorer`, builds its controls, ``self.message`` and
   ``self.widget``, calls :meth:`Explorer.watch` on the controls that redraw
   live, and implements :meth:`Explorer.redraw`;
2. draws with :meth:`Explorer.show` (the figure replaces the previous one, so
   Colab never stacks old figures under new ones);
3. offers ``bench_cases()`` in its module, which ``make bench`` times.
"""

from __future__ import annotations

import contextlib
import html

__all__ = ["Explorer", "show_message", "MESSAGE_COLOURS"]

# Okabe–Ito-compatible text colours with a contrast ratio ≥ 4.5 on white.
MESSAGE_COLOURS = {"info": "#333333", "ok": "#006B3C", "error": "#B00020"}


def show_message(target, text: str, kind: str = "info", bold: bool = False) -> None:
    """Write ``text`` into an HTML widget, escaped and coloured by ``kind`` (``info``, ``ok``, ``error``).

    ``text`` may come from a learner's input (a value typed into a box ends up in
    error messages), so it is always escaped: ``<`` is shown, never interpreted.
    An empty ``text`` clears the message.
    """
    if not text:
        target.value = ""
        return
    colour = MESSAGE_COLOURS[kind]
    body = html.escape(str(text))
    if bold:
        body = f"<b>{body}</b>"
    target.value = f'<span style="color:{colour}">{body}</span>'


class Explorer:
    """The base of every chapter's explorer: live controls, one redraw per change, figures that replace each other.

    A subclass sets ``self.message`` (an ``ipywidgets.HTML``) and ``self.widget``
    (what a notebook displays) and implements :meth:`redraw`.
    """

    message = None        # the HTML widget for messages (set by the subclass)
    widget = None         # the box a notebook displays (set by the subclass)
    _quiet = False        # True inside batch(): control changes do not redraw

    def redraw(self) -> None:
        raise NotImplementedError

    def watch(self, *controls) -> None:
        """Redraw whenever one of ``controls`` changes value (except inside :meth:`batch`)."""
        for control in controls:
            control.observe(self._changed, names="value")

    def _changed(self, change) -> None:
        if not self._quiet:
            self.redraw()

    @contextlib.contextmanager
    def batch(self):
        """Change several controls without a redraw for each; the caller redraws once afterwards."""
        self._quiet = True
        try:
            yield
        finally:
            self._quiet = False

    def say(self, text: str, kind: str = "info", bold: bool = False) -> None:
        """Show ``text`` in ``.message`` (escaped); an empty text clears it."""
        show_message(self.message, text, kind, bold)

    @staticmethod
    def show(output, fig, close: bool = True) -> None:
        """Display ``fig`` in the ``Output`` widget ``output``, replacing what it showed, then close the figure."""
        from IPython.display import display

        with output:
            output.clear_output(wait=True)
            display(fig)
        if close:
            import matplotlib.pyplot as plt

            plt.close(fig)

    @staticmethod
    def clear(output) -> None:
        """Empty the ``Output`` widget ``output``."""
        output.clear_output()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
