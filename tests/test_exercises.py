"""The exercises: generated files in sync, solutions pass every check, blanks and typical mistakes get the right words.

Notebooks run in-process here (their cells are plain Python); ``tests/test_grading.py`` runs them in kernels.
"""

from __future__ import annotations

import ast
import functools
import math
from pathlib import Path

import jupytext
import nbformat
import pytest
import torch
from torch import nn

from book import exercises as ex
from book.exercises import protocol, sources
from book.grading.collect import SOURCE_DIR
from book.authoring import exercise_pages as pages
from book.authoring.colab import INSTALL_MARKER, install_cell

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sources.exercise_sources(SOURCE_DIR)
NAMES = [p.stem for p in SOURCES]


@pytest.fixture(autouse=True)
def one_thread():
    """The notebooks call torch.set_num_threads(1); give the test process its setting back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _run_cells(cells: list[str]) -> tuple[dict, list]:
    """Exec cells in one namespace; return it and ``(index, source, value-or-exception)`` for each cell."""
    namespace: dict = {"__name__": "__main__"}
    results = []
    for i, source in enumerate(cells):
        tree = ast.parse(source)
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        try:
            exec(compile(tree, f"<cell {i}>", "exec"), namespace)
            value = eval(compile(ast.Expression(last.value), f"<cell {i}>", "eval"), namespace) if last else None
        except Exception as err:  # noqa: BLE001 - recorded and asserted on below
            value = err
        results.append((i, source, value))
    return namespace, results


def _code(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


# --------------------------------------------------------------------------- generated files

def test_one_exercise_per_chapter_with_one_to_five_graded_tasks():
    chapters = sorted(p.stem[:2] for p in (ROOT / "chapters").glob("[0-9][0-9]_*.md"))
    assert [n[2:4] for n in NAMES] == chapters
    for source in SOURCES:
        tests = sources.hidden_tests(source)
        tasks = sorted({t["task"] for t in tests} | {a["task"] for a in sources.written_answers(source)})
        assert 1 <= len(tasks) <= 5, source.name      # one investigation can be the whole exercise
        assert tasks == list(range(1, len(tasks) + 1)), source.name
        assert len(tests) >= 2, source.name              # a check and a measured range at least
        assert all(t["points"] > 0 and t["title"] for t in tests)


def test_every_exercise_is_an_investigation_with_objectives_time_and_points():
    """At least one task asks for numbers the grader checks and for written answers with a rubric and a model answer."""
    for source in SOURCES:
        text = source.read_text()
        assert "**Learning objectives.**" in text and "**Estimated time:**" in text, source.name
        answers = sources.written_answers(source)
        assert answers, f"{source.name}: no written answer"
        for answer in answers:
            assert answer["points"] > 0 and answer["rubric"], f"{source.name}: answer {answer['answer']} has no rubric"
        auto_tasks = {t["task"] for t in sources.hidden_tests(source)}
        assert any(a["task"] in auto_tasks for a in answers), f"{source.name}: no task both measures and explains"
        models = {c.metadata.get("answer") for c in jupytext.read(source).cells
                  if c.cell_type == "markdown" and "solution" in sources.cell_tags(c)}
        explained = [a["answer"] for a in answers if a["title"] != "your prediction"]
        assert explained and all(a in models for a in explained), f"{source.name}: a written answer has no model answer"
        page = (ROOT / "exercises" / f"{source.stem}.md").read_text()
        assert "**Tasks and points**" in page and "A model answer" in page
        tasks = {t["task"] for t in sources.hidden_tests(source)} | {a["task"] for a in answers}
        if len(tasks) > 1:    # Task 1 is then a warm-up before the investigation
            warmups = [t for t in sources.hidden_tests(source) if t["task"] == 1]
            assert sum(t["points"] for t in warmups) <= 3, f"{source.name}: the warm-up carries too many points"


def test_answer_cells_reach_the_student_notebook_and_rubrics_do_not():
    for source in SOURCES:
        nb = nbformat.read(ROOT / "exercises" / f"{source.stem}.ipynb", as_version=4)
        collected = sources.collect_answers(nb, sources.written_answers(source))
        assert collected and all(text is None for text in collected.values()), (source.name, collected)
        text = "\n".join(c.source for c in nb.cells)
        for answer in sources.written_answers(source):
            assert f"**Your answer ({answer['answer']})**" in text
            assert answer["rubric"].splitlines()[0] not in text, f"{source.name}: the rubric leaked"


def test_generated_pages_and_notebooks_are_in_sync():
    assert pages.check() == [], "run `python -m book.authoring.exercise_pages build`"


def test_student_notebooks_hold_no_solutions_or_hidden_tests():
    for source in SOURCES:
        nb = nbformat.read(ROOT / "exercises" / f"{source.stem}.ipynb", as_version=4)
        nbformat.validate(nb)
        code = _code(nb)
        assert code[0] == install_cell() and code[0].startswith(INSTALL_MARKER)
        assert nb.metadata["residual_course"]["exercise"] == source.stem
        text = "\n".join(c.source for c in nb.cells)
        assert pages.SOLUTION_BEGIN not in text and "grade_task" not in text and "hidden-test" not in text
        for cell in jupytext.read(source).cells:
            if "solution" in sources.cell_tags(cell) and cell.cell_type == "code" and pages.SOLUTION_BEGIN in cell.source:
                hidden = cell.source.split(pages.SOLUTION_BEGIN)[1].split(pages.SOLUTION_END)[0].strip()
                assert hidden.splitlines()[0] not in "\n".join(code), f"{source.name}: a solution line leaked"
        assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code")


def test_book_pages_show_solutions_behind_toggles():
    for source in SOURCES:
        page = (ROOT / "exercises" / f"{source.stem}.md").read_text()
        assert "hide-input" in page and "hidden-test" not in page and pages.SOLUTION_BEGIN not in page
        assert "execution_timeout" in page and page.startswith("---\njupytext:")


def test_exercise_pages_are_in_the_toc():
    toc = (ROOT / "_toc.yml").read_text()
    for name in NAMES:
        assert f"exercises/{name}" in toc
    assert "instructors" in toc


def test_strip_solution_keeps_indentation_and_rejects_bad_markers():
    src = "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n"
    assert pages.strip_solution(src) == 'def f():\n    # YOUR CODE HERE\n    raise NotImplementedError("not done yet")'
    with pytest.raises(ValueError):
        pages.strip_solution("### BEGIN SOLUTION\nx = 1\n")


# --------------------------------------------------------------------------- solutions and blanks

@functools.lru_cache(maxsize=None)
def _solution_run(name: str) -> tuple[dict, list]:
    """The book page's code cells (solutions included) run once per test session: some train for half a minute."""
    page = jupytext.reads((ROOT / "exercises" / f"{name}.md").read_text(), fmt="md:myst")
    threads = torch.get_num_threads()
    try:
        return _run_cells(_code(page))
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("name", NAMES)
def test_solution_passes_every_public_and_hidden_check(name):
    source = SOURCE_DIR / f"{name}.md"
    namespace, results = _solution_run(name)
    for i, test in enumerate(sources.hidden_tests(source)):
        tree = ast.parse(test["source"])
        try:
            exec(compile(tree, f"<hidden test {i}>", "exec"), dict(namespace))
            value = None
        except Exception as err:  # noqa: BLE001 - asserted on below
            value = err
        results = results + [(len(results), test["source"], value)]
    errors = [(i, v) for i, _, v in results if isinstance(v, Exception)]
    assert not errors, errors
    feedback = [v for _, _, v in results if isinstance(v, ex.Feedback)]
    assert feedback and all(feedback), [repr(f) for f in feedback if not f]


