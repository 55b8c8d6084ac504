"""A Sphinx extension that drops repeated ``<script>`` tags from every page.

With Sphinx 7.4, a body-only script that an extension adds after the builder
started (sphinx-thebe's ``const THEBE_JS_URL = …`` and sphinx-togglebutton's
selector) is written twice into each page: once as registered with the builder
(file name ``None``) and once more from the registry (file name ``""``). The
second ``const`` declaration throws "Identifier 'THEBE_JS_URL' has already been
declared" in every reader's browser. This keeps the first of each identical script.

Enabled in ``_config.yml`` with ``sphinx: extra_extensions: [book.authoring.sphinx_assets]``.
"""

from __future__ import annotations

__all__ = ["setup"]


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


def setup(app):
    # After every extension's handler (priority 500), before the page is written.
    app.connect("html-page-context", drop_repeated_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
