"""Grade a folder of submitted exercise notebooks: ``python -m book.grade SUBMISSIONS --out OUT``.

Each submission runs in a fresh kernel, in a scratch copy inside ``OUT/scratch/<name>/`` (its working
directory), with a time limit per cell and per submission. Then, in the same kernel, the exercise's
hidden tests run one by one (from the sources in ``exercises/source`` or ``--hidden-tests PATH``).
The grader writes, all under ``OUT``:

- ``gradebook.csv``: one row per submission: status, points per task, total, details;
- ``feedback/<name>.md``: what each task's tests said, and what went wrong while running;
- with ``--gradescope``: ``gradescope/<name>/results.json`` (and ``results.json`` when there is
  one submission, as Gradescope's autograder expects).

One bad submission never stops the batch. A submission that cannot be read, loops forever, crashes its
kernel, raises ``SystemExit``, prints without end or deletes cells gets its row, a status that says
what happened, and zero points for what could not be checked. A kernel that dies is started again
once without the cell that killed it, so tasks solved elsewhere in the notebook still count.
Grading runs learners' code with the grader's permissions: it is not a sandbox (see ``instructors.md``).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import re
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .exercises import SOURCE_DIR, hidden_tests, sources

__all__ = ["GradeConfig", "TaskResult", "SubmissionResult", "find_submissions", "grade_submission",
           "grade_folder", "main"]

STATUS_ORDER = ["invalid-notebook", "too-large", "no-notebook", "unknown-exercise", "timeout",
                "kernel-crashed", "cell-timeout", "syntax-error", "cell-errors", "ok"]


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


@dataclass
class TaskResult:
    task: int
    title: str
    points: float
    max_points: float
    message: str


@dataclass
class SubmissionResult:
    name: str
    path: str
    exercise: str
    status: str
    tasks: list[TaskResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total(self) -> float:
        return sum(t.points for t in self.tasks)

    @property
    def max_total(self) -> float:
        return sum(t.max_points for t in self.tasks)


# --------------------------------------------------------------------------- finding submissions and tests

def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "submission"


def find_submissions(folder: Path) -> list[tuple[str, Path | None]]:
    """``(name, notebook)`` pairs: each ``*.ipynb`` in ``folder``, and the first notebook inside each subfolder.

    A subfolder without a notebook gives ``(name, None)``.
    """
    found, seen = [], set()

    def add(name: str, path: Path | None):
        base, n = _safe(name), 1
        unique = base
        while unique in seen:
            n += 1
            unique = f"{base}-{n}"
        seen.add(unique)
        found.append((unique, path))

    for entry in sorted(Path(folder).iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix == ".ipynb":
            add(entry.stem, entry)
        elif entry.is_dir():
            notebooks = sorted(p for p in entry.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
            add(entry.name, notebooks[0] if notebooks else None)
    return found


def _test_sources(location: Path) -> dict[str, Path]:
    location = Path(location)
    if location.is_file():
        return {location.stem: location}
    return {p.stem: p for p in sources(location)}


def _exercise_of(nb, path: Path, known: dict[str, Path]) -> str | None:
    meta = (nb.get("metadata", {}) if nb is not None else {}).get("residual_course", {})
    name = meta.get("exercise") if isinstance(meta, dict) else None
    if name in known:
        return name
    match = re.search(r"ex\d\d", path.name)
    if match:
        return next((k for k in known if k.startswith(match[0])), None)
    return None


# --------------------------------------------------------------------------- running one notebook

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
class _Run:
    cell_errors: list[tuple[int, str, str]] = field(default_factory=list)   # (cell, ename, evalue)
    test_outcomes: dict[int, str | None] = field(default_factory=dict)     # test index -> None (pass) or message
    crashed_at: int | None = None                                          # index into the executed cells
    out_of_time: bool = False
    cell_timeouts: int = 0
    test_messages: dict[int, str] = field(default_factory=dict)            # what a passing test printed


def _kernel_env(cfg: GradeConfig, scratch: Path) -> dict:
    env = dict(os.environ)
    env.update({
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": str(scratch / ".matplotlib"),
        "IPYTHONDIR": str(scratch / ".ipython"),
        "TMPDIR": str(scratch / ".tmp"),
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": "1",
        "RESIDUAL_COURSE_CACHE": str(cfg.out / ".cache"),
    })
    (scratch / ".tmp").mkdir(exist_ok=True)
    return env


def _error_of(cell) -> tuple[str, str] | None:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return out.get("ename", "Error"), str(out.get("evalue", ""))
    return None


def _stdout_of(cell, limit: int = 1000) -> str:
    text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("name") == "stdout")
    return text.strip()[:limit]


def _execute(code: list[str], tests: list[dict], scratch: Path, cfg: GradeConfig, deadline: float) -> _Run:
    """Run the submission's code cells, then the hidden tests, in one fresh kernel."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from nbclient.util import run_sync
    from nbformat.v4 import new_code_cell, new_notebook

    run = _Run()
    cells = [new_code_cell(src) for src in code] + [new_code_cell(t["source"]) for t in tests]
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                            "language": "python"}})
    client = _client_class()(
        nb, kernel_name="python3", timeout=int(cfg.cell_timeout), allow_errors=True,
        interrupt_on_timeout=True, startup_timeout=120, shutdown_kernel="immediate",
        error_on_timeout={"ename": "CellTimeout", "evalue": "", "traceback": []},
        resources={"metadata": {"path": str(scratch)}},
    )
    client.max_output_chars = cfg.max_output_chars
    fired = threading.Event()

    def kill_kernel():  # the last resort when an interrupt does not stop the kernel
        fired.set()
        with contextlib.suppress(Exception):
            os.killpg(client.km.provisioner.process.pid, signal.SIGKILL)

    watchdog = threading.Timer(max(deadline - time.monotonic(), 0) + 5, kill_kernel)
    try:
        with client.setup_kernel(env=_kernel_env(cfg, scratch)):
            watchdog.start()
            for index, cell in enumerate(cells):
                is_test = index >= len(code)
                remaining = deadline - time.monotonic()
                if remaining <= 1:
                    run.out_of_time = True
                    break
                limit = cfg.test_timeout if is_test else cfg.cell_timeout
                client.timeout = max(1, int(min(limit, remaining)))
                client.timed_out = False
                try:
                    client.execute_cell(cell, index)
                    alive = run_sync(client.km.is_alive)()
                except DeadKernelError:
                    alive = False
                except CellTimeoutError:
                    client.timed_out, alive = True, run_sync(client.km.is_alive)()
                if not alive:
                    if fired.is_set():
                        run.out_of_time = True
                    else:
                        run.crashed_at = index
                    break
                error = _error_of(cell)
                if client.timed_out:
                    error = ("CellTimeout", f"stopped after {client.timeout} s")
                    run.cell_timeouts += 0 if is_test else 1
                if is_test:
                    t = index - len(code)
                    if error is None:
                        run.test_outcomes[t] = None
                        run.test_messages[t] = _stdout_of(cell)
                    elif error[0] == "TaskFailed":
                        run.test_outcomes[t] = error[1]
                    elif error[0] == "CellTimeout":
                        run.test_outcomes[t] = (f"the test did not finish within {client.timeout} s: "
                                                "does your code loop forever?")
                    else:
                        run.test_outcomes[t] = f"the test raised {error[0]}: {error[1]}"
                elif error:
                    run.cell_errors.append((index, *error))
    except DeadKernelError:
        run.crashed_at = run.crashed_at if run.crashed_at is not None else 0
    except RuntimeError as err:  # the kernel could not start
        if fired.is_set():
            run.out_of_time = True
        else:
            raise RuntimeError(f"the kernel could not start: {err}") from err
    finally:
        watchdog.cancel()
    return run