@pytest.mark.parametrize("name", NAMES)
def test_blank_student_notebook_fails_each_task_with_the_not_done_message(name):
    nb = nbformat.read(ROOT / "exercises" / f"{name}.ipynb", as_version=4)
    namespace, results = _run_cells(_code(nb))
    checks = [(i, v) for i, src, v in results if src.startswith("check_")]
    assert len(checks) >= len({t["task"] for t in sources.hidden_tests(SOURCE_DIR / f"{name}.md")})  # a step may have its own
    for _, value in checks:
        assert isinstance(value, ex.Feedback) and not value and value.message == ex.NOT_DONE, value
    first_check = checks[0][0]
    assert not any(isinstance(v, Exception) for i, _, v in results if i < first_check), "fails before the first task"
    # the hidden tests give the same words, in the learner's kernel and by the grader's answer and judge
    for test in sources.hidden_tests(SOURCE_DIR / f"{name}.md"):
        if "check" in test["request"]:
            with pytest.raises(ex.TaskFailed, match="not done yet"):
                exec(test["source"], namespace)
        request = {**test["request"], "seed": 7}
        verdict = protocol.judge(request, protocol.answer(request, namespace), test["title"])
        assert not verdict and verdict.message == ex.NOT_DONE, verdict


@pytest.mark.parametrize("name", NAMES)
def test_the_solution_scores_full_marks_through_answer_and_judge(name):
    namespace, _ = _solution_run(name)
    for test in sources.hidden_tests(SOURCE_DIR / f"{name}.md"):
        request = {**test["request"], "seed": 11}
        verdict = protocol.judge(request, protocol.answer(request, namespace), test["title"])
        assert verdict, verdict


