"""Chapter 6, the residual stream: transformer blocks at initialization and in training, cached.

Two kinds of experiment, each a frozen spec plus a function of it:

- :class:`InitGradients` → :func:`gradients_at_init`: one forward and backward pass of
  an untrained :class:`~book.nets.transformer.Transformer` on a batch of the sort
  task. It measures, per block, the gradient norm of the feed-forward weights
  (the quantity of Xiong et al. 2020's analysis), the size of the residual
  stream after every block and how much each block changes it. Plain autograd,
  no hooks.
- :class:`TrainSpec` → :func:`run_training`: Adam (:func:`book.training.train_adam`) with an optional linear
  learning-rate warm-up on :class:`~book.sequence_task.SortTask`. A run whose
  loss becomes NaN or explodes stops and is reported as *diverged* (its curve
  is not drawn as if it meant something).

Both go through :func:`book.cache.cached`, so a page, a widget and the
claim tests never compute the same thing twice. The chapter's settings are the
module constants below; the claim tests import them, so they cannot drift.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from .cache import atomic_write, cached, forget, is_cached, result_key, result_path
from .errors import ConfigError, validate_whole_number
from .nets.transformer import Transformer, TransformerConfig, validate_transformer_config
from .records import RECORDED_DIR, main, provenance, read_record, setting_problems, write_record
from .sequence_task import SortTask, masked_cross_entropy
from .training import CLAIM_SEEDS, one_thread, seeded, train_adam

__all__ = [
    "InitGradients", "gradients_at_init", "TrainSpec", "SequenceRun", "run_training", "validate_train_spec",
    "warmup_specs", "warmup_comparison", "lr_sweep", "deep_specs", "deep_comparison", "train_in_parallel", "unevenness", "trained_transformer",
    "record_sweep", "recorded_sweep", "recording_problems", "stable_range", "RECORDED_SWEEP", "PREFIX_STEPS",
    "LENS_NORMS", "ADDITIVE_NORMS", "lens_run", "LensSpec", "logit_lens", "first_readable_block",
    "AMPLIFICATION_NORMS", "AMPLIFICATION_LR", "Amplification", "amplification",
    "INIT_DEPTHS", "CLAIM_DEPTH", "CHAPTER_LR", "CHAPTER_WARMUP", "CHAPTER_STEPS",
    "SWEEP_LRS", "SWEEP_NORMS", "DEEP_LAYERS", "DEEP_LR", "DEEP_NORMS", "TARGET_LOSS", "TASK",
]

# --------------------------------------------------------------------------- the chapter's settings

TASK = SortTask(length=8, n_symbols=16)   # chance loss ln 16 ≈ 2.77 nats per sorted token
INIT_DEPTHS = (3, 6, 12, 24)             # depths of the at-init gradient measurement
CLAIM_DEPTH = 6                           # the depth the at-init claims are tested at (Xiong et al.'s 6 layers)
CHAPTER_LR = 1e-2                         # Adam's peak learning rate for the warm-up experiment
CHAPTER_WARMUP = 50                       # warm-up steps (a quarter of training) when warm-up is on
CHAPTER_STEPS = 200                       # Adam steps of batch 32: a few seconds on one core
SWEEP_LRS = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)  # the learning-rate sweep, no warm-up (a recorded run: see below)
SWEEP_NORMS = ("post-ln", "pre-ln", "deepnorm", "rezero")
DEEP_LAYERS = 12                          # the deep stack: twice the depth, ...
DEEP_LR = 3e-3                            # ... at a learning rate where 6 post-LN layers still train
DEEP_NORMS = ("post-ln", "deepnorm", "rezero")
TARGET_LOSS = TASK.chance_loss / 4        # "learned to sort": below a quarter of the chance loss (≈ 0.69 nats);
                                          # the runs that learn end near 0.2–0.5, the ones that fail near 2.7


# --------------------------------------------------------------------------- at initialization

@dataclass(frozen=True)
class InitGradients:
    """One untrained model, one batch: gradients and the residual stream at initialization."""

    norm: str = "post-ln"     # a placement from book.nets.transformer.NORM_PLACEMENTS
    n_layer: int = 6
    n_embd: int = 32          # width of the residual stream
    n_head: int = 4
    seed: int = 0             # seeds the weights and the batch
    batch_size: int = 32      # sequences in the measured batch

    def model_config(self) -> TransformerConfig:
        return TransformerConfig(vocab_size=TASK.vocab_size, block_size=TASK.block_size, n_layer=self.n_layer,
                                 n_head=self.n_head, n_embd=self.n_embd, norm=self.norm)


@one_thread
def _gradients_at_init(spec: InitGradients) -> dict:
    with seeded(spec.seed):
        model = Transformer(spec.model_config())
    batch = TASK.fixed_batch(spec.batch_size, seed=10_000 + spec.seed)
    logits, stream = model(batch.inputs, return_stream=True)
    loss = masked_cross_entropy(logits, batch)
    ffn_weights = [w for block in model.blocks for w in (block.mlp.fc.weight, block.mlp.proj.weight)]
    grads = torch.autograd.grad(loss, ffn_weights)
    # ‖∂L/∂W_ffn‖ of block l: both FFN weight matrices together (Xiong et al.'s W^{1,l}, W^{2,l})
    grad_norms = [math.sqrt(grads[2 * l].pow(2).sum().item() + grads[2 * l + 1].pow(2).sum().item())
                  for l in range(spec.n_layer)]
    with torch.no_grad():
        # size of the stream per token, in units of sqrt(d): the RMS of its coordinates
        stream_rms = [x.pow(2).mean().sqrt().item() for x in stream]
        # how much block l changes the stream, relative to the stream it receives (per token, averaged)
        write_ratio = [((b - a).norm(dim=-1) / a.norm(dim=-1)).mean().item() for a, b in zip(stream, stream[1:])]
        # how different the tokens of a sequence still are: ‖X − 1·x̄ᵀ‖ / ‖X‖ for the (T, d) matrix X of one
        # sequence (Dong et al. 2021's residual from rank 1), averaged over sequences; 0 = every token the same
        token_spread = [((x - x.mean(dim=1, keepdim=True)).flatten(1).norm(dim=1) / x.flatten(1).norm(dim=1)).mean().item()
                        for x in stream]
    return {"grad_norms": grad_norms, "stream_rms": stream_rms, "write_ratio": write_ratio,
            "token_spread": token_spread, "loss": loss.item()}


def gradients_at_init(spec: InitGradients, disk: bool = True) -> dict:
    """Measure an untrained model (cached). Returns lists indexed by block.

    ``grad_norms[l]``: the gradient norm of block l's feed-forward weights;
    ``stream_rms[l]``: the RMS of the stream entering block l (the last entry
    is the stream leaving the top block); ``write_ratio[l]``:
    ``‖x_{l+1} − x_l‖ / ‖x_l‖``, per token, averaged; ``loss``: the loss at init.
    """
    validate_transformer_config(spec.model_config())
    return cached("transformer-init", spec, lambda: _gradients_at_init(spec), disk=disk)


def unevenness(values) -> float:
    """How uneven per-layer values are: largest / smallest (1 = perfectly even)."""
    return max(values) / min(values)


# --------------------------------------------------------------------------- training

@dataclass(frozen=True)
class TrainSpec:
    """One training run on the sort task: Adam, linear warm-up, then a constant learning rate."""

    norm: str = "post-ln"          # a placement from book.nets.transformer.NORM_PLACEMENTS
    n_layer: int = 6
    lr: float = CHAPTER_LR         # peak learning rate
    warmup_steps: int = 0          # linear warm-up from lr/warmup_steps to lr over these steps (0: none)
    steps: int = CHAPTER_STEPS
    batch_size: int = 32
    n_embd: int = 32
    n_head: int = 4
    seed: int = 0                  # seeds the weights and the batches
    betas: tuple[float, float] = (0.9, 0.98)  # Adam's β₁, β₂ as in Vaswani et al. 2017
    divergence_factor: float = 10.0  # stop when the loss exceeds this multiple of the first batch's loss

    @property
    def label(self) -> str:
        warm = f", {self.warmup_steps}-step warm-up" if self.warmup_steps else ", no warm-up"
        return f"{self.norm} ×{self.n_layer}, lr {self.lr:g}{warm}"

    def model_config(self) -> TransformerConfig:
        return TransformerConfig(vocab_size=TASK.vocab_size, block_size=TASK.block_size, n_layer=self.n_layer,
                                 n_head=self.n_head, n_embd=self.n_embd, norm=self.norm)

    def lr_at(self, step: int) -> float:
        """Learning rate of (0-based) ``step``."""
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        return self.lr


def validate_train_spec(spec: TrainSpec) -> None:
    """Raise :class:`ConfigError` with a clear message if ``spec`` cannot be run."""
    validate_transformer_config(spec.model_config())
    if not (isinstance(spec.lr, (int, float)) and math.isfinite(spec.lr) and spec.lr > 0):
        raise ConfigError(f"the learning rate must be a positive number, got {spec.lr!r}.")
    for name in ("warmup_steps", "steps", "batch_size"):
        validate_whole_number(name, getattr(spec, name), minimum=0 if name == "warmup_steps" else 1)
    if spec.warmup_steps > spec.steps:
        raise ConfigError(f"warm-up ({spec.warmup_steps} steps) is longer than training ({spec.steps} steps).")


@dataclass
class SequenceRun:
    """A training run's record. ``eval_loss`` is NaN when the run diverged."""

    train_loss: list[float] = field(default_factory=list)  # one value per step
    eval_loss: float = float("nan")                        # on 512 held-out sequences, after training
    diverged: bool = False
    message: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SequenceRun":
        return cls(**d)

    def reached(self, target: float = TARGET_LOSS) -> bool:
        """Whether the run finished without diverging below ``target`` (nats per sorted token)."""
        return not self.diverged and self.eval_loss < target


