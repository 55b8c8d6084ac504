"""The one widget helper every chapter's explorer uses: messages that say what went wrong, safely.

Every explorer (``book.chN_widgets``) has the same shape: ``.widget`` to
display, controls as attributes that tests and the benchmark can set, and a
``.message`` HTML widget that shows a clear sentence instead of a traceback.
The explorers use only what ipywidgets 7.7.1 (Colab) and 8.x share.
"""

from __future__ import annotations

import html

__all__ = ["show_message", "MESSAGE_COLOURS"]

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
