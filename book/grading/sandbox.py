"""A sandbox for one learner's notebook: what runs inside sees only what it needs, is never root, and dies with it.

:class:`Sandbox` runs a command in one of three modes:

``"bwrap"`` (the default) starts it under `bubblewrap <https://github.com/containers/bubblewrap>`_ (Debian's
``bubblewrap`` package):

- **never host root.** When the grader runs as root it first drops to an unprivileged host user
  (``setpriv --reuid U --regid U --clear-groups``, with every capability dropped from the bounding and
  inheritable sets): the user ``book-learner`` when it exists, else ``nobody`` (65534). bubblewrap then runs
  unprivileged, so the sandbox's user is that host user, not root mapped under another name;
- every namespace unshared: no network (only its own loopback), its own process list, hostname and IPC;
  no nested user namespaces (``--disable-userns``); no capabilities (``--cap-drop ALL``);
- a seccomp filter (:func:`seccomp_filter`) that refuses ``ptrace``, ``mount``, namespace creation,
  ``keyctl``, ``bpf``, ``perf_event_open``, module loading, ``kexec`` and the like;
- a fresh root holding, read-only, the system folders (``/usr``, ``/etc``), the Python installation, the
  virtual environment and the course package without its graders' code (:func:`learner_package`: no exercise
  module, so no reference solution, is there to import or read), and nothing else: no home, no ``/root``, no
  ``/work``;
  ``/proc/sys`` and ``/dev`` read-only;
- one writable, memory-backed, size-capped folder, ``/scratch`` (the working folder and ``HOME``), which
  also holds ``/tmp``, and a small size-capped ``/dev/shm``: nothing the notebook writes reaches the host's
  disk or outlives it, and both count towards the submission's memory cgroup. The notebook is copied in,
  read-only;
- limits (:class:`Limits`): memory and processes for the whole submission where the host has cgroups the
  grader may use (v1 ``memory`` and ``pids`` hierarchies, or a writable v2 tree), plus per-process limits set by
  ``prlimit`` before the command starts (address space, CPU seconds, file size, no core files, and the number of
  processes of the sandbox's user). :attr:`Sandbox.limits_in_force` says which held.

``"user"`` (for hosts where bubblewrap cannot start, such as Gradescope's containers; the grader must be
root) runs the command as a dedicated unprivileged host user with the same ``prlimit`` limits, in a scratch
folder that user owns. It hides only what that user cannot read, so the grader keeps the hidden tests, the
submissions and its output folder unreadable to it; in a private mount namespace, the learner package
(:func:`learner_package`) covers the course package, as in ``"bwrap"`` mode; when the command ends, every process of that user is
killed before the grader writes anything.

``"none"`` (the grader's ``--unsafe-no-sandbox``) runs it as a plain child process with the same limits:
nothing is hidden from it (the judges' references included), and it can change anything the grader can.
"""

from __future__ import annotations

import contextlib
import errno
import os
import platform
import pwd
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Limits", "Sandbox", "unavailable_reason", "HOW_TO_INSTALL", "SCRATCH", "seccomp_filter",
           "learner_user", "dedicated_user", "kill_user", "remove_tree", "learner_package", "GRADER_ONLY"]

SCRATCH = "/scratch"    # where the scratch folder appears inside the sandbox
LEARNER_USER = "book-learner"   # the dedicated host user the sandbox runs as, when it exists

HOW_TO_INSTALL = ("install bubblewrap (Debian/Ubuntu: `sudo apt-get install bubblewrap`; Fedora: "
                  "`sudo dnf install bubblewrap`; Arch: `sudo pacman -S bubblewrap`) on a Linux machine whose "
                  "kernel allows user namespaces, or grade inside a Linux container or VM that has it; "
                  "on a machine you trust with a batch you trust, `--unsafe-no-sandbox` grades without one")


@dataclass
class Limits:
    """Resource limits of one submission."""

    memory_bytes: int = 3 * 2**30       # all its processes together (cgroup), and each one's address space
    cpu_seconds: int = 900              # CPU time of each process (RLIMIT_CPU)
    processes: int = 128                # processes and threads alive at once, all together
    file_bytes: int = 64 * 2**20        # largest file a process may write (RLIMIT_FSIZE)
    scratch_bytes: int = 256 * 2**20    # the memory-backed scratch folder (/tmp is inside it)
    shm_bytes: int = 64 * 2**20         # the memory-backed /dev/shm


