"""Self-checks for the exercise notebooks, and where their sources and hidden tests are.

One module per exercise (:mod:`book.exercises.ex01` … ``ex07``) holds that exercise's checks, their references and
the grader's judge of each; :mod:`book.exercises.cases` holds the cases they draw and the sandbox's answers. What they share is one module per concern: :mod:`book.exercises.feedback` (what a
check says to a learner), :mod:`book.exercises.protocol` (what passes between a learner's kernel and the
grader) and :mod:`book.exercises.sources` (reading exercise sources; the build and the grader use it, a
learner's notebook never imports it). Notebooks import every check from here:
``from book.exercises import check_basic_block``.

For learners: every task ends with a check cell such as ``check_basic_block(BasicBlock)``. A check
runs your code on small inputs and answers in words: what it expected, what your code did, and,
for the usual mistakes, what to change. It never raises; it returns a :class:`Feedback` that the
notebook shows as a green or red box.

For instructors (see ``instructors.md``): each exercise has one source,
``exercises/source/exNN_name.md``, a MyST notebook whose cells carry tags:

- ``solution`` on a code cell: the lines between ``### BEGIN SOLUTION`` and ``### END SOLUTION``
  are replaced by ``raise NotImplementedError(...)`` in the student notebook; the book page shows
  the whole cell behind a toggle.
- ``solution`` on a markdown cell: notes shown in a dropdown on the book page, dropped for students.
- ``hidden-test`` on a code cell, with metadata ``task``, ``points`` and ``title``: run by
  ``python -m book.grade`` after the submission, left out of the student notebook and the book page.
- ``answer`` on a markdown cell, with metadata ``task``, ``answer`` (an id such as ``3b``), ``points`` and
  ``title``, its first line ``**Your answer (3b)**``: a written answer; the grader collects the learner's text
  for review (see :func:`book.exercises.sources.collect_answers`).
- ``rubric`` on a markdown cell, with metadata ``answer``: how to mark that answer; in the grader's feedback
  file only.
- ``book-only`` on a code cell: runs on the book page, hidden there, left out of the student notebook (the
  ``glue`` calls that put the solution's measured numbers into a model answer).

``python -m book.authoring.exercise_pages build`` writes ``exercises/exNN_name.md`` (the book page,
with solutions) and ``exercises/exNN_name.ipynb`` (the student notebook for Colab);
``python -m book.authoring.exercise_pages check`` exits 1 when either is missing or stale.
"""

from __future__ import annotations

from .feedback import NOT_DONE, Feedback, TaskFailed, grade_task
from . import cases  # noqa: F401 - fills protocol.ANSWERS, the sandbox's half of each check
from .protocol import JUDGED

import importlib as _importlib

try:
    ex01, ex02, ex03, ex04, ex05, ex06, ex07 = (_importlib.import_module(f"{__name__}.ex0{n}") for n in range(1, 8))
except ModuleNotFoundError as _missing:
    # Only in the grader's sandbox, whose copy of the package has no exercise modules (their references stay with
    # the grader): the self-checks there are stand-ins, and the grader judges each task outside the notebook.
    if not (_missing.name or "").startswith(f"{__name__}.ex0"):
        raise
    from .cases import SELF_CHECKS as _SELF_CHECKS
    from .cases.ex03 import predicted_activation_stds  # noqa: F401 - a helper the notebook uses, not a check

    def _not_checked_here(name: str):
        def check(*args, **kwargs) -> Feedback:
            return Feedback(name, True, "not checked here: under the grader, the self-checks do not run; the grader "
                                        "judges this task itself, outside your notebook.")
        check.__name__ = name
        return check

    globals().update({_name: _not_checked_here(_name) for _name in _SELF_CHECKS})
    EXERCISE_MODULES = ()
    __all__ = ["Feedback", "TaskFailed", "grade_task", "NOT_DONE", "EXERCISE_MODULES", *_SELF_CHECKS,
               "predicted_activation_stds"]
else:
    from .ex01 import *  # noqa: F403
    from .ex02 import *  # noqa: F403
    from .ex03 import *  # noqa: F403
    from .ex04 import *  # noqa: F403
    from .ex05 import *  # noqa: F403
    from .ex06 import *  # noqa: F403
    from .ex07 import *  # noqa: F403

    EXERCISE_MODULES = (ex01, ex02, ex03, ex04, ex05, ex06, ex07)

    for _module in EXERCISE_MODULES:
        _clash = set(_module.JUDGED) & set(JUDGED)
        if _clash:
            raise ImportError(f"{_module.__name__} registers {sorted(_clash)}, which another exercise registered "
                              "already")
        JUDGED.update(_module.JUDGED)

    __all__ = ["Feedback", "TaskFailed", "grade_task", "NOT_DONE", "EXERCISE_MODULES",
               *(name for module in EXERCISE_MODULES for name in module.__all__)]
