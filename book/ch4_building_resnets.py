"""Chapter 4, building ResNets: what the chapter's own experiments record about the MNIST-1D nets.

The nets are :class:`~book.trained_nets.TrainedNet` specs (Chapter 1's runs plus a scaled shortcut, zero-initialised
branches or another learning rate), trained once and stored by :mod:`book.trained_nets`. This module holds the
chapter's settings and its three recordings: the nets trained on partly random labels
(``python -m book.ch4_building_resnets record-noise``), the learning-rate sweep
(``python -m book.ch4_building_resnets record-lr``) and the original against the pre-activation ResNet-110
(``python -m book.ch4_building_resnets record-preact``), with its control, the original net ending in the
pre-activation net's BatchNorm (``python -m book.ch4_building_resnets record-final-norm``).

The image ResNets of the chapter (CIFAR 6n+2, ImageNet 18–152) live in :mod:`book.nets.resnets`; the paper's
CIFAR-10 figure is ``python -m book.reproduce``.
"""

from __future__ import annotations

from dataclasses import asdict, replace

import torch

from .data import load_mnist1d
from .records import RECORDED_DIR, main, provenance, read_record, setting_problems, write_record
from .trained_nets import STUDY_DEPTH, DepthRun, TrainedNet, prefix_mismatches, run_depth, train_net
from .training import CLAIM_SEEDS, evaluate

__all__ = ["SCALED_SHORTCUT", "NOISE", "NOISE_EPOCHS", "NOISE_SEEDS", "RECORDED_NOISE",
           "noisy_training_set", "record_noisy_labels", "recorded_noisy_labels", "noisy_label_problems", "SWEEP_LRS",
           "SWEEP_DEPTHS", "SWEEP_SEEDS", "RECORDED_LR_SWEEP", "record_lr_sweep", "recorded_lr_sweep",
           "lr_sweep_problems", "PREACT_DEPTHS", "PREACT_SEEDS", "RECORDED_PREACT", "preact_specs",
           "record_preactivation", "recorded_preactivation", "preactivation_problems",
           "FINAL_NORM_DEPTH", "RECORDED_FINAL_NORM", "final_norm_spec", "record_final_norm", "recorded_final_norm",
           "final_norm_problems"]

SCALED_SHORTCUT = 0.5            # He et al. 2016's constant scaling


# --------------------------------------------------------------------------- residuals do not fix the data

NOISE = 0.5                          # share of training labels replaced by a random class
NOISE_EPOCHS = 3 * DepthRun.epochs   # three times Chapter 1's recipe, so that memorizing has time to show
NOISE_SEEDS = CLAIM_SEEDS
RECORDED_NOISE = RECORDED_DIR / "ch4_noisy_labels.json"


def noisy_training_set(data, fraction: float, seed: int):
    """``(data with a share of its training labels replaced by random classes, mask of the labels that changed)``."""
    gen = torch.Generator().manual_seed(20_000 + seed)
    y = data.y_train.clone()
    drawn = torch.rand(len(y), generator=gen) < fraction
    y[drawn] = torch.randint(0, 10, (int(drawn.sum()),), generator=gen)
    return replace(data, y_train=y), y != data.y_train


def _noisy_spec(depth: int, residual: bool, seed: int) -> DepthRun:
    """Chapter 1's recipe for :data:`NOISE_EPOCHS` epochs."""
    return DepthRun(depth=depth, residual=residual, seed=seed, epochs=NOISE_EPOCHS)


def _train_on_noisy_labels(depth: int, residual: bool, noise: float, seed: int, progress: bool) -> dict:
    spec = _noisy_spec(depth, residual, seed)
    data, changed = noisy_training_set(load_mnist1d(), noise, seed)
    model, result = train_net(spec, data=data, progress=progress,
                              description=f"{spec.label}, {noise:.0%} random labels (seed {seed})")
    memorized = 1 - evaluate(model, data.x_train[changed], data.y_train[changed])[1] if changed.any() else None
    return {"depth": depth, "residual": residual, "noise": noise, "seed": seed, "memorized": memorized,
            "changed": int(changed.sum()), **result.to_dict()}


def record_noisy_labels(path=RECORDED_NOISE, seeds=NOISE_SEEDS, progress: bool = True) -> dict:
    """Train plain-20 and ResNet-20 on clean labels and on labels with :data:`NOISE` random, and record them.

    ``python -m book.ch4_building_resnets record-noise`` (a few minutes on one core).
    """
    import time

    start = time.perf_counter()
    runs = [_train_on_noisy_labels(STUDY_DEPTH, residual, noise, seed, progress)
            for seed in seeds for residual in (False, True) for noise in (0.0, NOISE)]
    about = provenance("python -m book.ch4_building_resnets record-noise", time.perf_counter() - start,
                       depth=STUDY_DEPTH, noise=NOISE, epochs=NOISE_EPOCHS, seeds=list(seeds),
                       spec=asdict(DepthRun(epochs=NOISE_EPOCHS)))
    write_record(path, about, runs)
    return {"provenance": about, "runs": runs}


