"""The course's two training loops, and the small things every experiment shares.

- :func:`train`: SGD with momentum for the 1-D conv nets, He et al.'s CIFAR recipe (§4.2) scaled to MNIST-1D.
  The whole data set lives in memory as tensors, so an epoch is a loop over shuffled index slices: no
  DataLoader, no workers, no copies.
- :func:`train_adam`: Adam over a stream of batches, for the MLPs of Chapters 2 and 7 and the transformer of
  Chapter 6.

Both stop a run that diverges by one rule (:func:`divergence`): the loss is not a number, or it grew far above
where it started. The result then says so (``diverged=True`` and a message) instead of returning curves that
would plot as garbage.

Every run is reproducible from its seed: :func:`seeded` draws the initial weights from it, the batch order comes
from a generator seeded by it, and :func:`one_thread` runs it on one CPU thread. The claims of every chapter are
tested over :data:`CLAIM_SEEDS`.
"""

from __future__ import annotations

import functools
import math
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CLAIM_SEEDS", "single_thread", "one_thread", "seeded", "divergence", "TrainConfig", "TrainResult",
           "train", "evaluate", "AdamResult", "train_adam"]

CLAIM_SEEDS = (0, 1, 2)          # every claim of the course holds over these seeds (tests/test_ch*_claims.py)


# --------------------------------------------------------------------------- one thread, one seed, one rule

@contextmanager
def single_thread():
    """Run the enclosed block on one CPU thread, then restore the previous setting.

    The course's nets are narrow: a second thread gains little, and on a busy machine threads of several
    processes contend for the same cores and slow every step down many times over (a plain-56 epoch measured
    6.3 s on two threads against 2.0 s on one, with another process busy). One thread also makes a run's
    numbers the same wherever it runs on a given machine: the build, the tests and the recording commands.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def one_thread(fn: Callable) -> Callable:
    """Decorate ``fn`` to run inside :func:`single_thread` (every cached computation of the course does)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with single_thread():
            return fn(*args, **kwargs)
    return wrapper


@contextmanager
def seeded(seed: int):
    """Run the enclosed block with PyTorch's global generator seeded by ``seed``, then restore its state.

    Weights drawn inside depend on ``seed`` alone, and a learner's own random state is left as it was.
    Only the CPU generator is forked: the course builds every net on the CPU.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def divergence(loss: float, first: float, factor: float) -> str | None:
    """The one divergence rule of the course's loops: ``None`` while training is sane, else why it is not.

    A run has diverged when its loss is not a finite number or exceeds ``factor`` times the first batch's
    loss (floored at 1e-3, so that a first loss near 0 does not stop a run for noise).
    """
    if math.isfinite(loss) and loss <= factor * max(first, 1e-3):
        return None
    return (f"the training loss reached {loss:.3g} (it started at {first:.3g}); "
            "try a smaller learning rate or a warm-up.")


# --------------------------------------------------------------------------- SGD for the conv nets

@dataclass
class TrainConfig:
    """The paper's CIFAR recipe (He et al. 2015, §4.2), scaled down to MNIST-1D."""

    epochs: int = 12                 # passes over the 4000 training sequences
    batch_size: int = 128            # as in the paper
    lr: float = 0.1                  # as in the paper
    momentum: float = 0.9            # as in the paper
    weight_decay: float = 1e-4       # as in the paper
    milestones: tuple[float, ...] = (0.5, 0.75)  # divide lr by 10 at these fractions of training (paper: 32k/64k, 48k/64k)
    warmup_epochs: int = 0           # linear lr warm-up (the paper warms ResNet-110 up at lr 0.01)
    divergence_factor: float = 20.0  # stop when the loss exceeds this multiple of the first batch's loss

    def lr_at(self, epoch: int) -> float:
        """Learning rate for a (0-based) epoch."""
        if epoch < self.warmup_epochs:
            return self.lr * (epoch + 1) / (self.warmup_epochs + 1)
        drops = sum(epoch >= round(m * self.epochs) for m in self.milestones)
        return self.lr * 0.1**drops


