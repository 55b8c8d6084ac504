"""Build-only tooling: what makes the book, not what learners run. No learner-facing module imports it.

- :mod:`book.authoring.notebooks`      pairing sync and check of each chapter's ``.md`` and ``.ipynb``
- :mod:`book.authoring.exercise_pages` the book page and the student notebook of every exercise, from its source
- :mod:`book.authoring.site_check`     headless-Chromium checks of the built site
- :mod:`book.authoring.sphinx_assets`  a Sphinx extension that drops inline scripts written twice on a page
- :mod:`book.authoring.bench`          execution seconds from the build's record and widget latencies (``make bench``)
"""
