"""The Gradescope autograder zip: what it ships, that it always writes results.json, and that a hostile notebook
run by it (as the unprivileged user ``book-learner``, the fallback where bubblewrap cannot start) can neither
rewrite its grade after the grader wrote it, nor read the hidden tests, nor leave a process behind.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell

from book.grading.cli import main
from book.grading.gradescope import write_gradescope_zip
from book.grading.sandbox import LEARNER_USER, _processes_of, dedicated_user

ROOT = Path(__file__).resolve().parent.parent
STUDENT = ROOT / "exercises" / "ex04_building_resnets.ipynb"


@pytest.fixture(scope="module")
def autograder(tmp_path_factory):
    """The zip for exercise 4, unpacked as Gradescope lays it out: /autograder/source, submission, results."""
    base = tmp_path_factory.mktemp("autograder")
    zip_path = write_gradescope_zip(base / "autograder.zip", "ex04")
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(base / "source")
        names = z.namelist()
    for name in ("run_autograder", "setup.sh"):
        (base / "source" / name).chmod(0o755)
    return {"root": base, "zip": zip_path, "names": names}


def _run(autograder, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(autograder["root"] / "source" / "run_autograder")],
                          env={**os.environ, "AUTOGRADER_ROOT": str(autograder["root"]), **env},
                          capture_output=True, text=True, timeout=400)


def test_the_zip_ships_the_course_and_installs_it_in_a_venv(autograder):
    names = autograder["names"]
    assert {"setup.sh", "run_autograder", "hidden-tests/ex04_building_resnets.md", "course/pyproject.toml",
            "course/book/grade.py", "course/book/grading/sandbox.py", "course/book/grading/runner.py",
            "course/book/exercises/protocol.py", "course/book/grading/MANIFEST.sha256"} <= set(names)
    assert not any("__pycache__" in n for n in names)
    setup = (autograder["root"] / "source" / "setup.sh").read_text()
    assert "python3 -m venv" in setup and "download.pytorch.org/whl/cpu" in setup
    assert "--break-system-packages" not in setup and "git+" not in setup
    assert f"useradd --system --no-create-home --shell /usr/sbin/nologin {LEARNER_USER}" in setup
    assert "--unsafe-no-sandbox" not in (autograder["root"] / "source" / "run_autograder").read_text()


def test_the_unsafe_mode_does_not_ship(tmp_path):
    with pytest.raises(ValueError, match="does not ship"):
        write_gradescope_zip(tmp_path / "a.zip", "ex04", sandbox=False)
    assert main(["--gradescope-zip", str(tmp_path / "b.zip"), "--exercise", "ex04",
                         "--unsafe-no-sandbox"]) == 2


def test_results_json_is_written_when_the_autograder_cannot_start(autograder, tmp_path):
    results = autograder["root"] / "results" / "results.json"
    results.unlink(missing_ok=True)
    (autograder["root"] / "submission").mkdir(exist_ok=True)
    done = _run(autograder, {"AUTOGRADER_PYTHON": str(tmp_path / "no-python")})
    assert done.returncode == 0
    data = json.loads(results.read_text())
    assert data["score"] == 0 and "not graded" in data["output"] and "did setup.sh run" in data["output"]


def test_results_json_is_written_on_a_fatal_grader_error(tmp_path):
    out = tmp_path / "out"
    (tmp_path / "subs").mkdir()
    assert main([str(tmp_path / "subs"), "--out", str(out), "--gradescope", "--hidden-tests",
                         str(tmp_path / "none"), "--unsafe-no-sandbox", "--quiet"]) == 2
    data = json.loads((out / "results.json").read_text())
    assert data["score"] == 0 and "not graded" in data["output"] and "hidden tests" in data["output"]


ATTACK = r'''
import glob, os, subprocess, sys
code = """
import glob, json, os, time
time.sleep(3)
for path in glob.glob('RESULTS/*.json') + ['RESULTS/results.json']:
    try:
        open(path, 'w').write(json.dumps({'score': 6, 'output': 'FORGED'}))
    except OSError:
        pass
# GRADESCOPE_FORGE_MARKER
"""
subprocess.Popen([sys.executable, '-c', code], start_new_session=True, stdin=subprocess.DEVNULL,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
leak = ''
for path in glob.glob('SOURCE/hidden-tests/*') + glob.glob('SOURCE/hidden-tests'):
    try:
        leak += open(path).read()[:200]
    except OSError as err:
        leak += type(err).__name__
raise ValueError('LEAK ' + leak)
'''


@pytest.mark.skipif(os.geteuid() != 0, reason="the 'user' sandbox needs a root grader, as on Gradescope")
def test_a_hostile_notebook_cannot_rewrite_its_grade_on_gradescope(autograder):
    if dedicated_user() is None:   # what setup.sh does on Gradescope's image
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", LEARNER_USER],
                       check=True)
    root = autograder["root"]
    for folder in [root, *root.parents]:   # as on Gradescope, the learner user can reach /autograder
        if folder == Path(tempfile.gettempdir()) or folder == Path("/"):
            break
        os.chmod(folder, os.stat(folder).st_mode | stat.S_IXOTH | stat.S_IROTH)
    submission, results = root / "submission", root / "results"
    shutil.rmtree(submission, ignore_errors=True)
    shutil.rmtree(results, ignore_errors=True)
    submission.mkdir()
    nb = nbformat.read(STUDENT, as_version=4)
    source = ATTACK.replace("RESULTS", str(results)).replace("SOURCE", str(root / "source"))
    nb.cells.append(new_code_cell(source))
    nbformat.write(nb, submission / "ex04_building_resnets.ipynb")
    done = _run(autograder, {"AUTOGRADER_PYTHON": sys.executable, "AUTOGRADER_SANDBOX": "user"})
    assert done.returncode == 0, done.stderr[-2000:]
    written = (results / "results.json").read_text()
    time.sleep(5)                                   # longer than the attacker's sleep
    assert (results / "results.json").read_text() == written, "results.json changed after the grader wrote it"
    data = json.loads(written)
    assert data["score"] == 0 and "FORGED" not in written
    assert "sandbox: user" in written or "status:" in data["output"]
    assert "LEAK PermissionError" in written and "hidden-test" not in written
    assert not _processes_of(dedicated_user()[0]), "a process of the learner user outlived the grader"
    assert not (results / "results.json").stat().st_mode & stat.S_IWOTH
