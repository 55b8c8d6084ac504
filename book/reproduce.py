"""Reproduce He et al.'s CIFAR-10 experiment (arXiv 1512.03385, §4.2, Table 6, Fig. 6).

    python -m book.reproduce --depth 20 56 --nets plain resnet
    torchrun --nproc_per_node 4 -m book.reproduce --depth 110     # several GPUs (DDP)
    python -m book.reproduce --synthetic 512 --iterations 50       # a seconds-long smoke run, no data

The recipe is the paper's: SGD with momentum 0.9, weight decay 1e-4, batch 128,
lr 0.1 divided by 10 at 32k and 48k iterations, stop at 64k; 4-pixel padding
with a random 32×32 crop and a random horizontal flip; per-channel
standardization. ResNet-110 warms up at lr 0.01 for its first 400 iterations.

On a GPU the script trains in mixed precision with channels_last tensors; under
``torchrun`` it trains with DistributedDataParallel (the batch of 128 is split
between the processes). It checkpoints every ``--checkpoint-every`` iterations
and resumes from the checkpoint when run again with the same settings; resuming
gives the same weights as an uninterrupted run (the batch order and the
augmentation are functions of the seed and the iteration number) — exactly on a
CPU, and up to cuDNN's nondeterministic kernels on a GPU. At the end it
writes ``results.md`` / ``results.csv`` and ``curves.png`` (Fig. 6 style).

CIFAR-10 is read from the ``cifar-10-batches-py`` folder that torchvision's
``CIFAR10(root, download=True)`` creates; ``--download`` fetches it through
torchvision when that is installed.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import pickle
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .cache import atomic_write
from .errors import ConfigError
from .nets.conv1d import validate_6n_plus_2_depth
from .nets.counting import count_parameters
from .nets.resnets import PAPER_TEST_ERROR, CifarResNet, CifarResNetConfig
from .training import TrainConfig, divergence, seeded

__all__ = ["RunConfig", "CifarData", "load_cifar10", "synthetic_cifar", "augment", "train_run", "main",
           "MissingDataError", "CIFAR_URL"]

CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
FOLDER = "cifar-10-batches-py"


class MissingDataError(RuntimeError):
    """CIFAR-10 is not on disk; the message says how to get it."""


# --------------------------------------------------------------------------- configuration

@dataclass
class RunConfig:
    """One training run: the paper's recipe for a plain or residual net (Table 6)."""

    depth: int = 20                      # 6n + 2 weighted layers
    net: str = "resnet"                  # "resnet" (option A shortcuts) or "plain"
    iterations: int = 64_000             # paper: 64k
    batch_size: int = 128                # paper: 128 (split across DDP processes)
    lr: float = 0.1                      # paper: 0.1
    milestones: tuple[float, ...] = (0.5, 0.75)  # lr ÷ 10 at these fractions (paper: 32k and 48k of 64k)
    momentum: float = 0.9                # paper
    weight_decay: float = 1e-4           # paper
    warmup_iterations: int = -1          # at lr/10; -1: 400 for depth ≥ 110 (the paper's ResNet-110), else 0
    widths: tuple[int, int, int] = (16, 32, 64)  # paper; smaller only for smoke tests
    seed: int = 0
    eval_every: int = 1_000              # iterations between test-set evaluations
    checkpoint_every: int = 1_000        # iterations between checkpoints

    def warmup(self) -> int:
        return (400 if self.depth >= 110 else 0) if self.warmup_iterations < 0 else self.warmup_iterations

    def lr_at(self, step: int) -> float:
        """Learning rate for 0-based iteration ``step``."""
        if step < self.warmup():
            return self.lr / 10
        drops = sum(step >= round(m * self.iterations) for m in self.milestones)
        return self.lr * 0.1**drops

    @property
    def name(self) -> str:
        return f"{'ResNet' if self.net == 'resnet' else 'plain'}-{self.depth}"

    def model(self) -> CifarResNet:
        block = "basic" if self.net == "resnet" else "plain"
        return CifarResNet(CifarResNetConfig(depth=self.depth, widths=tuple(self.widths), block=block))


# --------------------------------------------------------------------------- data