def recorded_noisy_labels(path=RECORDED_NOISE) -> dict:
    """``{(residual, noise, seed): run dict}`` from the recording, and its provenance."""
    record = read_record(path)
    return {"provenance": record["provenance"],
            "runs": {(r["residual"], r["noise"], r["seed"]): r for r in record["runs"]}}


def noisy_label_problems(record: dict, cases: int = 2, epochs: int = 2, tolerance: float = 0.0) -> list[str]:
    """Re-run the first ``epochs`` epochs of ``cases`` recorded runs; describe every mismatch (as for Chapter 1)."""
    problems = setting_problems(record, DepthRun(epochs=NOISE_EPOCHS))
    for r in record.get("runs", [])[:cases]:
        data, _ = noisy_training_set(load_mnist1d(), r["noise"], r["seed"])
        name = f"depth {r['depth']} residual={r['residual']} noise {r['noise']} seed {r['seed']}"
        problems += prefix_mismatches(_noisy_spec(r["depth"], r["residual"], r["seed"]), r, epochs, tolerance,
                                      data=data, name=name)
    return problems


# --------------------------------------------------------------------------- which learning rates work

SWEEP_LRS = (0.01, 0.03, 0.1, 0.3, 1.0)   # Chapter 1's recipe at each peak learning rate (one warm-up epoch each)
SWEEP_DEPTHS = (20, 56)
SWEEP_SEEDS = CLAIM_SEEDS
RECORDED_LR_SWEEP = RECORDED_DIR / "ch4_lr_sweep.json"


def record_lr_sweep(path=RECORDED_LR_SWEEP, seeds=SWEEP_SEEDS, progress: bool = True) -> dict:
    """Chapter 1's recipe for plain and residual nets at two depths and five learning rates; record the results.

    ``python -m book.ch4_building_resnets record-lr`` (about half an hour on one core).
    """
    import time

    start = time.perf_counter()
    runs = []
    for seed in seeds:
        for depth in SWEEP_DEPTHS:
            for residual in (False, True):
                for lr in SWEEP_LRS:
                    result = run_depth(DepthRun(depth=depth, residual=residual, seed=seed, lr=lr), progress=progress)
                    runs.append({"depth": depth, "residual": residual, "lr": lr, "seed": seed, **result.to_dict()})
    about = provenance("python -m book.ch4_building_resnets record-lr", time.perf_counter() - start,
                       depths=list(SWEEP_DEPTHS), lrs=list(SWEEP_LRS), seeds=list(seeds), spec=asdict(DepthRun()))
    write_record(path, about, runs)
    return {"provenance": about, "runs": runs}


def recorded_lr_sweep(path=RECORDED_LR_SWEEP) -> dict:
    """``{(depth, residual, lr, seed): run dict}`` from the recording, and its provenance."""
    record = read_record(path)
    return {"provenance": record["provenance"],
            "runs": {(r["depth"], r["residual"], r["lr"], r["seed"]): r for r in record["runs"]}}


def lr_sweep_problems(record: dict, cases: int = 2, epochs: int = 2, tolerance: float = 0.0) -> list[str]:
    """Re-run the first ``epochs`` epochs of ``cases`` recorded runs; describe every mismatch."""
    problems = setting_problems(record, DepthRun())
    for r in record.get("runs", [])[:cases]:
        spec = DepthRun(depth=r["depth"], residual=r["residual"], seed=r["seed"], lr=r["lr"])
        problems += prefix_mismatches(spec, r, epochs, tolerance, name=f"{spec.label} lr {spec.lr:g} seed {spec.seed}")
    return problems


# --------------------------------------------------------------------------- where the activation goes, trained

PREACT_DEPTHS = (110, 218)          # Table 2's depth, and twice as many blocks: does a gap grow with depth?
PREACT_SEEDS = (0, 1, 2, 3, 4)
RECORDED_PREACT = RECORDED_DIR / "ch4_preactivation.json"


def preact_specs(depth: int, seed: int) -> tuple[TrainedNet, TrainedNet]:
    """``(original, pre-activation)`` ResNet-``depth`` on Chapter 1's recipe: same seed, same batches."""
    return (TrainedNet(depth=depth, seed=seed), TrainedNet(depth=depth, seed=seed, preactivation=True))


