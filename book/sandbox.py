"""A bubblewrap sandbox for one learner's notebook: what runs inside sees only what it needs, and dies with it.

:class:`Sandbox` starts a command under `bubblewrap <https://github.com/containers/bubblewrap>`_ (Debian's
``bubblewrap`` package) with

- every namespace unshared: no network (only its own loopback), its own process list, hostname and IPC;
- a fresh root holding, read-only, the system folders (``/usr``, ``/etc``), the Python installation, the
  virtual environment and the course package, and nothing else: no home, no ``/root``, no ``/work``;
- one writable folder, the scratch folder, mounted at ``/scratch`` (also its working folder and ``HOME``),
  and a private ``/tmp``;
- limits: address space per process, CPU seconds per process, file size, and the number of processes
  (a ``pids`` cgroup when the grader runs as root, ``RLIMIT_NPROC`` otherwise);
- no capabilities, a new session (no terminal to inject into), and ``--die-with-parent``.

Leaving the ``with`` block kills the sandbox's first process; the kernel then kills every other process in its
PID namespace, detached ones included. :meth:`Sandbox.close` waits until none is left.

``Sandbox(..., isolate=False)`` runs the same command as a plain child process with the same resource limits
(the grader's ``--unsafe-no-sandbox``): nothing is hidden from it.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Limits", "Sandbox", "unavailable_reason", "HOW_TO_INSTALL", "SCRATCH"]

SCRATCH = "/scratch"    # where the scratch folder appears inside the sandbox

HOW_TO_INSTALL = ("install bubblewrap (Debian/Ubuntu: `sudo apt-get install bubblewrap`; Fedora: "
                  "`sudo dnf install bubblewrap`; Arch: `sudo pacman -S bubblewrap`) on a Linux machine whose "
                  "kernel allows user namespaces, or grade inside a Linux container or VM that has it; "
                  "on a machine you trust with a batch you trust, `--unsafe-no-sandbox` grades without one")


@dataclass
class Limits:
    """Resource limits of one sandbox (each process in it, or all of them together for ``processes``)."""

    memory_bytes: int = 3 * 2**30       # address space of each process (RLIMIT_AS)
    cpu_seconds: int = 900              # CPU time of each process (RLIMIT_CPU)
    processes: int = 128                # processes and threads alive at once, all together
    file_bytes: int = 64 * 2**20        # largest file a process may write (RLIMIT_FSIZE)
    tmp_bytes: int = 256 * 2**20        # size of the private /tmp


def _bwrap() -> str | None:
    return shutil.which("bwrap")


def _system_binds() -> list[str]:
    """Read-only system folders; merged-/usr symlinks (``/bin -> usr/bin``) stay symlinks."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    return args


def python_paths() -> list[Path]:
    """What a sandboxed Python needs read-only: its installation, the environment and the course package."""
    package = Path(__file__).resolve().parent
    paths = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), package}
    return sorted(paths)


_checked: dict[str, str | None] = {}


def unavailable_reason() -> str | None:
    """``None`` when a sandbox can start here; otherwise why not, in words."""
    if "reason" in _checked:
        return _checked["reason"]
    reason = None
    if not sys.platform.startswith("linux"):
        reason = "the sandbox needs Linux (bubblewrap)"
    elif _bwrap() is None:
        reason = "bubblewrap (`bwrap`) is not installed"
    else:
        probe = [_bwrap(), "--unshare-all", "--die-with-parent", *_system_binds(), "--proc", "/proc",
                 "--dev", "/dev", "/usr/bin/env", "true"]
        try:
            done = subprocess.run(probe, capture_output=True, text=True, timeout=30)
            if done.returncode != 0:
                reason = f"bubblewrap cannot start a sandbox here: {done.stderr.strip()[:300]}"
        except (OSError, subprocess.TimeoutExpired) as err:
            reason = f"bubblewrap cannot start a sandbox here: {err}"
    _checked["reason"] = reason
    return reason


