"""``python -m book.grade SUBMISSIONS --out OUT [--gradescope]``: see :mod:`book.grading`."""

import sys

from .grading import main

if __name__ == "__main__":
    sys.exit(main())