def record_preactivation(path=RECORDED_PREACT, seeds=PREACT_SEEDS, progress: bool = True) -> dict:
    """Train the original and the pre-activation ResNet at :data:`PREACT_DEPTHS` on Chapter 1's recipe over
    ``seeds``; record the curves.

    ``python -m book.ch4_building_resnets record-preact`` (about half an hour on one core).
    """
    import time

    start = time.perf_counter()
    runs = []
    for seed in seeds:
        for depth in PREACT_DEPTHS:
            for spec in preact_specs(depth, seed):
                result = run_depth(spec, progress=progress)
                runs.append({"depth": depth, "preactivation": spec.preactivation, "seed": seed, **result.to_dict()})
    about = provenance("python -m book.ch4_building_resnets record-preact", time.perf_counter() - start,
                       depths=list(PREACT_DEPTHS), seeds=list(seeds), spec=asdict(DepthRun()))
    write_record(path, about, runs)
    return {"provenance": about, "runs": runs}


def recorded_preactivation(path=RECORDED_PREACT) -> dict:
    """``{(depth, preactivation, seed): run dict}`` from the recording, and its provenance."""
    record = read_record(path)
    return {"provenance": record["provenance"],
            "runs": {(r["depth"], r["preactivation"], r["seed"]): r for r in record["runs"]}}


def preactivation_problems(record: dict, cases: int = 2, epochs: int = 1, tolerance: float = 0.0) -> list[str]:
    """Re-run the first ``epochs`` epochs of ``cases`` recorded runs; describe every mismatch."""
    problems = setting_problems(record, DepthRun())
    for r in record.get("runs", [])[:cases]:
        spec = preact_specs(r["depth"], r["seed"])[int(r["preactivation"])]
        problems += prefix_mismatches(spec, r, epochs, tolerance, name=f"{spec.label} seed {spec.seed}")
    return problems


# --------------------------------------------------------------------------- the control: the ending without the blocks

FINAL_NORM_DEPTH = 218              # where the two blocks part on every seed
RECORDED_FINAL_NORM = RECORDED_DIR / "ch4_final_norm.json"


def final_norm_spec(seed: int) -> TrainedNet:
    """The original ResNet-:data:`FINAL_NORM_DEPTH` with the pre-activation net's final BatchNorm and ReLU."""
    return TrainedNet(depth=FINAL_NORM_DEPTH, seed=seed, final_norm=True)


def record_final_norm(path=RECORDED_FINAL_NORM, seeds=PREACT_SEEDS, progress: bool = True) -> dict:
    """Train :func:`final_norm_spec` on Chapter 1's recipe over ``seeds``; record the curves.

    ``python -m book.ch4_building_resnets record-final-norm`` (about a quarter of an hour on one core).
    """
    import time

    start = time.perf_counter()
    runs = []
    for seed in seeds:
        result = run_depth(final_norm_spec(seed), progress=progress)
        runs.append({"depth": FINAL_NORM_DEPTH, "seed": seed, **result.to_dict()})
    about = provenance("python -m book.ch4_building_resnets record-final-norm", time.perf_counter() - start,
                       depth=FINAL_NORM_DEPTH, seeds=list(seeds), spec=asdict(DepthRun()))
    write_record(path, about, runs)
    return {"provenance": about, "runs": runs}


def recorded_final_norm(path=RECORDED_FINAL_NORM) -> dict:
    """``{seed: run dict}`` from the recording, and its provenance."""
    record = read_record(path)
    return {"provenance": record["provenance"], "runs": {r["seed"]: r for r in record["runs"]}}


def final_norm_problems(record: dict, cases: int = 1, epochs: int = 1, tolerance: float = 0.0) -> list[str]:
    """Re-run the first ``epochs`` epochs of ``cases`` recorded runs; describe every mismatch."""
    problems = setting_problems(record, DepthRun())
    if record.get("provenance", {}).get("depth") != FINAL_NORM_DEPTH:
        problems.append("the recording's depth is not the chapter's: record it again")
    for r in record.get("runs", [])[:cases]:
        spec = final_norm_spec(r["seed"])
        problems += prefix_mismatches(spec, r, epochs, tolerance, name=f"{spec.label} seed {spec.seed}")
    return problems


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:], "book.ch4_building_resnets",
                  {"record-noise": (record_noisy_labels, RECORDED_NOISE), "record-lr": (record_lr_sweep, RECORDED_LR_SWEEP),
                   "record-preact": (record_preactivation, RECORDED_PREACT),
                   "record-final-norm": (record_final_norm, RECORDED_FINAL_NORM)}))
