"""``python -m book.fingerprint``: does this machine compute the book's numbers bit for bit?

It trains the fingerprint run (plain-20, seed 0, the first two epochs of Chapter 1's schedule, one thread:
about five seconds), prints its losses and errors next to the ones recorded in
``book/recorded/fingerprint.json`` with the CPU they were recorded on, and exits 1 when they differ.
On the pinned path (:mod:`book.numerics`) with the course's torch they are identical on any x86-64 CPU with
AVX2; with another torch version, or with ``RESIDUAL_COURSE_NATIVE_KERNELS=1``, they differ, and a
learner's numbers then land within the seed-to-seed spread that the chapters report, not on the book's.

``python -m book.fingerprint --record`` writes the file anew (only where the comparison is meant to hold).
"""

from __future__ import annotations

import sys
import time

from .numerics import pin

__all__ = ["RECORDED_FINGERPRINT", "compute", "recorded", "differences", "main"]

EPOCHS = 2


def _path():
    from .records import RECORDED_DIR

    return RECORDED_DIR / "fingerprint.json"


RECORDED_FINGERPRINT = _path()


def compute() -> dict:
    """The fingerprint run's per-epoch training loss and error, exact (``repr`` of the floats)."""
    from .trained_nets import DepthRun, train_prefix
    from .training import single_thread

    with single_thread():
        result = train_prefix(DepthRun(depth=20, residual=False, seed=0), EPOCHS)
    return {"run": "plain-20, seed 0, epochs 1-2 of Chapter 1's schedule, one thread",
            "train_loss": [repr(float(v)) for v in result.train_loss],
            "train_error": [repr(float(v)) for v in result.train_error]}


def recorded(path=None) -> dict:
    """The recorded fingerprint with its provenance."""
    from .records import read_record

    return read_record(path or RECORDED_FINGERPRINT)


def differences(now: dict, then: dict) -> list[str]:
    """A sentence for each number that is not bit-identical."""
    out = []
    for key in ("train_loss", "train_error"):
        for epoch, (a, b) in enumerate(zip(now[key], then[key]), start=1):
            if a != b:
                out.append(f"epoch {epoch} {key}: {a} now, {b} recorded")
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv not in ([], ["--record"]):
        print("usage: python -m book.fingerprint [--record]")
        return 2
    pin()   # before torch's first computation
    import torch

    torch.set_num_threads(1)   # the fingerprint run's setting (and what the provenance records)

    from .numerics import describe
    from .records import provenance, write_record

    start = time.perf_counter()
    now = compute()
    seconds = time.perf_counter() - start
    path_now = describe()
    if argv == ["--record"]:
        about = provenance("python -m book.fingerprint --record", seconds, path=path_now)
        write_record(RECORDED_FINGERPRINT, about, [now])
        print(f"wrote {RECORDED_FINGERPRINT} on {about['machine']} ({path_now})")
        return 0
    record = recorded()
    then, about = record["runs"][0], record["provenance"]
    print(f"fingerprint run: {now['run']}")
    print(f"  now:      loss {', '.join(now['train_loss'])}; error {', '.join(now['train_error'])}")
    print(f"            {path_now}; torch {torch.__version__}")
    print(f"  recorded: loss {', '.join(then['train_loss'])}; error {', '.join(then['train_error'])}")
    print(f"            on {about['machine']}, {about['path']}")
    problems = differences(now, then)
    if problems:
        print("DIFFERENT: " + "; ".join(problems))
        if torch.__version__ != about["torch"]:
            print(f"(this torch is {torch.__version__}, the recording's {about['torch']}: a different torch computes "
                  "different bits; numbers land within the seed spread the chapters report)")
        return 1
    print("IDENTICAL: this machine computes the book's numbers bit for bit.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
