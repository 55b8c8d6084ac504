"""What passes between a learner's kernel and the grader: a request, an answer of plain data, a verdict.

The grader (``python -m book.grade``) never decides anything where a learner's code runs. For each hidden
test it sends the learner's sandboxed kernel one request, after the learner's cells ran: "call your
definitions on the cases of this seed". :func:`answer` runs there and answers with plain data (numbers,
strings, nested lists; JSON). :func:`judge` runs in the grader's own process: it rebuilds the same cases
from the seed, reads the answer into exact built-in types and decides with the same words as the self-check.
A learner's code can change what :func:`answer` sends, but not what :func:`judge` expects.

Each check the grader can ask for has two halves in two places. The answer, which runs inside the sandbox, is
registered in ``ANSWERS`` by ``book.exercises.cases``: it draws the check's cases from the seed and writes down what the
learner's code returns on them, and it holds no reference solution. The judge, which runs in the grader, is
registered in ``JUDGED`` by the exercise's own module (``ex01`` … ``ex07``), next to the references it compares
with. The grader's sandbox holds the package without those modules (:func:`book.grading.sandbox.learner_package`),
so a notebook can neither import a judge's reference nor read its source.
"""

from __future__ import annotations

import json
import math
from typing import Callable

from .feedback import NOT_DONE, Feedback, _Fail, _is_tensor

__all__ = ["JUDGED", "ANSWERS", "GraderError", "answer", "judge", "preload", "remember_calls", "varied_call"]

# Every check the grader can judge: name -> judge. Filled by ``book.exercises`` from the ``JUDGED`` of each
# exercise's module (``ex01`` … ``ex07``) when the package is imported; the answers are in ``book.exercises.cases``.
JUDGED: dict[str, Callable] = {}
# Every check the sandbox can answer: name -> answer. Filled by ``book.exercises.cases`` (which ``book.exercises``
# imports) from the ``ANSWERS`` of each case module.
ANSWERS: dict[str, Callable] = {}

MAX_ANSWER_CHARS = 30_000_000     # the largest answer the grader reads
ERROR_CHARS = 200                 # a learner's exception message is cut to this length in the feedback


class _Stop(Exception):
    """Raised inside :func:`answer` when the learner's code raised: the answer so far is sent."""


class GraderError(Exception):
    """The grader's own code failed while judging (a bug in a judge, not anything the notebook did)."""


class _LearnerRaised(Exception):
    """The base of the stand-ins for exceptions the learner's code raised (see :func:`_learner_error`)."""

    from_learner = True


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
    return type(safe, (_LearnerRaised,), {})(f"[message from your code] {text}" if text else "[no message]")


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
# A check whose learner function takes and returns plain values (numbers, tensors, lists) draws its cases from the
# seed with a case generator in ``book.exercises.cases``. In the sandbox the learner's function is called on each
# case and only its return values are kept (:func:`answers_on`); in the grader the check runs on the same cases with
# those values replayed, and compares them with its references. The learner's code never runs where the verdict is
# reached, and the references never reach the sandbox.

def answers_on(cases):
    """The sandbox's half of a replayed check: the learner's function on each of ``cases(seed, thorough)``, in order.

    Stops at the first call that raises (the grader's replay stops there too). No verdict is reached here.
    """
    def run(namespace_fn, seed, thorough, answers):
        for args in cases(seed, bool(thorough)):
            _record(answers, namespace_fn, *args)
    return run


def _replay_judge(check):
    def run(answers, seed, thorough) -> "Feedback":
        kwargs = {"thorough": thorough} if thorough is not None else {}
        return check(_Replay(answers), seed=seed, **kwargs)
    return run


# --------------------------------------------------------------------------- answers and judges of the class tasks
# Where the learner writes a class or a function that changes a module, the sandbox reports what the learner's
# objects computed on the seed's inputs, and the parameters that the grader needs to recompute them itself.

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


_REMEMBERED_TYPES = (int, float, bool, str, type(None))


