"""What a self-check says to a learner: a :class:`Feedback`, and the helpers every exercise's checks share.

A check (``check_basic_block(BasicBlock)``) runs the learner's code on small inputs and returns a
:class:`Feedback` in words; it never raises. Hidden tests call the same checks through :func:`grade_task`.
What passes between a learner's kernel and the grader is :mod:`book.exercises.protocol`; reading an
exercise's source is :mod:`book.exercises.sources`.
"""

from __future__ import annotations

import contextvars
import html
from typing import Callable

__all__ = ["Feedback", "TaskFailed", "NOT_DONE", "grade_task"]


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


# True while the grader judges (``book.exercises.protocol.judge``): a check then lets an exception of its own code
# through, to be reported as the grader's error, instead of blaming the learner's code for it.
_JUDGING: contextvars.ContextVar[bool] = contextvars.ContextVar("judging", default=False)

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
                if _JUDGING.get() and not getattr(err, "from_learner", False):
                    raise     # in the grader no learner code runs: this is the judge's own failure
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
