"""Reading exercise sources: their cells' tags, hidden tests and written answers; a submission's written answers.

Each exercise has one source, a MyST notebook ``exNN_name.md`` (its cell tags are described in
:mod:`book.exercises`). Every function here takes the source, or the folder of sources, as an argument:
the course's own folder (``exercises/source`` in its repository) is known only to the grader
(:mod:`book.grading.collect`) and the build tooling (:mod:`book.authoring.exercise_pages`). Reading a
source needs ``jupytext``, which the build and the grader install and a learner's notebook never imports.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .protocol import JUDGED

__all__ = ["exercise_sources", "read_source", "cell_tags", "hidden_tests", "hidden_test_request", "written_answers",
           "collect_answers", "ANSWER_CHARS"]


def exercise_sources(folder: Path) -> list[Path]:
    """The exercise sources in ``folder``, ``exNN_name.md``, in order."""
    return sorted(Path(folder).glob("ex[0-9][0-9]_*.md"))


def read_source(path: Path):
    """One exercise source as a notebook (``jupytext``: a build and grading requirement, not a learner's)."""
    import jupytext

    return jupytext.read(path)


def cell_tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _seed_positions(cells) -> dict[str, int]:
    """Function name -> the position of its ``seed`` parameter, for the functions the source's code cells define."""
    import ast

    found = {}
    for cell in cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                names = [a.arg for a in node.args.posonlyargs + node.args.args]
                if "seed" in names:
                    found[node.name] = names.index("seed")
    return found


def hidden_tests(source: Path) -> list[dict]:
    """The hidden tests of one source: ``[{"task", "points", "title", "source"}]`` in order.

    A measured range's request (``assert low <= name(...) <= high``) gets ``"vary"``: the position of the
    ``seed`` parameter of the source's own ``name``, when it has one; the grader then repeats the call on a seed it
    draws (:func:`book.exercises.protocol.varied_call`).
    """
    tests = []
    cells = read_source(source).cells
    seeds = _seed_positions(cells)
    for cell in cells:
        if cell.cell_type == "code" and "hidden-test" in cell_tags(cell):
            meta = cell.metadata
            try:
                test = {"task": int(meta["task"]), "points": float(meta["points"]),
                        "title": str(meta.get("title", f"Task {meta['task']}")), "source": cell.source}
            except (KeyError, ValueError, TypeError):
                raise ValueError(f"{source}: every hidden-test cell needs numeric `task` and `points` metadata") from None
            try:
                test["request"] = hidden_test_request(cell.source)
                if "range" in test["request"] and test["request"]["call"] in seeds:
                    test["request"]["vary"] = seeds[test["request"]["call"]]
            except ValueError as err:
                test["request"], test["problem"] = None, str(err)
            tests.append(test)
    return tests


def _messages(assertion, prints) -> dict:
    """The messages of an instructor's assert form: the assert's own (failing) and the print's (passing)."""
    import ast

    messages = {}
    if assertion.msg is not None:
        messages["message"] = str(ast.literal_eval(assertion.msg))
    if prints:
        messages["message_ok"] = " ".join(str(ast.literal_eval(a)) for a in prints[0].value.args)
    return messages


def hidden_test_request(source: str) -> dict:
    """What the grader asks a learner's sandbox for, read from a hidden-test cell (never executed by the grader).

    Two forms are understood, the course's and a plain one for instructors' own tests:

    - ``grade_task(check_basic_block, globals(), "BasicBlock", thorough=True)`` (imports may precede it):
      the check's cases, drawn from a seed the grader picks after the learner's cells ran;
    - ``assert count_paths(54, 27) == 1946939425648112, "message"`` (literal arguments and value; one
      ``print("...")`` may give the message shown when it passes);
    - ``assert 0.05 <= degradation_gap(40) <= 0.4, "message"``: the call's number must lie in the range (an
      investigation's measurement on the real experiment, whose exact value depends on the machine).

    Raises ``ValueError`` for anything else: such a cell would have to run in the learner's kernel.
    """
    import ast

    try:
        body = [node for node in ast.parse(source).body if not isinstance(node, (ast.Import, ast.ImportFrom))]
    except SyntaxError as err:
        raise ValueError(f"the cell does not parse ({err.msg})") from None
    form = ("the grader judges outside the learner's kernel and understands two forms: "
            "grade_task(check_..., globals(), \"Name\", thorough=True), assert name(literals) == literal, \"message\", "
            "or assert low <= name(literals) <= high, \"message\"")
    if len(body) == 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Call):
        call = body[0].value
        if isinstance(call.func, ast.Name) and call.func.id == "grade_task" and len(call.args) >= 3 \
                and isinstance(call.args[0], ast.Name) and call.args[0].id in JUDGED:
            names = [ast.literal_eval(a) for a in call.args[2:]]
            kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
            if all(type(n) is str for n in names) and set(kwargs) <= {"thorough"}:
                return {"check": call.args[0].id, "names": names, "thorough": kwargs.get("thorough")}
        raise ValueError(form)
    asserts = [n for n in body if isinstance(n, ast.Assert)]
    prints = [n for n in body if isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)
              and isinstance(n.value.func, ast.Name) and n.value.func.id == "print"]
    if len(asserts) == 1 and len(asserts) + len(prints) == len(body) and len(prints) <= 1:
        test = asserts[0].test
        if isinstance(test, ast.Compare) and len(test.ops) == 2 and all(isinstance(op, ast.LtE) for op in test.ops) \
                and isinstance(test.comparators[0], ast.Call) and isinstance(test.comparators[0].func, ast.Name) \
                and not test.comparators[0].keywords:
            call = test.comparators[0]
            try:
                low, high = ast.literal_eval(test.left), ast.literal_eval(test.comparators[1])
                request = {"call": call.func.id, "args": [ast.literal_eval(a) for a in call.args],
                           **_messages(asserts[0], prints)}
            except ValueError:
                raise ValueError(form + " (the arguments and the bounds must be literals)") from None
            if not all(type(b) in (int, float) for b in (low, high)) or not low <= high:
                raise ValueError(form + " (the bounds of a range must be numbers, the lower one first)")
            request["range"] = [low, high]
            json.dumps(request["args"])
            return request
        if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq) \
                and isinstance(test.left, ast.Call) and isinstance(test.left.func, ast.Name) and not test.left.keywords:
            try:
                request = {"call": test.left.func.id, "args": [ast.literal_eval(a) for a in test.left.args],
                           "expected": ast.literal_eval(test.comparators[0]), **_messages(asserts[0], prints)}
            except ValueError:
                raise ValueError(form + " (the arguments and the value must be literals)") from None
            json.dumps(request["args"])  # arguments travel to the sandbox as JSON
            return request
    raise ValueError(form)


