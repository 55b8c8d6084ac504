"""The Python package behind *Residual Connections — a course you can run*.

Importing ``book`` has no side effects: it sets no seeds, no matplotlib style
and no thread counts. A notebook opts in with :func:`book.seed` and
:func:`book.plots.use_style`.

Submodules (imported on demand):

- :mod:`book.data`        MNIST-1D, generated offline and cached
- :mod:`book.models`      plain and residual 1-D conv nets (Chapter 1's networks)
- :mod:`book.training`    a fast in-memory training loop with a divergence guard
- :mod:`book.experiments` cached experiments behind the chapters and widgets
- :mod:`book.plots`       an opt-in house style with fixed, colourblind-safe colours
- :mod:`book.widgets`     Chapter 1's explorer (every ``*_widgets`` module runs on ipywidgets 7.7.1 and 8)
- :mod:`book.mlp`         plain and residual MLP stacks with the initializations of Chapter 3
- :mod:`book.probes`      per-layer gradient and activation statistics via hooks
- :mod:`book.gradflow`    the experiments of Chapters 2 and 3
- :mod:`book.resnets`     image ResNets (CIFAR 6n+2, ImageNet 18–152), shortcut options and variants
- :mod:`book.reproduce`   the paper's CIFAR-10 experiment: ``python -m book.reproduce``
- :mod:`book.unrolled`    paths, lesions, path gradients and loss landscapes (Chapter 5)
- :mod:`book.transformer` a small transformer with post-LN, pre-LN, DeepNorm, ReZero blocks (Chapter 6)
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
    _glue(name, _builtin(value), display=display)
    return value


def _builtin(value):
    """NumPy and 0-d torch scalars as Python numbers: ``{glue:text}`x:.2f``` formats their repr,
    and NumPy 2 writes ``np.float64(0.5)``, which no format spec can read."""
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0 and type(value).__module__.split(".")[0] in ("numpy", "torch"):
        return value.item()
    return value