@dataclass
class CifarData:
    """uint8 images ``(N, 3, 32, 32)`` and int64 labels, train and test."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    source: str = "CIFAR-10"
    mean: torch.Tensor = field(default_factory=lambda: torch.tensor([0.4914, 0.4822, 0.4465]))
    std: torch.Tensor = field(default_factory=lambda: torch.tensor([0.2470, 0.2435, 0.2616]))


def _missing_message(root: Path) -> str:
    return (
        f"CIFAR-10 was not found in {root / FOLDER}.\n"
        f"Get it in one of these ways:\n"
        f"  * with torchvision and internet access:  python -m book.reproduce --download --data {root}\n"
        f"  * by hand: download {CIFAR_URL} (163 MB) and unpack it into {root}\n"
        f"      (the folder {root / FOLDER} must hold data_batch_1 … data_batch_5 and test_batch)\n"
        f"  * to try the script without the data set:  python -m book.reproduce --synthetic 1024 --iterations 100"
    )


def load_cifar10(root: str | Path, download: bool = False) -> CifarData:
    """Read CIFAR-10's python batches from ``root/cifar-10-batches-py``.

    Args:
        root: the folder that holds (or will hold) ``cifar-10-batches-py``.
        download: fetch the data through torchvision if it is missing.

    Raises:
        MissingDataError: the data is not there (and could not be downloaded).
    """
    root = Path(root).expanduser()
    folder = root / FOLDER
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    if not all((folder / n).exists() for n in names):
        if not download:
            raise MissingDataError(_missing_message(root))
        try:
            import torchvision
        except ImportError:
            raise MissingDataError("--download needs torchvision (pip install torchvision).\n"
                                   + _missing_message(root)) from None
        try:
            torchvision.datasets.CIFAR10(str(root), train=True, download=True)
            torchvision.datasets.CIFAR10(str(root), train=False, download=True)
        except Exception as err:  # no internet, disk full, …
            raise MissingDataError(f"downloading CIFAR-10 failed ({err}).\n" + _missing_message(root)) from None

    def read(name: str) -> tuple[np.ndarray, np.ndarray]:
        with open(folder / name, "rb") as f:
            batch = pickle.load(f, encoding="latin1")
        return np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32), np.asarray(batch["labels"])

    train = [read(n) for n in names[:5]]
    x_test, y_test = read("test_batch")
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return CifarData(torch.from_numpy(x_train), torch.from_numpy(y_train).long(),
                     torch.from_numpy(x_test), torch.from_numpy(y_test).long())


def synthetic_cifar(n_train: int = 512, n_test: int = 256, seed: int = 0) -> CifarData:
    """Random CIFAR-shaped data (uint8 ``(N, 3, 32, 32)``, 10 classes) for smoke tests.

    Each class has its own mean colour, so a net can learn something in a few steps.
    """
    gen = torch.Generator().manual_seed(seed)

    def make(n: int):
        y = torch.randint(0, 10, (n,), generator=gen)
        colours = torch.linspace(40, 215, 10)[:, None].repeat(1, 3)
        colours[:, 1] = colours[:, 1].flip(0)
        x = colours[y][:, :, None, None] + 40 * torch.randn(n, 3, 32, 32, generator=gen)
        return x.clamp(0, 255).to(torch.uint8), y

    x_train, y_train = make(n_train)
    x_test, y_test = make(n_test)
    return CifarData(x_train, y_train, x_test, y_test, source=f"synthetic ({n_train} train / {n_test} test)",
                     mean=torch.full((3,), 0.5), std=torch.full((3,), 0.25))


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """The paper's augmentation on a batch ``(B, C, 32, 32)``: pad 4, random 32×32 crop, random flip.

    The random draws come from ``gen`` (on the CPU), so a batch's augmentation
    depends only on the generator's seed, wherever the batch lives.
    """
    b, c, h, w = x.shape
    dy = torch.randint(0, 9, (b,), generator=gen).to(x.device)
    dx = torch.randint(0, 9, (b,), generator=gen).to(x.device)
    flip = (torch.rand(b, generator=gen) < 0.5).to(x.device)
    padded = F.pad(x, (4, 4, 4, 4))                                       # (B, C, 40, 40), zeros
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]   # (B, 1, 32, 1)
    cols = (dx[:, None] + torch.arange(w, device=x.device))                     # (B, 32)
    cols = torch.where(flip[:, None], cols.flip(1), cols)[:, None, None, :]     # flip = read columns backwards
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows, cols]


# --------------------------------------------------------------------------- distributed helpers

@dataclass
class Runtime:
    device: torch.device
    rank: int = 0
    world: int = 1
    amp_dtype: torch.dtype | None = None   # None: full precision
    channels_last: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_runtime(cpu: bool = False, amp: bool = True) -> Runtime:
    """Pick the device; join the process group when started by ``torchrun``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and not cpu
    if world > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
        torch.backends.cudnn.benchmark = True
        amp_dtype = None
        if amp:
            amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return Runtime(device, rank, world, amp_dtype, channels_last=True)
    return Runtime(torch.device("cpu"), rank, world)