# --------------------------------------------------------------------------- written answers
#
# An investigation ends in words: a markdown cell tagged ``answer`` (metadata ``task``, ``answer`` — an id such as
# "3b" —, ``points``, ``title``) whose first line is ``**Your answer (3b)**`` and whose other lines are a
# placeholder the learner replaces. The grader collects the text from the submitted file (it is never run), marks
# it for review in the gradebook and puts it, with the rubric (a markdown cell tagged ``rubric`` with the same
# ``answer`` id, kept out of the student notebook and the book page), in the feedback file. The book page shows a
# model answer in the ``solution`` dropdown that follows.

ANSWER_CHARS = 20_000     # a written answer is cut to this length in the feedback file
_ANSWER_MARK = re.compile(r"^\s*\*\*\s*Your answer \(([0-9]+[a-z]?)\)\s*\*\*", re.IGNORECASE)


def written_answers(source: Path) -> list[dict]:
    """The written answers one source asks for: ``[{"task", "answer", "points", "title", "placeholder", "rubric"}]``."""
    specs, rubrics = [], {}
    for cell in read_source(source).cells:
        if cell.cell_type != "markdown":
            continue
        tags = cell_tags(cell)
        if "answer" in tags:
            meta = cell.metadata
            try:
                spec = {"task": int(meta["task"]), "answer": str(meta["answer"]), "points": float(meta["points"]),
                        "title": str(meta.get("title", f"written answer {meta['answer']}"))}
            except (KeyError, ValueError, TypeError):
                raise ValueError(f"{source}: every answer cell needs `task`, `answer` and `points` metadata") from None
            first, _, rest = cell.source.partition("\n")
            mark = _ANSWER_MARK.match(first)
            if not mark or mark.group(1) != spec["answer"]:
                raise ValueError(f"{source}: answer cell {spec['answer']} must start with **Your answer ({spec['answer']})**")
            spec["placeholder"] = " ".join(rest.split())
            specs.append(spec)
        elif "rubric" in tags:
            rubrics[str(cell.metadata.get("answer"))] = cell.source.strip()
    for spec in specs:
        spec["rubric"] = rubrics.get(spec["answer"], "")
    return specs


def collect_answers(nb, specs: list[dict]) -> dict[str, str | None]:
    """The learner's text for each written answer of ``specs`` (``None`` where none was written).

    ``nb`` is the submitted notebook as read by ``nbformat`` (untrusted data: only its markdown cells' text is read).
    A cell is found by its ``**Your answer (3b)**`` first line; the placeholder left as it was counts as no answer.
    """
    found: dict[str, str | None] = {spec["answer"]: None for spec in specs}
    placeholders = {spec["answer"]: spec["placeholder"] for spec in specs}
    cells = nb.get("cells", []) if isinstance(nb, dict) else []
    for cell in cells if isinstance(cells, list) else []:
        if not isinstance(cell, dict) or cell.get("cell_type") != "markdown":
            continue
        source = cell.get("source", "")
        source = "".join(x for x in source if isinstance(x, str)) if isinstance(source, list) else str(source)
        first, _, rest = source.partition("\n")
        mark = _ANSWER_MARK.match(first)
        if not mark or mark.group(1).lower() not in found:
            continue
        key = mark.group(1).lower()
        text = (first[mark.end():].strip(" ·:-—") + "\n" + rest).strip()
        if text and " ".join(text.split()) != placeholders[key] and found[key] is None:
            found[key] = text[:ANSWER_CHARS] + (" …" if len(text) > ANSWER_CHARS else "")
    return found
