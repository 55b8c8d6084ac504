"""``python -m book.grade SUBMISSIONS --out OUT``: grade a folder of submitted exercise notebooks.

The command of the grader, :mod:`book.grading` (``python -m book.grade --help`` lists its options;
``instructors.md`` says how to grade a class).
"""

from __future__ import annotations

import sys

from .grading.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
