"""The result cache: every trained curve, probe and weight file behind the chapters, widgets and claim tests.

A result is determined by its *spec* (a frozen dataclass whose defaults are a
chapter's settings) and by the code that computes it. :func:`cached` stores it
in memory and on disk under :func:`cache_dir`, keyed by

- the spec (its class name and every field),
- the source of exactly the package modules that the spec's module imports,
  directly or transitively (:func:`module_dependencies`, read from the code
  with :mod:`ast`, never listed by hand), and
- the torch version.

So revisiting a setting in a widget or re-running a page is instant; editing a
module a result depends on recomputes it; editing any other module (a widget,
the grader, the build tooling) keeps it.

What counts as an import: every ``import``/``from … import`` statement in a
module, at any indentation (imports inside functions count). ``from .a import b``
reaches ``a``, and ``a.b`` too where that is a module. The ``__init__`` of a
package is reached only when it is named (``from . import x`` where ``x`` is no
module, ``import book``), not merely because Python runs it on the way to a
submodule: the package's ``__init__`` files hold docstrings and opt-in helpers
that no computation reads.

Set ``$RESIDUAL_COURSE_CACHE`` to a fresh folder to measure a cold run.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import io
import json
import os
import sys
from pathlib import Path
from typing import Callable

__all__ = ["cache_dir", "atomic_write", "cached", "is_cached", "result_key", "result_path",
           "forget", "clear_memory_cache", "import_graph", "module_dependencies", "code_fingerprint"]

PACKAGE_ROOT = Path(__file__).resolve().parent
PACKAGE = PACKAGE_ROOT.name                   # "book", also when run as `python -m book.cache`

_MEMORY: dict[str, dict] = {}


# --------------------------------------------------------------------------- where and how files are written

def cache_dir() -> Path:
    """The folder for cached data and results: ``$RESIDUAL_COURSE_CACHE`` if set, else ``~/.cache/residual-course``."""
    root = os.environ.get("RESIDUAL_COURSE_CACHE")
    path = Path(root) if root else Path.home() / ".cache" / "residual-course"
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write(path: Path, content: bytes | str | Callable[[io.BufferedWriter], object]) -> Path:
    """Write ``content`` to ``path`` so that a reader sees the old file or the whole new one, never half.

    ``content`` is bytes, text (UTF-8), or a function that writes to a binary
    file (``lambda f: torch.save(state, f)``, ``lambda f: np.savez(f, **arrays)``).
    The data goes to a temporary file beside ``path``, which then replaces it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            if callable(content):
                content(f)
            else:
                f.write(content.encode() if isinstance(content, str) else content)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


# --------------------------------------------------------------------------- what a result depends on

def _module_files(root: Path, package: str) -> dict[str, Path]:
    """``{"book.nets.mlp": Path(".../nets/mlp.py"), "book": Path(".../__init__.py"), …}``."""
    files = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        files[".".join((package,) + parts)] = path
    return files


def _imports(path: Path, module: str, is_package: bool) -> list[tuple[str, list[str]]]:
    """Every import statement of ``path`` as ``(module named, [module.name for each imported name])``."""
    tree = ast.parse(path.read_bytes(), filename=str(path))
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.append((base, [f"{base}.{alias.name}" for alias in node.names]))
    return found


def _reached(base: str, names: list[str], files: dict[str, Path]) -> set[str]:
    # `from .a import b`: the submodule a.b where b is one; a itself unless every imported name is a submodule
    # of the package a (then only a's __init__ would run, which holds no code a result uses).
    submodules = {n for n in names if n in files}
    reached = set(submodules)
    if base in files and (not names or len(submodules) < len(names)):
        reached.add(base)
    return reached


_GRAPHS: dict[tuple, dict[str, frozenset[str]]] = {}


def import_graph(root: Path | None = None, package: str | None = None) -> dict[str, frozenset[str]]:
    """``{module: the package modules it imports}`` for every module under ``root`` (default: this package).

    Re-read whenever a file changes (the files' sizes and modification times key an in-memory copy).
    """
    root, package = Path(root or PACKAGE_ROOT), package or PACKAGE
    files = _module_files(root, package)
    stamp = (str(root), package, tuple((name, p.stat().st_mtime_ns, p.stat().st_size) for name, p in files.items()))
    if stamp not in _GRAPHS:
        graph = {}
        for name, path in files.items():
            reached: set[str] = set()
            for base, names in _imports(path, name, path.name == "__init__.py"):
                reached |= _reached(base, names, files)
            graph[name] = frozenset(reached - {name})
        _GRAPHS.clear()
        _GRAPHS[stamp] = graph
    return _GRAPHS[stamp]


def module_dependencies(*modules: str, root: Path | None = None, package: str | None = None) -> tuple[str, ...]:
    """The package modules that ``modules`` import, directly or transitively, themselves included (sorted)."""
    graph = import_graph(root, package)
    seen: set[str] = set()
    todo = [m for m in modules if m in graph]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph[name] - seen)
    return tuple(sorted(seen))


