"""Fetch the site's third-party JavaScript from the npm registry into ``_assets/vendor/``.

The built book loads MathJax, RequireJS and the ipywidgets HTML manager from its
own ``_static/vendor/`` folder instead of public CDNs, so that pages work offline
and make no third-party requests. Run ``python tools/vendor_assets.py`` to
(re)create the folder from the pinned versions below; it needs ``npm``.

Why ``_assets`` and not ``_static``: Jupyter Book 1 adds every ``*.js`` and
``*.css`` file under a root ``_static/`` folder to *every* page. MathJax's lazily
loaded extensions and the widget bundle must not be loaded like that, so the
vendored files sit in ``_assets/`` (listed in ``html_static_path``), which
Sphinx copies to ``_build/html/_static/`` without adding script tags.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEST = ROOT / "_assets" / "vendor"

# package spec -> (destination folder, [(path inside the tarball, path under destination)], licence)
# A path ending in "/" copies that folder; "*.ext" inside a folder copies the matching files.
PACKAGES = {
    "mathjax@3.2.2": (
        "mathjax",
        [
            ("package/es5/tex-mml-chtml.js", "tex-mml-chtml.js"),
            # CHTML fonts: MathJax looks for them next to the script it was loaded from.
            ("package/es5/output/chtml/fonts/woff-v2/", "output/chtml/fonts/woff-v2/"),
            # TeX extensions that MathJax autoloads on first use (\boldsymbol, \cancel, mathtools, …).
            ("package/es5/input/tex/extensions/", "input/tex/extensions/"),
            ("package/LICENSE", "LICENSE"),
        ],
        "Apache-2.0",
    ),
    "requirejs@2.3.7": (
        "requirejs",
        [("package/require.js", "require.js")],
        "MIT (licence header inside require.js)",
    ),
    "@jupyter-widgets/html-manager@1.0.15": (
        "html-manager",
        [
            ("package/dist/embed-amd.js", "embed-amd.js"),
            # Font Awesome files the bundle's CSS references next to itself (woff2 first, woff fallback).
            ("package/dist/*.woff2", "."),
            ("package/dist/*.woff", "."),
            ("package/dist/embed.js.LICENSE.txt", "THIRD-PARTY-LICENSES.txt"),
        ],
        "BSD-3-Clause (Jupyter Development Team); bundled notices in THIRD-PARTY-LICENSES.txt",
    ),
}


def _extract(tgz: Path, items, dest: Path) -> None:
    with tarfile.open(tgz) as tar:
        members = {m.name: m for m in tar.getmembers() if m.isfile()}
        for src, target in items:
            if src.endswith("/"):
                chosen = [(n, dest / target / n[len(src):]) for n in members if n.startswith(src)]
            elif "*" in src:
                folder, pattern = src.rsplit("/", 1)
                chosen = [(n, dest / target / Path(n).name) for n in members
                          if n.startswith(folder + "/") and Path(n).match(pattern)
                          and "/" not in n[len(folder) + 1:]]
            else:
                chosen = [(src, dest / target)]
            if not chosen:
                raise SystemExit(f"{tgz.name}: nothing matches {src}")
            for name, out in chosen:
                out.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(members[name]) as f:
                    out.write_bytes(f.read())


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def write_readme(dest: Path, integrity: dict[str, str]) -> None:
    lines = [
        "# Vendored browser assets",
        "",
        "Served by the built site from `_static/vendor/` so that no page loads a script,",
        "stylesheet or font from a third-party CDN. Created by `python tools/vendor_assets.py`",
        "from the npm registry (`npm pack`), keeping only the files the site needs.",
        "Do not edit by hand; change the pinned versions in the script and rerun it.",
        "",
        "| folder | npm package | licence | size | npm integrity |",
        "|---|---|---|---|---|",
    ]
    for spec, (folder, _, licence) in PACKAGES.items():
        kib = _size(dest / folder) / 1024
        lines.append(f"| `{folder}/` | `{spec}` | {licence} | {kib:,.0f} KiB | `{integrity[spec]}` |")
    lines += [
        "",
        f"Total: {_size(dest) / 1024 / 1024:.1f} MiB.",
        "",
        "Wiring (in `_config.yml`, `sphinx.config`): `html_static_path: [_assets]`,",
        "`mathjax_path: vendor/mathjax/tex-mml-chtml.js`, and `nb_ipywidgets_js` listing",
        "`widgets-setup.js` (ours, in `_assets/`: tells the widget manager where its fonts are and",
        "bridges its MathJax 2 call to MathJax 3), `vendor/requirejs/require.js` and",
        "`vendor/html-manager/embed-amd.js`. `tests/test_browser.py` checks every page offline.",
        "`@jupyter-widgets/html-manager` 1.0.15 is the release built against",
        "`@jupyter-widgets/controls` 5.0.13, `base` 6.0.12 and `output` 6.0.12, the JavaScript side of",
        "ipywidgets 8.1.9 (widget state protocol 2.x) with which the book stores widget state;",
        "it also renders ipywidgets 7 state (it bundles controls 3.x).",
        "",
        "Left out on purpose: MathJax's accessibility explorer and speech engine (`a11y/`, `sre/`,",
        "~4 MiB, loaded only if a reader switches them on in MathJax's menu), the other Font Awesome",
        "formats (eot/ttf/svg, used only by very old browsers) and the source maps.",
        "",
    ]
    (dest / "README.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=DEST)
    args = parser.parse_args()
    dest: Path = args.dest
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    integrity = {}
    with tempfile.TemporaryDirectory() as tmp:
        for spec, (folder, items, _) in PACKAGES.items():
            out = subprocess.run(["npm", "pack", "--silent", "--json", spec], cwd=tmp,
                                 check=True, capture_output=True, text=True).stdout
            info = json.loads(out)[0]
            integrity[spec] = info["integrity"]
            tgz = Path(tmp) / info["filename"]
            _extract(tgz, items, dest / folder)
            print(f"{spec}: {_size(dest / folder) / 1024:,.0f} KiB "
                  f"(tarball sha256 {hashlib.sha256(tgz.read_bytes()).hexdigest()[:16]}…)")
    write_readme(dest, integrity)
    print(f"total {_size(dest) / 1024 / 1024:.2f} MiB in {dest}")


if __name__ == "__main__":
    main()