def _all_reduce_sum(values: list[float], rt: Runtime) -> list[float]:
    if rt.world == 1:
        return values
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=rt.device)
    dist.all_reduce(t)
    return t.tolist()


# --------------------------------------------------------------------------- training

def _normalize(x: torch.Tensor, data: CifarData, rt: Runtime) -> torch.Tensor:
    mean = data.mean.to(rt.device)[None, :, None, None]
    std = data.std.to(rt.device)[None, :, None, None]
    x = (x.float() / 255 - mean) / std
    return x.contiguous(memory_format=torch.channels_last) if rt.channels_last else x


def _autocast(rt: Runtime):
    if rt.amp_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=rt.device.type, dtype=rt.amp_dtype)


@torch.no_grad()
def evaluate_test_error(model: nn.Module, data: CifarData, rt: Runtime, batch_size: int = 1000) -> float:
    """Test error (fraction) in eval mode; every process computes the same number."""
    was_training = model.training
    model.eval()
    wrong = 0
    for i in range(0, len(data.x_test), batch_size):
        x = _normalize(data.x_test[i : i + batch_size].to(rt.device), data, rt)
        with _autocast(rt):
            logits = model(x)
        wrong += (logits.argmax(1).cpu() != data.y_test[i : i + batch_size]).sum().item()
    model.train(was_training)
    return wrong / len(data.x_test)


def _checkpoint_path(out: Path, cfg: RunConfig) -> Path:
    return out / cfg.name / "checkpoint.pt"


