"""Chapter 1, the degradation problem: plain and residual 1-D conv nets trained on MNIST-1D.

One :class:`DepthRun` is one training run with the chapter's settings (He et
al.'s CIFAR recipe scaled to MNIST-1D and a CPU). Its curves and its weights
are cached (:mod:`book.cache`), so the chapter, its explorer
(:mod:`book.ch1_widgets`), the later chapters that reuse these nets and the
claim tests train each setting once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from .cache import atomic_write, cached, forget, result_key, result_path
from .records import RECORDED_DIR, main, provenance, read_record, setting_problems, write_record
from .data import load_mnist1d
from .errors import check_whole_number
from .nets.conv1d import ConvNet1d, ConvNetConfig, check_conv_config
from .training import TrainConfig, TrainResult, train

__all__ = ["DepthRun", "run_depth", "trained_model", "depth_sweep", "LONG_EPOCHS", "LONG_NETS", "LONG_SEEDS",
           "RECORDED_LONG", "record_long", "recorded_long", "long_run_problems", "train_prefix", "prefix_mismatches"]


@dataclass(frozen=True)
class DepthRun:
    """One training run of Chapter 1: a plain or residual ConvNet1d on MNIST-1D.

    The defaults are the chapter's settings: He et al.'s CIFAR recipe (SGD,
    momentum 0.9, weight decay 1e-4, batch 128, lr 0.1 divided by 10 at 50 % and
    75 % of training, one warm-up epoch) scaled down to MNIST-1D and a CPU.
    """

    depth: int = 20                      # weighted layers, 6n+2
    residual: bool = False
    seed: int = 0
    width: int = 8                       # channels of the first stage; the stages have width·(1, 2, 4)
                                         # (the paper: 16/32/64; halved to fit a CPU budget)
    epochs: int = 10
    warmup_epochs: int = 1
    lr: float = 0.1
    batch_size: int = 128

    @property
    def label(self) -> str:
        return f"{'ResNet' if self.residual else 'plain'}-{self.depth}"

    @property
    def widths(self) -> tuple[int, int, int]:
        return (self.width, 2 * self.width, 4 * self.width)

    def model_config(self) -> ConvNetConfig:
        return ConvNetConfig(depth=self.depth, residual=self.residual, widths=self.widths)

    def train_config(self) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, warmup_epochs=self.warmup_epochs, lr=self.lr,
                           batch_size=self.batch_size)


def _train_depth_run(spec: DepthRun, progress: bool) -> dict:
    data = load_mnist1d()
    with torch.random.fork_rng():
        torch.manual_seed(spec.seed)  # same seed → same initial weights and batch order
        model = ConvNet1d(spec.model_config())
        result = train(model, data, spec.train_config(), seed=spec.seed, progress=progress,
                       description=f"{spec.label} (seed {spec.seed})")
    atomic_write(result_path("depth", spec, ".pt"), lambda f: torch.save(model.state_dict(), f))
    _MODELS[result_key("depth", spec)] = model.eval()
    return result.to_dict()


_MODELS: dict[str, ConvNet1d] = {}


def run_depth(spec: DepthRun, progress: bool = True, disk: bool = True) -> TrainResult:
    """Train (or fetch from the cache) one :class:`DepthRun`."""
    # Validate before touching the cache so a bad setting raises ConfigError at once.
    check_conv_config(spec.model_config())
    check_whole_number("seed", spec.seed, minimum=0)
    return TrainResult.from_dict(cached("depth", spec, lambda: _train_depth_run(spec, progress), disk=disk))


def trained_model(spec: DepthRun, progress: bool = True) -> ConvNet1d:
    """The trained network of a :class:`DepthRun` (trained now if not cached), in eval mode."""
    key = result_key("depth", spec)
    if key in _MODELS:
        return _MODELS[key]
    path = result_path("depth", spec, ".pt")
    if not path.exists():  # curves without weights: train again
        forget("depth", spec)
        run_depth(spec, progress=progress)
        if key in _MODELS:
            return _MODELS[key]
    model = ConvNet1d(spec.model_config())
    model.load_state_dict(torch.load(path, weights_only=True))
    _MODELS[key] = model.eval()
    return _MODELS[key]


def depth_sweep(depths=(8, 20, 32, 56), residual=(False, True), seeds=(0,), progress: bool = True,
                **overrides) -> dict[tuple[int, bool, int], TrainResult]:
    """Run :func:`run_depth` over a grid; returns ``{(depth, residual, seed): result}``."""
    return {
        (d, r, s): run_depth(DepthRun(depth=d, residual=r, seed=s, **overrides), progress=progress)
        for r in residual for d in depths for s in seeds
    }


# --------------------------------------------------------------------------- "is it just slower?": the long runs

LONG_EPOCHS = 40                      # four times the chapter's runs: long enough for the curves to flatten
LONG_NETS = ((20, False), (56, False), (20, True), (56, True))   # (depth, residual)
LONG_SEEDS = (0, 1, 2)
PREFIX_EPOCHS = 2                     # epochs a test re-runs to check the recording
RECORDED_LONG = RECORDED_DIR / "ch1_long_runs.json"


def record_long(path=RECORDED_LONG, seeds=LONG_SEEDS, progress: bool = True) -> dict:
    """Train plain-20/56 and ResNet-20/56 for :data:`LONG_EPOCHS` epochs and record their curves.

    ``python -m book.ch1_degradation record-long`` (about a quarter of an hour on one core).
    """
    import time

    start = time.perf_counter()
    runs = []
    for seed in seeds:
        for depth, residual in LONG_NETS:
            spec = DepthRun(depth=depth, residual=residual, seed=seed, epochs=LONG_EPOCHS)
            result = run_depth(spec, progress=progress)
            runs.append({"depth": depth, "residual": residual, "seed": seed, **result.to_dict()})
    about = provenance("python -m book.ch1_degradation record-long", time.perf_counter() - start,
                       spec=asdict(DepthRun(epochs=LONG_EPOCHS)), nets=[list(n) for n in LONG_NETS],
                       seeds=list(seeds))
    write_record(path, about, runs)
    return {"provenance": about, "runs": runs}


def recorded_long(path=RECORDED_LONG) -> dict:
    """The recorded long runs: ``{"provenance": {...}, "runs": {(depth, residual, seed): TrainResult}}``."""
    record = read_record(path)
    fields = set(TrainResult.__dataclass_fields__)
    runs = {(r["depth"], r["residual"], r["seed"]): TrainResult.from_dict({k: v for k, v in r.items() if k in fields})
            for r in record["runs"]}
    return {"provenance": record["provenance"], "runs": runs}


def train_prefix(spec: DepthRun, epochs: int) -> TrainResult:
    """The first ``epochs`` epochs of ``spec``'s run, with its full schedule (to check a recording against the code)."""
    with torch.random.fork_rng():
        torch.manual_seed(spec.seed)
        model = ConvNet1d(spec.model_config())
        return train(model, load_mnist1d(), spec.train_config(), seed=spec.seed, progress=False, stop_after=epochs)


