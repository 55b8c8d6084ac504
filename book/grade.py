"""Grade a folder of submitted exercise notebooks: ``python -m book.grade SUBMISSIONS --out OUT``.

Each submission runs in its own sandbox (:mod:`book.sandbox`: bubblewrap, no network, a read-only system,
nothing of the grader's or of other learners' files), in a fresh kernel, with a time limit per cell and per
submission. When its cells have run, the grader draws a seed for each task and asks the kernel to call the
learner's definitions on that seed's cases (:mod:`book.notebook_runner`); the kernel answers with plain data
only. The sandbox is then killed, every process in it with it, and the grader judges the answers in its own
process (:func:`book.exercises.judge`): no score, verdict or feedback text comes from where the learner's code
ran. The hidden tests (``exercises/source`` or ``--hidden-tests PATH``) never enter the sandbox.

The grader writes, all under ``OUT`` and only once every sandbox is gone:

- ``gradebook.csv``: one row per submission: its original path, status, points per task, total, a column per
  written answer (``review``: text to mark by hand; ``missing``: none written), the points left to mark, details;
- ``collection.csv``: every file found in the submissions folder and what became of it;
- ``feedback/<name>.md``, for the learner: what each task's tests said, what went wrong while running, and each
  written answer (never a rubric);
- ``marking/<name>.md``, for the instructor: the same with each written answer's rubric, to mark by hand;
- with ``--gradescope``: ``gradescope/<name>/results.json`` (and ``results.json`` when there is
  one submission, as Gradescope's autograder expects).

``--jobs N`` grades N submissions at once, each in its own sandbox with its own limits; the reports are the same
as a serial run's (rows in the order the submissions were found; the judges take turns). One bad submission never
stops the batch. Without bubblewrap the grader refuses to run unless given
``--unsafe-no-sandbox`` (see ``instructors.md``). ``python -m book.grade --gradescope-zip ZIP --exercise ex04``
writes a Gradescope autograder.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import csv
import hashlib
import json
import os
import queue
import re
import secrets
import sys
import threading
import time
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from . import exercises
from .exercises import SOURCE_DIR, collect_answers, hidden_tests, sources, written_answers
from .sandbox import HOW_TO_INSTALL, LEARNER_USER, Limits, Sandbox, dedicated_user, unavailable_reason

__all__ = ["GradeConfig", "TaskResult", "WrittenAnswer", "SubmissionResult", "Submission", "find_submissions", "grade_submission",
           "grade_folder", "write_gradescope_zip", "main"]

STATUS_ORDER = ["grader-error", "refused", "invalid-notebook", "too-large", "no-notebook", "unknown-exercise", "wrong-exercise",
                "not-graded", "tampered", "timeout", "kernel-crashed", "cell-timeout", "syntax-error", "cell-errors", "ok"]
NOTE_CHARS = 300          # a learner's message is cut to this length in a note
MAX_REPLY_CHARS = 40_000_000


@dataclass
class GradeConfig:
    """Limits and locations for a grading run."""

    out: Path                                  # every file the grader writes goes under here
    hidden_tests: Path = SOURCE_DIR            # folder of exNN_*.md sources (or one source file)
    exercise: str | None = None                # e.g. "ex04_building_resnets"; None: read from each notebook
    timeout: float = 300.0                     # seconds per submission: its cells and the hidden tests together
    cell_timeout: float = 60.0                 # seconds per notebook cell
    test_timeout: float = 60.0                 # seconds per hidden test
    max_output_chars: int = 100_000            # output kept per cell; the rest is dropped while it runs
    max_notebook_bytes: int = 20_000_000       # larger files are not run
    gradescope: bool = False                   # also write Gradescope results.json files
    progress: bool = True                      # a tqdm progress bar over the batch
    sandbox: bool = True                       # False only with --unsafe-no-sandbox (mode "none")
    limits: Limits = field(default_factory=Limits)
    mode: str = "bwrap"                        # "bwrap", "user" (root, no bubblewrap: Gradescope) or "none"
    jobs: int = 1                              # submissions graded at once, each in its own sandbox

    def __post_init__(self):
        if not self.sandbox:
            self.mode = "none"


@dataclass
class TaskResult:
    task: int
    title: str
    points: float
    max_points: float
    message: str


@dataclass
class WrittenAnswer:
    """A written answer: collected from the notebook's file, never scored by the grader."""

    task: int
    answer: str                                  # its id, e.g. "3b"
    title: str
    points: float                                # the points a person awards when marking it
    text: str | None                             # the learner's words; None when none were written
    rubric: str = ""