def remember_calls(names, shell) -> None:
    """Inside the learner's kernel, before the notebook's cells run: after every cell, wrap each function of
    ``names`` the notebook (re)defined so that it remembers what it returned for each call with plain arguments
    (numbers, strings, ``None``; defaults filled in) and returns the same number when called so again.

    A measured range (``assert 1.3 <= early_training_loss(20, True, 1) <= 2.0``) then costs nothing where the
    notebook's own experiment already made that call: the number is the one the learner's function computed in
    this kernel, so it is exactly what a fresh call would compute on the same numerical path and thread setting.
    Calls with any other argument (a data set, a tensor), and results that are not a number, are not remembered.
    """
    import functools
    import inspect
    import types

    def remembering(fn):
        try:
            signature = inspect.signature(fn)
        except (TypeError, ValueError):
            return fn
        kept: dict = {}

        @functools.wraps(fn)
        def remembered(*args, **kwargs):
            try:
                bound = signature.bind(*args, **kwargs)
                bound.apply_defaults()
                values = list(bound.arguments.items())
                key = tuple((k, type(v).__name__, v) for k, v in values)
                plain = all(type(v) in _REMEMBERED_TYPES for _, v in values)
            except TypeError:
                plain = False
            if not plain:
                return fn(*args, **kwargs)
            if key in kept:
                return kept[key]
            result = fn(*args, **kwargs)
            if type(result) in (int, float):
                kept[key] = result
            return result

        remembered.__grader_remembers__ = True
        return remembered

    def after_cell(*_):
        for name in names:
            fn = shell.user_ns.get(name)
            if isinstance(fn, types.FunctionType) and not getattr(fn, "__grader_remembers__", False):
                shell.user_ns[name] = remembering(fn)

    shell.events.register("post_run_cell", after_cell)


def answer(request: dict, namespace: dict) -> str:
    """Inside the learner's sandboxed kernel: answer one grader request with plain data (a JSON string).

    ``request`` is ``{"check": name, "names": [...], "seed": int, "thorough": bool | None}`` (a course task) or
    ``{"call": name, "args": [...], "also": [[...], ...]}`` (an instructor's ``assert name(args) == value``; a
    measured range's call also on the argument lists of ``also``, drawn by the grader). Never raises.
    """
    answers: list = []
    try:
        names = list(request.get("names") or [request.get("call")])
        missing = [n for n in names if n not in namespace]
        if missing:
            return json.dumps({"missing": str(missing[0])})
        if "call" in request:
            for args in [request.get("args", []), *request.get("also", [])]:
                _record(answers, namespace[request["call"]], *args)
        else:
            run = ANSWERS[request["check"]]
            run(*(namespace[n] for n in names), request["seed"], request.get("thorough"), answers)
    except _Stop:
        pass
    except BaseException as err:  # noqa: BLE001 - the grader reads whatever came before
        answers.append({"answer-error": f"{type(err).__name__}: {str(err)[:ERROR_CHARS]}"})
    return json.dumps({"answers": answers})


