"""Recorded runs: results too long to compute while a chapter builds, kept in the repository with their provenance.

A recorded run is made by a command of the package (``python -m book.ch1_degradation record-long``,
``python -m book.ch3_gradient_highway record-equalized``, ``python -m book.ch5_unrolled_view record-deep``,
``python -m book.ch6_residual_stream record-sweep`` and others), never by
hand. Its file under ``book/recorded/``
holds the results and where they came from: the command, the commit, the date, the torch and Python
versions, the CPU, the thread count and the wall time. The recordings run on the pinned numerical path (:mod:`book.numerics`), which the provenance names
(``kernels``), so that any x86-64 CPU with the same torch reproduces them. A chapter reads the file and says in its text
that the figure is recorded; a test re-runs a short prefix of some runs with the current code and
checks that it reproduces the recorded numbers.
"""

from __future__ import annotations

import datetime
import json
import platform
import subprocess
from pathlib import Path

from .cache import atomic_write

__all__ = ["RECORDED_DIR", "provenance", "write_record", "read_record", "missing_provenance", "setting_problems",
           "main"]

RECORDED_DIR = Path(__file__).resolve().parent / "recorded"
PROVENANCE_FIELDS = ("command", "commit", "date", "torch", "python", "machine", "kernels", "threads", "wall_seconds")


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or what ``platform`` knows of it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance(command: str, wall_seconds: float, **settings) -> dict:
    """Where and how a recording was made, plus the settings it used (``settings`` must be JSON-able)."""
    import torch

    from .numerics import describe

    return {
        "command": command, "commit": _commit(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__, "python": platform.python_version(), "machine": cpu_name(),
        "kernels": describe(), "threads": torch.get_num_threads(), "wall_seconds": round(wall_seconds, 1), **settings,
    }


def write_record(path: Path, provenance: dict, runs: list[dict]) -> Path:
    """Write a recording atomically: ``{"provenance": …, "runs": […]}``."""
    return atomic_write(Path(path), json.dumps({"provenance": provenance, "runs": runs}, indent=1) + "\n")


def read_record(path: Path) -> dict:
    """The recording's JSON."""
    return json.loads(Path(path).read_text())


def missing_provenance(record: dict) -> list[str]:
    """A sentence for every provenance field the recording lacks."""
    given = record.get("provenance", {})
    return [f"the provenance lacks {name!r}" for name in PROVENANCE_FIELDS if name not in given]


def setting_problems(record: dict, spec) -> list[str]:
    """:func:`missing_provenance`, and a sentence if the recording's settings are not ``spec`` (a dataclass) any more."""
    import dataclasses

    problems = missing_provenance(record)
    if record.get("provenance", {}).get("spec") != json.loads(json.dumps(dataclasses.asdict(spec))):
        problems.append(f"the recording's settings are not the chapter's ({type(spec).__name__} changed): "
                        "record it again")
    return problems


def main(argv: list[str], module: str, commands: dict) -> int:
    """``python -m MODULE COMMAND``: run one recording of ``commands`` (``{name: (record, path)}``) on one thread,
    on the pinned numerical path (:mod:`book.numerics`), so that any x86-64 CPU re-runs it bit for bit."""
    import argparse

    from .numerics import describe, pin, pinned, problem
    from .training import single_thread

    parser = argparse.ArgumentParser(prog=f"python -m {module}", description="Make one of the chapter's recorded runs.")
    parser.add_argument("recording", choices=list(commands), help="which recording to make")
    name = parser.parse_args(argv).recording     # a wrong name: usage and exit status 2
    pin()   # before torch's first computation: importing the chapter module computes nothing
    if not pinned() or problem():
        print(f"refusing to record off the pinned path: {describe()}")
        return 2
    record, path = commands[name]
    with single_thread():
        about = record()["provenance"]
    print(f"wrote {path} in {about['wall_seconds']} s on {about['machine']}")
    return 0