def grade_submission(name: str, path: Path | None, tests_by_exercise: dict[str, list[dict]],
                     known: dict[str, Path], cfg: GradeConfig) -> SubmissionResult:
    """Grade one notebook; never raises for anything the notebook does."""
    import nbformat

    started = time.monotonic()
    result = SubmissionResult(name, str(path) if path else "", cfg.exercise or "", "ok")

    def finish(status: str, note: str | None = None) -> SubmissionResult:
        result.status = status
        if note:
            result.notes.append(note)
        result.seconds = time.monotonic() - started
        return result

    def zero_tasks(reason: str):
        for t in tests_by_exercise.get(result.exercise, []):
            result.tasks.append(TaskResult(t["task"], t["title"], 0.0, t["points"], f"not checked: {reason}"))

    scratch = cfg.out / "scratch" / name
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    if path is None:
        zero_tasks("no notebook was submitted")
        return finish("no-notebook", "the submission folder holds no .ipynb file")
    if path.stat().st_size > cfg.max_notebook_bytes:
        zero_tasks("the notebook file is too large to run")
        return finish("too-large", f"the notebook is {path.stat().st_size:,} bytes; the limit is {cfg.max_notebook_bytes:,}")
    shutil.copyfile(path, scratch / path.name)  # the learner's file itself is never touched
    try:
        nb = nbformat.read(scratch / path.name, as_version=4)
        code = [c.source for c in nb.cells if c.get("cell_type") == "code" and isinstance(c.get("source"), str)]
    except Exception as err:
        result.exercise = cfg.exercise or _exercise_of(None, path, known) or ""
        zero_tasks("the notebook could not be read")
        return finish("invalid-notebook", f"the file is not a readable notebook ({type(err).__name__}: {str(err)[:200]})")
    result.exercise = cfg.exercise or _exercise_of(nb, path, known) or ""
    if result.exercise not in tests_by_exercise:
        return finish("unknown-exercise", "cannot tell which exercise this notebook answers: pass --exercise")
    tests = tests_by_exercise[result.exercise]

    deadline = started + cfg.timeout
    skipped: set[int] = set()        # cells that crashed the kernel, left out of the next attempt
    crash_notes, run = [], _Run()
    for _attempt in range(3):
        kept = [i for i in range(len(code)) if i not in skipped]
        try:
            run = _execute([code[i] for i in kept], tests, scratch, cfg, deadline)
        except Exception as err:  # the grader's own trouble (e.g. no kernel): report it on this row
            zero_tasks("the grader could not run the notebook")
            return finish("kernel-crashed", str(err)[:300])
        if run.crashed_at is None or run.out_of_time:
            break
        if run.crashed_at < len(kept):
            bad = kept[run.crashed_at]
            skipped.add(bad)
            crash_notes.append(f"code cell {bad + 1} stopped the kernel; it was left out and the notebook run again")
        else:
            t = run.crashed_at - len(kept)
            crash_notes.append(f"the kernel died while testing task {tests[t]['task']}")
            break

    # cell numbers in notes count the submission's code cells from 1
    kept = [i for i in range(len(code)) if i not in skipped]
    for index, ename, evalue in run.cell_errors:
        result.notes.append(f"code cell {kept[index] + 1} raised {ename}: {evalue[:300]}")
    result.notes.extend(crash_notes)
    for i, t in enumerate(tests):
        if i in run.test_outcomes:
            outcome = run.test_outcomes[i]
            points = t["points"] if outcome is None else 0.0
            message = (run.test_messages.get(i) or "passed") if outcome is None else outcome
        elif run.out_of_time:
            points, message = 0.0, f"not checked: the notebook ran out of its {cfg.timeout:.0f} s"
        else:
            points, message = 0.0, "not checked: the kernel stopped before this test could run"
        result.tasks.append(TaskResult(t["task"], t["title"], points, t["points"], message))

    if run.out_of_time:
        status = "timeout"
        result.notes.append(f"the submission did not finish within {cfg.timeout:.0f} s")
    elif crash_notes:
        status = "kernel-crashed"
    elif run.cell_timeouts:
        status = "cell-timeout"
    elif any(e[1] in ("SyntaxError", "IndentationError", "TabError") for e in run.cell_errors):
        status = "syntax-error"
    elif run.cell_errors:
        status = "cell-errors"
    else:
        status = "ok"
    return finish(status)