@dataclass
class SubmissionResult:
    name: str
    path: str
    exercise: str
    status: str
    tasks: list[TaskResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    written: list[WrittenAnswer] = field(default_factory=list)
    limits: list[str] = field(default_factory=list)   # the sandbox and the limits that were in force

    @property
    def review_total(self) -> float:
        """The points that a person awards for the written answers."""
        return sum(w.points for w in self.written)

    @property
    def total(self) -> float:
        return sum(t.points for t in self.tasks)

    @property
    def max_total(self) -> float:
        return sum(t.max_points for t in self.tasks)


@dataclass
class Submission:
    """One learner's hand-in: the notebook to grade (or none), where it came from, what was left aside."""

    name: str
    path: Path | None
    original: str                               # path relative to the submissions folder
    notes: list[str] = field(default_factory=list)
    refused: str | None = None                  # why it is not graded at all (a symlink)


# --------------------------------------------------------------------------- finding submissions and tests

NAME_BYTES = 80           # a row's name, in UTF-8 bytes: with the grader's suffixes it stays far below 255


def _safe(name: str) -> str:
    """A file name from a learner's name: letters of any script kept (NFC), other characters as ``_``.

    At most ``NAME_BYTES`` bytes in UTF-8 (file systems count bytes, not characters), cut at a character.
    """
    name = unicodedata.normalize("NFC", name)
    name = re.sub(r"[^\w.-]+", "_", name).strip("._-")
    name = name.encode("utf-8")[:NAME_BYTES].decode("utf-8", "ignore").strip("._-")
    return name or "submission"


def _ignored(path: Path) -> str | None:
    """Why a file or folder in a submission is left aside, or ``None``."""
    if path.name == "__MACOSX":
        return "macOS archive metadata (__MACOSX)"
    if path.name.startswith("._"):
        return "macOS resource fork (._ file)"
    if path.name == ".ipynb_checkpoints":
        return "Jupyter's autosave checkpoints"
    if path.name.startswith("."):
        return "a hidden file"
    return None


MAX_DEPTH, MAX_ENTRIES = 32, 10_000     # how far into one learner's folder the grader looks


def _walk(top: Path) -> list[Path]:
    """Every path under ``top``, sorted, without recursion and without following symbolic links.

    Stops at ``MAX_DEPTH`` levels and ``MAX_ENTRIES`` paths, so a hostile tree cannot exhaust the grader.
    """
    found, stack = [], [(top, 0)]
    while stack and len(found) < MAX_ENTRIES:
        folder, depth = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries[:MAX_ENTRIES]:
            path = Path(entry.path)
            found.append(path)
            if depth + 1 < MAX_DEPTH and entry.is_dir(follow_symlinks=False):
                stack.append((path, depth + 1))
    return sorted(found)


def find_submissions(folder: Path, log: list[tuple[str, str]] | None = None) -> list[Submission]:
    """Every submission in ``folder``; ``log`` receives ``(path, what became of it)`` for every file found.

    A loose ``*.ipynb`` is one submission, named after its file; a subfolder is one submission, named after
    the folder. When a subfolder holds several notebooks, the one modified last is graded (ties: the first by
    path), and the row names the others. Symbolic links are never followed: a linked notebook gets the status
    ``refused``. macOS metadata (``__MACOSX``, ``._*``), checkpoints and hidden files are left aside.
    """
    folder = Path(folder)
    log = log if log is not None else []
    found: list[Submission] = []
    taken: set[str] = set()

    def unique(name: str) -> str:
        base, n, candidate = _safe(name), 1, _safe(name)
        while candidate.casefold() in taken:
            n += 1
            candidate = f"{base}-{n}"
        taken.add(candidate.casefold())
        return candidate

    def rel(p: Path) -> str:
        return str(p.relative_to(folder))

    for entry in sorted(folder.iterdir()):
        reason = _ignored(entry)
        if reason:
            for p in ([entry] if entry.is_symlink() or not entry.is_dir() else _walk(entry)):
                if p.is_symlink() or not p.is_dir():
                    log.append((rel(p), f"ignored: {reason}"))
            continue
        if entry.is_symlink():
            if entry.suffix == ".ipynb":
                sub = Submission(unique(entry.stem), None, rel(entry), refused="a symbolic link, not followed")
                found.append(sub)
                log.append((rel(entry), f"refused: a symbolic link (row {sub.name})"))
            else:
                log.append((rel(entry), "refused: a symbolic link"))
            continue
        if not entry.is_dir() and not entry.is_file():
            log.append((rel(entry), "ignored: not a regular file or folder"))
            continue
        if entry.is_file():
            if entry.suffix == ".ipynb":
                sub = Submission(unique(entry.stem), entry, rel(entry))
                found.append(sub)
                log.append((rel(entry), f"graded as {sub.name}"))
            else:
                log.append((rel(entry), "ignored: not a notebook"))
            continue
        if not entry.is_dir():
            log.append((rel(entry), "ignored: not a file or folder"))
            continue
        name = unique(entry.name)
        notebooks, notes = [], []
        for p in _walk(entry):
            inner = next((r for part in p.relative_to(entry).parts if (r := _ignored(Path(part)))), None)
            if p.is_dir() and not p.is_symlink():
                continue
            if inner:
                log.append((rel(p), f"ignored: {inner}"))
            elif p.is_symlink() or any(q.is_symlink() for q in p.relative_to(folder).parents if str(q) != "."
                                       for q in [folder / q]):
                log.append((rel(p), "refused: a symbolic link"))
                notes.append(f"{rel(p)} is a symbolic link: not followed")
            elif not p.is_file():
                log.append((rel(p), "ignored: not a regular file"))
            elif p.suffix == ".ipynb":
                notebooks.append(p)
            else:
                log.append((rel(p), "ignored: not a notebook"))
        if not notebooks:
            found.append(Submission(name, None, rel(entry), notes))
            continue
        chosen = max(notebooks, key=lambda p: (p.stat().st_mtime, [-ord(c) for c in str(p)]))
        others = [rel(p) for p in notebooks if p != chosen]
        if others:
            notes.append(f"the folder holds {len(notebooks)} notebooks; graded the one modified last, "
                         f"{rel(chosen)}; left out: {', '.join(others)}")
        found.append(Submission(name, chosen, rel(chosen), notes))
        log.append((rel(chosen), f"graded as {name}"))
        log.extend((o, f"ignored: another notebook in {name}'s folder (the one modified last is graded)") for o in others)
    return found


def _test_sources(location: Path) -> dict[str, Path]:
    location = Path(location)
    if location.is_file():
        return {location.stem: location}
    return {p.stem: p for p in sources(location)}


def _exercise_of(nb, path: Path, known) -> tuple[str | None, str]:
    """``(exercise, how it was found)`` from the notebook's metadata, else from an ``exNN`` in its file name."""
    meta = (nb.get("metadata", {}) if isinstance(nb, dict) else {}).get("residual_course", {})
    name = meta.get("exercise") if isinstance(meta, dict) else None
    if isinstance(name, str) and name in known:
        return name, "metadata"
    match = re.search(r"ex\d\d", path.name)
    if match:
        return next((k for k in known if k.startswith(match[0])), None), "file name"
    return None, ""


# --------------------------------------------------------------------------- running one notebook in its sandbox

def _sandbox_env(scratch_inside: str, tmp_inside: str) -> dict[str, str]:
    from . import numerics

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


def _run_in_sandbox(notebook: Path, tests: list[dict], cfg: GradeConfig, deadline: float) -> dict:
    """Run one notebook in a fresh sandbox; return the (untrusted) cell report and one reply per test.

    Every exchange with the sandbox has a deadline: ``deadline`` plus 30 s for the kernel's start-up. When a
    read or write runs past it, the whole sandbox is killed at once.
    """
    box = Sandbox(notebook, cfg.limits, mode=cfg.mode)
    outcome: dict = {"cells": None, "replies": [None] * len(tests), "requests": [], "ended": None,
                     "limits": [], "stderr": ""}
    with box:
        box.prepare()
        env = _sandbox_env(box.scratch_inside, box.tmp_inside)
        argv = [sys.executable, "-m", "book.notebook_runner", f"{box.scratch_inside}/submission.ipynb",
                "--timeout", str(cfg.timeout), "--cell-timeout", str(cfg.cell_timeout),
                "--test-timeout", str(cfg.test_timeout), "--max-output", str(cfg.max_output_chars)]
        proc = box.start(argv, env)
        outcome["limits"] = list(box.limits_in_force)
        lines, tail = _Lines(proc.stdout), _Tail(proc.stderr)
        hard_stop = deadline + 30          # kernel start-up and imports, beyond the runner's own limit
        try:
            first = lines.get(hard_stop)
            outcome["cells"] = first.get("cells") if first else None
            if first and type(outcome["cells"]) is dict and not outcome["cells"].get("final"):
                # the seeds are drawn now, after the learner's cells ran
                requests = [dict(t["request"], seed=secrets.randbits(62)) if "check" in t["request"]
                            else {"call": t["request"]["call"], "args": t["request"]["args"]} for t in tests]
                outcome["requests"] = requests
                sent = _write_with_deadline(proc.stdin, (json.dumps({"requests": requests}) + "\n").encode(),
                                            min(hard_stop, time.monotonic() + 30))
                last = lines.get(hard_stop) if sent else None
                if last and type(last.get("answers")) is list:
                    replies = last["answers"][:len(tests)]
                    outcome["replies"] = [r if type(r) is str else None for r in replies] + \
                        [None] * (len(tests) - len(replies))
                    outcome["ended"] = last
                elif not sent:
                    outcome["blocked"] = True
            outcome["timed_out"] = time.monotonic() >= hard_stop
        finally:
            box.kill()                 # at once, whatever happened: nothing waits on the sandbox after this
            lines.close()
        outcome["all_gone"] = box.close()
        outcome["stderr"] = tail.text()
    return outcome


def _learner_text(text, limit: int = NOTE_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + " …"


def _written(nb, specs: list[dict]) -> list[WrittenAnswer]:
    """The written answers of ``specs`` as found in ``nb`` (``None``: the notebook could not be read)."""
    try:
        texts = collect_answers(nb, specs) if nb is not None else {}
    except Exception:  # an odd notebook: its answers count as not written; the row's status says why
        texts = {}
    return [WrittenAnswer(s["task"], s["answer"], s["title"], s["points"], texts.get(s["answer"]), s["rubric"])
            for s in specs]


def _read_regular(path: Path, limit: int) -> bytes | None:
    """The bytes of ``path`` when it is a regular file (never a FIFO, device or link), ``None`` past ``limit``."""
    import stat

    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path.name} is not a regular file")
        if os.fstat(fd).st_size > limit:
            return None
        chunks, total = [], 0
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                return None
        return b"".join(chunks)
    finally:
        os.close(fd)


_JUDGE_LOCK = threading.Lock()


def _place(nb, index: int) -> str:
    """Where code cell ``index`` (counted as the runner counts: code cells with text) is, in words a learner can
    follow in Colab or Jupyter, which show no cell numbers: the heading above it, and its place under that heading."""
    heading, nth, seen = None, 0, -1
    for cell in nb.cells if nb is not None else ():
        if cell.get("cell_type") == "markdown" and isinstance(cell.get("source"), str):
            found = [m.group(1).strip() for m in re.finditer(r"^#{1,4} +(.+)$", cell.source, re.MULTILINE)]
            if found:
                heading, nth = found[-1], 0
        elif cell.get("cell_type") == "code" and isinstance(cell.get("source"), str):
            seen, nth = seen + 1, nth + 1
            if seen == index:
                ordinal = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth"}.get(nth, f"{nth}th")
                where = f"under the heading “{_md(heading, 80)}”" if heading else "before the first heading"
                return f"the {ordinal} code cell {where}"
    return f"code cell {index + 1}"


def grade_submission(sub: Submission, tests_by_exercise: dict[str, list[dict]], known: dict[str, Path],
                     cfg: GradeConfig, answers_by_exercise: dict[str, list[dict]] | None = None) -> SubmissionResult:
    """Grade one submission; never raises for anything the notebook does."""
    import nbformat

    answers_by_exercise = answers_by_exercise or {}

    started = time.monotonic()
    result = SubmissionResult(sub.name, sub.original, cfg.exercise or "", "ok", notes=list(sub.notes))

    def finish(status: str, note: str | None = None) -> SubmissionResult:
        result.status = status
        if note:
            result.notes.append(note)
        result.seconds = time.monotonic() - started
        return result

    def zero_tasks(reason: str):
        for t in tests_by_exercise.get(result.exercise, []):
            result.tasks.append(TaskResult(t["task"], t["title"], 0.0, t["points"], f"not checked: {reason}"))
        result.written = _written(None, answers_by_exercise.get(result.exercise, []))

    path = sub.path
    if sub.refused:
        zero_tasks(sub.refused)
        return finish("refused", f"{sub.original} is {sub.refused}")
    if path is None:
        zero_tasks("no notebook was submitted")
        return finish("no-notebook", "the submission folder holds no .ipynb file")
    try:
        data = _read_regular(path, cfg.max_notebook_bytes)
    except OSError as err:
        zero_tasks("the notebook file could not be read")
        return finish("invalid-notebook", f"the file could not be read as a regular file ({type(err).__name__})")
    if data is None:
        zero_tasks("the notebook file is too large to run")
        return finish("too-large", f"the notebook is larger than the limit of {cfg.max_notebook_bytes:,} bytes")
    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    except Exception as err:
        result.exercise = cfg.exercise or _exercise_of(None, path, known)[0] or ""
        zero_tasks("the notebook could not be read")
        return finish("invalid-notebook", f"the file is not a readable notebook ({type(err).__name__}: {str(err)[:200]})")
    own, how = _exercise_of(nb, path, known)
    result.exercise = cfg.exercise or own or ""
    if result.exercise not in tests_by_exercise:
        return finish("unknown-exercise", "cannot tell which exercise this notebook answers: pass --exercise")
    if cfg.exercise and own and own != cfg.exercise and how == "metadata":
        zero_tasks(f"this notebook answers {own}, not {cfg.exercise}")
        return finish("wrong-exercise", f"the notebook is exercise {own} (from its {how}); graded was {cfg.exercise}")
    named, _ = _exercise_of(None, Path(sub.original), known)
    if not cfg.exercise and how == "metadata" and named and named != own:
        zero_tasks(f"the notebook answers {own}, but its name says {named}")
        return finish("wrong-exercise", f"the notebook is exercise {own} (from its metadata) but was handed in as "
                                        f"{named} (its name): grade it with --exercise")
    tests = tests_by_exercise[result.exercise]
    result.written = _written(nb, answers_by_exercise.get(result.exercise, []))  # read from the file, never run

    try:
        run = _run_in_sandbox(data, tests, cfg, started + cfg.timeout)
    except Exception as err:  # the grader's own trouble (e.g. no kernel): report it on this row
        zero_tasks("the grader could not run the notebook (a grader error, not the notebook's)")
        return finish("grader-error", f"grader error: could not run the notebook: {type(err).__name__}: "
                                      f"{str(err)[:300]}")
    result.limits = run.get("limits", [])

    # Everything below reads the sandbox's report as untrusted data: it can only label the row, never add points.
    cells = run["cells"] if type(run["cells"]) is dict else {}
    ended = run.get("ended") or {}
    errors = [e for e in cells.get("errors", []) if type(e) is list and len(e) == 3][:50] \
        if type(cells.get("errors")) is list else []
    skipped = [i for i in cells.get("skipped", []) if type(i) is int][:10] if type(cells.get("skipped")) is list else []
    for index, ename, evalue in errors:
        if type(index) is int:
            ename = re.sub(r"[^\w.]", "", str(ename))[:60] or "Error"
            place = _place(nb, index)
            result.notes.append(f"{place} raised {ename}: [from your code] {_learner_text(evalue)}"
                                if ename != "CellTimeout" else f"{place} raised CellTimeout: "
                                f"it was stopped after {cfg.cell_timeout:.0f} s")
    for index in skipped:
        result.notes.append(f"{_place(nb, index)} stopped the kernel; it was left out and the notebook run again")
    started_up = bool(cells) or run.get("timed_out")
    if not started_up:   # the sandbox ended before it said how the cells ran: show why, labelled
        tail = _learner_text(run.get("stderr", ""), 600)
        result.notes.append("the sandbox stopped before reporting on the cells (a start-up failure, or the "
                            f"notebook stopped its runner); its last error output: [unchecked] {tail or '(none)'}")
    if run.get("blocked"):
        result.notes.append("the sandbox stopped reading the grader's requests; it was killed")
    out_of_time = bool(run.get("timed_out") or cells.get("out_of_time") or ended.get("out_of_time"))
    crashed_in_tests = ended.get("crashed") is True
    if crashed_in_tests:
        result.notes.append("the kernel died while the tests ran")

    for t, request, reply in zip(tests, run["requests"] or [None] * len(tests), run["replies"]):
        if request is not None and reply is not None:
            try:
                with _JUDGE_LOCK:   # the judges seed torch's global generator: one at a time, as in a serial run
                    feedback = exercises.judge({**t["request"], **request}, reply, t["title"])  # expected values stay here
                points, message = (t["points"] if feedback.passed else 0.0), feedback.message
            except Exception as err:    # MemoryError included: the grader's own failure, named as such
                points, message = 0.0, f"grader error while judging this task ({type(err).__name__}); tell your " \
                                       f"instructor"
        elif out_of_time:
            points, message = 0.0, f"not checked: the notebook ran out of its {cfg.timeout:.0f} s"
        else:
            points, message = 0.0, "not checked: the kernel stopped before this test could run"
        result.tasks.append(TaskResult(t["task"], t["title"], points, t["points"], message))
    if not run.get("all_gone", True):
        result.notes.append("some of the notebook's processes outlived its sandbox; they were killed")

    timeouts = cells.get("timeouts") if type(cells.get("timeouts")) is int else 0
    if out_of_time:
        status = "timeout"
        result.notes.append(f"the submission did not finish within {cfg.timeout:.0f} s")
    elif skipped or crashed_in_tests or cells.get("crashed") is True or not started_up:
        status = "kernel-crashed"
    elif timeouts:
        status = "cell-timeout"
    elif any(e[1] in ("SyntaxError", "IndentationError", "TabError") for e in errors):
        status = "syntax-error"
    elif errors:
        status = "cell-errors"
    else:
        status = "ok"
    return finish(status)


# --------------------------------------------------------------------------- reports

def _points(x: float) -> str:
    return f"{x:g}"


FIELD_CHARS = 4000        # learner-influenced text kept per field of a report


def _cell(text) -> str:
    """A CSV cell a spreadsheet shows as text: a leading ``= + - @`` (a formula) gets a ``'`` before it."""
    text = str(text)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _md(text, limit: int = FIELD_CHARS) -> str:
    """Text for a Markdown report: one line, no HTML, at most ``limit`` characters."""
    text = " ".join(str(text).split())
    text = text if len(text) <= limit else text[:limit] + " … [cut]"
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _feedback_text(r: SubmissionResult, instructor: bool = False) -> str:
    """The feedback file: the learner's copy never holds a rubric; the instructor's (``instructor=True``) does."""
    lines = [f"# Feedback: {r.name}", "", f"- exercise: {r.exercise or 'unknown'}", f"- status: {r.status}",
             f"- score: {_points(r.total)} / {_points(r.max_total)} checked automatically"
             + (f", and {_points(r.review_total)} for written answers, marked by hand" if r.written else ""), ""]
    for t in r.tasks:
        mark = "✓" if t.points == t.max_points and t.max_points > 0 else "✗"
        lines += [f"## Task {t.task} · {t.title}: {_points(t.points)} / {_points(t.max_points)} {mark}", "",
                  _md(t.message), ""]
    for w in r.written:
        lines += [f"## Written answer {w.answer} (task {w.task}) · {w.title}: _ / {_points(w.points)}, marked by hand", ""]
        if w.text is None:
            lines += ["No answer was written: the cell still holds its placeholder, or it was deleted.", ""]
        else:
            text = w.text[:20 * FIELD_CHARS] + (" … [cut]" if len(w.text) > 20 * FIELD_CHARS else "")
            fence = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", text)), default=0))
            lines += ["The learner wrote:", "", f"{fence}text", text, fence, ""]
        if w.rubric and instructor:
            lines += ["Rubric:", "", w.rubric, ""]
    if r.notes:
        lines += ["## While running your notebook", ""] + [f"- {_md(n, 1000)}" for n in r.notes[:60]] + [""]
    return "\n".join(lines)


def _gradescope(r: SubmissionResult) -> dict:
    return {
        "score": r.total,
        "output": f"status: {r.status}" + ("\n" + "\n".join(_md(n, 1000) for n in r.notes[:60]) if r.notes else ""),
        "stdout_visibility": "visible",
        "tests": [{"name": f"Task {t.task} · {t.title}", "score": t.points, "max_score": t.max_points,
                   "output": _md(t.message), "visibility": "visible"} for t in r.tasks] +
                 [{"name": f"Written answer {w.answer} (task {w.task}) · {w.title}", "score": 0, "max_score": 0,
                   "output": ("collected for marking by hand (" + _points(w.points) + " points): " +
                              (w.text[:20 * FIELD_CHARS] if w.text is not None else "no answer was written")),
                   "visibility": "visible"} for w in r.written],
    }


def _write(path: Path, text: str) -> None:
    """Write atomically: a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_reports(results: list[SubmissionResult], cfg: GradeConfig, log: list[tuple[str, str]] = (),
                  final: bool = True) -> Path:
    """Write the gradebook, the collection log, the feedback files and (optionally) Gradescope results.

    Called after each submission (``final=False``) and once at the end: a crash loses no judged row.
    """
    import io

    tasks = sorted({t.task for r in results for t in r.tasks})
    written = sorted({w.answer for r in results for w in r.written}, key=lambda a: (int(re.match(r"\d+", a)[0]), a))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["submission", "original_path", "exercise", "status", *[f"task{k}" for k in tasks], "total",
                     "max_total", *[f"written{a}" for a in written], "review_max", "details", "limits"])
    for r in results:
        by_task: dict[int, float] = {}
        for t in r.tasks:
            by_task[t.task] = by_task.get(t.task, 0.0) + t.points
        by_answer = {w.answer: ("review" if w.text is not None else "missing") for w in r.written}
        writer.writerow([_cell(r.name), _cell(r.path), _cell(r.exercise), r.status,
                         *[_points(by_task.get(k, 0.0)) for k in tasks], _points(r.total), _points(r.max_total),
                         *[by_answer.get(a, "missing") for a in written], _points(r.review_total),
                         _cell(" ".join("; ".join(r.notes).split())[:1000]), _cell("; ".join(r.limits))])
    gradebook = cfg.out / "gradebook.csv"
    _write(gradebook, buffer.getvalue())
    buffer = io.StringIO()
    csv.writer(buffer).writerows([("path", "what the grader did"), *((_cell(p), _cell(w)) for p, w in log)])
    _write(cfg.out / "collection.csv", buffer.getvalue())
    for r in results:
        _write(cfg.out / "feedback" / f"{r.name}.md", _feedback_text(r))        # for the learner: no rubric
        _write(cfg.out / "marking" / f"{r.name}.md", _feedback_text(r, instructor=True))   # with the rubrics
    if cfg.gradescope:
        for r in results:
            _write(cfg.out / "gradescope" / r.name / "results.json", json.dumps(_gradescope(r), indent=2))
        if final and len(results) == 1:
            _write(cfg.out / "results.json", json.dumps(_gradescope(results[0]), indent=2))
    return gradebook


def _install_fingerprint() -> str:
    """A hash of the files the grader and its judges run: a submission must not be able to change them."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    own = [package / f"{name}.py" for name in ("grade", "sandbox", "notebook_runner")]
    own += sorted((package / "exercises").glob("*.py"))
    for path in own:
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _inside(path: Path, folders) -> bool:
    return any(path == f or f in path.parents or path in f.parents for f in folders)


def grade_folder(submissions: Path, cfg: GradeConfig) -> list[SubmissionResult]:
    """Grade every submission in ``submissions``; write the reports under ``cfg.out``."""
    from .sandbox import python_paths

    submissions, cfg.out = Path(submissions).resolve(), Path(cfg.out).resolve()
    if type(cfg.jobs) is not int or cfg.jobs < 1:
        raise ValueError(f"--jobs must be a whole number of at least 1, not {cfg.jobs!r}")
    if not submissions.is_dir():
        raise ValueError(f"{submissions} is not a folder of submissions")
    if cfg.out == submissions or submissions in cfg.out.parents:
        raise ValueError("the output folder must not be inside the submissions folder")
    if cfg.mode == "auto":
        cfg.mode = "bwrap" if unavailable_reason() is None else "user" if _user_mode_reason() is None else "bwrap"
    if cfg.mode == "bwrap":
        reason = unavailable_reason()
        if reason:
            raise ValueError(f"no sandbox: {reason}. The grader runs learners' code only in a sandbox: "
                             f"{HOW_TO_INSTALL}.")
        exposed = [p for p in (submissions, cfg.out, Path(cfg.hidden_tests).resolve()) if _inside(p, python_paths())]
        if exposed:
            raise ValueError(f"{exposed[0]} lies inside a folder the sandbox shows to learners' code "
                             f"({', '.join(map(str, python_paths()))}): move it elsewhere")
    elif cfg.mode == "user":
        reason = _user_mode_reason()
        if reason:
            raise ValueError(f"no sandbox: {reason}")
        cfg.out.mkdir(parents=True, exist_ok=True)
        for path, how in ((Path(cfg.hidden_tests).resolve(), "-r"), (submissions, "-r"), (cfg.out, "-w")):
            if _learner_can(how, path):
                raise ValueError(f"the user {LEARNER_USER} can {'read' if how == '-r' else 'write'} {path}: make "
                                 f"it private to root (chmod go-rwx) before grading in the 'user' sandbox")
    known = _test_sources(cfg.hidden_tests)
    if not known:
        raise ValueError(f"no exercise sources with hidden tests found at {cfg.hidden_tests}")
    if cfg.exercise is not None and cfg.exercise not in known:
        matches = [k for k in known if k.startswith(cfg.exercise)]
        if len(matches) != 1:
            raise ValueError(f"unknown exercise {cfg.exercise!r}; known: {', '.join(sorted(known))}")
        cfg.exercise = matches[0]
    tests_by_exercise = {name: hidden_tests(path) for name, path in known.items()}
    answers_by_exercise = {name: written_answers(path) for name, path in known.items()}
    for name, tests in tests_by_exercise.items():
        bad = next((t for t in tests if t["request"] is None), None)
        if bad is not None and (cfg.exercise is None or name == cfg.exercise):
            raise ValueError(f"{known[name]}: the hidden test of task {bad['task']} ({bad['title']}) cannot be "
                             f"judged outside the learner's kernel: {bad['problem']}")
    exercises.preload()
    fingerprint = _install_fingerprint()
    cfg.out.mkdir(parents=True, exist_ok=True)
    log: list[tuple[str, str]] = []
    found = find_submissions(submissions, log)
    from tqdm.auto import tqdm

    # Each submission runs in its own sandbox, with its own limits; with jobs > 1 several run at once. The rows keep
    # the order the submissions were found in, so the reports are the same whatever the order they finish in.
    done: dict[int, SubmissionResult] = {}
    tampered = False

    def not_graded(sub: Submission) -> SubmissionResult:
        return SubmissionResult(sub.name, sub.original, cfg.exercise or "", "not-graded",
                                notes=["not graded: the grader's files changed during the batch"])

    def grade_one(sub: Submission) -> SubmissionResult:
        if tampered:
            return not_graded(sub)
        try:
            return grade_submission(sub, tests_by_exercise, known, cfg, answers_by_exercise)
        except Exception as err:   # the grader's own failure on this row: named, and the batch goes on
            return SubmissionResult(sub.name, sub.original, cfg.exercise or "", "grader-error",
                                    notes=[f"grader error: {type(err).__name__}: {str(err)[:300]}"])

    def record(i: int, r: SubmissionResult) -> None:
        nonlocal tampered
        if not tampered and r.status != "not-graded" and _install_fingerprint() != fingerprint:  # only without sandbox
            tampered = True
            r.status = "tampered"
            r.notes.append("the grader's files on disk changed while this notebook ran: its grade is void, and "
                           "the rest of the batch was not graded; reinstall the course")
            for t in r.tasks:
                t.points, t.message = 0.0, "void: the notebook changed the grader's files"
        done[i] = r
        write_reports([done[k] for k in sorted(done)], cfg, log, final=False)   # a later crash loses nothing

    bar = tqdm(total=len(found), desc="grading", unit="notebook", disable=not cfg.progress)
    if cfg.jobs == 1:
        for i, sub in enumerate(found):
            record(i, grade_one(sub))
            bar.update()
    else:
        with concurrent.futures.ThreadPoolExecutor(max_workers=cfg.jobs) as pool:
            futures = {pool.submit(grade_one, sub): i for i, sub in enumerate(found)}
            for future in concurrent.futures.as_completed(futures):
                record(futures[future], future.result())
                bar.update()
    bar.close()
    results = [done[i] for i in range(len(found))]
    write_reports(results, cfg, log)
    return results


def _user_mode_reason() -> str | None:
    """``None`` when the 'user' sandbox can run here (root, and the dedicated learner user exists)."""
    if os.geteuid() != 0:
        return "the 'user' sandbox needs the grader to run as root"
    if dedicated_user() is None:
        return f"the 'user' sandbox needs the user {LEARNER_USER} (`useradd --system --no-create-home {LEARNER_USER}`)"
    return None


def _learner_can(how: str, path: Path) -> bool:
    """Whether the learner user can read (``-r``) or write (``-w``) ``path``: asked as that user."""
    import subprocess

    uid, gid = dedicated_user()
    done = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--", "test", how,
                           str(path)], capture_output=True)
    return done.returncode == 0


