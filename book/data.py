"""MNIST-1D (Greydanus 2020, arXiv 2011.14439), generated offline and cached.

The `mnist1d` package builds the data set procedurally from ten templates, so
nothing is downloaded. Generation takes about two seconds; the arrays are then
cached on disk (see :func:`book.cache.cache_dir`) and in memory, so later loads are instant.

The tensors come back ready for in-memory training: ``x`` has shape
``(N, 1, 40)`` (batch, channels, length) as float32, standardized with the
training set's mean and standard deviation; ``y`` holds int64 labels 0–9.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass

import numpy as np
import torch

from .cache import atomic_write, cache_dir

__all__ = ["MNIST1D", "load_mnist1d"]

_MEMORY: dict[str, "MNIST1D"] = {}


@dataclass(frozen=True)
class MNIST1D:
    """Train and test tensors of MNIST-1D.

    Attributes:
        x_train: float32 ``(4000, 1, 40)``, standardized.
        y_train: int64 ``(4000,)``.
        x_test: float32 ``(1000, 1, 40)``, standardized with the train statistics.
        y_test: int64 ``(1000,)``.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def num_classes(self) -> int:
        return 10

    @property
    def length(self) -> int:
        return self.x_train.shape[-1]

    def flat(self) -> "MNIST1D":
        """The same data with the channel axis dropped: ``(N, 40)``, for MLPs."""
        return MNIST1D(self.x_train.flatten(1), self.y_train, self.x_test.flatten(1), self.y_test)


def _generate(num_samples: int, seed: int) -> dict[str, np.ndarray]:
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = num_samples
    args.seed = seed
    # make_dataset reseeds the global NumPy and `random` generators; restore them
    # so that loading data never changes a learner's random state.
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        raw = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return {k: np.asarray(raw[k]) for k in ("x", "y", "x_test", "y_test")}


def load_mnist1d(num_samples: int = 5000, seed: int = 42, cache: bool = True) -> MNIST1D:
    """Load MNIST-1D: 80 % train, 20 % test (4000 / 1000 with the defaults).

    Args:
        num_samples: total number of sequences (the package default is 5000).
        seed: the generator seed (42 is the published data set's).
        cache: read and write the on-disk cache.
    """
    key = hashlib.sha1(json.dumps([num_samples, seed, 1]).encode()).hexdigest()[:12]
    if key in _MEMORY:
        return _MEMORY[key]
    path = cache_dir() / f"mnist1d-{key}.npz"
    raw = None
    if cache and path.exists():
        try:
            with np.load(path) as f:
                raw = {k: f[k] for k in ("x", "y", "x_test", "y_test")}
        except (OSError, ValueError, KeyError):
            raw = None  # a corrupt cache file is regenerated
    if raw is None:
        raw = _generate(num_samples, seed)
        if cache:
            atomic_write(path, lambda f: np.savez(f, **raw))
    x, x_test = raw["x"].astype(np.float32), raw["x_test"].astype(np.float32)
    mean, std = x.mean(), x.std()
    data = MNIST1D(
        x_train=torch.from_numpy((x - mean) / std).unsqueeze(1),
        y_train=torch.from_numpy(raw["y"].astype(np.int64)),
        x_test=torch.from_numpy((x_test - mean) / std).unsqueeze(1),
        y_test=torch.from_numpy(raw["y_test"].astype(np.int64)),
    )
    _MEMORY[key] = data
    return data
