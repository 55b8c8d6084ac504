"""What makes the course usable by others: licences, citation, version, contribution guide, workflows.

Each check is a small function that returns the problems it finds, so each is also run on a crafted
bad case (a CITATION.cff with the wrong version, a workflow that runs a command that is no Makefile
target, a file with no licence, versions that disagree) to show that it can fail.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

import book

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
CFF_SCHEMA = Path(__file__).parent / "fixtures" / "citation-cff-1.2.0.schema.json"


def _config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text())


def _tool(name: str) -> str:
    """A command-line tool installed with the test environment (requirements.txt), next to this Python."""
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    assert found, f"{name} not installed: `make env` installs it from requirements.txt"
    return found


# --------------------------------------------------------------------------- licences


def reuse_lint(root: Path) -> subprocess.CompletedProcess:
    """``reuse lint`` on ``root``: every file must have a copyright and a licence, every licence its text."""
    return subprocess.run([_tool("reuse"), "--root", str(root), "lint"], cwd=root,
                          capture_output=True, text=True)


def test_every_file_has_a_licence_reuse_lint():
    proc = reuse_lint(ROOT)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_reuse_lint_fails_on_a_file_without_a_licence(tmp_path):
    (tmp_path / "LICENSES").mkdir()
    shutil.copy(ROOT / "LICENSES" / "MIT.txt", tmp_path / "LICENSES")
    (tmp_path / "REUSE.toml").write_text(
        'version = 1\n[[annotations]]\npath = "*.py"\n'
        'SPDX-FileCopyrightText = "2026 The Residual Connections course authors"\n'
        'SPDX-License-Identifier = "MIT"\n')
    (tmp_path / "code.py").write_text("x = 1\n")
    assert reuse_lint(tmp_path).returncode == 0
    (tmp_path / "chapter.md").write_text("# A chapter with no licence\n")
    proc = reuse_lint(tmp_path)
    assert proc.returncode != 0 and "chapter.md" in proc.stdout


def test_reuse_lint_fails_on_a_licence_without_its_text(tmp_path):
    (tmp_path / "LICENSES").mkdir()
    # REUSE-IgnoreStart (a crafted header, not this file's)
    (tmp_path / "figure.py").write_text(
        "# SPDX-FileCopyrightText: 2026 The Residual Connections course authors\n"
        "# SPDX-License-Identifier: CC-BY-4.0\n")
    # REUSE-IgnoreEnd
    proc = reuse_lint(tmp_path)
    assert proc.returncode != 0 and "CC-BY-4.0" in proc.stdout


def licence_problems(root: Path, config: dict) -> list[str]:
    """Code under MIT, teaching material under CC BY 4.0: the files, the package metadata and the footer agree."""
    problems = []
    code = (root / "LICENSE").read_text() if (root / "LICENSE").exists() else ""
    if not code.startswith("MIT License") or "Permission is hereby granted" not in code:
        problems.append("LICENSE is not the MIT licence")
    content = (root / "LICENSE-CONTENT").read_text() if (root / "LICENSE-CONTENT").exists() else ""
    if "CC BY 4.0" not in content or "LICENSES/CC-BY-4.0.txt" not in content:
        problems.append("LICENSE-CONTENT does not put the teaching material under CC BY 4.0")
    legal = root / "LICENSES" / "CC-BY-4.0.txt"
    if not legal.exists() or "Attribution 4.0 International" not in legal.read_text():
        problems.append("LICENSES/CC-BY-4.0.txt is not the CC BY 4.0 legal code")
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    if pyproject["project"].get("license") != {"text": "MIT"}:
        problems.append(f"pyproject.toml licence is {pyproject['project'].get('license')}, not MIT")
    footer = (config.get("html") or {}).get("extra_footer") or ""
    for needed in ("CC BY 4.0", "creativecommons.org/licenses/by/4.0", "MIT"):
        if needed not in footer:
            problems.append(f"the book's footer (_config.yml html.extra_footer) does not say {needed!r}")
    return problems


def test_licences_are_stated_in_files_metadata_and_footer():
    assert licence_problems(ROOT, _config()) == []


def test_licence_check_fails_on_a_footer_without_the_licence(tmp_path):
    for name in ("LICENSE", "LICENSE-CONTENT", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "LICENSES", tmp_path / "LICENSES")
    config = _config()
    config["html"]["extra_footer"] = "<p>All rights reserved.</p>"
    problems = licence_problems(tmp_path, config)
    assert any("CC BY 4.0" in p for p in problems) and any("'MIT'" in p for p in problems)
    (tmp_path / "LICENSE").write_text("All rights reserved.\n")
    assert "LICENSE is not the MIT licence" in licence_problems(tmp_path, config)


def test_vendored_assets_keep_their_own_licences():
    """The scripts and fonts under _assets/vendor are not relicensed by REUSE.toml's catch-all."""
    reuse = tomllib.loads((ROOT / "REUSE.toml").read_text())
    vendored = {a["SPDX-License-Identifier"] for a in reuse["annotations"]
                if any(str(p).startswith("_assets/vendor/") and not str(p).endswith("README.md")
                       for p in ([a["path"]] if isinstance(a["path"], str) else a["path"]))
                and a.get("precedence") == "override"}
    assert {"Apache-2.0", "MIT", "BSD-3-Clause AND MIT", "OFL-1.1"} <= vendored
    readme = (ROOT / "_assets" / "vendor" / "README.md").read_text()
    assert "Apache-2.0" in readme and "BSD-3-Clause" in readme


