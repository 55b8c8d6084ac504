"""Build-only tooling: what makes the book, not what learners run. No learner-facing module imports it.

- :mod:`book.authoring.notebooks`      each chapter's ``.ipynb`` for Colab and Jupyter, rendered from its ``.md``
- :mod:`book.authoring.jupyter_markdown` MyST Markdown to the plain Markdown that Jupyter and Colab render
- :mod:`book.authoring.shown_code`     the chapters' code cells that show the package's code, checked and rewritten
  from the package
- :mod:`book.authoring.exercise_pages` the book page and the student notebook of every exercise, from its source
- :mod:`book.authoring.site_check`     headless-Chromium checks of the built site
- :mod:`book.authoring.sphinx_assets`  a Sphinx extension: marks the build for ``book.glue``, makes download buttons give
  the Colab notebook, drops inline scripts written twice on a page
- :mod:`book.authoring.bench`          execution seconds from the build's record and widget latencies (``make bench``)
"""
