"""Chapter 4, building ResNets: the MNIST-1D nets that Chapters 4 and 5 train, with their variants.

:class:`TrainedNet` is Chapter 1's :class:`~book.ch1_degradation.DepthRun`
plus what Chapter 4 varies: a scaled shortcut (He et al. 2016's constant
scaling), zero-initialised residual branches (Goyal et al. 2017) and the
learning rate. With the defaults it *is* Chapter 1's run and shares its cache.
Weights are cached too, so the lesion and path studies of Chapter 5 reuse them.

The image ResNets of the chapter (CIFAR 6n+2, ImageNet 18–152) live in
:mod:`book.nets.resnets`; the paper's CIFAR-10 figure is ``python -m book.reproduce``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from .cache import atomic_write, result_key, result_path
from .ch1_degradation import DepthRun, run_depth, train_prefix, trained_model
from .data import load_mnist1d
from .errors import ConfigError
from .nets.conv1d import ConvNet1d, ConvNetConfig, check_conv_config
from .nets.resnets import PAPER_TEST_ERROR
from .nets.shortcuts import ScaledShortcut
from .records import RECORDED_DIR, main, provenance, read_record, setting_problems, write_record
from .training import TrainResult, train

__all__ = ["CLAIM_SEEDS", "STUDY_DEPTH", "SCALED_SHORTCUT", "BAD_LR", "PAPER_TEST_ERROR", "TrainedNet", "trained_net",
           "NOISE", "NOISE_EPOCHS", "NOISE_SEEDS", "RECORDED_NOISE", "noisy_training_set", "record_noisy_labels",
           "recorded_noisy_labels", "noisy_label_problems", "SWEEP_LRS", "SWEEP_DEPTHS", "SWEEP_SEEDS",
           "RECORDED_LR_SWEEP", "record_lr_sweep", "recorded_lr_sweep", "lr_sweep_problems"]

CLAIM_SEEDS = (0, 1, 2)          # every claim is checked on these seeds
STUDY_DEPTH = 20                 # the shortcut study (and Chapter 5's lesions and path gradients) use 20-layer nets
SCALED_SHORTCUT = 0.5            # He et al. 2016's constant scaling
BAD_LR = 3.0                     # a learning rate 30× Chapter 1's


@dataclass(frozen=True)
class TrainedNet:
    """A ConvNet1d trained on MNIST-1D with Chapter 1's recipe, plus the variants Chapter 4 tries.

    With the defaults it is exactly Chapter 1's :class:`book.ch1_degradation.DepthRun`
    (same seed → same initial weights, same batches, same curves).
    """

    depth: int = 20                      # weighted layers, 6n+2
    residual: bool = True
    seed: int = 0
    shortcut_scale: float = 1.0          # 1: the clean identity; 0.5: He et al. 2016's constant scaling
    zero_init_residual: bool = False     # Goyal et al.: last BN γ = 0
    final_survival: float = 1.0          # < 1: stochastic depth (Huang et al. 2016), the last block's survival
    lr: float = DepthRun.lr              # Chapter 1's settings below
    width: int = DepthRun.width          # channels of the first stage; stages have width·(1, 2, 4)
    epochs: int = DepthRun.epochs
    warmup_epochs: int = DepthRun.warmup_epochs
    batch_size: int = DepthRun.batch_size

    @property
    def widths(self) -> tuple[int, int, int]:
        return (self.width, 2 * self.width, 4 * self.width)

    @property
    def is_chapter_one_run(self) -> bool:
        return self.shortcut_scale == 1.0 and not self.zero_init_residual and self.final_survival == 1.0

    @property
    def label(self) -> str:
        name = f"{'ResNet' if self.residual else 'plain'}-{self.depth}"
        if self.shortcut_scale != 1.0:
            name += f" (shortcut × {self.shortcut_scale:g})"
        if self.lr != DepthRun.lr:
            name += f" (lr {self.lr:g})"
        return name

    def build(self) -> ConvNet1d:
        """The untrained net (uses the global RNG: seed it first)."""
        cfg = ConvNetConfig(depth=self.depth, residual=self.residual, widths=self.widths,
                            zero_init_residual=self.zero_init_residual, final_survival=self.final_survival)
        model = ConvNet1d(cfg)
        if self.shortcut_scale != 1.0:
            if not self.residual:
                raise ConfigError("a plain net has no shortcut to scale.")
            for block in model.blocks:
                if isinstance(block.shortcut, nn.Identity):  # only the identity shortcuts, as in the paper
                    block.shortcut = ScaledShortcut(self.shortcut_scale)
        return model

    def run(self) -> DepthRun:
        return DepthRun(depth=self.depth, residual=self.residual, seed=self.seed, width=self.width,
                        epochs=self.epochs, warmup_epochs=self.warmup_epochs, lr=self.lr,
                        batch_size=self.batch_size)


_NETS: dict[str, tuple[ConvNet1d, TrainResult]] = {}


def trained_net(spec: TrainedNet, progress: bool = True) -> tuple[ConvNet1d, TrainResult]:
    """Train ``spec`` (or load its weights from the cache); returns ``(model in eval mode, curves)``.

    Weights are stored in the cache (:func:`book.cache.result_path`) keyed by the spec and the
    code its module imports, and read back with ``torch.load(weights_only=True)``.
    The returned model is shared: deep-copy it before changing it.
    """
    check_conv_config(ConvNetConfig(depth=spec.depth, residual=spec.residual, widths=spec.widths))
    key = result_key("net", spec)
    if key in _NETS:
        return _NETS[key]
    if spec.is_chapter_one_run:  # Chapter 1 trains (and caches) exactly this net: share it
        curves = run_depth(spec.run(), progress=progress)
        _NETS[key] = (trained_model(spec.run(), progress=progress), curves)
        return _NETS[key]
    path = result_path("net", spec, ".pt")
    with torch.random.fork_rng():
        torch.manual_seed(spec.seed)  # same seed → same initial weights as Chapter 1's run
        model = spec.build()
        state = None
        if path.exists():
            try:
                state = torch.load(path, weights_only=True)
            except Exception:  # a corrupt file is retrained
                state = None
        if state is None:
            result = train(model, load_mnist1d(), spec.run().train_config(), seed=spec.seed,
                           progress=progress, description=f"{spec.label} (seed {spec.seed})")
            state = {"model": model.state_dict(), "result": result.to_dict()}
            atomic_write(path, lambda f: torch.save(state, f))
        else:
            model.load_state_dict(state["model"])
    model.eval()
    _NETS[key] = (model, TrainResult.from_dict(state["result"]))
    return _NETS[key]


# --------------------------------------------------------------------------- residuals do not fix the data

NOISE = 0.5                          # share of training labels replaced by a random class
NOISE_EPOCHS = 3 * DepthRun.epochs   # three times Chapter 1's recipe, so that memorizing has time to show
NOISE_SEEDS = (0, 1, 2)
RECORDED_NOISE = RECORDED_DIR / "ch4_noisy_labels.json"


def noisy_training_set(data, fraction: float, seed: int):
    """``(data with a share of its training labels replaced by random classes, mask of the labels that changed)``."""
    from dataclasses import replace

    gen = torch.Generator().manual_seed(20_000 + seed)
    y = data.y_train.clone()
    drawn = torch.rand(len(y), generator=gen) < fraction
    y[drawn] = torch.randint(0, 10, (int(drawn.sum()),), generator=gen)
    return replace(data, y_train=y), y != data.y_train


def _noisy_run(depth: int, residual: bool, noise: float, seed: int, progress: bool, stop_after=None) -> dict:
    from .training import evaluate

    spec = DepthRun(depth=depth, residual=residual, seed=seed, epochs=NOISE_EPOCHS)
    data, changed = noisy_training_set(load_mnist1d(), noise, seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = ConvNet1d(spec.model_config())
        result = train(model, data, spec.train_config(), seed=seed, progress=progress, stop_after=stop_after,
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
    runs = [_noisy_run(STUDY_DEPTH, residual, noise, seed, progress)
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
        now = _noisy_run(r["depth"], r["residual"], r["noise"], r["seed"], progress=False, stop_after=epochs)
        for epoch in range(epochs):
            then_error, now_error = r["train_error"][epoch], now["train_error"][epoch]
            if abs(now_error - then_error) > tolerance:
                problems.append(f"depth {r['depth']} residual={r['residual']} noise {r['noise']} seed {r['seed']}, "
                                f"epoch {epoch + 1}: training error {now_error!r} now, {then_error!r} recorded")
    return problems



# --------------------------------------------------------------------------- which learning rates work

SWEEP_LRS = (0.01, 0.03, 0.1, 0.3, 1.0)   # Chapter 1's recipe at each peak learning rate (one warm-up epoch each)
SWEEP_DEPTHS = (20, 56)
SWEEP_SEEDS = (0, 1, 2)
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
        now = train_prefix(spec, epochs)
        for epoch in range(min(epochs, len(r["train_error"]))):
            if abs(now.train_error[epoch] - r["train_error"][epoch]) > tolerance:
                problems.append(f"{spec.label} lr {spec.lr:g} seed {spec.seed}, epoch {epoch + 1}: training error "
                                f"{now.train_error[epoch]!r} now, {r['train_error'][epoch]!r} recorded")
    return problems


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:], "book.ch4_building_resnets",
                  {"record-noise": (record_noisy_labels, RECORDED_NOISE), "record-lr": (record_lr_sweep, RECORDED_LR_SWEEP)}))