# --------------------------------------------------------------------------- citation


def citation_problems(cff_text: str, config: dict, version: str) -> list[str]:
    """A CITATION.cff must be valid CFF 1.2.0 and name the title, authors, version and repository
    that the book is configured with (``_config.yml``) and the package carries."""
    import jsonschema

    cff = yaml.safe_load(cff_text)
    schema = json.loads(CFF_SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    problems = [f"CFF 1.2.0 schema: {'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
                for e in sorted(validator.iter_errors(cff), key=str)]
    if not isinstance(cff, dict):
        return problems
    if cff.get("title") != config["title"]:
        problems.append(f"title {cff.get('title')!r} is not _config.yml's {config['title']!r}")
    authors = [a.get("name") or " ".join(filter(None, (a.get("given-names"), a.get("family-names"))))
               for a in cff.get("authors") or []]
    if authors != [config["author"]]:
        problems.append(f"authors {authors} are not _config.yml's [{config['author']!r}]")
    if str(cff.get("version")) != version:
        problems.append(f"version {cff.get('version')!r} is not the package's {version!r}")
    url = config["repository"]["url"]
    if cff.get("repository-code") != url:
        problems.append(f"repository-code {cff.get('repository-code')!r} is not _config.yml's {url!r}")
    if not {"MIT", "CC-BY-4.0"} <= set(cff.get("license") or []):
        problems.append(f"license {cff.get('license')!r} does not name MIT and CC-BY-4.0")
    return problems


def test_citation_file_is_valid_and_matches_the_configuration():
    assert citation_problems((ROOT / "CITATION.cff").read_text(), _config(), book.__version__) == []


@pytest.mark.parametrize("change, expected", [
    (lambda c: c.replace('version: "0.1.0"', 'version: "9.9.9"'), "version '9.9.9' is not the package's"),
    (lambda c: c.replace("residual-course/residual-connections", "someone/fork"), "repository-code"),
    (lambda c: c.replace("— a course you can run", "(draft)"), "title"),
    (lambda c: c.replace("  - name: \"The Residual Connections course authors\"\n", ""), "CFF 1.2.0 schema: authors"),
    (lambda c: c.replace("cff-version: 1.2.0", "cff-version: 1.2"), "CFF 1.2.0 schema: cff-version"),
    (lambda c: c.replace('date-released: "2026-12-01"', 'date-released: "1 December 2026"'),
     "CFF 1.2.0 schema: date-released"),
    (lambda c: c + "homepage: https://example.org\n", "Additional properties are not allowed"),
])
def test_citation_check_fails_on_a_crafted_bad_file(change, expected):
    good = (ROOT / "CITATION.cff").read_text()
    bad = change(good)
    assert bad != good
    problems = citation_problems(bad, _config(), book.__version__)
    assert any(expected in p for p in problems), problems


def test_readme_and_intro_say_how_to_cite_and_the_licence():
    for name in ("README.md", "intro.md"):
        text = (ROOT / name).read_text()
        assert "CITATION.cff" in text, f"{name} does not point to CITATION.cff"
        assert "CC BY 4.0" in text and "MIT" in text, f"{name} does not state the licences"


# --------------------------------------------------------------------------- version


def version_problems(pyproject_text: str, package_version: str, cff_text: str, changelog: str) -> list[str]:
    """One version, ``book.__version__``: pyproject.toml reads it from there; CITATION.cff and the newest
    CHANGELOG entry name the same."""
    project = tomllib.loads(pyproject_text)
    problems = []
    if "version" in project["project"] or "version" not in project["project"].get("dynamic", []):
        problems.append("pyproject.toml must read the version from book.__version__ (dynamic), not repeat it")
    elif project.get("tool", {}).get("setuptools", {}).get("dynamic", {}).get("version") != {"attr": "book.__version__"}:
        problems.append("pyproject.toml's dynamic version is not book.__version__")
    cff_version = str((yaml.safe_load(cff_text) or {}).get("version"))
    if cff_version != package_version:
        problems.append(f"CITATION.cff version {cff_version!r} != book.__version__ {package_version!r}")
    released = re.findall(r"^## \[(\d[^\]]*)\]", changelog, re.M)
    if not released or released[0] != package_version:
        problems.append(f"newest CHANGELOG.md release {released[:1]} != book.__version__ {package_version!r}")
    return problems


def _version_sources():
    return ((ROOT / "pyproject.toml").read_text(), book.__version__, (ROOT / "CITATION.cff").read_text(),
            (ROOT / "CHANGELOG.md").read_text())


def test_version_is_the_same_everywhere():
    assert version_problems(*_version_sources()) == []


def test_version_check_fails_when_versions_disagree():
    pyproject, package, cff, changelog = _version_sources()
    repeated = pyproject.replace('dynamic = ["version"]', 'version = "0.2.0"')
    assert version_problems(repeated, package, cff, changelog) == [
        "pyproject.toml must read the version from book.__version__ (dynamic), not repeat it"]
    problems = version_problems(pyproject, "0.1.1", cff, changelog)
    assert len(problems) == 2 and "CITATION.cff version '0.1.0' != book.__version__ '0.1.1'" in problems


def test_installed_package_metadata_has_the_version():
    from importlib.metadata import version

    assert version("residual-course") == book.__version__, "reinstall: make env (pip install -e .)"


# --------------------------------------------------------------------------- contribution guide


def test_contributing_guide_covers_what_a_contributor_needs():
    text = (ROOT / "CONTRIBUTING.md").read_text()
    for needed in ("make sync", "python -m book.authoring.exercise_pages build", "make bench", "make test",
                   "make book", "tests/test_ch", "Code style", "CHANGELOG.md", "reuse lint"):
        assert needed in text, f"CONTRIBUTING.md does not mention {needed!r}"


# --------------------------------------------------------------------------- workflows


def actionlint(paths: list[Path]) -> subprocess.CompletedProcess:
    return subprocess.run([_tool("actionlint"), "-no-color", "-oneline", *map(str, paths)],
                          cwd=ROOT, capture_output=True, text=True)


def _workflows() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml")) + sorted(WORKFLOWS.glob("*.yaml"))


def test_workflows_pass_actionlint():
    assert len(_workflows()) >= 3
    proc = actionlint(_workflows())
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_fails_on_a_crafted_bad_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - run: echo ${{ github.no_such_context }}\n      - uses: actions/checkout\n")
    proc = actionlint([bad])
    assert proc.returncode == 1
    assert "no_such_context" in proc.stdout and "actions/checkout" in proc.stdout


def make_targets(makefile: str) -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w.-]*)\s*:(?!=)", makefile, re.M))