_MODELS: dict[str, Transformer] = {}


@one_thread
def _train(spec: TrainSpec, progress: bool, disk: bool) -> dict:
    start = time.perf_counter()
    with seeded(spec.seed):
        model = Transformer(spec.model_config())
    sampler = torch.Generator().manual_seed(1_000 + spec.seed)
    batches = ((batch.inputs, batch) for batch in iter(lambda: TASK.sample(spec.batch_size, sampler), None))
    fit = train_adam(model, batches, masked_cross_entropy, spec.steps, spec.lr_at, betas=spec.betas, eps=1e-9,
                     foreach=True,  # one fused update for all tensors: ~15 % faster per step on a CPU
                     divergence_factor=spec.divergence_factor, progress=progress, description=spec.label)
    run = SequenceRun(train_loss=fit.losses, diverged=fit.diverged, message=fit.message)
    if not run.diverged:
        evaluation = TASK.fixed_batch(512, seed=99_999)  # never drawn in training (different generator stream)
        with torch.no_grad():
            run.eval_loss = masked_cross_entropy(model(evaluation.inputs), evaluation).item()
        if not math.isfinite(run.eval_loss):
            run.diverged, run.eval_loss = True, float("nan")
            run.message = "diverged: the held-out loss is not a number."
    run.seconds = time.perf_counter() - start
    if not run.diverged:  # keep the trained weights: the logit lens and the ablations read them
        _MODELS[result_key("transformer-train", spec)] = model.eval()
        if disk:
            state = model.state_dict()
            atomic_write(result_path("transformer-train", spec, ".pt"), lambda f: torch.save(state, f))
    out = run.to_dict()
    out["eval_loss"] = None if math.isnan(run.eval_loss) else run.eval_loss  # JSON has no NaN
    return out


