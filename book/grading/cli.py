"""Grade a folder of submitted exercise notebooks: ``python -m book.grade SUBMISSIONS --out OUT``.

Each submission runs in its own sandbox (:mod:`book.grading.sandbox`: bubblewrap, no network, a read-only system,
nothing of the grader's or of other learners' files), in a fresh kernel, with a time limit per cell and per
submission. When its cells have run, the grader draws a seed for each task and asks the kernel to call the
learner's definitions on that seed's cases (:mod:`book.grading.runner`); the kernel answers with plain data
only. The sandbox is then killed, every process in it with it, and the grader judges the answers in its own
process (:func:`book.exercises.protocol.judge`): no score, verdict or feedback text comes from where the learner's code
ran. The hidden tests (``exercises/source`` or ``--hidden-tests PATH``) never enter the sandbox.

The grader writes its reports under ``OUT`` (the gradebook, the collection log, feedback for each learner and
marking files for the instructor: :mod:`book.grading.gradebook` lists them), and Gradescope's ``results.json``
with ``--gradescope`` (:mod:`book.grading.gradescope`).

``--jobs N`` grades N submissions at once, each in its own sandbox with its own limits; the reports are the same
as a serial run's (rows in the order the submissions were found; each submission's judges run in a process of
their own). One bad submission never stops the batch. Without bubblewrap the grader refuses to run unless given
``--unsafe-no-sandbox`` (see ``instructors.md``). ``python -m book.grade --gradescope-zip ZIP --exercise ex04``
writes a Gradescope autograder.

The grader's modules follow a submission through it: :mod:`~book.grading.collect` (find it),
:mod:`~book.grading.sandbox` and :mod:`~book.grading.exchange` (run it, with :mod:`~book.grading.runner`
inside), :mod:`~book.grading.report` (read what came back), :mod:`~book.grading.judge` (decide),
:mod:`~book.grading.gradebook` and :mod:`~book.grading.gradescope` (write it down); this module runs the batch.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import sys
from pathlib import Path

from ..exercises.protocol import preload
from ..exercises.sources import hidden_tests, written_answers
from .collect import SOURCE_DIR, Submission, find_submissions, hidden_test_sources
from .gradebook import write_reports
from .gradescope import write_fatal_results, write_gradescope_zip
from .judge import grade_submission
from .manifest import problems
from .results import STATUS_ORDER, GradeConfig, SubmissionResult
from .sandbox import HOW_TO_INSTALL, LEARNER_USER, Limits, dedicated_user, python_paths, unavailable_reason

__all__ = ["grade_folder", "main"]


def _inside(path: Path, folders) -> bool:
    return any(path == f or f in path.parents or path in f.parents for f in folders)


def grade_folder(submissions: Path, cfg: GradeConfig) -> list[SubmissionResult]:
    """Grade every submission in ``submissions``; write the reports under ``cfg.out``."""
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
    known = hidden_test_sources(cfg.hidden_tests)
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
    changed = problems()
    if changed:
        raise ValueError(f"the grader's files are not the shipped ones ({'; '.join(changed[:3])}): reinstall the "
                         "course (a developer who changed them on purpose writes the manifest again: "
                         "`python -m book.grading.manifest`)")
    preload()
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
        if r.status == "tampered":      # found before its answers were judged: nothing of it was judged
            tampered = True
        elif not tampered and r.status != "not-graded" and problems():   # possible only without the sandbox
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
            write_fatal_results(Path(args.out), message)
        return 2
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda kv: STATUS_ORDER.index(kv[0])))
    print(f"graded {len(results)} submission(s) ({summary}); gradebook: {cfg.out / 'gradebook.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
