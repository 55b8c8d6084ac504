"""Gradescope: each submission's ``results.json``, and the autograder zip that grades one exercise there.

``python -m book.grade --gradescope-zip ZIP --exercise ex04`` writes the zip (:func:`write_gradescope_zip`):
``setup.sh`` builds the image (Ubuntu: Python, bubblewrap, the unprivileged user ``book-learner``, the course
package shipped in the zip), ``run_autograder`` grades the one submission with ``--gradescope`` and always
leaves a ``results.json``, even when the grader cannot start.
"""

from __future__ import annotations

import contextlib
import json
import zipfile
from pathlib import Path

from ..cache import atomic_write
from .collect import SOURCE_DIR, hidden_test_sources
from .results import FIELD_CHARS, SubmissionResult, _md, _points

__all__ = ["results_json", "write_gradescope_zip", "write_fatal_results"]


def results_json(r: SubmissionResult) -> dict:
    """One submission's results in Gradescope's ``results.json`` format."""
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
# private to root: the hidden tests, and the course's source (its exercise modules hold the judges' references;
# the sandbox sees the installed package without them)
chmod -R go-rwx "$SOURCE/hidden-tests" "$SOURCE/course"
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
    known = hidden_test_sources(hidden)
    matches = [k for k in known if k.startswith(exercise)]
    if len(matches) != 1:
        raise ValueError(f"unknown exercise {exercise!r}; known: {', '.join(sorted(known))}")
    name = matches[0]
    package = Path(__file__).resolve().parents[1]    # the whole course package, the grader included
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


def write_fatal_results(out: Path, message: str) -> None:
    """A ``results.json`` that says the submission was not graded, and why: for the student and the instructor."""
    with contextlib.suppress(OSError):
        atomic_write(out / "results.json", json.dumps({
            "score": 0, "stdout_visibility": "visible",
            "output": "Your notebook was not graded: the autograder could not run. This is not about your work: "
                      "tell your instructor. For the instructor: " + message[:2000]},
            indent=2))