def run_training(spec: TrainSpec, progress: bool = True, disk: bool = True) -> SequenceRun:
    """Train (or fetch from the cache) one :class:`TrainSpec`."""
    validate_train_spec(spec)
    result = dict(cached("transformer-train", spec, lambda: _train(spec, progress, disk), disk=disk))
    if result["eval_loss"] is None:
        result["eval_loss"] = float("nan")
    return SequenceRun.from_dict(result)


def trained_transformer(spec: TrainSpec, progress: bool = True) -> tuple[Transformer, SequenceRun]:
    """The trained model of ``spec`` (in eval mode) and its record; trains it if it is not cached.

    Raises :class:`ConfigError` for a run that diverged: it has no trained model to read.
    The returned model is shared: deep-copy it before changing it.
    """
    run = run_training(spec, progress=progress)
    if run.diverged:
        raise ConfigError(f"{spec.label} diverged ({run.message}); there is no trained model to read.")
    key = result_key("transformer-train", spec)
    if key in _MODELS:
        return _MODELS[key], run
    path = result_path("transformer-train", spec, ".pt")
    if not path.exists():  # curves cached without their weights file (removed, or a run with disk=False): train again
        forget("transformer-train", spec)
        run = run_training(spec, progress=progress)
        if key in _MODELS:
            return _MODELS[key], run
    with seeded(spec.seed):   # building draws weights: keep the caller's generator as it was
        model = Transformer(spec.model_config())
    model.load_state_dict(torch.load(path, weights_only=True))
    _MODELS[key] = model.eval()
    return _MODELS[key], run


