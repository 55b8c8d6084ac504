"""What every exercise's checks share: feedback, the grader's request and answer format, the sources.

The cell tags of an exercise source and how learners and instructors meet the checks are described in
:mod:`book.exercises`; the checks themselves live in one module per exercise.
"""

from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent.parent
SOURCE_DIR = ROOT / "exercises" / "source"

# Every check the grader can ask a learner's kernel for: name -> (probe, judge). Filled by ``book.exercises``
# from the ``JUDGED`` of each exercise's module (``ex01`` … ``ex07``) when the package is imported.
JUDGED: dict[str, tuple[Callable, Callable]] = {}


# =========================================================================== feedback

class Feedback:
    """The answer of a check: ``bool(feedback)`` says whether the task passed; ``.message`` says why."""

    def __init__(self, task: str, passed: bool, message: str):
        self.task, self.passed, self.message = task, passed, message

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        mark = "✓ passed" if self.passed else "✗ not yet"
        return f"{self.task} — {mark}: {self.message}"

    def _repr_html_(self) -> str:
        # 4.5:1 or more on white and on the light output panels of dark mode (WCAG 2.1 AA).
        colour, mark = ("#13652d", "✓ passed") if self.passed else ("#9c1f18", "✗ not yet")
        return (f'<div style="border-left:4px solid {colour};padding:4px 10px;margin:4px 0">'
                f'<b style="color:{colour}">{html.escape(self.task)} — {mark}</b><br>'
                f'{html.escape(self.message)}</div>')


class TaskFailed(Exception):
    """Raised by :func:`grade_task` (in hidden tests) with the check's plain-words message."""


class _Fail(Exception):
    """A check's verdict, raised inside a check and turned into a failing :class:`Feedback`."""


NOT_DONE = "not done yet: replace the `raise NotImplementedError` in the task's cell with your code, then run that cell and this one again."


def _checker(task: str):
    """Decorate a check body ``f(*args) -> success message`` so that it always returns a Feedback."""

    def decorate(body: Callable[..., str]) -> Callable[..., Feedback]:
        def check(*args, **kwargs) -> Feedback:
            try:
                import torch

                with torch.random.fork_rng(devices=[]):  # leave the learner's random state alone
                    message = body(*args, **kwargs)
                return Feedback(task, True, message)
            except _Fail as fail:
                return Feedback(task, False, str(fail))
            except NotImplementedError:
                return Feedback(task, False, NOT_DONE)
            except RecursionError:
                return Feedback(task, False, "your code calls itself without end (RecursionError).")
            except Exception as err:  # learner code that fails in a way no step below anticipated
                return Feedback(task, False, f"your code raised {type(err).__name__}: {err}")

        check.__name__ = body.__name__
        check.__doc__ = body.__doc__
        return check

    return decorate


def _run(what: str, fn: Callable, *args, **kwargs):
    """Call learner code; turn its exceptions into a sentence that names what was being done."""
    try:
        return fn(*args, **kwargs)
    except (_Fail, NotImplementedError):
        raise
    except Exception as err:
        raise _Fail(f"{what} raised {type(err).__name__}: {err}") from None


def _rng(seed: int):
    """The grader's case generator: the same cases in the learner's sandbox and in the grader."""
    import random

    return random.Random(seed)


def _shape(t) -> str:
    return "(" + ", ".join(str(s) for s in t.shape) + ")"


def _is_tensor(value) -> bool:
    import torch

    return isinstance(value, torch.Tensor)


def _close(a, b, tol: float = 1e-5) -> bool:
    import torch

    return _is_tensor(a) and a.shape == b.shape and bool(torch.allclose(a, b, atol=tol, rtol=tol))


def _as_float(value, what: str) -> float:
    try:
        return float(value)
    except Exception:
        raise _Fail(f"{what} should be a number, but it is {type(value).__name__} {value!r}.") from None


def _one_number(value, call: str, which: str) -> float:
    """The single number a measurement ``call`` returned; ``which`` says, for the message, what that number is."""
    if isinstance(value, (list, tuple)) or (_is_tensor(value) and value.numel() != 1):
        raise _Fail(f"{call} returned several numbers; return one: {which}.")
    return _as_float(value, f"the value of {call}")


