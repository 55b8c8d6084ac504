"""The book's two editions, from one source.

- **public** (``make book``): the site for self-learners, solutions behind toggles, model answers in dropdowns.
- **course** (``make book EDITION=course``): the same site for a class that hands the exercises in: every exercise
  page shows its tasks as the student notebook does (solutions stubbed, no solution notes, model answers,
  rubrics or hidden tests), and its Colab and download buttons give the student notebook.

The course edition is built from a source tree of its own, ``_build/course-src`` by default: the repository's
chapters, configuration and assets linked in, its ``exercises/`` holding the course pages and the student
notebooks. Nothing in the repository is changed, and the public build's files are not touched.

``python -m book.authoring.editions course [DEST]`` writes that tree (``make book EDITION=course`` then builds it
into ``_build/course``).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from ..exercises.sources import exercise_sources
from .exercise_pages import ROOT, SOURCE_DIR, book_page, student_notebook

__all__ = ["COURSE_SOURCE", "course_tree", "main"]

COURSE_SOURCE = ROOT / "_build" / "course-src"

# What the course tree links from the repository (everything the book's pages and configuration read).
LINKED = ("_config.yml", "_toc.yml", "intro.md", "references.md", "references.bib", "instructors.md",
          "chapters", "_assets", "LICENSE", "LICENSE-CONTENT")


def course_tree(dest: Path = COURSE_SOURCE, root: Path = ROOT, source_dir: Path = SOURCE_DIR) -> Path:
    """Write the course edition's source tree at ``dest`` (replacing it); return ``dest``."""
    import nbformat

    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "exercises").mkdir(parents=True)
    for name in LINKED:
        if (root / name).exists():
            os.symlink(root / name, dest / name)
    for source in exercise_sources(source_dir):
        (dest / "exercises" / f"{source.stem}.md").write_text(book_page(source, root, edition="course"))
        (dest / "exercises" / f"{source.stem}.ipynb").write_text(
            nbformat.writes(student_notebook(source, root), version=4) + "\n")
    return dest


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] != "course":
        print(__doc__)
        return 2
    dest = course_tree(Path(argv[1]) if len(argv) > 1 else COURSE_SOURCE)
    print(f"wrote the course edition's sources to {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
