"""Block diagrams: each draws what it describes, and its alt text names every layer and the shortcut."""

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
from matplotlib.patches import Circle, FancyBboxPatch  # noqa: E402

from book.diagrams import BLOCKS, Block, alt_text, draw_blocks  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_a_diagram_has_a_box_per_layer_and_a_sum_only_with_a_shortcut(name):
    import matplotlib.pyplot as plt

    block = BLOCKS[name]
    fig = draw_blocks([name])
    ax = fig.axes[0]
    boxes = [p for p in ax.patches if isinstance(p, FancyBboxPatch)]
    sums = [p for p in ax.patches if isinstance(p, Circle)]
    assert len(boxes) == len(block.branch) + len(block.after)
    assert len(sums) == (0 if block.shortcut is None else 1)
    texts = {t.get_text() for t in ax.texts}
    assert set(block.branch) | set(block.after) <= texts
    if block.shortcut is not None:
        assert block.shortcut in texts
    assert fig.get_facecolor()[:3] == (1.0, 1.0, 1.0)   # opaque white: legible in the dark theme too
    plt.close(fig)


def test_the_alt_text_names_every_layer_and_says_whether_there_is_a_shortcut():
    crafted = Block("test block", ("conv a", "norm b"), None, ("relu c",))
    text = alt_text([crafted, BLOCKS["residual"]])
    assert "conv a, norm b" in text and "no shortcut" in text and "relu c" in text
    assert "shortcut (identity)" in text


def test_every_diagram_in_the_chapters_carries_its_alt_text():
    found = 0
    for page in sorted((ROOT / "chapters").glob("*.md")):
        source = page.read_text()
        for blocks, alt in re.findall(r"draw_blocks\((\[.*?\])[^\n]*\n(?:.*\n){1,12}?:alt: Block diagram\. ([^\n]*)", source):
            assert alt == alt_text(eval(blocks)), f"{page.name}: the alt text of {blocks} is stale"
            found += 1
    assert found >= 4  # chapters 1, 4 (two) and 6


# --------------------------------------------------------------------------- the unrolled view and the residual stream

from book.diagrams import (STREAMS, StreamVariant, _paths, draw_stream, draw_unrolled,  # noqa: E402
                           stream_alt_text, unrolled_alt_text)


@pytest.mark.parametrize("n", [2, 3])
def test_the_unrolled_view_draws_every_path_once_and_its_alt_text_lists_them(n):
    import matplotlib.pyplot as plt

    fig = draw_unrolled(n)
    chain, unrolled = fig.axes
    assert len([p for p in chain.patches if isinstance(p, FancyBboxPatch)]) == n
    assert len([p for p in chain.patches if isinstance(p, Circle)]) == n
    boxes = [p for p in unrolled.patches if isinstance(p, FancyBboxPatch)]
    assert len(boxes) == n * 2 ** (n - 1)                      # block i's branch lies on half of the 2^n paths
    lengths = [t.get_text() for t in unrolled.texts if t.get_text().startswith("length")]
    assert sorted(lengths) == sorted(f"length {len(p)}" for p in _paths(n))
    assert len(lengths) == 2 ** n
    text = unrolled_alt_text(n)
    assert f"{2 ** n} paths" in text and text.count("(length") == 2 ** n
    assert fig.get_facecolor()[:3] == (1.0, 1.0, 1.0)
    plt.close(fig)


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_a_stream_diagram_draws_what_its_alt_text_says(name):
    import matplotlib.pyplot as plt

    variant = STREAMS[name]
    fig = draw_stream([name])
    ax = fig.axes[0]
    boxes = [p for p in ax.patches if isinstance(p, FancyBboxPatch)]
    sums = [p for p in ax.patches if isinstance(p, Circle)]
    per_sublayer = len(variant.read) + 1 + len(variant.write) + len(variant.on_bus)
    assert len(boxes) == 2 + 2 * per_sublayer              # embedding, unembedding, two sublayers
    assert len(sums) == 2
    texts = [t.get_text() for t in ax.texts]
    for label in (*variant.read, *variant.write, *variant.on_bus, "attention", "MLP"):
        assert label in texts
    assert (variant.bus_scale in texts) == bool(variant.bus_scale)
    alt = stream_alt_text([name])
    for label in (*variant.read, *variant.write, *variant.on_bus):
        assert label in alt
    assert fig.get_facecolor()[:3] == (1.0, 1.0, 1.0)
    plt.close(fig)


def test_the_stream_alt_text_says_what_sits_on_the_bus():
    crafted = StreamVariant("test", ("read a",), ("write b",), ("bus c",), "× d")
    text = stream_alt_text([crafted])
    assert "read a, the sublayer, write b" in text and "bus c on the stream" in text and "× d" in text
    assert "on the stream after" not in stream_alt_text(["pre-ln"])


def test_the_block_variants_of_he_2016_differ_where_the_paper_says():
    original, bn_after, relu_before, pre = (BLOCKS[n] for n in ("post-activation", "bn-after-add", "relu-before-add",
                                                                "pre-activation"))
    assert original.after == ("ReLU",) and bn_after.after == ("BN", "ReLU") and relu_before.after == ()
    assert relu_before.branch[-1] == "ReLU" and bn_after.branch[-1] == "3×3 conv" and pre.branch[0] == "BN"
    assert len({(b.branch, b.after) for b in (original, bn_after, relu_before, pre)}) == 4   # no two drawn alike


def test_every_unrolled_and_stream_diagram_in_the_chapters_carries_its_alt_text():
    found = 0
    for page in sorted((ROOT / "chapters").glob("*.md")):
        source = page.read_text()
        for n, alt in re.findall(r"draw_unrolled\((\d+)[^\n]*\n(?:.*\n){1,12}?:alt: Diagram\. ([^\n]*)", source):
            assert alt == unrolled_alt_text(int(n)), f"{page.name}: the alt text of the unrolled view is stale"
            found += 1
        for names, alt in re.findall(r"draw_stream\((\[.*?\])[^\n]*\n(?:.*\n){1,12}?:alt: Diagram\. ([^\n]*)", source):
            assert alt == stream_alt_text(eval(names)), f"{page.name}: the alt text of {names} is stale"
            found += 1
    assert found >= 2  # chapters 5 and 6