def test_checks_never_raise_and_leave_the_random_state_alone():
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    for check in (ex.check_basic_block, ex.check_residual, ex.check_init_linear):
        feedback = check("not a class")
        assert isinstance(feedback, ex.Feedback) and not feedback
        assert "Traceback" not in feedback.message and "book/" not in feedback.message
    assert torch.equal(torch.random.get_rng_state(), state)


def test_grade_task_names_a_missing_function():
    with pytest.raises(ex.TaskFailed, match="`BasicBlock` is not defined"):
        ex.grade_task(ex.check_basic_block, {}, "BasicBlock")


# --------------------------------------------------------------------------- typical mistakes, one message each

def _solution_namespace(name: str) -> dict:
    return _solution_run(name)[0]


MESSAGES: list[str] = []   # every message a usual mistake got (scanned for target values below)


def _fails_with(feedback: ex.Feedback, *phrases: str):
    assert isinstance(feedback, ex.Feedback) and not feedback, repr(feedback)
    MESSAGES.append(feedback.message)
    for phrase in phrases:
        assert phrase in feedback.message, f"{phrase!r} not in {feedback.message!r}"


def _block_variant(forward=None, shortcut=None):
    """A BasicBlock like the solution's, with its forward or shortcut choice replaced."""
    Solution = _solution_namespace("ex04_building_resnets")["BasicBlock"]

    class Variant(Solution):
        def __init__(self, c_in, c_out, stride=1):
            super().__init__(c_in, c_out, stride)
            if shortcut is not None:
                self.shortcut = shortcut(c_in, c_out, stride)

        def forward(self, x):
            return forward(self, x) if forward else super().forward(x)

    return Variant


def test_block_mistakes():
    _fails_with(ex.check_basic_block(_block_variant(forward=lambda s, x: s.relu(s.branch(x)))),
                "never calls self.shortcut", "plain block")
    projection = lambda c_in, c_out, stride: nn.Sequential(nn.Conv1d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm1d(c_out))
    _fails_with(ex.check_basic_block(_block_variant(shortcut=projection)), "should be nn.Identity()", "where none is needed")
    _fails_with(ex.check_basic_block(_block_variant(shortcut=lambda c_in, c_out, stride: nn.Identity())),
                "shortcut needs a projection")
    _fails_with(ex.check_basic_block(_block_variant(forward=lambda s, x: s.branch(x) + s.shortcut(x))),
                "no ReLU after the sum")
    narrow = lambda c_in, c_out, stride: nn.Identity() if (c_in, stride) == (c_out, 1) else \
        nn.Sequential(nn.Conv1d(c_in, c_out, 1, bias=False), nn.BatchNorm1d(c_out))     # a projection without stride
    _fails_with(ex.check_basic_block(_block_variant(shortcut=narrow)), "a projection without that stride keeps its length")


