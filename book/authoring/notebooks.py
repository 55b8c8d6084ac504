"""The notebooks a Colab badge opens: each chapter's ``.ipynb``, rendered for Jupyter from its MyST ``.md``.

The ``.md`` is the one source; the web page is built from it. Its ``.ipynb`` beside it is what a learner
opens in Colab or downloads, so it has to read like the page in plain Jupyter, where myst-nb is absent:

- the Markdown is converted by :mod:`book.authoring.jupyter_markdown` (no MyST left): glued numbers
  become the numbers of the book's own build, citations author–year links to the web page's references,
  admonitions quoted blocks, dropdowns ``<details>``;
- each figure is displayed by the cell that draws it (:func:`book.glue` does that outside the book), and
  its caption follows that cell as text;
- a note under the title says that the text's numbers come from the book's run, and the cited works are
  listed at the end;
- code cells keep their code, without outputs; cells hidden on the web page start folded
  (``# @title`` and ``cellView: form`` on Colab, ``source_hidden`` in JupyterLab); the first is the
  install cell (:func:`book.authoring.colab.install_cell`).

The glued numbers come from the executed notebooks of a book build (``_build/jupyter_execute``). Each
generated notebook keeps the values it used in its metadata, so ``sync`` and ``check`` need no build.

Commands (``python -m book.authoring.notebooks …``)::

    colab   after a book build: render every notebook with the build's numbers (`make book` runs it)
    sync    put the current install cell and shown code into every .md, render every notebook with the numbers it
            already holds (for a change of prose; a new glued name needs `colab` after a build)
    check   exit 1 when a notebook is missing, or differs from what `sync` would write
    check-install   exit 1 when a source's first code cell is not the install cell (`make book` runs it
            before building; run `sync` to fix)
    show-code   rewrite the code cells that show the package's code (a first line such as
            ``# book/nets/conv1d.py: BasicBlock1d.forward``) from the package (`sync` runs it first)
    check-code  exit 1 when a shown code cell differs from the package (:mod:`book.authoring.shown_code`)
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from .colab import INSTALL_MARKER, install_cell

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("chapters",)  # exercises pair with generated student notebooks: see book.authoring.exercise_pages
BUILD = ROOT / "_build"

#: Glued values that change from run to run (wall-clock timings): shown as the last build measured them,
#: left out when a test compares a notebook's numbers with a new build's.
VARYING = re.compile(r"(^|[_-])(seconds|slowdown|wall|elapsed)($|[_-])")

__all__ = ["sources", "glue_from_build", "render", "colab", "sync", "check", "stale_numbers",
           "fix_install_cell", "install_problems", "show_code", "code_problems", "site_url", "VARYING"]


# -- where things are -------------------------------------------------------------------------------

def sources(root: Path = ROOT) -> list[Path]:
    """Every MyST notebook source (``.md`` with a jupytext header) in the notebook folders."""
    out = []
    for folder in FOLDERS:
        for path in sorted((root / folder).glob("*.md")):
            text = path.read_text()
            if text.lstrip().startswith("---") and "jupytext:" in text:
                out.append(path)
    return out


def _config(root: Path) -> dict:
    import yaml

    return yaml.safe_load((root / "_config.yml").read_text())


def site_url(root: Path = ROOT) -> str:
    """The web book's address (``html.baseurl`` in ``_config.yml``), ending in ``/``."""
    url = (_config(root).get("html") or {}).get("baseurl")
    if not url:
        raise ValueError("_config.yml: set html.baseurl, the address of the web book")
    return url.rstrip("/") + "/"


# -- glued values -------------------------------------------------------------------------------------

def glue_from_build(md_path: Path, root: Path = ROOT, build: Path | None = None) -> dict[str, str]:
    """``{name: text/plain}`` of every value glued by the executed page in a book build (myst-nb keeps them
    in ``_build/jupyter_execute/<page>.glue.json``)."""
    build = build or root / "_build"
    record = build / "jupyter_execute" / md_path.relative_to(root).with_suffix(".glue.json")
    if not record.exists():
        raise FileNotFoundError(f"{record} is missing: build the book first (`make book`)")
    values = {}
    for name, output in json.loads(record.read_text()).items():
        prefix = output.get("metadata", {}).get("scrapbook", {}).get("mime_prefix", "")
        data = {k.removeprefix(prefix): v for k, v in output.get("data", {}).items()}
        if "text/plain" in data:
            text = data["text/plain"]
            values[name] = "".join(text) if isinstance(text, list) else text
    return values


# -- citations ---------------------------------------------------------------------------------------