def _bwrap() -> str | None:
    return shutil.which("bwrap")


def learner_user() -> tuple[int, int] | None:
    """``(uid, gid)`` of the unprivileged host user the sandbox runs as when the grader is root."""
    if dedicated_user() is not None:
        return dedicated_user()
    with contextlib.suppress(KeyError):
        entry = pwd.getpwnam("nobody")
        if entry.pw_uid != 0:
            return entry.pw_uid, entry.pw_gid
    return None


def dedicated_user() -> tuple[int, int] | None:
    """``(uid, gid)`` of the user ``book-learner``, which owns nothing and runs nothing but learners' code."""
    with contextlib.suppress(KeyError):
        entry = pwd.getpwnam(LEARNER_USER)
        if entry.pw_uid != 0:
            return entry.pw_uid, entry.pw_gid
    return None


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
    package = Path(__file__).resolve().parents[1]     # all of ``book``: the runner is ``book.grading.runner``
    paths = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), package}
    return sorted(paths)


# The grader's own files, left out of the sandbox's copy of the package: the exercise modules hold each task's
# reference solution and its judge (a notebook that could import or read them would not need to solve anything).
# The sandbox's side of every check is in ``book/exercises/cases``, which holds no reference.
GRADER_ONLY = ("exercises/ex[0-9][0-9].py", "exercises/__pycache__/ex[0-9][0-9].*.pyc")

_LEARNER_PACKAGE: list[Path] = []


def learner_package() -> Path:
    """The course package as the sandbox sees it: a read-only copy made once per grader, without :data:`GRADER_ONLY`.

    The copy keeps the files' times, so the package's bytecode stays valid for the sources it was compiled from; it
    is removed when the grader exits.
    """
    import atexit
    import fnmatch

    if _LEARNER_PACKAGE and _LEARNER_PACKAGE[0].is_dir():
        return _LEARNER_PACKAGE[0] / "book"
    package = Path(__file__).resolve().parents[1]
    top = Path(tempfile.mkdtemp(prefix="book-learner-package-"))
    os.chmod(top, 0o755)

    def left_out(folder, names):
        rel = Path(folder).resolve().relative_to(package)
        return {n for n in names if any(fnmatch.fnmatch(str(rel / n), pattern) for pattern in GRADER_ONLY)}

    shutil.copytree(package, top / "book", ignore=left_out, copy_function=shutil.copy2)
    for folder, _dirs, files in os.walk(top, topdown=False):    # readable by the sandbox's user, writable by none
        for name in files:
            os.chmod(Path(folder) / name, 0o444)
        os.chmod(folder, 0o555)
    _LEARNER_PACKAGE[:] = [top]
    atexit.register(_remove_learner_package, top)
    return top / "book"


def _remove_learner_package(top: Path) -> None:
    for folder, _dirs, _files in os.walk(top):
        with contextlib.suppress(OSError):
            os.chmod(folder, 0o755)
    shutil.rmtree(top, ignore_errors=True)


def sandbox_sources() -> list[Path]:
    """Where each of :func:`python_paths` comes from in the sandbox: the same folder, but the learner package."""
    package = Path(__file__).resolve().parents[1]
    return [learner_package() if path == package else path for path in python_paths()]


# --------------------------------------------------------------------------- seccomp