def long_run_problems(record: dict, cases: int = 2, tolerance: float = 0.0) -> list[str]:
    """Re-run the first :data:`PREFIX_EPOCHS` epochs of ``cases`` recorded runs; describe every mismatch.

    On the pinned numerical path (:mod:`book.numerics`) every x86-64 CPU computes the same bits, so the
    default ``tolerance`` is 0: errors and losses must be identical.
    """
    problems = setting_problems(record, DepthRun(epochs=LONG_EPOCHS))
    for r in record.get("runs", [])[:cases]:
        spec = DepthRun(depth=r["depth"], residual=r["residual"], seed=r["seed"], epochs=LONG_EPOCHS)
        problems += prefix_mismatches(spec, r, PREFIX_EPOCHS, tolerance)
    return problems


def prefix_mismatches(spec: DepthRun, recorded: dict, epochs: int, tolerance: float = 0.0) -> list[str]:
    """Train ``spec``'s first ``epochs`` epochs now and describe each epoch that disagrees with ``recorded``.

    ``recorded`` holds the run's ``train_error`` and ``train_loss`` per epoch; errors must agree within
    ``tolerance`` (absolute), losses within a relative ``tolerance`` (0 by default: the pinned path gives the
    same bits on every x86-64 CPU).
    """
    now = train_prefix(spec, epochs)
    problems = []
    for epoch in range(min(epochs, len(recorded["train_error"]))):
        then_error, now_error = recorded["train_error"][epoch], now.train_error[epoch]
        then_loss, now_loss = recorded["train_loss"][epoch], now.train_loss[epoch]
        if abs(now_error - then_error) > tolerance or abs(now_loss - then_loss) > tolerance * abs(then_loss):
            problems.append(f"{spec.label} seed {spec.seed}, epoch {epoch + 1}: training error {now_error!r} "
                            f"and loss {now_loss!r} now, {then_error!r} and {then_loss!r} recorded")
    return problems


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:], "book.ch1_degradation", {"record-long": (record_long, RECORDED_LONG)}))
