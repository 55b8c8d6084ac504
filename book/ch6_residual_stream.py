"""Chapter 6, the residual stream: transformer blocks at initialization and in training, cached.

Two kinds of experiment, each a frozen spec plus a function of it:

- :class:`InitProbe` → :func:`probe_at_init`: one forward and backward pass of
  an untrained :class:`~book.nets.transformer.Transformer` on a batch of the sort
  task. It measures, per block, the gradient norm of the feed-forward weights
  (the quantity of Xiong et al. 2020's analysis), the size of the residual
  stream after every block and how much each block changes it. Plain autograd,
  no hooks.
- :class:`TrainSpec` → :func:`run_training`: Adam with an optional linear
  learning-rate warm-up on :class:`~book.sequence_task.SortTask`. A run whose
  loss becomes NaN or explodes stops and is reported as *diverged* (its curve
  is not drawn as if it meant something).

Both go through :func:`book.cache.cached`, so a page, a widget and the
claim tests never compute the same thing twice. The chapter's settings are the
module constants below; the claim tests import them, so they cannot drift.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace

import torch

from .cache import cached
from .errors import ConfigError, check_whole_number
from .nets.transformer import Transformer, TransformerConfig, check_transformer_config
from .sequence_task import SortTask, masked_cross_entropy
from .training import single_thread

__all__ = [
    "InitProbe", "probe_at_init", "TrainSpec", "SequenceRun", "run_training", "check_train_spec",
    "warmup_comparison", "lr_sweep", "deep_comparison", "unevenness",
    "SEEDS", "PROBE_DEPTHS", "CLAIM_DEPTH", "CHAPTER_LR", "CHAPTER_WARMUP", "CHAPTER_STEPS",
    "SWEEP_LRS", "SWEEP_NORMS", "DEEP_LAYERS", "DEEP_LR", "DEEP_NORMS", "TARGET_LOSS", "TASK",
]

# --------------------------------------------------------------------------- the chapter's settings

TASK = SortTask(length=8, n_symbols=16)   # chance loss ln 16 ≈ 2.77 nats per sorted token
SEEDS = (0, 1, 2)                         # every claim holds over these
PROBE_DEPTHS = (3, 6, 12, 24)             # depths of the at-init gradient probe
CLAIM_DEPTH = 6                           # the depth the at-init claims are tested at (Xiong et al.'s 6 layers)
CHAPTER_LR = 1e-2                         # Adam's peak learning rate for the warm-up experiment
CHAPTER_WARMUP = 50                       # warm-up steps (a quarter of training) when warm-up is on
CHAPTER_STEPS = 200                       # Adam steps of batch 32: a few seconds on one core
SWEEP_LRS = (3e-3, 1e-2, 3e-2)           # the learning-rate sweep, no warm-up
SWEEP_NORMS = ("post-ln", "pre-ln", "deepnorm", "rezero")
DEEP_LAYERS = 12                          # the deep stack: twice the depth, ...
DEEP_LR = 3e-3                            # ... at a learning rate where 6 post-LN layers still train
DEEP_NORMS = ("post-ln", "deepnorm", "rezero")
TARGET_LOSS = TASK.chance_loss / 4        # "learned to sort": below a quarter of the chance loss (≈ 0.69 nats);
                                          # the runs that learn end near 0.2–0.5, the ones that fail near 2.7


# --------------------------------------------------------------------------- at initialization

@dataclass(frozen=True)
class InitProbe:
    """One untrained model, one batch: gradients and the residual stream at initialization."""

    norm: str = "post-ln"     # a placement from book.nets.transformer.NORM_PLACEMENTS
    n_layer: int = 6
    n_embd: int = 32          # width of the residual stream
    n_head: int = 4
    seed: int = 0             # seeds the weights and the batch
    batch_size: int = 32      # sequences in the probe batch

    def model_config(self) -> TransformerConfig:
        return TransformerConfig(vocab_size=TASK.vocab_size, block_size=TASK.block_size, n_layer=self.n_layer,
                                 n_head=self.n_head, n_embd=self.n_embd, norm=self.norm)


def _probe(spec: InitProbe) -> dict:
    with torch.random.fork_rng():
        torch.manual_seed(spec.seed)
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
    return {"grad_norms": grad_norms, "stream_rms": stream_rms, "write_ratio": write_ratio, "loss": loss.item()}


def probe_at_init(spec: InitProbe, disk: bool = True) -> dict:
    """Measure an untrained model (cached). Returns lists indexed by block.

    ``grad_norms[l]``: the gradient norm of block l's feed-forward weights;
    ``stream_rms[l]``: the RMS of the stream entering block l (the last entry
    is the stream leaving the top block); ``write_ratio[l]``:
    ``‖x_{l+1} − x_l‖ / ‖x_l‖``, per token, averaged; ``loss``: the loss at init.
    """
    check_transformer_config(spec.model_config())
    def compute():
        with single_thread():
            return _probe(spec)

    return cached("transformer-init", spec, compute, disk=disk)


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


def check_train_spec(spec: TrainSpec) -> None:
    """Raise :class:`ConfigError` with a clear message if ``spec`` cannot be run."""
    check_transformer_config(spec.model_config())
    if not (isinstance(spec.lr, (int, float)) and math.isfinite(spec.lr) and spec.lr > 0):
        raise ConfigError(f"the learning rate must be a positive number, got {spec.lr!r}.")
    for name in ("warmup_steps", "steps", "batch_size"):
        check_whole_number(name, getattr(spec, name), minimum=0 if name == "warmup_steps" else 1)
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


def _train(spec: TrainSpec, progress: bool) -> dict:
    from tqdm.auto import tqdm

    start = time.perf_counter()
    with torch.random.fork_rng():
        torch.manual_seed(spec.seed)
        model = Transformer(spec.model_config())
    opt = torch.optim.Adam(model.parameters(), lr=spec.lr_at(0), betas=spec.betas, eps=1e-9,
                           foreach=True)  # one fused update for all tensors: ~15 % faster per step on a CPU
    batches = torch.Generator().manual_seed(1_000 + spec.seed)
    run = SequenceRun()
    first = None
    bar = tqdm(range(spec.steps), desc=spec.label, disable=not progress, leave=False)
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = spec.lr_at(step)
        batch = TASK.sample(spec.batch_size, batches)
        loss = masked_cross_entropy(model(batch.inputs), batch)
        value = loss.item()
        first = value if first is None else first
        if not math.isfinite(value) or value > spec.divergence_factor * first:
            run.diverged = True
            run.message = (f"diverged at step {step + 1}: the loss reached {value:.3g} (it started at {first:.3g}); "
                           "try a smaller learning rate or a warm-up.")
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        run.train_loss.append(value)
        if step % 20 == 0:
            bar.set_postfix(loss=f"{value:.3f}")
    bar.close()
    if not run.diverged:
        evaluation = TASK.fixed_batch(512, seed=99_999)  # never drawn in training (different generator stream)
        with torch.no_grad():
            run.eval_loss = masked_cross_entropy(model(evaluation.inputs), evaluation).item()
        if not math.isfinite(run.eval_loss):
            run.diverged, run.eval_loss = True, float("nan")
            run.message = "diverged: the held-out loss is not a number."
    run.seconds = time.perf_counter() - start
    out = run.to_dict()
    out["eval_loss"] = None if math.isnan(run.eval_loss) else run.eval_loss  # JSON has no NaN
    return out


def run_training(spec: TrainSpec, progress: bool = True, disk: bool = True) -> SequenceRun:
    """Train (or fetch from the cache) one :class:`TrainSpec`."""
    check_train_spec(spec)
    def compute():
        with single_thread():
            return _train(spec, progress)

    result = dict(cached("transformer-train", spec, compute, disk=disk))
    if result["eval_loss"] is None:
        result["eval_loss"] = float("nan")
    return SequenceRun.from_dict(result)


# --------------------------------------------------------------------------- the chapter's experiments

def warmup_comparison(seed: int = 0, progress: bool = True) -> dict[str, SequenceRun]:
    """Post-LN without and with warm-up and pre-LN without, at the chapter's learning rate."""
    specs = {
        "post-ln, no warm-up": TrainSpec(norm="post-ln", seed=seed),
        "post-ln, warm-up": TrainSpec(norm="post-ln", warmup_steps=CHAPTER_WARMUP, seed=seed),
        "pre-ln, no warm-up": TrainSpec(norm="pre-ln", seed=seed),
    }
    return {name: run_training(spec, progress=progress) for name, spec in specs.items()}


def lr_sweep(seed: int = 0, norms=SWEEP_NORMS, lrs=SWEEP_LRS, progress: bool = True) -> dict[tuple[str, float], SequenceRun]:
    """Final held-out loss of every placement at every learning rate, no warm-up: ``{(norm, lr): run}``."""
    return {(norm, lr): run_training(TrainSpec(norm=norm, lr=lr, seed=seed), progress=progress)
            for norm in norms for lr in lrs}


def deep_comparison(seed: int = 0, norms=DEEP_NORMS, progress: bool = True) -> dict[str, SequenceRun]:
    """The deep stack (``DEEP_LAYERS`` blocks) at ``DEEP_LR``, no warm-up: ``{norm: run}``."""
    base = TrainSpec(n_layer=DEEP_LAYERS, lr=DEEP_LR, seed=seed)
    return {norm: run_training(replace(base, norm=norm), progress=progress) for norm in norms}

