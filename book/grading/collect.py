"""Finding what to grade: the submissions in a folder, the exercise sources with their hidden tests, a notebook's file.

A loose ``*.ipynb`` is one submission, a subfolder is another; symbolic links are never followed, macOS
metadata, checkpoints and hidden files are left aside, and every file found is logged with what became of it
(``collection.csv``). A notebook is read only when it is a regular file under the size limit.
"""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from ..exercises.sources import exercise_sources

__all__ = ["SOURCE_DIR", "Submission", "find_submissions", "hidden_test_sources", "exercise_of", "read_regular"]

# The hidden tests graded by default: the exercise sources of the course's checkout (``--hidden-tests`` names others).
SOURCE_DIR = Path(__file__).resolve().parents[2] / "exercises" / "source"


@dataclass
class Submission:
    """One learner's hand-in: the notebook to grade (or none), where it came from, what was left aside."""

    name: str
    path: Path | None
    original: str                               # path relative to the submissions folder
    notes: list[str] = field(default_factory=list)
    refused: str | None = None                  # why it is not graded at all (a symlink)



NAME_BYTES = 80           # a row's name, in UTF-8 bytes: with the grader's suffixes it stays far below 255


def _safe(name: str) -> str:
    """A file name from a learner's name: letters of any script kept (NFC), other characters as ``_``.

    At most ``NAME_BYTES`` bytes in UTF-8 (file systems count bytes, not characters), cut at a character.
    """
    name = unicodedata.normalize("NFC", name)
    name = re.sub(r"[^\w.-]+", "_", name).strip("._-")
    name = name.encode("utf-8")[:NAME_BYTES].decode("utf-8", "ignore").strip("._-")
    return name or "submission"


def _ignored(path: Path) -> str | None:
    """Why a file or folder in a submission is left aside, or ``None``."""
    if path.name == "__MACOSX":
        return "macOS archive metadata (__MACOSX)"
    if path.name.startswith("._"):
        return "macOS resource fork (._ file)"
    if path.name == ".ipynb_checkpoints":
        return "Jupyter's autosave checkpoints"
    if path.name.startswith("."):
        return "a hidden file"
    return None


MAX_DEPTH, MAX_ENTRIES = 32, 10_000     # how far into one learner's folder the grader looks


def _walk(top: Path) -> list[Path]:
    """Every path under ``top``, sorted, without recursion and without following symbolic links.

    Stops at ``MAX_DEPTH`` levels and ``MAX_ENTRIES`` paths, so a hostile tree cannot exhaust the grader.
    """
    found, stack = [], [(top, 0)]
    while stack and len(found) < MAX_ENTRIES:
        folder, depth = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries[:MAX_ENTRIES]:
            path = Path(entry.path)
            found.append(path)
            if depth + 1 < MAX_DEPTH and entry.is_dir(follow_symlinks=False):
                stack.append((path, depth + 1))
    return sorted(found)