# --------------------------------------------------------------------------- reports

def _points(x: float) -> str:
    return f"{x:g}"


def _feedback_text(r: SubmissionResult) -> str:
    lines = [f"# Feedback: {r.name}", "", f"- exercise: {r.exercise or 'unknown'}", f"- status: {r.status}",
             f"- score: {_points(r.total)} / {_points(r.max_total)}", ""]
    for t in r.tasks:
        mark = "✓" if t.points == t.max_points and t.max_points > 0 else "✗"
        lines += [f"## Task {t.task} · {t.title}: {_points(t.points)} / {_points(t.max_points)} {mark}", "", t.message, ""]
    if r.notes:
        lines += ["## While running your notebook", ""] + [f"- {n}" for n in r.notes] + [""]
    return "\n".join(lines)


def _gradescope(r: SubmissionResult) -> dict:
    return {
        "score": r.total,
        "output": f"status: {r.status}" + ("\n" + "\n".join(r.notes) if r.notes else ""),
        "stdout_visibility": "visible",
        "tests": [{"name": f"Task {t.task} · {t.title}", "score": t.points, "max_score": t.max_points,
                   "output": t.message, "visibility": "visible"} for t in r.tasks],
    }


def write_reports(results: list[SubmissionResult], cfg: GradeConfig) -> Path:
    """Write the gradebook, the feedback files and (optionally) Gradescope results; return the CSV path."""
    tasks = sorted({t.task for r in results for t in r.tasks})
    gradebook = cfg.out / "gradebook.csv"
    with open(gradebook, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["submission", "exercise", "status", *[f"task{k}" for k in tasks], "total", "max_total", "details"])
        for r in results:
            by_task: dict[int, float] = {}
            for t in r.tasks:
                by_task[t.task] = by_task.get(t.task, 0.0) + t.points
            writer.writerow([r.name, r.exercise, r.status, *[_points(by_task.get(k, 0.0)) for k in tasks],
                             _points(r.total), _points(r.max_total), "; ".join(r.notes)[:500]])
    (cfg.out / "feedback").mkdir(exist_ok=True)
    for r in results:
        (cfg.out / "feedback" / f"{r.name}.md").write_text(_feedback_text(r))
    if cfg.gradescope:
        for r in results:
            folder = cfg.out / "gradescope" / r.name
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "results.json").write_text(json.dumps(_gradescope(r), indent=2))
        if len(results) == 1:
            (cfg.out / "results.json").write_text(json.dumps(_gradescope(results[0]), indent=2))
    return gradebook


