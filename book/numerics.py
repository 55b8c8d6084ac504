"""One numerical path on every x86-64 CPU: the kernel choices the course pins before torch computes.

PyTorch's CPU results depend on which kernels it picks at run time. Three libraries pick by the CPU they find:

- MKL (matrix products) takes its AVX-512 code on Intel CPUs and never on AMD ones;
- ATen's vectorized kernels (BatchNorm, activations, reductions) take the widest vector unit;
- oneDNN's convolutions do the same, with their own blocking.

Each choice changes the last bits of a result, and a BatchNorm network trained with SGD turns a last-bit
difference into a different run: two epochs of plain-20 end anywhere from loss 1.50 to 1.69 on one AMD CPU,
depending only on these choices. :func:`pin` asks all three for their AVX2 code, which every x86-64 CPU of
the last decade has (Intel and AMD, Colab's included), so that the same torch version, thread count and seed
give the same bits everywhere. It cost no time where it was measured.

The choices are read from environment variables the first time each library computes, so :func:`pin`
must run before torch's first computation (importing torch is fine). Every notebook's first cell calls it;
so do the tests, the grader, the recordings and the benchmark. To opt out, set
``RESIDUAL_COURSE_NATIVE_KERNELS=1`` before starting Python: your runs then use your CPU's fastest kernels
and land within the seed-to-seed spread of the book's numbers, not on them.

Importing this module changes nothing; it does not import torch.
"""

from __future__ import annotations

import os

__all__ = ["PINNED", "OPT_OUT", "pin", "pinned", "opted_out", "kernel_path", "problem", "describe"]

#: The environment the pin sets: each library's AVX2 code path.
PINNED = {
    "MKL_CBWR": "AVX2",                # MKL's conditional numerical reproducibility: the AVX2 branch
    "ATEN_CPU_CAPABILITY": "avx2",     # ATen's dispatch of vectorized kernels
    "ONEDNN_MAX_CPU_ISA": "AVX2",      # oneDNN's (mkldnn's) convolutions and their blocking
}

#: Set to ``1`` to keep the CPU's native kernels.
OPT_OUT = "RESIDUAL_COURSE_NATIVE_KERNELS"


def opted_out(environ=None) -> bool:
    """Whether the learner asked for native kernels (``RESIDUAL_COURSE_NATIVE_KERNELS=1``)."""
    environ = os.environ if environ is None else environ
    return environ.get(OPT_OUT, "").strip().lower() in ("1", "true", "yes", "on")


def pin(environ=None) -> bool:
    """Set the AVX2 path in ``environ`` (``os.environ`` by default); ``False`` if the learner opted out.

    Call it before torch's first computation: the libraries read these variables once, on first use.
    """
    environ = os.environ if environ is None else environ
    if opted_out(environ):
        return False
    environ.update(PINNED)
    return True


def pinned(environ=None) -> bool:
    """Whether ``environ`` asks for the pinned path."""
    environ = os.environ if environ is None else environ
    return all(environ.get(name) == value for name, value in PINNED.items())


def kernel_path() -> str:
    """``"pinned-avx2"`` or ``"native-<capability>"``: the path this process computes on (part of cache keys)."""
    import torch

    live = torch.backends.cpu.get_cpu_capability().lower()
    return "pinned-avx2" if pinned() and live == "avx2" else f"native-{live}"


def problem() -> str | None:
    """Why the pin asked for is not in force (torch computed before :func:`pin`), or ``None``."""
    import torch

    live = torch.backends.cpu.get_cpu_capability()
    if pinned() and live.upper() != "AVX2":
        return (f"the pinned AVX2 path was asked for, but ATen runs {live}: torch computed before the pin "
                "(restart the kernel and run the first cell first)")
    return None


def describe() -> str:
    """One line on the path this process computes on (ATen's live capability and the pin's variables)."""
    import torch

    live = torch.backends.cpu.get_cpu_capability()
    if problem():
        return problem()
    if pinned():
        return f"pinned AVX2 path (MKL, ATen and oneDNN), torch {torch.__version__}"
    return f"native kernels ({live}), torch {torch.__version__}: numbers land within the seed spread, not on the book's"