# --------------------------------------------------------------------------- the chapter's experiments

def warmup_specs(seed: int = 0) -> dict[str, TrainSpec]:
    """Post-LN without and with warm-up and pre-LN without, at the chapter's learning rate."""
    return {
        "post-ln, no warm-up": TrainSpec(norm="post-ln", seed=seed),
        "post-ln, warm-up": TrainSpec(norm="post-ln", warmup_steps=CHAPTER_WARMUP, seed=seed),
        "pre-ln, no warm-up": TrainSpec(norm="pre-ln", seed=seed),
    }


def warmup_comparison(seed: int = 0, progress: bool = True) -> dict[str, SequenceRun]:
    """The runs of :func:`warmup_specs`, trained (or fetched from the cache)."""
    return {name: run_training(spec, progress=progress) for name, spec in warmup_specs(seed).items()}


def lr_sweep(seed: int = 0, norms=SWEEP_NORMS, lrs=SWEEP_LRS, progress: bool = True) -> dict[tuple[str, float], SequenceRun]:
    """Final held-out loss of every placement at every learning rate, no warm-up: ``{(norm, lr): run}``."""
    return {(norm, lr): run_training(TrainSpec(norm=norm, lr=lr, seed=seed), progress=progress)
            for norm in norms for lr in lrs}


# --------------------------------------------------------------------------- the recorded learning-rate sweep

RECORDED_SWEEP = RECORDED_DIR / "ch6_lr_sweep.json"
PREFIX_STEPS = 20                  # training steps a test re-runs to check the recording


def record_sweep(path: Path = RECORDED_SWEEP, seeds=CLAIM_SEEDS, progress: bool = True) -> dict:
    """Train the whole sweep (every placement × learning rate × seed) and write it with its provenance.

    ``python -m book.ch6_residual_stream record-sweep``. About two seconds a run on one core.
    """
    start = time.perf_counter()
    runs = []
    for seed in seeds:
        for (norm, lr), run in lr_sweep(seed=seed, progress=progress).items():
            runs.append({"norm": norm, "lr": lr, "seed": seed, "eval_loss": None if run.diverged else run.eval_loss,
                         "diverged": run.diverged, "steps_run": len(run.train_loss),
                         "train_loss_prefix": run.train_loss[:PREFIX_STEPS]})
    about = provenance("python -m book.ch6_residual_stream record-sweep", time.perf_counter() - start,
                       spec=asdict(TrainSpec()), norms=list(SWEEP_NORMS), lrs=list(SWEEP_LRS), seeds=list(seeds))
    write_record(path, about, runs)
    return {"provenance": about, "runs": runs}


def recorded_sweep(path: Path = RECORDED_SWEEP) -> dict:
    """The recorded sweep: ``{"provenance": {...}, "runs": {(norm, lr, seed): SequenceRun}}`` (curves: prefix only)."""
    record = read_record(path)
    runs = {}
    for r in record["runs"]:
        loss = float("nan") if r["eval_loss"] is None else r["eval_loss"]
        runs[(r["norm"], r["lr"], r["seed"])] = SequenceRun(train_loss=r["train_loss_prefix"], eval_loss=loss,
                                                            diverged=r["diverged"])
    return {"provenance": record["provenance"], "runs": runs}