@contextlib.contextmanager
def _private_dirs(out: Path):
    """Keep the kernels' connection files and IPython's profile inside the output folder."""
    names = {"JUPYTER_RUNTIME_DIR": out / ".jupyter-runtime", "IPYTHONDIR": out / ".ipython"}
    old = {name: os.environ.get(name) for name in names}
    os.environ.update({name: str(path) for name, path in names.items()})
    try:
        yield
    finally:
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def grade_folder(submissions: Path, cfg: GradeConfig) -> list[SubmissionResult]:
    """Grade every submission in ``submissions``; write the reports under ``cfg.out``."""
    submissions, cfg.out = Path(submissions).resolve(), Path(cfg.out).resolve()
    if not submissions.is_dir():
        raise ValueError(f"{submissions} is not a folder of submissions")
    if cfg.out == submissions or submissions in cfg.out.parents:
        raise ValueError("the output folder must not be inside the submissions folder")
    known = _test_sources(cfg.hidden_tests)
    if not known:
        raise ValueError(f"no exercise sources with hidden tests found at {cfg.hidden_tests}")
    if cfg.exercise is not None and cfg.exercise not in known:
        matches = [k for k in known if k.startswith(cfg.exercise)]
        if len(matches) != 1:
            raise ValueError(f"unknown exercise {cfg.exercise!r}; known: {', '.join(sorted(known))}")
        cfg.exercise = matches[0]
    tests_by_exercise = {name: hidden_tests(path) for name, path in known.items()}
    cfg.out.mkdir(parents=True, exist_ok=True)
    found = find_submissions(submissions)
    results = []
    with _private_dirs(cfg.out):
        from tqdm.auto import tqdm

        for name, path in tqdm(found, desc="grading", unit="notebook", disable=not cfg.progress):
            results.append(grade_submission(name, path, tests_by_exercise, known, cfg))
    write_reports(results, cfg)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m book.grade", description=__doc__.split("\n\n")[0])
    parser.add_argument("submissions", type=Path, help="folder of .ipynb files, or of one folder per student")
    parser.add_argument("--out", type=Path, required=True, help="output folder (created; everything is written here)")
    parser.add_argument("--exercise", help="exercise to grade against, e.g. ex04 (default: from each notebook)")
    parser.add_argument("--hidden-tests", type=Path, default=SOURCE_DIR,
                        help="folder of exercise sources whose hidden-test cells to run (default: exercises/source)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per submission (default 300)")
    parser.add_argument("--cell-timeout", type=float, default=60, help="seconds per cell (default 60)")
    parser.add_argument("--test-timeout", type=float, default=60, help="seconds per hidden test (default 60)")
    parser.add_argument("--gradescope", action="store_true", help="also write Gradescope results.json files")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    cfg = GradeConfig(out=args.out, hidden_tests=args.hidden_tests, exercise=args.exercise, timeout=args.timeout,
                      cell_timeout=args.cell_timeout, test_timeout=args.test_timeout, gradescope=args.gradescope,
                      progress=not args.quiet)
    try:
        results = grade_folder(args.submissions, cfg)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda kv: STATUS_ORDER.index(kv[0])))
    print(f"graded {len(results)} submission(s) ({summary}); gradebook: {cfg.out / 'gradebook.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