def train_run(cfg: RunConfig, data: CifarData, out: str | Path, rt: Runtime | None = None,
              resume: bool = True, stop_after: int | None = None, progress: bool = True) -> dict:
    """Train one net with the paper's recipe; checkpoint, resume, and return its history.

    Args:
        cfg: the run's settings.
        data: CIFAR-10 (or synthetic data of its shape).
        out: results folder; the run lives in ``out/<name>/``.
        rt: device / process-group settings (:func:`setup_runtime` if ``None``).
        resume: continue from ``out/<name>/checkpoint.pt`` when its settings match.
        stop_after: stop (after checkpointing) once this many iterations are done in
            total — to split a long run into sessions.
        progress: show a progress bar (on the main process only).

    Returns:
        ``{"config", "parameters", "history": [{"iteration", "lr", "train_error", "train_loss",
        "test_error"}, …], "done": bool, "state_dict"}``.
    """
    from tqdm.auto import tqdm

    rt = rt or setup_runtime()
    out = Path(out)
    per_rank = cfg.batch_size // rt.world
    if per_rank * rt.world != cfg.batch_size:
        raise ValueError(f"batch size {cfg.batch_size} does not split evenly over {rt.world} processes.")
    n_train = len(data.x_train)
    steps_per_epoch = n_train // cfg.batch_size
    if steps_per_epoch < 1:
        raise ValueError(f"{n_train} training images are fewer than one batch of {cfg.batch_size}.")

    with seeded(cfg.seed):  # the initial weights depend only on the seed
        model = cfg.model()
    model = model.to(rt.device)
    if rt.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    # float16 needs loss scaling; bfloat16 and full precision do not.
    scaler = torch.amp.GradScaler(enabled=rt.amp_dtype == torch.float16)
    step, history = 0, []
    sums = [0.0, 0.0, 0.0]  # loss × n, wrong, n since the last evaluation (this process's batches)

    ckpt = _checkpoint_path(out, cfg)
    if resume and ckpt.exists():
        state = torch.load(ckpt, map_location=rt.device, weights_only=True)
        if state["config"] != _jsonable(asdict(cfg)):
            raise ValueError(f"{ckpt} was written with other settings; pass --fresh to start over, "
                             f"or choose another --out folder.")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        step, history, sums = state["step"], state["history"], state["sums"]
        if rt.main and progress:
            print(f"{cfg.name}: resuming from iteration {step} ({ckpt})", file=sys.stderr)

    net: nn.Module = model
    if rt.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[rt.device.index] if rt.device.type == "cuda" else None)

    x_all, y_all = data.x_train.to(rt.device), data.y_train.to(rt.device)  # uint8: 150 MB for CIFAR-10
    last = min(cfg.iterations, stop_after) if stop_after is not None else cfg.iterations
    bar = tqdm(total=cfg.iterations, initial=step, desc=cfg.name, disable=not (progress and rt.main),
               dynamic_ncols=True)
    net.train()
    while step < last:
        epoch, i = divmod(step, steps_per_epoch)
        # The batch order is a function of (seed, epoch) and the augmentation of
        # (seed, step): a resumed run sees exactly the batches it would have seen.
        perm = torch.randperm(n_train, generator=torch.Generator().manual_seed(cfg.seed * 100_003 + epoch))
        idx = perm[i * cfg.batch_size : (i + 1) * cfg.batch_size][rt.rank * per_rank : (rt.rank + 1) * per_rank]
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        idx = idx.to(rt.device)
        x = _normalize(augment(x_all[idx], gen), data, rt)
        y = y_all[idx]
        for group in opt.param_groups:
            group["lr"] = cfg.lr_at(step)
        with _autocast(rt):
            logits = net(x)
            loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        step += 1
        sums[0] += loss.item() * len(y)
        sums[1] += (logits.detach().argmax(1) != y).sum().item()
        sums[2] += len(y)
        bar.update(1)
        if step % cfg.eval_every == 0 or step == cfg.iterations:
            loss_sum, wrong, n = _all_reduce_sum(sums, rt)
            # the course's divergence rule, on the mean loss since the last evaluation (the same on every process)
            first = history[0]["train_loss"] if history else loss_sum / n
            problem = divergence(loss_sum / n, first, TrainConfig.divergence_factor)
            if problem:
                raise FloatingPointError(f"{cfg.name} diverged by iteration {step}: {problem}")
            record = {"iteration": step, "lr": cfg.lr_at(step - 1), "train_loss": loss_sum / n,
                      "train_error": wrong / n, "test_error": evaluate_test_error(model, data, rt)}
            history.append(record)
            sums = [0.0, 0.0, 0.0]
            bar.set_postfix(train_err=f"{record['train_error']:.3f}", test_err=f"{record['test_error']:.3f}")
        if rt.main and (step % cfg.checkpoint_every == 0 or step == last):
            state = {"config": _jsonable(asdict(cfg)), "model": model.state_dict(), "optimizer": opt.state_dict(),
                     "scaler": scaler.state_dict(), "step": step, "history": history, "sums": sums}
            atomic_write(ckpt, lambda f: torch.save(state, f))
    bar.close()
    return {"config": asdict(cfg), "parameters": count_parameters(model), "history": history,
            "done": step >= cfg.iterations, "state_dict": model.state_dict()}


def _jsonable(d: dict) -> dict:
    # tuples → lists, so a config compares equal after a save/load round trip
    return json.loads(json.dumps(d))


# --------------------------------------------------------------------------- reporting