# x86-64 system calls a notebook never needs and an attacker would use: debugging other processes, mounts and
# namespaces, the kernel's keyring, eBPF and perf, modules, kexec, io_uring, userfaultfd, clocks, swap, reboot.
_DENIED_X86_64 = {
    "ptrace": 101, "syslog": 103, "personality": 135, "vhangup": 153, "pivot_root": 155, "_sysctl": 156,
    "adjtimex": 159, "chroot": 161, "acct": 163, "settimeofday": 164, "mount": 165, "umount2": 166,
    "swapon": 167, "swapoff": 168, "reboot": 169, "iopl": 172, "ioperm": 173, "init_module": 175,
    "delete_module": 176, "quotactl": 179, "lookup_dcookie": 212, "clock_settime": 227, "kexec_load": 246,
    "add_key": 248, "request_key": 249, "keyctl": 250, "unshare": 272, "perf_event_open": 298,
    "name_to_handle_at": 303, "open_by_handle_at": 304, "clock_adjtime": 305, "setns": 308,
    "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312, "finit_module": 313, "kexec_file_load": 320,
    "bpf": 321, "userfaultfd": 323, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
    "pidfd_getfd": 438, "mount_setattr": 442,
}
_CLONE, _CLONE3 = 56, 435
_NAMESPACE_FLAGS = 0x7E020080   # CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWTIME
_AUDIT_ARCH_X86_64 = 0xC000003E


def seccomp_filter() -> bytes | None:
    """A compiled classic-BPF seccomp program (bubblewrap's ``--seccomp FD``), or ``None`` off x86-64.

    Denied calls fail with ``EPERM``; ``clone`` with a namespace flag too; ``clone3`` fails with ``ENOSYS``
    (its flags sit behind a pointer a filter cannot read), so the C library falls back to ``clone``. A call of
    another architecture's ABI (32-bit, x32) kills the process.
    """
    if platform.machine() not in ("x86_64", "AMD64"):
        return None
    LD_W_ABS, JEQ, JGE, JSET, RET = 0x20, 0x15, 0x35, 0x45, 0x06
    ALLOW, KILL = 0x7FFF0000, 0x80000000
    DENY, NOSYS = 0x00050000 | errno.EPERM, 0x00050000 | errno.ENOSYS
    # (code, jump-if-true label, jump-if-false label, k); labels are resolved to relative offsets below
    prog: list[tuple] = [(LD_W_ABS, None, None, 4), (JEQ, None, "kill", _AUDIT_ARCH_X86_64),
                         (LD_W_ABS, None, None, 0), (JGE, "kill", None, 0x40000000),
                         (JEQ, "clone", None, _CLONE), (JEQ, "nosys", None, _CLONE3)]
    prog += [(JEQ, "deny", None, nr) for nr in sorted(_DENIED_X86_64.values())]
    prog.append((0x05, None, None, "allow"))   # BPF_JA: always past the clone check
    labels = {"clone": len(prog)}
    prog += [(LD_W_ABS, None, None, 16), (JSET, "deny", "allow", _NAMESPACE_FLAGS)]
    labels["allow"] = len(prog)
    prog.append((RET, None, None, ALLOW))
    labels["deny"] = len(prog)
    prog.append((RET, None, None, DENY))
    labels["nosys"] = len(prog)
    prog.append((RET, None, None, NOSYS))
    labels["kill"] = len(prog)
    prog.append((RET, None, None, KILL))
    out = b""
    for i, (code, jt, jf, k) in enumerate(prog):
        def offset(label):
            return 0 if label is None else labels[label] - i - 1
        out += struct.pack("=HBBI", code, offset(jt), offset(jf), offset(k) if isinstance(k, str) else k)
    return out


# --------------------------------------------------------------------------- availability

_checked: dict[str, str | None] = {}


def unavailable_reason() -> str | None:
    """``None`` when a bubblewrap sandbox can start here; otherwise why not, in words."""
    if "reason" in _checked:
        return _checked["reason"]
    reason = None
    if not sys.platform.startswith("linux"):
        reason = "the sandbox needs Linux (bubblewrap)"
    elif _bwrap() is None:
        reason = "bubblewrap (`bwrap`) is not installed"
    elif os.geteuid() == 0 and learner_user() is None:
        reason = f"the grader runs as root and there is no unprivileged user to run learners' code as " \
                 f"(create one: `useradd --system --no-create-home {LEARNER_USER}`)"
    else:
        trial = [*_drop_privileges(), _bwrap(), "--unshare-all", "--unshare-user", "--disable-userns",
                 "--die-with-parent", *_system_binds(), "--proc", "/proc", "--dev", "/dev", "/usr/bin/env", "true"]
        try:
            done = subprocess.run(trial, capture_output=True, text=True, timeout=30, cwd="/")
            if done.returncode != 0:
                reason = f"bubblewrap cannot start a sandbox here: {done.stderr.strip()[:300]}"
        except (OSError, subprocess.TimeoutExpired) as err:
            reason = f"bubblewrap cannot start a sandbox here: {err}"
    _checked["reason"] = reason
    return reason


