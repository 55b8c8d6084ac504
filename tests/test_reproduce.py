"""The CIFAR-10 reproduction script, exercised in seconds on synthetic CIFAR-shaped data."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from book import reproduce
from book.reproduce import RunConfig, augment, load_cifar10, synthetic_cifar, train_run

TINY = dict(depth=8, iterations=6, batch_size=8, widths=(4, 8, 16), eval_every=3, checkpoint_every=2)


@pytest.fixture(scope="module")
def data():
    return synthetic_cifar(n_train=32, n_test=16, seed=1)


def test_help_works():
    proc = subprocess.run([sys.executable, "-m", "book.reproduce", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert "--synthetic" in proc.stdout and "--iterations" in proc.stdout


def test_missing_data_gives_a_clear_message(tmp_path, capsys):
    rc = reproduce.main(["--data", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "CIFAR-10 was not found" in err and reproduce.CIFAR_URL in err and "--download" in err


def test_reads_the_python_batches(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), "labels": list(range(4))}
        (folder / name).write_bytes(pickle.dumps(batch))
    cifar = load_cifar10(tmp_path)
    assert cifar.x_train.shape == (20, 3, 32, 32) and cifar.x_train.dtype == torch.uint8
    assert cifar.x_test.shape == (4, 3, 32, 32) and cifar.y_train.tolist()[:4] == [0, 1, 2, 3]


def test_augment_pads_crops_and_flips():
    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).reshape(2, 3, 32, 32)
    out = augment(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    # every output row is a (possibly flipped, shifted) piece of an input row or zero padding
    same = augment(x, torch.Generator().manual_seed(0))
    assert torch.equal(out, same)


def test_augment_without_shift_or_flip_is_the_identity():
    x = torch.randn(1, 3, 32, 32)
    # find a generator draw with offset (4, 4) and no flip by brute force over seeds
    for seed in range(5000):
        g = torch.Generator().manual_seed(seed)
        dy, dx = torch.randint(0, 9, (1,), generator=g), torch.randint(0, 9, (1,), generator=g)
        flip = torch.rand(1, generator=g) < 0.5
        if dy.item() == 4 and dx.item() == 4 and not flip.item():
            assert torch.equal(augment(x, torch.Generator().manual_seed(seed)), x)
            return
    pytest.skip("no such seed found")


def test_lr_schedule_follows_the_paper():
    cfg = RunConfig(depth=110)
    assert cfg.lr_at(0) == pytest.approx(0.01)          # ResNet-110 warms up at 0.01
    assert cfg.lr_at(400) == pytest.approx(0.1)
    assert cfg.lr_at(32_000) == pytest.approx(0.01)
    assert cfg.lr_at(48_000) == pytest.approx(0.001)
    assert RunConfig(depth=20).lr_at(0) == pytest.approx(0.1)


def test_resume_gives_the_same_result_as_an_uninterrupted_run(tmp_path, data):
    cfg = RunConfig(net="resnet", **TINY)
    whole = train_run(cfg, data, tmp_path / "whole", progress=False)
    first = train_run(cfg, data, tmp_path / "split", stop_after=3, progress=False)
    assert not first["done"] and first["history"][-1]["iteration"] == 3
    rest = train_run(cfg, data, tmp_path / "split", progress=False)
    assert rest["done"]
    assert rest["history"] == whole["history"]
    for k, v in whole["state_dict"].items():
        assert torch.equal(v, rest["state_dict"][k]), k
    # the checkpoint loads with weights_only=True
    state = torch.load(tmp_path / "split" / "ResNet-8" / "checkpoint.pt", weights_only=True)
    assert state["step"] == cfg.iterations


def test_resume_refuses_other_settings(tmp_path, data):
    train_run(RunConfig(net="plain", **TINY), data, tmp_path, stop_after=2, progress=False)
    other = RunConfig(net="plain", **{**TINY, "lr": 0.05})
    with pytest.raises(ValueError, match="other settings"):
        train_run(other, data, tmp_path, progress=False)


SMOKE = ["--synthetic", "32", "--iterations", "4", "--batch-size", "8", "--depth", "8", "--width", "4",
         "--eval-every", "2", "--quiet", "--cpu"]


def test_command_line_smoke_run_writes_the_table_and_curves(tmp_path):
    rc = reproduce.main(SMOKE + ["--out", str(tmp_path)])
    assert rc == 0
    table = (tmp_path / "results.md").read_text()
    assert "plain-8" in table and "ResNet-8" in table
    assert (tmp_path / "curves.png").stat().st_size > 0 and (tmp_path / "results.csv").exists()



def test_runs_under_torchrun_with_two_processes(tmp_path):
    # DistributedDataParallel on the CPU (gloo backend): the batch of 8 is split 4 + 4.
    torchrun = Path(sys.executable).parent / "torchrun"
    if not torchrun.exists():
        pytest.skip("torchrun is not installed next to this Python")
    proc = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "book.reproduce",
                           *SMOKE, "--nets", "resnet", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ResNet-8" in (tmp_path / "results.md").read_text()
    state = torch.load(tmp_path / "ResNet-8" / "checkpoint.pt", weights_only=True)
    assert state["step"] == 4
