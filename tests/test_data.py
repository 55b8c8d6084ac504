import random

import numpy as np
import torch

from book.cache import cache_dir
from book.data import load_mnist1d


def test_shapes_and_standardization():
    data = load_mnist1d()
    assert data.x_train.shape == (4000, 1, 40) and data.x_test.shape == (1000, 1, 40)
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert abs(data.x_train.mean().item()) < 1e-4
    assert abs(data.x_train.std().item() - 1) < 1e-3
    assert set(data.y_train.tolist()) == set(range(10))
    assert data.flat().x_train.shape == (4000, 40)


def test_generation_is_deterministic_cached_and_leaves_rng_alone(tmp_path, monkeypatch):
    import book.data as module

    monkeypatch.setenv("RESIDUAL_COURSE_CACHE", str(tmp_path))
    monkeypatch.setattr(module, "_MEMORY", {})
    np.random.seed(123)
    random.seed(123)
    before = (np.random.get_state()[1].copy(), random.getstate())
    a = load_mnist1d(num_samples=500, seed=7)
    assert (np.random.get_state()[1] == before[0]).all() and random.getstate() == before[1]
    assert list(tmp_path.glob("mnist1d-*.npz")), "the generated data set is cached on disk"
    monkeypatch.setattr(module, "_MEMORY", {})
    b = load_mnist1d(num_samples=500, seed=7)  # from the disk cache
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)


def test_corrupt_cache_is_regenerated(tmp_path, monkeypatch):
    import book.data as module

    monkeypatch.setenv("RESIDUAL_COURSE_CACHE", str(tmp_path))
    monkeypatch.setattr(module, "_MEMORY", {})
    load_mnist1d(num_samples=200, seed=1)
    for f in tmp_path.glob("mnist1d-*.npz"):
        f.write_bytes(b"not an npz file")
    monkeypatch.setattr(module, "_MEMORY", {})
    assert load_mnist1d(num_samples=200, seed=1).x_train.shape == (160, 1, 40)


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("RESIDUAL_COURSE_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c" and cache_dir().is_dir()
