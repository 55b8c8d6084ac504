"""book.glue: stores values and figures for the prose while the book is built; outside the book it
displays a figure in the cell that made it and prints nothing for a value (Colab, a learner's Jupyter)."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

import book

KERNEL_LIKE = r"""
import sys
sys.modules["myst_nb"] = None           # as on Colab
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
import matplotlib
matplotlib.use("Agg")
from IPython.core.pylabtools import select_figure_formats
select_figure_formats(shell, {"png"})             # figures display as PNG, as in a Jupyter kernel
shown = []
shell.display_pub.publish = lambda data, metadata=None, **kw: shown.append(sorted(data))
result = shell.run_cell('''
import book, numpy as np
import matplotlib.pyplot as plt
fig, ax = plt.subplots()
ax.plot([0, 1])
book.glue("x", np.float64(3.5))
book.glue("fig-x", fig, display=False)
plt.close(fig)
book.glue("y", 2)
''')
assert result.success, result.error_in_exec
print(shown)
print(repr(result.result))
"""


def test_outside_the_book_a_figure_is_displayed_and_a_value_prints_nothing():
    out = subprocess.run([sys.executable, "-c", KERNEL_LIKE], capture_output=True, text=True, check=True).stdout
    shown, last = out.strip().splitlines()[-2:]
    assert shown.count("image/png") == 1, shown     # the figure, once; nothing for the two values
    assert last == "None"                            # a cell ending in book.glue(...) prints no value


def test_glue_returns_nothing(monkeypatch):
    monkeypatch.delenv(book.BOOK_BUILD, raising=False)
    assert book.glue("a", 3) is None


def test_in_the_book_build_values_go_to_myst_nb_as_python_numbers(monkeypatch):
    import numpy as np
    import torch

    stored = {}
    fake = types.ModuleType("myst_nb")
    fake.glue = lambda name, value, display=False: stored.__setitem__(name, (value, display))
    monkeypatch.setitem(sys.modules, "myst_nb", fake)
    monkeypatch.setenv(book.BOOK_BUILD, "1")
    assert book.glue("a", np.float64(0.25)) is None
    book.glue("b", torch.tensor(2.0))
    book.glue("c", "text", display=True)
    assert type(stored["a"][0]) is float and type(stored["b"][0]) is float
    assert stored["c"] == ("text", True)


def test_the_sphinx_extension_marks_the_build_for_its_kernels(monkeypatch):
    from book.authoring import sphinx_assets

    monkeypatch.setenv(book.BOOK_BUILD, "")      # restored (unset) after the test: setup() writes os.environ
    app = types.SimpleNamespace(connect=lambda *a, **k: None)
    sphinx_assets.setup(app)
    import os

    assert os.environ[book.BOOK_BUILD] == "1" and sphinx_assets.BOOK_BUILD == book.BOOK_BUILD


@pytest.mark.parametrize("value, shows", [(3, False), (0.5, False), ("2,080", False), (True, False), ([1, 2], False)])
def test_what_displays_itself(value, shows):
    assert book._displays_itself(value) is shows
