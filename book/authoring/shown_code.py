"""The package's code as the chapters show it: highlighted code cells that learners can run and edit.

A chapter shows the lines that teach (a block's ``forward``, a probe, the training loop) as an ordinary
code cell whose first line names where they come from, followed by that object's source, verbatim and
dedented::

    # book/nets/conv1d.py: BasicBlock1d.forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.branch(x) + self.shortcut(x)  # the residual sum, out of place
        return self.relu(out)

    block = BasicBlock1d(16, 16).eval()
    assert torch.equal(forward(block, x), block(x))

The shown source is the first statement of the cell (a ``def`` or a ``class``, with its decorators and
comments); lines after it, separated by a blank line, are the chapter's own (here: a line that uses the
function, so that a learner who edits it and runs the cell sees what changed). A method is shown as a
function of ``self``; the package's classes are never patched.

:func:`problems` lists the shown cells that differ from the package (``check-code``); :func:`sync`
rewrites them from the package (``show-code``), a text edit that keeps the rest of the ``.md`` byte for
byte. ``tests/test_shown_code.py`` fails when the package changes and a chapter does not.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: The first line of a shown cell: ``# book/<path>.py: <qualified name>``.
MARKER = re.compile(r"^# (book/(?:\w+/)*\w+\.py): (\w+(?:\.\w+)*)$")
#: A first line that looks like a marker attempt (a comment naming a file of the package).
LOOKS_LIKE_MARKER = re.compile(r"^#\s*(?:from\s+)?book[/.]")
#: Tags that hide a cell's code on the web page: a shown cell must not carry them.
HIDING_TAGS = {"hide-input", "remove-input", "remove-cell", "hide-cell"}

# A MyST code cell: its fence and option lines, its source, its closing fence.
_CELL = re.compile(r"(```\{code-cell\}[^\n]*\n((?::[^\n]*\n)*)(?:\n)?)(.*?)(\n```)", re.S)

__all__ = ["MARKER", "ShownCell", "shown_cells", "package_source", "problems", "sync", "chapter_sources"]


@dataclass
class ShownCell:
    """One shown cell of a chapter: where its code is in the ``.md`` and what it names."""

    path: str          # book/nets/conv1d.py
    name: str          # BasicBlock1d.forward
    shown: str         # the source as the chapter shows it (after the marker line)
    start: int         # offsets of ``shown`` in the .md text
    end: int
    line: int          # the marker's line number in the .md (1-based)
    tags: tuple[str, ...]

    @property
    def marker(self) -> str:
        return f"# {self.path}: {self.name}"


def chapter_sources(root: Path = ROOT) -> list[Path]:
    """Every chapter's MyST source."""
    return sorted((root / "chapters").glob("*.md"))


def package_source(path: str, name: str, root: Path = ROOT) -> str:
    """The dedented source of ``name`` in the package file ``path`` (``book/nets/conv1d.py``), without a
    trailing newline. Raises ``LookupError`` when the file does not define it."""
    module_name = path.removesuffix(".py").replace("/", ".").removesuffix(".__init__")
    module = importlib.import_module(module_name)
    obj = module
    for part in name.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise LookupError(f"{path} has no {name}") from None
    obj = inspect.unwrap(obj)
    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    if isinstance(obj, property):
        obj = obj.fget
    where = Path(inspect.getsourcefile(obj)).resolve()
    if where != (root / path).resolve():
        raise LookupError(f"{name} is defined in {where.relative_to(root) if where.is_relative_to(root) else where}, "
                          f"not in {path}: name the file that defines it")
    return textwrap.dedent(inspect.getsource(obj)).rstrip("\n")


def _shown_end(code: str) -> int:
    """Where the shown source ends in ``code`` (the text after the marker line): the end of its first
    statement, with the indented lines (comments) that follow it."""
    tree = ast.parse(code)
    if not tree.body or not isinstance(tree.body[0], (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        raise SyntaxError("a shown cell starts with a def or a class after its first line")
    lines = code.split("\n")
    end = tree.body[0].end_lineno
    while end < len(lines) and (lines[end][:1] in (" ", "\t") or
                                (not lines[end].strip() and end + 1 < len(lines) and lines[end + 1][:1] in (" ", "\t"))):
        end += 1
    return len("\n".join(lines[:end]))


def shown_cells(text: str) -> tuple[list[ShownCell], list[str]]:
    """The shown cells of a chapter's MyST text, and the problems of form found on the way (a marker that
    is malformed, a shown cell that does not parse or is hidden, a shown source that is not followed by a
    blank line)."""
    cells, errors = [], []
    for match in _CELL.finditer(text):
        body, body_start = match[3], match.start(3)
        first, _, rest = body.partition("\n")
        line = text.count("\n", 0, body_start) + 1
        if not LOOKS_LIKE_MARKER.match(first):
            continue
        marker = MARKER.match(first)
        if not marker:
            errors.append(f"line {line}: {first!r} is not a shown-code marker: write `# book/<file>.py: <name>`")
            continue
        tags = tuple(re.findall(r"[\w-]+", (re.search(r"^:tags:\s*\[(.*)\]", match[2], re.M) or [None, ""])[1]))
        if HIDING_TAGS & set(tags):
            errors.append(f"line {line}: the shown cell of {marker[2]} is hidden ({', '.join(tags)}): shown code is "
                          "code a learner reads")
        try:
            end = _shown_end(rest)
        except SyntaxError as err:
            errors.append(f"line {line}: the shown cell of {marker[2]} does not parse: {err}")
            continue
        if rest[end:] and not rest[end:].startswith("\n\n"):
            errors.append(f"line {line}: leave a blank line after the shown source of {marker[2]}")
        start = body_start + len(first) + 1
        cells.append(ShownCell(marker[1], marker[2], rest[:end], start, start + end, line, tags))
    return cells, errors


def problems(md_path: Path, root: Path = ROOT) -> list[str]:
    """The shown cells of ``md_path`` that differ from the package, or whose marker names nothing."""
    rel = md_path.relative_to(root) if md_path.is_relative_to(root) else md_path
    cells, errors = shown_cells(md_path.read_text())
    out = [f"{rel}, {e}" for e in errors]
    for cell in cells:
        try:
            want = package_source(cell.path, cell.name, root)
        except (LookupError, ImportError, OSError, TypeError) as err:
            out.append(f"{rel}, line {cell.line}: {cell.marker}: {err}")
            continue
        if cell.shown != want:
            out.append(f"{rel}, line {cell.line}: {cell.marker} differs from the package "
                       "(`python -m book.authoring.notebooks show-code`)")
    return out


def sync(md_path: Path, root: Path = ROOT) -> bool:
    """Rewrite the shown cells of ``md_path`` from the package; True if the file changed. Raises
    ``ValueError`` on a malformed shown cell (fix it by hand: sync never guesses)."""
    text = md_path.read_text()
    cells, errors = shown_cells(text)
    if errors:
        raise ValueError("\n".join(f"{md_path.name}, {e}" for e in errors))
    new = text
    for cell in reversed(cells):
        new = new[:cell.start] + package_source(cell.path, cell.name, root) + new[cell.end:]
    if new == text:
        return False
    md_path.write_text(new)
    return True