# --------------------------------------------------------------------------- Gradescope

_RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for each submission, as root: /autograder/submission in, /autograder/results/results.json out.
# The learner's notebook runs in bubblewrap where the image allows it, otherwise as the unprivileged user
# book-learner (made by setup.sh); either way it never sees the hidden tests or this folder's results, and
# every process of it is killed before results.json is written. results.json is always written.
set -uo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
RESULTS="$ROOT/results"
PYTHON="${{AUTOGRADER_PYTHON:-$ROOT/venv/bin/python}}"
fail() {{
    mkdir -p "$RESULTS"
    printf '{{"score": 0, "output": "Your notebook was not graded: the autograder could not start. This is not about your work: tell your instructor. For the instructor: %s"}}\\n' "$1" > "$RESULTS/results.json"
    exit 0
}}
[ -x "$PYTHON" ] || fail "no Python at $PYTHON: did setup.sh run?"
# private to root: the hidden tests, the submission (the grader copies it into the sandbox) and the results
mkdir -p "$RESULTS"
chown root:root "$RESULTS" && chmod 0755 "$RESULTS"
chmod -R go-rwx "$ROOT/source/hidden-tests" "$ROOT/submission" 2>/dev/null
cd /
"$PYTHON" -m book.grade "$ROOT/submission" --out "$RESULTS" --gradescope --quiet \\
    --sandbox "${{AUTOGRADER_SANDBOX:-auto}}" \\
    --exercise {exercise} --hidden-tests "$ROOT/source/hidden-tests"
