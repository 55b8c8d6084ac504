"""The grader's side of one notebook's run: start the runner in a sandbox, send the requests, read its report.

:func:`run_in_sandbox` starts :mod:`book.grading.runner` in a fresh :class:`~book.grading.sandbox.Sandbox`,
reads the runner's first message (how the cells ran), draws a seed for each hidden test only then, sends the
requests, reads the runner's answers and kills the sandbox, every process in it, whatever happened. Every
exchange has a deadline, and the grader holds at most a few lines of the sandbox's output in memory. What came
back is read once, by :func:`book.grading.report.read_report`.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import secrets
import sys
import threading
import time
from pathlib import Path

from .. import numerics
from ..exercises.protocol import varied_call
from .report import RunnerReport, read_report
from .sandbox import Sandbox

__all__ = ["run_in_sandbox", "RUNNER"]

RUNNER = "book.grading.runner"    # the module the sandbox runs (``python -m``), from the course package it shows
MAX_REPLY_CHARS = 40_000_000


def sandbox_env(scratch_inside: str, tmp_inside: str) -> dict[str, str]:
    """The whole environment of the runner and its kernel: the course's Python, private folders, one thread."""
    venv_bin = str(Path(sys.executable).parent)
    return {
        "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin", "HOME": scratch_inside, "TMPDIR": tmp_inside,
        "LANG": "C.UTF-8", "MPLBACKEND": "Agg", "MPLCONFIGDIR": f"{tmp_inside}/matplotlib",
        "IPYTHONDIR": f"{tmp_inside}/ipython", "JUPYTER_RUNTIME_DIR": f"{tmp_inside}/jupyter-runtime",
        "JUPYTER_CONFIG_DIR": f"{tmp_inside}/jupyter-config", "JUPYTER_DATA_DIR": f"{tmp_inside}/jupyter-data",
        "JUPYTER_PLATFORM_DIRS": "1", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1",
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "RESIDUAL_COURSE_CACHE": f"{tmp_inside}/cache",
        **({} if numerics.opted_out() else numerics.PINNED),
    }


class _Lines:
    """Lines from the sandbox's stdout, read by a thread into a bounded queue, each at most ``MAX_REPLY_CHARS``.

    When the grader does not take lines as fast as the sandbox writes them, the reader waits and the sandbox's
    writes block: the grader's memory holds at most a few lines, and the deadline ends the wait.
    """

    def __init__(self, stream):
        self.queue: queue.Queue = queue.Queue(maxsize=4)
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _put(self, item) -> bool:
        while not self.closed:
            try:
                self.queue.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    closed = False

    def _read(self, stream):
        with contextlib.suppress(Exception):
            while not self.closed:
                line = stream.readline(MAX_REPLY_CHARS + 1)
                if not line:
                    break
                if len(line) > MAX_REPLY_CHARS:     # too long: skip to the end of that line
                    while line and not line.endswith(b"\n"):
                        line = stream.readline(MAX_REPLY_CHARS + 1)
                    continue
                if not self._put(line):
                    return
        self._put(None)

    def close(self):
        self.closed = True

    def get(self, deadline: float):
        """The next JSON object, or ``None`` at the end of the stream or the deadline."""
        while True:
            try:
                line = self.queue.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                return None
            if line is None:
                with contextlib.suppress(queue.Full):
                    self.queue.put_nowait(None)
                return None
            try:
                value = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if type(value) is dict:
                return value


class _Tail:
    """The last ``limit`` bytes of a stream (the sandbox's stderr), read by a thread."""

    def __init__(self, stream, limit: int = 4000):
        self.data, self.limit = b"", limit
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream):
        with contextlib.suppress(Exception):
            while chunk := stream.read1(65536):
                self.data = (self.data + chunk)[-self.limit:]

    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


def _write_with_deadline(stream, data: bytes, deadline: float) -> bool:
    """Write ``data`` to a pipe without ever blocking past ``deadline``; ``False`` when it did not all go."""
    import select

    fd = stream.fileno()
    os.set_blocking(fd, False)
    view = memoryview(data)
    while view:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        try:
            _, ready, _ = select.select([], [fd], [], min(remaining, 1.0))
            if ready:
                view = view[os.write(fd, view):]
        except BlockingIOError:
            continue
        except (OSError, ValueError):
            return False
    return True


def _call_request(request: dict) -> dict:
    """What the sandbox is asked for an instructor's call: the literal call, and a measured range's call again on
    a seed drawn now (:func:`book.exercises.protocol.varied_call`)."""
    sent = {"call": request["call"], "args": request["args"]}
    also = varied_call(request) if "range" in request else None
    if also is not None:
        sent["also"] = [also]
    return sent


def run_in_sandbox(notebook: bytes, tests: list[dict], cfg, deadline: float) -> RunnerReport:
    """Run one notebook in a fresh sandbox; return the runner's (untrusted) report, with one reply per test.

    ``cfg`` is the run's :class:`~book.grading.results.GradeConfig`. Every exchange with the sandbox has a
    deadline: ``deadline`` plus 30 s for the kernel's start-up. When a read or write runs past it, the whole
    sandbox is killed at once.
    """
    box = Sandbox(notebook, cfg.limits, mode=cfg.mode)
    first = last = None
    requests: list[dict] = []
    blocked = False
    with box:
        box.prepare()
        env = sandbox_env(box.scratch_inside, box.tmp_inside)
        argv = [sys.executable, "-m", RUNNER, f"{box.scratch_inside}/submission.ipynb",
                "--timeout", str(cfg.timeout), "--cell-timeout", str(cfg.cell_timeout),
                "--test-timeout", str(cfg.test_timeout), "--max-output", str(cfg.max_output_chars)]
        # the functions a measured range calls: the kernel remembers what the notebook's own cells computed with
        # them, so that a call the notebook already made is answered with its own number, not trained again
        for name in sorted({t["request"]["call"] for t in tests if "range" in t["request"]}):
            argv += ["--remember", name]
        proc = box.start(argv, env)
        limits = list(box.limits_in_force)
        lines, tail = _Lines(proc.stdout), _Tail(proc.stderr)
        hard_stop = deadline + 30          # kernel start-up and imports, beyond the runner's own limit
        try:
            first = lines.get(hard_stop)
            cells = read_report(first, None, len(tests))
            if cells.finished:
                # the seeds are drawn now, after the learner's cells ran
                requests = [dict(t["request"], seed=secrets.randbits(62)) if "check" in t["request"]
                            else _call_request(t["request"]) for t in tests]
                sent = _write_with_deadline(proc.stdin, (json.dumps({"requests": requests}) + "\n").encode(),
                                            min(hard_stop, time.monotonic() + 30))
                last = lines.get(hard_stop) if sent else None
                blocked = not sent
            timed_out = time.monotonic() >= hard_stop
        finally:
            box.kill()                 # at once, whatever happened: nothing waits on the sandbox after this
            lines.close()
        all_gone = box.close()
    report = read_report(first, last, len(tests))
    report.requests, report.blocked, report.timed_out = requests, blocked, timed_out
    report.all_gone, report.stderr, report.limits = all_gone, tail.text(), limits
    return report
