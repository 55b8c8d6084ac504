"""A fast in-memory training loop with a progress bar and a divergence guard.

The whole data set lives in memory as tensors, so an epoch is a loop over
shuffled index slices: no DataLoader, no workers, no copies. The loop is
seeded (weights, shuffling) so a result is reproducible from its seed.

If the loss becomes NaN or infinite, or grows far above where it started,
training stops and the result says so (``diverged=True`` and a message) instead
of returning curves that would plot as garbage.
"""

from __future__ import annotations

import functools
import math
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["TrainConfig", "TrainResult", "train", "evaluate", "single_thread"]


@contextmanager
def single_thread():
    """Run the enclosed block on one CPU thread, then restore the previous setting.

    The course's probes and small models are narrow: a second thread gains
    little, and on a busy machine threads of several processes contend for the
    same cores and slow every step down many times over (a depth-100 probe
    measured about 6x slower with 2 threads than with 1 on a loaded 2-core machine).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _on_one_thread(fn: Callable) -> Callable:
    """Run ``fn`` inside :func:`single_thread`."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with single_thread():
            return fn(*args, **kwargs)
    return wrapper


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


@_on_one_thread
def train(
    model: nn.Module,
    data,
    config: TrainConfig | None = None,
    seed: int = 0,
    progress: bool = True,
    description: str = "training",
    on_epoch: Callable[[int, TrainResult], None] | None = None,
    stop_after: int | None = None,
) -> TrainResult:
    """Train ``model`` on ``data`` (an :class:`book.data.MNIST1D`) with SGD, on one CPU thread.

    Training error and loss are averaged over the epoch's mini-batches (in
    train mode, as the paper's curves are); test error and loss are measured
    in eval mode after each epoch.

    The course's nets are narrow: a second thread gains little, and on a busy machine two threads per process
    contend for the cores and slow every step down several times over (a plain-56 epoch measured 6.3 s on two
    threads against 2.0 s on one, with another process busy). One thread also makes a run's numbers the same
    wherever it runs on a given machine: the build, the tests and the recording commands.

    Args:
        model: any module mapping ``data.x_train`` to logits.
        data: an object with ``x_train, y_train, x_test, y_test`` tensors.
        config: the recipe; :class:`TrainConfig` defaults if ``None``.
        seed: seeds the mini-batch order (build the model under the same seed
            for a fully reproducible run; see :mod:`book.cache`).
        progress: show a tqdm progress bar (one tick per epoch).
        description: the progress bar's label.
        on_epoch: called after every epoch with ``(epoch, result_so_far)``.
        stop_after: stop after this many epochs (the schedule stays that of ``config.epochs``): the
            first epochs of a long run, to check a recorded run against the code.
    """
    from tqdm.auto import tqdm

    config = config or TrainConfig()
    result = TrainResult()
    start = time.perf_counter()
    opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                          weight_decay=config.weight_decay)
    gen = torch.Generator().manual_seed(seed)
    x, y = data.x_train, data.y_train
    n = len(x)
    first_loss = None
    bar = tqdm(range(config.epochs), desc=description, disable=not progress, leave=False)
    model.train()
    for epoch in bar:
        if stop_after is not None and epoch >= stop_after:
            break
        for group in opt.param_groups:
            group["lr"] = config.lr_at(epoch)
        perm = torch.randperm(n, generator=gen)
        loss_sum, wrong = 0.0, 0
        for i in range(0, n, config.batch_size):
            idx = perm[i : i + config.batch_size]
            logits = model(x[idx])
            loss = F.cross_entropy(logits, y[idx])
            value = loss.item()
            first_loss = value if first_loss is None else first_loss
            if not math.isfinite(value) or value > config.divergence_factor * max(first_loss, 1e-3):
                result.diverged = True
                result.message = (
                    f"diverged in epoch {epoch + 1}: the training loss reached {value:.3g} "
                    f"(it started at {first_loss:.3g}); try a smaller learning rate or a warm-up."
                )
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += value * len(idx)
            wrong += (logits.detach().argmax(1) != y[idx]).sum().item()
        if result.diverged:
            break
        result.train_loss.append(loss_sum / n)
        result.train_error.append(wrong / n)
        test_loss, test_error = evaluate(model, data.x_test, data.y_test)
        result.test_loss.append(test_loss)
        result.test_error.append(test_error)
        bar.set_postfix(train_err=f"{result.train_error[-1]:.3f}", test_err=f"{test_error:.3f}")
        if on_epoch is not None:
            on_epoch(epoch, result)
    bar.close()
    result.seconds = time.perf_counter() - start
    return result
