"""Keep every notebook's paired ``.ipynb`` in sync with its MyST ``.md`` source.

``python -m book.authoring.notebooks sync``  writes (or updates) the ``.ipynb`` next to each
``.md`` in ``chapters/``: same cells, no outputs, and the Colab
install cell (from ``_config.yml``) as the first code cell.
``python -m book.authoring.notebooks check`` exits 1 and lists what is out of sync.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..colab import INSTALL_MARKER, install_cell

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("chapters",)  # exercises pair with generated student notebooks: see book.authoring.exercise_pages

__all__ = ["sources", "expected_notebook", "sync", "check"]


def sources(root: Path = ROOT) -> list[Path]:
    """Every MyST notebook source (``.md`` with a jupytext header) in the notebook folders."""
    out = []
    for folder in FOLDERS:
        for path in sorted((root / folder).glob("*.md")):
            if path.read_text().lstrip().startswith("---") and "jupytext:" in path.read_text():
                out.append(path)
    return out


def _first_code_cell(nb):
    return next((c for c in nb.cells if c.cell_type == "code"), None)


def expected_notebook(md_path: Path, root: Path = ROOT):
    """The ``.ipynb`` that ``md_path`` should pair with: outputs stripped, install cell first."""
    import jupytext

    nb = jupytext.read(md_path)
    first = _first_code_cell(nb)
    if first is None or not first.source.startswith(INSTALL_MARKER):
        raise ValueError(f"{md_path}: the first code cell must be the Colab install cell "
                         f"(run `python -m book.authoring.notebooks sync --fix-install`)")
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("jupytext", None)
    nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"})
    nb.metadata["colab"] = {"provenance": []}
    return nb


def _strip_ids(nb) -> dict:
    d = dict(nb)
    cells = []
    for c in nb.cells:
        c = dict(c)
        c.pop("id", None)
        cells.append(c)
    d["cells"] = cells
    return d


def fix_install_cell(md_path: Path, root: Path = ROOT) -> bool:
    """Make the first code cell of ``md_path`` the current install cell; True if changed."""
    import jupytext

    nb = jupytext.read(md_path)
    first = _first_code_cell(nb)
    want = install_cell(root)
    if first is not None and first.source == want:
        return False
    if first is not None and first.source.startswith(INSTALL_MARKER):
        first.source = want
    else:
        from nbformat.v4 import new_code_cell

        index = nb.cells.index(first) if first is not None else len(nb.cells)
        nb.cells.insert(index, new_code_cell(want, metadata={"tags": ["remove-cell"]}))
    jupytext.write(nb, md_path, fmt="md:myst")
    return True


def sync(root: Path = ROOT, fix_install: bool = True) -> list[Path]:
    """Write every out-of-date ``.ipynb``; returns the paths written."""
    import jupytext

    written = []
    for md in sources(root):
        if fix_install:
            fix_install_cell(md, root)
        nb = expected_notebook(md, root)
        target = md.with_suffix(".ipynb")
        if target.exists():
            current = jupytext.read(target)
            # keep cell ids stable across syncs (clean diffs)
            for new, old in zip(nb.cells, current.cells):
                if "id" in old and new.source == old.source:
                    new["id"] = old["id"]
        jupytext.write(nb, target, fmt="ipynb")
        written.append(target)
    return written


def check(root: Path = ROOT) -> list[str]:
    """Problems found: missing or stale pairs, outputs, a missing install cell."""
    import jupytext

    problems = []
    for md in sources(root):
        target = md.with_suffix(".ipynb")
        if not target.exists():
            problems.append(f"{target.relative_to(root)} is missing")
            continue
        try:
            want = expected_notebook(md, root)
        except ValueError as err:
            problems.append(str(err))
            continue
        if _first_code_cell(want).source != install_cell(root):
            problems.append(f"{md.relative_to(root)}: the install cell is not the one _config.yml gives")
        have = jupytext.read(target)
        if any(c.get("outputs") for c in have.cells if c.cell_type == "code"):
            problems.append(f"{target.relative_to(root)} holds outputs")
        if [(c.cell_type, c.source) for c in have.cells] != [(c.cell_type, c.source) for c in want.cells]:
            problems.append(f"{target.relative_to(root)} is out of sync with its .md")
    return problems


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = argv[0] if argv else "check"
    if command == "sync":
        for path in sync():
            print(f"synced {path.relative_to(ROOT)}")
        return 0
    if command == "check":
        problems = check()
        for p in problems:
            print(p)
        print("all notebooks in sync" if not problems else f"{len(problems)} problem(s)")
        return 1 if problems else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
