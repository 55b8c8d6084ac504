"""The real Jupyter Book build: every notebook executed, no warning, no failing cell."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def toc_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        for chapter in part["chapters"]:
            files.append(chapter["file"])
            files += [s["file"] for s in chapter.get("sections", [])]
    return files


def test_book_builds_with_every_notebook_executed_and_no_warning(built_site):
    log = built_site["log"]
    assert built_site["returncode"] == 0, log[-5000:]
    assert not re.search(r"\bWARNING\b", log), [l for l in log.splitlines() if "WARNING" in l][:20]
    reports = built_site["html"] / "reports"
    failed = list(reports.rglob("*.err.log")) + list(reports.rglob("*.log")) if reports.exists() else []
    assert not failed, f"cells failed: {[f.name for f in failed]}"


def test_every_page_of_the_toc_is_in_the_site(built_site):
    for f in toc_files():
        page = built_site["html"] / f"{f}.html"
        assert page.exists(), page
        source = ROOT / f"{f}.md"
        if source.exists() and "raises-exception" not in source.read_text():
            assert "Traceback (most recent call last)" not in page.read_text(), f"{f} shows a traceback"


def test_no_unresolved_glue_or_raw_roles(built_site):
    for f in toc_files():
        text = (built_site["html"] / f"{f}.html").read_text()
        assert "{glue:" not in text and "{cite}" not in text, f