def readme_commands(readme: str) -> set[str]:
    """The commands in the README's fenced shell blocks, without comments."""
    commands = set()
    for block in re.findall(r"```(?:bash|sh|shell|console)\n(.*?)```", readme, re.S):
        for line in block.splitlines():
            line = line.split(" #", 1)[0].strip()
            if line and not line.startswith("#"):
                commands.add(line)
    return commands


def workflow_commands(workflow: dict) -> list[str]:
    """Every shell command of every ``run:`` step, split at newlines, ``&&``, ``||`` and ``;``."""
    commands = []
    for job in (workflow.get("jobs") or {}).values():
        for step in job.get("steps") or []:
            for line in str(step.get("run", "")).splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    commands += [c.strip() for c in re.split(r"&&|\|\||;", line) if c.strip()]
    return commands


# The CI entry point: it installs Debian's Chromium for the browser tests and runs the README's test command.
CI_ENTRY = "bash .ci/run"


def command_problems(commands: list[str], targets: set[str], readme: set[str]) -> list[str]:
    problems = []
    for command in commands:
        words = shlex.split(command)
        if words and words[0] == "make" and len(words) > 1 and all(w in targets for w in words[1:]):
            continue
        if command in readme or command == CI_ENTRY:
            continue
        problems.append(f"not a Makefile target nor a README command: {command}")
    return problems


