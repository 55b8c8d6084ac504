"""Cached experiments: the runs behind the chapters, widgets and claim tests.

Every experiment is a frozen dataclass (its *spec*) plus a function that
computes a JSON-able result from it. :func:`cached` stores results in memory
and on disk under :func:`book.data.cache_dir`, keyed by the spec and by a
fingerprint of the package's source code, so

- revisiting a setting in a widget or re-running a page is instant, and
- editing the package invalidates old results instead of showing stale ones.

Set ``$RESIDUAL_COURSE_CACHE`` to a fresh folder to measure a cold run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import torch

from .data import cache_dir, load_mnist1d
from .models import ConvNet1d, ConvNetConfig, _check_conv_config
from .training import TrainConfig, TrainResult, train

__all__ = ["cached", "is_cached", "single_thread", "trained_model", "code_fingerprint", "DepthRun", "run_depth", "depth_sweep", "clear_memory_cache"]

_MEMORY: dict[str, dict] = {}


@lru_cache(maxsize=None)
def code_fingerprint(modules: tuple[str, ...] | None = None) -> str:
    """A hash of the package's source: of ``modules`` (names like ``"models"``), or of every file."""
    h = hashlib.sha1()
    root = Path(__file__).parent
    paths = sorted(root.rglob("*.py")) if modules is None else [root / f"{m}.py" for m in sorted(modules)]
    for path in paths:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def _key(kind: str, spec, depends: tuple[str, ...] | None = None) -> str:
    payload = dataclasses.asdict(spec) if dataclasses.is_dataclass(spec) else spec
    text = json.dumps([kind, payload, code_fingerprint(depends), torch.__version__], sort_keys=True, default=str)
    return f"{kind}-{hashlib.sha1(text.encode()).hexdigest()[:16]}"


# The modules a Chapter 1 run depends on: editing anything else keeps its cached results.
DEPTH_RUN_CODE = ("data", "models", "training", "experiments")


def cached(kind: str, spec, compute: Callable[[], dict], disk: bool = True,
           depends: tuple[str, ...] | None = None) -> dict:
    """Return ``compute()`` for ``spec``, computing it at most once per code version.

    Args:
        kind: a short name for the experiment family (part of the file name).
        spec: a dataclass (or JSON-able value) that fully determines the result.
        compute: builds the result; it must return something ``json.dumps`` accepts.
        disk: also read and write the on-disk cache.
        depends: the package modules the result depends on (default: all of them).
    """
    key = _key(kind, spec, depends)
    if key in _MEMORY:
        return _MEMORY[key]
    path = cache_dir() / "experiments" / f"{key}.json"
    if disk and path.exists():
        try:
            _MEMORY[key] = json.loads(path.read_text())
            return _MEMORY[key]
        except (OSError, ValueError):
            pass  # a corrupt file is recomputed
    result = compute()
    _MEMORY[key] = result
    if disk:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(result))
        os.replace(tmp, path)
    return result


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


def is_cached(kind: str, spec, depends: tuple[str, ...] | None = None) -> bool:
    """Whether ``spec`` has a result in memory or on disk (nothing is computed)."""
    key = _key(kind, spec, depends)
    return key in _MEMORY or (cache_dir() / "experiments" / f"{key}.json").exists()


def clear_memory_cache() -> None:
    """Forget in-memory results (the disk cache stays)."""
    _MEMORY.clear()


# --------------------------------------------------------------------------- Chapter 1

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


def _weights_path(spec: DepthRun) -> Path:
    return cache_dir() / "experiments" / f"{_key('depth', spec, DEPTH_RUN_CODE)}.pt"


def _train_depth_run(spec: DepthRun, progress: bool) -> dict:
    data = load_mnist1d()
    with torch.random.fork_rng():
        torch.manual_seed(spec.seed)  # same seed → same initial weights and batch order
        model = ConvNet1d(spec.model_config())
        result = train(model, data, spec.train_config(), seed=spec.seed, progress=progress,
                       description=f"{spec.label} (seed {spec.seed})")
    path = _weights_path(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    _MODELS[_key("depth", spec, DEPTH_RUN_CODE)] = model.eval()
    return result.to_dict()


_MODELS: dict[str, ConvNet1d] = {}


def run_depth(spec: DepthRun, progress: bool = True, disk: bool = True) -> TrainResult:
    """Train (or fetch from the cache) one :class:`DepthRun`."""
    # Validate before touching the cache so a bad setting raises ConfigError at once.
    _check_conv_config(spec.model_config())
    if not isinstance(spec.seed, int) or spec.seed < 0:
        from .models import ConfigError
        raise ConfigError(f"seed must be a whole number ≥ 0, got {spec.seed!r}.")
    return TrainResult.from_dict(cached("depth", spec, lambda: _train_depth_run(spec, progress), disk=disk,
                                        depends=DEPTH_RUN_CODE))


def trained_model(spec: DepthRun, progress: bool = True) -> ConvNet1d:
    """The trained network of a :class:`DepthRun` (trained now if not cached), in eval mode."""
    key = _key("depth", spec, DEPTH_RUN_CODE)
    if key in _MODELS:
        return _MODELS[key]
    path = _weights_path(spec)
    if not path.exists():
        _MEMORY.pop(key, None)  # curves without weights: train again
        (cache_dir() / "experiments" / f"{key}.json").unlink(missing_ok=True)
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