@dataclass
class TrainResult:
    """Per-epoch curves. Errors are fractions in [0, 1]."""

    train_loss: list[float] = field(default_factory=list)
    train_error: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_error: list[float] = field(default_factory=list)
    diverged: bool = False
    message: str = ""
    seconds: float = 0.0

    @property
    def final_train_error(self) -> float:
        return self.train_error[-1] if self.train_error else float("nan")

    @property
    def final_test_error(self) -> float:
        return self.test_error[-1] if self.test_error else float("nan")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainResult":
        return cls(**d)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> tuple[float, float]:
    """Mean cross-entropy and error rate of ``model`` in eval mode."""
    was_training = model.training
    model.eval()
    loss_sum, wrong = 0.0, 0
    for i in range(0, len(x), batch_size):
        logits = model(x[i : i + batch_size])
        loss_sum += F.cross_entropy(logits, y[i : i + batch_size], reduction="sum").item()
        wrong += (logits.argmax(1) != y[i : i + batch_size]).sum().item()
    model.train(was_training)
    return loss_sum / len(x), wrong / len(x)


@one_thread
def train(model: nn.Module, data, config: TrainConfig | None = None, seed: int = 0, progress: bool = True,
          description: str = "training", on_epoch: Callable[[int, TrainResult], None] | None = None,
          stop_after: int | None = None, before_step: Callable[[], None] | None = None) -> TrainResult:
    """Train ``model`` on ``data`` with SGD and momentum, on one CPU thread; returns the per-epoch curves.

    Training error and loss are averaged over the epoch's mini-batches (in train mode, as the paper's curves
    are); test error and loss are measured in eval mode after each epoch.

    Args:
        model: any module mapping ``data.x_train`` to logits (build it under :func:`seeded`).
        data: an object with ``x_train, y_train, x_test, y_test`` tensors (:class:`book.data.MNIST1D`).
        config: the recipe; :class:`TrainConfig` defaults if ``None``.
        seed: seeds the mini-batch order.
        progress: show a progress bar (one tick per epoch); ``description`` is its label.
        on_epoch: called after every epoch with ``(epoch, result_so_far)``.
        stop_after: stop after this many epochs, keeping the schedule of ``config.epochs``: the first
            epochs of a long run, to check a recorded run against the code.
        before_step: called after every backward pass, before the step: it may read or change the gradients
            (Chapter 3 measures and rescales them there).
    """
    config = config or TrainConfig()
    opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                          weight_decay=config.weight_decay)
    order = torch.Generator().manual_seed(seed)        # the batch order is a function of the seed alone
    x, y = data.x_train, data.y_train
    log = EpochLog(config, data, description, progress)
    model.train()
    for epoch in range(config.epochs if stop_after is None else min(stop_after, config.epochs)):
        for group in opt.param_groups:
            group["lr"] = config.lr_at(epoch)           # warm-up, then ÷10 at each milestone
        for idx in torch.randperm(len(x), generator=order).split(config.batch_size):
            logits = model(x[idx])
            loss = F.cross_entropy(logits, y[idx])
            if log.diverged(loss.item(), epoch):         # not a number, or exploding: stop and say so
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if before_step is not None:
                before_step()
            opt.step()
            log.batch(logits, y[idx])
        if log.result.diverged:
            break
        log.end_epoch(model, epoch, on_epoch)           # test loss and error, in eval mode
    return log.close()


