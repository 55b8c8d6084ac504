"""The package's code as the chapters show it (book.authoring.shown_code): identical to the package, never printed.

A chapter shows the lines that teach as a code cell whose first line names them (``# book/nets/conv1d.py:
BasicBlock1d.forward``) followed by their source. These tests fail when the package changes and a chapter does
not (``python -m book.authoring.notebooks show-code`` rewrites the cells), when a marker is malformed, and when
a chapter prints source with ``inspect.getsource`` or slices it between string markers.
"""

import re
from pathlib import Path

import pytest

from book.authoring.shown_code import chapter_sources, package_source, problems, shown_cells, sync

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = chapter_sources(ROOT)


def _cell(body: str, tags: str = "") -> str:
    return "```{code-cell} ipython3\n" + (f":tags: [{tags}]\n\n" if tags else "") + body + "\n```\n"


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.stem)
def test_every_shown_cell_is_the_package_source(md):
    assert problems(md, ROOT) == [], "run `python -m book.authoring.notebooks show-code`"


def test_the_chapters_show_code():
    shown = [c for md in CHAPTERS for c in shown_cells(md.read_text())[0]]
    assert len(shown) >= 20
    assert {"train", "BasicBlock1d.forward", "PreLNBlock.forward"} <= {c.name for c in shown}


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.stem)
def test_no_chapter_prints_or_slices_source(md):
    text = md.read_text()
    assert "getsource" not in text and "import inspect" not in text
    assert not re.search(r"""\.split\(\s*['"]{1,3}(?:\"\"\"|self\.)|source\.index\(|\.py["']\)\.read_text""", text)


def test_a_changed_package_line_is_found_and_synced(tmp_path):
    source = package_source("book/nets/conv1d.py", "BasicBlock1d.forward")
    usage = "\n\nblock = BasicBlock1d(16, 16)"
    stale = source.replace("return self.relu(out)", "return out")
    md = tmp_path / "chapter.md"
    md.write_text("# A chapter\n\n" + _cell("# book/nets/conv1d.py: BasicBlock1d.forward\n" + stale + usage) + "\nText.\n")
    found = problems(md, ROOT)
    assert len(found) == 1 and "differs from the package" in found[0]
    assert sync(md, ROOT) and problems(md, ROOT) == []
    assert md.read_text().endswith(source + usage + "\n```\n\nText.\n")      # the usage and the rest kept
    assert not sync(md, ROOT)


def test_a_shorter_package_source_is_not_hidden_by_the_lines_after_it(tmp_path):
    source = package_source("book/nets/conv1d.py", "BasicBlock1d.forward")
    longer = source + "\n        # a line the package no longer has"
    md = tmp_path / "chapter.md"
    md.write_text(_cell("# book/nets/conv1d.py: BasicBlock1d.forward\n" + longer + "\n\nx = 1"))
    assert problems(md, ROOT)
    sync(md, ROOT)
    assert problems(md, ROOT) == [] and "no longer has" not in md.read_text()


@pytest.mark.parametrize("first_line, complaint", [
    ("# book.nets.conv1d: BasicBlock1d.forward", "not a shown-code marker"),
    ("# book/nets/conv1d.py BasicBlock1d.forward", "not a shown-code marker"),
    ("# book/nets/conv1d.py: NoSuchBlock.forward", "has no NoSuchBlock.forward"),
    ("# book/nets/resnets.py: BasicBlock1d.forward", "has no BasicBlock1d"),
    ("# book/nets/transformer.py: ScaledShortcut", "defined in book/nets/shortcuts.py"),
])
def test_a_malformed_marker_is_reported(tmp_path, first_line, complaint):
    md = tmp_path / "chapter.md"
    md.write_text(_cell(first_line + "\ndef forward(self, x):\n    return x"))
    found = problems(md, ROOT)
    assert len(found) == 1 and complaint in found[0], found


def test_a_shown_cell_is_not_hidden_and_parses(tmp_path):
    source = package_source("book/nets/conv1d.py", "PlainBlock1d.forward")
    md = tmp_path / "chapter.md"
    md.write_text(_cell("# book/nets/conv1d.py: PlainBlock1d.forward\n" + source, tags="hide-input")
                  + _cell("# book/nets/conv1d.py: PlainBlock1d.forward\nx = 1")
                  + _cell("# book/nets/conv1d.py: PlainBlock1d.forward\n" + source + "\nx = 1"))
    found = problems(md, ROOT)
    assert any("is hidden" in p for p in found)
    assert any("does not parse" in p or "starts with a def or a class" in p for p in found)
    assert any("leave a blank line" in p for p in found)
    with pytest.raises(ValueError):
        sync(md, ROOT)


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.stem)
def test_every_code_cell_compiles(md):
    import jupytext

    for i, cell in enumerate(jupytext.read(md).cells):
        if cell.cell_type == "code":
            source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
            compile(source, f"{md.name}, code cell {i}", "exec")