status=$?
[ -s "$RESULTS/results.json" ] || fail "the grader wrote no results.json (exit status $status)"
"""

_SETUP = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (Ubuntu).
set -euo pipefail
SOURCE="$(cd "$(dirname "$0")" && pwd)"
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y python3 python3-venv python3-pip bubblewrap util-linux
# the unprivileged user that runs learners' notebooks; it owns nothing
id -u book-learner >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin book-learner
python3 -m venv /autograder/venv
/autograder/venv/bin/python -m pip install --upgrade pip
# torch from its CPU wheel index (no CUDA download), then the course package shipped in this zip
/autograder/venv/bin/python -m pip install --index-url https://download.pytorch.org/whl/cpu "torch=={torch}"
/autograder/venv/bin/python -m pip install "$SOURCE/course" nbclient nbformat ipykernel tqdm
/autograder/venv/bin/python -m ipykernel install --sys-prefix --name python3
chmod -R go-rwx "$SOURCE/hidden-tests"
"""


def write_gradescope_zip(zip_path: Path, exercise: str, hidden: Path = SOURCE_DIR, repository: str | None = None,
                         commit: str | None = None, sandbox: bool = True) -> Path:
    """Write a Gradescope autograder zip for ``exercise``: ``setup.sh``, ``run_autograder``, the course, its tests.

    The course package travels inside the zip (``course/``: ``pyproject.toml`` and ``book/``, as in this
    checkout), so the image needs no access to a repository; ``setup.sh`` installs it into a virtual
    environment with torch from the CPU wheel index, pinned to this environment's torch version. The hidden
    tests travel in the zip too, so they can stay private. The zip has no unsafe mode: ``sandbox=False``
    is refused (``repository`` and ``commit`` are accepted and ignored, for old callers).
    """
    if not sandbox:
        raise ValueError("a Gradescope zip always sandboxes learners' code: where bubblewrap cannot run it falls "
                         "back to the unprivileged user book-learner; --unsafe-no-sandbox does not ship in a zip")
    known = _test_sources(hidden)
    matches = [k for k in known if k.startswith(exercise)]
    if len(matches) != 1:
        raise ValueError(f"unknown exercise {exercise!r}; known: {', '.join(sorted(known))}")
    name = matches[0]
    package = Path(__file__).resolve().parent
    root = package.parent
    try:
        from importlib.metadata import version

        torch_version = version("torch").split("+")[0]
    except Exception:
        torch_version = "2.4.1"
    zip_path = Path(zip_path)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as z:
        for filename, text in (("setup.sh", _SETUP.format(torch=torch_version)),
                               ("run_autograder", _RUN_AUTOGRADER.format(exercise=name))):
            info = zipfile.ZipInfo(filename)
            info.external_attr = 0o755 << 16
            z.writestr(info, text)
        z.write(known[name], f"hidden-tests/{name}.md")
        z.write(root / "pyproject.toml", "course/pyproject.toml")
        with contextlib.suppress(OSError):
            z.write(root / "README.md", "course/README.md")   # pyproject's readme
        for path in sorted(package.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                z.write(path, f"course/book/{path.relative_to(package)}")
    return zip_path


def _write_fatal_results(out: Path, message: str) -> None:
    """A ``results.json`` that says the submission was not graded, and why: for the student and the instructor."""
    with contextlib.suppress(OSError):
        _write(out / "results.json", json.dumps({
            "score": 0, "stdout_visibility": "visible",
            "output": "Your notebook was not graded: the autograder could not run. This is not about your work: "
                      "tell your instructor. For the instructor: " + message[:2000]},
            indent=2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m book.grade", description=__doc__.split("\n\n")[0])
    parser.add_argument("submissions", type=Path, nargs="?", help="folder of .ipynb files, or of one folder per student")
    parser.add_argument("--out", type=Path, help="output folder (created; everything is written here)")
    parser.add_argument("--exercise", help="exercise to grade against, e.g. ex04 (default: from each notebook)")
    parser.add_argument("--hidden-tests", type=Path, default=SOURCE_DIR,
                        help="folder of exercise sources whose hidden tests to use (default: exercises/source)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per submission (default 300)")
    parser.add_argument("--cell-timeout", type=float, default=60, help="seconds per cell (default 60)")
    parser.add_argument("--test-timeout", type=float, default=60, help="seconds per hidden test (default 60)")
    parser.add_argument("--memory-mb", type=int, default=3072, help="address space per process, MiB (default 3072)")
    parser.add_argument("--gradescope", action="store_true", help="also write Gradescope results.json files")
    parser.add_argument("--gradescope-zip", type=Path, metavar="ZIP",
                        help="write a Gradescope autograder zip for --exercise instead of grading")
    parser.add_argument("--sandbox", choices=["bwrap", "user", "auto"], default="bwrap",
                        help="bwrap: bubblewrap (default); user: as the unprivileged user book-learner, for a root "
                             "grader in a container without bubblewrap (Gradescope); auto: bwrap, else user")
    parser.add_argument("--unsafe-no-sandbox", action="store_true",
                        help="run learners' code without a sandbox (only on a machine and a batch you trust)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="submissions graded at once, each in its own sandbox (default 1; at most the CPU count "
                             "is useful, and each needs --memory-mb)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        if args.gradescope_zip:
            if not args.exercise:
                raise ValueError("--gradescope-zip needs --exercise")
            path = write_gradescope_zip(args.gradescope_zip, args.exercise, args.hidden_tests,
                                        sandbox=not args.unsafe_no_sandbox)
            print(f"wrote {path}")
            return 0
        if args.submissions is None or args.out is None:
            raise ValueError("give a folder of submissions and --out")
        cfg = GradeConfig(out=args.out, hidden_tests=args.hidden_tests, exercise=args.exercise, timeout=args.timeout,
                          cell_timeout=args.cell_timeout, test_timeout=args.test_timeout, gradescope=args.gradescope,
                          progress=not args.quiet, sandbox=not args.unsafe_no_sandbox, mode=args.sandbox, jobs=args.jobs,
                          limits=Limits(memory_bytes=args.memory_mb * 2**20,
                                        cpu_seconds=int(args.timeout * 2 + 60)))
        if not cfg.sandbox:
            print("warning: grading without a sandbox: learners' code runs with your permissions", file=sys.stderr)
        results = grade_folder(args.submissions, cfg)
    except Exception as err:
        message = str(err) if isinstance(err, ValueError) else f"grader error: {type(err).__name__}: {err}"
        print(f"error: {message}", file=sys.stderr)
        if args.gradescope and args.out is not None:   # Gradescope shows this file, and only this file
            _write_fatal_results(Path(args.out), message)
        return 2
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda kv: STATUS_ORDER.index(kv[0])))
    print(f"graded {len(results)} submission(s) ({summary}); gradebook: {cfg.out / 'gradebook.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