def _bibliography(root: Path):
    from pybtex.database import parse_file

    return parse_file(str(root / "references.bib"))


def _author_year(entry) -> tuple[str, str]:
    people = entry.persons.get("author", [])
    last = [" ".join(p.last_names).replace("{", "").replace("}", "") for p in people]
    names = last[0] if len(last) == 1 else f"{last[0]} and {last[1]}" if len(last) == 2 else f"{last[0]} et al."
    return names, entry.fields.get("year", "n.d.")


def _reference_list(bib, keys: list[str]) -> str:
    lines = []
    for key in keys:
        entry = bib.entries[key]
        people = entry.persons.get("author", [])
        authors = ", ".join(" ".join(p.first_names + p.middle_names + p.last_names) for p in people)
        fields = entry.fields
        venue = fields.get("journal") or fields.get("booktitle") or fields.get("publisher") or ""
        text = f"{authors} ({fields.get('year', 'n.d.')}). *{fields['title']}*." + (f" {venue}." if venue else "")
        if fields.get("note"):
            text += f" {fields['note']}."
        link = fields.get("url") or (f"https://doi.org/{fields['doi']}" if fields.get("doi") else "")
        lines.append(f"- {text}".replace("{", "").replace("}", "") + (f" <{link}>" if link else ""))
    return "\n".join(lines)


def labels(root: Path = ROOT) -> dict[str, str]:
    """Every cross-reference target of the book's pages (``(label)=`` and ``:name: label``) -> its page."""
    found = {}
    for md in sorted(root.glob("*.md")) + sorted(root.glob("chapters/*.md")) + sorted(root.glob("exercises/*.md")):
        page = md.relative_to(root).with_suffix("").as_posix()
        for label in re.findall(r"^\(([\w.:-]+)\)=\s*$|^:name:\s*(\S+)", md.read_text(), re.M):
            found[label[0] or label[1]] = page
    return found


# -- the notebook ------------------------------------------------------------------------------------

NUMBERS_NOTE = (
    "> **About this notebook.** It is the notebook version of [this chapter of the web book]({page}). "
    "The numbers in its text come from the book's own run of these cells; the cells compute them again when "
    "you run them, top to bottom, starting with the set-up cell, which pins PyTorch's CPU kernels: with the "
    "course's PyTorch any x86-64 CPU repeats them bit for bit; with another version (Colab's) or on a GPU a "
    "trained network ends differently, within the spread between seeds that the chapter reports."
)


def _glued_names(source: str) -> list[str]:
    return re.findall(r"\bglue\(\s*[\"']([^\"']+)[\"']", source)


def _fold(cell, title: str) -> None:
    """Start a code cell folded: a Colab form title, and JupyterLab's hidden source."""
    lines = cell.source.splitlines()
    if lines and lines[0].startswith("# ") and not lines[0].startswith("# @title"):
        lines[0] = "# @title " + lines[0][2:]
    elif not (lines and lines[0].startswith("# @title")):
        lines.insert(0, f"# @title {title}")
    cell.source = "\n".join(lines)
    cell.metadata["cellView"] = "form"
    cell.metadata.setdefault("jupyter", {})["source_hidden"] = True


