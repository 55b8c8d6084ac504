"""``make bench``: how long every page takes to execute, and how fast every widget redraws.

Prints one table:

- each chapter's and exercise's execution seconds, executed cold (a fresh
  result cache, so everything that trains really trains) in its own kernel;
- cold and warm ``jupyter-book build`` seconds (with ``--build``);
- each widget update's latency, median and worst over repeated updates, in ms.

Usage: ``python -m book.authoring.bench [--build] [--pages PATTERN ...] [--no-widgets] [--repeat N]``
(``make bench`` runs ``--build``: one cold build gives every page's execution time).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

__all__ = ["execute_notebook", "time_pages", "time_widgets", "main"]



def widget_modules() -> list[str]:
    """Every chapter's widgets module (``book/chN_*widgets.py``): a new explorer joins the bench by its file name."""
    return sorted(f"book.{path.stem}" for path in (ROOT / "book").glob("ch*_widgets.py"))


def execute_notebook(path: Path, timeout: int = 600, cwd: Path | None = None):
    """Execute a MyST or ipynb notebook in a fresh kernel; returns ``(seconds, notebook)``.

    Raises ``nbclient.exceptions.CellExecutionError`` if a cell fails (cells
    tagged ``raises-exception`` may raise).
    """
    import jupytext
    from nbclient import NotebookClient

    nb = jupytext.read(path)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(cwd or path.parent)}})
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start, nb


def pages(patterns: list[str] | None = None) -> list[Path]:
    """The book's executable pages, in table-of-contents order."""
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = []
    for part in toc.get("parts", []):
        for chapter in part.get("chapters", []):
            files.append(chapter["file"])
            files += [s["file"] for s in chapter.get("sections", [])]
    out = []
    for f in files:
        path = ROOT / f"{f}.md"
        if path.exists() and "jupytext:" in path.read_text()[:500]:
            if not patterns or any(p in f for p in patterns):
                out.append(path)
    return out


def time_pages(patterns: list[str] | None = None) -> list[tuple[str, float | None, str]]:
    """Execute each page cold; returns ``(page, seconds or None, status)``."""
    rows = []
    for path in pages(patterns):
        with tempfile.TemporaryDirectory() as cache:
            os.environ["RESIDUAL_COURSE_CACHE"] = cache
            try:
                seconds, _ = execute_notebook(path)
                rows.append((str(path.relative_to(ROOT)), seconds, "ok"))
            except Exception as err:  # report and go on
                rows.append((str(path.relative_to(ROOT)), None, f"FAILED: {type(err).__name__}"))
            print(f"  {rows[-1][0]}: {rows[-1][1] and round(rows[-1][1], 1)} s {rows[-1][2]}", flush=True)
    return rows


def time_widgets(repeat: int = 15) -> list[tuple[str, float, float]]:
    """Call every widget module's ``bench_cases()``; returns ``(name, median ms, worst ms)``."""
    import matplotlib

    matplotlib.use("Agg")
    rows = []
    for name in widget_modules():
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for case, update in getattr(module, "bench_cases", lambda: [])():
            update()  # warm-up (imports, first draw)
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                update()
                times.append(1000 * (time.perf_counter() - start))
            rows.append((case, statistics.median(times), max(times)))
            print(f"  {case}: median {rows[-1][1]:.0f} ms, worst {rows[-1][2]:.0f} ms", flush=True)
    return rows


def _exec_times(build_dir: Path) -> dict[str, float]:
    """Per-page execution seconds that myst-nb recorded during a build (from Sphinx's saved environment)."""
    import pickle

    env_file = build_dir / ".doctrees" / "environment.pickle"
    if not env_file.exists():
        return {}
    with open(env_file, "rb") as f:
        env = pickle.load(f)
    out = {}
    for docname, meta in getattr(env, "nb_metadata", {}).items():  # myst-nb's per-page execution record
        data = meta.get("exec_data") or {}
        if data.get("runtime") is not None:
            out[docname] = float(data["runtime"])
    return out


def time_build() -> tuple[float, float, dict[str, float]]:
    """A cold ``jupyter-book build --all`` (fresh result cache) and a warm rebuild (nothing changed).

    Returns ``(cold seconds, warm seconds, {page: execution seconds during the cold build})``.
    """
    jb = str(Path(sys.executable).parent / "jupyter-book")
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as out:
        env = dict(os.environ, RESIDUAL_COURSE_CACHE=cache)
        start = time.perf_counter()
        subprocess.run([jb, "build", "--all", "--path-output", out, str(ROOT)], env=env, check=False,
                       capture_output=True)
        cold = time.perf_counter() - start
        pages_seconds = _exec_times(Path(out) / "_build")
        start = time.perf_counter()
        subprocess.run([jb, "build", "--path-output", out, str(ROOT)], env=env, check=False, capture_output=True)
        warm = time.perf_counter() - start
    return cold, warm, pages_seconds


def machine() -> str:
    import platform

    import torch

    from ..records import cpu_name

    return f"{cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m book.authoring.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--pages", nargs="*", help="only pages whose path contains one of these")
    parser.add_argument("--no-pages", action="store_true", help="skip page execution")
    parser.add_argument("--no-widgets", action="store_true", help="skip widget latencies")
    parser.add_argument("--build", action="store_true",
                        help="time a cold and a warm book build, with each page's execution seconds from the cold "
                             "build (instead of executing the pages one by one)")
    parser.add_argument("--repeat", type=int, default=15, help="widget updates per case")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    from ..numerics import pin

    pin()   # the course's numerical path (book.numerics), inherited by every page and widget the bench runs

    print(f"machine: {machine()}", flush=True)
    build = time_build() if args.build else None
    if build:
        page_rows = [(f"{page}.md", seconds, "ok") for page, seconds in build[2].items()]
    else:
        page_rows = [] if args.no_pages else time_pages(args.pages)
    widget_rows = [] if args.no_widgets else time_widgets(args.repeat)

    print("\n| what | seconds / latency |\n|---|---|")
    for page, seconds, status in page_rows:
        print(f"| execute `{page}` (cold cache) | {seconds:.1f} s |" if seconds is not None else f"| execute `{page}` | {status} |")
    if build:
        print(f"| cold book build (`--all`, fresh cache) | {build[0]:.0f} s |")
        print(f"| warm rebuild (nothing changed) | {build[1]:.0f} s |")
    for case, median, worst in widget_rows:
        print(f"| widget: {case} | median {median:.0f} ms, worst {worst:.0f} ms |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine(), "pages": page_rows, "widgets": widget_rows,
                                         "build": build and build[:2]}, indent=1))
    return 1 if any(s != "ok" for _, _, s in page_rows) else 0


if __name__ == "__main__":
    sys.exit(main())