def code_fingerprint(*modules: str, root: Path | None = None, package: str | None = None) -> str:
    """A hash of the source of ``modules`` and of every package module they import (12 hex digits)."""
    root, package = Path(root or PACKAGE_ROOT), package or PACKAGE
    files = _module_files(root, package)
    h = hashlib.sha1()
    for name in module_dependencies(*modules, root=root, package=package):
        h.update(name.encode() + b"\0" + files[name].read_bytes() + b"\0")
    return h.hexdigest()[:12]


# --------------------------------------------------------------------------- keys and the cache itself

def _module_name(module: str) -> str:
    # `python -m book.x` runs book/x.py as __main__: key its results as book.x, like an import would.
    if module == "__main__":
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        return spec.name if spec is not None else module
    return module


def _spec_module(spec) -> str:
    module = _module_name(type(spec).__module__)
    if not module.startswith(PACKAGE + "."):
        raise TypeError(f"a cached result's spec must be a dataclass defined in the {PACKAGE} package; "
                        f"got {type(spec).__qualname__} from {module}.")
    return module


def result_key(kind: str, spec) -> str:
    """The cache key of ``spec``'s result: its fields, the code its module imports, the torch version and
    the numerical path (pinned or native kernels, :mod:`book.numerics`), which change the result's bits."""
    import torch

    from .numerics import kernel_path

    if not dataclasses.is_dataclass(spec):
        raise TypeError(f"a spec must be a dataclass instance, got {type(spec).__name__}.")
    payload = [kind, type(spec).__qualname__, dataclasses.asdict(spec), code_fingerprint(_spec_module(spec)),
               torch.__version__, kernel_path()]
    text = json.dumps(payload, sort_keys=True, default=str)
    return f"{kind}-{hashlib.sha1(text.encode()).hexdigest()[:16]}"


def result_path(kind: str, spec, suffix: str = ".json") -> Path:
    """Where the result (``.json``) or the weights (``.pt``) of ``spec`` live on disk."""
    return cache_dir() / "experiments" / f"{result_key(kind, spec)}{suffix}"


def _check_compute_is_covered(spec, compute: Callable) -> None:
    # The key covers the spec's module and its imports; the code that computes the result must be among them,
    # or an edit to that code would serve a stale result.
    module = _module_name(getattr(compute, "__module__", None) or "")
    if module.startswith(PACKAGE + ".") and module not in module_dependencies(_spec_module(spec)):
        raise RuntimeError(f"{module} computes a result for {type(spec).__qualname__}, but "
                           f"{type(spec).__module__} does not import it: define the spec beside its computation.")


def cached(kind: str, spec, compute: Callable[[], dict], disk: bool = True) -> dict:
    """Return ``compute()`` for ``spec``, computing it at most once per version of the code it depends on.

    Args:
        kind: a short name for the experiment family (part of the file name).
        spec: a frozen dataclass, defined in the module that computes the result, that fully determines it.
        compute: builds the result; it must return something ``json.dumps`` accepts.
        disk: also read and write the on-disk cache.
    """
    _check_compute_is_covered(spec, compute)
    key = result_key(kind, spec)
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
        atomic_write(path, json.dumps(result))
    return result


def is_cached(kind: str, spec) -> bool:
    """Whether ``spec`` has a result in memory or on disk (nothing is computed)."""
    key = result_key(kind, spec)
    return key in _MEMORY or (cache_dir() / "experiments" / f"{key}.json").exists()


def forget(kind: str, spec) -> None:
    """Drop ``spec``'s result from memory and disk (it is computed again on the next request)."""
    key = result_key(kind, spec)
    _MEMORY.pop(key, None)
    (cache_dir() / "experiments" / f"{key}.json").unlink(missing_ok=True)


def clear_memory_cache() -> None:
    """Forget in-memory results (the disk cache stays)."""
    _MEMORY.clear()


def main(argv: list[str] | None = None) -> int:
    """``python -m book.cache MODULE …``: the package modules whose source keys MODULE's cached results."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m book.cache", description=main.__doc__)
    parser.add_argument("modules", nargs="*", default=[f"{PACKAGE}.ch1_degradation"],
                        help=f"modules of the package, e.g. {PACKAGE}.ch3_gradient_highway")
    args = parser.parse_args(argv)
    known = import_graph()
    unknown = [m for m in args.modules if m not in known]
    if unknown:
        print(f"not a module of the {PACKAGE} package: {', '.join(unknown)} "
              f"(try one of: {', '.join(sorted(m for m in known if '.ch' in m and 'widgets' not in m))})",
              file=sys.stderr)
        return 2
    for name in module_dependencies(*args.modules):
        print(name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