def _drop_privileges(user: tuple[int, int] | None = None) -> list[str]:
    """The ``setpriv`` prefix that turns root into the unprivileged learner user (empty when not root)."""
    if os.geteuid() != 0:
        return []
    uid, gid = user or learner_user() or (None, None)
    if uid is None:
        raise RuntimeError("no unprivileged user to run learners' code as")
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--inh-caps=-all",
            "--bounding-set=-all", "--"]


# --------------------------------------------------------------------------- cgroups

def _cgroup_v1(controller: str, settings: dict[str, str]) -> Path | None:
    root = Path("/sys/fs/cgroup") / controller
    if os.geteuid() != 0 or not (root / "cgroup.procs").exists() or not os.access(root, os.W_OK):
        return None
    group = root / f"book-grade-{os.getpid()}-{time.monotonic_ns()}"
    try:
        group.mkdir()
        for key, value in settings.items():
            (group / key).write_text(value)
        return group
    except OSError:
        with contextlib.suppress(OSError):
            group.rmdir()
        return None


def _cgroup_v2(settings: dict[str, str]) -> Path | None:
    """A child of the grader's own v2 cgroup's parent... only where the grader may write one (root, delegated)."""
    root = Path("/sys/fs/cgroup")
    if os.geteuid() != 0 or not (root / "cgroup.controllers").exists():
        return None
    with contextlib.suppress(OSError):
        if not {"pids", "memory"} <= set((root / "cgroup.subtree_control").read_text().split()):
            (root / "cgroup.subtree_control").write_text("+pids +memory")
        group = root / f"book-grade-{os.getpid()}-{time.monotonic_ns()}"
        group.mkdir()
        try:
            for key, value in settings.items():
                (group / key).write_text(value)
            return group
        except OSError:
            group.rmdir()
    return None


def _kill_cgroup(group: Path) -> bool:
    """Kill every process in ``group``, wait until it is empty, remove it; ``True`` when it emptied."""
    procs = group / "cgroup.procs"
    with contextlib.suppress(OSError):
        if (group / "cgroup.kill").exists():
            (group / "cgroup.kill").write_text("1")
    for _ in range(200):
        try:
            left = procs.read_text().split()
        except OSError:
            return True
        if not left:
            break
        for pid in left:
            with contextlib.suppress(OSError):
                os.kill(int(pid), signal.SIGKILL)
        time.sleep(0.05)
    gone = True
    with contextlib.suppress(OSError):
        gone = not procs.read_text().split()
    for _ in range(20):
        try:
            group.rmdir()
            break
        except OSError:
            time.sleep(0.05)
    return gone


# --------------------------------------------------------------------------- processes of a user

