"""MyST Markdown → the plain Markdown that Jupyter and Colab render.

A converter over myst-parser's own syntax tree (markdown-it tokens from ``myst_parser``'s
``create_md_parser``, configured with the book's extensions), so a role or a directive is found exactly
where Sphinx finds it. It rewrites the few MyST constructs the course uses and stops, naming the line,
at any other: a new construct fails the generator instead of leaking markup into a learner's notebook.

======================================  =====================================================================
MyST                                    Jupyter Markdown
======================================  =====================================================================
``{glue:text}`name:.2f```               the number, formatted as the web page formats it (myst-nb's own code)
``{cite}`key1,key2```                   ``([He et al., 2016](…/references.html); …)``, author–year as on the page
``{cite:t}`key```                       ``[He et al. (2016)](…/references.html)``
``{doc}`text <path>```,                 a link to the web page (a ``{ref}`` needs its text; its label is
``{ref}`text <label>```                 found among the book's ``(label)=`` targets and ``:name:`` options)
``{math}`x```                           ``$x$``
``:::{admonition} Predict`` (and tip,   a quoted block with a bold title
note, warning, …)
``:::{dropdown} Label``                 ``<details><summary>Label</summary> … </details>``
```` ```{glue:figure} name ````         the caption, returned separately: the notebook puts it under the cell
                                        that draws the figure (:mod:`book.authoring.notebooks`)
```` ```{math} ````                     ``$$ … $$``
``(label)=``, ``% comment``, ``+++``    dropped
======================================  =====================================================================

Code spans, code fences and maths are left as they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

__all__ = ["Context", "Rendered", "to_jupyter_markdown", "UnsupportedMyST", "MYST_LEFTOVERS", "myst_leftovers"]

#: Text that must not survive in a notebook's Markdown (tests/test_colab_parity.py looks for each).
MYST_LEFTOVERS = ("{glue", "{cite", "{ref}", "{numref}", "{doc}", "{eq}", ":::{", "```{")

ROLE = re.compile(r"\{([A-Za-z][\w:+.-]*)\}`([^`]*)`")
ADMONITIONS = {"note": "Note", "tip": "Tip", "hint": "Hint", "important": "Important", "warning": "Warning",
               "caution": "Caution", "attention": "Attention", "danger": "Danger", "error": "Error",
               "seealso": "See also"}


class UnsupportedMyST(ValueError):
    """A MyST construct the converter does not know, or a glue name without a value."""


@dataclass
class Context:
    """What the conversion needs from outside the text.

    ``glue_text(name)`` gives a glued value's ``text/plain``; ``cite(keys, textual)`` the author–year text of
    a citation with its link; ``site_url`` the web book's address (ending in ``/``); ``where`` names the source
    in error messages.
    """

    glue_text: Callable[[str], str]
    cite: Callable[[list[str], bool], str]
    site_url: str
    where: str = "<text>"
    cited: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)   # a target's label -> its page ("chapters/01_degradation")


@dataclass
class Rendered:
    markdown: str
    figures: list[tuple[str, str]]  # (glue name, caption in Markdown), in the order of the text


def myst_leftovers(markdown: str) -> list[str]:
    """The MyST markers found in ``markdown`` (empty for a clean notebook cell)."""
    return [m for m in MYST_LEFTOVERS if m in markdown]


@lru_cache(maxsize=1)
def _parser():
    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig
    from myst_parser.parsers.mdit import create_md_parser

    # The extensions of _config.yml's parse.myst_enable_extensions.
    config = MdParserConfig(enable_extensions={"dollarmath", "amsmath", "colon_fence", "deflist", "substitution"})
    return create_md_parser(config, RendererHTML)


def _escape(text: str) -> str:
    """A glued value as literal Markdown text."""
    return re.sub(r"([\\`*_\[\]<>|])", r"\\\1", text)


def to_jupyter_markdown(text: str, ctx: Context) -> Rendered:
    """Convert one Markdown cell (or a directive's body)."""
    lines = text.splitlines(keepends=True)
    tokens = _parser().parse(text)
    out: list[str] = []
    figures: list[tuple[str, str]] = []
    expected_roles: list[tuple[str, str]] = []
    prose: list[str] = []           # prose lines, roles substituted after checking them against the tokens
    pos = 0

    def flush_prose():
        if prose:
            out.append(_substitute_roles("".join(prose), expected_roles, ctx))
            prose.clear()
            expected_roles.clear()

    for token in tokens:
        for child in token.children or []:
            if child.type == "myst_role":
                expected_roles.append((child.meta["name"], child.content))
        if token.level != 0 or token.map is None:
            continue
        start, end = token.map
        if start < pos:
            continue
        prose.extend(lines[pos:start])
        block = lines[start:end]
        if token.type in ("fence", "colon_fence") and token.info.strip().startswith("{"):
            flush_prose()
            rendered = _directive(token.info.strip(), token.content, ctx, start)
            out.append(rendered.markdown)
            figures += rendered.figures
        elif token.type in ("fence", "code_block", "math_block", "math_block_label", "amsmath", "html_block"):
            flush_prose()
            out.append("".join(block))
        elif token.type in ("myst_target", "myst_line_comment", "myst_block_break"):
            pass
        elif token.type in ("dl_open", "front_matter", "myst_substitution"):
            raise UnsupportedMyST(f"{ctx.where}, line {start + 1}: {token.type} has no Jupyter Markdown form here")
        else:
            prose.extend(block)
        pos = end
    prose.extend(lines[pos:])
    flush_prose()
    markdown = re.sub(r"\n{3,}", "\n\n", "".join(out)).strip("\n")
    return Rendered(markdown, figures)


def _substitute_roles(text: str, expected: list[tuple[str, str]], ctx: Context) -> str:
    found = [(m[1], m[2]) for m in ROLE.finditer(text)]
    if found != expected:
        raise UnsupportedMyST(f"{ctx.where}: roles found by pattern {found[:5]}… differ from the parser's "
                              f"{expected[:5]}… (a role inside maths or code?) near: {text[:200]!r}")
    return ROLE.sub(lambda m: _role(m[1], m[2], ctx), text)


def _role(name: str, content: str, ctx: Context) -> str:
    if name in ("glue", "glue:", "glue:any", "glue:text"):
        from myst_nb.core.variables import format_plain_text

        key, _, spec = content.rpartition(":") if ":" in content else (content, "", "")
        spec = spec or ("s" if name == "glue:text" else "")
        return _escape(format_plain_text(ctx.glue_text(key), spec))
    if name in ("cite", "cite:p", "cite:ps", "cite:t", "cite:ts"):
        keys = [k.strip() for k in content.split(",") if k.strip()]
        ctx.cited += [k for k in keys if k not in ctx.cited]
        return ctx.cite(keys, name.startswith("cite:t"))
    if name == "math":
        return f"${content}$"
    if name in ("doc", "ref"):
        match = re.fullmatch(r"(.*?)\s*<([^>]+)>", content, re.S)
        if not match and name == "ref":
            raise UnsupportedMyST(f"{ctx.where}: {{ref}}`{content}` needs an explicit text: {{ref}}`text <label>`")
        text, target = (match[1], match[2]) if match else (content, content)
        if name == "doc":
            return f"[{text}]({ctx.site_url}{target.removeprefix('/').removesuffix('.md')}.html)"
        if target not in ctx.labels:
            raise UnsupportedMyST(f"{ctx.where}: no target ({target})= or :name: {target} in the book's pages")
        anchor = re.sub(r"[^a-z0-9]+", "-", target.lower()).strip("-")     # Sphinx's id for the label
        return f"[{text}]({ctx.site_url}{ctx.labels[target]}.html#{anchor})"
    raise UnsupportedMyST(f"{ctx.where}: the role {{{name}}} has no Jupyter Markdown form here (see "
                          "book/authoring/jupyter_markdown.py)")


def _options_and_body(content: str) -> tuple[dict[str, str], str]:
    lines = content.splitlines()
    options = {}
    if lines and lines[0].strip() == "---":      # a YAML block of options
        import yaml

        end = lines.index("---", 1)
        options = {k: str(v) for k, v in (yaml.safe_load("\n".join(lines[1:end])) or {}).items()}
        lines = lines[end + 1:]
    while lines and re.match(r"^:[\w-]+:", lines[0]):
        key, _, value = lines.pop(0)[1:].partition(":")
        options[key] = value.strip()
    return options, "\n".join(lines).strip("\n")


def _quote(markdown: str) -> str:
    return "\n".join(f"> {line}" if line.strip() else ">" for line in markdown.splitlines())


def _directive(info: str, content: str, ctx: Context, line: int) -> Rendered:
    match = re.match(r"\{([\w:+.-]+)\}\s*(.*)", info)
    name, argument = match[1], match[2].strip()
    options, body = _options_and_body(content)
    where = f"{ctx.where}, line {line + 1}"
    inner = to_jupyter_markdown(body, Context(ctx.glue_text, ctx.cite, ctx.site_url, where, ctx.cited, ctx.labels))
    if name in ("glue:figure", "glue:any", "glue", "glue:"):
        if not argument:
            raise UnsupportedMyST(f"{where}: {{{name}}} without a name")
        return Rendered("", [(argument, inner.markdown)] + inner.figures)
    if name == "math":
        return Rendered(f"$$\n{body}\n$$", [])
    if name in ("code-block", "code", "sourcecode"):
        return Rendered(f"```{argument}\n{body}\n```", [])
    title = None
    if name == "admonition":
        title = argument or "Note"
    elif name in ADMONITIONS:
        title = ADMONITIONS[name]
        if argument:
            inner.markdown = f"{argument}\n{inner.markdown}"
    elif name != "dropdown":
        raise UnsupportedMyST(f"{where}: the directive {{{name}}} has no Jupyter Markdown form here (see "
                              "book/authoring/jupyter_markdown.py)")
    title = _substitute_roles(title, [(m[1], m[2]) for m in ROLE.finditer(title)], ctx) if title else title
    if name == "dropdown" or "dropdown" in options.get("class", "").split():
        summary = title if name != "dropdown" else (argument or "Details")
        return Rendered(f"<details>\n<summary>{summary}</summary>\n\n{inner.markdown}\n\n</details>", inner.figures)
    return Rendered(_quote(f"**{title}**\n\n{inner.markdown}"), inner.figures)