def grade_task(check: Callable[..., Feedback], namespace: dict, *names: str, **kwargs) -> None:
    """Run ``check`` on the objects ``names`` from ``namespace``; raise :class:`TaskFailed` unless it passes.

    Hidden tests call this as ``grade_task(check_basic_block, globals(), "BasicBlock")``.
    """
    missing = [n for n in names if n not in namespace]
    if missing:
        raise TaskFailed(f"`{missing[0]}` is not defined: the cell that defines it was deleted, renamed, "
                         "or did not run.")
    feedback = check(*(namespace[n] for n in names), **kwargs)
    if not feedback:
        raise TaskFailed(feedback.message)
    print(repr(feedback))


# =========================================================================== judging outside the learner's kernel
#
# The grader (``python -m book.grade``) never decides anything where a learner's code runs. For each hidden
# test it sends the learner's sandboxed kernel one request, after the learner's cells ran: "call your
# definitions on the cases of this seed". :func:`probe` runs there and answers with plain data (numbers,
# strings, nested lists; JSON). :func:`judge` runs in the grader's own process: it rebuilds the same cases
# from the seed, reads the answer into exact built-in types and decides with the same words as the self-check.
# A learner's code can change what :func:`probe` answers, but not what :func:`judge` expects.

MAX_ANSWER_CHARS = 30_000_000     # the largest answer the grader reads
ERROR_CHARS = 200                 # a learner's exception message is cut to this length in the feedback


class _Stop(Exception):
    """Raised inside :func:`probe` when the learner's code raised: the answer so far is sent."""


def _plain(value, depth: int = 0):
    """A learner's return value as JSON-ready plain data (inside the sandbox; the grader trusts none of it)."""
    import numbers

    if depth > 20:
        return {"object": "too deeply nested"}
    if value is None or type(value) in (bool, str):
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int.__int__(value) if isinstance(value, int) else int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (list, tuple)):
        items = [_plain(v, depth + 1) for v in list(value)[:100_000]]
        return {"tuple": items} if isinstance(value, tuple) else items
    try:
        import torch

        if isinstance(value, torch.Tensor):
            t = value.detach().to("cpu")
            kind = "float" if t.is_floating_point() else ("bool" if t.dtype == torch.bool else "int")
            return {"tensor": {"kind": kind, "shape": list(t.shape), "data": t.reshape(-1).tolist()}}
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return {"object": type(value).__name__[:60]}


class _Unreadable(_Fail, ValueError):
    """The sandbox's answer is not what the grader asked for (a cell changed the printing or the imports)."""

    def __init__(self, what: str):
        super().__init__(f"the grader could not read your notebook's answer ({what}); did a cell change how the "
                         "notebook prints, or replace parts of torch or of the course package?")


def _exact(value, depth: int = 0):
    """Read plain data from the sandbox into exact built-in types and fresh tensors (in the grader).

    Only JSON's own types arrive (``json.loads`` makes no subclass), and only these shapes are accepted;
    anything else raises ``ValueError``.
    """
    if depth > 20:
        raise _Unreadable("nested too deeply")
    kind = type(value)
    if value is None or kind in (bool, int, float, str):
        return kind(value) if value is not None else None
    if kind is list:
        return [_exact(v, depth + 1) for v in value]
    if kind is dict and len(value) == 1:
        (tag, body), = value.items()
        if tag == "tuple" and type(body) is list:
            return tuple(_exact(v, depth + 1) for v in body)
        if tag == "object" and type(body) is str:
            return _Opaque(body[:60])
        if tag == "tensor" and type(body) is dict:
            import torch

            shape, data = body.get("shape"), body.get("data")
            if type(shape) is not list or not all(type(s) is int and 0 <= s for s in shape) or type(data) is not list:
                raise _Unreadable("a malformed tensor")
            if math.prod(shape) != len(data) or not all(type(v) in (int, float, bool) for v in data):
                raise _Unreadable("a malformed tensor")
            dtype = {"float": torch.float64, "int": torch.int64, "bool": torch.bool}.get(body.get("kind"))
            if dtype is None:
                raise _Unreadable("a malformed tensor")
            t = torch.tensor(data, dtype=dtype).reshape(shape)
            return t.float() if dtype == torch.float64 else t
    raise _Unreadable(f"unexpected data of type {kind.__name__}")