def judge(request: dict, reply: str | None, task: str) -> Feedback:
    """In the grader: the verdict on one request, from the sandbox's ``reply`` (untrusted JSON text).

    What the notebook sent that cannot be read fails the task; an exception of the judge's own code raises
    :class:`GraderError` (the grader's failure, reported as such, never blamed on the notebook).
    """
    try:
        if reply is None or len(reply) > MAX_ANSWER_CHARS:
            return Feedback(task, False, "your notebook's kernel sent no answer the grader could read.")
        data = json.loads(reply)
        if type(data) is dict and type(data.get("missing")) is str:
            name = "".join(ch for ch in data["missing"] if ch.isidentifier() or ch.isalnum())[:60]
            return Feedback(task, False, f"`{name}` is not defined: the cell that defines it was deleted, renamed, "
                                         "or did not run.")
        answers = data.get("answers") if type(data) is dict else None
        if type(answers) is not list:
            raise _Unreadable("no list of answers")
    except (ValueError, RecursionError) as err:
        return Feedback(task, False, f"the grader could not read your notebook's answer ({type(err).__name__}); "
                                     "did a cell change how the notebook prints or imports?")
    from .feedback import _JUDGING

    token = _JUDGING.set(True)
    try:
        if "call" in request:
            return _judge_call(request, answers, task)
        return JUDGED[request["check"]](answers, request["seed"], request.get("thorough"))
    except _Fail as fail:      # what the notebook sent, read by the judge's own code: not readable as asked
        return Feedback(task, False, str(fail))
    except MemoryError:
        raise
    except Exception as err:
        if isinstance(err, RuntimeError) and "can't allocate memory" in str(err):
            raise MemoryError(str(err)[:200]) from err     # torch's allocator, at the judge's memory limit
        raise GraderError(f"{type(err).__name__} in the judge of {request.get('check') or request.get('call')!s:.60}: "
                          f"{str(err)[:200]}") from err
    finally:
        _JUDGING.reset(token)


def varied_call(request: dict) -> list | None:
    """The arguments of a measured range's call with its seed replaced by another the grader draws (``None``: no
    seed to vary).

    ``request["vary"]`` is the position of the learner's function's ``seed`` parameter (read from the exercise's
    own solution, :func:`book.exercises.sources.hidden_tests`). The other seed is drawn from the seeds every claim
    of the course holds on (``book.training.CLAIM_SEEDS``), where the range holds too. The measurement repeated
    there must stay in the range and differ from the first: a constant fails.
    """
    import secrets

    from ..training import CLAIM_SEEDS

    position, args = request.get("vary"), list(request.get("args", []))
    if type(position) is not int or not 0 <= position < len(args) or type(args[position]) is not int:
        return None
    others = [s for s in CLAIM_SEEDS if s != args[position]]
    return args[:position] + [secrets.choice(others)] + args[position + 1:]


def _judge_call(request, answers, task) -> Feedback:
    replay = _Replay(answers)

    def called(args) -> str:
        return f"{request['call']}({', '.join(map(repr, args))})"

    what = called(request.get("args", []))
    calls = [request.get("args", []), *request.get("also", [])] if "range" in request else [request.get("args", [])]
    values = []
    for args in calls:
        try:
            got = replay.next()
        except NotImplementedError:
            return Feedback(task, False, NOT_DONE)
        except _Fail as fail:
            return Feedback(task, False, str(fail))
        except RecursionError:
            return Feedback(task, False, f"{called(args)} calls itself without end (RecursionError).")
        except _LearnerRaised as err:
            return Feedback(task, False, f"{called(args)} raised {type(err).__name__}: {err}")
        if _is_tensor(got):
            got = got.tolist() if got.numel() != 1 else got.item()
        values.append(got)
    got = values[0]
    if "range" in request:
        low, high = request["range"]
        for args, value in zip(calls, values):
            if not (type(value) in (int, float) and math.isfinite(value) and low <= value <= high):
                shown = f"{value:.4g}" if type(value) in (int, float) else repr(value)[:200]
                return Feedback(task, False, request.get("message") if args is calls[0] and request.get("message")
                                else f"{called(args)} returned {shown}, outside the range a correct experiment gives.")
        if len(values) > 1 and len(set(values)) == 1:
            return Feedback(task, False, f"{what} and {called(calls[1])} both returned {got:.6g}: a measurement on "
                                         "another seed comes out (slightly) different. Return what your experiment "
                                         "measures, not a number from the range.")
        return Feedback(task, True, request.get("message_ok") or f"{what} = {got:.4g}, within the expected range")
    if got == request["expected"] and type(got) is type(request["expected"]) or (
            type(got) in (int, float) and type(request["expected"]) in (int, float) and got == request["expected"]):
        return Feedback(task, True, request.get("message_ok") or "passed")
    shown = repr(got)
    return Feedback(task, False, request.get("message") or f"{what} returned {shown[:200]}, which is not the expected value.")
