"""The judges' side of issue 25: constants do not pass a measured range, a forged answer that costs the judge too much
is rejected without stopping the batch, the grader's own failures are named as such, and the grader's files are
checked against the manifest that ships with them (bytecode included).

The learner's code runs as the sandbox would run it (``protocol.answer``, then JSON), and is judged as the grader
judges it; no kernel and no sandbox. About fifteen seconds in all, most of it the judges' child processes starting.
"""

from __future__ import annotations

import functools
import json
import py_compile
from pathlib import Path

import pytest

from book.exercises import protocol
from book.exercises.feedback import Feedback, _checker
from book.exercises.sources import _seed_positions, hidden_tests, read_source
from book.grading import manifest
from book.grading.collect import SOURCE_DIR
from book.grading.exchange import _call_request
from book.grading.verdicts import JudgeLimits, judge_all
from book.training import CLAIM_SEEDS


@functools.cache
def _all_range_tests() -> tuple:
    return tuple(t for source in sorted(SOURCE_DIR.glob("ex*.md")) for t in hidden_tests(source)
                 if t["request"] and "range" in t["request"])


def _range_tests() -> list[dict]:
    return list(_all_range_tests())


def _unused() -> list[dict]:
    return [t for source in sorted(SOURCE_DIR.glob("ex*.md")) for t in hidden_tests(source)
            if t["request"] and "range" in t["request"]]


def _judged(test: dict, fn) -> Feedback:
    """What the grader decides on ``fn`` for a measured range's hidden test ``test``."""
    request = _call_request(test["request"])            # as the grader sends it: the seed of ``also`` drawn now
    reply = protocol.answer(json.loads(json.dumps(request)), {test["request"]["call"]: fn})
    return protocol.judge({**test["request"], **request}, reply, test["title"])


# --------------------------------------------------------------------------- constants in a measured range

def test_every_seeded_measurement_is_asked_on_a_second_drawn_seed():
    tests = _range_tests()
    varied = [t for t in tests if "vary" in t["request"]]
    assert len(tests) >= 8 and len(varied) >= 7   # all but those that read recorded runs and take no seed
    for source in sorted(SOURCE_DIR.glob("ex*.md")):     # the others' functions take no seed
        seeded = _seed_positions(read_source(source).cells)
        assert not any(t["request"]["call"] in seeded for t in hidden_tests(source) if t in tests and t not in varied)
    for t in varied:
        literal = t["request"]["args"][t["request"]["vary"]]
        drawn = {_call_request(t["request"])["also"][0][t["request"]["vary"]] for _ in range(40)}
        assert drawn == set(CLAIM_SEEDS) - {literal}, t["title"]


def test_a_constant_inside_the_range_earns_nothing():
    for t in _range_tests():
        if "vary" not in t["request"]:
            continue
        low, high = t["request"]["range"]
        constant = (low + high) / 2
        verdict = _judged(t, lambda *args, c=constant: c)
        assert not verdict.passed, t["title"]
        assert "not a number from the range" in verdict.message


def test_a_measurement_that_varies_with_its_seed_inside_the_range_passes():
    for t in _range_tests():
        low, high = t["request"]["range"]
        position = t["request"].get("vary")

        def measured(*args, low=low, high=high, position=position):   # stands in for the real experiment
            seed = args[position] if position is not None else 0
            return low + (high - low) * (0.4 + 0.05 * seed)

        assert _judged(t, measured).passed, t["title"]


def test_a_second_seed_outside_the_range_fails():
    t = next(t for t in _range_tests() if "vary" in t["request"])
    low, high = t["request"]["range"]
    literal = t["request"]["args"][t["request"]["vary"]]
    verdict = _judged(t, lambda *args: (low + high) / 2 if args[t["request"]["vary"]] == literal else high * 10)
    assert not verdict.passed and "outside the range" in verdict.message


# --------------------------------------------------------------------------- the grader's errors are the grader's