def _allowed():
    return make_targets((ROOT / "Makefile").read_text()), readme_commands((ROOT / "README.md").read_text())


def test_workflows_run_only_makefile_targets_and_readme_commands():
    targets, readme = _allowed()
    assert {"make book", "make test"} <= readme
    problems = []
    for path in _workflows():
        problems += [f"{path.name}: {p}" for p in
                     command_problems(workflow_commands(yaml.safe_load(path.read_text())), targets, readme)]
    assert problems == []
    # The CI entry point ends in the README's test command.
    lines = [l.strip() for l in (ROOT / ".ci" / "run").read_text().splitlines() if l.strip()
             and not l.strip().startswith("#")]
    assert lines[-1] == "make test"


def test_command_check_fails_on_a_crafted_workflow():
    targets, readme = _allowed()
    crafted = yaml.safe_load("on: push\njobs:\n  t:\n    runs-on: ubuntu-latest\n    steps:\n"
                             "      - run: |\n          make test\n          make deploy && pip install x\n"
                             "          python -m pytest tests/test_data.py\n")
    assert command_problems(workflow_commands(crafted), targets, readme) == [
        "not a Makefile target nor a README command: make deploy",
        "not a Makefile target nor a README command: pip install x",
        "not a Makefile target nor a README command: python -m pytest tests/test_data.py",
    ]


def _on(workflow: dict) -> dict:
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    return {on: None} if isinstance(on, str) else dict.fromkeys(on) if isinstance(on, list) else on


def test_workflows_test_on_push_deploy_the_book_and_run_colab_parity_weekly():
    flows = {p.stem: yaml.safe_load(p.read_text()) for p in _workflows()}
    tests, book_flow, colab = flows["tests"], flows["book"], flows["colab-parity"]
    assert {"push", "pull_request"} <= set(_on(tests))
    assert CI_ENTRY in workflow_commands(tests)
    assert _on(book_flow)["push"]["branches"] == ["main"]
    assert "make book" in workflow_commands(book_flow)
    uses = [s.get("uses", "") for job in book_flow["jobs"].values() for s in job["steps"]]
    assert any(u.startswith("actions/upload-pages-artifact@") for u in uses)
    assert any(u.startswith("actions/deploy-pages@") for u in uses)
    assert any(s.get("with", {}).get("path") == "_build/html" for job in book_flow["jobs"].values()
               for s in job["steps"])
    cron = _on(colab)["schedule"][0]["cron"].split()
    assert len(cron) == 5 and cron[2] == "*" and cron[3] == "*" and cron[4] != "*", "not weekly"
    assert workflow_commands(colab) == ["make test-colab"]