def render(md_path: Path, glue: dict[str, str], root: Path = ROOT):
    """The Jupyter notebook of ``md_path`` with the glued values ``glue``; raises on unknown MyST or a missing value."""
    import jupytext
    import nbformat
    from nbformat.v4 import new_markdown_cell, new_notebook

    from .jupyter_markdown import Context, to_jupyter_markdown

    rel = md_path.relative_to(root)
    source = jupytext.read(md_path)
    first_code = next((c for c in source.cells if c.cell_type == "code"), None)
    if first_code is None or first_code.source != install_cell(root):
        raise ValueError(f"{rel}: the first code cell must be the install cell of book.authoring.colab "
                         "(run `python -m book.authoring.notebooks sync`)")
    bib, url = _bibliography(root), site_url(root)
    used: dict[str, str] = {}

    def glue_text(name):
        if name not in glue:
            raise KeyError(f"{rel}: no value for the glued name {name!r}: build the book, then run "
                           "`python -m book.authoring.notebooks colab`")
        used[name] = glue[name]
        return glue[name]

    def cite(keys, textual):
        missing = [k for k in keys if k not in bib.entries]
        if missing:
            raise KeyError(f"{rel}: {missing} not in references.bib")
        refs = url + "references.html"
        parts = [_author_year(bib.entries[k]) for k in keys]
        if textual:
            return "; ".join(f"[{names} ({year})]({refs})" for names, year in parts)
        return "(" + "; ".join(f"[{names}, {year}]({refs})" for names, year in parts) + ")"

    ctx = Context(glue_text, cite, url, str(rel), labels=labels(root))
    figure_cell = {}                     # glue name -> index of the code cell that glues it
    for i, cell in enumerate(source.cells):
        if cell.cell_type == "code":
            for name in _glued_names(cell.source):
                figure_cell.setdefault(name, i)
    rendered = {i: to_jupyter_markdown(c.source, Context(glue_text, cite, url, f"{rel}, cell {i}", ctx.cited, ctx.labels))
                for i, c in enumerate(source.cells) if c.cell_type == "markdown"}
    captions: dict[int, list[str]] = {}
    for i, r in rendered.items():
        for name, caption in r.figures:
            if name not in figure_cell:
                raise ValueError(f"{rel}: no code cell glues the figure {name!r}")
            captions.setdefault(figure_cell[name], []).append(f"**Figure.** {caption}" if caption else "")

    cells = []
    for i, cell in enumerate(source.cells):
        if cell.cell_type == "markdown":
            if rendered[i].markdown.strip():
                cells.append(new_markdown_cell(rendered[i].markdown))
            continue
        tags = cell.metadata.get("tags", [])
        code = nbformat.v4.new_code_cell(cell.source, metadata={"tags": tags} if tags else {})
        if cell is first_code:
            _fold(code, "Set up the course")
        elif {"hide-input", "remove-input", "remove-cell"} & set(tags):
            _fold(code, "Code behind the figures and numbers (hidden on the web page)")
        cells.append(code)
        cells += [new_markdown_cell(c) for c in captions.get(i, []) if c]
    title = next(i for i, c in enumerate(cells) if c.cell_type == "markdown")
    page = url + str(rel.with_suffix(".html"))
    cells.insert(title + 1, new_markdown_cell(NUMBERS_NOTE.format(page=page)))
    if ctx.cited:
        cells.append(new_markdown_cell(f"## References\n\nThe works cited above (the web book's full list: "
                                       f"[references]({url}references.html)).\n\n" + _reference_list(bib, ctx.cited)))
    for i, cell in enumerate(cells):
        cell["id"] = f"{md_path.stem[:2]}-{i:03d}"
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "colab": {"provenance": [], "toc_visible": True},
        "residual_course": {"generated_from": str(rel), "glue": dict(sorted(used.items()))},
    })
    nbformat.validate(nb)
    return nb


def _text(nb) -> str:
    import nbformat

    return nbformat.writes(nb, version=4) + "\n"


def stored_glue(ipynb: Path) -> dict[str, str]:
    """The glued values a generated notebook was rendered with."""
    if not ipynb.exists():
        return {}
    return json.loads(ipynb.read_text()).get("metadata", {}).get("residual_course", {}).get("glue", {})


def _write(md: Path, glue: dict[str, str], root: Path) -> Path | None:
    target = md.with_suffix(".ipynb")
    text = _text(render(md, glue, root))
    if target.exists() and target.read_text() == text:
        return None
    target.write_text(text)
    copy = root / "_build" / "html" / "_sources" / target.relative_to(root)   # the download button's file
    if copy.parent.exists():
        copy.write_text(text)
    return target


def colab(root: Path = ROOT, build: Path | None = None) -> list[Path]:
    """Render every notebook with the numbers of the last book build; returns the paths written."""
    return [p for md in sources(root) if (p := _write(md, glue_from_build(md, root, build), root))]


# -- the install cell in the sources ---------------------------------------------------------------

_CELL = re.compile(r"(```\{code-cell\}[^\n]*\n(?::[^\n]*\n)*(?:\n)?)(.*?)(\n```)", re.S)


def fix_install_cell(md_path: Path, root: Path = ROOT) -> bool:
    """Make the first code cell of ``md_path`` the current install cell (a text edit: the rest of the file
    is kept byte for byte); True if changed."""
    text = md_path.read_text()
    match = _CELL.search(text)
    want = install_cell(root)
    if match is None or not (match[2].startswith(INSTALL_MARKER) or match[2].startswith("# Colab: install")):
        raise ValueError(f"{md_path}: the first code cell is not an install cell; add one tagged remove-cell")
    if match[2] == want:
        return False
    md_path.write_text(text[:match.start(2)] + want + text[match.end(2):])
    return True


def install_problems(root: Path = ROOT) -> list[str]:
    """Sources whose first code cell is not the current install cell."""
    problems = []
    for md in sources(root):
        match = _CELL.search(md.read_text())
        if match is None or match[2] != install_cell(root):
            problems.append(f"{md.relative_to(root)}: the first code cell is not the install cell of book.authoring.colab "
                            "(`python -m book.authoring.notebooks sync`)")
    return problems