def recording_problems(record: dict, cases: int = 4, tolerance: float = 0.0) -> list[str]:
    """Re-run the first :data:`PREFIX_STEPS` steps of ``cases`` recorded runs; describe every mismatch.

    ``record`` is the recorded file's JSON. The runs re-run are the first ``cases`` of the file's order
    (one per placement at the first seed and learning rate, then on). On the pinned numerical path
    (:mod:`book.numerics`) every x86-64 CPU computes the same bits, so by default the losses must be identical.
    """
    problems = setting_problems(record, TrainSpec())
    by_norm = {}
    for r in record.get("runs", []):
        by_norm.setdefault(r["norm"], r)
    for r in list(by_norm.values())[:cases]:
        spec = TrainSpec(norm=r["norm"], lr=r["lr"], seed=r["seed"], steps=PREFIX_STEPS)
        run = run_training(spec, progress=False, disk=False)
        recorded = r["train_loss_prefix"]
        if len(run.train_loss) != min(r["steps_run"], PREFIX_STEPS):
            problems.append(f"{spec.label}, seed {r['seed']}: {len(run.train_loss)} of the first {PREFIX_STEPS} "
                            f"steps ran now, {min(r['steps_run'], PREFIX_STEPS)} were recorded")
        for step, (now, then) in enumerate(zip(run.train_loss, recorded)):
            if abs(now - then) > tolerance * max(abs(then), 1e-12):
                problems.append(f"{spec.label}, seed {r['seed']}: step {step + 1} loss {now!r} now, {then!r} recorded")
                break
    return problems


def stable_range(runs: dict, norm: str, seeds=CLAIM_SEEDS, lrs=SWEEP_LRS) -> list[float]:
    """The learning rates at which ``norm`` learned to sort for every seed."""
    return [lr for lr in lrs if all(runs[(norm, lr, s)].reached() for s in seeds)]


def deep_specs(seed: int = 0, norms=DEEP_NORMS) -> dict[str, TrainSpec]:
    """The deep stack (``DEEP_LAYERS`` blocks) at ``DEEP_LR``, no warm-up: ``{norm: spec}``."""
    base = TrainSpec(n_layer=DEEP_LAYERS, lr=DEEP_LR, seed=seed)
    return {norm: replace(base, norm=norm) for norm in norms}


def deep_comparison(seed: int = 0, norms=DEEP_NORMS, progress: bool = True) -> dict[str, SequenceRun]:
    """The runs of :func:`deep_specs`, trained (or fetched from the cache): ``{norm: run}``."""
    return {norm: run_training(spec, progress=progress) for norm, spec in deep_specs(seed, norms).items()}


# --------------------------------------------------------------------------- several runs at once

def _cost(spec: TrainSpec) -> int:
    return spec.n_layer * spec.steps * spec.batch_size