def test_a_failure_of_the_judges_own_code_is_a_grader_error(monkeypatch):
    @_checker("Task 1 · t")
    def buggy_judge(answers, seed, thorough):
        return {}["a key the judge forgot"]

    monkeypatch.setitem(protocol.JUDGED, "check_buggy", buggy_judge)
    request = {"check": "check_buggy", "names": ["f"], "seed": 1, "thorough": True}
    with pytest.raises(protocol.GraderError, match="KeyError"):
        protocol.judge(request, json.dumps({"answers": []}), "t")
    assert "your code raised KeyError" in buggy_judge([], 1, True).message    # the self-check, as before

    # what the notebook sent stays the notebook's: unreadable answers and the learner's own exceptions
    assert "could not read" in protocol.judge(request, "{not json", "t").message
    raised = json.dumps({"answers": [{"raised": ["KeyError", "boom"]}]})

    @_checker("Task 1 · t")
    def judge_that_replays(answers, seed, thorough):
        protocol._Replay(answers).next()

    monkeypatch.setitem(protocol.JUDGED, "check_buggy", judge_that_replays)
    verdict = protocol.judge(request, raised, "t")
    assert not verdict.passed and "your code raised KeyError" in verdict.message


# --------------------------------------------------------------------------- the judges' own limits

def _call_item(reply: str) -> dict:
    return {"request": {"call": "f", "args": [1], "range": [0, 10]}, "reply": reply, "title": "t"}


def test_a_forged_answer_too_large_to_judge_is_rejected_and_the_rest_is_judged():
    honest = _call_item(json.dumps({"answers": [{"value": 5.0}]}))
    # 24 MB of empty lists: under the size the grader reads, but each "[]," costs the judge about 64 bytes
    forged = _call_item('{"answers": [{"value": [' + "[]," * 8_000_000 + "[]]}]}")
    verdicts = judge_all([honest, forged, honest], JudgeLimits(memory_bytes=1 * 2**30, wall_seconds=120))
    assert [v.kind for v in verdicts] == ["judged", "rejected", "judged"]
    assert verdicts[0].passed and verdicts[2].passed and not verdicts[1].passed
    assert "rejected" in verdicts[1].message and "memory" in verdicts[1].message


def test_the_judges_child_reports_a_grader_error_as_one(monkeypatch):
    item = {"request": {"check": "no_such_check", "names": ["f"], "seed": 1}, "reply": '{"answers": []}',
            "title": "t"}
    (verdict,) = judge_all([item])
    assert verdict.kind == "grader-error" and "KeyError" in verdict.message


# --------------------------------------------------------------------------- the shipped manifest

def test_the_shipped_manifest_is_current():
    """Fails when a file of the grader or its judges changed: run `python -m book.grading.manifest` and commit."""
    assert manifest.problems() == []
    shipped = manifest.MANIFEST.read_text().split()[1::2]
    assert shipped == [p.as_posix() for p in manifest.graded_modules()]


def test_planted_bytecode_is_found(tmp_path):
    source = tmp_path / "judge.py"
    source.write_text("def verdict(x):\n    return x == 42\n")
    honest = Path(py_compile.compile(str(source), cfile=str(tmp_path / "honest.pyc")))
    assert manifest._bytecode_is_its_source(honest, source)
    planted_source = tmp_path / "planted.py"
    planted_source.write_text("def verdict(x):\n    return True\n")
    planted = Path(py_compile.compile(str(planted_source), cfile=str(tmp_path / "planted.pyc")))
    assert not manifest._bytecode_is_its_source(planted, source)


def test_the_grader_refuses_files_that_differ_from_the_manifest(tmp_path, monkeypatch):
    fake = tmp_path / "MANIFEST.sha256"
    fake.write_text("0" * 64 + "  grading/judge.py\n")
    monkeypatch.setattr(manifest, "MANIFEST", fake)
    assert any("grading/judge.py differs" in p for p in manifest.problems())
    from book.grading.verdicts import GraderFilesChanged

    with pytest.raises(GraderFilesChanged):
        judge_all([_call_item('{"answers": [{"value": 5.0}]}')])


