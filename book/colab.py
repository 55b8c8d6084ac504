"""The repository URL (configured once, in ``_config.yml``) and the Colab install cell.

Every chapter and exercise notebook starts with :func:`install_cell`'s code.
On Colab it installs this package from the repository; anywhere else it does
nothing. The package's requirements are loose (see ``pyproject.toml``), so the
install changes none of Colab's torch, numpy, matplotlib, IPython or ipywidgets.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["repository", "install_cell", "colab_url", "INSTALL_MARKER"]

INSTALL_MARKER = "# Colab: install the course package"


def _config_path(root: Path | None = None) -> Path:
    root = root or Path(__file__).resolve().parent.parent
    return root / "_config.yml"


def repository(root: Path | None = None) -> tuple[str, str]:
    """``(url, branch)`` from ``_config.yml``'s ``repository`` section."""
    import yaml

    config = yaml.safe_load(_config_path(root).read_text())
    repo = config["repository"]
    return repo["url"].rstrip("/"), repo.get("branch", "main")


def install_cell(root: Path | None = None) -> str:
    """The source of the first code cell of every notebook."""
    url, branch = repository(root)
    return (
        f"{INSTALL_MARKER} (does nothing outside Colab).\n"
        "import sys\n"
        "if \"google.colab\" in sys.modules:\n"
        "    import subprocess\n"
        f"    subprocess.run([sys.executable, \"-m\", \"pip\", \"install\", \"-q\", \"git+{url}@{branch}\"], check=True)"
    )


def colab_url(notebook_path: str, root: Path | None = None) -> str:
    """The Colab address that opens ``notebook_path`` (relative to the repository root)."""
    url, branch = repository(root)
    match = re.match(r"https://github\.com/([^/]+)/([^/]+)", url)
    if not match:
        raise ValueError(f"repository.url {url!r} in _config.yml is not a GitHub address")
    return f"https://colab.research.google.com/github/{match[1]}/{match[2]}/blob/{branch}/{notebook_path}"