class EpochLog:
    """The bookkeeping of :func:`train`: the epoch's sums, the divergence rule, the curves and a progress bar."""

    def __init__(self, config: TrainConfig, data, description: str, progress: bool):
        from tqdm.auto import tqdm

        self.config, self.data, self.result = config, data, TrainResult()
        self.start, self.first, self.value = time.perf_counter(), None, None
        self.loss_sum, self.wrong = 0.0, 0
        self.bar = tqdm(total=config.epochs, desc=description, disable=not progress, leave=False)

    def diverged(self, value: float, epoch: int) -> bool:
        self.value = value
        self.first = value if self.first is None else self.first
        problem = divergence(value, self.first, self.config.divergence_factor)
        if problem:
            self.result.diverged, self.result.message = True, f"diverged in epoch {epoch + 1}: {problem}"
        return problem is not None

    def batch(self, logits: torch.Tensor, y: torch.Tensor) -> None:
        self.loss_sum += self.value * len(y)
        self.wrong += (logits.detach().argmax(1) != y).sum().item()

    def end_epoch(self, model: nn.Module, epoch: int, on_epoch) -> None:
        n = len(self.data.x_train)
        self.result.train_loss.append(self.loss_sum / n)
        self.result.train_error.append(self.wrong / n)
        self.loss_sum, self.wrong = 0.0, 0
        test_loss, test_error = evaluate(model, self.data.x_test, self.data.y_test)
        self.result.test_loss.append(test_loss)
        self.result.test_error.append(test_error)
        self.bar.update(1)
        self.bar.set_postfix(train_err=f"{self.result.train_error[-1]:.3f}", test_err=f"{test_error:.3f}")
        if on_epoch is not None:
            on_epoch(epoch, self.result)

    def close(self) -> TrainResult:
        self.bar.close()
        self.result.seconds = time.perf_counter() - self.start
        return self.result


# --------------------------------------------------------------------------- Adam for the MLPs and the transformer

@dataclass
class AdamResult:
    """One loss per step that ran; ``diverged`` and a ``message`` if :func:`divergence` stopped the run."""

    losses: list[float] = field(default_factory=list)
    diverged: bool = False
    message: str = ""
    seconds: float = 0.0


@one_thread
def train_adam(model: nn.Module, batches: Iterable, loss_fn: Callable, steps: int, lr_at: Callable[[int], float],
               betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, foreach: bool | None = None,
               divergence_factor: float = 10.0, on_step: Callable | None = None, progress: bool = False,
               description: str = "training") -> AdamResult:
    """Train ``model`` with Adam for ``steps`` steps, one batch each, on one CPU thread.

    Args:
        model: the network (build it under :func:`seeded`).
        batches: yields ``(inputs, targets)``, one pair per step (draw them from a seeded generator).
        loss_fn: ``loss_fn(model(inputs), targets)``, a scalar tensor.
        steps: optimizer steps.
        lr_at: the learning rate of (0-based) step ``step``: the schedule.
        betas, eps: Adam's constants.
        foreach: Adam's multi-tensor update (``True``: one fused update for all tensors, ~15 % faster per step
            for the transformer on a CPU; ``None``: PyTorch's default).
        divergence_factor: :func:`divergence`'s factor (``math.inf``: stop only on a loss that is not a number).
        on_step: called after every step with ``(step, loss value, output, targets)``: the caller's bookkeeping.
        progress: show a progress bar; ``description`` is its label.
    """
    from tqdm.auto import tqdm

    start = time.perf_counter()
    opt = torch.optim.Adam(model.parameters(), lr=lr_at(0), betas=betas, eps=eps, foreach=foreach)
    result, first = AdamResult(), None
    bar = tqdm(zip(range(steps), batches), total=steps, desc=description, disable=not progress, leave=False)
    for step, (inputs, targets) in bar:
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        output = model(inputs)
        loss = loss_fn(output, targets)
        value = loss.item()
        first = value if first is None else first
        problem = divergence(value, first, divergence_factor)
        if problem:
            result.diverged, result.message = True, f"diverged at step {step + 1}: {problem}"
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        result.losses.append(value)
        if on_step is not None:
            on_step(step, value, output, targets)
        if step % 20 == 0:
            bar.set_postfix(loss=f"{value:.3f}")
    bar.close()
    result.seconds = time.perf_counter() - start
    return result