def find_submissions(folder: Path, log: list[tuple[str, str]] | None = None) -> list[Submission]:
    """Every submission in ``folder``; ``log`` receives ``(path, what became of it)`` for every file found.

    A loose ``*.ipynb`` is one submission, named after its file; a subfolder is one submission, named after
    the folder. When a subfolder holds several notebooks, the one modified last is graded (ties: the first by
    path), and the row names the others. Symbolic links are never followed: a linked notebook gets the status
    ``refused``. macOS metadata (``__MACOSX``, ``._*``), checkpoints and hidden files are left aside.
    """
    folder = Path(folder)
    log = log if log is not None else []
    found: list[Submission] = []
    taken: set[str] = set()

    def unique(name: str) -> str:
        base, n, candidate = _safe(name), 1, _safe(name)
        while candidate.casefold() in taken:
            n += 1
            candidate = f"{base}-{n}"
        taken.add(candidate.casefold())
        return candidate

    def rel(p: Path) -> str:
        return str(p.relative_to(folder))

    for entry in sorted(folder.iterdir()):
        reason = _ignored(entry)
        if reason:
            for p in ([entry] if entry.is_symlink() or not entry.is_dir() else _walk(entry)):
                if p.is_symlink() or not p.is_dir():
                    log.append((rel(p), f"ignored: {reason}"))
            continue
        if entry.is_symlink():
            if entry.suffix == ".ipynb":
                sub = Submission(unique(entry.stem), None, rel(entry), refused="a symbolic link, not followed")
                found.append(sub)
                log.append((rel(entry), f"refused: a symbolic link (row {sub.name})"))
            else:
                log.append((rel(entry), "refused: a symbolic link"))
            continue
        if not entry.is_dir() and not entry.is_file():
            log.append((rel(entry), "ignored: not a regular file or folder"))
            continue
        if entry.is_file():
            if entry.suffix == ".ipynb":
                sub = Submission(unique(entry.stem), entry, rel(entry))
                found.append(sub)
                log.append((rel(entry), f"graded as {sub.name}"))
            else:
                log.append((rel(entry), "ignored: not a notebook"))
            continue
        if not entry.is_dir():
            log.append((rel(entry), "ignored: not a file or folder"))
            continue
        name = unique(entry.name)
        notebooks, notes = [], []
        for p in _walk(entry):
            inner = next((r for part in p.relative_to(entry).parts if (r := _ignored(Path(part)))), None)
            if p.is_dir() and not p.is_symlink():
                continue
            if inner:
                log.append((rel(p), f"ignored: {inner}"))
            elif p.is_symlink() or any(q.is_symlink() for q in p.relative_to(folder).parents if str(q) != "."
                                       for q in [folder / q]):
                log.append((rel(p), "refused: a symbolic link"))
                notes.append(f"{rel(p)} is a symbolic link: not followed")
            elif not p.is_file():
                log.append((rel(p), "ignored: not a regular file"))
            elif p.suffix == ".ipynb":
                notebooks.append(p)
            else:
                log.append((rel(p), "ignored: not a notebook"))
        if not notebooks:
            found.append(Submission(name, None, rel(entry), notes))
            continue
        chosen = max(notebooks, key=lambda p: (p.stat().st_mtime, [-ord(c) for c in str(p)]))
        others = [rel(p) for p in notebooks if p != chosen]
        if others:
            notes.append(f"the folder holds {len(notebooks)} notebooks; graded the one modified last, "
                         f"{rel(chosen)}; left out: {', '.join(others)}")
        found.append(Submission(name, chosen, rel(chosen), notes))
        log.append((rel(chosen), f"graded as {name}"))
        log.extend((o, f"ignored: another notebook in {name}'s folder (the one modified last is graded)") for o in others)
    return found


def hidden_test_sources(location: Path) -> dict[str, Path]:
    """``{exercise: source}`` for a folder of exercise sources, or for one source file."""
    location = Path(location)
    if location.is_file():
        return {location.stem: location}
    return {p.stem: p for p in exercise_sources(location)}


def exercise_of(nb, path: Path, known) -> tuple[str | None, str]:
    """``(exercise, how it was found)`` from the notebook's metadata, else from an ``exNN`` in its file name."""
    meta = (nb.get("metadata", {}) if isinstance(nb, dict) else {}).get("residual_course", {})
    name = meta.get("exercise") if isinstance(meta, dict) else None
    if isinstance(name, str) and name in known:
        return name, "metadata"
    match = re.search(r"ex\d\d", path.name)
    if match:
        return next((k for k in known if k.startswith(match[0])), None), "file name"
    return None, ""


def read_regular(path: Path, limit: int) -> bytes | None:
    """The bytes of ``path`` when it is a regular file (never a FIFO, device or link), ``None`` past ``limit``."""
    import stat

    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path.name} is not a regular file")
        if os.fstat(fd).st_size > limit:
            return None
        chunks, total = [], 0
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                return None
        return b"".join(chunks)
    finally:
        os.close(fd)
