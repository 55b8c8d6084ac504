"""Run one learner's notebook and answer the grader's requests: ``python -m book.grading.runner NOTEBOOK``.

The grader starts this inside the learner's sandbox (:mod:`book.grading.sandbox`); it decides nothing. It speaks
JSON lines with the grader:

1. it runs the notebook's code cells in a fresh kernel (a time limit per cell and for the whole run; a cell
   that kills the kernel is left out and the notebook run again), then writes ``{"cells": {...}}``: which
   cells raised, timed out or stopped the kernel;
2. it reads one line, ``{"requests": [...]}``, sent only now, with seeds the grader has just drawn;
3. for each request it runs one cell, ``book.exercises.protocol.answer(request, globals())``, in the same
   kernel, and writes ``{"answers": [...]}``: the text each such cell printed (or ``null``).

Everything it writes is plain data that the learner's code could have changed; the grader treats it so
(:mod:`book.grading.report` reads it). It imports nothing of the course: the answering cell runs in the kernel.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field

MARKER = "\x1egrader-answer:"      # starts the line an answering cell prints


def _client_class():
    from nbclient import NotebookClient

    class CappedClient(NotebookClient):
        """An nbclient that keeps at most ``max_output_chars`` of output per cell."""

        max_output_chars = 100_000
        timed_out = False     # set when the current cell ran past its limit

        async def _async_handle_timeout(self, timeout, cell=None):
            self.timed_out = True
            return await super()._async_handle_timeout(timeout, cell)

        def output(self, outs, msg, display_id, cell_index):
            kept = sum(len(json.dumps(o)) for o in outs)
            if kept > self.max_output_chars:
                return None
            out = super().output(outs, msg, display_id, cell_index)
            if out is not None and kept + len(json.dumps(out)) > self.max_output_chars:
                outs[-1] = {"output_type": "stream", "name": "stderr",
                            "text": f"[output cut: more than {self.max_output_chars} characters]\n"}
            return out

    return CappedClient


@dataclass
class Run:
    cell_errors: list = field(default_factory=list)     # (cell, ename, evalue)
    crashed_at: int | None = None                        # index into the executed cells
    out_of_time: bool = False
    cell_timeouts: int = 0
    answers: list = field(default_factory=list)          # one per request: the answer's text, or None


def _error_of(cell):
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return str(out.get("ename", "Error")), str(out.get("evalue", ""))
    return None


def _answer_of(cell):
    text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("name") == "stdout")
    lines = [line for line in text.split("\n") if line.startswith(MARKER)]
    return lines[-1][len(MARKER):] if lines else None


def _answer_source(request: dict) -> str:
    return ("import json as _grader_json, book.exercises.protocol as _grader_protocol\n"
            f"print({MARKER!r} + _grader_protocol.answer(_grader_json.loads({json.dumps(request)!r}), globals()))")


def _remember_source(names: list[str]) -> str:
    return ("import book.exercises.protocol as _grader_protocol\n"
            f"_grader_protocol.remember_calls({[n for n in names if n.isidentifier()]!r}, get_ipython())\n"
            "del _grader_protocol")


def execute(code: list[str], args, deadline: float, ask=None) -> Run:
    """Run ``code`` in one fresh kernel; then, if ``ask`` is given, a cell that answers each request it returns.

    With ``args.remember`` a first cell, not one of the notebook's, makes the kernel remember what those functions
    return (:func:`book.exercises.protocol.remember_calls`), so that a request repeats none of the notebook's work.
    """
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from nbclient.util import run_sync
    from nbformat.v4 import new_code_cell, new_notebook

    run = Run()
    nb = new_notebook(cells=[new_code_cell(src) for src in code],
                      metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    client = _client_class()(
        nb, kernel_name="python3", timeout=int(args.cell_timeout), allow_errors=True,
        interrupt_on_timeout=True, startup_timeout=120, shutdown_kernel="immediate",
        error_on_timeout={"ename": "CellTimeout", "evalue": "", "traceback": []},
        resources={"metadata": {"path": os.getcwd()}},
    )
    client.max_output_chars = args.max_output
    fired = threading.Event()

    def kill_kernel():  # the last resort when an interrupt does not stop the kernel
        fired.set()
        with contextlib.suppress(Exception):
            os.killpg(client.km.provisioner.process.pid, signal.SIGKILL)

    def run_cell(cell, index, limit):
        """``(alive, error)`` after running one cell."""
        client.timeout = max(1, int(min(limit, deadline - time.monotonic())))
        client.timed_out = False
        try:
            client.execute_cell(cell, index)
            alive = run_sync(client.km.is_alive)()
        except DeadKernelError:
            alive = False
        except CellTimeoutError:
            client.timed_out, alive = True, run_sync(client.km.is_alive)()
        error = ("CellTimeout", f"stopped after {client.timeout} s") if client.timed_out else _error_of(cell)
        return alive, error

    watchdog = threading.Timer(max(deadline - time.monotonic(), 0) + 5, kill_kernel)
    try:
        with client.setup_kernel(stdout=subprocess_devnull(), stderr=subprocess_devnull()):
            watchdog.start()
            if getattr(args, "remember", None):
                # after the notebook's cells in the notebook (nbclient stores a cell at the index it runs it as),
                # before them in the kernel
                nb.cells.append(new_code_cell(_remember_source(args.remember)))
                run_cell(nb.cells[-1], len(nb.cells) - 1, args.cell_timeout)
            for index, cell in enumerate(nb.cells[:len(code)]):
                if deadline - time.monotonic() <= 1:
                    run.out_of_time = True
                    break
                alive, error = run_cell(cell, index, args.cell_timeout)
                if not alive:
                    run.out_of_time = fired.is_set()
                    run.crashed_at = None if fired.is_set() else index
                    break
                if error:
                    run.cell_timeouts += error[0] == "CellTimeout"
                    run.cell_errors.append((index, *error))
            else:
                if ask is not None:
                    requests = ask(run)
                    for request in requests:
                        if deadline - time.monotonic() <= 1:
                            run.out_of_time = True
                            break
                        cell = new_code_cell(_answer_source(request))
                        nb.cells.append(cell)
                        client.max_output_chars = 40_000_000
                        calls = 1 + len(request.get("also") or []) if isinstance(request, dict) else 1
                        # a measured range is called once more on a drawn seed: each call gets the test's time
                        alive, _error = run_cell(cell, len(nb.cells) - 1, args.test_timeout * min(calls, 4))
                        run.answers.append(_answer_of(cell))
                        if not alive:
                            run.crashed_at = len(nb.cells) - 1
                            break
    except DeadKernelError:
        run.crashed_at = run.crashed_at if run.crashed_at is not None else 0
    except RuntimeError:  # the kernel could not start, or was killed at the deadline
        run.out_of_time = fired.is_set()
        if not fired.is_set():
            run.crashed_at = 0
    finally:
        watchdog.cancel()
    return run


def subprocess_devnull():
    import subprocess

    return subprocess.DEVNULL


def _not_dumpable() -> None:
    """Keep the learner's kernel (same user, same sandbox) out of this process: no ptrace, no ``/proc/<pid>/fd``.

    A non-dumpable process's ``/proc`` entries belong to root, so the kernel cannot open this runner's
    stdin or its channel to the grader, read its memory or attach to it (the seccomp filter also refuses
    ``ptrace``). The kernel itself, started by exec, is dumpable again.
    """
    import ctypes

    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)   # PR_SET_DUMPABLE, 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m book.grading.runner")
    parser.add_argument("notebook")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--cell-timeout", type=float, default=60)
    parser.add_argument("--test-timeout", type=float, default=60)
    parser.add_argument("--max-output", type=int, default=100_000)
    parser.add_argument("--remember", action="append", default=[],
                        help="a function whose results the kernel keeps for the requests (repeatable)")
    args = parser.parse_args(argv)
    _not_dumpable()
    channel = os.fdopen(os.dup(1), "w")      # the grader's line; anything else printed goes to stderr
    os.dup2(2, 1)
    deadline = time.monotonic() + args.timeout

    def say(message: dict):
        channel.write(json.dumps(message) + "\n")
        channel.flush()

    import nbformat

    nb = nbformat.read(args.notebook, as_version=4)
    code = [c.source for c in nb.cells if c.get("cell_type") == "code" and isinstance(c.get("source"), str)]
    skipped: list[int] = []       # cells that stopped the kernel, left out of the next attempt
    crash_notes: list[str] = []
    sent: list = []

    def ask(run: Run) -> list:
        kept = [i for i in range(len(code)) if i not in skipped]
        say({"cells": {"errors": [[kept[i], e, v[:1000]] for i, e, v in run.cell_errors],
                       "timeouts": run.cell_timeouts, "skipped": skipped, "crashes": crash_notes}})
        line = sys.stdin.readline()
        sent.append(True)
        return json.loads(line)["requests"] if line else []

    for _attempt in range(3):
        kept = [i for i in range(len(code)) if i not in skipped]
        run = execute([code[i] for i in kept], args, deadline, ask)
        if run.crashed_at is None or run.out_of_time or sent:
            break
        skipped.append(kept[run.crashed_at])
    if not sent:   # the cells never finished: no requests, say why
        kept = [i for i in range(len(code)) if i not in skipped]
        say({"cells": {"errors": [[kept[i], e, v[:1000]] for i, e, v in run.cell_errors],
                       "timeouts": run.cell_timeouts, "skipped": skipped, "out_of_time": run.out_of_time,
                       "crashed": run.crashed_at is not None, "final": True}})
        return 0
    say({"answers": run.answers, "out_of_time": run.out_of_time, "crashed": run.crashed_at is not None})
    return 0


if __name__ == "__main__":
    sys.exit(main())
