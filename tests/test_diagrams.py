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
