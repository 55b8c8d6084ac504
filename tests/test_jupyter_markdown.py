"""The MyST → Jupyter Markdown converter (book.authoring.jupyter_markdown) on each construct the course uses."""

import pytest

from book.authoring.jupyter_markdown import Context, UnsupportedMyST, myst_leftovers, to_jupyter_markdown

VALUES = {"n": "56", "ratio": "0.123456", "label": "'plain-56'", "big": "2080"}


def convert(text):
    def cite(keys, textual):
        return ("T:" if textual else "P:") + "+".join(keys)

    return to_jupyter_markdown(text, Context(VALUES.__getitem__, cite, "https://site/"))


def test_glued_numbers_are_formatted_as_the_page_formats_them():
    out = convert("Plain-{glue:text}`n` ends at {glue:text}`ratio:.2f` ({glue:text}`big:,d`), "
                  "{glue:text}`label`.").markdown
    assert out == "Plain-56 ends at 0.12 (2,080), plain-56."


def test_citations_roles_and_maths():
    out = convert("As {cite}`he2015deep,saxe2014` and {cite:t}`he2016identity` show, {math}`x^2`.").markdown
    assert out == "As P:he2015deep+saxe2014 and T:he2016identity show, $x^2$."
    assert convert("See {doc}`the first chapter <chapters/01_degradation>`.").markdown == \
        "See [the first chapter](https://site/chapters/01_degradation.html)."


def test_code_and_maths_are_left_alone():
    text = "```python\nx = {glue:text}\n```\n\n$$\ny = F(x) + x\n$$"
    assert convert(text).markdown == text


def test_an_admonition_becomes_a_quoted_block_with_a_bold_title():
    out = convert(":::{admonition} Predict\n:class: tip\nWhich of {glue:text}`n` layers?\n\n- one\n- two\n:::").markdown
    assert out == "> **Predict**\n>\n> Which of 56 layers?\n>\n> - one\n> - two"
    assert convert("```{note}\nCareful.\n```").markdown == "> **Note**\n>\n> Careful."


def test_a_dropdown_becomes_details():
    out = convert(":::{dropdown} A model answer\nIt is **{glue:text}`n`**.\n:::").markdown
    assert out == "<details>\n<summary>A model answer</summary>\n\nIt is **56**.\n\n</details>"


def test_a_glued_figure_gives_its_caption_separately():
    rendered = convert("Before.\n\n```{glue:figure} fig-x\n:alt: a plot\n:name: fig-x\n\nCaption with "
                       "{glue:text}`n` seeds.\n```\n\nAfter.")
    assert rendered.markdown == "Before.\n\nAfter."
    assert rendered.figures == [("fig-x", "Caption with 56 seeds.")]


def test_nested_directives():
    rendered = convert("::::{admonition} Outer\n:::{dropdown} Inner\nDeep {glue:text}`n`.\n:::\n::::")
    assert "<details>" in rendered.markdown and "> Deep 56." in rendered.markdown


def test_labels_and_comments_are_dropped():
    assert convert("(sec-a)=\n## A\n\n% a comment\nText.").markdown == "## A\n\nText."


@pytest.mark.parametrize("text", ["{numref}`fig-x`", "{eq}`eq-1`", "```{figure} a.png\n```", "{abbr}`A (b)`",
                                  "{glue:text}`missing`"])
def test_anything_else_stops_the_generator(text):
    with pytest.raises((UnsupportedMyST, KeyError)):
        convert(text)


def test_leftovers_are_named():
    assert myst_leftovers("a {glue:text}`x` and :::{note}") == ["{glue", ":::{"]
    assert myst_leftovers("plain $x$ text") == []


def test_a_reference_links_to_its_target_on_the_web_page():
    ctx = Context(VALUES.__getitem__, lambda k, t: "", "https://site/", labels={"fig-identity-fit": "chapters/02_x"})
    out = to_jupyter_markdown("See {ref}`the figure <fig-identity-fit>`.", ctx).markdown
    assert out == "See [the figure](https://site/chapters/02_x.html#fig-identity-fit)."
    with pytest.raises(UnsupportedMyST):
        to_jupyter_markdown("See {ref}`fig-identity-fit`.", ctx)