def _pids_cgroup(limit: int) -> Path | None:
    """A fresh cgroup (v1 ``pids`` hierarchy) capping the number of processes, where the grader may make one."""
    root = Path("/sys/fs/cgroup/pids")
    if os.geteuid() != 0 or not (root / "cgroup.procs").exists() or not os.access(root, os.W_OK):
        return None
    for n in range(1000):
        group = root / f"book-grade-{os.getpid()}-{time.monotonic_ns()}-{n}"
        try:
            group.mkdir()
            (group / "pids.max").write_text(str(limit))
            return group
        except FileExistsError:
            continue
        except OSError:
            with contextlib.suppress(OSError):
                group.rmdir()
            return None
    return None


def _own_process_count() -> int:
    uid, count = os.getuid(), 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if entry.stat().st_uid == uid:
                    count += len(list((entry / "task").iterdir()))
    return count


class Sandbox:
    """One sandboxed command: ``with Sandbox(scratch, limits) as box: proc = box.start(argv, env)``."""

    def __init__(self, scratch: Path, limits: Limits | None = None, isolate: bool = True):
        self.scratch, self.limits, self.isolate = Path(scratch), limits or Limits(), isolate
        self.proc: subprocess.Popen | None = None
        self.cgroup: Path | None = None
        self.process_limit = "none"   # how the process count is capped: "cgroup", "rlimit" or "none"

    # the path the command sees for the scratch folder
    @property
    def scratch_inside(self) -> str:
        return SCRATCH if self.isolate else str(self.scratch)

    def _argv(self, argv: list[str], env: dict[str, str]) -> list[str]:
        if not self.isolate:
            return argv
        args = [_bwrap(), "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
                "--uid", "65534", "--gid", "65534", "--hostname", "sandbox", *_system_binds()]
        # The private /tmp first: bwrap mounts in order, so the binds below stay visible even when the course's
        # checkout (its environment, its package) lives under /tmp, as a fresh clone in CI may.
        args += ["--size", str(self.limits.tmp_bytes), "--tmpfs", "/tmp"]
        for path in python_paths():
            args += ["--ro-bind", str(path), str(path)]
        args += ["--proc", "/proc", "--dev", "/dev", "--bind", str(self.scratch), SCRATCH, "--chdir", SCRATCH,
                 "--clearenv"]
        for key, value in env.items():
            args += ["--setenv", key, value]
        return args + ["--", *argv]

    def start(self, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        """Start ``argv`` (stdin and stdout are pipes; stderr is dropped) with ``env`` as its whole environment."""
        limits = self.limits
        self.cgroup = _pids_cgroup(limits.processes)
        nproc = None
        if self.cgroup is not None:
            self.process_limit = "cgroup"
        elif os.geteuid() != 0:
            nproc, self.process_limit = _own_process_count() + limits.processes, "rlimit"
        cgroup = self.cgroup

        def confine():  # in the child, before bwrap (or the command) starts
            if cgroup is not None:
                (cgroup / "cgroup.procs").write_text(str(os.getpid()))
            resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
            resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds))
            resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            if nproc is not None:
                resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))

        full_env = env if self.isolate else {**env, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        self.proc = subprocess.Popen(
            self._argv(argv, env), env=full_env if not self.isolate else {"PATH": "/usr/bin:/bin"},
            cwd=self.scratch if not self.isolate else None, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, preexec_fn=confine, start_new_session=True, close_fds=True)
        return self.proc

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()

    def close(self) -> bool:
        """Kill whatever is left and wait until it is gone; ``True`` when no process of the sandbox survives."""
        self.kill()
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=30)
            for stream in (self.proc.stdin, self.proc.stdout):
                with contextlib.suppress(OSError, ValueError):
                    stream.close()
        gone = True
        if self.cgroup is not None:
            procs = self.cgroup / "cgroup.procs"
            for _ in range(200):
                with contextlib.suppress(OSError):
                    left = procs.read_text().split()
                    if not left:
                        break
                    for pid in left:  # outside a PID namespace (unsafe mode) or a straggler
                        with contextlib.suppress(OSError):
                            os.kill(int(pid), signal.SIGKILL)
                time.sleep(0.05)
            with contextlib.suppress(OSError):
                gone = not procs.read_text().split()
                self.cgroup.rmdir()
        elif not self.isolate and self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)   # the session's stragglers (those that left it survive)
        return gone

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
