"""The grader's own files as shipped: one hash per file, written once, checked before a batch and before each judging.

``MANIFEST.sha256`` (next to this module, in ``sha256sum``'s format) lists every module the grader and its judges
import from the course package (``book.grade``, ``book.grading``, ``book.exercises`` and what they import). It is
written with the package (``python -m book.grading.manifest``) and committed; ``tests/test_grade_verdicts.py``
fails when it is stale. The grader never re-takes it at start: a file changed by an earlier run (without the
sandbox) is found at the next start, not adopted.

:func:`problems` also finds planted bytecode: a ``.pyc`` in a ``__pycache__`` of a listed module that is not the
compilation of that module's source (Python would run it instead of the source when its header matches), and any
``.pyc`` beside the sources (a module without source). The judges' own process (:mod:`book.grading.verdicts`)
reads no bytecode at all.
"""

from __future__ import annotations

import hashlib
import importlib.util
import marshal
import sys
import types
from pathlib import Path

__all__ = ["MANIFEST", "problems", "write", "graded_modules"]

PACKAGE = Path(__file__).resolve().parents[1]
MANIFEST = Path(__file__).with_name("MANIFEST.sha256")
_ENTRY_POINTS = ("book.grade", "book.grading.cli", "book.grading.runner", "book.grading.verdicts", "book.exercises",
                 "book.nets.conv1d", "book.nets.mlp", "book.training", "book.data")


def graded_modules() -> list[Path]:
    """The course's source files that the grader and its judges import, relative to the package, sorted.

    Found in a fresh interpreter, so that what the calling process has imported already (a test session, a
    notebook) does not count: the list depends on the code only.
    """
    import os
    import subprocess

    code = ("import importlib, sys\n"
            f"for name in {list(_ENTRY_POINTS)!r}:\n"
            "    importlib.import_module(name)\n"
            "for name, module in list(sys.modules.items()):\n"
            "    if name == 'book' or name.startswith('book.'):\n"
            "        print(getattr(module, '__file__', None) or '')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(PACKAGE.parent), os.environ.get("PYTHONPATH", "")]),
               PYTHONDONTWRITEBYTECODE="1")
    listing = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env,
                             cwd=PACKAGE.parent).stdout
    found = set()
    for origin in listing.split("\n"):
        if origin.endswith(".py"):
            path = Path(origin).resolve()
            if PACKAGE in path.parents:
                found.add(path.relative_to(PACKAGE))
    found |= {p.relative_to(PACKAGE) for folder in ("grading", "exercises") for p in (PACKAGE / folder).glob("*.py")}
    return sorted(found)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write() -> Path:
    """Write the manifest of the package as it is now."""
    lines = [f"{_digest(PACKAGE / rel)}  {rel.as_posix()}" for rel in graded_modules()]
    MANIFEST.write_text("\n".join(lines) + "\n")
    return MANIFEST


def _shipped() -> dict[str, str]:
    out = {}
    for line in MANIFEST.read_text().splitlines():
        digest, _, rel = line.partition("  ")
        if rel:
            out[rel] = digest
    return out


def _bytecode_is_its_source(pyc: Path, source: Path) -> bool:
    """Whether ``pyc`` holds exactly the compilation of ``source`` (or is a file this Python would never load)."""
    data = pyc.read_bytes()
    if data[:4] != importlib.util.MAGIC_NUMBER:
        return True                     # another Python's bytecode: this one ignores it
    try:
        code = marshal.loads(data[16:])
    except Exception:
        return False
    if not isinstance(code, types.CodeType):
        return False
    level = 2 if ".opt-2." in pyc.name else 1 if ".opt-1." in pyc.name else 0
    fresh = compile(source.read_bytes(), code.co_filename, "exec", dont_inherit=True, optimize=level)
    return fresh == code


def problems() -> list[str]:
    """What differs from the shipped manifest, in words (empty: the grader's files are as shipped)."""
    if not MANIFEST.is_file():
        return [f"{MANIFEST} is missing"]
    shipped, found = _shipped(), []
    for rel, digest in shipped.items():
        path = PACKAGE / rel
        if not path.is_file():
            found.append(f"{rel} is missing")
        elif _digest(path) != digest:
            found.append(f"{rel} differs from the shipped file")
    for folder in ("grading", "exercises"):
        for path in sorted((PACKAGE / folder).glob("*.py")):
            if path.relative_to(PACKAGE).as_posix() not in shipped:
                found.append(f"{path.relative_to(PACKAGE)} is not a shipped file")
    folders = {(PACKAGE / rel).parent for rel in shipped}
    for folder in sorted(folders):
        for pyc in sorted(folder.glob("*.pyc")):
            found.append(f"{pyc.relative_to(PACKAGE)} is bytecode without a source")
        for pyc in sorted((folder / "__pycache__").glob("*.pyc")):
            source = folder / (pyc.name.split(".")[0] + ".py")
            rel = source.relative_to(PACKAGE).as_posix()
            try:
                same = rel in shipped and _bytecode_is_its_source(pyc, source)
            except (OSError, SyntaxError, ValueError):
                same = False
            if rel in shipped and not same:
                found.append(f"{pyc.relative_to(PACKAGE)} is not the compilation of {rel}")
    return found


if __name__ == "__main__":
    print(f"wrote {write()}")
