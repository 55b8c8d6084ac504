"""The Python package behind *Residual Connections — a course you can run*.

Importing ``book`` has no side effects: it sets no seeds, no matplotlib style
and no thread counts. A notebook opts in with :func:`book.seed` and
:func:`book.plots.use_style`.

Submodules (imported on demand):

- :mod:`book.data`        MNIST-1D, generated offline and cached
- :mod:`book.models`      plain and residual stacks (1-D conv nets and MLPs)
- :mod:`book.training`    a fast in-memory training loop with a divergence guard
- :mod:`book.experiments` cached experiments behind the chapters and widgets
- :mod:`book.plots`       an opt-in house style with fixed, colourblind-safe colours
- :mod:`book.widgets`     ipywidgets explorers that run on ipywidgets 7.7.1 and 8
- :mod:`book.colab`       the repository URL and the Colab install cell
- :mod:`book.exercises`   self-checks for the exercise notebooks, and their generator
- :mod:`book.grading`     ``python -m book.grade``: grade a folder of submitted notebooks
"""

__version__ = "0.1.0"


def seed(value: int = 0) -> None:
    """Seed Python's, NumPy's and PyTorch's random generators (opt-in)."""
    import random

    import numpy as np
    import torch

    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)


def glue(name: str, value, display: bool = False):
    """Store ``value`` for the book's prose (``{glue:text}`name```); returns ``value``.

    Uses ``myst_nb.glue`` while the book is built. Where myst-nb is not
    installed (Colab, a plain Jupyter), it does nothing, so the same notebook
    runs everywhere.
    """
    try:
        from myst_nb import glue as _glue
    except ImportError:
        return value
    _glue(name, value, display=display)
    return value
