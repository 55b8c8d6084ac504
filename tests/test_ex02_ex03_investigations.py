"""Exercises 2 and 3's investigations: the checks pass the solutions on many seeds, name the usual mistakes (in the
learner's kernel and through the grader's answer and judge), and the range tests and model answers hold on the real
experiments.

Exercise 2, Task 1: ``block_changes(blocks, x)``, each block's change relative to what reaches it, on stacks of
residual blocks trained to compute x + ε·sin(x). Exercise 3, Task 3: ``gradient_ratio(depth, alpha, seed)``, the
first-to-last gradient ratio of a residual Kaiming stack with branch scale α.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path

import jupytext
import pytest
import torch

from book import exercises as ex
from book.exercises import protocol, sources
from book.grading.collect import SOURCE_DIR
from book.exercises.ex02 import _changes
from book.exercises.ex03 import _grad_reference, _ratio, _ratio_batch, _ratio_stack
from conftest import fails_with as _fails_with

ROOT = Path(__file__).resolve().parent.parent
EX02, EX03 = "ex02_learn_the_change", "ex03_gradient_flow"


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _namespace(name: str, until: str) -> dict:
    """The book page's code cells run in one namespace, up to the cell that defines ``until`` (the experiments after
    it are not needed here)."""
    page = jupytext.reads((ROOT / "exercises" / f"{name}.md").read_text(), fmt="md:myst")
    namespace: dict = {"__name__": "__main__"}
    for cell in page.cells:
        if cell.cell_type != "code":
            continue
        exec(compile(ast.parse(cell.source), "<cell>", "exec"), namespace)
        if until in namespace:
            return namespace
    raise AssertionError(f"{name}: no cell defines {until}")


@pytest.fixture(scope="module")
def ex02_ns():
    threads = torch.get_num_threads()
    ns = _namespace(EX02, "mean_block_change")
    torch.set_num_threads(threads)
    return ns


@pytest.fixture(scope="module")
def ex03_ns():
    threads = torch.get_num_threads()
    ns = _namespace(EX03, "gradient_ratio")
    torch.set_num_threads(threads)
    return ns


def _judged(check: str, name: str, fn, seed: int = 3):
    """The grader's verdict on ``fn``: answered in this process (the sandbox's part), judge on the reply."""
    request = {"check": check, "names": [name], "seed": seed, "thorough": True}
    return protocol.judge(request, protocol.answer(request, {name: fn}), "task 3")


# =========================================================================== Exercise 2 · how big is each block's change?

def test_block_changes_solution_passes_on_many_seeds(ex02_ns):
    right = ex02_ns["block_changes"]
    assert ex.check_block_changes(right)
    for seed in range(12):
        assert ex.check_block_changes(right, seed=seed, thorough=True), seed
    assert _judged("check_block_changes", "block_changes", right)
    assert ex.check_block_changes(lambda blocks, x: torch.tensor(right(blocks, x)))  # a 1-D tensor is fine too


def _per_row(blocks, x, measure, propagate=True):
    values, h = [], x
    with torch.no_grad():
        for block in blocks:
            base = h if propagate else x
            out = block(base)
            values.append(measure(block, base, out))
            h = out
    return values


def test_block_changes_mistakes():
    ratio = lambda b, h, out: float(((out - h).norm(dim=1) / h.norm(dim=1)).mean())
    mistakes = {
        "on the stack's input x": lambda blocks, x: _per_row(blocks, x, ratio, propagate=False),
        "one norm over the whole batch": lambda blocks, x: _per_row(blocks, x, lambda b, h, out: float((out - h).norm() / h.norm())),
        "the size of the block's output": lambda blocks, x: _per_row(blocks, x, lambda b, h, out: float((out.norm(dim=1) / h.norm(dim=1)).mean())),
        "divided by the block's output": lambda blocks, x: _per_row(blocks, x, lambda b, h, out: float(((out - h).norm(dim=1) / out.norm(dim=1)).mean())),
        "block.branch(h)": lambda blocks, x: _per_row(blocks, x, lambda b, h, out: float((b.branch(h).norm(dim=1) / h.norm(dim=1)).mean())),
        "squared norms": lambda blocks, x: _per_row(
            blocks, x, lambda b, h, out: float(((out - h).norm(dim=1) ** 2 / h.norm(dim=1) ** 2).mean())),
        "last block to the first": lambda blocks, x: _per_row(blocks, x, ratio)[::-1],
        "the mean of ‖block(h) − h‖ over the mean of ‖h‖": lambda blocks, x: _per_row(
            blocks, x, lambda b, h, out: float((out - h).norm(dim=1).mean() / h.norm(dim=1).mean())),
    }
    for phrase, wrong in mistakes.items():
        _fails_with(ex.check_block_changes(wrong), phrase)
        _fails_with(_judged("check_block_changes", "block_changes", wrong), phrase)   # the grader says the same

    # the stream's distance from the input, ‖h_l − x‖ / ‖x‖
    def from_input(blocks, x):
        values, h = [], x
        with torch.no_grad():
            for block in blocks:
                h = block(h)
                values.append(float(((h - x).norm(dim=1) / x.norm(dim=1)).mean()))
        return values

    _fails_with(ex.check_block_changes(from_input), "adds up the changes of every block")
    _fails_with(ex.check_block_changes(lambda blocks, x: sum(_changes(blocks, x))), "one number per block")
    _fails_with(ex.check_block_changes(lambda blocks, x: _changes(blocks, x)[:-1]), "return one per block")
    _fails_with(ex.check_block_changes(lambda blocks, x: {"changes": 1}), "return a list")
    _fails_with(ex.check_block_changes(lambda blocks, x: 1 / 0), "raised ZeroDivisionError")
    _fails_with(_judged("check_block_changes", "block_changes", lambda blocks, x: 1 / 0), "ZeroDivisionError")


def test_the_zero_started_stack_range_holds_on_several_seeds_and_refuses_the_other_settings(ex02_ns):
    """The hidden range test: 0.05 ≤ mean_block_change(1.0, True, 0) ≤ 0.1 (measured 0.071–0.074 over ten seeds)."""
    request = sources.hidden_test_request(
        'assert 0.05 <= mean_block_change(1.0, True, 0) <= 0.1, "off"')
    assert request["range"] == [0.05, 0.1]
    mean_block_change = ex02_ns["mean_block_change"]
    for seed in (0, 1, 2):
        assert 0.06 <= mean_block_change(1.0, True, seed) <= 0.085, seed       # inside the bounds, with margin
    assert not 0.05 <= mean_block_change(0.1, True, 0) <= 0.1                 # the small change: about 0.009
    assert not 0.05 <= mean_block_change(1.0, False, 0) <= 0.1                # default-started blocks: about 0.2


def test_what_the_model_answer_of_exercise_2_says(ex02_ns):
    make_stack, train_stack, block_changes, total_change, x_probe = (
        ex02_ns[k] for k in ("make_stack", "train_stack", "block_changes", "total_change", "x_probe"))
    runs = {}
    for epsilon in (0.1, 1.0):
        for zero_init in (True, False):
            stack = make_stack(zero_init, seed=1)
            error = train_stack(stack, epsilon, seed=1)
            changes = block_changes(stack, x_probe)
            runs[(epsilon, zero_init)] = (sum(changes) / len(changes), sum(changes), total_change(stack, x_probe), error)
    (z_small, z_large, d_small, d_large) = (runs[(0.1, True)], runs[(1.0, True)], runs[(0.1, False)], runs[(1.0, False)])
    # zero-started: small blocks, about 8x larger for a 10x larger change; the whole stack's change 10x; the blocks add up
    assert 0.006 <= z_small[0] <= 0.012 and 0.05 <= z_large[0] <= 0.1
    assert 6 <= z_large[0] / z_small[0] <= 10 and 9 <= z_large[2] / z_small[2] <= 11
    assert all(0.8 <= run[1] / run[2] <= 1.3 for run in (z_small, z_large))
    # the same relative error at both ε
    assert math.isclose(z_small[3], z_large[3], rel_tol=0.05) and z_small[3] < 0.3
    # default-started: about 0.2 per block whatever ε, sums that the whole stack's change does not show
    assert all(0.15 <= run[0] <= 0.3 for run in (d_small, d_large))
    assert d_small[1] / d_small[2] > 5 and d_large[1] / d_large[2] > 2
    assert d_small[3] > 3 and 0.15 <= d_large[3] <= 0.35


# =========================================================================== Exercise 3 · how small must the branches be?

def test_gradient_ratio_solution_passes_on_many_seeds(ex03_ns):
    right = ex03_ns["gradient_ratio"]
    assert ex.check_gradient_ratio(right)
    for seed in range(8):
        assert ex.check_gradient_ratio(right, seed=seed, thorough=True), seed
    assert _judged("check_gradient_ratio", "gradient_ratio", right)


def test_gradient_ratio_mistakes(ex03_ns):
    x, y = _ratio_batch()
    right = ex03_ns["gradient_ratio"]
    layer_grad_norms = ex03_ns["layer_grad_norms"]

    def built(width=64, init="kaiming", residual=True, scale=None, seed=None, weights=False):
        def gradient_ratio(depth, alpha, s=0):
            model = _ratio_stack(depth, alpha if scale is None else scale, s if seed is None else seed,
                                 width=width, init=init, residual=residual)
            if weights:
                _, w = _grad_reference(model, x, y)
                return w[0] / w[-1]
            norms = layer_grad_norms(model, x, y)
            return norms[0] / norms[-1]
        return gradient_ratio

    mistakes = {
        "upside down": lambda d, a, s=0: 1 / right(d, a, s),
        "squared norms": lambda d, a, s=0: right(d, a, s) ** 2,
        "the factor per block": lambda d, a, s=0: right(d, a, s) ** (1 / (d - 1)),
        "branch_scale left at 1": built(scale=1.0),
        "PyTorch's default init": built(init="default"),
        "128 wide": built(width=128),
        "plain stack": built(residual=False),
        "weights' gradients": built(weights=True),
        "torch.manual_seed(0)": built(seed=0),
    }
    for phrase, wrong in mistakes.items():
        _fails_with(ex.check_gradient_ratio(wrong), phrase)
        _fails_with(_judged("check_gradient_ratio", "gradient_ratio", wrong), phrase)   # the grader says the same

    def with_embed(depth, alpha, s=0):
        import torch.nn.functional as F

        from book.probes import probe, stack_points

        model = _ratio_stack(depth, alpha, s)
        g = probe(model, stack_points(model), x, lambda out: F.cross_entropy(out, y)).grad_norm
        return g[0] / g[-1]

    _fails_with(ex.check_gradient_ratio(with_embed), "model.embed")
    _fails_with(ex.check_gradient_ratio(lambda d, a, s=0: [right(d, a, s)] * 2), "return one")
    _fails_with(ex.check_gradient_ratio(lambda d, a, s=0: "big"), "should be a number")
    _fails_with(ex.check_gradient_ratio(lambda d, a, s=0: right(d, a, s) * 1.1), "torch.manual_seed(seed) right before")


def test_the_depth_50_range_holds_on_several_seeds_and_refuses_the_usual_mistakes():
    """The hidden range test: 2.5 ≤ gradient_ratio(50, 0.25, 0) ≤ 10 (measured 3.9–6.3 over ten seeds)."""
    request = sources.hidden_test_request('assert 2.5 <= gradient_ratio(50, 0.25, 0) <= 10, "off"')
    assert request["range"] == [2.5, 10]
    x, y = _ratio_batch()
    values = [_ratio(_ratio_stack(50, 0.25, s), x, y) for s in range(10)]
    assert 3.2 <= min(values) and max(values) <= 8, values
    assert not 2.5 <= _ratio(_ratio_stack(50, 1.0, 0), x, y) <= 10                    # α left out
    assert not 2.5 <= 1 / values[0] <= 10                                              # upside down
    assert not 2.5 <= _ratio(_ratio_stack(50, 0.25, 0, init="default"), x, y) <= 10    # PyTorch's default init


def _geometric_mean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values))


def test_what_the_model_answer_of_exercise_3_says():
    x, y = _ratio_batch()
    ratio = lambda depth, alpha, seed: _ratio(_ratio_stack(depth, alpha, seed), x, y)
    seeds = range(5)
    # the factor per block is about sqrt(1 + α²), the measurement a little above it
    for alpha in (1.0, 0.5, 0.25):
        per_block = _geometric_mean([ratio(50, alpha, s) for s in seeds]) ** (1 / 49)
        assert 1.0 <= per_block / math.sqrt(1 + alpha ** 2) <= 1.02, (alpha, per_block)
    # the α solving (1 + α²)^(49/2) = 2 measures about 2
    alpha = math.sqrt(4 ** (1 / 49) - 1)
    assert 0.168 < alpha < 0.171 and 1.7 <= _geometric_mean([ratio(50, alpha, s) for s in seeds]) <= 2.6
    # a fixed α explodes with depth; α = 1/√depth stays near √e at every depth
    fixed = [_geometric_mean([ratio(d, 0.25, s) for s in seeds]) for d in (10, 50, 200)]
    assert 1.2 <= fixed[0] <= 1.6 and 4 <= fixed[1] <= 7 and 250 <= fixed[2] <= 800
    for depth in (10, 50, 200):
        assert 1.45 <= _geometric_mean([ratio(depth, 1 / math.sqrt(depth), s) for s in seeds]) <= 1.9, depth


# =========================================================================== both: the investigation's parts

@pytest.mark.parametrize("name, task", [(EX02, 1), (EX03, 3)])
def test_each_is_an_investigation_and_no_marks_go_to_printed_code(name, task):
    source = SOURCE_DIR / f"{name}.md"
    text = source.read_text()
    assert "**Learning objectives.**" in text and "**Estimated time:**" in text
    answers = {a["answer"]: a for a in sources.written_answers(source)}
    a, b = f"{task}a", f"{task}b"
    assert set(answers) == {a, b} and all(x["task"] == task and x["rubric"] for x in answers.values())
    assert answers[a]["title"] == "your prediction" and answers[a]["points"] == 1
    models = {c.metadata.get("answer") for c in jupytext.read(source).cells
              if c.cell_type == "markdown" and "solution" in sources.cell_tags(c)}
    assert b in models
    tests = sources.hidden_tests(source)
    # Exercise 2's block and zero start are printed in Chapter 2: a step of the investigation, with no marks
    if name == EX02:
        assert {t["task"] for t in tests} == {1}
        assert not any(t["request"].get("check") in ("check_residual", "check_zero_init_branch") for t in tests)
    else:
        assert sum(t["points"] for t in tests if t["task"] == 1) <= 2
    investigation = [t["request"] for t in tests if t["task"] == task]
    assert any("check" in r for r in investigation) and any("range" in r for r in investigation)