class _Opaque:
    """A value the sandbox could not turn into plain data: only its type's name arrived."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name} object>"


def _learner_error(name, message) -> Exception:
    """An exception that stands for one the learner's code raised: its type's name, its message trimmed and labelled."""
    name = str(name)[:60]
    if name == "NotImplementedError":
        return NotImplementedError()
    if name == "RecursionError":
        return RecursionError()
    safe = "".join(ch for ch in name if ch.isalnum() or ch == "_") or "Exception"
    text = " ".join(str(message).split())
    if len(text) > ERROR_CHARS:
        text = text[:ERROR_CHARS] + " …"
    return type(safe, (Exception,), {})(f"[message from your code] {text}" if text else "[no message]")


def _record(answers: list, fn, *args, **kwargs):
    """Call learner code inside the sandbox and write down what came back (or what it raised)."""
    try:
        value = fn(*args, **kwargs)
    except BaseException as err:  # noqa: BLE001 - SystemExit and KeyboardInterrupt from learner code too
        answers.append({"raised": [type(err).__name__, str(err)[:2 * ERROR_CHARS]]})
        raise _Stop from None
    answers.append({"value": _plain(value)})
    return value


class _Replay:
    """In the grader: hand back the sandbox's answers, one per call, as exact built-in values."""

    def __init__(self, answers):
        if type(answers) is not list:
            raise _Unreadable("no list of answers")
        self.answers, self.used = answers, 0

    def next(self):
        if self.used >= len(self.answers):
            raise _Fail("your notebook's kernel sent fewer answers than the test asked for "
                        "(did a cell redirect or replace the grader's request?).")
        item = self.answers[self.used]
        self.used += 1
        if type(item) is dict and type(item.get("raised")) is list and len(item["raised"]) == 2:
            raise _learner_error(*item["raised"])
        if type(item) is not dict or "value" not in item:
            raise _Unreadable("a malformed answer")
        return _exact(item["value"])

    def __call__(self, *args, **kwargs):
        return self.next()


# --------------------------------------------------------------------------- replayed checks
# A check whose learner function takes and returns plain values (numbers, tensors, lists) is run twice with the
# same seed: in the sandbox with the learner's function (only its return values are kept) and in the grader
# with those return values replayed. The learner's code never runs where the verdict is reached.

def _replay_probe(check):
    def run(namespace_fn, seed, thorough, answers):
        def recorder(*args, **kwargs):
            value = _record(answers, namespace_fn, *args, **kwargs)
            return _exact(json.loads(json.dumps(_plain(value))))  # the sandbox goes on with what the grader will see
        kwargs = {"thorough": thorough} if thorough is not None else {}
        check(recorder, seed=seed, **kwargs)
    return run


def _replay_judge(check):
    def run(answers, seed, thorough) -> "Feedback":
        kwargs = {"thorough": thorough} if thorough is not None else {}
        return check(_Replay(answers), seed=seed, **kwargs)
    return run


# --------------------------------------------------------------------------- probes and judges of the class tasks
# Where the learner writes a class or a function that changes a module, the sandbox reports what the learner's
# objects computed on the seed's inputs, and the parameters that the grader needs to recompute them itself.

def _tensor_data(t) -> dict:
    return _plain(t)


def _seeded(seed: int, i: int) -> int:
    return (seed * 1_000_003 + i) % 2**31


def _state_tensors(state) -> dict | None:
    if type(state) is not dict or len(state) > 10_000:
        return None
    out = {}
    for key, value in state.items():
        t = _exact(value)
        if type(key) is not str or not _is_tensor(t):
            return None
        out[key] = t
    return out


def _same_state(module, state) -> bool:
    got = _state_tensors(state)
    want = module.state_dict()
    return got is not None and set(got) == set(want) and all(
        got[k].shape == want[k].shape and bool((got[k].double() == want[k].double()).all()) for k in want)


def _load_state(module, state) -> bool:
    got = _state_tensors(state)
    want = module.state_dict()
    if got is None or set(got) != set(want) or any(got[k].shape != want[k].shape for k in want):
        return False
    module.load_state_dict({k: got[k].to(want[k].dtype) for k in want})
    return True




def preload() -> None:
    """Import what the judges use, once, before any submission runs (the grader's code is then in memory)."""
    import torch  # noqa: F401

    from ..nets import conv1d, mlp  # noqa: F401


