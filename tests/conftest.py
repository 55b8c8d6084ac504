"""Shared fixtures: an isolated result cache and one executed build per session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from book.numerics import pin

# The course's numerical path (book.numerics): set before torch's first computation, inherited by every
# notebook kernel the build and the tests start. RESIDUAL_COURSE_NATIVE_KERNELS=1 runs the suite on the CPU's
# native kernels instead: the claim tests must still pass, the bit-for-bit checks of recordings are skipped.
pin()

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def course_cache(tmp_path_factory):
    """Point the data and experiment cache at a fresh folder for this session.

    Claim tests therefore train for real; the book build (below) shares the
    folder, so a run the tests already made is not repeated by the build.
    """
    path = tmp_path_factory.mktemp("course-cache")
    old = os.environ.get("RESIDUAL_COURSE_CACHE")
    os.environ["RESIDUAL_COURSE_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("RESIDUAL_COURSE_CACHE", None)
    else:
        os.environ["RESIDUAL_COURSE_CACHE"] = old


@pytest.fixture(scope="session", autouse=True)
def single_torch_thread():
    """Tiny CPU networks run about as fast on one thread, and several threads spin when cores are busy."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def built_site(course_cache):
    """Build the whole book once (every notebook executed) and return the build log.

    Uses ``jupyter-book build --all -W -n --keep-going``: any warning or any
    failing cell makes the build exit non-zero.
    """
    jb = Path(sys.executable).parent / "jupyter-book"
    proc = subprocess.run(
        [str(jb), "build", "--all", "-W", "-n", "--keep-going", str(ROOT)],
        cwd=ROOT, capture_output=True, text=True, env=dict(os.environ),
    )
    log = proc.stdout + proc.stderr
    (ROOT / "_build").mkdir(exist_ok=True)
    (ROOT / "_build" / "build.log").write_text(log)
    return {"returncode": proc.returncode, "log": log, "html": ROOT / "_build" / "html"}


ARTIFACTS = ROOT / "test-artifacts"


def record_margins(claim: str, **values) -> None:
    """Append a claim's measured values to test-artifacts/margins.jsonl (for release notes)."""
    import json

    ARTIFACTS.mkdir(exist_ok=True)
    with open(ARTIFACTS / "margins.jsonl", "a") as f:
        f.write(json.dumps({"claim": claim, **values}) + "\n")


@pytest.fixture(scope="module")
def site(request) -> Path:
    """The executed build's html folder; ``RESIDUAL_COURSE_SITE=_build/html`` checks an existing build instead."""
    existing = os.environ.get("RESIDUAL_COURSE_SITE")
    if existing:
        return Path(existing).resolve()
    built = request.getfixturevalue("built_site")
    assert built["returncode"] == 0, built["log"][-3000:]
    return built["html"]


def fails_with(feedback, *phrases: str) -> None:
    """Assert that an exercise check's feedback is a failure whose message names each of ``phrases``."""
    from book import exercises as ex

    assert isinstance(feedback, ex.Feedback) and not feedback, repr(feedback)
    for phrase in phrases:
        assert phrase in feedback.message, f"{phrase!r} not in {feedback.message!r}"


def graded(check_name: str, fn_name: str, fn, seed: int):
    """The grader's verdict on ``fn``: answered here (the sandbox's part), judged from the plain answers alone."""
    from book.exercises import protocol

    request = {"check": check_name, "names": [fn_name], "seed": seed, "thorough": True}
    return protocol.judge(request, protocol.answer(request, {fn_name: fn}), "t")
