"""What a learner's sandbox computes for the grader: each check's cases, drawn from a seed, and the answer on them.

One module per exercise (``ex01`` … ``ex07``, beside the exercise modules of the same names one level up). Each
holds the case generators its checks share with the grader, the sandbox's half of each check in ``ANSWERS`` (it
calls the learner's code on the cases and writes down what comes back, see
:func:`book.exercises.protocol.answer`), and ``SELF_CHECKS``, the names a notebook imports from
``book.exercises``. Nothing here knows the right answer: the references and the verdicts are in the exercise
modules, which the grader's sandbox does not hold (:func:`book.grading.sandbox.learner_package`).
"""

from __future__ import annotations

from ..protocol import ANSWERS
from . import ex01, ex02, ex03, ex04, ex05, ex06, ex07

CASE_MODULES = (ex01, ex02, ex03, ex04, ex05, ex06, ex07)

for _module in CASE_MODULES:
    _clash = set(_module.ANSWERS) & set(ANSWERS)
    if _clash:
        raise ImportError(f"{_module.__name__} registers {sorted(_clash)}, which another exercise registered already")
    ANSWERS.update(_module.ANSWERS)

SELF_CHECKS = tuple(name for module in CASE_MODULES for name in module.SELF_CHECKS)