def test_parameter_count_mistakes():
    right = _solution_namespace("ex04_building_resnets")["cifar_resnet_parameters"]
    assert right(56) == 853_018
    _fails_with(ex.check_cifar_resnet_parameters(lambda d: right(d) + 16 * 32 + 64 + 32 * 64 + 128), "option B")
    _fails_with(ex.check_cifar_resnet_parameters(lambda d: right(d) - 10), "classifier's bias")
    _fails_with(ex.check_cifar_resnet_parameters(lambda d: 853_018), "ResNet-20")
    no_bn = lambda d: right(d) - sum(v for k, v in [("stem", 32)]) - (d - 2) // 6 * 4 * (16 + 32 + 64)
    _fails_with(ex.check_cifar_resnet_parameters(no_bn), "BatchNorm")


def test_residual_mistakes():
    class NoShortcut(nn.Module):
        def __init__(self, branch):
            super().__init__()
            self.branch, self.shortcut = branch, nn.Identity()

        def forward(self, x):
            return self.branch(x)

    class ReluAfter(NoShortcut):
        def forward(self, x):
            return torch.relu(self.branch(x) + self.shortcut(x))

    class InPlace(NoShortcut):
        def forward(self, x):
            x += self.branch(x)
            return x

    class NoShortcutModule(nn.Module):
        def __init__(self, branch):
            super().__init__()
            self.branch = branch

        def forward(self, x):
            return self.branch(x) + x

    _fails_with(ex.check_residual(NoShortcut), "forgot the shortcut")
    _fails_with(ex.check_residual(ReluAfter), "ReLU after the sum")
    _fails_with(ex.check_residual(InPlace), "in place")
    _fails_with(ex.check_residual(NoShortcutModule), "shortcut module")


def test_zero_init_mistakes():
    def zero_all(block):
        for m in block.branch.modules():
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.weight)
                nn.init.zeros_(m.bias)

    def weight_only(block):
        nn.init.zeros_([m for m in block.branch if isinstance(m, nn.Linear)][-1].weight)

    def first_layer(block):
        layer = [m for m in block.branch if isinstance(m, nn.Linear)][0]
        nn.init.zeros_(layer.weight)
        nn.init.zeros_(layer.bias)

    _fails_with(ex.check_zero_init_branch(zero_all), "zeroed every layer")
    _fails_with(ex.check_zero_init_branch(weight_only), "bias")
    _fails_with(ex.check_zero_init_branch(first_layer), "should return its input unchanged")


def test_weighted_layer_and_identity_block_mistakes():
    _fails_with(ex.check_weighted_layers(lambda m: sum(1 for x in m.modules() if hasattr(x, "weight"))), "BatchNorm")
    _fails_with(ex.check_weighted_layers(lambda m: sum(isinstance(x, nn.Conv1d) for x in m.modules())), "classifier")
    _fails_with(ex.check_weighted_layers(lambda m: len(list(m.parameters()))), "parameter tensors")

    from book.nets.conv1d import BasicBlock1d, PlainBlock1d

    def appended(model, extra, block=PlainBlock1d, copy_first=True):
        import copy

        deeper = copy.deepcopy(model) if copy_first else model
        deeper.blocks = nn.Sequential(*deeper.blocks, *(block(64, 64) for _ in range(extra)))
        return deeper

    _fails_with(ex.check_add_identity_blocks(lambda m, e: appended(m, e, block=BasicBlock1d)), "residual blocks")
    _fails_with(ex.check_add_identity_blocks(lambda m, e: appended(m, e)), "a convolution")
    _fails_with(ex.check_add_identity_blocks(lambda m, e: appended(m, e, copy_first=False)), "copy")


