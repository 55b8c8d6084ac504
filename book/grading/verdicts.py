"""The judges in a process of their own, under their own memory and time limits: ``python -m book.grading.verdicts``.

The grader (:mod:`book.grading.judge`) hands one submission's answers to a fresh child process and reads one
verdict per line. The child runs under ``prlimit`` (its address space and CPU seconds), with a wall-clock
deadline, reads none of the course's bytecode (``-B``, and an empty ``pycache_prefix`` before the course is imported) and starts only after the grader's files
were checked against the shipped manifest (:mod:`book.grading.manifest`). A forged quantity that the judge
would compute with until it runs out of memory or time ends that child, not the grader: the task is *rejected*,
and the rest of the submission is judged in a new child.

On stdin, one JSON object ``{"items": [{"request", "reply", "title"}, ...]}``; on stdout, one line per item:
``{"passed": bool, "message": str}`` or ``{"grader_error": str}``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass

__all__ = ["JudgeLimits", "Verdict", "judge_all", "GraderFilesChanged"]


@dataclass
class JudgeLimits:
    """The judges' own limits, per child process (one submission's answers)."""

    memory_bytes: int = 3 * 2**30     # address space (RLIMIT_AS); importing torch takes about 1.5 GiB of it
    cpu_seconds: int = 300            # CPU time (RLIMIT_CPU)
    wall_seconds: float = 300.0       # the whole child, from start to its last verdict


@dataclass
class Verdict:
    kind: str          # "judged", "grader-error" or "rejected"
    passed: bool
    message: str


class GraderFilesChanged(RuntimeError):
    """The grader's files on disk are not the shipped ones: nothing may be judged with them."""


def _child_command(limits: JudgeLimits, prefix: str) -> list[str]:
    # torch's own bytecode is read as usual (compiling it afresh takes seconds); the course's modules, imported only
    # after pycache_prefix points at an empty folder, are compiled from their checked sources
    bootstrap = ("import sys, torch; sys.pycache_prefix = sys.argv[1]; "
                 "from book.grading.verdicts import main; sys.exit(main())")
    return ["prlimit", f"--as={limits.memory_bytes}", f"--cpu={limits.cpu_seconds}", "--core=0", "--",
            sys.executable, "-I", "-B", "-c", bootstrap, prefix]


def judge_env(environ=None) -> dict[str, str]:
    """The judge's environment: the grader's, on one thread and on the sandbox's numerical path.

    A judge recomputes what a learner's code computed in the sandbox and compares to about 1e-5, so it must compute
    on the same kernels: the pinned path (:mod:`book.numerics`) unless the grader was asked for native kernels,
    whether or not the grader's own process was started pinned.
    """
    from .. import numerics

    environ = os.environ if environ is None else environ
    env = {name: value for name, value in environ.items() if name not in numerics.PINNED}
    env.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    if not numerics.opted_out(environ):
        env.update(numerics.PINNED)
    return env


def judge_all(items: list[dict], limits: JudgeLimits | None = None) -> list[Verdict]:
    """One :class:`Verdict` per item (``{"request", "reply", "title"}``), judged in child processes."""
    from .manifest import problems

    limits = limits or JudgeLimits()
    verdicts: list[Verdict] = []
    while len(verdicts) < len(items):
        changed = problems()
        if changed:
            raise GraderFilesChanged("; ".join(changed[:3]))
        rest = items[len(verdicts):]
        env = judge_env()
        with tempfile.TemporaryDirectory(prefix="book-judge-") as prefix:
            try:
                done = subprocess.run(_child_command(limits, prefix), input=json.dumps({"items": rest}).encode(),
                                      capture_output=True, timeout=limits.wall_seconds, env=env, cwd=prefix)
                out, err, rc, late = done.stdout, done.stderr, done.returncode, False
            except subprocess.TimeoutExpired as expired:
                out, err, rc, late = expired.stdout or b"", expired.stderr or b"", None, True
        for line in out.decode("utf-8", "replace").splitlines()[:len(rest)]:
            try:
                data = json.loads(line)
            except ValueError:
                break
            if "grader_error" in data:
                verdicts.append(Verdict("grader-error", False, str(data["grader_error"])))
            else:
                verdicts.append(Verdict("judged", data["passed"] is True, str(data["message"])))
        if len(verdicts) < len(items):   # the child ended while judging the next item
            text = err.decode("utf-8", "replace")
            if late or rc in (3, -9, -24, 137) or "MemoryError" in text:
                why = f"ran past the judge's {limits.wall_seconds:.0f} s" if late else \
                    "ran past the judge's memory or CPU limit"
                verdicts.append(Verdict("rejected", False, f"rejected: judging this answer {why}; an answer the "
                                        "grader cannot judge within its limits earns nothing"))
            else:
                tail = " ".join(text.strip().splitlines()[-1:])[:300]
                verdicts.append(Verdict("grader-error", False, f"the judge's process failed (exit {rc}): {tail}"))
    return verdicts


def main() -> int:
    from ..exercises.protocol import GraderError, judge, preload

    preload()
    items = json.loads(sys.stdin.buffer.read())["items"]
    for item in items:
        try:
            feedback = judge(item["request"], item["reply"], item["title"])
            line = {"passed": bool(feedback.passed), "message": str(feedback.message)}
        except GraderError as err:
            line = {"grader_error": str(err)}
        except MemoryError:      # a forged size that got past the judge's checks: this child ends, the grader goes on
            sys.stderr.write("MemoryError\n")
            return 3
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
