"""Chapter 1, the degradation problem: plain and residual 1-D conv nets trained on MNIST-1D.

The runs are :class:`~book.trained_nets.DepthRun` specs, trained once and stored by :mod:`book.trained_nets`
(Chapters 3 to 5 read the same nets). This module holds Chapter 1's own experiments: the depth sweep and the
recorded long runs (``python -m book.ch1_degradation record-long``) and the recorded runs at the paper's widths
(``python -m book.ch1_degradation record-width``).
"""

from __future__ import annotations

from dataclasses import asdict

from .records import RECORDED_DIR, main, provenance, read_record, setting_problems, write_record
from .trained_nets import DepthRun, prefix_mismatches, run_depth
from .training import CLAIM_SEEDS, TrainResult

__all__ = ["depth_sweep", "LONG_EPOCHS", "LONG_NETS", "LONG_SEEDS", "RECORDED_LONG", "record_long", "recorded_long",
           "long_run_problems", "PAPER_WIDTH", "WIDTH_NETS", "RECORDED_WIDTH", "record_width", "recorded_width",
           "width_run_problems"]


def depth_sweep(depths=(8, 20, 32, 56), residual=(False, True), seeds=(0,), progress: bool = True,
                **overrides) -> dict[tuple[int, bool, int], TrainResult]:
    """Run :func:`~book.trained_nets.run_depth` over a grid; returns ``{(depth, residual, seed): result}``."""
    return {
        (d, r, s): run_depth(DepthRun(depth=d, residual=r, seed=s, **overrides), progress=progress)
        for r in residual for d in depths for s in seeds
    }


# --------------------------------------------------------------------------- "is it just slower?": the long runs

LONG_EPOCHS = 40                      # four times the chapter's runs: long enough for the curves to flatten
LONG_NETS = ((20, False), (56, False), (20, True), (56, True))   # (depth, residual)
LONG_SEEDS = CLAIM_SEEDS               # the seeds of Chapter 1's claims
PREFIX_EPOCHS = 2                     # epochs a test re-runs to check the recording
RECORDED_LONG = RECORDED_DIR / "ch1_long_runs.json"


def record_long(path=RECORDED_LONG, seeds=LONG_SEEDS, progress: bool = True) -> dict:
    """Train plain-20/56 and ResNet-20/56 for :data:`LONG_EPOCHS` epochs and record their curves.

    ``python -m book.ch1_degradation record-long`` (about a quarter of an hour on one core).
    """
    return _record_nets(path, "record-long", seeds, progress, epochs=LONG_EPOCHS)


def _record_nets(path, command: str, seeds, progress: bool, **setting) -> dict:
    """Train :data:`LONG_NETS` with Chapter 1's settings changed by ``setting`` and write the recording."""
    import time

    start = time.perf_counter()
    runs = []
    for seed in seeds:
        for depth, residual in LONG_NETS:
            result = run_depth(DepthRun(depth=depth, residual=residual, seed=seed, **setting), progress=progress)
            runs.append({"depth": depth, "residual": residual, "seed": seed, **result.to_dict()})
    about = provenance(f"python -m book.ch1_degradation {command}", time.perf_counter() - start,
                       spec=asdict(DepthRun(**setting)), nets=[list(n) for n in LONG_NETS], seeds=list(seeds))
    write_record(path, about, runs)
    return {"provenance": about, "runs": runs}


def recorded_long(path=RECORDED_LONG) -> dict:
    """The recorded long runs: ``{"provenance": {...}, "runs": {(depth, residual, seed): TrainResult}}``."""
    return _runs_by_net(read_record(path))


def _runs_by_net(record: dict) -> dict:
    fields = set(TrainResult.__dataclass_fields__)
    runs = {(r["depth"], r["residual"], r["seed"]): TrainResult.from_dict({k: v for k, v in r.items() if k in fields})
            for r in record["runs"]}
    return {"provenance": record["provenance"], "runs": runs}


def long_run_problems(record: dict, cases: int = 2, tolerance: float = 0.0) -> list[str]:
    """Re-run the first :data:`PREFIX_EPOCHS` epochs of ``cases`` recorded runs; describe every mismatch.

    On the pinned numerical path (:mod:`book.numerics`) every x86-64 CPU computes the same bits, so the
    default ``tolerance`` is 0: errors and losses must be identical.
    """
    return _prefix_problems(record, cases, tolerance, epochs=LONG_EPOCHS)


def _prefix_problems(record: dict, cases: int, tolerance: float, **setting) -> list[str]:
    problems = setting_problems(record, DepthRun(**setting))
    for r in record.get("runs", [])[:cases]:
        spec = DepthRun(depth=r["depth"], residual=r["residual"], seed=r["seed"], **setting)
        problems += prefix_mismatches(spec, r, PREFIX_EPOCHS, tolerance)
    return problems


# --------------------------------------------------------------------------- the paper's widths

PAPER_WIDTH = 16                      # first-stage channels of He et al.'s CIFAR nets (16/32/64); the chapter uses 8
WIDTH_NETS = LONG_NETS              # the nets :func:`record_width` trains (those of the long run)
RECORDED_WIDTH = RECORDED_DIR / "ch1_paper_width.json"


def record_width(path=RECORDED_WIDTH, seeds=LONG_SEEDS, progress: bool = True) -> dict:
    """Train plain-20/56 and ResNet-20/56 with the chapter's recipe at the paper's widths and record their curves.

    ``python -m book.ch1_degradation record-width`` (about half an hour on one core).
    """
    return _record_nets(path, "record-width", seeds, progress, width=PAPER_WIDTH)


def recorded_width(path=RECORDED_WIDTH) -> dict:
    """The recorded runs at the paper's widths, in the form of :func:`recorded_long`."""
    return _runs_by_net(read_record(path))


def width_run_problems(record: dict, cases: int = 1, tolerance: float = 0.0) -> list[str]:
    """Re-run the first :data:`PREFIX_EPOCHS` epochs of ``cases`` recorded runs at the paper's widths."""
    return _prefix_problems(record, cases, tolerance, width=PAPER_WIDTH)

if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:], "book.ch1_degradation", {"record-long": (record_long, RECORDED_LONG),
                                                     "record-width": (record_width, RECORDED_WIDTH)}))
