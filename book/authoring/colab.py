"""The repository URL (configured once, in ``_config.yml``) and the Colab install cell.

Every chapter and exercise notebook starts with :func:`install_cell`'s code.
On Colab it installs this package from the repository; everywhere it then pins
torch's CPU kernels (:mod:`book.numerics`). The package's requirements are loose (see ``pyproject.toml``), so the
install changes none of Colab's torch, numpy, matplotlib, IPython or ipywidgets.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["repository", "install_cell", "colab_url", "INSTALL_MARKER"]

#: The first line of every notebook's first cell (Colab shows it as the cell's title, the code folded).
INSTALL_MARKER = "# @title Set up the course"


def _config_path(root: Path | None = None) -> Path:
    root = root or Path(__file__).resolve().parents[2]
    return root / "_config.yml"


def repository(root: Path | None = None) -> tuple[str, str]:
    """``(url, branch)`` from ``_config.yml``'s ``repository`` section."""
    import yaml

    config = yaml.safe_load(_config_path(root).read_text())
    repo = config["repository"]
    return repo["url"].rstrip("/"), repo.get("branch", "main")


def install_cell(root: Path | None = None) -> str:
    """The source of the first code cell of every notebook.

    On Colab it installs this package from the repository, printing pip's main steps as they happen, and
    fails with a message that says what to try. Everywhere it then pins torch's CPU kernels
    (:func:`book.numerics.pin`) before anything computes, or, where ``book`` is not importable, says how
    to install it.
    """
    url, branch = repository(root)
    return f"""{INSTALL_MARKER} (on Colab: installs the course package, about a minute)
import sys
if "google.colab" in sys.modules:
    import subprocess
    print("Installing the course package from {url} …")
    pip = subprocess.Popen([sys.executable, "-m", "pip", "install", "--progress-bar", "off", "git+{url}@{branch}"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = []
    for line in pip.stdout:  # pip's main steps, as they happen
        log.append(line)
        if line.startswith(("Collecting", "Building", "Successfully", "ERROR")):
            print(" ", line.rstrip(), flush=True)
    if pip.wait():
        raise RuntimeError("".join(log[-12:]) + "\\nThe install failed (pip's last lines are above). Check that the "
                           "runtime is connected and run this cell again; if it fails again, use Runtime → Disconnect "
                           "and delete runtime, or report pip's lines at {url}/issues.")
try:
    from book.numerics import pin
except ImportError:
    raise ImportError("The course package `book` is not installed in this kernel's environment. From a clone of "
                      "{url} run `pip install -e .` (or `make lab`), then restart the kernel.") from None
if not pin():  # the same CPU kernels everywhere, set before torch computes (book/numerics.py)
    print("RESIDUAL_COURSE_NATIVE_KERNELS is set: torch uses this CPU's fastest kernels.")"""


def colab_url(notebook_path: str, root: Path | None = None) -> str:
    """The Colab address that opens ``notebook_path`` (relative to the repository root)."""
    url, branch = repository(root)
    match = re.match(r"https://github\.com/([^/]+)/([^/]+)", url)
    if not match:
        raise ValueError(f"repository.url {url!r} in _config.yml is not a GitHub address")
    return f"https://colab.research.google.com/github/{match[1]}/{match[2]}/blob/{branch}/{notebook_path}"
