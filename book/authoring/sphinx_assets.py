"""A Sphinx extension for the built pages: notebook execution, download buttons, repeated scripts.

**Execution.** It sets ``RESIDUAL_COURSE_BOOK_BUILD=1`` in the build's environment, which the kernels
that execute the pages inherit: there :func:`book.glue` stores values and figures for the prose
(``myst_nb.glue``); everywhere else it displays figures itself.

**Downloads.** A page whose source has a notebook beside it (``chapters/02_….md`` and ``chapters/02_….ipynb``)
offers that notebook from its download button: the notebook rendered for Jupyter (a chapter) or the
student notebook (an exercise), the same one its Colab button opens, not the executed page with its
MyST markup and, for an exercise, its solutions.

**Repeated scripts.**

With Sphinx 7.4, a body-only script that an extension adds after the builder
started (sphinx-thebe's ``const THEBE_JS_URL = …`` and sphinx-togglebutton's
selector) is written twice into each page: once as registered with the builder
(file name ``None``) and once more from the registry (file name ``""``). The
second ``const`` declaration throws "Identifier 'THEBE_JS_URL' has already been
declared" in every reader's browser. This keeps the first of each identical script.

Enabled in ``_config.yml`` with ``sphinx: extra_extensions: [book.authoring.sphinx_assets]``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = ["setup", "BOOK_BUILD"]

BOOK_BUILD = "RESIDUAL_COURSE_BOOK_BUILD"  # the same name as book.BOOK_BUILD (no import: keep Sphinx's start light)


def _script_key(script) -> tuple:
    filename = getattr(script, "filename", script) or ""
    attributes = getattr(script, "attributes", {}) or {}
    return (filename, tuple(sorted((k, str(v)) for k, v in attributes.items())))


def drop_repeated_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        key = _script_key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique  # the builder restores its own list before the next page


def offer_the_colab_notebook(app, pagename, templatename, context, doctree) -> None:
    """Point the download button's ``.ipynb`` at the notebook beside the page's source (after the theme copied
    the executed page there)."""
    if not context.get("ipynb_source"):
        return
    beside = Path(app.srcdir) / f"{pagename}.ipynb"
    if beside.exists():
        target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(beside, target)


def setup(app):
    os.environ[BOOK_BUILD] = "1"
    # After sphinx-book-theme's launch buttons (priority 501), which copy the executed notebook to _sources.
    app.connect("html-page-context", offer_the_colab_notebook, priority=800)
    # After every extension's handler (priority 500), before the page is written.
    app.connect("html-page-context", drop_repeated_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