# --------------------------------------------------------------------------- a sandbox that cannot start

def test_a_sandbox_that_cannot_start_shows_why_at_once(tmp_path, monkeypatch):
    import time

    from book.grading import exchange
    from book.grading.collect import Submission, hidden_test_sources
    from book.grading.judge import grade_submission
    from book.grading.results import GradeConfig
    from book.grading.sandbox import unavailable_reason

    if unavailable_reason() is not None:
        pytest.skip(f"no sandbox: {unavailable_reason()}")
    monkeypatch.setattr(exchange, "RUNNER", "book.grading.no_such_runner")   # as when `book` is not importable inside
    notebook = Path(__file__).parent / "fixtures" / "submissions" / "correct.ipynb"
    known = hidden_test_sources(SOURCE_DIR)
    tests = {name: hidden_tests(path) for name, path in known.items() if name.startswith("ex04")}
    cfg = GradeConfig(out=tmp_path, exercise=next(iter(tests)), timeout=300, progress=False)
    started = time.monotonic()
    row = grade_submission(Submission("correct", notebook, "correct.ipynb"), tests, known, cfg)
    assert time.monotonic() - started < 60                          # not the 300 s of a timeout
    assert row.status == "kernel-crashed" and all(t.points == 0 for t in row.tasks)
    assert any("start-up failure" in n and "No module named book.grading.no_such_runner" in n for n in row.notes)


# --------------------------------------------------------------------------- the judges' references stay with the grader

_IN_THE_LEARNER_PACKAGE = r"""
import importlib, json, sys
import book, book.exercises as e
from book.exercises import protocol
from book.exercises.cases import ANSWERS

assert book.__file__.startswith(sys.argv[1]), book.__file__
for n in range(1, 8):
    try:
        importlib.import_module(f"book.exercises.ex0{n}")
    except ModuleNotFoundError:
        continue
    raise SystemExit(f"ex0{n} is importable")
missing = [name for name in json.loads(sys.argv[2]) if not hasattr(e, name)]
assert not missing, missing
assert e.check_sinkhorn(lambda m, k: m) and "not checked here" in e.check_sinkhorn(lambda m, k: m).message


def sinkhorn(m, iters):
    for _ in range(iters):
        m = m / m.sum(dim=1, keepdim=True)
        m = m / m.sum(dim=0, keepdim=True)
    return m


request = {"check": "check_sinkhorn", "names": ["sinkhorn"], "seed": int(sys.argv[3]), "thorough": True}
print(json.dumps([protocol.answer(request, {"sinkhorn": sinkhorn}),
                  protocol.answer(request, {"sinkhorn": lambda m, k: m}), sorted(ANSWERS)]))
"""