def _processes_of(uid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                status = (entry / "status").read_text()
                line = next(l for l in status.splitlines() if l.startswith("Uid:"))
                if int(line.split()[1]) == uid or int(line.split()[2]) == uid:
                    pids.append(int(entry.name))
    return pids


def _threads_of(uid: int) -> int:
    count = 0
    for pid in _processes_of(uid):
        with contextlib.suppress(OSError):
            count += len(os.listdir(f"/proc/{pid}/task"))
    return count


def kill_user(uid: int, gid: int) -> bool:
    """Kill every process of host user ``uid`` (root grader only); ``True`` when none is left.

    ``kill(-1, SIGKILL)`` sent *as that user* reaches exactly its processes, however they detached, in a loop
    until a scan of ``/proc`` finds none (a fork racing the first signal is caught by the next).
    """
    for _ in range(50):
        if not _processes_of(uid):
            return True
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--",
                            "kill", "-KILL", "-1"], timeout=10, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        for pid in _processes_of(uid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    return not _processes_of(uid)


def remove_tree(path: Path) -> None:
    """Remove ``path`` however deep it goes (``shutil.rmtree`` recurses and can raise ``RecursionError``)."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return
    with contextlib.suppress(Exception):
        shutil.rmtree(path)
    if path.exists() or path.is_symlink():
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(["rm", "-rf", "--one-file-system", "--", str(path)], timeout=600,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# --------------------------------------------------------------------------- the sandbox

class Sandbox:
    """One sandboxed command: ``with Sandbox(notebook, limits) as box: proc = box.start(argv, env)``.

    ``notebook`` (the file's bytes) lands in the scratch folder as ``submission.ipynb`` (read-only in
    ``"bwrap"`` mode).
    """

    def __init__(self, notebook: bytes, limits: Limits | None = None, mode: str = "bwrap"):
        if mode not in ("bwrap", "user", "none"):
            raise ValueError(f"unknown sandbox mode {mode!r}")
        self.notebook, self.limits, self.mode = bytes(notebook), limits or Limits(), mode
        self.proc: subprocess.Popen | None = None
        self.cgroups: list[Path] = []
        self.user = learner_user() if os.geteuid() == 0 and mode != "none" else None
        if mode == "user" and (os.geteuid() != 0 or dedicated_user() is None):
            raise RuntimeError(f"the 'user' sandbox needs a root grader and the user {LEARNER_USER}")
        self.work: Path | None = None        # a host folder for the scratch (modes "user" and "none")
        self.limits_in_force: list[str] = []

    @property
    def scratch_inside(self) -> str:
        """The path the command sees for its scratch folder."""
        return SCRATCH if self.mode == "bwrap" else str(self.work / "scratch")

    @property
    def tmp_inside(self) -> str:
        return "/tmp" if self.mode == "bwrap" else str(self.work / "scratch" / ".tmp")

    def prepare(self) -> None:
        """Make the scratch folder (host modes) before :meth:`start`, so the caller can build the environment."""
        if self.mode == "bwrap" or self.work is not None:
            return
        self.work = Path(tempfile.mkdtemp(prefix="book-grade-"))
        scratch = self.work / "scratch"
        scratch.mkdir()
        (scratch / ".tmp").mkdir()
        (scratch / "submission.ipynb").write_bytes(self.notebook)
        if self.user is not None:    # the learner user owns only its scratch folder
            os.chmod(self.work, 0o711)
            for path in (scratch, scratch / ".tmp", scratch / "submission.ipynb"):
                os.chown(path, *self.user)

    def _bwrap_args(self, env: dict[str, str], notebook_fd: int, seccomp_fd: int | None,
                    sources: list[Path]) -> list[str]:
        size = str(self.limits.scratch_bytes)
        args = [_bwrap(), "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
                "--new-session", "--cap-drop", "ALL", "--uid", "65534", "--gid", "65534", "--hostname", "sandbox",
                *_system_binds()]
        # The scratch tmpfs first: bwrap mounts in order, so the binds below stay visible even when the course's
        # checkout (its environment, its package) lives under /tmp, as a fresh clone in CI may.
        args += ["--size", size, "--perms", "0700", "--tmpfs", SCRATCH, "--dir", f"{SCRATCH}/.tmp", "--symlink", f"{SCRATCH}/.tmp", "/tmp"]
        for path, source in zip(python_paths(), sources):
            target = str(path)
            if path.is_relative_to("/tmp"):   # /tmp is a symlink into the scratch: bwrap cannot mkdir through it
                target = f"{SCRATCH}/.tmp/{path.relative_to('/tmp')}"
            args += ["--ro-bind", str(source), target]
        args += ["--proc", "/proc", "--ro-bind", "/proc/sys", "/proc/sys",
                 "--dev", "/dev", "--size", str(self.limits.shm_bytes), "--tmpfs", "/dev/shm", "--remount-ro", "/dev",
                 "--perms", "0444", "--ro-bind-data", str(notebook_fd), f"{SCRATCH}/submission.ipynb",
                 "--remount-ro", "/", "--chdir", SCRATCH, "--clearenv"]
        if seccomp_fd is not None:
            args += ["--seccomp", str(seccomp_fd)]
        for key, value in env.items():
            args += ["--setenv", key, value]
        return args

    def _prlimit(self) -> list[str]:
        lim = self.limits
        args = ["prlimit", f"--as={lim.memory_bytes}", f"--cpu={lim.cpu_seconds}", f"--fsize={lim.file_bytes}",
                "--core=0"]
        self.limits_in_force.append(f"per process: {lim.memory_bytes // 2**20} MiB address space, "
                                    f"{lim.cpu_seconds} CPU s, {lim.file_bytes // 2**20} MiB files (prlimit)")
        if self.user is not None:
            # RLIMIT_NPROC counts every process of the real user on the host: the learner user's, all together
            nproc = _threads_of(self.user[0]) + lim.processes
            args.append(f"--nproc={nproc}")
            self.limits_in_force.append(f"{lim.processes} processes of uid {self.user[0]} (RLIMIT_NPROC)")
        return args + ["--"]

    def _reach(self, paths: list[Path], covers: list[tuple[Path, Path]] = ()) -> list[str]:
        """In "user" mode: a prefix that lets the learner user reach ``paths`` where a folder above them is private,
        and shows it each ``(source, path)`` of ``covers`` in place of ``path``.

        Root, in a private mount namespace (the script names its arguments ``${n}``: ``$10`` would be ``$1`` and a 0), binds each such path aside, covers the private folder above it
        (``/root`` for a pyenv Python) with an empty memory-backed folder, and binds the path back in place:
        the learner sees the Python it needs and nothing else of that folder. Then it binds each cover's source
        read-only over its path (the learner package over the course package). Empty when there is nothing to do.
        """
        if self.user is None or self.work is None:
            return []
        blocked = []
        for path in paths:
            top = next((a for a in reversed(path.parents) if a != Path("/") and not os.stat(a).st_mode & 0o001), None)
            if top is not None:
                blocked.append((path, top))
        if not blocked and not covers:
            return []
        lines, args = [], []
        for n, (path, top) in enumerate(blocked):
            stage = self.work / f"p{n}"
            stage.mkdir(mode=0o755)
            args += [str(path), str(stage)]
            lines.append(f'mount --bind "${{{len(args) - 1}}}" "${{{len(args)}}}"')
        for top in sorted({top for _, top in blocked}):
            args.append(str(top))
            lines.append(f'mount -t tmpfs -o mode=0755,size=1m book-grade "${{{len(args)}}}"')
        for n, (path, _top) in enumerate(blocked):
            i = 2 * n + 1
            lines.append(f'mkdir -p "${{{i}}}" && mount --bind -o ro "${{{i + 1}}}" "${{{i}}}"')
        for source, path in covers:
            args += [str(source), str(path)]
            lines.append(f'mount --bind -o ro "${{{len(args) - 1}}}" "${{{len(args)}}}"')
        script = " && ".join(lines) + f' && shift {len(args)} && exec "$@"'
        return ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, "sh", *args]

    def _cgroups(self) -> list[Path]:
        lim = self.limits
        groups = []
        pids = _cgroup_v1("pids", {"pids.max": str(lim.processes)})
        memory = _cgroup_v1("memory", {"memory.limit_in_bytes": str(lim.memory_bytes)})
        if pids is not None:
            groups.append(pids)
            self.limits_in_force.append(f"{lim.processes} processes in all (cgroup v1 pids)")
        if memory is not None:
            groups.append(memory)
            self.limits_in_force.append(f"{lim.memory_bytes // 2**20} MiB memory in all, scratch included "
                                        f"(cgroup v1 memory)")
        if not groups:
            v2 = _cgroup_v2({"pids.max": str(lim.processes), "memory.max": str(lim.memory_bytes),
                             "memory.swap.max": "0"})
            if v2 is not None:
                groups.append(v2)
                self.limits_in_force.append(f"{lim.processes} processes and {lim.memory_bytes // 2**20} MiB "
                                            f"memory in all (cgroup v2)")
        if not groups:
            self.limits_in_force.append("no cgroup: no limit on the memory of all processes together")
        return groups

    def start(self, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        """Start ``argv`` (stdin and stdout are pipes; stderr too) with ``env`` as its whole environment."""
        self.prepare()
        self.limits_in_force = [f"sandbox: {self.mode}" + (f", as uid {self.user[0]}" if self.user else "")]
        self.cgroups = self._cgroups() if os.geteuid() == 0 else []
        pass_fds: list[int] = []
        to_close: list[int] = []
        if self.mode == "bwrap":
            notebook_fd = os.memfd_create("submission.ipynb", 0)   # bwrap copies it in from here
            to_close.append(notebook_fd)
            os.write(notebook_fd, self.notebook)
            os.lseek(notebook_fd, 0, os.SEEK_SET)
            seccomp = seccomp_filter()
            seccomp_fd = None
            if seccomp is not None:
                read, write = os.pipe()
                os.write(write, seccomp)   # a few hundred bytes: fits the pipe's buffer
                os.close(write)
                seccomp_fd = read
                to_close.append(read)
                self.limits_in_force.append(f"seccomp: {len(_DENIED_X86_64)} system calls and namespace clones "
                                            f"refused")
            else:
                self.limits_in_force.append("no seccomp filter (not x86-64)")
            pass_fds = to_close[:]
            sources, stage = sandbox_sources(), []
            if self.user is not None:
                # The Python installation may sit where the learner user cannot reach it (pyenv under /root).
                # In a private mount namespace, root binds each folder under a staging folder the user can
                # traverse, then drops to the user, whose bubblewrap binds them back at their own paths.
                self.work = Path(tempfile.mkdtemp(prefix="book-grade-"))
                os.chmod(self.work, 0o711)
                sources = []
                for n, path in enumerate(sandbox_sources()):
                    (self.work / f"p{n}").mkdir(mode=0o755)
                    sources.append(self.work / f"p{n}")
                    stage += [str(path), str(self.work / f"p{n}")]
            command = self._prlimit()
            if stage:
                binds = " && ".join(f'mount --bind -o ro "${i + 1}" "${i + 2}"' for i in range(0, len(stage), 2))
                command += ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
                            f'{binds} && shift {len(stage)} && exec "$@"', "sh", *stage]
            command += _drop_privileges(self.user) if self.user else []
            command += self._bwrap_args(env, notebook_fd, seccomp_fd, sources) + ["--", *argv]
            full_env, cwd = {"PATH": "/usr/bin:/bin"}, "/"
        else:
            covers = [(source, path) for source, path in zip(sandbox_sources(), python_paths()) if source != path] \
                if self.mode == "user" else []
            command = self._prlimit() + self._reach(python_paths(), covers) + \
                (_drop_privileges(self.user) if self.user else []) + argv
            full_env = {**env, "PATH": env.get("PATH", "/usr/bin:/bin")}
            cwd = self.work / "scratch"
        if self.cgroups:   # a shell joins the cgroups, then becomes the command (no preexec_fn in a threaded grader)
            joins = " && ".join(f"echo $$ > {shlex.quote(str(g / 'cgroup.procs'))}" for g in self.cgroups)
            command = ["/bin/sh", "-c", f'{joins} && exec "$@"', "sh", *command]
        try:
            self.proc = subprocess.Popen(command, env=full_env, cwd=cwd, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=pass_fds,
                                         start_new_session=True, close_fds=True)
        finally:
            for fd in to_close:
                with contextlib.suppress(OSError):
                    os.close(fd)
        return self.proc

    def kill(self) -> None:
        """Kill the whole sandbox now (every process, detached ones included)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        for group in self.cgroups:
            with contextlib.suppress(OSError):
                for pid in (group / "cgroup.procs").read_text().split():
                    with contextlib.suppress(OSError):
                        os.kill(int(pid), signal.SIGKILL)

    def close(self) -> bool:
        """Kill whatever is left and wait until it is gone; ``True`` when no process of the sandbox survives."""
        self.kill()
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=30)
            for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                with contextlib.suppress(OSError, ValueError):
                    stream.close()
        gone = True
        for group in self.cgroups:
            gone = _kill_cgroup(group) and gone
        self.cgroups = []
        if self.mode == "user" and self.user is not None:
            gone = kill_user(*self.user) and gone
        elif self.mode == "none" and self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)   # the session's stragglers (those that left it survive)
        if self.work is not None:
            remove_tree(self.work)
            self.work = None
        return gone

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