def write_results(runs: list[dict], out: Path, source: str) -> None:
    """``results.md``, ``results.csv`` and ``curves.png`` (train dashed, test solid, as Fig. 6)."""
    rows = []
    for r in runs:
        cfg, hist = r["config"], r["history"]
        name = f"{'ResNet' if cfg['net'] == 'resnet' else 'plain'}-{cfg['depth']}"
        final = hist[-1] if hist else {}
        paper = PAPER_TEST_ERROR.get(cfg["depth"]) if cfg["net"] == "resnet" else None
        rows.append({"net": name, "parameters": r["parameters"], "iterations": final.get("iteration", 0),
                     "train_error_%": round(100 * final.get("train_error", float("nan")), 2),
                     "test_error_%": round(100 * final.get("test_error", float("nan")), 2),
                     "paper_test_error_%": "" if paper is None else paper})
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = [f"Data: {source}", "", "| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(str(v) for v in row.values()) + " |" for row in rows]
    (out / "results.md").write_text("\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax, kind in zip(axes, ("plain", "resnet")):
        for r in (r for r in runs if r["config"]["net"] == kind):
            it = [h["iteration"] / 1000 for h in r["history"]]
            (line,) = ax.plot(it, [100 * h["test_error"] for h in r["history"]], lw=2,
                              label=f"{kind}-{r['config']['depth']}")
            ax.plot(it, [100 * h["train_error"] for h in r["history"]], "--", lw=1, color=line.get_color())
        ax.set(title=f"{'plain' if kind == 'plain' else 'ResNet'} (dashed: training, solid: test)",
               xlabel="iterations (thousands)", ylabel="error (%)")
        if ax.lines:
            ax.legend()
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=120, facecolor="white")
    plt.close(fig)


# --------------------------------------------------------------------------- command line

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m book.reproduce",
        description="Train plain and residual CIFAR-10 nets with He et al.'s recipe (Table 6, Fig. 6). "
                    "Uses a GPU when present (mixed precision, channels_last); run under torchrun for "
                    "several GPUs. Checkpoints and resumes automatically.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--depth", type=int, nargs="+", default=[20, 56], help="depths 6n+2 (paper: 20 32 44 56 110)")
    p.add_argument("--nets", nargs="+", choices=["plain", "resnet"], default=["plain", "resnet"])
    p.add_argument("--iterations", type=int, default=64_000, help="paper: 64k")
    p.add_argument("--batch-size", type=int, default=128, help="global batch (paper: 128)")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--warmup", type=int, default=-1,
                   help="iterations at lr/10 first; -1: 400 for depth ≥ 110 as in the paper, else 0")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--width", type=int, default=16, help="filters of the first stage (paper: 16; stages: ×1, ×2, ×4)")
    p.add_argument("--eval-every", type=int, default=1_000)
    p.add_argument("--checkpoint-every", type=int, default=1_000)
    p.add_argument("--data", default="~/.cache/residual-course/cifar10", help="folder holding cifar-10-batches-py")
    p.add_argument("--download", action="store_true", help="download CIFAR-10 through torchvision if missing")
    p.add_argument("--synthetic", type=int, default=0, metavar="N",
                   help="train on N random CIFAR-shaped images instead (a smoke test; no data needed)")
    p.add_argument("--out", default="runs/cifar10", help="results and checkpoints folder")
    p.add_argument("--fresh", action="store_true", help="ignore existing checkpoints")
    p.add_argument("--stop-after", type=int, default=None, metavar="K",
                   help="stop each run after K iterations in total (checkpointed; run again to continue)")
    p.add_argument("--cpu", action="store_true", help="do not use a GPU even if one is present")
    p.add_argument("--no-amp", action="store_true", help="train in full precision on the GPU")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for d in args.depth:
        try:
            validate_6n_plus_2_depth(d)
        except ConfigError as err:
            build_parser().error(str(err))
    from .numerics import pin

    pin()   # on a CPU, the course's numerical path (book.numerics); a GPU's kernels are not affected
    rt = setup_runtime(cpu=args.cpu, amp=not args.no_amp)
    if args.synthetic:
        data = synthetic_cifar(args.synthetic, max(args.synthetic // 4, 10), seed=args.seed)
    else:
        try:
            if rt.world > 1 and args.download:
                # one process downloads while the others wait, then every process reads
                import torch.distributed as dist

                if rt.main:
                    with contextlib.suppress(MissingDataError):
                        load_cifar10(args.data, download=True)
                dist.barrier()
            data = load_cifar10(args.data, download=args.download and rt.world == 1)
        except MissingDataError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    out = Path(args.out)
    if rt.main and not args.quiet:
        amp = "off" if rt.amp_dtype is None else str(rt.amp_dtype).replace("torch.", "")
        print(f"data: {data.source}; device: {rt.device}; processes: {rt.world}; mixed precision: {amp}",
              file=sys.stderr)
    runs = []
    for depth in args.depth:
        for net in args.nets:
            cfg = RunConfig(depth=depth, net=net, iterations=args.iterations, batch_size=args.batch_size,
                            lr=args.lr, warmup_iterations=args.warmup, seed=args.seed,
                            widths=(args.width, 2 * args.width, 4 * args.width),
                            eval_every=args.eval_every, checkpoint_every=args.checkpoint_every)
            run = train_run(cfg, data, out, rt, resume=not args.fresh, stop_after=args.stop_after,
                            progress=not args.quiet)
            run.pop("state_dict")
            runs.append(run)
    if rt.main:
        write_results(runs, out, data.source)
        (out / "results.json").write_text(json.dumps(runs, indent=1))
        if not args.quiet:
            print((out / "results.md").read_text())
            print(f"wrote {out / 'results.md'}, {out / 'results.csv'} and {out / 'curves.png'}", file=sys.stderr)
    if rt.world > 1:
        import torch.distributed as dist

        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