def test_the_sandbox_package_holds_no_reference_and_still_answers_every_check():
    """The sandbox's copy of the package has no exercise module (so no reference to import or read), its self-checks
    are stand-ins, every name a notebook imports exists, and its answers are judged by the grader as before."""
    import ast
    import re
    import secrets
    import subprocess
    import sys

    from book.exercises import JUDGED
    from book.grading.sandbox import learner_package

    package = learner_package()
    left = [p.relative_to(package) for p in package.rglob("*") if re.fullmatch(r"ex\d\d(\..*)?\.pyc?", p.name)
            and p.parent.name in ("exercises", "__pycache__") and "cases" not in p.parts]
    assert not left, left
    for path in (package / "exercises" / "cases").glob("*.py"):    # no reference and no verdict in the sandbox's half
        assert not re.search(r"_reference|_Reference|_grad_reference|_cifar_counts|(?<!check)_final_error\b|_Fail\(", path.read_text()), path

    imported = sorted({alias.name for source in SOURCE_DIR.glob("ex*.md") for cell in read_source(source).cells
                       if cell.cell_type == "code" for node in ast.walk(ast.parse(_code_only(cell.source)))
                       if isinstance(node, ast.ImportFrom) and node.module == "book.exercises" for alias in node.names})
    seed = secrets.randbits(62)
    done = subprocess.run([sys.executable, "-c", _IN_THE_LEARNER_PACKAGE, str(package), json.dumps(imported), str(seed)],
                          env={"PYTHONPATH": str(package.parent), "PATH": "/usr/bin:/bin"}, cwd=package.parent,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    right, unchanged, answered = json.loads(done.stdout.strip().splitlines()[-1])
    assert answered == sorted(JUDGED)                      # every judged check has its answer in the sandbox
    request = {"check": "check_sinkhorn", "names": ["sinkhorn"], "seed": seed, "thorough": True}
    assert protocol.judge(request, right, "t").passed
    verdict = protocol.judge(request, unchanged, "t")
    assert not verdict.passed and "returns M unchanged" in verdict.message


def _code_only(source: str) -> str:
    return "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))


def test_where_the_references_are_importable_a_notebook_could_copy_them():
    """Why they stay out of the sandbox: with the whole package, a notebook that calls the judge's own reference
    passes (the sandbox runs give such a notebook nothing: tests/test_grade_adversarial.py, "judges_references")."""
    import secrets

    from book.exercises import ex07

    namespace = {"sinkhorn": lambda m, iters: ex07._reference_sinkhorn(m, iters)}
    request = {"check": "check_sinkhorn", "names": ["sinkhorn"], "seed": secrets.randbits(62), "thorough": True}
    reply = protocol.answer(json.loads(json.dumps(request)), namespace)
    assert protocol.judge(request, reply, "t").passed


# --------------------------------------------------------------------------- the judge computes as the sandbox does

def test_the_judge_computes_on_the_sandboxs_numerical_path_even_when_the_grader_was_not_started_pinned():
    """A judge recomputes a trained loss and compares it to about 1e-5: on other kernels than the sandbox's, a correct
    answer fails on some seeds. An instructor's shell is not pinned, so the judge's environment must pin itself."""
    import os
    import subprocess
    import sys

    from book import numerics
    from book.grading.exchange import sandbox_env
    from book.grading.verdicts import judge_env

    bare = {k: v for k, v in os.environ.items() if k not in numerics.PINNED and k != numerics.OPT_OUT}
    env = judge_env(bare)
    box = sandbox_env("/scratch", "/tmp")
    assert {k: env[k] for k in numerics.PINNED} == {k: box[k] for k in numerics.PINNED} == numerics.PINNED
    assert env["OMP_NUM_THREADS"] == box["OMP_NUM_THREADS"] == "1"
    # and torch in a process started with it really runs the pinned kernels
    probe = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip().upper() == "AVX2"
    # a grader asked for native kernels judges on native kernels, whatever its shell had pinned
    native = judge_env({**os.environ, numerics.OPT_OUT: "1"})
    assert not any(name in native for name in numerics.PINNED)


def test_judge_all_starts_its_child_with_that_environment(monkeypatch):
    import subprocess

    from book import numerics
    from book.grading import verdicts

    for name in numerics.PINNED:
        monkeypatch.delenv(name, raising=False)      # the grader started from a plain shell
    seen = {}

    def fake_run(command, **kwargs):
        seen.update(kwargs["env"])
        return subprocess.CompletedProcess(command, 0, stdout=b'{"passed": true, "message": "ok"}\n', stderr=b"")

    monkeypatch.setattr(verdicts.subprocess, "run", fake_run)
    assert judge_all([{"request": {}, "reply": {}, "title": "t"}])[0].passed
    assert {k: seen.get(k) for k in numerics.PINNED} == numerics.PINNED and seen["OMP_NUM_THREADS"] == "1"