def train_in_parallel(specs, processes: int | None = None) -> None:
    """Train every spec of ``specs`` that is not cached yet, ``processes`` at a time; read them with :func:`run_training`.

    Every run is on one thread (:func:`run_training`'s rule), so on a machine with two free cores two runs
    take the time of one. The runs are shared out by length (longest first, each to the least loaded
    process); this process trains the first share and a fresh Python process trains each other share into
    the same cache. A worker computes what this process would (the same code, kernels and thread count), so
    the results are the same bits. ``processes`` defaults to the cores this process may use, at most 4; a
    worker that fails leaves its share to this process.
    """
    todo = [spec for spec in dict.fromkeys(specs) if not is_cached("transformer-train", spec)]
    for spec in todo:
        validate_train_spec(spec)
    if processes is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        processes = min(cores, 4)
    shares: list[list[TrainSpec]] = [[] for _ in range(max(1, min(processes, len(todo))))]
    load = [0] * len(shares)
    for spec in sorted(todo, key=_cost, reverse=True):
        i = load.index(min(load))
        shares[i].append(spec)
        load[i] += _cost(spec)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))   # the same package and cache
    code = f"from {__name__} import _train_worker; _train_worker()"
    workers = [subprocess.Popen([sys.executable, "-c", code, json.dumps([asdict(s) for s in share])], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for share in shares[1:]]
    if workers:
        print(f"training {len(todo)} runs, {len(shares)} at a time (the bars show this process's share)")
    try:
        for spec in shares[0]:
            run_training(spec, progress=True)
        for worker, share in zip(workers, shares[1:]):
            worker.wait()
            for spec in share:             # read back from the cache; trained here if the worker failed
                run_training(spec, progress=True)
    finally:                               # an interrupted cell stops its workers too
        for worker in workers:
            if worker.poll() is None:
                worker.kill()


def _train_worker() -> None:
    """A worker of :func:`train_in_parallel`: train the specs given as JSON in ``sys.argv[1]``.

    It inherits the parent's environment, so it computes on the parent's kernel path (:mod:`book.numerics`).
    """
    for fields in json.loads(sys.argv[1]):
        run_training(TrainSpec(**{**fields, "betas": tuple(fields["betas"])}), progress=False)



# --------------------------------------------------------------------------- reading the stream (trained models)

LENS_NORMS = ("post-ln", "pre-ln")                          # the placements the chapter reads (its warm-up runs)
ADDITIVE_NORMS = ("pre-ln", "pre-ln-scaled", "rezero")     # the stream is exactly a sum of writes (no LN on it)


def lens_run(norm: str, seed: int = 0, n_layer: int = CLAIM_DEPTH) -> TrainSpec:
    """The trained model the chapter reads: the chapter's learning rate, post-LN with its warm-up (it needs one)."""
    return TrainSpec(norm=norm, n_layer=n_layer, seed=seed, warmup_steps=CHAPTER_WARMUP if norm == "post-ln" else 0)


@dataclass(frozen=True)
class LensSpec:
    """Read a trained model's stream after every block, on the held-out sequences."""

    train: TrainSpec = TrainSpec()
    eval_size: int = 512              # held-out sequences (the ones the run's eval_loss uses)


def _forward_skipping(model: Transformer, idx: torch.Tensor, skip: int | None) -> torch.Tensor:
    """Logits with block ``skip`` replaced by the identity (its write removed); ``None`` skips nothing."""
    x = model.tok_emb(idx) + model.pos_emb[: idx.shape[1]]
    for l, block in enumerate(model.blocks):
        if l != skip:
            x = block(x)
    return model.head(model.ln_f(x))


def _direct_logit_attribution(model: Transformer, stream: list[torch.Tensor], batch) -> list[float]:
    r"""Each block's write, read through the unembedding: its share of the correct token's logit margin.

    For a stream that is a sum, :math:`x_L = x_0 + \sum_l \Delta_l`, the logits are linear in the writes once
    the final LayerNorm's scale :math:`\sigma(x_L)` is fixed:
    :math:`W_U\,\gamma \odot (x_L - \mu)/\sigma = \sum_l W_U\,\gamma \odot (\Delta_l - \bar\Delta_l)/\sigma`.
    Entry 0 is the embedding's direct path; entry l the write of block l. Each is the write's contribution to
    (logit of the correct token − mean logit), averaged over the scored positions. With the bias and β terms,
    the entries add up to that margin exactly (Elhage et al. 2021's decomposition).
    """
    w = model.head.weight                                            # (V, d)
    y = batch.targets[batch.mask]                                    # (N,)
    direction = w[y] - w.mean(dim=0)                                 # (N, d): correct minus the average token
    top = stream[-1][batch.mask]                                     # (N, d)
    pieces = [stream[0]] + [b - a for a, b in zip(stream, stream[1:])]
    if isinstance(model.ln_f, nn.LayerNorm):
        sigma = (top.var(dim=-1, unbiased=False) + model.ln_f.eps).sqrt().unsqueeze(-1)   # (N, 1)
        gamma = model.ln_f.weight

        def read(piece):
            p = piece[batch.mask]
            return gamma * (p - p.mean(dim=-1, keepdim=True)) / sigma
    else:
        def read(piece):
            return piece[batch.mask]
    return [(direction * read(piece)).sum(-1).mean().item() for piece in pieces]


def logit_lens(spec: LensSpec, progress: bool = True) -> dict:
    """Decode the stream after every block with the model's own final LayerNorm and unembedding (cached).

    Returns, indexed by l = 0 (the embedding) … L (the top of the stack):
    ``accuracy[l]`` (the share of sorted positions whose next number is the argmax of the decoded stream),
    ``loss[l]`` (cross-entropy of the decoded stream), and, per block, ``ablation[l]`` (the held-out loss
    increase when block l's write is removed) and, for the additive placements, ``attribution`` (the direct
    logit attribution of the embedding and of every block, :func:`_direct_logit_attribution`).
    """
    @one_thread
    def compute() -> dict:
        from torch.nn import functional as F

        model, run = trained_transformer(spec.train, progress=progress)
        batch = TASK.fixed_batch(spec.eval_size, seed=99_999)
        with torch.no_grad():
            logits, stream = model(batch.inputs, return_stream=True)
            y = batch.targets[batch.mask]
            accuracy, loss = [], []
            for x in stream:
                decoded = model.head(model.ln_f(x))[batch.mask]
                accuracy.append((decoded.argmax(-1) == y).double().mean().item())
                loss.append(F.cross_entropy(decoded, y).item())
            base = masked_cross_entropy(logits, batch).item()
            ablation = [masked_cross_entropy(_forward_skipping(model, batch.inputs, l), batch).item() - base
                        for l in range(len(model.blocks))]
            out = {"accuracy": accuracy, "loss": loss, "ablation": ablation, "eval_loss": base}
            if spec.train.norm in ADDITIVE_NORMS:
                out["attribution"] = _direct_logit_attribution(model, stream, batch)
                margin = (logits[batch.mask] - logits[batch.mask].mean(-1, keepdim=True))
                out["margin"] = margin.gather(1, y[:, None]).mean().item()
        return out

    return cached("logit-lens", spec, compute)


def first_readable_block(accuracy: list[float], share: float = 0.9) -> int:
    """The first l at which the decoded stream reaches ``share`` of its final accuracy."""
    return next(l for l, a in enumerate(accuracy) if a >= share * accuracy[-1])


# --------------------------------------------------------------------------- update amplification at initialization

AMPLIFICATION_NORMS = ("post-ln", "pre-ln", "deepnorm", "rezero")
AMPLIFICATION_LR = 1e-4            # the size of Adam's first step on every weight


@dataclass(frozen=True)
class Amplification:
    """How far one update of fixed size moves the output of an untrained model (Liu et al. 2020, §4).

    Adam's first step moves every parameter by about ``lr`` (``m/√v = g/|g|``), whatever its gradient, so the
    update has the same size at every depth; what differs is how much the output moves in response.
    """

    norm: str = "post-ln"
    n_layer: int = CLAIM_DEPTH
    seed: int = 0
    lr: float = AMPLIFICATION_LR
    batch_size: int = 32
    n_embd: int = 32
    n_head: int = 4

    def model_config(self) -> TransformerConfig:
        return TransformerConfig(vocab_size=TASK.vocab_size, block_size=TASK.block_size, n_layer=self.n_layer,
                                 n_head=self.n_head, n_embd=self.n_embd, norm=self.norm)


@one_thread
def _amplification(spec: Amplification) -> dict:
    with seeded(spec.seed):
        model = Transformer(spec.model_config())
    batch = TASK.fixed_batch(spec.batch_size, seed=10_000 + spec.seed)
    logits = model(batch.inputs)
    loss = masked_cross_entropy(logits, batch)
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params)
    with torch.no_grad():
        for p, g in zip(params, grads):
            p -= spec.lr * torch.sign(g)          # Adam's first step: m̂/√v̂ = g/|g|
        moved = model(batch.inputs)
        change = ((moved - logits)[batch.mask].pow(2).mean().sqrt() / logits[batch.mask].pow(2).mean().sqrt()).item()
    return {"output_change": change, "loss_before": loss.item(),
            "loss_after": masked_cross_entropy(moved, batch).item()}


def amplification(spec: Amplification) -> dict:
    """``{"output_change": ‖Δf‖/‖f‖ of the logits after one Adam-sized step, "loss_before", "loss_after"}`` (cached)."""
    validate_transformer_config(spec.model_config())
    return cached("transformer-amplification", spec, lambda: _amplification(spec))


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:], "book.ch6_residual_stream", {"record-sweep": (record_sweep, RECORDED_SWEEP)}))