def sync(root: Path = ROOT) -> tuple[list[Path], list[str]]:
    """Install cells into the sources, then every notebook with the numbers it holds.

    Returns the paths written and the notebooks that need a build first (a glued name they do not hold)."""
    written = [md for md in sources(root) if fix_install_cell(md, root)]
    need_build = []
    for md in sources(root):
        try:
            if (p := _write(md, stored_glue(md.with_suffix(".ipynb")), root)):
                written.append(p)
        except KeyError as err:
            need_build.append(str(err).strip("\"'"))
    return written, need_build


def check(root: Path = ROOT) -> list[str]:
    """What is missing or stale: a notebook that differs from its source rendered with the numbers it holds."""
    problems = []
    for md in sources(root):
        target = md.with_suffix(".ipynb")
        rel = target.relative_to(root)
        if not target.exists():
            problems.append(f"{rel} is missing")
            continue
        try:
            want = _text(render(md, stored_glue(target), root))
        except (KeyError, ValueError) as err:
            problems.append(str(err).strip("\"'"))
            continue
        if target.read_text() != want:
            problems.append(f"{rel} is out of date with {md.relative_to(root)} "
                            "(`python -m book.authoring.notebooks sync`)")
    return problems


def stale_numbers(root: Path = ROOT, build: Path | None = None) -> list[str]:
    """Glued values that a book build gives differently from the notebook's, as the text shows them
    (timings, :data:`VARYING`, left out). Empty when every notebook has the build's numbers."""
    from myst_nb.core.variables import format_plain_text

    from .jupyter_markdown import ROLE

    problems = []
    for md in sources(root):
        held = stored_glue(md.with_suffix(".ipynb"))
        built = glue_from_build(md, root, build)
        shown = {}
        for name, content in ROLE.findall(md.read_text()):
            if name.startswith("glue"):
                key, _, spec = content.rpartition(":") if ":" in content else (content, "", "")
                shown.setdefault(key, set()).add(spec or "s")
        for key, specs in sorted(shown.items()):
            if VARYING.search(key) or key not in built:
                continue
            for spec in sorted(specs):
                now = format_plain_text(built[key], spec)
                before = format_plain_text(held[key], spec) if key in held else None
                if now != before:
                    problems.append(f"{md.with_suffix('.ipynb').relative_to(root)}: {key} shows {before!r}, "
                                    f"the build gives {now!r}")
    return problems


def show_code(root: Path = ROOT) -> list[Path]:
    """Rewrite every source's shown cells from the package (:mod:`book.authoring.shown_code`); the paths written."""
    from . import shown_code

    return [md for md in sources(root) if shown_code.sync(md, root)]


def code_problems(root: Path = ROOT) -> list[str]:
    """Shown cells that differ from the package, or whose marker is malformed."""
    from . import shown_code

    return [p for md in sources(root) for p in shown_code.problems(md, root)]


def _parser():
    import argparse

    parser = argparse.ArgumentParser(prog="python -m book.authoring.notebooks",
                                     description="The chapters' notebooks for Jupyter and Colab, and the package "
                                                 "code the chapters show.")
    commands = parser.add_subparsers(dest="command", metavar="command")
    commands.add_parser("colab", help="after a book build: render every notebook with the build's numbers")
    commands.add_parser("sync", help="install cells and shown code into every .md, then every notebook with the "
                                     "numbers it holds (after a change of prose)")
    commands.add_parser("check", help="exit 1 when a notebook is missing or differs from what `sync` would write "
                                      "(the default)")
    commands.add_parser("check-install", help="exit 1 when a source's first code cell is not the install cell")
    commands.add_parser("show-code", help="rewrite the chapters' shown code cells from the package")
    commands.add_parser("check-code", help="exit 1 when a shown code cell differs from the package")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    command = args.command or "check"
    if command in ("colab", "sync", "show-code"):
        need_build = []
        if command == "colab":
            written = colab()
        elif command == "show-code":
            written = show_code()
        else:
            written = show_code()
            more, need_build = sync()
            written += more
        for path in written:
            print(f"wrote {path.relative_to(ROOT)}")
        for problem in need_build:
            print(problem)
        print(f"{len(sources())} source(s); {len(written)} file(s) updated")
        return 1 if need_build else 0
    checks = {"check": (check, "all notebooks in sync"),
              "check-install": (install_problems, "every source starts with the install cell"),
              "check-code": (code_problems, "every shown code cell is the package's code")}
    find, ok = checks[command]
    problems = find()
    for p in problems:
        print(p)
    print(ok if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