def test_gradient_probe_mistakes():
    right = _solution_namespace("ex03_gradient_flow")["layer_grad_norms"]

    def reversed_order(model, x, y):
        return right(model, x, y)[::-1]

    def weight_grads(model, x, y):
        import torch.nn.functional as F

        model.zero_grad()
        F.cross_entropy(model(x), y).backward()
        return [layer.linear.weight.grad.norm().item() for layer in model.layers]

    def leaves_hooks(model, x, y):
        model.layers[0].register_forward_hook(lambda *a: None)
        return right(model, x, y)

    def summed_loss(model, x, y):
        return [v * len(x) for v in right(model, x, y)]

    _fails_with(ex.check_layer_grad_norms(reversed_order), "forward order")
    _fails_with(ex.check_layer_grad_norms(weight_grads), "weight matrix")
    _fails_with(ex.check_layer_grad_norms(leaves_hooks), "left 1 hook")
    _fails_with(ex.check_layer_grad_norms(summed_loss), "mean loss")


def test_initialization_mistakes():
    _fails_with(ex.check_init_linear(lambda layer: None), "left the weights")
    _fails_with(ex.check_init_linear(lambda layer: nn.init.xavier_normal_(layer.weight)), "too small", "2 / fan_in")
    _fails_with(ex.check_init_linear(lambda layer: nn.init.normal_(layer.weight, std=0.5)), "too large")
    _fails_with(ex.check_init_linear(lambda layer: nn.init.uniform_(layer.weight, 0, 0.2)), "centred on zero")
    assert ex.check_init_linear(lambda layer: nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu"))


def test_predicted_stds_follow_he_et_al():
    layers = [nn.Linear(64, 64) for _ in range(3)]
    for layer in layers:
        nn.init.constant_(layer.weight, math.sqrt(2 / 64))  # n·E[w²] = 2
        nn.init.zeros_(layer.bias)
    assert ex.predicted_activation_stds(layers) == pytest.approx([math.sqrt(2)] * 3)


def test_path_mistakes():
    _fails_with(ex.check_count_paths(lambda n, k: n ** k), "n ** k")
    _fails_with(ex.check_count_paths(lambda n, k: 2 ** n), "2 ** n")
    _fails_with(ex.check_count_paths(lambda n, k: float(math.comb(n, k))), "int")
    right = _solution_namespace("ex05_unrolled_view")["unrolled_output"]
    _fails_with(ex.check_unrolled_output(lambda b, x: right(b, x) - x), "length 0")
    _fails_with(ex.check_unrolled_output(lambda b, x: right(b[::-1], x)), "last-to-first")
    _fails_with(ex.check_unrolled_output(lambda b, x: x + sum(f(x) for f in b)), "two or more")


def test_learner_errors_are_reported_in_words():
    class Broken(nn.Module):
        def __init__(self, c_in, c_out, stride=1):
            super().__init__()
            self.shortcut = nn.Identity()
            self.conv = nn.Conv1d(c_in + 1, c_out, 3, padding=1)

        def forward(self, x):
            return self.conv(x)

    feedback = ex.check_basic_block(Broken)
    _fails_with(feedback, "raised RuntimeError")
    assert "Traceback" not in feedback.message


def test_every_task_statement_reaches_the_student_notebook():
    """A solution-tagged markdown cell must not swallow the next task's heading (it would vanish for students)."""
    import re

    for source in SOURCES:
        headings = re.findall(r"^## (Task \d+.*)$", source.read_text(), flags=re.M)
        assert headings, source.name
        nb = nbformat.read(ROOT / "exercises" / f"{source.stem}.ipynb", as_version=4)
        student_text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        for heading in headings:
            assert heading in student_text, f"{source.name}: '{heading}' is missing from the student notebook"


# --------------------------------------------------------------------------- written answers and investigations

def test_collect_answers_reads_the_learners_words_only():
    source = SOURCE_DIR / "ex01_degradation.md"
    specs = sources.written_answers(source)
    assert [a["answer"] for a in specs] == ["3a", "3b", "4a", "4b"]
    nb = nbformat.read(ROOT / "exercises" / "ex01_degradation.ipynb", as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("**Your answer (3b)**")]
    cells[0].source = "**Your answer (3b)**\n\nUnderfitting: 54% training error against 1.5%."
    cells[0].metadata = {}                           # an editor that drops metadata: the first line still finds it
    got = sources.collect_answers(nb, specs)
    assert got == {"3a": None, "3b": "Underfitting: 54% training error against 1.5%.", "4a": None, "4b": None}
    cells[0].source = "**Your answer (3b)** Underfitting, on one line."
    assert sources.collect_answers(nb, specs)["3b"] == "Underfitting, on one line."
    assert sources.collect_answers({"cells": "not a list"}, specs) == dict.fromkeys(["3a", "3b", "4a", "4b"])
    assert sources.collect_answers({"cells": [{"cell_type": "markdown", "source": ["**Your answer (3a)**\n", 7]}]},
                              specs) == dict.fromkeys(["3a", "3b", "4a", "4b"])


def test_an_answer_cell_without_its_label_is_refused(tmp_path):
    bad = tmp_path / "ex09_bad.md"
    front = (SOURCE_DIR / "ex01_degradation.md").read_text().split("\n---\n", 1)[0] + "\n---\n\n"
    bad.write_text(front + '# Exercise\n\n## Task 1 · x\n\n+++ {"tags": ["answer"], "task": 1, "answer": "1a", "points": 2}\n\n'
                   "Write here.\n")
    with pytest.raises(ValueError, match=r"must start with \*\*Your answer \(1a\)\*\*"):
        sources.written_answers(bad)


def test_range_hidden_tests_are_judged_outside_the_kernel():
    request = sources.hidden_test_request('assert 0.3 <= final_error(56, False, "train") <= 0.8, "off"\nprint("fine")')
    assert request == {"call": "final_error", "args": [56, False, "train"], "range": [0.3, 0.8], "message": "off",
                       "message_ok": "fine"}
    for value, passed in ((0.5, True), (0.9, False), (float("nan"), False), ("0.5", False)):
        namespace = {"final_error": lambda *args, v=value: v}
        verdict = protocol.judge(request, protocol.answer(request, namespace), "t")
        assert bool(verdict) is passed, (value, verdict)
    with pytest.raises(ValueError, match="bounds"):
        sources.hidden_test_request("assert 0.8 <= f(1) <= 0.3")
    with pytest.raises(ValueError):
        sources.hidden_test_request("assert low <= f(1) <= 0.3")


def test_final_error_mistakes():
    right = _solution_namespace("ex01_degradation")["final_error"]
    assert ex.check_final_error(right) and ex.check_final_error(right, seed=5, thorough=True)

    def variant(pick=lambda c: c[-1], same_kind=True):
        def final_error(depth, residual, split="train", runs=None):
            from book.ch1_degradation import recorded_long

            runs = recorded_long()["runs"] if runs is None else runs
            values = [pick(getattr(r, f"{split}_error")) for (d, res, _), r in runs.items()
                      if d == depth and (res == residual or not same_kind)]
            return sum(values) / len(values)
        return final_error

    _fails_with(ex.check_final_error(variant(min)), "the best epoch's error")
    _fails_with(ex.check_final_error(variant(lambda c: c[0])), "the first epoch's error")
    _fails_with(ex.check_final_error(variant(same_kind=False)), "plain and residual runs of that depth mixed")
    _fails_with(ex.check_final_error(lambda d, r, split="train", runs=None: right(d, r, "train", runs)), "train and test swapped")
    _fails_with(ex.check_final_error(lambda d, r, split="train", runs=None: [right(d, r, split, runs)] * 2),
                "return one: the mean over the seeds")
    assert 0.3 <= right(56, False, "train") <= 0.8 and right(20, False, "train") < 0.1


# --------------------------------------------------------------------------- messages teach without answering

TARGET_PATTERNS = (r"expected \(?\[?-?\d", r"not the [\d,.]{3,}", r"should be [^.:;]*= ?-?\d", r"= -?\d[\d,.]* of ")


def test_no_self_check_message_holds_a_target_value():
    """The usual mistakes of every task, run again: no message says the value the task wants."""
    import re

    MESSAGES.clear()
    mistakes = [test_block_mistakes, test_parameter_count_mistakes, test_residual_mistakes, test_zero_init_mistakes,
                test_weighted_layer_and_identity_block_mistakes, test_gradient_probe_mistakes,
                test_initialization_mistakes, test_path_mistakes,
                test_final_error_mistakes]
    for mistake in mistakes:
        mistake()
    # the numeric tasks' targets, for the calls their checks make
    right = _solution_namespace("ex04_building_resnets")["cifar_resnet_parameters"]
    targets = {f"{right(d):,}" for d in (20, 32, 44, 56, 110)} | {str(right(d)) for d in (20, 32, 44, 56, 110)}
    final_error = _solution_namespace("ex01_degradation")["final_error"]
    for depth, residual, split in ((56, False, "train"), (20, True, "test"), (20, False, "train"), (56, True, "test")):
        targets |= {f"{final_error(depth, residual, split):.4f}", f"{final_error(depth, residual, split):.1%}"}
    assert len(MESSAGES) >= 30
    for message in MESSAGES:
        for pattern in TARGET_PATTERNS:
            assert not re.search(pattern, message), f"{message!r} gives a target ({pattern})"
        own = re.sub(r"(returned|returns|got) \S+", "", message)   # the learner's own value may be any number
        leaked = [t for t in targets if t in own]
        assert not leaked, f"{message!r} holds the target value {leaked[0]}"
    # a wrong count says which way it is off, and the slip, never the count
    message = ex.check_cifar_resnet_parameters(lambda d: right(d) + 1).message
    assert "too many for ResNet-20" in message and f"{right(20):,}" not in message


def test_blank_student_notebook_run_all_raises_only_not_done_yet():
    """'Run all' on an untouched student notebook: each cell that stops says 'not done yet', never a raw error such
    as a NameError for a variable an unfinished cell did not set."""
    for name in NAMES:
        nb = nbformat.read(ROOT / "exercises" / f"{name}.ipynb", as_version=4)
        _, results = _run_cells(_code(nb))
        for i, source, value in results:
            if isinstance(value, Exception):
                assert isinstance(value, NotImplementedError) and str(value).startswith("not done yet"), \
                    f"{name}, code cell {i} ({source.splitlines()[0]!r}) raised {type(value).__name__}: {value}"


def test_written_answers_carry_at_least_40_percent_of_each_exercise():
    for source in SOURCES:
        auto = sum(t["points"] for t in sources.hidden_tests(source))
        written = sum(a["points"] for a in sources.written_answers(source))
        assert written >= 0.4 * (auto + written), f"{source.name}: written {written:g} of {auto + written:g}"


def _points_table_share(text: str) -> tuple[float, float]:
    """(checked automatically, written) from the total row of a page's "Tasks and points" table."""
    import re

    table = text[text.index("**Tasks and points**"):]
    total = re.search(r"^\| \| \*\*total\*\* \| \*\*([\d.]+)\*\* \| \*\*([\d.]+)\*\* \|$", table, re.M)
    assert total, "no total row in the points table"
    return float(total.group(1)), float(total.group(2))


def test_every_points_table_shows_at_least_40_percent_for_written_answers():
    """What a learner and an instructor read: the table on the book page and in the student notebook."""
    for source in SOURCES:
        page = (ROOT / "exercises" / f"{source.stem}.md").read_text()
        nb = nbformat.read(ROOT / "exercises" / f"{source.stem}.ipynb", as_version=4)
        table_cell = next(c.source for c in nb.cells if "**Tasks and points**" in c.source)
        for text in (page, table_cell):
            auto, written = _points_table_share(text)
            assert written >= 0.4 * (auto + written), f"{source.name}: the table shows {written:g} of {auto + written:g}"
    # a crafted table below the share fails
    crafted = "**Tasks and points**\n\n| | **total** | **7** | **4** |"
    auto, written = _points_table_share(crafted)
    assert written < 0.4 * (auto + written)
