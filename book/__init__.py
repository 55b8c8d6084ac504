"""The Python package behind *Residual Connections — a course you can run*.

Importing ``book`` has no side effects: it sets no seeds, no matplotlib style
and no thread counts. A notebook opts in with :func:`book.seed` and
:func:`book.plots.use_style`.

The package is layered; a module imports only from its own layer and the ones
above it (``tests/test_layout.py`` enforces this):

Foundations
    - :mod:`book.errors`        one ``ConfigError`` and the validation helpers that raise it
    - :mod:`book.numerics`      the pinned numerical path: one set of bits on every x86-64 CPU (opt-in, before torch computes)
    - :mod:`book.cache`         the result cache, keyed by the code each result imports; atomic writes
    - :mod:`book.records`       recorded runs: long results kept in the repository with their provenance
    - :mod:`book.data`          MNIST-1D, generated offline and cached
    - :mod:`book.sequence_task` the sort task of Chapter 6 and its masked loss
    - :mod:`book.training`      the two training loops (SGD for the conv nets, Adam), one divergence rule, seeds, one thread
    - :mod:`book.probes`        per-layer gradient and activation statistics via hooks
    - :mod:`book.plots`         an opt-in house style with fixed, colourblind-safe colours
    - :mod:`book.diagrams`      block diagrams drawn from a description, one style for the whole course
    - :mod:`book.widgets`       the ``Explorer`` base of every chapter's widget, and escaped messages (ipywidgets 7.7.1 and 8)

Networks (:mod:`book.nets`)
    - :mod:`book.nets.counting`    parameters and multiply-adds of any network, one way for every chapter
    - :mod:`book.nets.shortcuts`   every shortcut module, one definition each
    - :mod:`book.nets.conv1d`      plain and residual 1-D conv nets (the 6n+2 family)
    - :mod:`book.nets.mlp`         plain and residual MLP stacks with ten initializations
    - :mod:`book.nets.resnets`     image ResNets (CIFAR 6n+2, ImageNet 18–152 by their config), shortcut options
    - :mod:`book.nets.transformer` a small transformer with post-LN, pre-LN, DeepNorm and ReZero blocks
    - :mod:`book.nets.skips`       highway, dense, Euler-step, U-Net and hyper-connected networks (Chapter 7)

Chapters (one experiments module and, where the chapter has an explorer, one widgets module)
    - :mod:`book.trained_nets`         the trained 1-D conv nets Chapters 1 to 5 share: DepthRun, TrainedNet, one store
    - :mod:`book.ch1_degradation`      Chapter 1: plain and residual depth runs
    - :mod:`book.ch1_widgets`          Chapter 1's depth explorer
    - :mod:`book.fingerprint`          ``python -m book.fingerprint``: does this machine compute the book's numbers bit for bit?
    - :mod:`book.ch2_learn_the_change` Chapter 2: fitting the identity, inserting zero blocks
    - :mod:`book.ch3_gradient_highway` Chapter 3: gradient flow, initializations, shattered gradients
    - :mod:`book.ch3_widgets`          Chapter 3's gradient-flow explorer and animations
    - :mod:`book.ch4_building_resnets` Chapter 4: the recorded noisy-label runs and learning-rate sweep
    - :mod:`book.reproduce`            Chapter 4's GPU script, the paper's CIFAR-10 figure: ``python -m book.reproduce``
    - :mod:`book.ch5_unrolled_view`    Chapter 5: paths, lesions, path gradients and loss landscapes
    - :mod:`book.ch5_widgets`          Chapter 5's lesion explorer
    - :mod:`book.ch6_residual_stream`  Chapter 6: transformer blocks at initialization and in training
    - :mod:`book.ch6_widgets`          Chapter 6's residual-stream explorer
    - :mod:`book.ch7_family_of_skips`  Chapter 7: highway, DenseNet, the ODE view, U-Net and hyper-connections
    - :mod:`book.ch7_widgets`          Chapter 7's Euler-step explorer

Exercises (:mod:`book.exercises`: import foundations, networks and chapters)
    - :mod:`book.exercises`           the self-checks of the exercise notebooks, one module per exercise:
    - :mod:`book.exercises.feedback`  what a check says to a learner (``Feedback``) and the helpers the checks share
    - :mod:`book.exercises.protocol`  what passes between a learner's kernel and the grader: request, answer, judge
    - :mod:`book.exercises.sources`   reading exercise sources (hidden tests, written answers); the build and the grader only
    - :mod:`book.exercises.ex01`  Exercise 1: weighted layers; a deeper net that computes the same function; overfitting or not
    - :mod:`book.exercises.ex02`  Exercise 2: the residual wrapper; a branch that starts at zero; how big each block's change is
    - :mod:`book.exercises.ex03`  Exercise 3: per-layer gradient norms; an initialization for 100 layers; how small the branches must be
    - :mod:`book.exercises.ex04`  Exercise 4: a basic block; a CIFAR ResNet's parameter count
    - :mod:`book.exercises.ex05`  Exercise 5: counting paths; the network as a sum of paths
    - :mod:`book.exercises.ex06`  Exercise 6: pre- and post-norm blocks; which of DeepNorm's constants keeps the output still
    - :mod:`book.exercises.ex07`  Exercise 7: Sinkhorn–Knopp; the composite gain of products of mixing matrices; trained hyper-connections
    - :mod:`book.exercises.cases`  what the grader's sandbox runs: each check's cases, drawn from a seed, and the answer on them
    - :mod:`book.exercises.cases.ex01`  Exercise 1's cases: drawn nets, made-up runs, smaller data sets
    - :mod:`book.exercises.cases.ex02`  Exercise 2's cases: branches, blocks and stacks to wrap, zero and measure
    - :mod:`book.exercises.cases.ex03`  Exercise 3's cases: stacks to probe and initialize; the predicted activation stds
    - :mod:`book.exercises.cases.ex04`  Exercise 4's cases: block inputs, depths, the tiny data of the early-loss runs
    - :mod:`book.exercises.cases.ex05`  Exercise 5's cases: path counts, branches to unroll, trained nets to swap blocks in
    - :mod:`book.exercises.cases.ex06`  Exercise 6's cases: sublayers and streams, the models a step is taken on
    - :mod:`book.exercises.cases.ex07`  Exercise 7's cases: positive and mixing matrices, small hyper-connected nets

Grading (:mod:`book.grading`: imports foundations, the exercises and itself), in the order a submission meets it
    - :mod:`book.grade`                ``python -m book.grade``: the grader's command (calls :func:`book.grading.cli.main`)
    - :mod:`book.grading`              the grader's package; it imports nothing on import
    - :mod:`book.grading.collect`      find the submissions in a folder, and the exercise sources with their hidden tests
    - :mod:`book.grading.sandbox`      a bubblewrap sandbox with resource limits, one per submission
    - :mod:`book.grading.runner`       runs inside the sandbox: the notebook's cells, then the grader's requests (plain data out)
    - :mod:`book.grading.exchange`     the grader's side of that run: start it, send the requests, read, kill
    - :mod:`book.grading.report`       the runner's report as one typed object, validated in one place
    - :mod:`book.grading.judge`        one submission's row: its answers judged outside the sandbox
    - :mod:`book.grading.verdicts`     the judges, in a child process with their own memory and time limits
    - :mod:`book.grading.manifest`     the grader's own files as shipped (a hash of each), bytecode included
    - :mod:`book.grading.results`      the run's configuration and results, and the text rules of every report
    - :mod:`book.grading.gradebook`    the gradebook, the collection log, feedback and marking files
    - :mod:`book.grading.gradescope`   Gradescope's ``results.json`` and the autograder zip
    - :mod:`book.grading.cli`          the batch and the command line

Authoring (:mod:`book.authoring`, build-only: no module above imports it)
    - :mod:`book.authoring.editions`       the course edition: the book's sources with exercise pages as learners get them
    - :mod:`book.authoring.instructor_bundle` solutions, rubrics, hidden tests, marking guide, gradebook templates, Gradescope zips
    - :mod:`book.authoring.notebooks`      the chapters' ``.ipynb`` for Colab and Jupyter, rendered from the ``.md`` and a build
    - :mod:`book.authoring.colab`          the repository URL and the install cell every notebook starts with
    - :mod:`book.authoring.shown_code`     the cells that show the package's own code, checked and rewritten from it
    - :mod:`book.authoring.jupyter_markdown` MyST Markdown to the plain Markdown that Jupyter and Colab render
    - :mod:`book.authoring.exercise_pages` exercise pages and student notebooks from their sources
    - :mod:`book.authoring.site_check`     headless-Chromium checks of the built site
    - :mod:`book.authoring.sphinx_assets`  a Sphinx extension for the built pages
    - :mod:`book.authoring.bench`          execution seconds and widget latencies (``make bench``)
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


#: Set by the book's Sphinx extension (:mod:`book.authoring.sphinx_assets`) for the notebooks the build executes.
BOOK_BUILD = "RESIDUAL_COURSE_BOOK_BUILD"


def glue(name: str, value, display: bool = False) -> None:
    """Store ``value`` for the book's prose (``{glue:text}`name```) and figures (``{glue:figure}`name```).

    While the book is built, this is ``myst_nb.glue``: the web page shows the value where the prose
    names it. Everywhere else (Colab, a learner's Jupyter, with or without myst-nb installed) a figure,
    or anything else that displays itself, is displayed by the cell that made it, and a plain value
    (a number, a string) prints nothing. It returns ``None``, so a cell that ends with it prints no value.
    """
    import os

    value = _builtin(value)
    if os.environ.get(BOOK_BUILD):
        from myst_nb import glue as _glue

        _glue(name, value, display=display)
    elif display or _displays_itself(value):
        from IPython.display import display as _display

        _display(value)


def _displays_itself(value) -> bool:
    """A matplotlib figure or an object with a rich (non-text) representation; not a number or a string."""
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes, list, tuple, dict)):
        return False
    if type(value).__module__.startswith("matplotlib") and hasattr(value, "savefig"):
        return True
    return any(hasattr(value, f"_repr_{kind}_") for kind in ("png", "svg", "jpeg", "html", "markdown", "latex"))


def _builtin(value):
    """NumPy and 0-d torch scalars as Python numbers: ``{glue:text}`x:.2f``` formats their repr,
    and NumPy 2 writes ``np.float64(0.5)``, which no format spec can read."""
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0 and type(value).__module__.split(".")[0] in ("numpy", "torch"):
        return value.item()
    return value