def probe(request: dict, namespace: dict) -> str:
    """Inside the learner's sandboxed kernel: answer one grader request with plain data (a JSON string).

    ``request`` is ``{"check": name, "names": [...], "seed": int, "thorough": bool | None}`` (a course task) or
    ``{"call": name, "args": [...]}`` (an instructor's ``assert name(args) == value``). Never raises.
    """
    answers: list = []
    try:
        names = list(request.get("names") or [request.get("call")])
        missing = [n for n in names if n not in namespace]
        if missing:
            return json.dumps({"missing": str(missing[0])})
        if "call" in request:
            _record(answers, namespace[request["call"]], *request.get("args", []))
        else:
            run = JUDGED[request["check"]][0]
            run(*(namespace[n] for n in names), request["seed"], request.get("thorough"), answers)
    except _Stop:
        pass
    except BaseException as err:  # noqa: BLE001 - the grader reads whatever came before
        answers.append({"probe-error": f"{type(err).__name__}: {str(err)[:ERROR_CHARS]}"})
    return json.dumps({"answers": answers})


def judge(request: dict, reply: str | None, task: str) -> Feedback:
    """In the grader: the verdict on one request, from the sandbox's ``reply`` (untrusted JSON text)."""
    try:
        if reply is None or len(reply) > MAX_ANSWER_CHARS:
            return Feedback(task, False, "your notebook's kernel sent no answer the grader could read.")
        data = json.loads(reply)
        if type(data) is dict and type(data.get("missing")) is str:
            name = "".join(ch for ch in data["missing"] if ch.isidentifier() or ch.isalnum())[:60]
            return Feedback(task, False, f"`{name}` is not defined: the cell that defines it was deleted, renamed, "
                                         "or did not run.")
        answers = data["answers"] if type(data) is dict else None
        if type(answers) is not list:
            raise ValueError("no answers")
        if "call" in request:
            return _judge_call(request, answers, task)
        return JUDGED[request["check"]][1](answers, request["seed"], request.get("thorough"))
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError) as err:
        return Feedback(task, False, f"the grader could not read your notebook's answer ({type(err).__name__}); "
                                     "did a cell change how the notebook prints or imports?")


def _judge_call(request, answers, task) -> Feedback:
    replay = _Replay(answers)
    what = f"{request['call']}({', '.join(map(repr, request.get('args', [])))})"
    try:
        got = replay.next()
    except NotImplementedError:
        return Feedback(task, False, NOT_DONE)
    except _Fail as fail:
        return Feedback(task, False, str(fail))
    except Exception as err:
        return Feedback(task, False, f"{what} raised {type(err).__name__}: {err}")
    if _is_tensor(got):
        got = got.tolist() if got.numel() != 1 else got.item()
    if "range" in request:
        low, high = request["range"]
        if type(got) in (int, float) and math.isfinite(got) and low <= got <= high:
            return Feedback(task, True, request.get("message_ok") or f"{what} = {got:.4g}, within the expected range")
        shown = f"{got:.4g}" if type(got) in (int, float) else repr(got)[:200]
        return Feedback(task, False, request.get("message") or
                        f"{what} returned {shown}, outside the range a correct experiment gives.")
    if got == request["expected"] and type(got) is type(request["expected"]) or (
            type(got) in (int, float) and type(request["expected"]) in (int, float) and got == request["expected"]):
        return Feedback(task, True, request.get("message_ok") or "passed")
    shown = repr(got)
    return Feedback(task, False, request.get("message") or f"{what} returned {shown[:200]}, which is not the expected value.")


# =========================================================================== the sources

def sources(source_dir: Path = SOURCE_DIR) -> list[Path]:
    """The exercise sources, ``exNN_name.md``, in order."""
    return sorted(Path(source_dir).glob("ex[0-9][0-9]_*.md"))


def read_source(path: Path):
    import jupytext

    return jupytext.read(path)


def cell_tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def hidden_tests(source: Path) -> list[dict]:
    """The hidden tests of one source: ``[{"task", "points", "title", "source"}]`` in order."""
    tests = []
    for cell in read_source(source).cells:
        if cell.cell_type == "code" and "hidden-test" in cell_tags(cell):
            meta = cell.metadata
            try:
                test = {"task": int(meta["task"]), "points": float(meta["points"]),
                        "title": str(meta.get("title", f"Task {meta['task']}")), "source": cell.source}
            except (KeyError, ValueError, TypeError):
                raise ValueError(f"{source}: every hidden-test cell needs numeric `task` and `points` metadata") from None
            try:
                test["request"] = hidden_test_request(cell.source)
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


# =========================================================================== written answers
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
